//! API sources' polls: the bookmark a delta poll starts from, and how the
//! last poll went (for `visync status` and the daemon's health).

use crate::store::sql;
use sqlx::{AnyConnection, Row};

use super::{Store, StoreError};

/// How one poll ended, as it is recorded with its plan.
#[derive(Debug, Clone, Default)]
pub struct PollRecord {
    pub complete: bool,
    pub pages: u64,
    pub records: u64,
    pub error: Option<String>,
    /// Delta, complete poll: the next poll's start.
    pub bookmark: Option<String>,
}

/// A source's last poll, for `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PollStatus {
    pub source: String,
    pub last_poll_at: String,
    pub last_complete_at: Option<String>,
    pub complete: bool,
    pub records: i64,
    pub bookmark_at: Option<String>,
    pub error: Option<String>,
}

/// Records a poll in the transaction of its plan: the bookmark advances
/// only with the signals it covers.
pub(super) async fn record(
    conn: &mut AnyConnection,
    source: &str,
    poll: &PollRecord,
    at: &str,
) -> Result<(), StoreError> {
    sql::query(
        "INSERT INTO api_polls (source, bookmark, bookmark_at, last_poll_at, last_complete_at, complete, pages, records, error)
         VALUES (?1, ?2, CASE WHEN ?2 IS NULL THEN NULL ELSE ?3 END, ?3, CASE WHEN ?4 = 1 THEN ?3 END, ?4, ?5, ?6, ?7)
         ON CONFLICT (source) DO UPDATE SET
             bookmark = COALESCE(excluded.bookmark, api_polls.bookmark),
             bookmark_at = COALESCE(excluded.bookmark_at, api_polls.bookmark_at),
             last_poll_at = excluded.last_poll_at,
             last_complete_at = COALESCE(excluded.last_complete_at, api_polls.last_complete_at),
             complete = excluded.complete, pages = excluded.pages,
             records = excluded.records, error = excluded.error",
    )
    .bind(source)
    .bind(poll.bookmark.as_deref())
    .bind(at)
    .bind(i64::from(poll.complete))
    .bind(poll.pages as i64)
    .bind(poll.records as i64)
    .bind(poll.error.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Where a delta source's next poll starts; `None` before its first
    /// complete poll.
    pub async fn bookmark(&self, source: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sql::query_scalar("SELECT bookmark FROM api_polls WHERE source = ?")
                .bind(source)
                .fetch_optional(self.pool())
                .await?
                .flatten(),
        )
    }

    pub async fn polls(&self) -> Result<Vec<PollStatus>, StoreError> {
        let rows = sql::query(
            "SELECT source, last_poll_at, last_complete_at, complete, records, bookmark_at, error
             FROM api_polls ORDER BY source",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| PollStatus {
                source: r.get(0),
                last_poll_at: r.get(1),
                last_complete_at: r.get(2),
                complete: r.get::<i64, _>(3) != 0,
                records: r.get(4),
                bookmark_at: r.get(5),
                error: r.get(6),
            })
            .collect())
    }
}
