//! Draining the outbox: due rows go to the index in batches (registrations
//! and corrections) or one by one (withdrawals, renewals). A batch's answers
//! are recorded while the next batch is on its way (see `drain`); a single
//! call's answer before the next call. Nothing here decides what to send:
//! the planner did that, in the store.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{CallError, IndexApi, ItemResult, ItemStatus, Payload};
use crate::clock::Clock;
use crate::domain::WithdrawReason;
use crate::store::{OutboxAction, OutboxRow, Status, Store, StoreError};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendSummary {
    pub confirmed: u64,
    pub refused: u64,
    pub conflicts: u64,
    pub retries: u64,
    /// The index refused our credentials: sending stopped, the queue is kept.
    pub auth_failed: bool,
}

/// The recording of one batch's answers, running while the next batch is
/// on its way to the index.
type Recording<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// Sends what is due until nothing is. `deadline` bounds only the waiting:
/// rows whose backoff ends after it stay queued for the next pass, however
/// long the sending itself takes.
///
/// Batches are pipelined: while batch N's answers are being written (and
/// fsynced), batch N+1 is taken and sent. Batch N+1 never holds a row of
/// batch N (they are excluded by id), and it cannot hold a later row of a
/// signal in batch N either: `due` returns only a signal's oldest waiting row,
/// and batch N's rows stay in the outbox until they are recorded. So the order
/// per signal holds.
pub async fn drain(
    store: &Store,
    api: &impl IndexApi,
    batch_size: usize,
    clock: &Clock,
    deadline: DateTime<Utc>,
) -> Result<SendSummary, StoreError> {
    let mut summary = SendSummary::default();
    let mut recording: Option<(Recording<'_>, HashSet<i64>)> = None;
    loop {
        let now = clock.now();
        let in_flight = recording.as_ref().map_or(0, |(_, ids)| ids.len());
        let mut rows = store.due(now, (batch_size + in_flight) as i64).await?;
        if let Some((_, ids)) = &recording {
            rows.retain(|r| !ids.contains(&r.id));
        }
        rows.truncate(batch_size);
        if rows.is_empty() {
            if let Some((done, _)) = recording.take() {
                // Its rows may have been the only ones due: look again.
                done.await?;
                continue;
            }
            match store.next_due().await? {
                Some(t) if t <= deadline && t > now => {
                    let wait = (t - now).to_std().unwrap_or(Duration::ZERO);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                _ => break,
            }
        }
        let (batchable, single): (Vec<OutboxRow>, Vec<OutboxRow>) = rows
            .into_iter()
            .partition(|r| matches!(r.action, OutboxAction::Register | OutboxAction::Update));
        if !batchable.is_empty()
            && send_batch(store, api, batchable, clock, &mut summary, &mut recording).await?
        {
            return Ok(summary);
        }
        if !single.is_empty() {
            if let Some((done, _)) = recording.take() {
                done.await?;
            }
            if send_single(store, api, single, clock, &mut summary).await? {
                return Ok(summary);
            }
        }
    }
    Ok(summary)
}

/// Registrations and corrections in one call, sent while the previous
/// batch's answers are recorded; this batch's recording is left running in
/// `recording`. Returns whether sending must stop (the index refused the
/// credentials).
async fn send_batch<'s>(
    store: &'s Store,
    api: &impl IndexApi,
    batchable: Vec<OutboxRow>,
    clock: &Clock,
    summary: &mut SendSummary,
    recording: &mut Option<(Recording<'s>, HashSet<i64>)>,
) -> Result<bool, StoreError> {
    let payloads: Vec<&Payload> = batchable
        .iter()
        .map(|r| {
            r.payload
                .as_ref()
                .expect("the store reads a payload for every registration and correction")
        })
        .collect();
    let previous = async {
        match recording.take() {
            Some((done, _)) => done.await,
            None => Ok(()),
        }
    };
    let (outcome, previous) = tokio::join!(api.submit(&payloads), previous);
    crate::fault::point("send-after-call");
    previous?;
    if stop_on_auth(&outcome, summary) {
        return Ok(true);
    }
    let statuses: Vec<Status> = match outcome {
        Ok(items) => items.iter().map(item_status).collect(),
        Err(e) => batchable
            .iter()
            .map(|r| call_status(&e, r.attempts))
            .collect(),
    };
    tally(&statuses, summary);
    let ids = batchable.iter().map(|r| r.id).collect();
    let results: Vec<(OutboxRow, Status)> = batchable.into_iter().zip(statuses).collect();
    let at = clock.now();
    *recording = Some((
        Box::pin(async move { store.record(&results, at).await }),
        ids,
    ));
    Ok(false)
}

/// Withdrawals and renewals, one call each. Returns whether sending must stop
/// (the index refused our credentials).
async fn send_single(
    store: &Store,
    api: &impl IndexApi,
    rows: Vec<OutboxRow>,
    clock: &Clock,
    summary: &mut SendSummary,
) -> Result<bool, StoreError> {
    for row in rows {
        let outcome = match row.action {
            OutboxAction::Withdraw => {
                api.withdraw(
                    &row.signal_id,
                    row.reason.unwrap_or(WithdrawReason::RiskEnded).as_str(),
                )
                .await
            }
            _ => {
                api.renew(&row.signal_id, row.end_date.as_deref().unwrap_or(""))
                    .await
            }
        };
        crate::fault::point("send-after-single-call");
        if stop_on_auth(&outcome, summary) {
            return Ok(true);
        }
        let status = match outcome {
            Ok(()) => Status::Confirmed,
            // The index no longer holds it as active: final for this row.
            Err(CallError::Refused {
                status: 404 | 409,
                code,
                message,
            }) => Status::Refused {
                code: if row.action == OutboxAction::Renew {
                    "not_active".into()
                } else {
                    code
                },
                message,
            },
            Err(e) => call_status(&e, row.attempts),
        };
        tally(std::slice::from_ref(&status), summary);
        store.record(&[(row, status)], clock.now()).await?;
    }
    Ok(false)
}

fn stop_on_auth<T>(outcome: &Result<T, CallError>, summary: &mut SendSummary) -> bool {
    match outcome {
        Err(CallError::Auth { status, message }) => tracing::error!(
            status,
            message = message.as_str(),
            "the index refused our credentials: nothing more is sent until the token or certificate is fixed; the queue is kept"
        ),
        Err(CallError::Tls(message)) => tracing::error!(
            "{message}; nothing more is sent until it is fixed; the queue is kept"
        ),
        _ => return false,
    }
    summary.auth_failed = true;
    true
}

fn item_status(item: &ItemResult) -> Status {
    match &item.status {
        ItemStatus::Created | ItemStatus::Updated | ItemStatus::Unchanged => Status::Confirmed,
        ItemStatus::Conflict => match &item.existing_signal_id {
            Some(existing) => Status::Conflict {
                existing: existing.clone(),
            },
            None => Status::Failed {
                error: "conflict without existing_signal_id".into(),
            },
        },
        ItemStatus::Rejected => {
            let e = item.error.clone().unwrap_or(super::ApiError {
                code: "rejected".into(),
                message: String::new(),
            });
            Status::Refused {
                code: e.code,
                message: e.message,
            }
        }
        ItemStatus::Unknown(other) => Status::Failed {
            error: format!("unknown item status \"{}\"", crate::redact::foreign(other)),
        },
    }
}

fn call_status(e: &CallError, attempts: i64) -> Status {
    match e {
        CallError::Transient {
            retry_after,
            message,
        } => {
            let backoff = crate::store::backoff(attempts + 1);
            let after = retry_after
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .map_or(backoff, |ra| ra.max(backoff));
            Status::Retry {
                after,
                error: message.clone(),
            }
        }
        other => Status::Failed {
            error: other.to_string(),
        },
    }
}

fn tally(statuses: &[Status], s: &mut SendSummary) {
    for st in statuses {
        match st {
            Status::Confirmed => s.confirmed += 1,
            Status::Refused { .. } => s.refused += 1,
            Status::Conflict { .. } => s.conflicts += 1,
            Status::Retry { .. } | Status::Failed { .. } => s.retries += 1,
        }
    }
}
