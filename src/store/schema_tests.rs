//! The two dialects of the migrations (`migrations/sqlite`,
//! `migrations/postgres`) describe one schema: the same tables, columns
//! (their types mapped), nullability and indexes, so that they cannot drift
//! while the PostgreSQL backend is built (docs/design/postgresql.md).
//!
//! Against a real PostgreSQL: `TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`, as on the project's machines
//! and in CI, which starts the server). The test makes a database of its
//! own and drops it; when the server cannot be reached it fails, never
//! skips.

use std::collections::BTreeSet;

// The names put into SQL below are made here (a pid, the migrations' own
// tables), never taken from input.
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row, SqlitePool};

use super::test_db::PgTestDb;

/// (table, column, type, not null) and the explicit indexes' names.
type Schema = (BTreeSet<(String, String, String, bool)>, BTreeSet<String>);

async fn sqlite_schema() -> Schema {
    let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
    sqlx::migrate!("src/store/migrations/sqlite")
        .run(&pool)
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name != '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut columns = BTreeSet::new();
    for t in tables {
        for r in sqlx::query(AssertSqlSafe(format!("PRAGMA table_info({t})")))
            .fetch_all(&pool)
            .await
            .unwrap()
        {
            let (column, ty): (String, String) = (r.get("name"), r.get("type"));
            // A primary key holds no NULL in either (SQLite lets a TEXT one
            // say it may; visync never writes one).
            let not_null = r.get::<i64, _>("notnull") != 0 || r.get::<i64, _>("pk") != 0;
            let mapped = match ty.as_str() {
                "INTEGER" => "bigint",
                "TEXT" => "text",
                "BLOB" => "bytea",
                other => panic!("{t}.{column}: a type the mapping does not know: {other}"),
            };
            columns.insert((t.clone(), column, mapped.to_string(), not_null));
        }
    }
    let indexes = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    (columns, indexes.into_iter().collect())
}

async fn postgres_schema(url: &str) -> Schema {
    let mut c = PgConnection::connect(url).await.unwrap();
    sqlx::migrate!("src/store/migrations/postgres")
        .run(&mut c)
        .await
        .unwrap();
    let columns = sqlx::query(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name != '_sqlx_migrations'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
    .into_iter()
    .map(|r| {
        (
            r.get::<String, _>(0),
            r.get::<String, _>(1),
            r.get::<String, _>(2),
            r.get::<String, _>(3) == "NO",
        )
    })
    .collect();
    // Primary keys and UNIQUE constraints make indexes of their own, named
    // by each database its own way: only the explicit ones are compared.
    let indexes = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' \
         AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key' \
         AND tablename != '_sqlx_migrations'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    (columns, indexes.into_iter().collect())
}

#[tokio::test]
async fn both_dialects_of_the_migrations_make_one_schema() {
    let db = PgTestDb::create().await;
    let postgres = postgres_schema(&db.url).await;
    db.drop_it().await;
    let sqlite = sqlite_schema().await;
    assert!(!sqlite.0.is_empty() && !sqlite.1.is_empty());
    let only = |a: &Schema, b: &Schema| -> Vec<String> {
        let cols = a.0.difference(&b.0).map(|c| format!("{c:?}"));
        let idx = a.1.difference(&b.1).map(|i| format!("index {i}"));
        cols.chain(idx).collect()
    };
    assert_eq!(
        (only(&sqlite, &postgres), only(&postgres, &sqlite)),
        (vec![], vec![]),
        "(only in SQLite's migrations, only in PostgreSQL's)"
    );
}
