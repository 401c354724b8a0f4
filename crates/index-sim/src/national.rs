//! The national index's HTTP face for the regions: `POST
//! /v1/tier/signals:sync`, where a regional index forwards its signals'
//! states (`tier.rs`, applied by `store/national.rs`). The regions read
//! their notices through the ordinary `GET /v1/notices` and may reconcile
//! through `GET /v1/signals`; an organisation's writes have no place here.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::request::{signals_body, Org};
use crate::state::AppState;
use crate::store::TierResult;
use crate::tier;

/// `POST /v1/tier/signals:sync`: each item checked on its own, all applied in
/// one transaction, one result per item in order, naming the item as sent.
pub async fn sync(
    State(st): State<Arc<AppState>>,
    Org(region): Org,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let items = signals_body(body)?;
    let ctx = st.ctx();
    let parsed = items
        .iter()
        .map(|i| tier::parse_item(i, ctx.today, &ctx.rules))
        .collect();
    let results = st.store.sync(&ctx, &region, parsed).await?;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let out: Vec<Value> = items
        .iter()
        .zip(&results)
        .map(|(item, r)| {
            *counts.entry(r.status()).or_default() += 1;
            // Only what the region sent as text, so an odd item echoes null.
            let named = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_owned);
            let mut v = json!({"organisation": named("organisation"),
                               "signal_id": named("signal_id"), "status": r.status()});
            if let TierResult::Rejected(e) = r {
                v["error"] = json!({"code": e.code, "message": e.message});
            }
            v
        })
        .collect();
    let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    tracing::info!(region, results = %counts.join(" "), "tier sync");
    Ok(Json(json!({ "results": out })))
}

/// An organisation's write sent to a national index (a connector pointed at
/// the wrong index): say where signals go instead.
pub async fn not_here() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "this is a national index: organisations register with their regional index, \
         which forwards through POST /v1/tier/signals:sync",
    )
}
