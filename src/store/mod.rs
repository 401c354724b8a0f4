//! The state store: one transactional database (a SQLite file, or a
//! PostgreSQL database that several instances share; `open.rs`, `sql.rs`)
//! holding the file ledger, the signals this
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
mod instance;
mod key;
pub mod notices;
mod objection;
mod open;
mod outbox;
pub mod polls;
mod reconcile;
mod retention;
#[cfg(test)]
mod schema_tests;
pub mod signals;
pub mod sql;
mod states;
mod status;
#[cfg(test)]
mod strict_tests;
mod subject;
#[cfg(test)]
mod test_db;
#[cfg(test)]
mod test_server;
mod transition;
mod tx;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::AnyPool;

pub use audit::AuditEvent;
pub use event::Audit;
pub use expiry::{Expiring, Renewal};
pub use files::{FileRecord, TakenFile};
pub use instance::{Instance, InstanceRow, Taken};
pub use notices::{Counterpart, Notice, NoticeCounts};
pub use objection::Objected;
pub use outbox::{backoff, OutboxAction, OutboxRow, QueueCounts, Status, MAX_ATTEMPTS};
pub use reconcile::{Comparison, Unknown};
pub use retention::{Cuts, Purged};
pub use signals::{Applied, SignalRow};
pub use sql::Backend;
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
    /// The PostgreSQL server cannot be reached or refuses us: `url` is the
    /// configured one, which never holds the password.
    #[error("the state store [state] url {url}: {message}")]
    Server {
        url: String,
        message: String,
        /// No answer at all (refused, timed out), as opposed to an answer
        /// that refuses us: the service waits a while for the first.
        unreachable: bool,
    },
    #[error("[state] key_file is required with PostgreSQL")]
    NoKeyFile,
    #[error(
        "the subject key {}: missing, but the state store was made with a key; put the \
         original subject.key back (copy it from another instance or from your backup); \
         visync does not make a new one for a store that has one, since every child would \
         look new to it",
        path.display()
    )]
    KeyMissing { path: PathBuf },
    #[error(
        "the subject key {}: not the key the state store was made with (its fingerprint \
         differs), so every child would look new to it; use the subject.key of the other \
         instances or of your backup",
        path.display()
    )]
    KeyMismatch { path: PathBuf },
    /// Another instance took over a job's lease while this one worked on
    /// it: nothing of this unit of work was committed.
    #[error(
        "another instance took over {job} while this one worked on it (this instance was \
         stalled for longer than [state] lease_secs); nothing of this step was written, and \
         the other instance does it"
    )]
    LeaseLost { job: String },
    /// Other instances beat on the shared store where this command must
    /// run alone (`decommission`).
    #[error(
        "other instances run on this state: {0}; stop the service on every machine first \
         (systemctl stop visync), then run it again"
    )]
    OthersRunning(String),
    /// A stored value that cannot be what the store wrote: named by its row.
    #[error("the state store is damaged: {0}")]
    Corrupt(String),
}

/// The state store, with the keyed hasher that goes with it.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    hasher: SubjectHasher,
    /// Opened for writing (not the dry run's read-only view): only then is
    /// there a WAL of ours to scrub at close.
    writable: bool,
    /// Who this process is to the other instances on a shared store.
    me: Arc<Instance>,
}

/// Where a SQLite store keeps its key, unless the config says otherwise.
pub fn default_key_file(db: &Path) -> PathBuf {
    db.with_file_name("subject.key")
}

impl Store {
    fn new(url: &StateUrl, pool: AnyPool, hasher: SubjectHasher, writable: bool) -> Store {
        let (backend, lease_secs) = match url {
            StateUrl::Sqlite(_) => (Backend::Sqlite, crate::config::DEFAULT_LEASE_SECS),
            StateUrl::Postgres(pg) => (Backend::Postgres, pg.lease_secs),
        };
        Store {
            pool,
            backend,
            hasher,
            writable,
            me: Arc::new(Instance::new(lease_secs)),
        }
    }

    /// Opens (creating if needed) the store and its key, and migrates it.
    pub async fn open(url: &StateUrl, key_file: Option<&Path>) -> Result<Store, StoreError> {
        let (pool, backend, key_path) = match url {
            StateUrl::Sqlite(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                        path: path.clone(),
                        source,
                    })?;
                }
                let key = key_file.map_or_else(|| default_key_file(path), Path::to_path_buf);
                (open::sqlite(path, false).await?, Backend::Sqlite, key)
            }
            StateUrl::Postgres(pg) => {
                // The config requires the key file with PostgreSQL.
                let key = key_file.ok_or(StoreError::NoKeyFile)?.to_path_buf();
                (open::postgres(pg).await?, Backend::Postgres, key)
            }
        };
        open::migrate(&pool, backend).await?;
        let hasher = Self::key(&pool, &key_path).await?;
        Ok(Store::new(url, pool, hasher, true))
    }

    /// The subject key, held to the fingerprint the store was made with: a
    /// store that has one never gets a new key made for it (every child
    /// would look new), and a key that gives another fingerprint is refused.
    async fn key(pool: &AnyPool, path: &Path) -> Result<SubjectHasher, StoreError> {
        let known = open::fingerprint(pool).await?;
        let key = match &known {
            None => key::load_or_create(path)?,
            Some(_) => key::load(path).map_err(|e| match e {
                StoreError::KeyIo { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    StoreError::KeyMissing {
                        path: path.to_path_buf(),
                    }
                }
                e => e,
            })?,
        };
        let hasher = SubjectHasher::new(&key);
        let mine = hasher.fingerprint();
        let made_with = match known {
            Some(f) => Some(f),
            None => {
                // Two instances starting at once on a new database: the
                // first insert wins, and what is read back holds the other
                // to it.
                open::record_fingerprint(pool, &mine).await?;
                open::fingerprint(pool).await?
            }
        };
        match made_with {
            Some(f) if f != mine => Err(StoreError::KeyMismatch {
                path: path.to_path_buf(),
            }),
            _ => Ok(hasher),
        }
    }

    /// Opens an existing store read-only, for the dry run; `None` when there is
    /// none yet (the dry run then plans against an empty state and creates
    /// nothing).
    pub async fn open_read_only(
        url: &StateUrl,
        key_file: Option<&Path>,
    ) -> Result<Option<Store>, StoreError> {
        let (pool, backend, key_path) = match url {
            StateUrl::Sqlite(path) => {
                let key_path = key_file.map_or_else(|| default_key_file(path), Path::to_path_buf);
                if !path.exists() || !key_path.exists() {
                    return Ok(None);
                }
                (open::sqlite(path, true).await?, Backend::Sqlite, key_path)
            }
            StateUrl::Postgres(pg) => {
                let key_path = key_file.ok_or(StoreError::NoKeyFile)?.to_path_buf();
                (open::postgres(pg).await?, Backend::Postgres, key_path)
            }
        };
        // A store made before fingerprints (or, on PostgreSQL, a database
        // no instance has started on yet) has none.
        let known = open::fingerprint(&pool).await.ok().flatten();
        if backend == Backend::Postgres && known.is_none() {
            pool.close().await;
            return Ok(None);
        }
        let hasher = SubjectHasher::new(&key::load(&key_path)?);
        if known.is_some_and(|f| f != hasher.fingerprint()) {
            return Err(StoreError::KeyMismatch { path: key_path });
        }
        Ok(Some(Store::new(url, pool, hasher, false)))
    }

    pub fn hasher(&self) -> &SubjectHasher {
        &self.hasher
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that writes (`sql::begin` says how each backend takes
    /// its turn).
    async fn transaction(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        sql::begin_pool(&self.pool, self.backend).await
    }

    /// A unit of work that writes (a plan's), for callers outside the store.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let holder = self.is_shared().then(|| self.me.id.clone());
        Ok(Tx::new(self.transaction().await?, holder))
    }

    /// Makes what was deleted unreadable from the files, as far as the
    /// backend allows. SQLite: moves the WAL into the database and
    /// truncates it to zero bytes. With `secure_delete` the database's copy
    /// of a deleted row is zeros already, but the WAL keeps older versions
    /// of its pages until it is reset, and a reset WAL is overwritten from
    /// the start, not shortened: only a truncating checkpoint makes a
    /// deleted payload unreadable from the files. PostgreSQL: VACUUM frees
    /// the dead rows' space for reuse; it does not zero it
    /// (docs/operations.md says what that means for the disk and the WAL
    /// archive). Called after every job that deletes personal data, and at
    /// close.
    pub async fn scrub(&self) -> Result<(), StoreError> {
        let text = match self.backend {
            Backend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
            Backend::Postgres => "VACUUM signals, outbox, notices, audit",
        };
        sql::query(text).execute(&self.pool).await?;
        Ok(())
    }

    /// After a unit of work that queued many rows: PostgreSQL's planner
    /// knows a table's size only from its statistics, which autovacuum
    /// gathers later; with a new store's (empty) ones it sorted the whole
    /// outbox for every batch it claimed (450 ms a batch at 100,000 rows,
    /// 16 ms after `ANALYZE`). SQLite plans these from its indexes alone.
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres && self.writable {
            sql::query("ANALYZE outbox, signals")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// `scrub` for the whole store, at the end of a decommission: on
    /// PostgreSQL `VACUUM FULL` writes every table anew and removes the old
    /// files, so the purged rows are no longer in any file of the database
    /// (their old blocks go back to the file system as they are, and WAL
    /// archives and backups keep them: docs/operations.md says what
    /// protects those).
    pub async fn scrub_all(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => self.scrub().await,
            Backend::Postgres => {
                sql::query("VACUUM FULL").execute(&self.pool).await?;
                Ok(())
            }
        }
    }

    pub async fn close(&self) {
        if let Err(e) = self.retire().await {
            tracing::warn!("cannot let go of this instance's leases and claims at close (they expire after [state] lease_secs): {e}");
        }
        if self.writable && self.backend == Backend::Sqlite {
            if let Err(e) = self.scrub().await {
                tracing::warn!("cannot checkpoint the state store's WAL at close: {e}");
            }
        }
        self.pool.close().await;
    }
}

/// Timestamps are stored as RFC 3339 UTC text, which sorts correctly.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
