//! The daemon's config (`visync.toml`): read as TOML, overridden from the
//! environment (`VISYNC_INDEX__URL=...`), then validated into types. After
//! loading, no code holds a raw string where a path, URL, schedule or number
//! belongs. Relative paths are relative to the config file's folder.

mod endpoints;
mod raw;
mod rules;
mod service;
mod sources;

pub(crate) use endpoints::check_transport;
use endpoints::{index, state_url};
pub use rules::Retention;
use rules::{policy, retention, rules, schedule};
use service::{daemon_settings, http_listen, log_level, organisation};
use sources::{returns, sources};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::domain::Rules;
use crate::located::{FileKind, LocatedError};
use crate::plan::Policy;

pub const DEFAULT_PATH: &str = "/etc/visync/visync.toml";

/// `[state] lease_secs` unless the config says otherwise.
pub const DEFAULT_LEASE_SECS: u64 = 120;

/// What is wrong with the config file, where, and what to do: the error
/// type shared with mappings.
pub type ConfigError = LocatedError;

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub organisation: Organisation,
    pub state: StateUrl,
    /// The subject-hash key; default: `subject.key` beside a SQLite store.
    pub state_key_file: Option<PathBuf>,
    pub index: IndexConfig,
    pub sources: Vec<SourceConfig>,
    /// Return channels by source name.
    pub returns: BTreeMap<String, ReturnConfig>,
    pub schedule: Schedule,
    pub rules: Rules,
    /// How long local state that the law does not time is kept.
    pub retention: Retention,
    pub policy: Policy,
    /// `/metrics` and `/healthz`; `None`: `[http] listen = ""` turned them off.
    pub http_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    /// `[log] level` (an `EnvFilter` directive); `RUST_LOG` wins over it.
    pub log_level: Option<String>,
    pub daemon: DaemonSettings,
}

/// How the daemon behaves (daemon.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaemonSettings {
    /// SIGTERM to exit: in-flight work finishes or is abandoned within this.
    pub shutdown_grace: std::time::Duration,
    /// A job kind with work and no success for this long makes `/healthz` 503.
    pub unhealthy_after: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateUrl {
    Sqlite(PathBuf),
    Postgres(PgState),
}

/// A PostgreSQL state (`[state] url = "postgres://..."`): shared by the
/// instances that name it (docs/operations.md, "PostgreSQL and several
/// instances").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgState {
    /// The URL as configured, never with a password in it (refused).
    pub url: url::Url,
    /// `[state] password_file`: the password on one line.
    pub password_file: Option<PathBuf>,
    /// `[state] ca`: the CA the server's certificate is checked against,
    /// instead of the system's.
    pub ca: Option<PathBuf>,
    /// `[state] lease_secs` (default `DEFAULT_LEASE_SECS`): how long an instance's claims and job leases
    /// last without renewal; after it, another instance takes them over.
    pub lease_secs: u64,
}

impl PgState {
    /// The loopback (or a Unix socket) may go without TLS; anything else
    /// is `verify-full`.
    pub fn loopback(&self) -> bool {
        let socket = self
            .url
            .query_pairs()
            .any(|(k, v)| k == "host" && v.starts_with('/'));
        // `postgres:` is not a scheme the URL standard knows, so its host
        // is opaque text, not a parsed address.
        socket
            || match self.url.host_str() {
                None | Some("") | Some("localhost") => true,
                Some(h) => h
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback()),
            }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexUrl {
    /// The reference index, in-process on a loopback port.
    Embedded,
    Remote(url::Url),
}

#[derive(Debug, Clone)]
pub struct IndexConfig {
    pub url: IndexUrl,
    pub token_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    /// Signals per batch call (the index takes at most 500).
    pub batch_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    Notify,
    /// For network shares, where file events do not arrive.
    Poll,
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub mapping: PathBuf,
    pub watch: Option<PathBuf>,
    pub settle_secs: u64,
    pub watch_mode: WatchMode,
    /// A full look at the folder this often, for events that were missed.
    pub rescan_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReturnFormat {
    Csv,
    Xml,
    Json,
}

#[derive(Debug, Clone)]
pub enum ReturnConfig {
    Folder {
        path: PathBuf,
        format: ReturnFormat,
        delimiter: u8,
    },
    Http {
        url: url::Url,
        /// Trust this CA for the CMS's certificate (else the system's).
        ca: Option<PathBuf>,
        /// A client certificate and key for mutual TLS, as for the index.
        identity: Option<(PathBuf, PathBuf)>,
    },
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub notices: cron::Schedule,
    pub reconcile: cron::Schedule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Loads, overrides from the environment, and validates.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        LocatedError::unreadable(
            FileKind::Config,
            path,
            &e,
            " (give the config with -c PATH)",
        )
    })?;
    let raw = parse_with_overrides(path, &text)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    validate(raw, path, dir).map_err(|mut e| {
        // The line, when the value came from the file: not when an
        // environment override set it.
        let overridden = overrides(std::env::vars()).iter().any(|(var, _)| {
            let k = var.trim_start_matches("VISYNC_").to_ascii_lowercase();
            k.rsplit("__").next() == e.key.rsplit(' ').next()
        });
        if !overridden {
            e.line = crate::located::line_of_key(&text, &e.key);
        }
        e
    })
}

/// The file alone first, so that its errors can name a line and a key; then
/// with the `VISYNC_SECTION__KEY` environment overrides on top.
fn parse_with_overrides(path: &Path, text: &str) -> Result<raw::RawConfig, ConfigError> {
    let err = |message: String| LocatedError::at_key(FileKind::Config, path, "", message);
    let _: raw::RawConfig = toml::from_str(text)
        .map_err(|e| LocatedError::from_toml(FileKind::Config, path, text, &e))?;
    // Values stay strings until the deserialiser asks for a number, so that
    // an organisation code such as "01234567" keeps its leading zero.
    let overrides = overrides(std::env::vars());
    let with = |vars: &[(String, String)]| -> Result<raw::RawConfig, config::ConfigError> {
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("VISYNC")
                    .prefix_separator("_")
                    .separator("__")
                    .source(Some(vars.iter().cloned().collect())),
            )
            .build()
            .and_then(|c| c.try_deserialize())
    };
    // One at a time first, so that a wrong one is named: "unknown field
    // `bin`" alone tells an operator nothing.
    for var in &overrides {
        with(std::slice::from_ref(var)).map_err(|e| {
            err(format!(
                "the environment variable {} does not override a setting: {e}",
                var.0
            ))
        })?;
    }
    with(&overrides).map_err(|e| {
        err(format!(
            "with the VISYNC_SECTION__KEY environment overrides: {e}"
        ))
    })
}

/// The environment variables that are config overrides: `VISYNC_SECTION__KEY`.
/// Others that merely start with `VISYNC_` (`VISYNC_CONFIG` in a shell, a
/// wrapper's `VISYNC_BIN`, the tests' `VISYNCTEST_*`) are not config and are
/// ignored (daemon.md, "Environment").
fn overrides(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars
        .filter(|(k, _)| {
            k.strip_prefix("VISYNC_")
                .and_then(|rest| rest.split_once("__"))
                .is_some_and(|(section, key)| !section.is_empty() && !key.is_empty())
        })
        .collect();
    out.sort();
    out
}

/// A value the file parsed but visync cannot use: its key and what to do.
/// `validate` adds the file.
type Invalid = (String, String);

fn invalid<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T, Invalid> {
    Err((key.into(), message.into()))
}

/// The raw config into types, one section at a time; the first value that
/// cannot be used is the error.
fn validate(raw: raw::RawConfig, path: &Path, dir: &Path) -> Result<Config, ConfigError> {
    let resolve = |p: &str| -> PathBuf { dir.join(p) };
    let typed = (|| {
        Ok::<_, Invalid>(Config {
            path: path.to_path_buf(),
            organisation: organisation(&raw.organisation)?,
            state: state_url(&raw.state, &resolve)?,
            state_key_file: raw.state.key_file.as_deref().map(resolve),
            index: index(&raw.index, &resolve)?,
            sources: sources(&raw.sources, &resolve)?,
            returns: returns(&raw.returns, &resolve)?,
            schedule: schedule(&raw.schedule)?,
            rules: rules(&raw.rules)?,
            retention: retention(&raw.rules)?,
            policy: policy(&raw.policy)?,
            http_listen: http_listen(&raw.http)?,
            log_format: raw.log.format.unwrap_or(LogFormat::Text),
            log_level: log_level(&raw.log)?,
            daemon: daemon_settings(&raw).map_err(|(k, m)| (k.to_string(), m))?,
        })
    })();
    typed.map_err(|(key, message)| LocatedError::at_key(FileKind::Config, path, key, message))
}

#[cfg(test)]
mod tests;
