//! Opening the store: a SQLite file (one writer, beside its key) or a
//! PostgreSQL database (shared by instances), both through sqlx's `Any`
//! driver so that the rest of the store has one SQL text (`sql.rs`).

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::Connection as _;
use sqlx::{AnyPool, Executor};

use super::sql::{self, Backend};
use super::StoreError;
use crate::config::PgState;

/// Connections per instance: the daemon's jobs run side by side, and each
/// holds one at a time (docs/operations.md counts them for PostgreSQL's
/// `max_connections`).
pub const MAX_CONNECTIONS: u32 = 8;

/// SQLite's settings, on every connection, one statement each.
/// `busy_timeout` first, so that switching to
/// WAL waits for another process instead of failing.
const SQLITE_WRITER: &[&str] = &[
    "PRAGMA busy_timeout = 30000",
    "PRAGMA journal_mode = WAL",
    // FULL: a committed transaction survives power loss, not only a crash.
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    // What the law makes us delete (confirmed payloads, delivered notices'
    // contact data, purged signals) is overwritten with zeros, not left in
    // free pages for `strings` to find.
    "PRAGMA secure_delete = ON",
];

const SQLITE_READER: &[&str] = &["PRAGMA busy_timeout = 30000"];

/// A SQLite file as a URL sqlx reads back to the same path (characters
/// such as `?`, `#` and spaces percent-encoded).
fn sqlite_url(path: &Path, mode: &str) -> Result<String, StoreError> {
    let absolute = std::path::absolute(path).map_err(|source| StoreError::Folder {
        path: path.to_path_buf(),
        source,
    })?;
    let mut url = url::Url::parse("sqlite:///").expect("a constant URL");
    url.set_path(&absolute.to_string_lossy());
    url.set_query(Some(&format!("mode={mode}")));
    Ok(url.to_string())
}

/// A pool on a SQLite file: `rwc` for the writers (created when missing),
/// `ro` for the readers (the dry run, `status`, a store whose key is gone).
pub async fn sqlite(path: &Path, read_only: bool) -> Result<AnyPool, StoreError> {
    sqlx::any::install_default_drivers();
    let url = sqlite_url(path, if read_only { "ro" } else { "rwc" })?;
    let settings = if read_only {
        SQLITE_READER
    } else {
        SQLITE_WRITER
    };
    AnyPoolOptions::new()
        .max_connections(if read_only { 1 } else { 4 })
        .after_connect(move |conn, _| {
            Box::pin(async move {
                for pragma in settings {
                    conn.execute(*pragma).await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })
}

/// A pool on PostgreSQL, with the password from its file and TLS checked
/// in full for a server that is not on this host.
pub async fn postgres(pg: &PgState) -> Result<AnyPool, StoreError> {
    sqlx::any::install_default_drivers();
    let fail = |message: String| StoreError::Server {
        url: pg.url.to_string(),
        message,
        unreachable: false,
    };
    let mut url = pg.url.clone();
    if let Some(file) = &pg.password_file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            fail(format!(
                "cannot read [state] password_file {}: {e}",
                file.display()
            ))
        })?;
        url.set_password(Some(text.trim_end_matches(['\r', '\n'])))
            .map_err(|()| fail("cannot carry a password".into()))?;
    }
    let says_sslmode = url.query_pairs().any(|(k, _)| k == "sslmode");
    if pg.loopback() && !says_sslmode {
        // Nothing leaves the host: no TLS unless the URL asks for it (the
        // local server's certificate names "localhost" at best, and
        // `prefer` would check it against "127.0.0.1").
        url.query_pairs_mut().append_pair("sslmode", "disable");
    } else if !pg.loopback() {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "sslmode" && k != "sslrootcert")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut q = url.query_pairs_mut();
        q.clear()
            .extend_pairs(kept)
            .append_pair("sslmode", "verify-full");
        if let Some(ca) = &pg.ca {
            q.append_pair("sslrootcert", &ca.to_string_lossy());
        }
    }
    let server_error = |e: sqlx::Error| StoreError::Server {
        url: pg.url.to_string(),
        unreachable: matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut),
        message: e.to_string(),
    };
    // One connection first, which fails at once: the pool retries a
    // refused connection until its acquire timeout (30 s) before it says
    // anything, too long for a one-shot command and for the service's
    // wait, which must answer a stop.
    let first = sqlx::AnyConnection::connect(url.as_str())
        .await
        .map_err(server_error)?;
    let _ = first.close().await;
    AnyPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(30))
        .connect(url.as_str())
        .await
        // The URL shown is the configured one: it never holds the password.
        .map_err(server_error)
}

/// Runs the migrations of the pool's dialect. On PostgreSQL sqlx's migrator
/// holds an advisory lock while it runs, so that instances started at once
/// on an empty database migrate it once.
pub async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    match backend {
        Backend::Sqlite => {
            sqlx::migrate!("src/store/migrations/sqlite")
                .run(pool)
                .await?
        }
        Backend::Postgres => {
            sqlx::migrate!("src/store/migrations/postgres")
                .run(pool)
                .await?
        }
    }
    Ok(())
}

/// `meta.name` of the subject key's fingerprint.
const FINGERPRINT: &str = "key_fingerprint";

/// The fingerprint of the subject key the store was made with, if any.
pub async fn fingerprint(pool: &AnyPool) -> Result<Option<String>, StoreError> {
    let row: Option<AnyRow> = sql::query("SELECT value FROM meta WHERE name = ?")
        .bind(FINGERPRINT)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| sqlx::Row::get(&r, 0)))
}

/// Records the key's fingerprint, unless one is there: the first instance
/// to start decides, and `check_key` holds every later one to it.
pub async fn record_fingerprint(pool: &AnyPool, value: &str) -> Result<(), StoreError> {
    sql::query("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
        .bind(FINGERPRINT)
        .bind(value)
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// A setting a connection of the pool runs with (`PRAGMA name`).
    async fn setting(pool: &sqlx::AnyPool, name: &str) -> String {
        let row: sqlx::any::AnyRow = crate::store::sql::query(format!("PRAGMA {name}"))
            .fetch_one(pool)
            .await
            .unwrap();
        sqlx::Row::try_get::<String, _>(&row, 0)
            .or_else(|_| sqlx::Row::try_get::<i64, _>(&row, 0).map(|n| n.to_string()))
            .unwrap()
    }

    /// What the store's guarantees rest on (WAL, FULL sync, foreign keys,
    /// secure_delete) is set on its connections, now that they are opened
    /// through the `Any` driver's URL rather than typed SQLite options.
    #[tokio::test]
    async fn every_sqlite_setting_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let pool = super::sqlite(&dir.path().join("s.db"), false)
            .await
            .unwrap();
        for (name, value) in [
            ("journal_mode", "wal"),
            ("synchronous", "2"),
            ("foreign_keys", "1"),
            ("secure_delete", "1"),
            ("busy_timeout", "30000"),
        ] {
            assert_eq!(setting(&pool, name).await, value, "{name}");
        }
    }

    /// A store is held to the key it was made with: another key is refused,
    /// and a missing one is not made anew (every child would look new).
    #[tokio::test]
    async fn a_store_refuses_another_key_and_makes_none_for_a_lost_one() {
        use crate::config::StateUrl;
        use crate::store::{Store, StoreError};
        let dir = tempfile::tempdir().unwrap();
        let url = StateUrl::Sqlite(dir.path().join("state.db"));
        let key = dir.path().join("subject.key");
        Store::open(&url, None).await.unwrap().close().await;
        let original = std::fs::read(&key).unwrap();

        std::fs::write(&key, [7u8; 32]).unwrap();
        let e = Store::open(&url, None).await.err().expect("another key");
        assert!(matches!(e, StoreError::KeyMismatch { .. }), "{e}");

        std::fs::remove_file(&key).unwrap();
        let e = Store::open(&url, None).await.err().expect("no key");
        assert!(matches!(e, StoreError::KeyMissing { .. }), "{e}");
        assert!(!key.exists(), "no key was made");

        std::fs::write(&key, &original).unwrap();
        Store::open(&url, None).await.unwrap().close().await;
    }
}
