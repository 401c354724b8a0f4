//! What the handlers read from a request: the calling organisation (from its
//! bearer token), bodies within the protocol's limits, and the route a path
//! belongs to (for log lines).
//!
//! Its own module so that the handlers (`v1.rs`, `national.rs`, `sim.rs`)
//! and the chaos layer share it without importing the router, which imports
//! them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde_json::Value;

use crate::error::{bad_request, ApiError};
use crate::state::AppState;

/// Room for 500 signals with long names, and no more.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// The protocol's batch limit (and the tier link's).
pub const MAX_BATCH: usize = 500;

/// A body that could not be read: too large (`413`) or broken (`400`).
pub fn body_error(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("the body is over {MAX_BODY} bytes"),
        )
    } else {
        bad_request("the body could not be read")
    }
}

/// A JSON object body with exactly the one key `key`, a string.
pub fn one_string(body: Result<Bytes, BytesRejection>, key: &str) -> Result<String, ApiError> {
    let body = body.map_err(body_error)?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|_| bad_request("the body is not JSON"))?;
    match v.as_object() {
        Some(o) if o.len() == 1 => o.get(key).and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
    .ok_or_else(|| bad_request(format!("expected {{\"{key}\": \"...\"}}")))
}

/// A body of exactly `{"signals": [...]}` with at most `MAX_BATCH` items.
pub fn signals_body(body: Result<Bytes, BytesRejection>) -> Result<Vec<Value>, ApiError> {
    let body = body.map_err(body_error)?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|_| bad_request("the body is not JSON"))?;
    let signals = match v {
        Value::Object(mut o) if o.len() == 1 => match o.remove("signals") {
            Some(Value::Array(a)) => Some(a),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| bad_request("expected {\"signals\": [...]}"))?;
    if signals.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("{} signals; at most {MAX_BATCH} per call", signals.len()),
        ));
    }
    Ok(signals)
}

/// The calling organisation, from its bearer token.
pub struct Org(pub String);

impl FromRequestParts<Arc<AppState>> for Org {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match token.and_then(|t| state.tokens.get(t)) {
            Some(code) => Ok(Org(code.clone())),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send Authorization: Bearer with a token given to --org",
            )),
        }
    }
}

/// The route a path belongs to, for logs: the path itself holds a
/// client-made id, which could be anything.
pub fn route_of(path: &str) -> &'static str {
    const FIXED: &[&str] = &[
        "/v1/signals:batch",
        "/v1/tier/signals:sync",
        "/v1/signals",
        "/v1/notices",
        "/v1/health",
        "/sim/clock",
        "/sim/stats",
        "/sim/tier",
    ];
    if let Some(r) = FIXED.iter().find(|r| **r == path) {
        return r;
    }
    match path.strip_prefix("/v1/signals/") {
        Some(rest) if rest.ends_with("/withdraw") => "/v1/signals/{signal_id}/withdraw",
        Some(rest) if rest.ends_with("/renew") => "/v1/signals/{signal_id}/renew",
        _ => "(other)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_name_the_route_not_the_id() {
        assert_eq!(route_of("/v1/signals:batch"), "/v1/signals:batch");
        assert_eq!(
            route_of("/v1/signals/999990019/withdraw"),
            "/v1/signals/{signal_id}/withdraw"
        );
        assert_eq!(
            route_of("/v1/signals/s-1/renew"),
            "/v1/signals/{signal_id}/renew"
        );
        assert_eq!(route_of("/v1/signals/999990019"), "(other)");
        assert_eq!(route_of("/sim/stats"), "/sim/stats");
        assert_eq!(route_of("/sim/tier"), "/sim/tier");
        assert_eq!(route_of("/v1/tier/signals:sync"), "/v1/tier/signals:sync");
    }
}
