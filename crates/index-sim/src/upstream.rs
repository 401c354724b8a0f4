//! A regional index's link to its national index (`--upstream`): one
//! background task that forwards the forward queue (`store/forward.rs`) and
//! pulls the national index's notices for this region into its
//! organisations' feeds.
//!
//! Why a task, and not work done inside the organisations' requests: a
//! request must neither wait for the national index nor fail with it, and
//! notices caused by another region's signals arrive while nobody here is
//! calling. It is the index's one background activity. Like a request, it
//! applies what the date implies before it reads the store (the sweep depends
//! only on the date, so this changes nothing but when an expiry is
//! forwarded). Each change wakes the task (`LinkStatus::kick`), so
//! forwarding starts at once; otherwise it looks every `POLL`, and after a
//! failure it backs off (with jitter) up to `BACKOFF_MAX`, keeping the queue.
//!
//! Every round is idempotent: a state the national index holds already
//! answers `unchanged`, and a notice page read twice is stored once (by
//! `notice_id`). So the task may stop at any await (shutdown aborts it) and
//! start over. Log lines carry counts, codes and tier ids, never the token.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use url::Url;

use crate::link::LinkStatus;
use crate::request::MAX_BATCH;
use crate::state::AppState;
use crate::store::{StoreError, UpNotice};

/// How often an idle link looks for new notices.
const POLL: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Notices read per call.
const PAGE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the national index cannot be reached: {0}")]
    Unreachable(String),
    #[error("the national index refused the region's token ({0}): check --upstream-token against its --org for this region")]
    Auth(u16),
    #[error("the national index answered {status} {code}")]
    Status {
        status: u16,
        code: String,
        retry_after: Option<Duration>,
    },
    #[error("the national index's answer is not the protocol's: {0}")]
    Malformed(String),
}

/// The HTTP side of the link.
struct Upstream {
    client: reqwest::Client,
    base: Url,
    /// The region's bearer token at the national index. Never logged.
    token: String,
}

/// Starts the link task. The caller aborts it on shutdown.
pub fn spawn(
    state: Arc<AppState>,
    status: Arc<LinkStatus>,
    token: String,
) -> Result<JoinHandle<()>, String> {
    // reqwest is built without a bundled crypto provider: ring, installed
    // once for the process (a no-op when the connector did it already).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        // Longer than a chaotic national index's slow answer, so that a
        // retry does not race the call it gave up on.
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("visync-index-sim/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client for --upstream: {e}"))?;
    let up = Upstream {
        client,
        base: status.upstream.clone(),
        token,
    };
    Ok(tokio::spawn(run(state, up, status)))
}

async fn run(state: Arc<AppState>, up: Upstream, status: Arc<LinkStatus>) {
    let mut failures: u32 = 0;
    loop {
        let outcome = round(&state, &up).await;
        let previous = status.last_error();
        // The round's effects and its error are visible before the count moves.
        status.set_error(outcome.as_ref().err().map(ToString::to_string));
        status.rounds.send_modify(|n| *n += 1);
        match outcome {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!("national index: reachable again");
                }
                failures = 0;
                tokio::select! {
                    () = status.kick.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
            Err(e) => {
                // Once per kind of trouble, not once per retry.
                if previous.as_deref() != Some(e.to_string().as_str()) {
                    tracing::warn!(error = %e, "national index: link failed; the queue is kept and retried");
                }
                failures = failures.saturating_add(1);
                let wait = match e {
                    LinkError::Status {
                        retry_after: Some(r),
                        ..
                    } => r.max(backoff(failures)),
                    _ => backoff(failures),
                };
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Exponential from `BACKOFF_MIN`, capped at `BACKOFF_MAX`, with up to a
/// fifth taken off at random so that regions do not retry in step.
fn backoff(failures: u32) -> Duration {
    let exp = BACKOFF_MIN.saturating_mul(1 << failures.saturating_sub(1).min(10));
    let capped = exp.min(BACKOFF_MAX);
    capped.mul_f64(1.0 - fastrand::f64() * 0.2)
}

/// Forwards the whole queue, then reads every new notice.
async fn round(state: &AppState, up: &Upstream) -> Result<(), LinkError> {
    loop {
        let queued = state.store.queued(&state.ctx(), MAX_BATCH).await?;
        if queued.is_empty() {
            break;
        }
        let items: Vec<&Value> = queued.iter().filter_map(|q| q.item.as_ref()).collect();
        if !items.is_empty() {
            let results = up.sync(&items).await?;
            report(&items, &results);
        }
        let seqs: Vec<i64> = queued.iter().map(|q| q.seq).collect();
        state.store.dequeue(&seqs).await?;
    }
    loop {
        let (_, cursor) = state.store.link_status().await?;
        let page = up.notices(&cursor).await?;
        if page.notices.is_empty() {
            break;
        }
        let delivered = state
            .store
            .fan_out(&state.ctx(), &page.notices, &page.next_cursor)
            .await?;
        tracing::info!(
            received = page.notices.len(),
            delivered,
            "notices from the national index"
        );
        if page.notices.len() < PAGE {
            break;
        }
    }
    Ok(())
}

/// Logs a forwarded batch: counts, and each refused item by its tier id and
/// code (a refusal is final: the item leaves the queue).
fn report(items: &[&Value], results: &[Value]) {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for (item, r) in items.iter().zip(results) {
        let status = r["status"].as_str().unwrap_or("?");
        *counts.entry(status).or_default() += 1;
        if status == "rejected" {
            tracing::warn!(
                organisation = item["organisation"].as_str().unwrap_or("?"),
                signal_id = item["signal_id"].as_str().unwrap_or("?"),
                code = r["error"]["code"].as_str().unwrap_or("?"),
                "the national index refused a forwarded signal"
            );
        }
    }
    let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    tracing::info!(sent = items.len(), results = %counts.join(" "), "forwarded to the national index");
}

#[derive(Deserialize)]
struct Page {
    notices: Vec<UpNotice>,
    next_cursor: String,
}

impl Upstream {
    fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        let joined = format!("{}{path}", u.path().trim_end_matches('/'));
        u.set_path(&joined);
        u
    }

    /// `POST /v1/tier/signals:sync`: one result per item, in order.
    async fn sync(&self, items: &[&Value]) -> Result<Vec<Value>, LinkError> {
        let req = self
            .client
            .post(self.url("/v1/tier/signals:sync"))
            .json(&json!({ "signals": items }));
        let body = self.send(req).await?;
        let results = body
            .get("results")
            .and_then(Value::as_array)
            .filter(|r| r.len() == items.len())
            .ok_or_else(|| LinkError::Malformed("no result per item".into()))?;
        Ok(results.clone())
    }

    /// `GET /v1/notices` after `after`: this region's notices.
    async fn notices(&self, after: &str) -> Result<Page, LinkError> {
        let limit = PAGE.to_string();
        let req = self
            .client
            .get(self.url("/v1/notices"))
            .query(&[("after", after), ("limit", limit.as_str())]);
        let body = self.send(req).await?;
        serde_json::from_value(body).map_err(|e| LinkError::Malformed(e.to_string()))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, LinkError> {
        let resp = req
            .bearer_auth(&self.token)
            .header("x-request-id", uuid::Uuid::new_v4().to_string())
            .send()
            .await
            .map_err(|e| LinkError::Unreachable(describe(&e)))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| LinkError::Unreachable(describe(&e)))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        match status {
            StatusCode::OK => Ok(body),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(LinkError::Auth(status.as_u16()))
            }
            s => Err(LinkError::Status {
                status: s.as_u16(),
                code: body["error"]["code"].as_str().unwrap_or("-").to_owned(),
                retry_after,
            }),
        }
    }
}

/// A short, id-free description of a transport failure.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "the call failed"
    };
    match std::error::Error::source(e) {
        Some(s) => format!("{kind}: {s}"),
        None => kind.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        for n in 1..40 {
            let b = backoff(n);
            assert!(b <= BACKOFF_MAX, "{n}: {b:?}");
            assert!(b >= BACKOFF_MIN.mul_f64(0.8), "{n}: {b:?}");
        }
        assert!(backoff(1) <= BACKOFF_MIN);
        assert!(backoff(30) >= BACKOFF_MAX.mul_f64(0.8));
    }
}
