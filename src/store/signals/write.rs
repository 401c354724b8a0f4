//! The writes a plan makes to signals and the outbox (register, update,
//! withdraw, renew, hold), and a withdrawal decided outside a plan, each
//! in the caller's transaction.

use crate::store::sql;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::AnyConnection;

use super::super::audit::Chain;
use super::super::event::Audit;
use super::super::states::{OutboxAction, OutboxState, SignalState};
use super::super::{ts, StoreError};
use super::NewSignal;
use crate::domain::{age_on, Audience, Signal, WithdrawReason};

/// The signal as the index receives it (`wire::Signal`), as the outbox
/// stores it: identity and contact data only.
pub fn payload(signal_id: &str, s: &Signal) -> String {
    use crate::index::wire;
    let sub = &s.subject;
    let p = &s.professional;
    wire::Signal {
        signal_id: signal_id.into(),
        subject: wire::Subject {
            bsn: sub.bsn.as_str().into(),
            family_name: sub.family_name[..].into(),
            name_prefix: sub.name_prefix.as_deref().map(Into::into),
            initials: sub.initials.as_deref().map(Into::into),
            given_names: sub.given_names.as_deref().map(Into::into),
            birth_date: sub.birth_date.to_string().into(),
            gender: sub.gender.as_str().into(),
        },
        professional: wire::Professional {
            id: p.id[..].into(),
            name: p.name[..].into(),
            phone: p.phone.as_deref().map(Into::into),
            email: p.email.as_deref().map(Into::into),
        },
        start_date: s.start_date.to_string().into(),
        end_date: s.end_date.to_string().into(),
    }
    .to_json()
}

/// A withdrawal decided outside a file's plan (an objection, a
/// decommission): the signal withdrawn, its outbox row queued, and the
/// decision in the audit trail, in the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub async fn withdraw_planned(
    conn: &mut AnyConnection,
    chain: &mut Chain,
    at: &str,
    source: &str,
    id: &str,
    reason: WithdrawReason,
    decommission: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    withdraw(&mut *conn, source, id, reason, false, now).await?;
    let event = Audit::WithdrawPlanned {
        reason,
        decommission,
    };
    chain.append(conn, at, Some(id), Some(source), &event).await
}

/// Registers new involvements: a pending signal and its outbox row each, in
/// two multi-row statements (a first load registers every row of a file).
pub(in crate::store) async fn register_many(
    conn: &mut AnyConnection,
    source: &str,
    new: &[NewSignal],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if new.is_empty() {
        return Ok(());
    }
    let now = ts(now);
    // An involvement the index lost is registered again under its own id.
    let ids = super::super::reconcile::ids_for(conn, source, new).await?;
    let mut q = sql::Builder::new(
        "INSERT INTO signals (signal_id, source, subject_key, professional_id, case_ref, start_date,
                              end_date, last_day, content_hash, audience, state, created_at, updated_at) ",
    );
    q.push_values(new.iter().zip(&ids), |row, (n, id)| {
        let s = &n.signal;
        row.push_bind(id.as_str())
            .push_bind(source)
            .push_bind(&n.key.subject.0[..])
            .push_bind(&*n.key.professional)
            .push_bind(s.case_ref.as_str())
            .push_bind(s.start_date.to_string())
            .push_bind(s.end_date.to_string())
            .push_bind(n.last_day.to_string())
            .push_bind(s.content_hash().0 as i64)
            .push_bind(Audience::for_age(age_on(s.subject.birth_date, s.start_date)).as_str())
            .push_bind(SignalState::Pending.as_str())
            .push_bind(now.as_str())
            .push_bind(now.as_str());
    });
    q.build().execute(&mut *conn).await?;
    let mut q = sql::Builder::new(
        "INSERT INTO outbox (signal_id, source, action, payload, state, not_before, created_at) ",
    );
    q.push_values(new.iter().zip(&ids), |row, (n, id)| {
        row.push_bind(id.as_str())
            .push_bind(source)
            .push_bind(OutboxAction::Register.as_str())
            .push_bind(payload(id, &n.signal))
            .push_bind(OutboxState::Ready.as_str())
            .push_bind(now.as_str())
            .push_bind(now.as_str());
    });
    q.build().execute(&mut *conn).await?;
    Ok(())
}

/// Corrects a live signal; an unsent register or update takes the new content
/// instead of queueing a second call.
pub(in crate::store) async fn update(
    conn: &mut AnyConnection,
    source: &str,
    id: &str,
    signal: &Signal,
    last_day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = ts(now);
    sql::query(
        "UPDATE signals SET case_ref = ?, start_date = ?, end_date = ?, last_day = ?, content_hash = ?,
                renewed = 0, updated_at = ? WHERE signal_id = ?",
    )
    .bind(&signal.case_ref)
    .bind(signal.start_date.to_string())
    .bind(signal.end_date.to_string())
    .bind(last_day.to_string())
    .bind(signal.content_hash().0 as i64)
    .bind(&now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let body = payload(id, signal);
    // A queued, never tried row takes the new payload in place, unless an
    // instance has claimed it (PostgreSQL): that one may be on its way to
    // the index, and its confirmation would delete the row with the new
    // payload unsent. A new correction is queued behind it instead.
    let replaced = sql::query(
        "UPDATE outbox SET payload = ? WHERE signal_id = ? AND action IN (?, ?)
         AND state = ? AND attempts = 0 AND claimed_by IS NULL",
    )
    .bind(&body)
    .bind(id)
    .bind(OutboxAction::Register)
    .bind(OutboxAction::Update)
    .bind(OutboxState::Ready)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if replaced == 0 {
        super::super::outbox::enqueue(
            conn,
            id,
            source,
            OutboxAction::Update,
            Some(body),
            None,
            None,
            OutboxState::Ready,
            &now,
        )
        .await?;
    }
    Ok(())
}

/// Withdraws a live signal (or queues the withdrawal as held).
pub(in crate::store) async fn withdraw(
    conn: &mut AnyConnection,
    source: &str,
    id: &str,
    reason: WithdrawReason,
    held: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = ts(now);
    if !held {
        sql::query(
            "UPDATE signals SET state = ?, withdraw_reason = ?, updated_at = ? WHERE signal_id = ?",
        )
        .bind(SignalState::Withdrawing.as_str())
        .bind(reason.as_str())
        .bind(&now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    let state = if held {
        OutboxState::Held
    } else {
        OutboxState::Ready
    };
    super::super::outbox::enqueue(
        conn,
        id,
        source,
        OutboxAction::Withdraw,
        None,
        Some(reason),
        None,
        state,
        &now,
    )
    .await
}

pub(in crate::store) async fn renew(
    conn: &mut AnyConnection,
    source: &str,
    id: &str,
    end: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = ts(now);
    sql::query("UPDATE signals SET end_date = ?, renewed = 1, updated_at = ? WHERE signal_id = ?")
        .bind(end.to_string())
        .bind(&now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    super::super::outbox::enqueue(
        conn,
        id,
        source,
        OutboxAction::Renew,
        None,
        None,
        Some(&end.to_string()),
        OutboxState::Ready,
        &now,
    )
    .await
}

/// Records that a snapshot's withdrawals wait for an operator.
pub(in crate::store) async fn hold(
    conn: &mut AnyConnection,
    source: &str,
    file: &str,
    withdrawals: u64,
    active: u64,
    at: &str,
) -> Result<(), StoreError> {
    sql::query(
        "INSERT INTO holds (source, file, withdrawals, active, held_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(source)
    .bind(file)
    .bind(withdrawals as i64)
    .bind(active as i64)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A signal moved to `to` by a step outside a plan (expiry,
/// reconciliation's `missing`), and the corrections and renewals still
/// queued for it dropped: they would send what no longer holds.
pub(in crate::store) async fn end_outside_plan(
    conn: &mut AnyConnection,
    id: &str,
    to: SignalState,
    at: &str,
) -> Result<(), StoreError> {
    sql::query("UPDATE signals SET state = ?, updated_at = ? WHERE signal_id = ?")
        .bind(to)
        .bind(at)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sql::query("DELETE FROM outbox WHERE signal_id = ? AND action IN (?, ?)")
        .bind(id)
        .bind(OutboxAction::Update)
        .bind(OutboxAction::Renew)
        .execute(conn)
        .await?;
    Ok(())
}

/// Drops a source's held withdrawals: a newer snapshot decides again.
pub(in crate::store) async fn drop_holds(
    conn: &mut AnyConnection,
    source: &str,
) -> Result<(), StoreError> {
    sql::query("DELETE FROM outbox WHERE source = ? AND state = ?")
        .bind(source)
        .bind(OutboxState::Held)
        .execute(&mut *conn)
        .await?;
    sql::query("DELETE FROM holds WHERE source = ?")
        .bind(source)
        .execute(conn)
        .await?;
    Ok(())
}
