//! The VI-API v1 handlers: register, withdraw, renew, list, notices,
//! health. Each checks its request, calls the store once and shapes the
//! answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{bad_request, ApiError};
use crate::incoming::{self, valid_id};
use crate::request::{one_string, signals_body, Org};
use crate::state::AppState;
use crate::store::{ItemResult, StoreError};
use crate::vocab::WithdrawReason;

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// `POST /v1/signals:batch`: each item checked on its own, all applied in
/// one transaction, one result per item in order.
pub async fn batch(
    State(st): State<Arc<AppState>>,
    Org(org): Org,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let signals = signals_body(body)?;
    let ctx = st.ctx();
    let items = signals
        .iter()
        .map(|i| incoming::parse_item(i, ctx.today, &ctx.rules))
        .collect();
    let results = st.store.batch(&ctx, &org, items).await?;
    st.changed();
    let mut counts = [0usize; 5];
    let out: Vec<Value> = results
        .iter()
        .map(|r| match r {
            ItemResult::Created(id) => {
                counts[0] += 1;
                json!({"signal_id": id, "status": "created"})
            }
            ItemResult::Unchanged(id) => {
                counts[1] += 1;
                json!({"signal_id": id, "status": "unchanged"})
            }
            ItemResult::Updated(id) => {
                counts[2] += 1;
                json!({"signal_id": id, "status": "updated"})
            }
            ItemResult::Rejected { signal_id, error } => {
                counts[3] += 1;
                json!({"signal_id": signal_id, "status": "rejected",
                       "error": {"code": error.code, "message": error.message}})
            }
            ItemResult::Conflict {
                signal_id,
                existing,
            } => {
                counts[4] += 1;
                json!({"signal_id": signal_id, "status": "conflict",
                       "existing_signal_id": existing})
            }
        })
        .collect();
    let [created, unchanged, updated, rejected, conflict] = counts;
    tracing::info!(org, created, unchanged, updated, rejected, conflict, "batch");
    Ok(Json(json!({"results": out})))
}

fn known_id(id: &str) -> Result<(), ApiError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(StoreError::NotFound.into())
    }
}

/// `POST /v1/signals/{id}/withdraw`: idempotent, since a client retries
/// after a lost answer.
pub async fn withdraw(
    State(st): State<Arc<AppState>>,
    Org(org): Org,
    Path(signal_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    known_id(&signal_id)?;
    let Some(reason) = WithdrawReason::parse(&one_string(body, "reason")?) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "reason_invalid",
            "reason: one of risk_ended, unjustified, objection, deceased",
        ));
    };
    let state = st
        .store
        .withdraw(&st.ctx(), &org, &signal_id, reason)
        .await?;
    st.changed();
    tracing::info!(org, signal_id, reason = reason.as_str(), state, "withdraw");
    Ok(Json(json!({"signal_id": signal_id, "state": state})))
}

/// `POST /v1/signals/{id}/renew`: a new end date for an active signal, within
/// `window::renew_max`.
pub async fn renew(
    State(st): State<Arc<AppState>>,
    Org(org): Org,
    Path(signal_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    known_id(&signal_id)?;
    let end = one_string(body, "end_date")?;
    let end = NaiveDate::parse_from_str(&end, "%Y-%m-%d")
        .map_err(|_| bad_request("end_date: not a YYYY-MM-DD date"))?;
    let end = st.store.renew(&st.ctx(), &org, &signal_id, end).await?;
    st.changed();
    tracing::info!(org, signal_id, %end, "renew");
    Ok(Json(
        json!({"signal_id": signal_id, "end_date": end.to_string(), "state": "active"}),
    ))
}

/// `GET /v1/health`: no token, never chaotic.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[derive(Deserialize)]
pub struct ListParams {
    state: Option<String>,
    page_size: Option<String>,
    page_token: Option<String>,
}

/// A positive count no larger than `MAX_PAGE`, or the default.
fn count(raw: Option<&str>, name: &str) -> Result<u32, ApiError> {
    match raw {
        None => Ok(DEFAULT_PAGE),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(bad_request(format!(
                "{name}: a number from 1 to {MAX_PAGE}"
            ))),
        },
    }
}

/// A page token or cursor: the internal sequence number as text.
fn position(raw: Option<&str>, name: &str) -> Result<i64, ApiError> {
    match raw {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad_request(format!("{name}: not one this index gave out"))),
    }
}

/// `GET /v1/signals`: the organisation's own signals, paged by internal id.
pub async fn list(
    State(st): State<Arc<AppState>>,
    Org(org): Org,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|_| bad_request("bad query string"))?;
    let state = match q.state.as_deref() {
        None | Some("all") => None,
        Some(s @ ("active" | "archived")) => Some(s),
        Some(_) => return Err(bad_request("state: active, archived or all")),
    };
    let limit = count(q.page_size.as_deref(), "page_size")?;
    let after = position(q.page_token.as_deref(), "page_token")?;
    let (rows, more) = st.store.list(&st.ctx(), &org, state, after, limit).await?;
    let next = more
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    let signals: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({"signal_id": r.signal_id, "professional_id": r.professional_id,
                   "start_date": r.start_date, "end_date": r.end_date, "state": r.state})
        })
        .collect();
    Ok(Json(json!({"signals": signals, "next_page_token": next})))
}

#[derive(Deserialize)]
pub struct NoticeParams {
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /v1/notices`: the organisation's notices after a cursor, oldest
/// first; `next_cursor` stays put when there is nothing new.
pub async fn notices(
    State(st): State<Arc<AppState>>,
    Org(org): Org,
    q: Result<Query<NoticeParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|_| bad_request("bad query string"))?;
    let limit = count(q.limit.as_deref(), "limit")?;
    let after = position(q.after.as_deref(), "after")?;
    let rows = st.store.notices(&st.ctx(), &org, after, limit).await?;
    let next = rows.last().map_or(after, |n| n.seq).to_string();
    let out: Vec<Value> = rows
        .into_iter()
        .map(|n| {
            let counterparts: Value =
                serde_json::from_str(&n.counterparts).unwrap_or_else(|_| json!([]));
            json!({"notice_id": n.notice_id, "cursor": n.seq.to_string(), "kind": n.kind,
                   "signal_id": n.signal_id, "created_at": n.created_at,
                   "counterparts": counterparts})
        })
        .collect();
    Ok(Json(json!({"notices": out, "next_cursor": next})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_positions_are_bounded() {
        assert_eq!(count(None, "limit").unwrap(), DEFAULT_PAGE);
        assert_eq!(count(Some("1000"), "limit").unwrap(), 1000);
        assert!(count(Some("0"), "limit").is_err());
        assert!(count(Some("1001"), "limit").is_err());
        assert_eq!(position(Some(""), "after").unwrap(), 0);
        assert_eq!(position(Some("42"), "after").unwrap(), 42);
        assert!(position(Some("-1"), "after").is_err());
        assert!(position(Some("abc"), "after").is_err());
    }
}
