//! The config file as written: every key optional where the spec gives a
//! default, unknown keys refused, and every closed set of words (`watch_mode`,
//! a return channel's `kind` and `format`, the log `format`) an enum, so that
//! serde refuses a wrong one with its line and the values it takes.
//! `super::validate` turns the rest into types.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{LogFormat, ReturnFormat, WatchMode};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub organisation: RawOrganisation,
    #[serde(default)]
    pub state: RawState,
    #[serde(default)]
    pub index: RawIndex,
    #[serde(default)]
    pub sources: Vec<RawSource>,
    #[serde(default)]
    pub returns: BTreeMap<String, RawReturn>,
    #[serde(default)]
    pub schedule: RawSchedule,
    #[serde(default)]
    pub rules: RawRules,
    #[serde(default)]
    pub policy: RawPolicy,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub log: RawLog,
    /// The daemon's own settings (daemon.md names them without a section):
    /// accepted at the top level and in `[daemon]`, where an environment
    /// override can reach them (`VISYNC_DAEMON__SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace_secs: Option<u64>,
    pub unhealthy_after_secs: Option<u64>,
    #[serde(default)]
    pub daemon: RawDaemon,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub shutdown_grace_secs: Option<u64>,
    pub unhealthy_after_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrganisation {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    pub url: Option<String>,
    pub key_file: Option<String>,
    pub password_file: Option<String>,
    pub ca: Option<String>,
    pub lease_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIndex {
    pub url: Option<String>,
    pub token_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub ca: Option<String>,
    pub batch_size: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub mapping: String,
    pub watch: Option<String>,
    pub settle_secs: Option<u64>,
    pub watch_mode: Option<WatchMode>,
    pub rescan_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReturn {
    pub kind: ReturnKind,
    pub path: Option<String>,
    pub url: Option<String>,
    pub format: Option<ReturnFormat>,
    pub delimiter: Option<String>,
    pub ca: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

/// Where a return channel delivers: the other keys it takes follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReturnKind {
    Folder,
    Http,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub notices: Option<String>,
    pub reconcile: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRules {
    pub max_active_years: Option<u32>,
    pub archive_years: Option<u32>,
    pub age_limit: Option<u32>,
    /// Delivered notices are kept this many days (reconcile.md).
    pub notice_days: Option<u32>,
    /// The audit trail is kept this many years (reconcile.md).
    pub audit_years: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub renewal_notice_days: Option<u32>,
    pub auto_renew: Option<bool>,
    pub max_withdraw_fraction: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<LogFormat>,
    pub level: Option<String>,
}
