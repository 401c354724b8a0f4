//! What the index said about outbox rows, recorded: a confirmation (many
//! registrations and corrections at once), a refusal, a failure to retry or
//! quarantine, a conflict adopted. Each in the caller's transaction, with
//! its audit event.

use crate::store::sql;
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use super::super::audit::Chain;
use super::super::event::Audit;
use super::super::states::{OutboxAction, OutboxState, Stored};
use super::super::{transition, ts, StoreError};
use super::{backoff, OutboxRow, Status, MAX_ATTEMPTS};

/// Appends `?, ?, …)` for `n` values to a query.
fn binds<'a>(q: &mut sql::Builder, ids: impl Iterator<Item = &'a str>) {
    q.push_list(ids).push(")");
}

pub(super) async fn confirm_many(
    conn: &mut AnyConnection,
    chain: &mut Chain,
    rows: &[&(OutboxRow, Status)],
    at: &str,
) -> Result<(), StoreError> {
    let ids = || rows.iter().map(|(r, _)| r.signal_id.as_str());
    // Registrations and corrections only: both confirmed the same way.
    let action = OutboxAction::Register;
    debug_assert_eq!(
        transition::confirmed(action),
        transition::confirmed(OutboxAction::Update)
    );
    let mut q = sql::Builder::new("UPDATE signals SET state = ");
    q.push_bind(transition::confirmed(action))
        .push(", error = NULL, updated_at = ")
        .push_bind(at)
        .push(" WHERE signal_id IN (");
    binds(&mut q, ids());
    // `state || ''`, not `state`: an expression no index serves, so that
    // the rows are found by their ids. On the bare column both planners
    // (without statistics on a new store) took the index on state and
    // went through every pending signal for each batch: a first pass of
    // 100,000 signals took 57 s on SQLite instead of 32, and over a
    // minute on PostgreSQL instead of 16 (`cargo bench --bench run`).
    q.push(" AND state || '' IN (");
    binds(
        &mut q,
        transition::confirmed_from(action)
            .iter()
            .map(|s| s.as_str()),
    );
    q.build().execute(&mut *conn).await?;
    let revised = revised(conn, rows).await?;
    let done: Vec<i64> = rows
        .iter()
        .map(|(r, _)| r.id)
        .filter(|id| !revised.contains(id))
        .collect();
    if !done.is_empty() {
        let mut q = sql::Builder::new("DELETE FROM outbox WHERE id IN (");
        q.push_list(done).push(")");
        q.build().execute(&mut *conn).await?;
    }
    if !revised.is_empty() {
        // What the index holds now is the signal: the new payload goes
        // out as its correction.
        let mut q = sql::Builder::new("UPDATE outbox SET action = ");
        q.push_bind(OutboxAction::Update)
            .push(" WHERE id IN (")
            .push_list(revised.iter().copied())
            .push(")");
        q.build().execute(&mut *conn).await?;
    }
    let registered: Vec<&str> = rows
        .iter()
        .filter(|(r, _)| r.action == OutboxAction::Register)
        .map(|(r, _)| r.signal_id.as_str())
        .collect();
    if !registered.is_empty() {
        super::super::notices::notify_subjects(conn, &registered, at).await?;
    }
    for (row, _) in rows {
        let event = Audit::Confirmed { action: row.action };
        chain
            .append(conn, at, Some(&row.signal_id), Some(&row.source), &event)
            .await?;
    }
    Ok(())
}

/// The rows of a confirmed batch whose payload was replaced while the
/// batch was on its way: a correction planned meanwhile takes a queued,
/// never tried row's payload in place (`signals::write::update`), and on
/// SQLite nothing marks a row as being sent. Deleting such a row with the
/// confirmation of the old payload would lose the correction.
async fn revised(
    conn: &mut AnyConnection,
    rows: &[&(OutboxRow, Status)],
) -> Result<Vec<i64>, StoreError> {
    let mut q = sql::Builder::new("SELECT id, payload FROM outbox WHERE id IN (");
    q.push_list(rows.iter().map(|(r, _)| r.id)).push(")");
    let now: std::collections::HashMap<i64, Option<String>> = q
        .build()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(rows
        .iter()
        .filter(|(r, _)| {
            let sent = r.payload.as_ref().map(|p| p.as_str());
            now.get(&r.id)
                .is_some_and(|stored| stored.as_deref() != sent)
        })
        .map(|(r, _)| r.id)
        .collect())
}

pub(super) async fn record_one(
    conn: &mut AnyConnection,
    chain: &mut Chain,
    row: &OutboxRow,
    status: &Status,
    now: DateTime<Utc>,
    at: &str,
) -> Result<(), StoreError> {
    match status {
        Status::Confirmed => confirmed(conn, chain, row, at).await,
        Status::Conflict { existing } => {
            // Adopt the index's id: this signal and everything queued for it
            // move to it, and the content is sent again as an update of it.
            adopt(conn, &row.signal_id, existing, at).await?;
            let event = Audit::ConflictAdopted {
                ours: &row.signal_id,
            };
            let source = Some(row.source.as_str());
            chain.append(conn, at, Some(existing), source, &event).await
        }
        Status::Refused { code, message } => refused(conn, chain, row, code, message, at).await,
        Status::Retry { after, error } => {
            sql::query("UPDATE outbox SET attempts = attempts + 1, not_before = ?, last_error = ? WHERE id = ?")
                .bind(ts(now + *after))
                .bind(error)
                .bind(row.id)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }
        Status::Failed { error } => failed(conn, chain, row, error, now, at).await,
    }
}

/// The index took the row: the signal is live (or withdrawn), the row goes,
/// and a confirmed registration or renewal tells the case.
async fn confirmed(
    conn: &mut AnyConnection,
    chain: &mut Chain,
    row: &OutboxRow,
    at: &str,
) -> Result<(), StoreError> {
    let mut q = sql::Builder::new("UPDATE signals SET state = ");
    q.push_bind(transition::confirmed(row.action).as_str())
        .push(", error = NULL, updated_at = ")
        .push_bind(at)
        .push(" WHERE signal_id = ")
        .push_bind(&row.signal_id)
        .push(" AND state IN (");
    binds(
        &mut q,
        transition::confirmed_from(row.action)
            .iter()
            .map(|s| s.as_str()),
    );
    q.build().execute(&mut *conn).await?;
    delete(conn, row.id).await?;
    if row.action == OutboxAction::Register {
        super::super::notices::notify_subject(conn, &row.signal_id, at).await?;
    }
    if let (OutboxAction::Renew, Some(end)) = (row.action, &row.end_date) {
        super::super::expiry::renewed(conn, &row.signal_id, end, at).await?;
    }
    let event = Audit::Confirmed { action: row.action };
    audit_row(conn, chain, row, at, &event).await
}

/// The index refused the row for good: the signal takes the state the
/// refusal leaves it in, with the index's reason, and the row goes.
async fn refused(
    conn: &mut AnyConnection,
    chain: &mut Chain,
    row: &OutboxRow,
    code: &str,
    message: &str,
    at: &str,
) -> Result<(), StoreError> {
    let state = transition::refused(row.action, code);
    sql::query("UPDATE signals SET state = ?, error = ?, updated_at = ? WHERE signal_id = ?")
        .bind(state.as_str())
        .bind(format!("{code}: {message}"))
        .bind(at)
        .bind(&row.signal_id)
        .execute(&mut *conn)
        .await?;
    delete(conn, row.id).await?;
    let event = Audit::Refused {
        action: row.action,
        code,
    };
    audit_row(conn, chain, row, at, &event).await
}

/// An attempt failed in a way a retry may mend: the row waits out its
/// backoff, or is quarantined after `MAX_ATTEMPTS`.
async fn failed(
    conn: &mut AnyConnection,
    chain: &mut Chain,
    row: &OutboxRow,
    error: &str,
    now: DateTime<Utc>,
    at: &str,
) -> Result<(), StoreError> {
    let quarantine = row.attempts + 1 >= MAX_ATTEMPTS;
    sql::query("UPDATE outbox SET attempts = attempts + 1, state = ?, not_before = ?, last_error = ? WHERE id = ?")
        .bind(if quarantine {
            OutboxState::Quarantined
        } else {
            OutboxState::Ready
        }
        .as_str())
        .bind(ts(now + backoff(row.attempts + 1)))
        .bind(error)
        .bind(row.id)
        .execute(&mut *conn)
        .await?;
    if !quarantine {
        return Ok(());
    }
    let event = Audit::Quarantined {
        action: row.action,
        error,
    };
    audit_row(conn, chain, row, at, &event).await
}

/// An answer's audit event, on the row's signal and source.
async fn audit_row(
    conn: &mut AnyConnection,
    chain: &mut Chain,
    row: &OutboxRow,
    at: &str,
    event: &Audit<'_>,
) -> Result<(), StoreError> {
    let source = Some(row.source.as_str());
    chain
        .append(conn, at, Some(&row.signal_id), source, event)
        .await
}

async fn delete(conn: &mut AnyConnection, id: i64) -> Result<(), StoreError> {
    sql::query("DELETE FROM outbox WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

async fn adopt(
    conn: &mut AnyConnection,
    ours: &str,
    existing: &str,
    at: &str,
) -> Result<(), StoreError> {
    let known: Option<String> =
        sql::query_scalar("SELECT signal_id FROM signals WHERE signal_id = ?")
            .bind(existing)
            .fetch_optional(&mut *conn)
            .await?;
    if known.is_some() {
        // We know that id already (an older row of ours): keep it, drop the
        // new one first (one live row per involvement).
        sql::query("DELETE FROM signals WHERE signal_id = ?")
            .bind(ours)
            .execute(&mut *conn)
            .await?;
        sql::query("UPDATE signals SET state = ?, updated_at = ? WHERE signal_id = ?")
            .bind(transition::adopted())
            .bind(at)
            .bind(existing)
            .execute(&mut *conn)
            .await?;
    } else {
        sql::query("UPDATE signals SET signal_id = ?, updated_at = ? WHERE signal_id = ?")
            .bind(existing)
            .bind(at)
            .bind(ours)
            .execute(&mut *conn)
            .await?;
    }
    // Queued rows follow; a register becomes an update of the adopted id,
    // and the signal it carries takes that id.
    let rows = sql::query("SELECT id, action, payload FROM outbox WHERE signal_id = ?")
        .bind(ours)
        .fetch_all(&mut *conn)
        .await?;
    for r in rows {
        let id: i64 = r.get(0);
        let action = match OutboxAction::read("outbox", id, "action", r.get(1))? {
            OutboxAction::Register => OutboxAction::Update,
            other => other,
        };
        let payload: Option<&str> = r.get(2);
        let payload = payload.map(|p| with_id(p, id, existing)).transpose()?;
        sql::query("UPDATE outbox SET signal_id = ?, payload = ?, action = ? WHERE id = ?")
            .bind(existing)
            .bind(payload)
            .bind(action.as_str())
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A stored signal (`wire::Signal`) under another id: read, its id set,
/// written again. A payload that is not one is a damaged row.
fn with_id(payload: &str, row: i64, signal_id: &str) -> Result<String, StoreError> {
    let mut signal: crate::index::wire::Signal = serde_json::from_str(payload).map_err(|e| {
        StoreError::Corrupt(format!(
            "outbox row {row}: payload is not a signal ({}); restore the state from a backup",
            crate::redact::foreign(&e.to_string())
        ))
    })?;
    signal.signal_id = signal_id.into();
    Ok(signal.to_json())
}
