//! Retention's rules on one store (reconcile.md, step 4).

use super::*;
use crate::store::sql;
use crate::store::test_db::TestStore;

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

async fn store_with(rows: &[Row]) -> (TestStore, Store) {
    let (dir, store) = crate::store::test_db::store().await;
    for (id, state, reason, end, last, updated, child) in rows {
        sql::query(
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

/// When the rows were written, unless a test says otherwise.
const T: &str = "2026-11-28T02:30:00.000Z";

/// A withdrawn signal, by reason, withdrawn at `updated`, of `child`.
fn withdrawn(id: &'static str, reason: &'static str, updated: &'static str, child: u8) -> Row {
    let end = "2027-01-01";
    (
        id,
        "withdrawn",
        Some(reason),
        end,
        "2035-01-01",
        updated,
        child,
    )
}

/// A signal in `state` that ends on `end`, of a child far from the limit.
fn ending(id: &'static str, state: &'static str, end: &'static str, child: u8) -> Row {
    (id, state, None, end, "2035-01-01", T, child)
}

/// What no rule names (kept by every test): active with its last day
/// today, and a withdrawal the index has not confirmed.
fn kept() -> [Row; 2] {
    let w = "2035-01-01";
    [
        ("active", "active", None, "2027-06-01", "2026-11-28", T, 8),
        (
            "withdrawing",
            "withdrawing",
            Some("unjustified"),
            "2027-01-01",
            w,
            T,
            9,
        ),
    ]
}

/// `rows` and `kept()` in one store, purged on 2026-11-28 with the archive
/// cut at 2021-11-28: asserts that the dry run counted what the run
/// purged and that the trail still verifies; returns the store, what was
/// purged and the ids left.
async fn purge(rows: &[Row]) -> (TestStore, Store, Purged, Vec<String>) {
    let all: Vec<Row> = rows.iter().copied().chain(kept()).collect();
    let (dir, store) = store_with(&all).await;
    sql::query("INSERT INTO objections (subject_key, at) VALUES (?, ?), (?, ?)")
        .bind(vec![7u8; 16])
        .bind(T)
        .bind(vec![8u8; 16])
        .bind(T)
        .execute(store.pool())
        .await
        .unwrap();
    let c = cuts("2026-11-28", "2021-11-28");
    let counted = store.count_purgeable(&c).await.unwrap();
    let purged = store.purge(&c, chrono::Utc::now()).await.unwrap();
    assert_eq!(counted, purged, "the dry run counts what the run purges");
    assert!(store.verify_audit().await.unwrap().is_ok());
    let left = sql::query_scalar("SELECT signal_id FROM signals ORDER BY signal_id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    (dir, store, purged, left)
}

async fn objections(store: &Store) -> i64 {
    sql::query_scalar("SELECT COUNT(*) FROM objections")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// `not_archived`: withdrawn as unjustified, on objection or at death goes
/// at once, never archived.
#[tokio::test]
async fn not_archived_purges_unjustified_objection_and_deceased_at_once() {
    let (_dir, store, purged, left) = purge(&[
        withdrawn("unjustified", "unjustified", T, 1),
        withdrawn("objection", "objection", T, 2),
        withdrawn("deceased", "deceased", T, 3),
    ])
    .await;
    assert_eq!(purged.signals, 3);
    assert_eq!(left, ["active", "withdrawing"]);
    assert_eq!(
        objections(&store).await,
        2,
        "no child reached the age limit"
    );
}

/// `archive`: expired, withdrawn as `risk_ended` or refused on or before
/// the cut goes; after it stays.
#[tokio::test]
async fn archive_purges_what_ended_on_or_before_the_cut() {
    let (_dir, _store, purged, left) = purge(&[
        ending("expired-old", "expired", "2021-11-27", 4),
        ending("expired-young", "expired", "2021-11-28", 4),
        withdrawn("ended-old", "risk_ended", "2021-11-28T09:00:00.000Z", 5),
        withdrawn("ended-young", "risk_ended", "2021-11-29T09:00:00.000Z", 5),
        (
            "refused-old",
            "rejected",
            None,
            "2027-01-01",
            "2035-01-01",
            "2021-11-01T09:00:00.000Z",
            6,
        ),
    ])
    .await;
    assert_eq!(purged.signals, 3);
    assert_eq!(
        left,
        ["active", "ended-young", "expired-young", "withdrawing"]
    );
}

/// `age_limit`: every signal of a child past the day before the limit,
/// whatever its state, and the child's objection with it.
#[tokio::test]
async fn age_limit_purges_every_signal_of_the_child_and_its_objection() {
    let (_dir, store, purged, left) = purge(&[
        (
            "too-old-a",
            "active",
            None,
            "2026-11-27",
            "2026-11-27",
            T,
            7,
        ),
        (
            "too-old-b",
            "expired",
            None,
            "2026-01-01",
            "2026-11-27",
            T,
            7,
        ),
    ])
    .await;
    assert_eq!(purged.signals, 2);
    assert_eq!(left, ["active", "withdrawing"]);
    assert_eq!(
        objections(&store).await,
        1,
        "the 23-year-old's objection went with it"
    );
}
