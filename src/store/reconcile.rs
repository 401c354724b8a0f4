//! The SQL of the comparison with the index (`visync reconcile`, step 1).
//!
//! What the index lists goes, page by page, into a temporary table on one
//! connection (`Comparison`): SQLite keeps it in a temporary file, not in
//! the state database and not in memory, so a million signals cost neither
//! memory nor a write to the store (the dry run opens the store read-only
//! and compares all the same). The decisions are then joins against it.
//!
//! Every writing step works in chunks (`chunked.rs`), each its own
//! transaction with its audit events: a run killed half-way leaves each
//! signal either done or not, and the next run goes on where it stopped.

use crate::store::sql;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::pool::PoolConnection;
use sqlx::Row;

use super::chunked::Chunks;
use super::event::Audit;
use super::states::SignalState;
use super::transition;
use super::{ts, Store, StoreError};
use crate::index::{ListedSignal, ListedState};

/// The state of ours that the comparison looks at for signals the index
/// does not hold as active (`transition::absent_at_index`).
const ABSENT: SignalState = SignalState::Active;

/// Active here, and not active at the index (absent, archived, withdrawn).
/// Left out: signals changed after the listing began (confirmed while it
/// ran: not listed for certain) and those past their end date (expiry,
/// step 3, ends them; re-registering them would be wrong). Binds: the
/// state `transition::absent_at_index` moves, the listing's start, today,
/// `ListedState::Active`.
macro_rules! missing {
    () => {
        "FROM signals s WHERE s.state = ? AND s.updated_at < ? AND s.end_date >= ?
         AND NOT EXISTS (SELECT 1 FROM reconcile_seen x
                         WHERE x.signal_id = s.signal_id AND x.state = ?)"
    };
}

/// Active on both sides with another end date at the index (renewed
/// elsewhere, capped by the index), and nothing of ours on its way that
/// would change it (a queued renewal or correction wins). Binds:
/// `SignalState::Active`, `ListedState::Active`, the listing's start.
macro_rules! end_differs {
    () => {
        "FROM signals s JOIN reconcile_seen x ON x.signal_id = s.signal_id
         WHERE s.state = ? AND x.state = ? AND x.end_date IS NOT NULL
           AND x.end_date <> s.end_date AND s.updated_at < ?
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.signal_id = s.signal_id)"
    };
}

/// One comparison: the connection that holds the temporary table.
pub struct Comparison {
    conn: PoolConnection<sqlx::Any>,
    /// When the listing began (RFC 3339).
    started: String,
    /// Today, as the run sees it.
    today: String,
}

/// A signal the index holds as active that this store does not know.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unknown {
    pub signal_id: String,
    pub professional_id: String,
}

impl Store {
    /// Starts a comparison, listing from `started` on.
    pub async fn comparison(
        &self,
        started: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<Comparison, StoreError> {
        let mut conn = self.pool.acquire().await?;
        // A connection back from an earlier comparison that failed may
        // still hold its table.
        sql::query("DROP TABLE IF EXISTS reconcile_seen")
            .execute(&mut *conn)
            .await?;
        sql::query(
            "CREATE TEMP TABLE reconcile_seen (signal_id TEXT PRIMARY KEY,
                professional_id TEXT NOT NULL, end_date TEXT, state TEXT NOT NULL)",
        )
        .execute(&mut *conn)
        .await?;
        Ok(Comparison {
            conn,
            started: ts(started),
            today: today.to_string(),
        })
    }
}

impl Comparison {
    /// Adds one page of the index's listing.
    pub async fn add(&mut self, page: &[ListedSignal]) -> Result<(), StoreError> {
        // 4 values a row: 250 rows a statement, far under SQLite's limit.
        for chunk in page.chunks(250) {
            let mut q = sql::Builder::new(
                "INSERT INTO reconcile_seen (signal_id, professional_id, end_date, state) ",
            );
            q.push_values(chunk, |row, s| {
                row.push_bind(s.signal_id.as_str())
                    .push_bind(s.professional_id.as_str())
                    .push_bind(s.end_date.as_deref())
                    .push_bind(s.state.as_str());
            });
            // A listing may name a signal twice across its pages; the last
            // word counts.
            q.push(
                " ON CONFLICT (signal_id) DO UPDATE SET professional_id = excluded.professional_id,
                   end_date = excluded.end_date, state = excluded.state",
            );
            q.build().persistent(false).execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    /// How many signals are missing at the index (the dry run's count).
    pub async fn count_missing(&mut self) -> Result<u64, StoreError> {
        let n: i64 = sql::query_scalar(concat!("SELECT COUNT(*) ", missing!()))
            .bind(ABSENT)
            .bind(&self.started)
            .bind(&self.today)
            .bind(ListedState::Active.as_str())
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(n as u64)
    }

    /// Marks the missing signals `missing` (the next source data that lists
    /// the involvement registers it again with the same id) and drops the
    /// corrections and renewals queued for them: the index would refuse
    /// them, and the re-registration carries the content anyway.
    pub async fn mark_missing(&mut self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let at = ts(now);
        let select = concat!(
            "SELECT s.signal_id, s.source ",
            missing!(),
            " AND s.signal_id > ? ORDER BY s.signal_id LIMIT ?"
        );
        let binds = [
            ABSENT.as_str(),
            &self.started,
            &self.today,
            ListedState::Active.as_str(),
        ];
        let to = transition::absent_at_index(ABSENT).expect("ABSENT is the state it moves");
        let mut chunks = Chunks::new(select, "reconcile-chunk");
        while let Some(mut c) = chunks.next(&mut self.conn, &binds).await? {
            for r in &c.rows {
                let (id, source): (String, String) = (r.get(0), r.get(1));
                super::signals::end_outside_plan(&mut c.tx, &id, to, &at).await?;
                let event = Audit::SignalMissing;
                c.chain
                    .append(&mut c.tx, &at, Some(&id), Some(&source), &event)
                    .await?;
            }
            chunks.commit(c).await?;
        }
        Ok(chunks.done())
    }

    /// How many end dates the index has otherwise (the dry run's count).
    pub async fn count_end_dates(&mut self) -> Result<u64, StoreError> {
        let n: i64 = sql::query_scalar(concat!("SELECT COUNT(*) ", end_differs!()))
            .bind(SignalState::Active)
            .bind(ListedState::Active.as_str())
            .bind(&self.started)
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(n as u64)
    }

    /// Takes the index's end dates. The signal is marked renewed, so that
    /// the next file of the source does not correct the date back ("a
    /// renewal stands until the source itself sets an end", plan/).
    pub async fn take_end_dates(&mut self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let at = ts(now);
        let select = concat!(
            "SELECT s.signal_id, s.source, s.end_date, x.end_date ",
            end_differs!(),
            " AND s.signal_id > ? ORDER BY s.signal_id LIMIT ?"
        );
        let binds = [
            SignalState::Active.as_str(),
            ListedState::Active.as_str(),
            &self.started,
        ];
        let mut chunks = Chunks::new(select, "reconcile-chunk");
        while let Some(mut c) = chunks.next(&mut self.conn, &binds).await? {
            for r in &c.rows {
                let (id, source): (String, String) = (r.get(0), r.get(1));
                let (ours, theirs): (String, String) = (r.get(2), r.get(3));
                sql::query(
                    "UPDATE signals SET end_date = ?, renewed = 1, updated_at = ? WHERE signal_id = ?",
                )
                .bind(&theirs)
                .bind(&at)
                .bind(&id)
                .execute(&mut *c.tx)
                .await?;
                let event = Audit::EndDateTaken {
                    from: &ours,
                    to: &theirs,
                };
                c.chain
                    .append(&mut c.tx, &at, Some(&id), Some(&source), &event)
                    .await?;
            }
            chunks.commit(c).await?;
        }
        Ok(chunks.done())
    }

    /// Signals the index holds as active that this store does not know, in
    /// id order: reported, never withdrawn.
    pub async fn unknown(&mut self) -> Result<Vec<Unknown>, StoreError> {
        let rows = sql::query(
            "SELECT x.signal_id, x.professional_id FROM reconcile_seen x
             WHERE x.state = ?
               AND NOT EXISTS (SELECT 1 FROM signals s WHERE s.signal_id = x.signal_id)
             ORDER BY x.signal_id",
        )
        .bind(ListedState::Active.as_str())
        .fetch_all(&mut *self.conn)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Unknown {
                signal_id: r.get(0),
                professional_id: r.get(1),
            })
            .collect())
    }

    /// Drops the temporary table (and its file).
    pub async fn finish(mut self) -> Result<(), StoreError> {
        sql::query("DROP TABLE IF EXISTS reconcile_seen")
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }
}

/// The ids new registrations take: a `missing` signal's own id where the
/// store holds one for the involvement (its row makes way for the new
/// one: the index is told the same `signal_id` again, reconcile.md), else
/// the id the planner made.
pub async fn ids_for(
    conn: &mut sqlx::AnyConnection,
    source: &str,
    new: &[super::signals::NewSignal],
) -> Result<Vec<String>, StoreError> {
    let any = super::signals::has_missing(conn, source).await?;
    let mut ids = Vec::with_capacity(new.len());
    for n in new {
        let old: Option<String> = if any {
            sql::query_scalar(
                "SELECT signal_id FROM signals WHERE state = ? AND source = ?
                 AND subject_key = ? AND professional_id = ? LIMIT 1",
            )
            .bind(SignalState::Missing)
            .bind(source)
            .bind(&n.key.subject.0[..])
            .bind(&*n.key.professional)
            .fetch_optional(&mut *conn)
            .await?
        } else {
            None
        };
        if let Some(old) = &old {
            sql::query("DELETE FROM signals WHERE signal_id = ?")
                .bind(old)
                .execute(&mut *conn)
                .await?;
        }
        ids.push(old.unwrap_or_else(|| n.id.clone()));
    }
    Ok(ids)
}
