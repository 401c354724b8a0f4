//! The router: which handler answers which route, the body limit, the chaos
//! layer on the chaotic routes, and the one layer every call passes (request
//! id and log line). Only the router: the handlers are in `v1.rs` (VI-API),
//! `national.rs` (the tier endpoint) and `sim.rs` (test extras); what they
//! share is in `state.rs`, `error.rs` and `request.rs`, which import nothing
//! from here, so nothing imports this module but `lib.rs`.
//!
//! Log lines carry the route template (never the path, which holds a
//! client-made id), the request id, the organisation code and counts. Never a
//! body, a token, a BSN or a name.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::chaos::{self, Chaos};
use crate::error::ApiError;
use crate::incoming::valid_id;
use crate::request::{route_of, MAX_BODY};
use crate::state::AppState;
use crate::tier::Role;
use crate::{national, sim, v1};

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The index's routes. `chaos` (`--chaos`) is layered on the `/v1` routes
/// except `/v1/health`; `/sim` is never chaotic.
pub fn router(state: Arc<AppState>, chaos: Option<Arc<Chaos>>) -> Router {
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
    let reads = writes
        .route("/v1/signals", get(v1::list))
        .route("/v1/notices", get(v1::notices));
    let chaotic = match chaos {
        Some(chaos) => reads.layer(middleware::from_fn_with_state(chaos, chaos::layer)),
        None => reads,
    };
    Router::new()
        .route("/v1/health", get(v1::health))
        .route("/sim/clock", get(sim::get_clock).post(sim::set_clock))
        .route("/sim/stats", get(sim::stats))
        .route("/sim/tier", get(sim::tier_status))
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

/// Any other path.
async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
