//! The PostgreSQL server the tests run against, shared by the store's unit
//! tests (`test_db.rs`) and the end-to-end tests (`tests/common/pg.rs`,
//! which include this file by path): `TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test` as on the project's machines
//! and in CI. Only `std`, `sqlx` and `url` here, so that it compiles in
//! both places.

use sqlx::{Connection, PgConnection};

pub fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A connection to the test server. The machine's own server is started
/// when it is down (as `.ci/run` does; `pg_ctlcluster … start` returns once
/// it accepts connections), so that `cargo test` needs nothing but itself
/// there; a server that still cannot be reached fails the test, never
/// skips it.
pub async fn admin() -> PgConnection {
    if let Ok(c) = PgConnection::connect(&admin_url()).await {
        return c;
    }
    let local = url::Url::parse(&admin_url())
        .ok()
        .and_then(|u| u.host_str().map(|h| h == "127.0.0.1" || h == "localhost"))
        .unwrap_or(false);
    if local {
        let _ = std::process::Command::new("pg_ctlcluster")
            .args(["15", "main", "start"])
            .status();
    }
    PgConnection::connect(&admin_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at TEST_POSTGRES_URL ({}) cannot be reached: {e}; start it \
                 (pg_ctlcluster 15 main start) or point TEST_POSTGRES_URL at one",
                admin_url()
            )
        })
}
