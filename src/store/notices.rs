//! The notice inbox: notices from the index (stored by id, with the cursor
//! advanced in the same transaction) and the tasks visync makes itself, until
//! the return channel has delivered them.

use crate::store::sql;
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use super::states::{read_opt, NoticeKind, NoticeReason, NoticeState, Stored};
use super::{ts, Store, StoreError};
use crate::domain::Audience;
use crate::index::wire;

/// A notice waiting for (or past) delivery, routed to its source and case.
#[derive(Debug, Clone)]
pub struct Notice {
    pub notice_id: String,
    pub kind: NoticeKind,
    pub case_ref: String,
    pub professional_id: String,
    pub created_at: String,
    pub counterparts: Vec<Counterpart>,
    pub due_date: Option<String>,
    /// Who to tell, on a `notify_subject`.
    pub audience: Option<Audience>,
    /// Why, where the kind alone does not say (`age_limit` on a
    /// `renewal_due` that cannot be renewed any further).
    pub reason: Option<NoticeReason>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Counterpart {
    pub organisation: String,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// Counterparts as the index names them, as the return channel gives
/// them: the organisation by name, or by code when it has no name.
fn counterparts(from: &[wire::Counterpart]) -> Vec<Counterpart> {
    from.iter()
        .map(|c| Counterpart {
            organisation: c
                .organisation
                .name
                .clone()
                .or_else(|| c.organisation.code.clone())
                .unwrap_or_default(),
            name: c.professional.name.clone().unwrap_or_default(),
            phone: c.professional.phone.clone(),
            email: c.professional.email.clone(),
        })
        .collect()
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NoticeCounts {
    pub pending: u64,
    pub unroutable: u64,
    pub delivered: u64,
    /// Refused by the CMS too often: waiting for `visync release`.
    pub quarantined: u64,
}

pub const NOTICE_CURSOR: &str = "index.notices";

/// How often the CMS may refuse a notice before it is quarantined.
pub const NOTICE_ATTEMPTS: i64 = 5;

impl Store {
    pub async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sql::query_scalar("SELECT value FROM cursors WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Sets a cursor on its own (the daemon's record of when a schedule ran).
    pub async fn set_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sql::query("INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a page of notices and advances the cursor, in one transaction:
    /// a crash re-reads the page, and a notice already stored is not doubled.
    pub async fn store_notices(
        &self,
        page: &[wire::Notice],
        next_cursor: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.transaction().await?;
        let at = ts(now);
        let mut stored = 0;
        for n in page {
            let routed = sql::query(
                "SELECT source, case_ref, professional_id FROM signals WHERE signal_id = ?",
            )
            .bind(&n.signal_id)
            .fetch_optional(&mut *tx)
            .await?;
            let (source, case_ref, professional): (Option<String>, Option<String>, Option<String>) =
                match &routed {
                    Some(r) => (Some(r.get(0)), Some(r.get(1)), Some(r.get(2))),
                    None => (None, None, None),
                };
            let state = if source.is_some() {
                NoticeState::Pending
            } else {
                NoticeState::Unroutable
            };
            if source.is_none() {
                tracing::warn!(notice = n.notice_id, signal = n.signal_id, "a notice for a signal this installation does not know (restored from an older backup?): kept, not delivered");
            }
            stored += sql::query(
                "INSERT INTO notices (notice_id, kind, signal_id, source, case_ref, professional_id, created_at,
                                                counterparts, state, not_before)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(&n.notice_id)
            .bind(n.kind.as_str())
            .bind(&n.signal_id)
            .bind(source)
            .bind(case_ref)
            .bind(professional)
            .bind(&n.created_at)
            .bind(serde_json::to_string(&counterparts(&n.counterparts)).unwrap_or_default())
            .bind(state.as_str())
            .bind(&at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        sql::query("INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(NOTICE_CURSOR)
            .bind(next_cursor)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// The sources with notices due for delivery.
    pub async fn notice_sources(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        Ok(sql::query_scalar("SELECT DISTINCT source FROM notices WHERE state = ? AND not_before <= ? ORDER BY source")
            .bind(NoticeState::Pending)
            .bind(ts(now))
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn pending_notices(
        &self,
        source: &str,
        limit: i64,
    ) -> Result<Vec<Notice>, StoreError> {
        let rows = sql::query(
            "SELECT notice_id, kind, case_ref, professional_id, created_at, counterparts, due_date, audience, reason
             FROM notices WHERE state = ? AND source = ? ORDER BY created_at, notice_id LIMIT ?",
        )
        .bind(NoticeState::Pending)
        .bind(source)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.get(0);
                Ok(Notice {
                    kind: NoticeKind::read("notices", &id, "kind", r.get(1))?,
                    case_ref: r.get::<Option<String>, _>(2).unwrap_or_default(),
                    professional_id: r.get::<Option<String>, _>(3).unwrap_or_default(),
                    created_at: r.get(4),
                    counterparts: r
                        .get::<Option<String>, _>(5)
                        .and_then(|c| serde_json::from_str(&c).ok())
                        .unwrap_or_default(),
                    due_date: r.get(6),
                    audience: read_opt("notices", &id, "audience", r.get(7))?,
                    reason: read_opt("notices", &id, "reason", r.get(8))?,
                    notice_id: id,
                })
            })
            .collect()
    }

    pub async fn count_pending_notices(&self, source: &str) -> Result<u64, StoreError> {
        let n: i64 =
            sql::query_scalar("SELECT COUNT(*) FROM notices WHERE state = ? AND source = ?")
                .bind(NoticeState::Pending)
                .bind(source)
                .fetch_one(&self.pool)
                .await?;
        Ok(n as u64)
    }

    /// Marks notices delivered, and drops what they said of others.
    pub async fn delivered(
        &self,
        ids: &[String],
        delivery: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.transaction().await?;
        let at = ts(now);
        for id in ids {
            sql::query("UPDATE notices SET state = ?, delivered_at = ?, delivery = ?, counterparts = NULL, last_error = NULL WHERE notice_id = ?")
                .bind(NoticeState::Delivered)
                .bind(&at)
                .bind(delivery)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed delivery: the notices stay pending, retried later.
    /// A delivery failed. Notices the CMS refused `NOTICE_ATTEMPTS` times
    /// are quarantined (retrying a refusal may never end); transient
    /// failures are retried with backoff for as long as they last. Returns
    /// how many were quarantined now.
    pub async fn delivery_failed(
        &self,
        ids: &[String],
        error: &str,
        refused: bool,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.transaction().await?;
        let mut quarantined = 0;
        for id in ids {
            let attempts: i64 =
                sql::query_scalar("SELECT attempts FROM notices WHERE notice_id = ?")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            let state = if refused && attempts + 1 >= NOTICE_ATTEMPTS {
                quarantined += 1;
                NoticeState::Quarantined
            } else {
                NoticeState::Pending
            };
            sql::query("UPDATE notices SET attempts = attempts + 1, last_error = ?, not_before = ?, state = ? WHERE notice_id = ?")
                .bind(error)
                .bind(ts(now + super::backoff(attempts + 1)))
                .bind(state.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(quarantined)
    }

    /// `visync release --source NAME`: quarantined notices of the source are
    /// tried again, at once, with their attempts counted anew.
    pub async fn release_notices(
        &self,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sql::query(
            "UPDATE notices SET state = ?, attempts = 0, not_before = ? WHERE source = ? AND state = ?",
        )
        .bind(NoticeState::Pending)
        .bind(ts(now))
        .bind(source)
        .bind(NoticeState::Quarantined)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn notice_counts(&self) -> Result<NoticeCounts, StoreError> {
        // MIN(notice_id): a row to name if the state is not one visync writes.
        let rows = sql::query("SELECT state, COUNT(*), MIN(notice_id) FROM notices GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut c = NoticeCounts::default();
        for r in rows {
            let n = r.get::<i64, _>(1) as u64;
            match NoticeState::read("notices", r.get::<&str, _>(2), "state", r.get(0))? {
                NoticeState::Pending => c.pending = n,
                NoticeState::Unroutable => c.unroutable = n,
                NoticeState::Quarantined => c.quarantined = n,
                NoticeState::Delivered => c.delivered = n,
            }
        }
        Ok(c)
    }

    /// Why notices of each source are still waiting, for `status`.
    pub async fn notice_trouble(&self) -> Result<Vec<(String, u64, Option<String>)>, StoreError> {
        let rows = sql::query(
            "SELECT source, COUNT(*), MAX(last_error) FROM notices WHERE state = ? GROUP BY source ORDER BY source",
        )
        .bind(NoticeState::Pending)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<i64, _>(1) as u64, r.get(2)))
            .collect())
    }
}

/// After a registration is confirmed: the task to tell the child and/or the
/// parents (Jeugdwet), for the case it belongs to.
pub async fn notify_subject(
    conn: &mut AnyConnection,
    signal_id: &str,
    at: &str,
) -> Result<(), StoreError> {
    audiences(conn, &[signal_id]).await?;
    sql::query(
        "INSERT INTO notices (notice_id, kind, signal_id, source, case_ref, professional_id, created_at,
                                        counterparts, audience, state, not_before)
         SELECT 'notify-' || signal_id, ?, signal_id, source, case_ref, professional_id, ?, '[]',
                audience, ?, ?
         FROM signals WHERE signal_id = ? AND audience IS NOT NULL ON CONFLICT DO NOTHING",
    )
    .bind(NoticeKind::NotifySubject)
    .bind(at)
    .bind(NoticeState::Pending)
    .bind(at)
    .bind(signal_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// `notify_subject` for many confirmed registrations at once.
pub async fn notify_subjects(
    conn: &mut AnyConnection,
    signal_ids: &[&str],
    at: &str,
) -> Result<(), StoreError> {
    audiences(conn, signal_ids).await?;
    let mut q = sql::Builder::new(
        "INSERT INTO notices (notice_id, kind, signal_id, source, case_ref, professional_id, created_at,
                                        counterparts, audience, state, not_before)
         SELECT 'notify-' || signal_id, ",
    );
    q.push_bind(NoticeKind::NotifySubject)
        .push(", signal_id, source, case_ref, professional_id, ")
        .push_bind(at)
        .push(", '[]', audience, ")
        .push_bind(NoticeState::Pending)
        .push(", ")
        .push_bind(at);
    q.push(" FROM signals WHERE audience IS NOT NULL AND signal_id IN (");
    q.push_list(signal_ids.iter().copied())
        .push(") ON CONFLICT DO NOTHING");
    q.build().execute(conn).await?;
    Ok(())
}

/// Reads the signals' audiences strictly before a notice copies them: a
/// text that is not one of `Audience` is a damaged row, named, not a task
/// the return channel would pass on.
async fn audiences(conn: &mut AnyConnection, signal_ids: &[&str]) -> Result<(), StoreError> {
    let mut q = sql::Builder::new(
        "SELECT signal_id, audience FROM signals WHERE audience IS NOT NULL AND signal_id IN (",
    );
    q.push_list(signal_ids.iter().copied()).push(")");
    for r in q.build().persistent(false).fetch_all(conn).await? {
        Audience::read("signals", r.get::<&str, _>(0), "audience", r.get(1))?;
    }
    Ok(())
}
