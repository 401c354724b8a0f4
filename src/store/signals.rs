//! Signals and the plan applied to them: the baseline the planner diffs
//! against, and the writes a file's plan makes, all inside one transaction.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite, SqliteConnection};

use super::states::{live_states, OutboxAction, OutboxState, SignalState};
use super::{ts, Store, StoreError};
use crate::domain::{age_on, Audience, ContentHash, Signal, SubjectKey, WithdrawReason};
use crate::plan::{InvolvementKey, Stored};

/// What applying one file's plan did, for the pass summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub registered: u64,
    pub updated: u64,
    pub withdrawn: u64,
    pub renewed: u64,
    pub held: u64,
}

/// One row of `signals`, as `subject` shows it: everything kept, which is
/// no BSN and no name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignalRow {
    pub signal_id: String,
    pub source: String,
    pub professional_id: String,
    pub case_ref: String,
    pub start_date: String,
    pub end_date: String,
    pub state: SignalState,
    #[serde(serialize_with = "super::states::serialize_text")]
    pub withdraw_reason: Option<WithdrawReason>,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn key16(bytes: &[u8]) -> [u8; 16] {
    let mut k = [0u8; 16];
    let n = bytes.len().min(16);
    k[..n].copy_from_slice(&bytes[..n]);
    k
}

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

/// The columns the planner reads of a live signal (`baseline_row`).
const BASELINE: &str =
    "SELECT subject_key, professional_id, content_hash, end_date, renewed, signal_id FROM signals";

/// Children per `baseline_of` query, under SQLite's bound-variable limit.
const BASELINE_BATCH: usize = 500;

fn baseline_row(r: &sqlx::sqlite::SqliteRow) -> Result<(InvolvementKey, Stored), StoreError> {
    let key = InvolvementKey {
        subject: SubjectKey(key16(r.get::<&[u8], _>(0))),
        professional: r.get::<String, _>(1).into(),
    };
    let end: String = r.get(3);
    // A date the store cannot read is a damaged store, not a date to
    // guess: planning on a made-up end date would renew or withdraw on it.
    let end_date = NaiveDate::parse_from_str(&end, "%Y-%m-%d").map_err(|_| {
        StoreError::Corrupt(format!(
            "signals row {}: end_date {end:?} is not a YYYY-MM-DD date; restore the state from a backup",
            r.get::<String, _>(5)
        ))
    })?;
    let stored = Stored {
        content: ContentHash(r.get::<i64, _>(2) as u64),
        active: true,
        end_date,
        renewed: r.get::<i64, _>(4) != 0,
    };
    Ok((key, stored))
}

/// A registration waiting to be written with others (`register_many`).
pub struct NewSignal {
    pub id: String,
    pub key: InvolvementKey,
    pub signal: Box<Signal>,
    pub last_day: NaiveDate,
}

/// Rows per multi-row INSERT: 12 values each into `signals`, 9 into
/// `outbox`, far under SQLite's bound-variable limit.
pub const REGISTER_ROWS: usize = 200;

impl Store {
    /// The live (pending or active) signals of a source, as the planner sees
    /// them: what a snapshot's plan needs, since it withdraws what the file
    /// no longer lists.
    pub async fn baseline(
        &self,
        source: &str,
    ) -> Result<HashMap<InvolvementKey, Stored>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(BASELINE);
        q.push(" WHERE source = ")
            .push_bind(source)
            .push(" AND ")
            .push(live_states());
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            let (key, stored) = baseline_row(&r)?;
            out.insert(key, stored);
        }
        Ok(out)
    }

    /// The live signals of a source's given children only: all a delta's
    /// plan needs, since a delta withdraws nothing it does not list. Loading
    /// the whole source instead made every small delta cost as much memory
    /// and time as the store is large (the daemon's memory grew with every
    /// file it took; docs/benchmarks.md).
    pub async fn baseline_of(
        &self,
        source: &str,
        subjects: impl IntoIterator<Item = SubjectKey>,
    ) -> Result<HashMap<InvolvementKey, Stored>, StoreError> {
        let mut subjects: Vec<SubjectKey> = subjects.into_iter().collect();
        subjects.sort_unstable_by_key(|s| s.0);
        subjects.dedup();
        let mut out = HashMap::with_capacity(subjects.len());
        let mut conn = self.pool.acquire().await?;
        for chunk in subjects.chunks(BASELINE_BATCH) {
            let mut q = QueryBuilder::<Sqlite>::new(BASELINE);
            q.push(" WHERE source = ")
                .push_bind(source)
                .push(" AND ")
                .push(live_states())
                .push(" AND subject_key IN (");
            let mut list = q.separated(", ");
            for s in chunk {
                list.push_bind(&s.0[..]);
            }
            list.push_unseparated(")");
            // Not kept prepared: the text differs with the batch's length,
            // and each length kept would hold a statement per connection.
            for r in q.build().persistent(false).fetch_all(&mut *conn).await? {
                let (key, stored) = baseline_row(&r)?;
                out.insert(key, stored);
            }
        }
        Ok(out)
    }

    pub async fn objections(&self) -> Result<HashSet<SubjectKey>, StoreError> {
        let rows = sqlx::query("SELECT subject_key FROM objections")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| SubjectKey(key16(r.get::<&[u8], _>(0))))
            .collect())
    }
}

/// Whether the source has signals the index lost (`missing`, reconcile.md):
/// only then can a registration take an old id back.
pub(super) async fn has_missing(
    conn: &mut SqliteConnection,
    source: &str,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM signals WHERE state = ? AND source = ?)")
            .bind(SignalState::Missing)
            .bind(source)
            .fetch_one(conn)
            .await?,
    )
}

/// The id of an involvement's `missing` signal: registered again, it keeps
/// that id (the store swaps the row at the insert), so the audit event
/// names the id the index is told.
pub(super) async fn missing_id(
    conn: &mut SqliteConnection,
    source: &str,
    key: &InvolvementKey,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT signal_id FROM signals WHERE state = ? AND source = ?
         AND subject_key = ? AND professional_id = ? LIMIT 1",
    )
    .bind(SignalState::Missing)
    .bind(source)
    .bind(&key.subject.0[..])
    .bind(&*key.professional)
    .fetch_optional(conn)
    .await?)
}

/// A withdrawal decided outside a file's plan (an objection, a
/// decommission): the signal withdrawn, its outbox row queued, and the
/// decision in the audit trail, in the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub async fn withdraw_planned(
    conn: &mut SqliteConnection,
    chain: &mut super::audit::Chain,
    at: &str,
    source: &str,
    id: &str,
    reason: WithdrawReason,
    decommission: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    withdraw(&mut *conn, source, id, reason, false, now).await?;
    let event = super::Audit::WithdrawPlanned {
        reason,
        decommission,
    };
    chain.append(conn, at, Some(id), Some(source), &event).await
}

/// The live signal id of an involvement.
pub(super) async fn live_id(
    conn: &mut SqliteConnection,
    source: &str,
    key: &InvolvementKey,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT signal_id FROM signals WHERE source = ? AND subject_key = ? AND professional_id = ?
         AND {}",
        live_states()
    )))
    .bind(source)
    .bind(&key.subject.0[..])
    .bind(&*key.professional)
    .fetch_optional(conn)
    .await?)
}

/// Registers new involvements: a pending signal and its outbox row each, in
/// two multi-row statements (a first load registers every row of a file).
pub(super) async fn register_many(
    conn: &mut SqliteConnection,
    source: &str,
    new: &[NewSignal],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if new.is_empty() {
        return Ok(());
    }
    let now = ts(now);
    // An involvement the index lost is registered again under its own id.
    let ids = super::reconcile::ids_for(conn, source, new).await?;
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO signals (signal_id, source, subject_key, professional_id, case_ref, start_date,
                              end_date, last_day, content_hash, audience, state, created_at, updated_at) ",
    );
    q.push_values(new.iter().zip(&ids), |mut row, (n, id)| {
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
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO outbox (signal_id, source, action, payload, state, not_before, created_at) ",
    );
    q.push_values(new.iter().zip(&ids), |mut row, (n, id)| {
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
pub(super) async fn update(
    conn: &mut SqliteConnection,
    source: &str,
    id: &str,
    signal: &Signal,
    last_day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = ts(now);
    sqlx::query(
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
    let replaced = sqlx::query(
        "UPDATE outbox SET payload = ? WHERE signal_id = ? AND action IN (?, ?)
         AND state = ? AND attempts = 0",
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
        super::outbox::enqueue(
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
pub(super) async fn withdraw(
    conn: &mut SqliteConnection,
    source: &str,
    id: &str,
    reason: WithdrawReason,
    held: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = ts(now);
    if !held {
        sqlx::query(
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
    super::outbox::enqueue(
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

pub(super) async fn renew(
    conn: &mut SqliteConnection,
    source: &str,
    id: &str,
    end: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = ts(now);
    sqlx::query("UPDATE signals SET end_date = ?, renewed = 1, updated_at = ? WHERE signal_id = ?")
        .bind(end.to_string())
        .bind(&now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    super::outbox::enqueue(
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
pub(super) async fn hold(
    conn: &mut SqliteConnection,
    source: &str,
    file: &str,
    withdrawals: u64,
    active: u64,
    at: &str,
) -> Result<(), StoreError> {
    sqlx::query(
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
pub(super) async fn end_outside_plan(
    conn: &mut SqliteConnection,
    id: &str,
    to: SignalState,
    at: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE signals SET state = ?, updated_at = ? WHERE signal_id = ?")
        .bind(to)
        .bind(at)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM outbox WHERE signal_id = ? AND action IN (?, ?)")
        .bind(id)
        .bind(OutboxAction::Update)
        .bind(OutboxAction::Renew)
        .execute(conn)
        .await?;
    Ok(())
}

/// Drops a source's held withdrawals: a newer snapshot decides again.
pub(super) async fn drop_holds(
    conn: &mut SqliteConnection,
    source: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM outbox WHERE source = ? AND state = ?")
        .bind(source)
        .bind(OutboxState::Held)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM holds WHERE source = ?")
        .bind(source)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::AssertSqlSafe;

    use super::{live_states, BASELINE};
    use crate::config::StateUrl;
    use crate::store::Store;

    /// Regression (issue 10): an end date the store could not read became
    /// `NaiveDate::MIN` and went to the planner, which would then plan on a
    /// made-up date. It is an error naming the row.
    #[tokio::test]
    async fn an_unparsable_stored_end_date_is_an_error_naming_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let url = StateUrl::Sqlite(dir.path().join("state.db"));
        let store = Store::open(&url, None).await.unwrap();
        sqlx::query(
            "INSERT INTO signals (signal_id, source, subject_key, professional_id, case_ref,
                start_date, end_date, last_day, content_hash, state, created_at, updated_at)
             VALUES ('sig-7', 'src', x'00112233445566778899aabbccddeeff', 'E1', 'C-1',
                '2026-11-01', 'not a date', '2030-01-01', 1, 'active', 't', 't')",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let err = store.baseline("src").await.unwrap_err().to_string();
        assert!(err.contains("signals row sig-7"), "{err}");
        assert!(err.contains("end_date"), "{err}");
    }

    /// The live states are SQL literals where `signals_live` must serve:
    /// with bound states SQLite cannot prove the partial index's predicate
    /// and scanned every signal of the store for a source's baseline.
    #[tokio::test]
    async fn baselines_and_live_lookups_use_the_partial_index() {
        let dir = tempfile::tempdir().unwrap();
        let url = StateUrl::Sqlite(dir.path().join("state.db"));
        let store = Store::open(&url, None).await.unwrap();
        for sql in [
            format!("{BASELINE} WHERE source = ? AND {}", live_states()),
            format!(
                "SELECT signal_id FROM signals WHERE source = ? AND subject_key = ? AND professional_id = ?
                 AND {}",
                live_states()
            ),
        ] {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                    .bind("src")
                    .bind(&[0u8; 16][..])
                    .bind("E1")
                    .fetch_all(store.pool())
                    .await
                    .unwrap();
            let plan: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
            assert!(
                plan.iter().any(|p| p.contains("USING INDEX signals_live")),
                "{sql}: {plan:?}"
            );
        }
    }

    /// A delta's baseline holds the live signals of the children it names,
    /// of this source only, and nothing else: not withdrawn ones, not other
    /// children's, even past one query's batch of children.
    #[tokio::test]
    async fn a_deltas_baseline_holds_only_its_childrens_live_signals() {
        use crate::domain::SubjectKey;
        let dir = tempfile::tempdir().unwrap();
        let url = StateUrl::Sqlite(dir.path().join("state.db"));
        let store = Store::open(&url, None).await.unwrap();
        let child = |n: u32| {
            let mut k = [0u8; 16];
            k[..4].copy_from_slice(&n.to_be_bytes());
            SubjectKey(k)
        };
        // Children 0..1200 live in `src`, two professionals each; child 5's
        // second involvement is withdrawn; `other` holds child 7 too.
        for n in 0..1200u32 {
            for (prof, state) in [
                ("E1", "active"),
                ("E2", if n == 5 { "withdrawn" } else { "pending" }),
            ] {
                sqlx::query(
                    "INSERT INTO signals (signal_id, source, subject_key, professional_id, case_ref,
                        start_date, end_date, last_day, content_hash, state, created_at, updated_at)
                     VALUES (?, 'src', ?, ?, 'C', '2026-11-01', '2027-11-01', '2030-01-01', 1, ?, 't', 't')",
                )
                .bind(format!("sig-{n}-{prof}"))
                .bind(&child(n).0[..])
                .bind(prof)
                .bind(state)
                .execute(store.pool())
                .await
                .unwrap();
            }
        }
        sqlx::query(
            "INSERT INTO signals (signal_id, source, subject_key, professional_id, case_ref,
                start_date, end_date, last_day, content_hash, state, created_at, updated_at)
             VALUES ('o-7', 'other', ?, 'E9', 'C', '2026-11-01', '2027-11-01', '2030-01-01', 1, 'active', 't', 't')",
        )
        .bind(&child(7).0[..])
        .execute(store.pool())
        .await
        .unwrap();

        let named = [5, 7, 7, 1100, 5000].map(child);
        let got = store.baseline_of("src", named).await.unwrap();
        let mut keys: Vec<_> = got
            .keys()
            .map(|k| {
                (
                    u32::from_be_bytes(k.subject.0[..4].try_into().unwrap()),
                    k.professional.to_string(),
                )
            })
            .collect();
        keys.sort();
        let want: Vec<(u32, String)> =
            [(5, "E1"), (7, "E1"), (7, "E2"), (1100, "E1"), (1100, "E2")]
                .map(|(n, p)| (n, p.to_string()))
                .into();
        assert_eq!(keys, want);

        // Every child named: the same as the whole source's baseline.
        let all = store
            .baseline_of("src", (0..1200).map(child))
            .await
            .unwrap();
        assert_eq!(all, store.baseline("src").await.unwrap());
        assert_eq!(all.len(), 2399);
    }
}
