//! Retention of local state by `[rules]` (`visync reconcile`, step 4):
//! what is purged when, as reconcile.md lists it. Each rule is one SQL
//! predicate, counted by the dry run and applied in chunks by the real run
//! (each chunk its own transaction with its audit events). Deleted rows are
//! zeros in the file (`secure_delete`); the caller scrubs the WAL after.

use crate::store::sql;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::audit::Chain;
use super::chunked::{Chunks, CHUNK};
use super::event::Audit;
use super::states::{NoticeState, SignalState};
use super::{ts, Store, StoreError};
use crate::domain::WithdrawReason;

/// The dates the rules give for one night, as `YYYY-MM-DD` text.
#[derive(Debug, Clone)]
pub struct Cuts {
    pub today: String,
    /// Ended (archived) on or before this day: purged (`archive_years` ago).
    pub archive: String,
    /// Delivered on or before this day: purged (`notice_days` ago).
    pub notices: String,
    /// Audit events before this day: purged (`audit_years` ago).
    pub audit: String,
}

/// What retention purged (or would purge).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    pub signals: u64,
    pub notices: u64,
    pub audit_events: u64,
}

/// Delivered notices `notice_days` after delivery; unroutable ones (no case
/// to go to) as long after they arrived. Binds: `NoticeState::Delivered`,
/// the notice cut, `NoticeState::Unroutable`, the notice cut.
macro_rules! old_notices {
    () => {
        "FROM notices WHERE (state = ? AND substr(delivered_at, 1, 10) <= ?)
            OR (state = ? AND substr(created_at, 1, 10) <= ?)"
    };
}

/// The nights' dates and the stored values the rules name, for the rules'
/// clauses: every query on `signals` starts with this, binding
/// `cut_binds`, so that each rule is one clause on `signals, cut` and
/// names no stored value in quotes.
const CUT: &str = "WITH cut (today, archive, withdrawn, expired, active, missing, rejected,
                             risk_ended, unjustified, objection, deceased)
                   AS (SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ";

/// What `CUT` binds: today, the archive cut, then the values by name.
fn cut_binds(cuts: &Cuts) -> [&str; 11] {
    [
        &cuts.today,
        &cuts.archive,
        SignalState::Withdrawn.as_str(),
        SignalState::Expired.as_str(),
        SignalState::Active.as_str(),
        SignalState::Missing.as_str(),
        SignalState::Rejected.as_str(),
        WithdrawReason::RiskEnded.as_str(),
        WithdrawReason::Unjustified.as_str(),
        WithdrawReason::Objection.as_str(),
        WithdrawReason::Deceased.as_str(),
    ]
}

/// The rules for signals, by name: each a `WHERE` clause on `signals, cut`.
const RULES: [(&str, &str); 3] = [
    // Withdrawn as unjustified, on objection or at death: never archived.
    (
        "not_archived",
        "state = cut.withdrawn AND withdraw_reason IN (cut.unjustified, cut.objection, cut.deceased)
         AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.signal_id = signals.signal_id)",
    ),
    // Expired (archived the day after its end date) or withdrawn as
    // `risk_ended` (archived on its withdrawal), `archive_years` ago; a
    // registration the index refused, as long after the refusal. Active or
    // missing ones that far past their end are expired by step 3 before
    // this runs; naming them here makes the dry run count them too.
    (
        "archive",
        "((state IN (cut.expired, cut.active, cut.missing) AND end_date < cut.archive)
          OR (state IN (cut.withdrawn, cut.rejected)
              AND COALESCE(withdraw_reason, cut.risk_ended) = cut.risk_ended
              AND substr(updated_at, 1, 10) <= cut.archive))
         AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.signal_id = signals.signal_id)",
    ),
    // Everything about a child who reached the age limit, whatever its
    // state: the index purged it that day too.
    (
        "age_limit",
        "subject_key IN (SELECT subject_key FROM signals WHERE last_day < cut.today)",
    ),
];

/// The audit events before the first one at or after the cut: a prefix of
/// the chain, so that what is kept still links up. Bind: the audit cut.
macro_rules! old_audit {
    () => {
        "FROM audit WHERE id < COALESCE((SELECT MIN(id) FROM audit WHERE at >= ?), 9223372036854775807)"
    };
}

impl Store {
    /// What retention would purge tonight (the dry run's report).
    pub async fn count_purgeable(&self, cuts: &Cuts) -> Result<Purged, StoreError> {
        let mut p = Purged::default();
        for (_, clause) in RULES {
            let sql = format!("{CUT}SELECT COUNT(*) FROM signals, cut WHERE {clause}");
            let mut q = sql::query_scalar(sql);
            for b in cut_binds(cuts) {
                q = q.bind(b);
            }
            let n: i64 = q.fetch_one(&self.pool).await?;
            p.signals += n as u64;
        }
        // Notices go with their signal, or on their own clock.
        let any_rule = RULES.map(|(_, c)| format!("({c})")).join(" OR ");
        let sql = format!(
            "SELECT COUNT(*) FROM notices WHERE notice_id IN (SELECT notice_id {})
             OR signal_id IN ({CUT}SELECT signal_id FROM signals, cut WHERE {any_rule})",
            old_notices!()
        );
        let mut q = sql::query_scalar(sql)
            .bind(NoticeState::Delivered)
            .bind(&cuts.notices)
            .bind(NoticeState::Unroutable)
            .bind(&cuts.notices);
        for b in cut_binds(cuts) {
            q = q.bind(b);
        }
        let n: i64 = q.fetch_one(&self.pool).await?;
        p.notices = n as u64;
        let n: i64 = sql::query_scalar(concat!("SELECT COUNT(*) ", old_audit!()))
            .bind(&cuts.audit)
            .fetch_one(&self.pool)
            .await?;
        p.audit_events = n as u64;
        Ok(p)
    }

    /// Purges what the rules say must go, rule by rule.
    pub async fn purge(&self, cuts: &Cuts, now: DateTime<Utc>) -> Result<Purged, StoreError> {
        let mut p = Purged::default();
        for (rule, clause) in RULES {
            let (signals, notices) = self.purge_signals(rule, clause, cuts, now).await?;
            p.signals += signals;
            p.notices += notices;
        }
        p.notices += self.purge_notices(cuts).await?;
        p.audit_events = self.purge_audit(cuts, now).await?;
        Ok(p)
    }

    /// One rule's signals, with their notices, queued rows and (at the age
    /// limit) the child's objection; their ids stay in the audit trail.
    /// Returns (signals, notices) purged.
    async fn purge_signals(
        &self,
        rule: &str,
        clause: &str,
        cuts: &Cuts,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let at = ts(now);
        let select = format!(
            "{CUT}SELECT signal_id, source, subject_key FROM signals, cut WHERE ({clause})
             AND signal_id > ? ORDER BY signal_id LIMIT ?"
        );
        let mut notices = 0;
        let mut conn = self.pool.acquire().await?;
        let binds = cut_binds(cuts);
        let mut chunks = Chunks::new(select, "reconcile-chunk");
        while let Some(mut c) = chunks.next(&mut conn, &binds).await? {
            for r in &c.rows {
                let (id, source): (String, String) = (r.get(0), r.get(1));
                notices += sql::query("DELETE FROM notices WHERE signal_id = ?")
                    .bind(&id)
                    .execute(&mut *c.tx)
                    .await?
                    .rows_affected();
                for table in [
                    "DELETE FROM outbox WHERE signal_id = ?",
                    "DELETE FROM signals WHERE signal_id = ?",
                ] {
                    sql::query(table).bind(&id).execute(&mut *c.tx).await?;
                }
                if rule == "age_limit" {
                    sql::query("DELETE FROM objections WHERE subject_key = ?")
                        .bind(r.get::<&[u8], _>(2))
                        .execute(&mut *c.tx)
                        .await?;
                }
                let event = Audit::SignalPurged { rule };
                c.chain
                    .append(&mut c.tx, &at, Some(&id), Some(&source), &event)
                    .await?;
            }
            chunks.commit(c).await?;
        }
        Ok((chunks.done(), notices))
    }

    /// Delivered notices `notice_days` after delivery; unroutable ones (no
    /// case to go to) as long after they arrived.
    async fn purge_notices(&self, cuts: &Cuts) -> Result<u64, StoreError> {
        let done = sql::query(concat!("DELETE ", old_notices!()))
            .bind(NoticeState::Delivered)
            .bind(&cuts.notices)
            .bind(NoticeState::Unroutable)
            .bind(&cuts.notices)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The audit trail older than `audit_years`, oldest first. The chain
    /// stays verifiable: the first kept event records the hash it follows
    /// (its `prev_hash`), and that hash is kept as the trail's horizon
    /// (`audit verify` starts from it). The purge itself is an event.
    async fn purge_audit(&self, cuts: &Cuts, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut done = 0u64;
        loop {
            let mut tx = self.transaction().await?;
            let last: Option<(i64, String)> = sql::query_as(concat!(
                "SELECT id, hash FROM (SELECT id, hash ",
                old_audit!(),
                " ORDER BY id LIMIT ?) chunk ORDER BY id DESC LIMIT 1"
            ))
            .bind(&cuts.audit)
            .bind(CHUNK * 10)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((id, hash)) = last else {
                if done > 0 {
                    let event = Audit::AuditPurged {
                        events: done,
                        before: &cuts.audit,
                    };
                    Chain::append_one(&mut tx, &ts(now), None, None, &event).await?;
                    tx.commit().await?;
                }
                return Ok(done);
            };
            let n = sql::query("DELETE FROM audit WHERE id <= ?")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            super::audit::set_horizon(&mut tx, &hash).await?;
            tx.commit().await?;
            crate::fault::point("reconcile-chunk");
            done += n;
        }
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
