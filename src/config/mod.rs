//! The daemon's config (`visync.toml`): read as TOML, overridden from the
//! environment (`VISYNC_INDEX__URL=...`), then validated into types. After
//! loading, no code holds a raw string where a path, URL, schedule or number
//! belongs. Relative paths are relative to the config file's folder.

mod raw;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::domain::Rules;
use crate::plan::Policy;

pub const DEFAULT_PATH: &str = "/etc/visync/visync.toml";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config {}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ", {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

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
    Postgres(String),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Loads, overrides from the environment, and validates.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let err = |line: Option<usize>, key: &str, message: String| ConfigError {
        path: path.to_path_buf(),
        line,
        key: key.to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        err(
            None,
            "",
            format!("cannot read the file: {e} (give the config with -c PATH)"),
        )
    })?;
    // The file alone first: its errors can name a line.
    let _: raw::RawConfig = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        err(line, "", e.message().to_string())
    })?;
    // Then with the environment on top. Values stay strings until the
    // deserialiser asks for a number, so that an organisation code such as
    // "01234567" keeps its leading zero.
    let overrides = overrides(std::env::vars());
    let with = |vars: &[(String, String)]| -> Result<raw::RawConfig, config::ConfigError> {
        config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
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
            err(
                None,
                "",
                format!(
                    "the environment variable {} does not override a setting: {e}",
                    var.0
                ),
            )
        })?;
    }
    let raw = with(&overrides).map_err(|e| {
        err(
            None,
            "",
            format!("with the VISYNC_SECTION__KEY environment overrides: {e}"),
        )
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    validate(raw, path, dir)
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

fn validate(raw: raw::RawConfig, path: &Path, dir: &Path) -> Result<Config, ConfigError> {
    let err = |key: &str, message: String| ConfigError {
        path: path.to_path_buf(),
        line: None,
        key: key.to_string(),
        message,
    };
    let resolve = |p: &str| -> PathBuf { dir.join(p) };

    let code = raw.organisation.code.trim().to_string();
    if code.is_empty() || code.contains(char::is_whitespace) {
        return Err(err(
            "[organisation] code",
            "must be the code the index knows this organisation by".into(),
        ));
    }

    let state = match raw
        .state
        .url
        .as_deref()
        .unwrap_or("sqlite:///var/lib/visync/state.db")
    {
        u if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            StateUrl::Postgres(u.to_string())
        }
        u => match u
            .strip_prefix("sqlite://")
            .or_else(|| u.strip_prefix("sqlite:"))
        {
            Some(p) if !p.is_empty() => StateUrl::Sqlite(resolve(p)),
            _ => {
                return Err(err(
                    "[state] url",
                    format!("\"{u}\" is not sqlite://PATH or postgres://..."),
                ))
            }
        },
    };

    let index_url = match raw.index.url.as_deref().unwrap_or("embedded") {
        "embedded" => IndexUrl::Embedded,
        u => {
            let url = url::Url::parse(u)
                .map_err(|e| err("[index] url", format!("\"{u}\" is not a URL: {e}")))?;
            check_transport(&url).map_err(|m| err("[index] url", m))?;
            IndexUrl::Remote(url)
        }
    };
    let batch_size = raw.index.batch_size.unwrap_or(200);
    if !(1..=500).contains(&batch_size) {
        return Err(err(
            "[index] batch_size",
            format!("{batch_size} is outside 1..=500 (the index takes at most 500)"),
        ));
    }
    let index = IndexConfig {
        url: index_url,
        token_file: raw.index.token_file.as_deref().map(resolve),
        client_cert: raw.index.client_cert.as_deref().map(resolve),
        client_key: raw.index.client_key.as_deref().map(resolve),
        ca: raw.index.ca.as_deref().map(resolve),
        batch_size,
    };
    if index.client_cert.is_some() != index.client_key.is_some() {
        return Err(err(
            "[index] client_cert",
            "client_cert and client_key go together".into(),
        ));
    }

    let mut sources = Vec::new();
    for (i, s) in raw.sources.iter().enumerate() {
        let key = |k: &str| format!("[[sources]] #{} {k}", i + 1);
        let watch_mode = match s.watch_mode.as_deref().unwrap_or("notify") {
            "notify" => WatchMode::Notify,
            "poll" => WatchMode::Poll,
            other => {
                return Err(err(
                    &key("watch_mode"),
                    format!("\"{other}\" is not \"notify\" or \"poll\""),
                ))
            }
        };
        sources.push(SourceConfig {
            mapping: resolve(&s.mapping),
            watch: s.watch.as_deref().map(resolve),
            settle_secs: s.settle_secs.unwrap_or(10),
            watch_mode,
            rescan_secs: match s.rescan_secs.unwrap_or(60) {
                0 => return Err(err(&key("rescan_secs"), "must be at least 1".into())),
                n => n,
            },
        });
    }

    let mut returns = BTreeMap::new();
    for (name, r) in &raw.returns {
        let key = |k: &str| format!("[returns.{name}] {k}");
        let channel = match r.kind.as_str() {
            "folder" => {
                let p = r.path.as_deref().ok_or_else(|| {
                    err(&key("path"), "a folder return channel needs a path".into())
                })?;
                let format = match r.format.as_deref().unwrap_or("csv") {
                    "csv" => ReturnFormat::Csv,
                    "xml" => ReturnFormat::Xml,
                    "json" => ReturnFormat::Json,
                    other => {
                        return Err(err(
                            &key("format"),
                            format!("\"{other}\" is not csv, xml or json"),
                        ))
                    }
                };
                let delimiter = match r.delimiter.as_deref().unwrap_or(";") {
                    ";" => b';',
                    "," => b',',
                    other => {
                        return Err(err(
                            &key("delimiter"),
                            format!("\"{other}\" is not \";\" or \",\""),
                        ))
                    }
                };
                if r.ca.is_some() || r.client_cert.is_some() || r.client_key.is_some() {
                    return Err(err(
                        &key("ca"),
                        "ca, client_cert and client_key are for kind = \"http\"".into(),
                    ));
                }
                ReturnConfig::Folder {
                    path: resolve(p),
                    format,
                    delimiter,
                }
            }
            "http" => {
                let u = r
                    .url
                    .as_deref()
                    .ok_or_else(|| err(&key("url"), "an http return channel needs a url".into()))?;
                let url = url::Url::parse(u)
                    .map_err(|e| err(&key("url"), format!("\"{u}\" is not a URL: {e}")))?;
                check_transport(&url).map_err(|m| err(&key("url"), m))?;
                let identity = match (&r.client_cert, &r.client_key) {
                    (Some(c), Some(k)) => Some((resolve(c), resolve(k))),
                    (None, None) => None,
                    _ => {
                        return Err(err(
                            &key("client_cert"),
                            "client_cert and client_key go together".into(),
                        ))
                    }
                };
                ReturnConfig::Http {
                    url,
                    ca: r.ca.as_deref().map(resolve),
                    identity,
                }
            }
            other => {
                return Err(err(
                    &key("kind"),
                    format!("\"{other}\" is not \"folder\" or \"http\""),
                ))
            }
        };
        returns.insert(name.clone(), channel);
    }

    let cron_of = |k: &str, v: Option<&str>, default: &str| {
        let v = v.unwrap_or(default);
        cron::Schedule::from_str(v).map_err(|e| {
            err(
                k,
                format!(
                    "\"{v}\" is not a cron schedule (seconds first, e.g. \"0 30 2 * * *\"): {e}"
                ),
            )
        })
    };
    let schedule = Schedule {
        notices: cron_of(
            "[schedule] notices",
            raw.schedule.notices.as_deref(),
            "0 */5 * * * *",
        )?,
        reconcile: cron_of(
            "[schedule] reconcile",
            raw.schedule.reconcile.as_deref(),
            "0 30 2 * * *",
        )?,
    };

    let d = Rules::default();
    let rules = Rules {
        max_active_years: raw.rules.max_active_years.unwrap_or(d.max_active_years),
        archive_years: raw.rules.archive_years.unwrap_or(d.archive_years),
        age_limit: raw.rules.age_limit.unwrap_or(d.age_limit),
    };
    if !(1..=10).contains(&rules.max_active_years) {
        return Err(err(
            "[rules] max_active_years",
            format!("{} is outside 1..=10", rules.max_active_years),
        ));
    }
    if rules.archive_years > 20 {
        return Err(err(
            "[rules] archive_years",
            format!("{} is over 20", rules.archive_years),
        ));
    }
    if !(1..=30).contains(&rules.age_limit) {
        return Err(err(
            "[rules] age_limit",
            format!("{} is outside 1..=30", rules.age_limit),
        ));
    }

    let p = Policy::default();
    let policy = Policy {
        renewal_notice_days: raw
            .policy
            .renewal_notice_days
            .unwrap_or(p.renewal_notice_days),
        auto_renew: raw.policy.auto_renew.unwrap_or(p.auto_renew),
        max_withdraw_fraction: raw
            .policy
            .max_withdraw_fraction
            .unwrap_or(p.max_withdraw_fraction),
    };
    if !(0.0..=1.0).contains(&policy.max_withdraw_fraction) {
        return Err(err(
            "[policy] max_withdraw_fraction",
            format!("{} is outside 0.0..=1.0", policy.max_withdraw_fraction),
        ));
    }

    let listen = raw
        .http
        .listen
        .as_deref()
        .unwrap_or("127.0.0.1:9187")
        .trim();
    let http_listen = if listen.is_empty() {
        None
    } else {
        Some(listen.parse().map_err(|_| {
            err(
                "[http] listen",
                format!("\"{listen}\" is not an address such as 127.0.0.1:9187 (or \"\" for none)"),
            )
        })?)
    };
    let daemon = daemon_settings(&raw).map_err(|(k, m)| err(k, m))?;
    let log_level = match raw.log.level.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(l) => {
            tracing_subscriber::EnvFilter::try_new(l).map_err(|e| {
                err(
                    "[log] level",
                    format!("\"{l}\" is not a level such as info or visync=debug: {e}"),
                )
            })?;
            Some(l.to_string())
        }
    };
    let log_format = match raw.log.format.as_deref().unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(err(
                "[log] format",
                format!("\"{other}\" is not \"text\" or \"json\""),
            ))
        }
    };

    Ok(Config {
        path: path.to_path_buf(),
        organisation: Organisation {
            code,
            name: raw.organisation.name,
        },
        state,
        state_key_file: raw.state.key_file.as_deref().map(resolve),
        index,
        sources,
        returns,
        schedule,
        rules,
        policy,
        http_listen,
        log_format,
        log_level,
        daemon,
    })
}

/// The daemon's own settings, from the top level or `[daemon]` (not both).
fn daemon_settings(raw: &raw::RawConfig) -> Result<DaemonSettings, (&'static str, String)> {
    let either = |top: Option<u64>, section: Option<u64>, key: &'static str, default: u64| match (
        top, section,
    ) {
        (Some(_), Some(_)) => Err((
            key,
            "is set both at the top level and in [daemon]; keep one".to_string(),
        )),
        (Some(v), None) | (None, Some(v)) => Ok(v),
        (None, None) => Ok(default),
    };
    let grace = either(
        raw.shutdown_grace_secs,
        raw.daemon.shutdown_grace_secs,
        "shutdown_grace_secs",
        20,
    )?;
    let unhealthy = either(
        raw.unhealthy_after_secs,
        raw.daemon.unhealthy_after_secs,
        "unhealthy_after_secs",
        3600,
    )?;
    if unhealthy == 0 {
        return Err(("unhealthy_after_secs", "must be at least 1".into()));
    }
    Ok(DaemonSettings {
        shutdown_grace: std::time::Duration::from_secs(grace),
        unhealthy_after: std::time::Duration::from_secs(unhealthy),
    })
}

/// Plain HTTP only to loopback: anything else must use TLS.
fn check_transport(url: &url::Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(a)) => a.is_loopback(),
                Some(url::Host::Ipv6(a)) => a.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "plain http is allowed only to loopback addresses; use https for {url}"
                ))
            }
        }
        other => Err(format!("\"{other}\" is not http or https")),
    }
}

#[cfg(test)]
mod tests;
