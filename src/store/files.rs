//! The file ledger: which files were taken, by content hash, and what became
//! of them.

use crate::store::sql;
use sqlx::Row;

use super::states::{LedgerOutcome, Stored};
use super::{Store, StoreError};

/// A file as the ledger knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub name: String,
    pub outcome: LedgerOutcome,
    pub taken_at: String,
}

/// A file about to be recorded.
#[derive(Debug, Clone)]
pub struct TakenFile {
    pub source: String,
    pub name: String,
    pub sha256: String,
    pub size: u64,
    pub records: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub skipped: u64,
}

/// What a source's files amounted to, for `visync status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceTotals {
    pub source: String,
    pub files_processed: u64,
    pub files_rejected: u64,
    pub records_accepted: u64,
    pub records_rejected: u64,
    pub records_skipped: u64,
    /// When a file of this source was last taken and processed.
    pub last_success: Option<String>,
}

impl Store {
    /// Per source: files and records taken since the ledger began.
    pub async fn source_totals(&self) -> Result<Vec<SourceTotals>, StoreError> {
        let rows = sql::query(
            "SELECT source,
                    SUM(CASE WHEN outcome = ? THEN 1 ELSE 0 END),
                    SUM(CASE WHEN outcome = ? THEN 1 ELSE 0 END),
                    CAST(SUM(accepted) AS BIGINT), CAST(SUM(rejected) AS BIGINT),
                    CAST(SUM(skipped) AS BIGINT),
                    MAX(CASE WHEN outcome = ? THEN taken_at END)
               FROM files GROUP BY source ORDER BY source",
        )
        .bind(LedgerOutcome::Processed)
        .bind(LedgerOutcome::Rejected)
        .bind(LedgerOutcome::Processed)
        .fetch_all(&self.pool)
        .await?;
        let n =
            |r: &sqlx::any::AnyRow, i: usize| r.get::<Option<i64>, _>(i).unwrap_or(0).max(0) as u64;
        Ok(rows
            .iter()
            .map(|r| SourceTotals {
                source: r.get(0),
                files_processed: n(r, 1),
                files_rejected: n(r, 2),
                records_accepted: n(r, 3),
                records_rejected: n(r, 4),
                records_skipped: n(r, 5),
                last_success: r.get(6),
            })
            .collect())
    }

    pub async fn file_seen(
        &self,
        source: &str,
        sha256: &str,
    ) -> Result<Option<FileRecord>, StoreError> {
        let row = sql::query(
            "SELECT name, outcome, taken_at, id FROM files WHERE source = ? AND sha256 = ?",
        )
        .bind(source)
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(FileRecord {
                name: r.get(0),
                outcome: LedgerOutcome::read("files", r.get::<i64, _>(3), "outcome", r.get(1))?,
                taken_at: r.get(2),
            })
        })
        .transpose()
    }

    /// The last file taken per source, for `status`.
    pub async fn last_files(&self) -> Result<Vec<(String, FileRecord)>, StoreError> {
        let rows = sql::query(
            "SELECT source, name, outcome, taken_at, id FROM files f WHERE id = (SELECT MAX(id) FROM files g WHERE g.source = f.source) ORDER BY source",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let outcome =
                    LedgerOutcome::read("files", r.get::<i64, _>(4), "outcome", r.get(2))?;
                Ok((
                    r.get(0),
                    FileRecord {
                        name: r.get(1),
                        outcome,
                        taken_at: r.get(3),
                    },
                ))
            })
            .collect()
    }
}

pub(super) async fn insert(
    conn: &mut sqlx::AnyConnection,
    f: &TakenFile,
    outcome: LedgerOutcome,
    error: Option<&str>,
    at: &str,
) -> Result<(), StoreError> {
    sql::query(
        "INSERT INTO files (source, name, sha256, size, taken_at, outcome, records, accepted, rejected, skipped, error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&f.source)
    .bind(&f.name)
    .bind(&f.sha256)
    .bind(f.size as i64)
    .bind(at)
    .bind(outcome.as_str())
    .bind(f.records as i64)
    .bind(f.accepted as i64)
    .bind(f.rejected as i64)
    .bind(f.skipped as i64)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}
