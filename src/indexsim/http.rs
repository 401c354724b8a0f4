//! The HTTP face of the reference index: state, errors, authentication, the
//! router and its middleware, and the test extras (`/sim`). The VI-API
//! handlers are in `v1.rs`, the national index's tier endpoint in
//! `national.rs`; the rules live in `incoming`, `tier` and `store`.
//!
//! Log lines carry the route template (never the path, which holds a
//! client-made id), the request id, the organisation code and counts. Never a
//! body, a token, a BSN or a name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde_json::{json, Value};

use super::chaos::{self, Chaos};
use super::incoming::valid_id;
use super::national;
use super::store::{Ctx, Store, StoreError};
use super::tier::Role;
use super::upstream::LinkStatus;
use super::v1;
use crate::clock::Clock;
use crate::domain::Rules;

/// Room for 500 signals with long names, and no more.
const MAX_BODY: usize = 4 * 1024 * 1024;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct AppState {
    pub store: Store,
    /// Bearer token → organisation code (on a national index: region code).
    pub tokens: HashMap<String, String>,
    /// The sim's clock: the system date unless `--clock` or `/sim/clock` fixed
    /// it.
    pub clock: Mutex<Clock>,
    pub rules: Rules,
    pub chaos: Option<Chaos>,
    pub role: Role,
    /// A regional index's link to its national index (`--upstream`).
    pub link: Option<Arc<LinkStatus>>,
}

impl AppState {
    pub fn ctx(&self) -> Ctx {
        let clock = *self.clock.lock().unwrap_or_else(|p| p.into_inner());
        Ctx {
            today: clock.today(),
            now: clock.now(),
            rules: self.rules,
            role: self.role,
        }
    }

    /// Call after a change was committed: wakes the link to the national
    /// index, if any, so that it forwards now rather than at its next look.
    pub fn changed(&self) {
        if let Some(link) = &self.link {
            link.kick.notify_one();
        }
    }
}

/// An error answer: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            StoreError::NotActive => {
                ApiError::new(StatusCode::CONFLICT, "not_active", e.to_string())
            }
            StoreError::EndDate(m) => ApiError::new(StatusCode::BAD_REQUEST, "end_date_too_far", m),
            other => {
                tracing::error!(error = %other, "store");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the index store failed; retry later",
                )
            }
        }
    }
}

pub(super) fn body_error(r: BytesRejection) -> ApiError {
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

pub fn router(state: Arc<AppState>) -> Router {
    // Organisations write to a regional index; regions write to a national
    // one. Reading (own signals, notices) is the same on both.
    let writes = match state.role {
        Role::Regional => Router::new()
            .route("/v1/signals:batch", post(v1::batch))
            .route("/v1/signals/{signal_id}/withdraw", post(v1::withdraw))
            .route("/v1/signals/{signal_id}/renew", post(v1::renew)),
        Role::National => Router::new()
            .route("/v1/tier/signals:sync", post(national::sync))
            .route("/v1/signals:batch", post(national::not_here))
            .route("/v1/signals/{signal_id}/withdraw", post(national::not_here))
            .route("/v1/signals/{signal_id}/renew", post(national::not_here)),
    };
    let chaotic = writes
        .route("/v1/signals", get(v1::list))
        .route("/v1/notices", get(v1::notices))
        .layer(middleware::from_fn_with_state(state.clone(), chaos::layer));
    Router::new()
        .route("/v1/health", get(health))
        .route("/sim/clock", get(get_clock).post(set_clock))
        .route("/sim/stats", get(stats))
        .route("/sim/tier", get(tier_status))
        .merge(chaotic)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Echoes `X-Request-Id` (or makes one) and logs one line per call.
async fn request_id(req: Request, next: Next) -> Response {
    let id = req.headers().get(&REQUEST_ID).cloned().unwrap_or_else(|| {
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .unwrap_or(HeaderValue::from_static("-"))
    });
    let route = route_of(req.uri().path());
    let method = req.method().clone();
    let started = Instant::now();
    let mut resp = next.run(req).await;
    // A client could put anything in the header; only an id-shaped one is
    // logged.
    let shown = id.to_str().ok().filter(|s| valid_id(s)).unwrap_or("-");
    tracing::info!(
        request_id = shown,
        %method,
        route,
        status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    resp.headers_mut().insert(REQUEST_ID.clone(), id);
    resp
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

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// A JSON object body with exactly the one key `key`, a string.
pub(super) fn one_string(
    body: Result<Bytes, BytesRejection>,
    key: &str,
) -> Result<String, ApiError> {
    let body = body.map_err(body_error)?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|_| bad_request("the body is not JSON"))?;
    match v.as_object() {
        Some(o) if o.len() == 1 => o.get(key).and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
    .ok_or_else(|| bad_request(format!("expected {{\"{key}\": \"...\"}}")))
}

async fn get_clock(State(st): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"today": st.ctx().today.to_string()}))
}

/// Fixes the sim's date and applies what the new date implies at once.
async fn set_clock(
    State(st): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let today = one_string(body, "today")?;
    let today = NaiveDate::parse_from_str(&today, "%Y-%m-%d")
        .map_err(|_| bad_request("today: not a YYYY-MM-DD date"))?;
    *st.clock.lock().unwrap_or_else(|p| p.into_inner()) = Clock::on(today);
    st.store.sweep(&st.ctx()).await?;
    st.changed();
    tracing::info!(%today, "clock set");
    Ok(Json(json!({"today": today.to_string()})))
}

async fn stats(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let s = st.store.stats(&st.ctx()).await?;
    Ok(Json(json!(s)))
}

/// The tier and, on a regional index with `--upstream`, the link: changes
/// still to forward, the national index's notice cursor and the last
/// failure (`null` once a round went through).
#[derive(serde::Deserialize)]
struct TierQuery {
    after_round: Option<u64>,
}

/// How long `/sim/tier?after_round=N` waits for the link's next round: longer
/// than its idle look (`POLL`) and its longest backoff.
const ROUND_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The link's state. With `?after_round=N` it first waits (at most
/// `ROUND_WAIT`) until round N+1 has ended, so that a test can wait for the
/// link's next look instead of polling; `rounds` says how many have.
async fn tier_status(
    State(st): State<Arc<AppState>>,
    Query(q): Query<TierQuery>,
) -> Result<Json<Value>, ApiError> {
    let link = st.link.as_ref();
    if let (Some(link), Some(after)) = (link, q.after_round) {
        let mut rounds = link.rounds.subscribe();
        // A timeout answers with the state as it is; the caller sees the
        // count has not moved.
        let _ = tokio::time::timeout(ROUND_WAIT, rounds.wait_for(|n| *n > after)).await;
    }
    let (queued, cursor) = st.store.link_status().await?;
    Ok(Json(json!({
        "role": st.role.as_str(),
        "upstream": link.map(|l| l.upstream.to_string()),
        "forward_queue": queued,
        "notice_cursor": cursor,
        "last_error": link.and_then(|l| l.last_error()),
        "rounds": link.map(|l| *l.rounds.borrow()),
    })))
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
