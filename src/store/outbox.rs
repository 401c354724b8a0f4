//! The outbox: actions waiting for the index. Rows of one signal go out in
//! the order they were written; a row leaves the outbox only with a final
//! outcome recorded on its signal.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

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
    conn: &mut SqliteConnection,
    signal_id: &str,
    source: &str,
    action: OutboxAction,
    payload: Option<String>,
    reason: Option<WithdrawReason>,
    end_date: Option<&str>,
    state: OutboxState,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
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
    /// for every batch.
    pub async fn due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.id, o.signal_id, o.source, o.action, o.payload, o.reason, o.end_date, o.attempts FROM outbox o
             WHERE o.state = ? AND o.not_before <= ?
               AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.signal_id = o.signal_id AND p.id < o.id)
             ORDER BY o.not_before, o.id LIMIT ?",
        )
        .bind(OutboxState::Ready)
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
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
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t: Option<String> = sqlx::query_scalar(
            "SELECT MIN(o.not_before) FROM outbox o WHERE o.state = ?
               AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.signal_id = o.signal_id AND p.id < o.id)",
        )
        .bind(OutboxState::Ready)
        .fetch_one(&self.pool)
        .await?;
        Ok(t.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    pub async fn queue_counts(&self) -> Result<QueueCounts, StoreError> {
        // MIN(id): a row to name if the state is not one visync writes.
        let rows = sqlx::query("SELECT state, COUNT(*), MIN(id) FROM outbox GROUP BY state")
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
        for (row, status) in rest {
            record_one(&mut tx, &mut chain, row, status, now, &at).await?;
        }
        chain.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lets a source's held withdrawals go ahead. Returns how many.
    pub async fn release(&self, source: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let at = ts(now);
        let release = transition::RELEASE;
        sqlx::query(
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
        let n = sqlx::query(
            "UPDATE outbox SET state = ?, not_before = ? WHERE source = ? AND state = ?",
        )
        .bind(release.to)
        .bind(&at)
        .bind(source)
        .bind(release.from)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM holds WHERE source = ?")
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

/// Appends `?, ?, …` for `n` values to a query.
fn binds<'a>(q: &mut QueryBuilder<Sqlite>, ids: impl Iterator<Item = &'a str>) {
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    q.push(")");
}

async fn confirm_many(
    conn: &mut SqliteConnection,
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
    let mut q = QueryBuilder::new("UPDATE signals SET state = ");
    q.push_bind(transition::confirmed(action))
        .push(", error = NULL, updated_at = ")
        .push_bind(at)
        .push(" WHERE state IN (");
    binds(
        &mut q,
        transition::confirmed_from(action)
            .iter()
            .map(|s| s.as_str()),
    );
    q.push(" AND signal_id IN (");
    binds(&mut q, ids());
    q.build().execute(&mut *conn).await?;
    let mut q = QueryBuilder::new("DELETE FROM outbox WHERE id IN (");
    let mut list = q.separated(", ");
    for (r, _) in rows {
        list.push_bind(r.id);
    }
    q.push(")");
    q.build().execute(&mut *conn).await?;
    let registered: Vec<&str> = rows
        .iter()
        .filter(|(r, _)| r.action == OutboxAction::Register)
        .map(|(r, _)| r.signal_id.as_str())
        .collect();
    if !registered.is_empty() {
        super::notices::notify_subjects(conn, &registered, at).await?;
    }
    for (row, _) in rows {
        let event = Audit::Confirmed { action: row.action };
        chain
            .append(conn, at, Some(&row.signal_id), Some(&row.source), &event)
            .await?;
    }
    Ok(())
}

async fn record_one(
    conn: &mut SqliteConnection,
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
            sqlx::query("UPDATE outbox SET attempts = attempts + 1, not_before = ?, last_error = ? WHERE id = ?")
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
    conn: &mut SqliteConnection,
    chain: &mut Chain,
    row: &OutboxRow,
    at: &str,
) -> Result<(), StoreError> {
    let mut q = QueryBuilder::<Sqlite>::new("UPDATE signals SET state = ");
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
        super::notices::notify_subject(conn, &row.signal_id, at).await?;
    }
    if let (OutboxAction::Renew, Some(end)) = (row.action, &row.end_date) {
        super::expiry::renewed(conn, &row.signal_id, end, at).await?;
    }
    let event = Audit::Confirmed { action: row.action };
    audit_row(conn, chain, row, at, &event).await
}

/// The index refused the row for good: the signal takes the state the
/// refusal leaves it in, with the index's reason, and the row goes.
async fn refused(
    conn: &mut SqliteConnection,
    chain: &mut Chain,
    row: &OutboxRow,
    code: &str,
    message: &str,
    at: &str,
) -> Result<(), StoreError> {
    let state = transition::refused(row.action, code);
    sqlx::query("UPDATE signals SET state = ?, error = ?, updated_at = ? WHERE signal_id = ?")
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
    conn: &mut SqliteConnection,
    chain: &mut Chain,
    row: &OutboxRow,
    error: &str,
    now: DateTime<Utc>,
    at: &str,
) -> Result<(), StoreError> {
    let quarantine = row.attempts + 1 >= MAX_ATTEMPTS;
    sqlx::query("UPDATE outbox SET attempts = attempts + 1, state = ?, not_before = ?, last_error = ? WHERE id = ?")
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
    conn: &mut SqliteConnection,
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

async fn delete(conn: &mut SqliteConnection, id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM outbox WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

async fn adopt(
    conn: &mut SqliteConnection,
    ours: &str,
    existing: &str,
    at: &str,
) -> Result<(), StoreError> {
    let known: Option<String> =
        sqlx::query_scalar("SELECT signal_id FROM signals WHERE signal_id = ?")
            .bind(existing)
            .fetch_optional(&mut *conn)
            .await?;
    if known.is_some() {
        // We know that id already (an older row of ours): keep it, drop the
        // new one first (one live row per involvement).
        sqlx::query("DELETE FROM signals WHERE signal_id = ?")
            .bind(ours)
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE signals SET state = ?, updated_at = ? WHERE signal_id = ?")
            .bind(transition::adopted())
            .bind(at)
            .bind(existing)
            .execute(&mut *conn)
            .await?;
    } else {
        sqlx::query("UPDATE signals SET signal_id = ?, updated_at = ? WHERE signal_id = ?")
            .bind(existing)
            .bind(at)
            .bind(ours)
            .execute(&mut *conn)
            .await?;
    }
    // Queued rows follow; a register becomes an update of the adopted id,
    // and the signal it carries takes that id.
    let rows = sqlx::query("SELECT id, action, payload FROM outbox WHERE signal_id = ?")
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
        sqlx::query("UPDATE outbox SET signal_id = ?, payload = ?, action = ? WHERE id = ?")
            .bind(existing)
            .bind(payload)
            .bind(action.as_str())
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
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

/// Exponential backoff with jitter: from `unit` (250 ms) doubling, at most
/// five minutes, a random point in the upper half.
pub fn backoff(attempts: i64) -> chrono::Duration {
    let mut jitter = JITTER
        .get_or_init(|| std::sync::Mutex::new(Jitter::from_env()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    jitter.backoff(attempts)
}

/// The backoff's randomness and unit. Random and 250 ms in production; a
/// test sets `VISYNCTEST_JITTER_SEED` (the same seed gives the same waits)
/// and `VISYNCTEST_BACKOFF_UNIT_MS` (0: every retry is due at once), so that
/// a failure reproduces and no test waits on a real backoff.
#[derive(Debug)]
pub struct Jitter {
    rng: fastrand::Rng,
    unit_ms: i64,
}

static JITTER: std::sync::OnceLock<std::sync::Mutex<Jitter>> = std::sync::OnceLock::new();

impl Jitter {
    pub fn new(seed: u64, unit_ms: i64) -> Jitter {
        Jitter {
            rng: fastrand::Rng::with_seed(seed),
            unit_ms,
        }
    }

    fn from_env() -> Jitter {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        Jitter::new(
            var("VISYNCTEST_JITTER_SEED").unwrap_or_else(|| fastrand::u64(..)),
            var("VISYNCTEST_BACKOFF_UNIT_MS").map_or(250, |u| u.min(60_000) as i64),
        )
    }

    pub fn backoff(&mut self, attempts: i64) -> chrono::Duration {
        let cap = self
            .unit_ms
            .saturating_mul(1 << attempts.clamp(0, 20))
            .min(300_000);
        chrono::Duration::milliseconds(self.rng.i64(cap / 2..=cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StateUrl;

    /// Regression (issue 10): the jitter came from an unseeded global source,
    /// so a test that failed on a backoff could not be run again alike.
    #[test]
    fn backoff_jitter_is_injectable() {
        let waits = |seed| {
            let mut j = Jitter::new(seed, 250);
            (1..=6).map(|a| j.backoff(a)).collect::<Vec<_>>()
        };
        assert_eq!(waits(7), waits(7));
        assert_ne!(waits(7), waits(8));
        for (a, w) in (1..=6).zip(waits(7)) {
            let cap = 250 * (1 << a);
            assert!((cap / 2..=cap).contains(&w.num_milliseconds()), "{a}: {w}");
        }
        assert_eq!(Jitter::new(1, 0).backoff(5), chrono::Duration::zero());
        assert!(Jitter::new(1, 250).backoff(40).num_milliseconds() <= 300_000);
    }

    const PAYLOAD: &str = r#"{"signal_id":"s-1","subject":{"bsn":"111222333","family_name":"J","birth_date":"2015-02-03","gender":"F"},"professional":{"id":"E1","name":"P"},"start_date":"2026-11-01","end_date":"2027-11-01"}"#;

    /// A registration that backs off keeps the correction queued behind it
    /// waiting too: the next due time is the registration's, not the
    /// correction's (which would end a pass with work left).
    #[tokio::test]
    async fn the_next_due_time_is_that_of_a_signals_oldest_row() {
        let dir = tempfile::tempdir().unwrap();
        let url = StateUrl::Sqlite(dir.path().join("state.db"));
        let store = Store::open(&url, None).await.unwrap();
        let now = Utc::now();
        let mut tx = store.transaction().await.unwrap();
        for action in [OutboxAction::Register, OutboxAction::Update] {
            enqueue(
                &mut tx,
                "s-1",
                "src",
                action,
                Some(PAYLOAD.into()),
                None,
                None,
                OutboxState::Ready,
                &ts(now),
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
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

    /// A conflict is adopted with the wire types: the queued registration
    /// becomes an update of the index's id, and the signal it carries takes
    /// that id (it was a text replacement of the id inside the payload).
    #[tokio::test]
    async fn a_conflict_moves_the_queued_signal_to_the_existing_id() {
        let dir = tempfile::tempdir().unwrap();
        let url = StateUrl::Sqlite(dir.path().join("state.db"));
        let store = Store::open(&url, None).await.unwrap();
        let now = Utc::now();
        sqlx::query(
            "INSERT INTO signals (signal_id, source, subject_key, professional_id, case_ref,
                start_date, end_date, last_day, content_hash, state, created_at, updated_at)
             VALUES ('ours', 'src', x'00', 'E1', 'C-ours', '2026-11-01', '2027-11-01', '2030-01-01', 1, 'pending', 't', 't')",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let payload = r#"{"signal_id":"ours","subject":{"bsn":"111222333","family_name":"ours","birth_date":"2015-02-03","gender":"F"},"professional":{"id":"E1","name":"P"},"start_date":"2026-11-01","end_date":"2027-11-01"}"#;
        let mut tx = store.transaction().await.unwrap();
        enqueue(
            &mut tx,
            "ours",
            "src",
            OutboxAction::Register,
            Some(payload.into()),
            None,
            None,
            OutboxState::Ready,
            &ts(now),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
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
