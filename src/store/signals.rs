//! Signals and the plan applied to them: the baseline the planner diffs
//! against, and the writes a file's plan makes, all inside one transaction.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Row, SqliteConnection};

use super::{ts, Store, StoreError};
use crate::domain::{age_on, Audience, ContentHash, Signal, SubjectKey, WithdrawReason};
use crate::plan::{InvolvementKey, Stored};

/// What applying one file's plan did, for the pass summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub registered: u64,
    pub updated: u64,
    pub withdrawn: u64,
    pub renewed: u64,
    pub held: u64,
}

/// One row of `signals`, as `status` and `subject` show it.
#[derive(Debug, Clone)]
pub struct SignalRow {
    pub signal_id: String,
    pub source: String,
    pub professional_id: String,
    pub case_ref: String,
    pub start_date: String,
    pub end_date: String,
    pub state: String,
    pub withdraw_reason: Option<String>,
    pub error: Option<String>,
}

fn key16(bytes: &[u8]) -> [u8; 16] {
    let mut k = [0u8; 16];
    let n = bytes.len().min(16);
    k[..n].copy_from_slice(&bytes[..n]);
    k
}

/// The signal as the index receives it: identity and contact data only.
pub fn payload(signal_id: &str, s: &Signal) -> String {
    let sub = &s.subject;
    let p = &s.professional;
    let mut subject = serde_json::json!({
        "bsn": sub.bsn.as_str(),
        "family_name": sub.family_name,
        "birth_date": sub.birth_date.to_string(),
        "gender": sub.gender.as_str(),
    });
    for (k, v) in [
        ("name_prefix", &sub.name_prefix),
        ("initials", &sub.initials),
        ("given_names", &sub.given_names),
    ] {
        if let Some(v) = v {
            subject[k] = serde_json::Value::from(v.as_str());
        }
    }
    let mut professional = serde_json::json!({ "id": p.id, "name": p.name });
    for (k, v) in [("phone", &p.phone), ("email", &p.email)] {
        if let Some(v) = v {
            professional[k] = serde_json::Value::from(v.as_str());
        }
    }
    serde_json::json!({
        "signal_id": signal_id,
        "subject": subject,
        "professional": professional,
        "start_date": s.start_date.to_string(),
        "end_date": s.end_date.to_string(),
    })
    .to_string()
}

impl Store {
    /// The live (pending or active) signals of a source, as the planner sees them.
    pub async fn baseline(
        &self,
        source: &str,
    ) -> Result<HashMap<InvolvementKey, Stored>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_key, professional_id, content_hash, end_date, renewed FROM signals
             WHERE source = ? AND state IN ('pending', 'active')",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            let key = InvolvementKey {
                subject: SubjectKey(key16(r.get::<&[u8], _>(0))),
                professional: r.get::<String, _>(1).into(),
            };
            let end: String = r.get(3);
            out.insert(
                key,
                Stored {
                    content: ContentHash(r.get::<i64, _>(2) as u64),
                    active: true,
                    end_date: NaiveDate::parse_from_str(&end, "%Y-%m-%d").unwrap_or(NaiveDate::MIN),
                    renewed: r.get::<i64, _>(4) != 0,
                },
            );
        }
        Ok(out)
    }

    pub async fn objections(&self) -> Result<HashSet<SubjectKey>, StoreError> {
        let rows = sqlx::query("SELECT subject_key FROM objections")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| SubjectKey(key16(r.get::<&[u8], _>(0))))
            .collect())
    }
}

/// The live signal id of an involvement.
pub async fn live_id(
    conn: &mut SqliteConnection,
    source: &str,
    key: &InvolvementKey,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT signal_id FROM signals WHERE source = ? AND subject_key = ? AND professional_id = ?
         AND state IN ('pending', 'active')",
    )
    .bind(source)
    .bind(&key.subject.0[..])
    .bind(&*key.professional)
    .fetch_optional(conn)
    .await?)
}

/// Registers a new involvement: a pending signal and its outbox row.
pub async fn register(
    conn: &mut SqliteConnection,
    source: &str,
    key: &InvolvementKey,
    signal: &Signal,
    last_day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = ts(now);
    sqlx::query(
        "INSERT INTO signals (signal_id, source, subject_key, professional_id, case_ref, start_date, end_date,
                              last_day, content_hash, audience, state, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
    )
    .bind(&id)
    .bind(source)
    .bind(&key.subject.0[..])
    .bind(&*key.professional)
    .bind(&signal.case_ref)
    .bind(signal.start_date.to_string())
    .bind(signal.end_date.to_string())
    .bind(last_day.to_string())
    .bind(signal.content_hash().0 as i64)
    .bind(Audience::for_age(age_on(signal.subject.birth_date, signal.start_date)).as_str())
    .bind(&now)
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    super::outbox::enqueue(
        conn,
        &id,
        source,
        "register",
        Some(payload(&id, signal)),
        None,
        None,
        "ready",
        &now,
    )
    .await?;
    Ok(id)
}

/// Corrects a live signal; an unsent register or update takes the new content
/// instead of queueing a second call.
pub async fn update(
    conn: &mut SqliteConnection,
    source: &str,
    id: &str,
    signal: &Signal,
    last_day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = ts(now);
    sqlx::query(
        "UPDATE signals SET case_ref = ?, start_date = ?, end_date = ?, last_day = ?, content_hash = ?,
                renewed = 0, updated_at = ? WHERE signal_id = ?",
    )
    .bind(&signal.case_ref)
    .bind(signal.start_date.to_string())
    .bind(signal.end_date.to_string())
    .bind(last_day.to_string())
    .bind(signal.content_hash().0 as i64)
    .bind(&now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let body = payload(id, signal);
    let replaced = sqlx::query(
        "UPDATE outbox SET payload = ? WHERE signal_id = ? AND action IN ('register', 'update')
         AND state = 'ready' AND attempts = 0",
    )
    .bind(&body)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if replaced == 0 {
        super::outbox::enqueue(
            conn,
            id,
            source,
            "update",
            Some(body),
            None,
            None,
            "ready",
            &now,
        )
        .await?;
    }
    Ok(())
}

/// Withdraws a live signal (or queues the withdrawal as held).
pub async fn withdraw(
    conn: &mut SqliteConnection,
    source: &str,
    id: &str,
    reason: WithdrawReason,
    held: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = ts(now);
    if !held {
        sqlx::query("UPDATE signals SET state = 'withdrawing', withdraw_reason = ?, updated_at = ? WHERE signal_id = ?")
            .bind(reason.as_str())
            .bind(&now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    let state = if held { "held" } else { "ready" };
    super::outbox::enqueue(
        conn,
        id,
        source,
        "withdraw",
        None,
        Some(reason.as_str()),
        None,
        state,
        &now,
    )
    .await
}

pub async fn renew(
    conn: &mut SqliteConnection,
    source: &str,
    id: &str,
    end: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = ts(now);
    sqlx::query("UPDATE signals SET end_date = ?, renewed = 1, updated_at = ? WHERE signal_id = ?")
        .bind(end.to_string())
        .bind(&now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    super::outbox::enqueue(
        conn,
        id,
        source,
        "renew",
        None,
        None,
        Some(&end.to_string()),
        "ready",
        &now,
    )
    .await
}

/// Records that a snapshot's withdrawals wait for an operator.
pub async fn hold(
    conn: &mut SqliteConnection,
    source: &str,
    file: &str,
    withdrawals: u64,
    active: u64,
    at: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO holds (source, file, withdrawals, active, held_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(source)
    .bind(file)
    .bind(withdrawals as i64)
    .bind(active as i64)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Drops a source's held withdrawals: a newer snapshot decides again.
pub async fn drop_holds(conn: &mut SqliteConnection, source: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM outbox WHERE source = ? AND state = 'held'")
        .bind(source)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM holds WHERE source = ?")
        .bind(source)
        .execute(conn)
        .await?;
    Ok(())
}
