//! What a job runs with: the config and the loaded mappings as one snapshot
//! (replaced whole on `SIGHUP`, never edited in place), and the connection
//! to the index.

use std::collections::HashMap;

use crate::config::{self, Config, IndexUrl, SourceConfig};
use crate::index::HttpIndex;
use crate::mapping::{self, Mapping};

/// The config and its sources, loaded and validated together: a reload
/// either gives a whole new snapshot or none.
pub struct Snapshot {
    pub cfg: Config,
    pub sources: Sources,
}

impl Snapshot {
    /// Loads the config and every mapping; the error says what and where.
    pub fn load(path: &std::path::Path) -> Result<Snapshot, String> {
        let cfg = config::load(path).map_err(|e| e.to_string())?;
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
    pub fn load(cfg: &Config, only: Option<&str>) -> Result<Sources, String> {
        let mut list = Vec::new();
        let mut errors = Vec::new();
        for s in &cfg.sources {
            match mapping::load(&s.mapping) {
                Ok(m) => list.push((s.clone(), m)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("\nerror: "));
        }
        let mut seen = HashMap::new();
        for (_, m) in &list {
            if let Some(other) = seen.insert(m.name.clone(), m.path.clone()) {
                return Err(format!(
                    "two mappings use the source name \"{}\": {} and {}; names must be unique",
                    m.name,
                    other.display(),
                    m.path.display()
                ));
            }
        }
        if let Some(name) = only {
            list.retain(|(_, m)| m.name == name);
            if list.is_empty() {
                return Err(format!(
                    "config {}: no source is named \"{name}\"",
                    cfg.path.display()
                ));
            }
        }
        if list.is_empty() {
            return Err(format!(
                "config {}: there are no [[sources]]",
                cfg.path.display()
            ));
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
pub async fn connect_index(cfg: &Config) -> Result<IndexConn, String> {
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
                .map_err(|e| format!("the embedded index: {e}"))?;
            let base =
                url::Url::parse(&format!("http://{}", handle.addr())).expect("a loopback URL");
            tracing::info!(addr = %handle.addr(), "embedded reference index started");
            let api = HttpIndex::new(base, Some(token), None, None).map_err(|e| e.to_string())?;
            Ok(IndexConn {
                api,
                _embedded: Some(handle),
            })
        }
        IndexUrl::Remote(url) => {
            let token = match &cfg.index.token_file {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(|e| {
                            format!(
                                "config {}, [index] token_file: cannot read {}: {e}",
                                cfg.path.display(),
                                p.display()
                            )
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
            let api = HttpIndex::new(url.clone(), token, identity, cfg.index.ca.as_deref())
                .map_err(|e| e.to_string())?;
            Ok(IndexConn {
                api,
                _embedded: None,
            })
        }
    }
}
