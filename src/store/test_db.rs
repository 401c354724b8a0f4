//! The store the unit tests run on: a SQLite file by default; a PostgreSQL
//! database of its own when `TEST_STATE=postgres` (`.ci/run`'s second
//! pass), on `TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), made here and dropped with
//! the test. The machine's own server is started when it is down; one that
//! still cannot be reached fails the test, never skips it.

use std::sync::atomic::{AtomicUsize, Ordering};

// The names put into SQL below are made here (a pid and a count), never
// taken from input.
use sqlx::{AssertSqlSafe, Executor};

use crate::config::{PgState, StateUrl};
use crate::store::Store;

pub use super::test_server::{admin, admin_url};

static MADE: AtomicUsize = AtomicUsize::new(0);

/// A database for one test, made on the test server; `drop_it` removes it.
pub struct PgTestDb {
    name: String,
    pub url: String,
}

impl PgTestDb {
    pub async fn create() -> PgTestDb {
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let name = format!("visync_u_{}_{n}", std::process::id());
        let mut admin = admin().await;
        for sql in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin.execute(AssertSqlSafe(sql)).await.unwrap();
        }
        let mut url = url::Url::parse(&admin_url()).unwrap();
        url.set_path(&name);
        PgTestDb {
            name,
            url: url.to_string(),
        }
    }

    pub async fn drop_it(self) {
        let mut admin = admin().await;
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        admin.execute(AssertSqlSafe(sql)).await.unwrap();
    }
}

/// What a unit test's store lives in: its folder, and its PostgreSQL
/// database, dropped (`WITH (FORCE)`, which ends the store's connections)
/// when this is.
pub struct TestStore {
    _dir: tempfile::TempDir,
    pg: Option<PgTestDb>,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let Some(db) = self.pg.take() else { return };
        // A runtime of its own, on a thread of its own: this runs inside
        // the test's runtime, which must not be blocked on.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(db.drop_it())
        })
        .join()
        .unwrap();
    }
}

/// A new, migrated store on the backend `TEST_STATE` names, and what it
/// lives in (keep it as long as the store).
pub async fn store() -> (TestStore, Store) {
    let dir = tempfile::tempdir().unwrap();
    let postgres = match std::env::var("TEST_STATE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("TEST_STATE={other}: say sqlite or postgres"),
    };
    if !postgres {
        let url = StateUrl::Sqlite(dir.path().join("state.db"));
        let store = Store::open(&url, None).await.unwrap();
        return (
            TestStore {
                _dir: dir,
                pg: None,
            },
            store,
        );
    }
    let db = PgTestDb::create().await;
    let url = StateUrl::Postgres(PgState {
        url: url::Url::parse(&db.url).unwrap(),
        password_file: None,
        ca: None,
        lease_secs: crate::config::DEFAULT_LEASE_SECS,
    });
    let key = dir.path().join("subject.key");
    let store = Store::open(&url, Some(&key)).await.unwrap();
    (
        TestStore {
            _dir: dir,
            pg: Some(db),
        },
        store,
    )
}
