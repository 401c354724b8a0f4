//! The daemon's config (`visync.toml`): read as TOML, overridden from the
//! environment (`VISYNC_INDEX__URL=...`), then validated into types. After
//! loading, no code holds a raw string where a path, URL, schedule or number
//! belongs. Relative paths are relative to the config file's folder.

mod raw;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::domain::Rules;
use crate::located::{FileKind, LocatedError};
use crate::plan::Policy;

pub const DEFAULT_PATH: &str = "/etc/visync/visync.toml";

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

/// The organisation's code: the index knows us by it, so it cannot be blank.
fn organisation(raw: &raw::RawOrganisation) -> Result<Organisation, Invalid> {
    let code = raw.code.trim().to_string();
    if code.is_empty() || code.contains(char::is_whitespace) {
        return invalid(
            "[organisation] code",
            "must be the code the index knows this organisation by",
        );
    }
    Ok(Organisation {
        code,
        name: raw.name.clone(),
    })
}

/// `sqlite://PATH` (relative to the config's folder) or a PostgreSQL URL.
fn state_url(raw: &raw::RawState, resolve: &dyn Fn(&str) -> PathBuf) -> Result<StateUrl, Invalid> {
    let u = raw
        .url
        .as_deref()
        .unwrap_or("sqlite:///var/lib/visync/state.db");
    if u.starts_with("postgres://") || u.starts_with("postgresql://") {
        return Ok(StateUrl::Postgres(u.to_string()));
    }
    match u
        .strip_prefix("sqlite://")
        .or_else(|| u.strip_prefix("sqlite:"))
    {
        Some(p) if !p.is_empty() => Ok(StateUrl::Sqlite(resolve(p))),
        _ => invalid(
            "[state] url",
            format!("\"{u}\" is not sqlite://PATH or postgres://..."),
        ),
    }
}

/// `[index]`: where the index is, how we prove who we are, how much per call.
fn index(raw: &raw::RawIndex, resolve: &dyn Fn(&str) -> PathBuf) -> Result<IndexConfig, Invalid> {
    let url = match raw.url.as_deref().unwrap_or("embedded") {
        "embedded" => IndexUrl::Embedded,
        u => IndexUrl::Remote(remote_url("[index] url", u)?),
    };
    let batch_size = raw.batch_size.unwrap_or(200);
    if !(1..=500).contains(&batch_size) {
        return invalid(
            "[index] batch_size",
            format!("{batch_size} is outside 1..=500 (the index takes at most 500)"),
        );
    }
    if raw.client_cert.is_some() != raw.client_key.is_some() {
        return invalid(
            "[index] client_cert",
            "client_cert and client_key go together",
        );
    }
    Ok(IndexConfig {
        url,
        token_file: raw.token_file.as_deref().map(resolve),
        client_cert: raw.client_cert.as_deref().map(resolve),
        client_key: raw.client_key.as_deref().map(resolve),
        ca: raw.ca.as_deref().map(resolve),
        batch_size,
    })
}

/// A URL that visync will talk to: parsed, and TLS unless it is loopback.
fn remote_url(key: &str, u: &str) -> Result<url::Url, Invalid> {
    let url =
        url::Url::parse(u).map_err(|e| (key.to_string(), format!("\"{u}\" is not a URL: {e}")))?;
    check_transport(&url).map_err(|m| (key.to_string(), m))?;
    Ok(url)
}

/// `[[sources]]`: the mapping and drop folder of each, with the defaults.
fn sources(
    raw: &[raw::RawSource],
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<Vec<SourceConfig>, Invalid> {
    let mut sources = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let rescan_secs = match s.rescan_secs.unwrap_or(60) {
            0 => {
                return invalid(
                    format!("[[sources]] #{} rescan_secs", i + 1),
                    "must be at least 1",
                )
            }
            n => n,
        };
        sources.push(SourceConfig {
            mapping: resolve(&s.mapping),
            watch: s.watch.as_deref().map(resolve),
            settle_secs: s.settle_secs.unwrap_or(10),
            watch_mode: s.watch_mode.unwrap_or(WatchMode::Notify),
            rescan_secs,
        });
    }
    Ok(sources)
}

/// `[returns.NAME]`: each channel with the keys its kind takes, and no others.
fn returns(
    raw: &BTreeMap<String, raw::RawReturn>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<BTreeMap<String, ReturnConfig>, Invalid> {
    let mut returns = BTreeMap::new();
    for (name, r) in raw {
        let key = |k: &str| format!("[returns.{name}] {k}");
        let channel = match r.kind {
            raw::ReturnKind::Folder => folder_return(r, &key, resolve)?,
            raw::ReturnKind::Http => http_return(r, &key, resolve)?,
        };
        returns.insert(name.clone(), channel);
    }
    Ok(returns)
}

/// A folder channel: a path, a format and a delimiter; no TLS keys.
fn folder_return(
    r: &raw::RawReturn,
    key: &dyn Fn(&str) -> String,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<ReturnConfig, Invalid> {
    let Some(p) = r.path.as_deref() else {
        return invalid(key("path"), "a folder return channel needs a path");
    };
    let delimiter = match r.delimiter.as_deref().unwrap_or(";") {
        ";" => b';',
        "," => b',',
        other => {
            return invalid(
                key("delimiter"),
                format!("\"{other}\" is not \";\" or \",\""),
            )
        }
    };
    if r.ca.is_some() || r.client_cert.is_some() || r.client_key.is_some() {
        return invalid(
            key("ca"),
            "ca, client_cert and client_key are for kind = \"http\"",
        );
    }
    Ok(ReturnConfig::Folder {
        path: resolve(p),
        format: r.format.unwrap_or(ReturnFormat::Csv),
        delimiter,
    })
}

/// An HTTP channel: a URL (TLS unless loopback), a CA, a client identity.
fn http_return(
    r: &raw::RawReturn,
    key: &dyn Fn(&str) -> String,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<ReturnConfig, Invalid> {
    let Some(u) = r.url.as_deref() else {
        return invalid(key("url"), "an http return channel needs a url");
    };
    let url = remote_url(&key("url"), u)?;
    let identity = match (&r.client_cert, &r.client_key) {
        (Some(c), Some(k)) => Some((resolve(c), resolve(k))),
        (None, None) => None,
        _ => return invalid(key("client_cert"), "client_cert and client_key go together"),
    };
    Ok(ReturnConfig::Http {
        url,
        ca: r.ca.as_deref().map(resolve),
        identity,
    })
}

/// `[schedule]`: cron expressions, seconds first, with the spec's defaults.
fn schedule(raw: &raw::RawSchedule) -> Result<Schedule, Invalid> {
    let cron_of = |k: &str, v: Option<&str>, default: &str| {
        let v = v.unwrap_or(default);
        cron::Schedule::from_str(v).map_err(|e| {
            (
                k.to_string(),
                format!(
                    "\"{v}\" is not a cron schedule (seconds first, e.g. \"0 30 2 * * *\"): {e}"
                ),
            )
        })
    };
    Ok(Schedule {
        notices: cron_of(
            "[schedule] notices",
            raw.notices.as_deref(),
            "0 */5 * * * *",
        )?,
        reconcile: cron_of(
            "[schedule] reconcile",
            raw.reconcile.as_deref(),
            "0 30 2 * * *",
        )?,
    })
}

/// `[rules]`: the region's periods, within the bounds the law allows.
fn rules(raw: &raw::RawRules) -> Result<Rules, Invalid> {
    let d = Rules::default();
    let rules = Rules {
        max_active_years: raw.max_active_years.unwrap_or(d.max_active_years),
        archive_years: raw.archive_years.unwrap_or(d.archive_years),
        age_limit: raw.age_limit.unwrap_or(d.age_limit),
    };
    if !(1..=10).contains(&rules.max_active_years) {
        return invalid(
            "[rules] max_active_years",
            format!("{} is outside 1..=10", rules.max_active_years),
        );
    }
    if rules.archive_years > 20 {
        return invalid(
            "[rules] archive_years",
            format!("{} is over 20", rules.archive_years),
        );
    }
    if !(1..=30).contains(&rules.age_limit) {
        return invalid(
            "[rules] age_limit",
            format!("{} is outside 1..=30", rules.age_limit),
        );
    }
    Ok(rules)
}

/// Retention of what the law's periods do not cover (`[rules]`,
/// reconcile.md): delivered notices and the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Delivered (and unroutable) notices are purged this many days after.
    pub notice_days: u32,
    /// Audit events are purged this many years after, oldest first.
    pub audit_years: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            notice_days: 90,
            audit_years: 7,
        }
    }
}

/// `[rules] notice_days` and `audit_years`: a notice must stay long enough
/// for a CMS to import it (at least a day), the trail at least a year.
fn retention(raw: &raw::RawRules) -> Result<Retention, Invalid> {
    let d = Retention::default();
    let r = Retention {
        notice_days: raw.notice_days.unwrap_or(d.notice_days),
        audit_years: raw.audit_years.unwrap_or(d.audit_years),
    };
    if !(1..=3650).contains(&r.notice_days) {
        return invalid(
            "[rules] notice_days",
            format!(
                "{} is outside 1..=3650: give the days a delivered notice is kept",
                r.notice_days
            ),
        );
    }
    if !(1..=50).contains(&r.audit_years) {
        return invalid(
            "[rules] audit_years",
            format!(
                "{} is outside 1..=50: give the years the audit trail is kept",
                r.audit_years
            ),
        );
    }
    Ok(r)
}

/// `[policy]`: renewal and the withdrawal guard.
fn policy(raw: &raw::RawPolicy) -> Result<Policy, Invalid> {
    let p = Policy::default();
    let policy = Policy {
        renewal_notice_days: raw.renewal_notice_days.unwrap_or(p.renewal_notice_days),
        auto_renew: raw.auto_renew.unwrap_or(p.auto_renew),
        max_withdraw_fraction: raw.max_withdraw_fraction.unwrap_or(p.max_withdraw_fraction),
    };
    if !(0.0..=1.0).contains(&policy.max_withdraw_fraction) {
        return invalid(
            "[policy] max_withdraw_fraction",
            format!("{} is outside 0.0..=1.0", policy.max_withdraw_fraction),
        );
    }
    Ok(policy)
}

/// `[http] listen`: an address, or `""` for no endpoint.
fn http_listen(raw: &raw::RawHttp) -> Result<Option<SocketAddr>, Invalid> {
    let listen = raw.listen.as_deref().unwrap_or("127.0.0.1:9187").trim();
    if listen.is_empty() {
        return Ok(None);
    }
    listen.parse().map(Some).map_err(|_| {
        (
            "[http] listen".to_string(),
            format!("\"{listen}\" is not an address such as 127.0.0.1:9187 (or \"\" for none)"),
        )
    })
}

/// `[log] level`: checked as the filter directive it will become.
fn log_level(raw: &raw::RawLog) -> Result<Option<String>, Invalid> {
    match raw.level.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(l) => match tracing_subscriber::EnvFilter::try_new(l) {
            Ok(_) => Ok(Some(l.to_string())),
            Err(e) => invalid(
                "[log] level",
                format!("\"{l}\" is not a level such as info or visync=debug: {e}"),
            ),
        },
    }
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
pub(crate) fn check_transport(url: &url::Url) -> Result<(), String> {
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
