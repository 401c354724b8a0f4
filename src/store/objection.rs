//! Objections (`visync object`): a child whose parents, or who themselves,
//! objected is withdrawn everywhere and never registered again. One
//! transaction: the objection, the withdrawals and their audit events.

use crate::store::sql;
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use super::audit::Chain;
use super::event::Audit;
use super::states::{OutboxAction, SignalState, Stored};
use super::transition::{self, OnObjection};
use super::{signals, ts, Store, StoreError};
use crate::domain::{SubjectKey, WithdrawReason};

/// What recording an objection did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Objected {
    /// The objection was already on the list.
    pub already: bool,
    /// Signals the index may hold: a withdrawal (`objection`) is queued.
    pub withdrawn: u64,
    /// Registrations never sent: dropped here, the index never hears of them.
    pub dropped: u64,
}

impl Store {
    /// Records an objection for the child with subject key `key` and
    /// withdraws each of its live signals.
    pub async fn object(
        &self,
        key: &SubjectKey,
        now: DateTime<Utc>,
    ) -> Result<Objected, StoreError> {
        let at = ts(now);
        let mut tx = self.transaction().await?;
        let mut chain = Chain::load(&mut tx).await?;
        let mut done = Objected {
            already: sql::query(
                "INSERT INTO objections (subject_key, at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(&key.0[..])
            .bind(&at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 0,
            ..Objected::default()
        };
        let live = sql::query(
            "SELECT s.signal_id, s.source, s.state,
                    CASE WHEN EXISTS (SELECT 1 FROM outbox o WHERE o.signal_id = s.signal_id
                            AND o.action = ? AND o.attempts = 0) THEN 1 ELSE 0 END AS unsent
             FROM signals s WHERE s.subject_key = ? AND s.state IN (?, ?, ?)",
        )
        .bind(OutboxAction::Register)
        .bind(&key.0[..])
        .bind(SignalState::Pending)
        .bind(SignalState::Active)
        .bind(SignalState::Withdrawing)
        .fetch_all(&mut *tx)
        .await?;
        for r in live {
            let (id, source): (String, String) = (r.get(0), r.get(1));
            let unsent = r.get::<i64, _>(3) != 0;
            let state = SignalState::read("signals", &id, "state", r.get(2))?;
            let step = transition::on_objection(state, unsent);
            withdraw_one(&mut tx, &mut chain, &id, &source, step, now).await?;
            match step {
                OnObjection::Drop => done.dropped += 1,
                OnObjection::Withdraw => done.withdrawn += 1,
            }
        }
        if !done.already {
            let event = Audit::ObjectionRecorded {
                signals: done.withdrawn + done.dropped,
            };
            chain.append(&mut tx, &at, None, None, &event).await?;
        }
        chain.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Takes an objection back; returns whether there was one. Nothing is
    /// registered again until a source lists the child again.
    pub async fn unobject(&self, key: &SubjectKey, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.transaction().await?;
        let removed = sql::query("DELETE FROM objections WHERE subject_key = ?")
            .bind(&key.0[..])
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if removed {
            Chain::append_one(&mut tx, &ts(now), None, None, &Audit::ObjectionUndone).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }
}

/// One live signal of a child who objected: whatever was queued for it goes
/// (corrections would only send the child's data again before the
/// withdrawal); then `step` (`transition::on_objection`) says whether it is
/// dropped here or withdrawn at the index.
async fn withdraw_one(
    conn: &mut AnyConnection,
    chain: &mut Chain,
    id: &str,
    source: &str,
    step: OnObjection,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let at = ts(now);
    sql::query("DELETE FROM outbox WHERE signal_id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let reason = WithdrawReason::Objection;
    if step == OnObjection::Withdraw {
        return signals::withdraw_planned(conn, chain, &at, source, id, reason, false, now).await;
    }
    sql::query(
        "UPDATE signals SET state = ?, withdraw_reason = ?, updated_at = ? WHERE signal_id = ?",
    )
    .bind(SignalState::Withdrawn.as_str())
    .bind(reason.as_str())
    .bind(&at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let event = Audit::RegisterDropped { reason };
    chain
        .append(conn, &at, Some(id), Some(source), &event)
        .await
}
