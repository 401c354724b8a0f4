//! The test extras (`/sim`, docs/index-sim.md): the index's clock, its
//! counters and the tier link's state. No token needed; never chaotic.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::clock::Clock;
use crate::error::{bad_request, ApiError};
use crate::request::one_string;
use crate::state::AppState;

/// `GET /sim/clock`.
pub async fn get_clock(State(st): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"today": st.ctx().today.to_string()}))
}

/// `POST /sim/clock`: fixes the sim's date and applies what the new date
/// implies at once.
pub async fn set_clock(
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

/// `GET /sim/stats`.
pub async fn stats(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let s = st.store.stats(&st.ctx()).await?;
    Ok(Json(json!(s)))
}

/// The tier and, on a regional index with `--upstream`, the link: changes
/// still to forward, the national index's notice cursor and the last
/// failure (`null` once a round went through).
#[derive(serde::Deserialize)]
pub struct TierQuery {
    after_round: Option<u64>,
}

/// How long `/sim/tier?after_round=N` waits for the link's next round: longer
/// than its idle look and its longest backoff (`upstream.rs`).
const ROUND_WAIT: Duration = Duration::from_secs(10);

/// `GET /sim/tier`: the link's state. With `?after_round=N` it first waits
/// (at most `ROUND_WAIT`) until round N+1 has ended, so that a test can wait
/// for the link's next look instead of polling; `rounds` says how many have.
pub async fn tier_status(
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
