//! The outbox: actions waiting for the index. Rows of one signal go out in
//! the order they were written; a row leaves the outbox only with a final
//! outcome recorded on its signal.

use crate::store::sql;
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

mod answers;
mod backoff;

use self::answers::{confirm_many, record_one};
pub use self::backoff::backoff;
use super::audit::Chain;
use super::event::Audit;
use super::states::{read_opt, Stored};
pub use super::states::{OutboxAction, OutboxState};
use super::{transition, ts, Store, StoreError};
use crate::domain::WithdrawReason;
use crate::index::wire::Payload;

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub signal_id: String,
    pub source: String,
    pub action: OutboxAction,
    /// The signal a registration or correction sends, checked when read
    /// (`due`): every such row has one.
    pub payload: Option<Payload>,
    /// A withdrawal's reason.
    pub reason: Option<WithdrawReason>,
    pub end_date: Option<String>,
    pub attempts: i64,
}

/// Queue depth by state, for `status` and the pass summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct QueueCounts {
    pub ready: u64,
    pub held: u64,
    pub quarantined: u64,
}

/// What the index said about one row.
#[derive(Debug, Clone)]
pub enum Status {
    /// Done: created, updated, unchanged, withdrawn, renewed.
    Confirmed,
    /// The index already holds this involvement under another id: adopt it.
    Conflict { existing: String },
    /// The index refused the item for good (an item error, a 404 or 409).
    Refused { code: String, message: String },
    /// Try again later (5xx, 429, network); `attempts` is not a limit here.
    Retry {
        after: chrono::Duration,
        error: String,
    },
    /// Failed in a way that retrying the same row may not fix (a malformed
    /// answer, a 400 for the call): bounded attempts, then quarantine.
    Failed { error: String },
}

/// How often a row may fail with `Failed` before it is quarantined.
pub const MAX_ATTEMPTS: i64 = 5;

#[allow(clippy::too_many_arguments)]
pub async fn enqueue(
    conn: &mut AnyConnection,
    signal_id: &str,
    source: &str,
    action: OutboxAction,
    payload: Option<String>,
    reason: Option<WithdrawReason>,
    end_date: Option<&str>,
    state: OutboxState,
    now: &str,
) -> Result<(), StoreError> {
    sql::query(
        "INSERT INTO outbox (signal_id, source, action, payload, reason, end_date, state, not_before, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(signal_id)
    .bind(source)
    .bind(action.as_str())
    .bind(payload)
    .bind(reason.map(WithdrawReason::as_str))
    .bind(end_date)
    .bind(state.as_str())
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Rows due now whose signal has no earlier row still waiting, in the
    /// order of the `outbox_ready` index, so that a big queue is not sorted
    /// for every batch. On a shared store (PostgreSQL) they are claimed for
    /// this instance at once: rows another living instance claimed are not
    /// due here, and `SKIP LOCKED` passes over rows that another claim or
    /// a recording holds now instead of waiting for it, so that claiming
    /// never waits and never deadlocks. The claim lasts one lease, renewed
    /// by the heartbeat; recording the answer ends it.
    pub async fn due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        const COLUMNS: &str =
            "o.id, o.signal_id, o.source, o.action, o.payload, o.reason, o.end_date, o.attempts";
        let mut rows = if self.is_shared() {
            let me = &self.instance().id;
            sql::query(format!(
                "UPDATE outbox AS o SET claimed_by = ?1, claimed_until = ?2 WHERE o.id IN (
                   SELECT c.id FROM outbox c
                    WHERE c.state = ?3 AND c.not_before <= ?4
                      AND (c.claimed_by IS NULL OR c.claimed_by = ?1 OR c.claimed_until < ?4)
                      AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.signal_id = c.signal_id AND p.id < c.id)
                    ORDER BY c.not_before, c.id LIMIT ?5 FOR UPDATE OF c SKIP LOCKED)
                 RETURNING {COLUMNS}, o.not_before"
            ))
            .bind(me)
            .bind(ts(now + self.instance().lease))
            .bind(OutboxState::Ready)
            .bind(ts(now))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
        } else {
            sql::query(format!(
                "SELECT {COLUMNS}, o.not_before FROM outbox o
                 WHERE o.state = ? AND o.not_before <= ?
                   AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.signal_id = o.signal_id AND p.id < o.id)
                 ORDER BY o.not_before, o.id LIMIT ?"
            ))
            .bind(OutboxState::Ready)
            .bind(ts(now))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
        };
        // RETURNING keeps no order.
        rows.sort_by_cached_key(|r| (r.get::<String, _>(8), r.get::<i64, _>(0)));
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let action = OutboxAction::read("outbox", id, "action", r.get(3))?;
                Ok(OutboxRow {
                    id,
                    signal_id: r.get(1),
                    source: r.get(2),
                    action,
                    payload: payload(id, action, r.get(4))?,
                    reason: read_opt("outbox", id, "reason", r.get(5))?,
                    end_date: r.get(6),
                    attempts: r.get(7),
                })
            })
            .collect()
    }

    /// When the next row that is waiting on a backoff becomes due. Only the
    /// oldest row of each signal counts, as in `due`: a correction queued
    /// behind a registration that backs off is not due before it, and taking
    /// its time would end the pass while the registration is still waiting.
    /// A row another instance has claimed counts at its claim's end: it is
    /// that instance's to send until then (and ours if it dies).
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t: Option<String> = sql::query_scalar(
            "SELECT MIN(CASE WHEN o.claimed_by <> ?1 AND o.claimed_until > o.not_before
                             THEN o.claimed_until ELSE o.not_before END)
               FROM outbox o WHERE o.state = ?2
               AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.signal_id = o.signal_id AND p.id < o.id)",
        )
        .bind(&self.instance().id)
        .bind(OutboxState::Ready)
        .fetch_one(&self.pool)
        .await?;
        Ok(t.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    pub async fn queue_counts(&self) -> Result<QueueCounts, StoreError> {
        // MIN(id): a row to name if the state is not one visync writes.
        let rows = sql::query("SELECT state, COUNT(*), MIN(id) FROM outbox GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut c = QueueCounts::default();
        for r in rows {
            let n = r.get::<i64, _>(1) as u64;
            match OutboxState::read("outbox", r.get::<i64, _>(2), "state", r.get(0))? {
                OutboxState::Ready => c.ready = n,
                OutboxState::Held => c.held = n,
                OutboxState::Quarantined => c.quarantined = n,
            }
        }
        Ok(c)
    }

    /// Records what the index said about a batch of rows, in one transaction.
    pub async fn record(
        &self,
        results: &[(OutboxRow, Status)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.transaction().await?;
        let ours;
        let results = if self.is_shared() {
            ours = self.still_ours(&mut tx, results).await?;
            &ours[..]
        } else {
            results
        };
        let mut chain = Chain::load(&mut tx).await?;
        let at = ts(now);
        // Confirmed registrations and corrections are the bulk of every
        // batch: a few statements for all of them instead of four per row.
        let (bulk, rest): (Vec<_>, Vec<_>) = results.iter().partition(|(row, status)| {
            matches!(status, Status::Confirmed)
                && matches!(row.action, OutboxAction::Register | OutboxAction::Update)
        });
        for chunk in bulk.chunks(500) {
            confirm_many(&mut tx, &mut chain, chunk, &at).await?;
        }
        for (row, status) in &rest {
            record_one(&mut tx, &mut chain, row, status, now, &at).await?;
        }
        if self.is_shared() && !rest.is_empty() {
            // What stays queued (a retry, an adopted conflict) is free for
            // any instance again. Confirmed rows are gone already.
            let mut q = sql::Builder::new(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id IN (",
            );
            q.push_list(rest.iter().map(|(row, _)| row.id)).push(")");
            q.build().execute(&mut *tx).await?;
        }
        chain.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The answers for rows this instance still claims, the rows locked
    /// until the commit: a row whose claim ran out while this instance was
    /// stalled is another's now, which records its own answer (recording
    /// this one too would count its attempts twice, or clear the other's
    /// claim while its call is on the way).
    async fn still_ours(
        &self,
        tx: &mut sqlx::AnyConnection,
        results: &[(OutboxRow, Status)],
    ) -> Result<Vec<(OutboxRow, Status)>, StoreError> {
        let mut ours = std::collections::HashSet::new();
        for chunk in results.chunks(500) {
            let mut q = sql::Builder::new("SELECT id FROM outbox WHERE claimed_by = ");
            q.push_bind(&self.instance().id).push(" AND id IN (");
            q.push_list(chunk.iter().map(|(row, _)| row.id))
                .push(") FOR UPDATE");
            for r in q.build().fetch_all(&mut *tx).await? {
                ours.insert(r.get::<i64, _>(0));
            }
        }
        Ok(results
            .iter()
            .filter(|(row, _)| ours.contains(&row.id))
            .cloned()
            .collect())
    }

    /// Lets a source's held withdrawals go ahead. Returns how many.
    pub async fn release(&self, source: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.transaction().await?;
        let at = ts(now);
        let release = transition::RELEASE;
        sql::query(
            "UPDATE signals SET state = ?, withdraw_reason = ?, updated_at = ?
             WHERE signal_id IN (SELECT signal_id FROM outbox WHERE source = ? AND state = ?)",
        )
        .bind(release.signal)
        .bind(release.reason.as_str())
        .bind(&at)
        .bind(source)
        .bind(release.from)
        .execute(&mut *tx)
        .await?;
        let n = sql::query(
            "UPDATE outbox SET state = ?, not_before = ? WHERE source = ? AND state = ?",
        )
        .bind(release.to)
        .bind(&at)
        .bind(source)
        .bind(release.from)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sql::query("DELETE FROM holds WHERE source = ?")
            .bind(source)
            .execute(&mut *tx)
            .await?;
        if n > 0 {
            let event = Audit::Released { withdrawals: n };
            Chain::append_one(&mut tx, &at, None, Some(source), &event).await?;
        }
        tx.commit().await?;
        Ok(n)
    }
}

/// Reads a row's payload strictly: a registration or correction carries a
/// signal (`wire::Payload`), anything else none that matters.
fn payload(
    row: i64,
    action: OutboxAction,
    text: Option<String>,
) -> Result<Option<Payload>, StoreError> {
    let damaged = |why: &str| {
        StoreError::Corrupt(format!(
            "outbox row {row}: payload {why}; restore the state from a backup"
        ))
    };
    match (action, text) {
        (OutboxAction::Register | OutboxAction::Update, None) => {
            Err(damaged(&format!("missing for a {action}")))
        }
        (OutboxAction::Register | OutboxAction::Update, Some(text)) => Payload::check(text)
            .map(Some)
            .map_err(|e| damaged(&format!("is not a signal ({e})"))),
        (OutboxAction::Withdraw | OutboxAction::Renew, _) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StateUrl;
    const PAYLOAD: &str = r#"{"signal_id":"s-1","subject":{"bsn":"111222333","family_name":"J","birth_date":"2015-02-03","gender":"F"},"professional":{"id":"E1","name":"P"},"start_date":"2026-11-01","end_date":"2027-11-01"}"#;

    /// A new SQLite store.
    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = StateUrl::Sqlite(dir.path().join("state.db"));
        let store = Store::open(&url, None).await.unwrap();
        (dir, store)
    }

    /// Ready rows for `signal`, one per action, due at `now`, in one
    /// transaction.
    async fn queue(
        store: &Store,
        signal: &str,
        actions: &[OutboxAction],
        payload: &str,
        now: DateTime<Utc>,
    ) {
        let now = ts(now);
        let mut tx = store.transaction().await.unwrap();
        for action in actions {
            let payload = Some(payload.to_string());
            let ready = OutboxState::Ready;
            enqueue(
                &mut tx, signal, "src", *action, payload, None, None, ready, &now,
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }

    /// A registration that backs off keeps the correction queued behind it
    /// waiting too: the next due time is the registration's, not the
    /// correction's (which would end a pass with work left).
    #[tokio::test]
    async fn the_next_due_time_is_that_of_a_signals_oldest_row() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        queue(
            &store,
            "s-1",
            &[OutboxAction::Register, OutboxAction::Update],
            PAYLOAD,
            now,
        )
        .await;
        let register = store.due(now, 10).await.unwrap();
        assert_eq!(register.len(), 1, "only the oldest row of a signal is due");
        let retry = Status::Retry {
            after: chrono::Duration::seconds(30),
            error: "503".into(),
        };
        store
            .record(&[(register[0].clone(), retry)], now)
            .await
            .unwrap();
        assert!(store.due(now, 10).await.unwrap().is_empty());
        let next = store.next_due().await.unwrap().unwrap();
        assert!(
            next >= now + chrono::Duration::seconds(29),
            "{next} is the correction's time, not the registration's"
        );
    }

    /// A correction planned while the registration was on its way takes
    /// the queued row's payload in place (`signals::write::update`): the
    /// registration's confirmation must not delete it with the row. It
    /// stays queued, as a correction of what the index now holds.
    #[tokio::test]
    async fn a_payload_replaced_while_its_row_is_on_its_way_is_sent_after_it() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        queue(&store, "s-1", &[OutboxAction::Register], PAYLOAD, now).await;
        let sent = store.due(now, 10).await.unwrap().remove(0);
        // What `update` does to a queued, never tried row meanwhile.
        let corrected = PAYLOAD.replace("2027-11-01", "2027-06-30");
        sql::query("UPDATE outbox SET payload = ? WHERE id = ?")
            .bind(&corrected)
            .bind(sent.id)
            .execute(store.pool())
            .await
            .unwrap();
        store
            .record(&[(sent, Status::Confirmed)], now)
            .await
            .unwrap();
        let left = store.due(now, 10).await.unwrap();
        assert_eq!(left.len(), 1, "the correction is still queued");
        assert_eq!(left[0].action, OutboxAction::Update);
        assert_eq!(left[0].payload.as_ref().unwrap().as_str(), corrected);
        store
            .record(&[(left[0].clone(), Status::Confirmed)], now)
            .await
            .unwrap();
        assert!(store.due(now, 10).await.unwrap().is_empty());
    }

    /// A conflict is adopted with the wire types: the queued registration
    /// becomes an update of the index's id, and the signal it carries takes
    /// that id (it was a text replacement of the id inside the payload).
    #[tokio::test]
    async fn a_conflict_moves_the_queued_signal_to_the_existing_id() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        sql::query(
            "INSERT INTO signals (signal_id, source, subject_key, professional_id, case_ref,
                start_date, end_date, last_day, content_hash, state, created_at, updated_at)
             VALUES ('ours', 'src', x'00', 'E1', 'C-ours', '2026-11-01', '2027-11-01', '2030-01-01', 1, 'pending', 't', 't')",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let payload = r#"{"signal_id":"ours","subject":{"bsn":"111222333","family_name":"ours","birth_date":"2015-02-03","gender":"F"},"professional":{"id":"E1","name":"P"},"start_date":"2026-11-01","end_date":"2027-11-01"}"#;
        queue(&store, "ours", &[OutboxAction::Register], payload, now).await;
        let row = store.due(now, 10).await.unwrap().remove(0);
        let conflict = Status::Conflict {
            existing: "theirs".into(),
        };
        store.record(&[(row, conflict)], now).await.unwrap();
        let row = store.due(now, 10).await.unwrap().remove(0);
        assert_eq!(row.signal_id, "theirs");
        assert_eq!(row.action, OutboxAction::Update);
        let payload = row.payload.unwrap();
        let sent = payload.signal();
        assert_eq!(sent.signal_id, "theirs");
        // Only the id moved: a name that happens to equal our id stays.
        assert_eq!(sent.subject.family_name, "ours");
        assert!(store.verify_audit().await.unwrap().is_ok());
    }
}
