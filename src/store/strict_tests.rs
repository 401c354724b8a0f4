//! Strict reading of the store's closed sets (issue 13): a value the store
//! never writes, put into a real SQLite store with SQL, makes the read that
//! meets it fail with a message naming the table, the row and the column,
//! never a default.

use crate::store::sql;
use chrono::Utc;

use crate::domain::SubjectKey;
use crate::store::{Store, StoreError};

use crate::store::test_db::store;

const KEY: [u8; 16] = [0x11; 16];

async fn signal(store: &Store, id: &str, state: &str) {
    sql::query(
        "INSERT INTO signals (signal_id, source, subject_key, professional_id, case_ref,
            start_date, end_date, last_day, content_hash, state, created_at, updated_at)
         VALUES (?, 'src', ?, 'E1', 'C-1', '2026-11-01', '2027-11-01', '2030-01-01', 1, ?, 't', 't')",
    )
    .bind(id)
    .bind(&KEY[..])
    .bind(state)
    .execute(store.pool())
    .await
    .unwrap();
}

fn corrupt(e: StoreError, want: &[&str]) {
    let StoreError::Corrupt(msg) = &e else {
        panic!("not a damaged-store error: {e}");
    };
    for w in want {
        assert!(msg.contains(w), "{msg:?} does not name {w:?}");
    }
}

/// Regression: `OutboxAction::parse` read any unknown action as `Renew`, so
/// a damaged row would have been sent to the index as a renewal.
#[tokio::test]
async fn an_unknown_outbox_action_is_an_error_naming_the_row() {
    let (_dir, store) = store().await;
    signal(&store, "sig-1", "active").await;
    let id: i64 = sql::query_scalar(
        "INSERT INTO outbox (signal_id, source, action, state, not_before, created_at)
         VALUES ('sig-1', 'src', 'renw', 'ready', '2000-01-01T00:00:00.000Z', 't') RETURNING id",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let err = store.due(Utc::now(), 10).await.unwrap_err();
    corrupt(err, &[&format!("outbox row {id}"), "action \"renw\""]);
}

#[tokio::test]
async fn an_unknown_outbox_state_is_an_error_naming_the_row() {
    let (_dir, store) = store().await;
    let id: i64 = sql::query_scalar(
        "INSERT INTO outbox (signal_id, source, action, state, not_before, created_at)
         VALUES ('sig-1', 'src', 'withdraw', 'paused', 't', 't') RETURNING id",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let err = store.queue_counts().await.unwrap_err();
    corrupt(err, &[&format!("outbox row {id}"), "state \"paused\""]);
}

#[tokio::test]
async fn an_unknown_signal_state_is_an_error_naming_the_row() {
    let (_dir, store) = store().await;
    signal(&store, "sig-9", "actve").await;
    let err = store.signal_counts().await.unwrap_err();
    corrupt(err, &["signals row sig-9", "state \"actve\""]);
    let err = store.subject(&SubjectKey(KEY)).await.unwrap_err();
    corrupt(err, &["signals row sig-9", "state \"actve\""]);
}

#[tokio::test]
async fn an_unknown_notice_kind_or_state_is_an_error_naming_the_row() {
    let (_dir, store) = store().await;
    sql::query(
        "INSERT INTO notices (notice_id, kind, signal_id, source, created_at, state, not_before)
         VALUES ('n-1', 'matched', 'sig-1', 'src', 't', 'pending', 't'),
                ('n-2', 'match', 'sig-1', 'other', 't', 'sent', 't')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let err = store.pending_notices("src", 10).await.unwrap_err();
    corrupt(err, &["notices row n-1", "kind \"matched\""]);
    let err = store.notice_counts().await.unwrap_err();
    corrupt(err, &["notices row n-2", "state \"sent\""]);
}

#[tokio::test]
async fn an_unknown_withdraw_reason_is_an_error_naming_the_row() {
    let (_dir, store) = store().await;
    signal(&store, "sig-3", "withdrawn").await;
    sql::query("UPDATE signals SET withdraw_reason = 'bored' WHERE signal_id = 'sig-3'")
        .execute(store.pool())
        .await
        .unwrap();
    let err = store.subject(&SubjectKey(KEY)).await.unwrap_err();
    corrupt(err, &["signals row sig-3", "withdraw_reason \"bored\""]);
}

/// Regression: an outbox row's reason was any text, sent to the index as
/// it was.
#[tokio::test]
async fn an_unknown_outbox_reason_is_an_error_naming_the_row() {
    let (_dir, store) = store().await;
    signal(&store, "sig-4", "withdrawing").await;
    let id: i64 = sql::query_scalar(
        "INSERT INTO outbox (signal_id, source, action, reason, state, not_before, created_at)
         VALUES ('sig-4', 'src', 'withdraw', 'risk-ended', 'ready', '2000-01-01T00:00:00.000Z', 't')
         RETURNING id",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let err = store.due(Utc::now(), 10).await.unwrap_err();
    corrupt(err, &[&format!("outbox row {id}"), "reason \"risk-ended\""]);
}

#[tokio::test]
async fn an_unknown_signal_audience_is_an_error_naming_the_row() {
    let (_dir, store) = store().await;
    signal(&store, "sig-5", "active").await;
    sql::query("UPDATE signals SET audience = 'everyone' WHERE signal_id = 'sig-5'")
        .execute(store.pool())
        .await
        .unwrap();
    let mut conn = store.pool().acquire().await.unwrap();
    let err = crate::store::notices::notify_subject(&mut conn, "sig-5", "t")
        .await
        .unwrap_err();
    corrupt(err, &["signals row sig-5", "audience \"everyone\""]);
    let err = crate::store::notices::notify_subjects(&mut conn, &["sig-5"], "t")
        .await
        .unwrap_err();
    corrupt(err, &["signals row sig-5", "audience \"everyone\""]);
    let n: i64 = sql::query_scalar("SELECT COUNT(*) FROM notices")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing copied from a damaged row");
}

#[tokio::test]
async fn an_unknown_notice_audience_or_reason_is_an_error_naming_the_row() {
    let (_dir, store) = store().await;
    sql::query(
        "INSERT INTO notices (notice_id, kind, signal_id, source, created_at, state, not_before, audience)
         VALUES ('n-3', 'notify_subject', 'sig-1', 'a', 't', 'pending', 't', 'Parents')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    sql::query(
        "INSERT INTO notices (notice_id, kind, signal_id, source, created_at, state, not_before, reason)
         VALUES ('n-4', 'renewal_due', 'sig-1', 'b', 't', 'pending', 't', 'too_old')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let err = store.pending_notices("a", 10).await.unwrap_err();
    corrupt(err, &["notices row n-3", "audience \"Parents\""]);
    let err = store.pending_notices("b", 10).await.unwrap_err();
    corrupt(err, &["notices row n-4", "reason \"too_old\""]);
}

/// Regression: a stored payload went to the index as whatever text it was
/// (a missing one as `{}`); now it is checked to be a signal where it is
/// read, without quoting it.
#[tokio::test]
async fn a_payload_that_is_not_a_signal_is_an_error_naming_the_row() {
    let (_dir, store) = store().await;
    signal(&store, "sig-6", "pending").await;
    let id: i64 = sql::query_scalar(
        "INSERT INTO outbox (signal_id, source, action, payload, state, not_before, created_at)
         VALUES ('sig-6', 'src', 'register', '{\"signal_id\": \"sig-6\", \"bsn\": \"111222333\"}',
                 'ready', '2000-01-01T00:00:00.000Z', 't') RETURNING id",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let err = store.due(Utc::now(), 10).await.unwrap_err();
    assert!(!err.to_string().contains("111222333"), "{err}");
    corrupt(
        err,
        &[&format!("outbox row {id}"), "payload is not a signal"],
    );
    sql::query("UPDATE outbox SET payload = NULL")
        .execute(store.pool())
        .await
        .unwrap();
    let err = store.due(Utc::now(), 10).await.unwrap_err();
    corrupt(
        err,
        &[
            &format!("outbox row {id}"),
            "payload missing for a register",
        ],
    );
}
