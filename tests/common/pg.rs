//! The state store the tests run on: SQLite by default; PostgreSQL when
//! `TEST_STATE=postgres` (`.ci/run` runs the store's end-to-end tests both
//! ways). A PostgreSQL test gets a database of its own on
//! `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`,
//! as on the project's machines and in CI), made here and dropped with the
//! test; the machine's own server is started when it is down, and a server
//! that still cannot be reached fails the test, never skips it.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor, Row};

#[path = "../../src/store/test_server.rs"]
mod test_server;
pub use test_server::{admin, admin_url};

/// Whether the tests' stores are PostgreSQL databases.
pub fn postgres() -> bool {
    match std::env::var("TEST_STATE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("TEST_STATE={other}: say sqlite or postgres"),
    }
}

/// Runs an async block on a runtime of its own, on a thread of its own, so
/// that it works from plain and from `#[tokio::test]` tests alike.
pub fn block_on<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
    .join()
    .unwrap()
}

/// A database of one test, dropped with it.
pub struct PgDb {
    pub name: String,
    pub url: String,
}

static MADE: AtomicUsize = AtomicUsize::new(0);

impl PgDb {
    pub fn create() -> PgDb {
        // The names put into SQL here are made here (a pid and a count).
        let name = format!(
            "visync_t_{}_{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        );
        let n = name.clone();
        block_on(async move {
            let mut admin = admin().await;
            admin
                .execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {n} WITH (FORCE)"
                )))
                .await
                .unwrap();
            admin
                .execute(AssertSqlSafe(format!("CREATE DATABASE {n}")))
                .await
                .unwrap();
        });
        let mut url = url::Url::parse(&admin_url()).unwrap();
        url.set_path(&name);
        PgDb {
            name,
            url: url.to_string(),
        }
    }

    /// Every row a query returns, each column as text (NULL as "").
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let (url, sql) = (self.url.clone(), sql.to_owned());
        block_on(async move {
            sqlx::any::install_default_drivers();
            let mut c = AnyConnection::connect(&url).await.unwrap();
            let rows = c.fetch_all(AssertSqlSafe(sql)).await.unwrap();
            rows.iter().map(texts).collect()
        })
    }
}

impl PgDb {
    /// Every row of every table, as text, table by table.
    pub fn contents(&self) -> Vec<String> {
        let mut out = Vec::new();
        let tables = self.query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY table_name",
        );
        for t in tables {
            // A row as one text: every column type reads as text.
            let rows = self.query(&format!("SELECT r::text FROM \"{}\" r", t[0]));
            let mut rows: Vec<String> = rows.iter().map(|r| r.join("|")).collect();
            rows.sort();
            out.push(format!("{}: {}", t[0], rows.join("\n")));
        }
        out
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let n = self.name.clone();
        block_on(async move {
            let mut admin = admin().await;
            let _ = admin
                .execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {n} WITH (FORCE)"
                )))
                .await;
        });
    }
}

/// A row's columns as text, whatever their type (NULL as "").
pub fn texts(r: &sqlx::any::AnyRow) -> Vec<String> {
    (0..r.len())
        .map(|i| {
            r.try_get::<Option<String>, _>(i)
                .ok()
                .flatten()
                .or_else(|| r.try_get::<i64, _>(i).ok().map(|n| n.to_string()))
                .unwrap_or_default()
        })
        .collect()
}

/// Every row of a statement on a SQLite store file: read-only, or (`rw`)
/// as someone editing it by hand would.
pub fn query_sqlite(db: &Path, sql: &str, rw: bool) -> Vec<Vec<String>> {
    let (db, sql) = (db.to_path_buf(), sql.to_owned());
    block_on(async move {
        sqlx::any::install_default_drivers();
        let mode = if rw { "rw" } else { "ro" };
        let url = format!("sqlite://{}?mode={mode}", db.display());
        let mut c = AnyConnection::connect(&url).await.unwrap();
        let rows = c.fetch_all(AssertSqlSafe(sql)).await.unwrap();
        rows.iter().map(texts).collect()
    })
}

/// The `[state]` section of a test's config, and the database behind it
/// when it is PostgreSQL. The key file is where a SQLite store keeps it.
pub fn state_section() -> (String, Option<PgDb>) {
    if postgres() {
        let db = PgDb::create();
        let text = format!(
            "[state]\nurl = \"{}\"\nkey_file = \"state/subject.key\"\n",
            db.url
        );
        (text, Some(db))
    } else {
        sqlite_section()
    }
}

pub fn sqlite_section() -> (String, Option<PgDb>) {
    ("[state]\nurl = \"sqlite://state/visync.db\"\n".into(), None)
}
