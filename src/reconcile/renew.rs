//! Step 2: signals about to expire while their case is open. The decision
//! is pure (`decide`); the store pages through the candidates and writes
//! one page's decisions in one transaction.
//!
//! "Still current" is what the store already knows: an `active` signal is
//! one the source's latest complete snapshot listed (or a delta did not
//! end), since a snapshot that no longer lists it withdraws it; one whose
//! withdrawal is held for `visync release` is left out (it has something
//! queued).

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::Config;
use crate::domain::{add_years, Rules};
use crate::plan::Policy;
use crate::store::{Expiring, Renewal, Store, StoreError};

/// What to do about a signal ending on `end` for a child whose last day is
/// `last_day`: renew it as far as the rules allow (the earlier of today +
/// `max_active_years` and the day before the age limit) when `auto_renew`
/// says so, else tell the professional; a signal that cannot be renewed any
/// further (the age limit) is told so, whatever the policy.
pub fn decide(
    end: NaiveDate,
    last_day: NaiveDate,
    today: NaiveDate,
    rules: &Rules,
    policy: &Policy,
) -> Renewal {
    let cap = add_years(today, rules.max_active_years).min(last_day);
    if cap <= end {
        Renewal::Due { age_limit: true }
    } else if policy.auto_renew {
        Renewal::Renew(cap)
    } else {
        Renewal::Due { age_limit: false }
    }
}

/// (renewal_due notices, renewals): made, or in a dry run, that would be.
pub async fn renewals(
    store: &Store,
    cfg: &Config,
    today: NaiveDate,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<(u64, u64), StoreError> {
    let until = today + chrono::Days::new(u64::from(cfg.policy.renewal_notice_days));
    let (mut told, mut renewed) = (0, 0);
    let mut after = String::new();
    loop {
        let page: Vec<Expiring> = store.expiring(today, until, &after).await?;
        let Some(last) = page.last() else {
            return Ok((told, renewed));
        };
        after = last.signal_id.clone();
        let decided: Vec<(Expiring, Renewal)> = page
            .into_iter()
            .map(|s| {
                let r = decide(s.end_date, s.last_day, today, &cfg.rules, &cfg.policy);
                (s, r)
            })
            // Told once per signal and expiry: a notice made on an
            // earlier night is not made again.
            .filter(|(s, r)| !(s.told && matches!(r, Renewal::Due { .. })))
            .collect();
        if dry_run {
            for (_, r) in &decided {
                match r {
                    Renewal::Due { .. } => told += 1,
                    Renewal::Renew(_) => renewed += 1,
                }
            }
        } else {
            let (t, r) = store.renew_or_tell(&decided, now).await?;
            told += t;
            renewed += r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn renewal_goes_as_far_as_the_rules_allow_and_no_further() {
        let rules = Rules::default();
        let ask = Policy::default();
        let auto = Policy {
            auto_renew: true,
            ..Policy::default()
        };
        let today = d("2028-10-15");
        // Years before the age limit: two years from today.
        assert_eq!(
            decide(d("2028-11-01"), d("2035-03-03"), today, &rules, &auto),
            Renewal::Renew(d("2030-10-15"))
        );
        assert_eq!(
            decide(d("2028-11-01"), d("2035-03-03"), today, &rules, &ask),
            Renewal::Due { age_limit: false }
        );
        // The age limit comes first: up to the day before the birthday.
        assert_eq!(
            decide(d("2028-11-01"), d("2029-03-03"), today, &rules, &auto),
            Renewal::Renew(d("2029-03-03"))
        );
        // Already ending on the last day: nothing left to renew.
        for p in [&ask, &auto] {
            assert_eq!(
                decide(d("2028-11-01"), d("2028-11-01"), today, &rules, p),
                Renewal::Due { age_limit: true }
            );
        }
    }
}
