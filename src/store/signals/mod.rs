//! Signals and the plan applied to them: the baseline the planner diffs
//! against and the lookups of a plan's writes here; the writes themselves
//! (`write.rs`), all inside one transaction.

mod write;

pub(super) use self::write::{
    drop_holds, end_outside_plan, hold, register_many, renew, update, withdraw,
};
pub use self::write::{payload, withdraw_planned};

use crate::store::sql;
use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sqlx::{AnyConnection, Row};

use super::states::{live_states, SignalState};
use super::{Store, StoreError};
use crate::domain::{ContentHash, Signal, SubjectKey, WithdrawReason};
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
/// The columns the planner reads of a live signal (`baseline_row`).
const BASELINE: &str =
    "SELECT subject_key, professional_id, content_hash, end_date, renewed, signal_id FROM signals";

/// Children per `baseline_of` query, under SQLite's bound-variable limit.
const BASELINE_BATCH: usize = 500;

fn baseline_row(r: &sqlx::any::AnyRow) -> Result<(InvolvementKey, Stored), StoreError> {
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
        let mut q = sql::Builder::new(BASELINE);
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
            let mut q = sql::Builder::new(BASELINE);
            q.push(" WHERE source = ")
                .push_bind(source)
                .push(" AND ")
                .push(live_states())
                .push(" AND subject_key IN (");
            q.push_list(chunk.iter().map(|s| &s.0[..])).push(")");
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
        let rows = sql::query("SELECT subject_key FROM objections")
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
    conn: &mut AnyConnection,
    source: &str,
) -> Result<bool, StoreError> {
    // A count, not `EXISTS`: PostgreSQL answers that as a boolean, SQLite
    // as a number.
    let n: i64 = sql::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM signals WHERE state = ? AND source = ? LIMIT 1) x",
    )
    .bind(SignalState::Missing)
    .bind(source)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// The id of an involvement's `missing` signal: registered again, it keeps
/// that id (the store swaps the row at the insert), so the audit event
/// names the id the index is told.
pub(super) async fn missing_id(
    conn: &mut AnyConnection,
    source: &str,
    key: &InvolvementKey,
) -> Result<Option<String>, StoreError> {
    Ok(sql::query_scalar(
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
/// The live signal id of an involvement.
pub(super) async fn live_id(
    conn: &mut AnyConnection,
    source: &str,
    key: &InvolvementKey,
) -> Result<Option<String>, StoreError> {
    Ok(sql::query_scalar(format!(
        "SELECT signal_id FROM signals WHERE source = ? AND subject_key = ? AND professional_id = ?
         AND {}",
        live_states()
    ))
    .bind(source)
    .bind(&key.subject.0[..])
    .bind(&*key.professional)
    .fetch_optional(conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::{live_states, BASELINE};
    use crate::config::StateUrl;
    use crate::store::sql;
    use crate::store::Store;

    /// Regression (issue 10): an end date the store could not read became
    /// `NaiveDate::MIN` and went to the planner, which would then plan on a
    /// made-up date. It is an error naming the row.
    #[tokio::test]
    async fn an_unparsable_stored_end_date_is_an_error_naming_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let url = StateUrl::Sqlite(dir.path().join("state.db"));
        let store = Store::open(&url, None).await.unwrap();
        sql::query(
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
                sql::query_as(format!("EXPLAIN QUERY PLAN {sql}"))
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
                sql::query(
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
        sql::query(
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
