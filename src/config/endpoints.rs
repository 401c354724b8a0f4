//! `[state]` and `[index]`: where the state store and the index are, and
//! how visync proves who it is. A URL visync talks to is TLS unless it is
//! loopback (`check_transport`, also the return channels' and the API
//! sources').

use std::path::PathBuf;

use super::{invalid, raw, IndexConfig, IndexUrl, Invalid, PgState, StateUrl};

/// `sqlite://PATH` (relative to the config's folder) or a PostgreSQL URL.
pub(super) fn state_url(
    raw: &raw::RawState,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<StateUrl, Invalid> {
    let u = raw
        .url
        .as_deref()
        .unwrap_or("sqlite:///var/lib/visync/state.db");
    if u.starts_with("postgres://") || u.starts_with("postgresql://") {
        return postgres(raw, u, resolve);
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

/// `postgres://user@host/db`: the password comes from `[state]
/// password_file`, never from the URL (which is logged, and lives in a file
/// readable by more than the service); the key file is named, since there is
/// no database file for it to sit beside.
fn postgres(
    raw: &raw::RawState,
    u: &str,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<StateUrl, Invalid> {
    let key = "[state] url";
    let url = url::Url::parse(u).map_err(|e| (key.to_string(), format!("is not a URL: {e}")))?;
    if url.password().is_some() {
        return invalid(
            key,
            "holds a password; put it in a file and name that file in [state] password_file",
        );
    }
    if raw.key_file.is_none() {
        return invalid(
            "[state] key_file",
            "is required with PostgreSQL: the one subject key file every instance reads",
        );
    }
    let lease_secs = raw.lease_secs.unwrap_or(super::DEFAULT_LEASE_SECS);
    if !(10..=3600).contains(&lease_secs) {
        return invalid(
            "[state] lease_secs",
            format!("{lease_secs} is outside 10..=3600"),
        );
    }
    let pg = PgState {
        url,
        password_file: raw.password_file.as_deref().map(resolve),
        ca: raw.ca.as_deref().map(resolve),
        lease_secs,
    };
    let weak = pg
        .url
        .query_pairs()
        .any(|(k, v)| k == "sslmode" && v != "verify-full");
    if weak && !pg.loopback() {
        return invalid(
            key,
            "a server that is not on this host is reached with sslmode=verify-full only; \
             leave sslmode out",
        );
    }
    Ok(StateUrl::Postgres(pg))
}

/// `[index]`: where the index is, how we prove who we are, how much per call.
pub(super) fn index(
    raw: &raw::RawIndex,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<IndexConfig, Invalid> {
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
pub(super) fn remote_url(key: &str, u: &str) -> Result<url::Url, Invalid> {
    let url =
        url::Url::parse(u).map_err(|e| (key.to_string(), format!("\"{u}\" is not a URL: {e}")))?;
    check_transport(&url).map_err(|m| (key.to_string(), m))?;
    Ok(url)
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
