//! The reference index's own SQLite store (WAL). Every call is one
//! transaction that first brings the lifecycle up to the sim's today
//! (`lifecycle::sweep`), then makes its change, then sweeps again, so that a
//! state change and the notices it causes are committed together or not at
//! all.
//!
//! The pool holds one connection: the sim needs correctness, not throughput,
//! and serial transactions make "check for a conflict, then insert" safe
//! without retry loops. The partial unique index on active signals guards the
//! same invariant in the database itself.
//!
//! The national tier adds `national.rs` (a region's forwarded states, on a
//! national index) and `forward.rs` (the forward queue and the notices
//! fanned out from the national index, on a regional one).
//!
//! What the modules share (`Ctx`, `StoreError`, `ItemResult`, `day`) is in
//! `types.rs`, which imports none of them, so that no two of them import
//! each other.
//!
//! Must not: log anything that identifies a child or a professional.

mod bulk;
mod forward;
mod lifecycle;
mod national;
mod types;
mod write;

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::SqliteConnection;

use crate::bsn::Bsn;
use crate::rules::Rules;

pub use forward::UpNotice;
pub use national::TierResult;
use types::day;
pub use types::{Ctx, ItemResult, StoreError};

/// One of an organisation's own signals, as `GET /v1/signals` shows it: no
/// BSN, no name.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Listed {
    pub id: i64,
    pub signal_id: String,
    pub professional_id: String,
    pub start_date: String,
    pub end_date: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Notice {
    pub seq: i64,
    pub notice_id: String,
    pub kind: String,
    pub signal_id: String,
    pub created_at: String,
    /// JSON array, stored as made.
    pub counterparts: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub active_signals: i64,
    pub archived_signals: i64,
    pub register_calls: i64,
    pub duplicate_signals: i64,
    pub notices: i64,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (or creates) the store, migrates it and recomputes the dates that
    /// depend on the rules, which may differ from the last start.
    pub async fn open(path: &Path, rules: &Rules) -> Result<Store, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        // The index's own migrations (crates/index-sim/migrations), in its
        // own file: nothing here touches the connector's state store.
        sqlx::migrate!("./migrations").run(&pool).await?;
        let store = Store { pool };
        store.apply_rules(rules).await?;
        Ok(store)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn apply_rules(&self, rules: &Rules) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT id, birth_date, archived_on FROM signals")
                .fetch_all(&mut *tx)
                .await?;
        for (id, birth, archived) in rows {
            let subject_purge = rules.limit_birthday(day(&birth)?);
            let purge_on = match archived {
                Some(a) => Some(rules.purge_archived_on(day(&a)?).to_string()),
                None => None,
            };
            sqlx::query("UPDATE signals SET subject_purge_on = ?, purge_on = ? WHERE id = ?")
                .bind(subject_purge.to_string())
                .bind(purge_on)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the family ties with those of `--families`.
    pub async fn replace_families(&self, ties: &[(Bsn, String)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM families")
            .execute(&mut *tx)
            .await?;
        for (bsn, family) in ties {
            sqlx::query("INSERT OR IGNORE INTO families (bsn, family_id) VALUES (?, ?)")
                .bind(bsn.as_str())
                .bind(family)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Brings the lifecycle up to `ctx.today` (after a clock change).
    pub async fn sweep(&self, ctx: &Ctx) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        lifecycle::sweep(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A page of an organisation's own signals after the internal id `after`,
    /// in id order (stable: new signals come last, gone ones leave no gap to
    /// trip over). Returns the page and whether more follow.
    pub async fn list(
        &self,
        ctx: &Ctx,
        org: &str,
        state: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<(Vec<Listed>, bool), StoreError> {
        let mut tx = self.pool.begin().await?;
        lifecycle::sweep(&mut tx, ctx).await?;
        let mut rows: Vec<Listed> = sqlx::query_as(
            "SELECT id, signal_id, professional_id, start_date, end_date, state FROM signals \
             WHERE org = ? AND id > ? AND (? IS NULL OR state = ?) ORDER BY id LIMIT ?",
        )
        .bind(org)
        .bind(after)
        .bind(state)
        .bind(state)
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }

    /// An organisation's notices after cursor `after`, oldest first.
    pub async fn notices(
        &self,
        ctx: &Ctx,
        org: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Notice>, StoreError> {
        let mut tx = self.pool.begin().await?;
        lifecycle::sweep(&mut tx, ctx).await?;
        let rows = sqlx::query_as(
            "SELECT seq, notice_id, kind, signal_id, created_at, counterparts FROM notices \
             WHERE org = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(org)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    pub async fn stats(&self, ctx: &Ctx) -> Result<Stats, StoreError> {
        let mut tx = self.pool.begin().await?;
        lifecycle::sweep(&mut tx, ctx).await?;
        let (active_signals, archived_signals): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(state = 'active'), 0), COALESCE(SUM(state = 'archived'), 0) \
             FROM signals",
        )
        .fetch_one(&mut *tx)
        .await?;
        let (register_calls,): (i64,) =
            sqlx::query_as("SELECT value FROM counters WHERE name = 'register_calls'")
                .fetch_one(&mut *tx)
                .await?;
        // Counted, not assumed: pairs within each (organisation, professional,
        // subject) group of active signals. On a national index the
        // organisation is (region, origin); `origin` is '' on a regional one.
        let (duplicate_signals,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(SUM(n * (n - 1) / 2), 0) FROM (SELECT COUNT(*) AS n FROM signals \
             WHERE state = 'active' GROUP BY org, origin, professional_id, bsn)",
        )
        .fetch_one(&mut *tx)
        .await?;
        let (notices,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM notices")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Stats {
            active_signals,
            archived_signals,
            register_calls,
            duplicate_signals,
            notices,
        })
    }
}

/// Whether the organisation's signal id was purged (only its id is left).
async fn is_tombstone(
    c: &mut SqliteConnection,
    org: &str,
    signal_id: &str,
) -> Result<bool, StoreError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM tombstones WHERE org = ? AND signal_id = ?")
            .bind(org)
            .bind(signal_id)
            .fetch_optional(&mut *c)
            .await?;
    Ok(row.is_some())
}
