//! `[[sources]]` and `[returns.NAME]`: each source's mapping and drop
//! folder with their defaults, and each return channel with the keys its
//! kind takes, and no others.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::endpoints::remote_url;
use super::{invalid, raw, Invalid, ReturnConfig, ReturnFormat, SourceConfig, WatchMode};

/// `[[sources]]`: the mapping and drop folder of each, with the defaults.
pub(super) fn sources(
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
pub(super) fn returns(
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
