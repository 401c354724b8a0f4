//! The service's own settings: `[organisation]`, `[http] listen`, `[log]
//! level`, and the daemon's (top level or `[daemon]`).

use std::net::SocketAddr;

use super::{invalid, raw, DaemonSettings, Invalid, Organisation};

/// The organisation's code: the index knows us by it, so it cannot be blank.
pub(super) fn organisation(raw: &raw::RawOrganisation) -> Result<Organisation, Invalid> {
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

/// `[http] listen`: an address, or `""` for no endpoint.
pub(super) fn http_listen(raw: &raw::RawHttp) -> Result<Option<SocketAddr>, Invalid> {
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
pub(super) fn log_level(raw: &raw::RawLog) -> Result<Option<String>, Invalid> {
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
pub(super) fn daemon_settings(
    raw: &raw::RawConfig,
) -> Result<DaemonSettings, (&'static str, String)> {
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
