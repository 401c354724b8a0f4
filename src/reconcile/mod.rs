//! The nightly reconciliation (reconcile.md): compare with the index,
//! renewals, expiry and the age limit, retention of local state, and the
//! report. One function (`run`) serves `visync reconcile` and the daemon's
//! `[schedule] reconcile` job alike; `dry_run` reads the same rows and the
//! index's pages and writes nothing anywhere (the store is opened read-only
//! for it, and the index gets `GET`s only).
//!
//! Owns: the order of the steps and what each counts. Must not: decide what
//! the planner decides (registrations, corrections, withdrawals come from
//! the source's files), or withdraw anything the index holds that this
//! store does not know.

mod compare;
mod renew;
mod report;

use chrono::{DateTime, NaiveDate, Utc};

pub use compare::Compared;
pub use renew::decide;
pub use report::Report;

use crate::config::Config;
use crate::domain::add_years;
use crate::index::IndexApi;
use crate::store::{Cuts, Store, StoreError};

/// One reconciliation, at `now` (whose Amsterdam date is today).
pub async fn run(
    store: &Store,
    api: &impl IndexApi,
    cfg: &Config,
    today: NaiveDate,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Report, StoreError> {
    let compared = compare::compare(store, api, today, now, dry_run).await?;
    let (renewal_due, renewed) = renew::renewals(store, cfg, today, now, dry_run).await?;
    let expired = if dry_run {
        store.count_expirable(today).await?
    } else {
        store.expire(today, now).await?
    };
    let cuts = cuts(cfg, today);
    let purged = if dry_run {
        store.count_purgeable(&cuts).await?
    } else {
        let p = store.purge(&cuts, now).await?;
        // What was deleted must not stay readable in the WAL either.
        store.scrub().await?;
        p
    };
    Ok(Report {
        as_of: today,
        dry_run,
        compared,
        renewal_due,
        renewed,
        expired,
        purged,
    })
}

/// The dates the retention rules give for `today`.
pub fn cuts(cfg: &Config, today: NaiveDate) -> Cuts {
    let years_ago = |y: u32| sub_years(today, y).to_string();
    Cuts {
        today: today.to_string(),
        archive: years_ago(cfg.rules.archive_years),
        notices: (today - chrono::Days::new(u64::from(cfg.retention.notice_days))).to_string(),
        audit: years_ago(cfg.retention.audit_years),
    }
}

/// `date` minus whole years; 29 February becomes 28 February (as
/// `add_years`, so that the two readings agree).
fn sub_years(date: NaiveDate, years: u32) -> NaiveDate {
    let back = date
        .checked_sub_months(chrono::Months::new(years.saturating_mul(12)))
        .unwrap_or(NaiveDate::MIN);
    // Going back and forth lands on `date` or the day before it.
    debug_assert!(add_years(back, years) <= date);
    back
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn years_back_agree_with_years_forward() {
        assert_eq!(sub_years(d("2031-11-28"), 5), d("2026-11-28"));
        assert_eq!(sub_years(d("2029-02-28"), 1), d("2028-02-28"));
        assert_eq!(sub_years(d("2028-02-29"), 1), d("2027-02-28"));
    }
}
