//! Retention's rules on one store (reconcile.md, step 4).

use super::*;
use crate::config::StateUrl;

/// A signal row: (id, state, withdraw reason, end date, last day,
/// updated at, child).
type Row = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    u8,
);

async fn store_with(rows: &[Row]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = StateUrl::Sqlite(dir.path().join("state.db"));
    let store = Store::open(&url, None).await.unwrap();
    for (id, state, reason, end, last, updated, child) in rows {
        sqlx::query(
            "INSERT INTO signals (signal_id, source, subject_key, professional_id, case_ref,
                start_date, end_date, last_day, content_hash, state, withdraw_reason,
                created_at, updated_at)
             VALUES (?, 'src', ?, 'E1', 'C', '2020-01-01', ?, ?, 1, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(vec![*child; 16])
        .bind(end)
        .bind(last)
        .bind(state)
        .bind(reason)
        .bind(updated)
        .bind(updated)
        .execute(store.pool())
        .await
        .unwrap();
    }
    (dir, store)
}

fn cuts(today: &str, archive: &str) -> Cuts {
    Cuts {
        today: today.into(),
        archive: archive.into(),
        notices: "2000-01-01".into(),
        audit: "2000-01-01".into(),
    }
}

/// Every rule of reconcile.md's step 4 on one store: the dry run's
/// count is the run's, and exactly the rows the rules name go.
#[tokio::test]
async fn each_rule_purges_what_it_names_and_nothing_else() {
    let t = "2026-11-28T02:30:00.000Z";
    let (_dir, store) = store_with(&[
        // At once: unjustified, objection, deceased.
        (
            "unjustified",
            "withdrawn",
            Some("unjustified"),
            "2027-01-01",
            "2035-01-01",
            t,
            1,
        ),
        (
            "objection",
            "withdrawn",
            Some("objection"),
            "2027-01-01",
            "2035-01-01",
            t,
            2,
        ),
        (
            "deceased",
            "withdrawn",
            Some("deceased"),
            "2027-01-01",
            "2035-01-01",
            t,
            3,
        ),
        // Archived: ended on or before the cut goes, after it stays.
        (
            "expired-old",
            "expired",
            None,
            "2021-11-27",
            "2035-01-01",
            t,
            4,
        ),
        (
            "expired-young",
            "expired",
            None,
            "2021-11-28",
            "2035-01-01",
            t,
            4,
        ),
        (
            "ended-old",
            "withdrawn",
            Some("risk_ended"),
            "2027-01-01",
            "2035-01-01",
            "2021-11-28T09:00:00.000Z",
            5,
        ),
        (
            "ended-young",
            "withdrawn",
            Some("risk_ended"),
            "2027-01-01",
            "2035-01-01",
            "2021-11-29T09:00:00.000Z",
            5,
        ),
        (
            "refused-old",
            "rejected",
            None,
            "2027-01-01",
            "2035-01-01",
            "2021-11-01T09:00:00.000Z",
            6,
        ),
        // The age limit: every signal of the child, whatever its state.
        (
            "too-old-a",
            "active",
            None,
            "2026-11-27",
            "2026-11-27",
            t,
            7,
        ),
        (
            "too-old-b",
            "expired",
            None,
            "2026-01-01",
            "2026-11-27",
            t,
            7,
        ),
        // Kept: active, its last day today.
        ("active", "active", None, "2027-06-01", "2026-11-28", t, 8),
        (
            "withdrawing",
            "withdrawing",
            Some("unjustified"),
            "2027-01-01",
            "2035-01-01",
            t,
            9,
        ),
    ])
    .await;
    sqlx::query("INSERT INTO objections (subject_key, at) VALUES (?, ?), (?, ?)")
        .bind(vec![7u8; 16])
        .bind(t)
        .bind(vec![8u8; 16])
        .bind(t)
        .execute(store.pool())
        .await
        .unwrap();
    let c = cuts("2026-11-28", "2021-11-28");
    let counted = store.count_purgeable(&c).await.unwrap();
    let purged = store.purge(&c, chrono::Utc::now()).await.unwrap();
    assert_eq!(counted, purged);
    assert_eq!(purged.signals, 8);
    let left: Vec<String> = sqlx::query_scalar("SELECT signal_id FROM signals ORDER BY signal_id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(
        left,
        ["active", "ended-young", "expired-young", "withdrawing"]
    );
    let objections: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM objections")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(objections, 1, "the 23-year-old's objection went with it");
    assert!(store.verify_audit().await.unwrap().is_ok());
}
