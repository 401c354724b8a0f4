//! The law's clock applied to local state (`visync reconcile`, steps 2 and
//! 3): renewals and `renewal_due` notices for signals about to expire, and
//! expiry of what is past its end date or the age limit. Each step reads
//! and writes in chunks, each its own transaction with its audit events, so
//! that a run killed half-way is completed by the next; the dry run reads
//! the same rows and writes nothing.

use crate::store::sql;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{AnyConnection, Row};

use super::audit::Chain;
use super::chunked::{Chunks, CHUNK};
use super::event::Audit;
use super::states::{NoticeKind, NoticeReason, NoticeState, SignalState, Stored};
use super::transition;
use super::{ts, Store, StoreError};

/// Past its end date, or past the day before the age limit: expired
/// (`transition::expired`). Binds: `transition::EXPIRABLE`, today, today.
macro_rules! expirable {
    () => {
        "FROM signals WHERE state IN (?, ?) AND (end_date < ? OR last_day < ?)"
    };
}

/// An active signal whose end falls within the notice window, with nothing
/// queued for it (a held withdrawal means its case has ended; a queued
/// renewal or correction is on its way). Binds: `SignalState::Active`,
/// today, the window's end, the page's last id.
macro_rules! renewable {
    () => {
        "FROM signals s WHERE s.state = ? AND s.end_date >= ? AND s.end_date <= ?
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.signal_id = s.signal_id)
           AND s.signal_id > ?"
    };
}

/// One signal about to expire, as renewal decides on it.
#[derive(Debug, Clone)]
pub struct Expiring {
    pub signal_id: String,
    pub source: String,
    pub end_date: NaiveDate,
    /// The day before the age limit.
    pub last_day: NaiveDate,
    /// A `renewal_due` for this signal and end date exists already.
    pub told: bool,
}

/// What to do about one expiring signal (decided in `reconcile::renew`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// A `renewal_due` notice; `age_limit`: it cannot be renewed any further.
    Due { age_limit: bool },
    /// Renew (`auto_renew`) to this date.
    Renew(NaiveDate),
}

/// The id of the one `renewal_due` per signal and expiry.
fn due_id(signal_id: &str, end: NaiveDate) -> String {
    format!("renewal_due-{signal_id}-{end}")
}

fn date(s: &str, id: &str, column: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        StoreError::Corrupt(format!(
            "signals row {id}: {column} {s:?} is not a YYYY-MM-DD date; restore the state from a backup"
        ))
    })
}

impl Store {
    /// How many signals expiry would end today (the dry run's count).
    pub async fn count_expirable(&self, today: NaiveDate) -> Result<u64, StoreError> {
        let [a, b] = transition::EXPIRABLE;
        let n: i64 = sql::query_scalar(concat!("SELECT COUNT(*) ", expirable!()))
            .bind(a)
            .bind(b)
            .bind(today.to_string())
            .bind(today.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    /// Ends what is past its end date or the age limit, and drops what was
    /// queued for it (the index would refuse it).
    pub async fn expire(&self, today: NaiveDate, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let (day, at) = (today.to_string(), ts(now));
        let select = concat!(
            "SELECT signal_id, source, CASE WHEN end_date < ? THEN 1 ELSE 0 END, state ",
            expirable!(),
            " AND signal_id > ? ORDER BY signal_id LIMIT ?"
        );
        let mut conn = self.pool.acquire().await?;
        let [a, b] = transition::EXPIRABLE;
        let binds = [day.as_str(), a.as_str(), b.as_str(), &day, &day];
        let mut chunks = Chunks::new(select, "reconcile-chunk");
        while let Some(mut c) = chunks.next(&mut conn, &binds).await? {
            for r in &c.rows {
                let (id, source): (String, String) = (r.get(0), r.get(1));
                let from = SignalState::read("signals", &id, "state", r.get(3))?;
                let Some(to) = transition::expired(from) else {
                    continue;
                };
                super::signals::end_outside_plan(&mut c.tx, &id, to, &at).await?;
                let event = Audit::Expired {
                    age_limit: r.get::<i64, _>(2) == 0,
                };
                c.chain
                    .append(&mut c.tx, &at, Some(&id), Some(&source), &event)
                    .await?;
            }
            chunks.commit(c).await?;
        }
        Ok(chunks.done())
    }

    /// The next page of signals about to expire: end dates from `today` to
    /// `until`, ids after `after`.
    pub async fn expiring(
        &self,
        today: NaiveDate,
        until: NaiveDate,
        after: &str,
    ) -> Result<Vec<Expiring>, StoreError> {
        let rows = sql::query(concat!(
            "SELECT s.signal_id, s.source, s.end_date, s.last_day,
                    CASE WHEN EXISTS (SELECT 1 FROM notices n
                            WHERE n.notice_id = 'renewal_due-' || s.signal_id || '-' || s.end_date)
                    THEN 1 ELSE 0 END ",
            renewable!(),
            " ORDER BY s.signal_id LIMIT ?"
        ))
        .bind(SignalState::Active)
        .bind(today.to_string())
        .bind(until.to_string())
        .bind(after)
        .bind(CHUNK)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.get(0);
                Ok(Expiring {
                    end_date: date(r.get(2), &id, "end_date")?,
                    last_day: date(r.get(3), &id, "last_day")?,
                    source: r.get(1),
                    told: r.get::<i64, _>(4) != 0,
                    signal_id: id,
                })
            })
            .collect()
    }

    /// Writes the decisions on one page of expiring signals in one
    /// transaction. Returns (notices made, renewals queued): a notice that
    /// exists already is not made again, once per signal and expiry.
    pub async fn renew_or_tell(
        &self,
        decided: &[(Expiring, Renewal)],
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let at = ts(now);
        let mut tx = self.transaction().await?;
        let mut chain = Chain::load(&mut tx).await?;
        let (mut told, mut renewed) = (0, 0);
        for (s, what) in decided {
            match *what {
                Renewal::Due { age_limit } => {
                    if !renewal_due(&mut tx, s, age_limit, &at).await? {
                        continue;
                    }
                    told += 1;
                    let event = Audit::RenewalDue {
                        due_date: s.end_date,
                        age_limit,
                    };
                    chain
                        .append(&mut tx, &at, Some(&s.signal_id), Some(&s.source), &event)
                        .await?;
                }
                Renewal::Renew(end) => {
                    super::signals::renew(&mut tx, &s.source, &s.signal_id, end, now).await?;
                    renewed += 1;
                    let event = Audit::RenewPlanned {
                        end_date: Some(end),
                    };
                    chain
                        .append(&mut tx, &at, Some(&s.signal_id), Some(&s.source), &event)
                        .await?;
                }
            }
        }
        chain.flush(&mut tx).await?;
        tx.commit().await?;
        Ok((told, renewed))
    }
}

/// A `renewal_due` for the signal's case, unless it exists; whether it was made.
async fn renewal_due(
    conn: &mut AnyConnection,
    s: &Expiring,
    age_limit: bool,
    at: &str,
) -> Result<bool, StoreError> {
    let made = sql::query(
        "INSERT INTO notices (notice_id, kind, signal_id, source, case_ref, professional_id,
                                        created_at, counterparts, due_date, reason, state, not_before)
         SELECT ?, ?, signal_id, source, case_ref, professional_id, ?, '[]', ?, ?, ?, ?
         FROM signals WHERE signal_id = ? ON CONFLICT DO NOTHING",
    )
    .bind(due_id(&s.signal_id, s.end_date))
    .bind(NoticeKind::RenewalDue)
    .bind(at)
    .bind(s.end_date.to_string())
    .bind(age_limit.then_some(NoticeReason::AgeLimit))
    .bind(NoticeState::Pending)
    .bind(at)
    .bind(&s.signal_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(made > 0)
}

/// After the index confirmed a renewal: a `renewed` notice for the case,
/// with the new end date as its `due_date`.
pub async fn renewed(
    conn: &mut AnyConnection,
    signal_id: &str,
    end: &str,
    at: &str,
) -> Result<(), StoreError> {
    sql::query(
        "INSERT INTO notices (notice_id, kind, signal_id, source, case_ref, professional_id,
                                        created_at, counterparts, due_date, state, not_before)
         SELECT 'renewed-' || signal_id || '-' || ?, ?, signal_id, source, case_ref,
                professional_id, ?, '[]', ?, ?, ?
         FROM signals WHERE signal_id = ? ON CONFLICT DO NOTHING",
    )
    .bind(end)
    .bind(NoticeKind::Renewed)
    .bind(at)
    .bind(end)
    .bind(NoticeState::Pending)
    .bind(at)
    .bind(signal_id)
    .execute(conn)
    .await?;
    Ok(())
}
