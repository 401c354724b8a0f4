//! What a job runs with: the config and the loaded mappings as one snapshot
//! (replaced whole on `SIGHUP`, never edited in place), and the connection
//! to the index.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::config::{self, Config, ConfigError, IndexUrl, SourceConfig};
use crate::index::{ClientError, HttpIndex};
use crate::mapping::{self, Mapping, MappingError};

/// Why a config and its mappings cannot be run with, or the index not be
/// reached with them. Every one is an operator's to fix in a file (the CLI
/// exits 2; a reload keeps the running snapshot).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Every mapping that cannot be loaded, at once: one line each.
    #[error("{}", join_lines(.0))]
    Mappings(Vec<MappingError>),
    #[error(
        "two mappings use the source name \"{name}\": {} and {}; names must be unique",
        .first.display(),
        .second.display()
    )]
    DuplicateName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    /// An API source is polled; a drop folder beside it would be ignored.
    #[error("config {}: source \"{name}\" is an API source ({kind}): remove its `watch` (it is polled on its mapping's schedule)", .config.display())]
    WatchOnApi {
        config: PathBuf,
        name: String,
        kind: &'static str,
    },
    #[error("config {}: no source is named \"{name}\"", .config.display())]
    NoSuchSource { config: PathBuf, name: String },
    #[error("config {}: there are no [[sources]]", .config.display())]
    NoSources { config: PathBuf },
    #[error("config {}, [index] token_file: cannot read {}: {source}", .config.display(), .path.display())]
    TokenFile {
        config: PathBuf,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the embedded index: {0}")]
    Embedded(#[source] visync_index_sim::SimError),
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A reload that would move the state: refused, the daemon keeps its own.
    #[error("config {}, [state] url: the state store cannot change while running; restart the service for that", .config.display())]
    StateChanged { config: PathBuf },
    #[error("config {}, [index] url: a change between \"embedded\" and a remote index needs a restart", .config.display())]
    IndexKindChanged { config: PathBuf },
}

/// Several mapping errors as lines of one message: the CLI prints `error: `
/// before the first, and each later one gets its own.
fn join_lines(errors: &[MappingError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\nerror: ")
}

/// The config and its sources, loaded and validated together: a reload
/// either gives a whole new snapshot or none.
pub struct Snapshot {
    pub cfg: Config,
    pub sources: Sources,
}

impl Snapshot {
    /// Loads the config and every mapping; the error says what and where.
    pub fn load(path: &std::path::Path) -> Result<Snapshot, SnapshotError> {
        let cfg = config::load(path)?;
        let sources = Sources::load(&cfg, None)?;
        Ok(Snapshot { cfg, sources })
    }
}

/// The configured sources with their loaded mappings.
pub struct Sources {
    pub list: Vec<(SourceConfig, Mapping)>,
}

impl Sources {
    /// Loads every mapping (all errors at once), checks names are unique, and
    /// keeps only `only` when given.
    pub fn load(cfg: &Config, only: Option<&str>) -> Result<Sources, SnapshotError> {
        let mut list = Vec::new();
        let mut errors = Vec::new();
        for s in &cfg.sources {
            match mapping::load(&s.mapping) {
                Ok(m) => list.push((s.clone(), m)),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(SnapshotError::Mappings(errors));
        }
        if let Some((_, m)) = list
            .iter()
            .find(|(s, m)| s.watch.is_some() && m.api().is_some())
        {
            return Err(SnapshotError::WatchOnApi {
                config: cfg.path.clone(),
                name: m.name.clone(),
                kind: m.kind_name(),
            });
        }
        let mut seen = HashMap::new();
        for (_, m) in &list {
            if let Some(first) = seen.insert(m.name.clone(), m.path.clone()) {
                return Err(SnapshotError::DuplicateName {
                    name: m.name.clone(),
                    first,
                    second: m.path.clone(),
                });
            }
        }
        if let Some(name) = only {
            list.retain(|(_, m)| m.name == name);
            if list.is_empty() {
                return Err(SnapshotError::NoSuchSource {
                    config: cfg.path.clone(),
                    name: name.to_string(),
                });
            }
        }
        if list.is_empty() {
            return Err(SnapshotError::NoSources {
                config: cfg.path.clone(),
            });
        }
        Ok(Sources { list })
    }
}

/// The index this installation talks to, and the embedded one if it runs it.
pub struct IndexConn {
    pub api: HttpIndex,
    _embedded: Option<visync_index_sim::SimHandle>,
}

/// Connects to the configured index; `embedded` starts the reference index
/// in-process on a loopback port, with its store beside the state.
pub async fn connect_index(cfg: &Config) -> Result<IndexConn, SnapshotError> {
    match &cfg.index.url {
        IndexUrl::Embedded => {
            let dir = match &cfg.state {
                config::StateUrl::Sqlite(p) => {
                    p.parent().map(|d| d.to_path_buf()).unwrap_or_default()
                }
                config::StateUrl::Postgres(_) => std::env::temp_dir(),
            };
            let token = format!("embedded-{}", cfg.organisation.code);
            let opts = visync_index_sim::SimOptions {
                listen: "127.0.0.1:0".parse().expect("a loopback address"),
                db: dir.join("index-sim.db"),
                orgs: vec![(cfg.organisation.code.clone(), token.clone())],
                families: None,
                chaos: None,
                clock: None,
                // The index's own rules, with the connector's numbers: the
                // embedded index applies the periods the config names.
                rules: visync_index_sim::Rules {
                    max_active_years: cfg.rules.max_active_years,
                    archive_years: cfg.rules.archive_years,
                    age_limit: cfg.rules.age_limit,
                },
                role: visync_index_sim::Role::Regional,
                upstream: None,
            };
            let handle = visync_index_sim::start(opts)
                .await
                .map_err(SnapshotError::Embedded)?;
            let base =
                url::Url::parse(&format!("http://{}", handle.addr())).expect("a loopback URL");
            tracing::info!(addr = %handle.addr(), "embedded reference index started");
            let api = HttpIndex::new(base, Some(token), None, None)?;
            Ok(IndexConn {
                api,
                _embedded: Some(handle),
            })
        }
        IndexUrl::Remote(url) => {
            let token = match &cfg.index.token_file {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(|source| SnapshotError::TokenFile {
                            config: cfg.path.clone(),
                            path: p.clone(),
                            source,
                        })?
                        .trim()
                        .to_string(),
                ),
                None => None,
            };
            let identity = cfg
                .index
                .client_cert
                .as_deref()
                .zip(cfg.index.client_key.as_deref());
            let api = HttpIndex::new(url.clone(), token, identity, cfg.index.ca.as_deref())?;
            Ok(IndexConn {
                api,
                _embedded: None,
            })
        }
    }
}
