//! The state store: one transactional database (SQLite now; the SQL is kept
//! portable for PostgreSQL) holding the file ledger, the signals this
//! installation owns, the outbox, holds, objections, cursors and the audit
//! trail. This module owns all SQL; callers see typed operations.
//!
//! Invariants it keeps (ARCHITECTURE.md): an action enters the outbox in the
//! same transaction as the state change that caused it; a file is recorded
//! with its outcome in the same transaction as its signals; a confirmed signal
//! keeps no BSN or name in clear.

mod audit;
mod chunked;
pub mod decommission;
mod event;
mod expiry;
pub mod files;
mod key;
pub mod notices;
mod objection;
mod outbox;
pub mod polls;
mod reconcile;
mod retention;
#[cfg(test)]
mod schema_tests;
pub mod signals;
mod states;
mod status;
#[cfg(test)]
mod strict_tests;
mod subject;
mod transition;
mod tx;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use audit::AuditEvent;
pub use event::Audit;
pub use expiry::{Expiring, Renewal};
pub use files::{FileRecord, TakenFile};
pub use notices::{Counterpart, Notice, NoticeCounts};
pub use objection::Objected;
pub use outbox::{backoff, OutboxAction, OutboxRow, QueueCounts, Status, MAX_ATTEMPTS};
pub use reconcile::{Comparison, Unknown};
pub use retention::{Cuts, Purged};
pub use signals::{Applied, SignalRow};
pub use states::{
    LedgerOutcome, NoticeKind, NoticeReason, NoticeState, OutboxState, SignalState, Stored,
};
pub use status::{Hold, Quarantined};
pub use subject::SubjectRecord;
pub use tx::Tx;

use crate::config::StateUrl;
use crate::domain::SubjectHasher;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the state store {}: cannot create its folder: {source}", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the state store {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("the state store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the state store's migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the subject key {path}: {message}")]
    Key { path: PathBuf, message: String },
    /// The key file cannot be read or written: `what` is the step.
    #[error("the subject key {}: cannot {what} it: {source}", path.display())]
    KeyIo {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("PostgreSQL state is not supported by this version yet; use sqlite://PATH")]
    Postgres,
    /// A stored value that cannot be what the store wrote: named by its row.
    #[error("the state store is damaged: {0}")]
    Corrupt(String),
}

/// The state store, with the keyed hasher that goes with it.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    hasher: SubjectHasher,
    /// Opened for writing (not the dry run's read-only view): only then is
    /// there a WAL of ours to scrub at close.
    writable: bool,
}

/// One connection to an existing SQLite store, read-only: the dry run, and
/// a store whose key is gone (`decommission.rs`).
async fn read_only_pool(path: &Path) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .read_only(true)
        .busy_timeout(Duration::from_secs(30));
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })
}

/// Where a SQLite store keeps its key, unless the config says otherwise.
pub fn default_key_file(db: &Path) -> PathBuf {
    db.with_file_name("subject.key")
}

impl Store {
    /// Opens (creating if needed) the store and its key, and migrates it.
    pub async fn open(url: &StateUrl, key_file: Option<&Path>) -> Result<Store, StoreError> {
        let StateUrl::Sqlite(path) = url else {
            return Err(StoreError::Postgres);
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                path: path.clone(),
                source,
            })?;
        }
        let key_path = key_file.map_or_else(|| default_key_file(path), Path::to_path_buf);
        let key = key::load_or_create(&key_path)?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed transaction survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // What the law makes us delete (confirmed payloads, delivered
            // notices' contact data, purged signals) is overwritten with
            // zeros, not left in free pages for `strings` to find.
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        sqlx::migrate!("src/store/migrations/sqlite")
            .run(&pool)
            .await?;
        Ok(Store {
            pool,
            hasher: SubjectHasher::new(&key),
            writable: true,
        })
    }

    /// Opens an existing store read-only, for the dry run; `None` when there is
    /// none yet (the dry run then plans against an empty state and creates
    /// nothing).
    pub async fn open_read_only(
        url: &StateUrl,
        key_file: Option<&Path>,
    ) -> Result<Option<Store>, StoreError> {
        let StateUrl::Sqlite(path) = url else {
            return Err(StoreError::Postgres);
        };
        let key_path = key_file.map_or_else(|| default_key_file(path), Path::to_path_buf);
        if !path.exists() || !key_path.exists() {
            return Ok(None);
        }
        let key = key::load(&key_path)?;
        let pool = read_only_pool(path).await?;
        Ok(Some(Store {
            pool,
            hasher: SubjectHasher::new(&key),
            writable: false,
        }))
    }

    pub fn hasher(&self) -> &SubjectHasher {
        &self.hasher
    }

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Every transaction that writes begins IMMEDIATE: the daemon's jobs run
    /// side by side, and a deferred transaction that read first and writes
    /// second fails at once with "database is locked" when another wrote in
    /// between (SQLite cannot wait for a snapshot that is already stale). An
    /// immediate one waits its turn under the busy timeout instead.
    async fn transaction(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A unit of work that writes (a plan's), for callers outside the store.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx::new(self.transaction().await?))
    }

    /// Moves the WAL into the database and truncates it to zero bytes. With
    /// `secure_delete` the database's copy of a deleted row is zeros already,
    /// but the WAL keeps older versions of its pages until it is reset, and a
    /// reset WAL is overwritten from the start, not shortened: only a
    /// truncating checkpoint makes a deleted payload unreadable from the
    /// files. Called after every job that deletes personal data, and at close.
    pub async fn scrub(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        if !self.writable {
            self.pool.close().await;
            return;
        }
        if let Err(e) = self.scrub().await {
            tracing::warn!("cannot checkpoint the state store's WAL at close: {e}");
        }
        self.pool.close().await;
    }
}

/// Timestamps are stored as RFC 3339 UTC text, which sorts correctly.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
