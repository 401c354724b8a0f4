//! `[schedule]`, `[rules]` and `[policy]`: the cron schedules, the law's
//! periods within the bounds it allows, the retention of what those periods
//! do not cover, renewal and the withdrawal guard.

use std::str::FromStr;

use super::{invalid, raw, Invalid, Schedule};
use crate::domain::Rules;
use crate::plan::Policy;

/// Retention of what the law's periods do not cover (`[rules]`,
/// reconcile.md): delivered notices and the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Delivered (and unroutable) notices are purged this many days after.
    pub notice_days: u32,
    /// Audit events are purged this many years after, oldest first.
    pub audit_years: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            notice_days: 90,
            audit_years: 7,
        }
    }
}

/// `[schedule]`: cron expressions, seconds first, with the spec's defaults.
pub(super) fn schedule(raw: &raw::RawSchedule) -> Result<Schedule, Invalid> {
    let cron_of = |k: &str, v: Option<&str>, default: &str| {
        let v = v.unwrap_or(default);
        cron::Schedule::from_str(v).map_err(|e| {
            (
                k.to_string(),
                format!(
                    "\"{v}\" is not a cron schedule (seconds first, e.g. \"0 30 2 * * *\"): {e}"
                ),
            )
        })
    };
    Ok(Schedule {
        notices: cron_of(
            "[schedule] notices",
            raw.notices.as_deref(),
            "0 */5 * * * *",
        )?,
        reconcile: cron_of(
            "[schedule] reconcile",
            raw.reconcile.as_deref(),
            "0 30 2 * * *",
        )?,
    })
}

/// `[rules]`: the region's periods, within the bounds the law allows.
pub(super) fn rules(raw: &raw::RawRules) -> Result<Rules, Invalid> {
    let d = Rules::default();
    let rules = Rules {
        max_active_years: raw.max_active_years.unwrap_or(d.max_active_years),
        archive_years: raw.archive_years.unwrap_or(d.archive_years),
        age_limit: raw.age_limit.unwrap_or(d.age_limit),
    };
    if !(1..=10).contains(&rules.max_active_years) {
        return invalid(
            "[rules] max_active_years",
            format!("{} is outside 1..=10", rules.max_active_years),
        );
    }
    if rules.archive_years > 20 {
        return invalid(
            "[rules] archive_years",
            format!("{} is over 20", rules.archive_years),
        );
    }
    if !(1..=30).contains(&rules.age_limit) {
        return invalid(
            "[rules] age_limit",
            format!("{} is outside 1..=30", rules.age_limit),
        );
    }
    Ok(rules)
}

/// `[rules] notice_days` and `audit_years`: a notice must stay long enough
/// for a CMS to import it (at least a day), the trail at least a year.
pub(super) fn retention(raw: &raw::RawRules) -> Result<Retention, Invalid> {
    let d = Retention::default();
    let r = Retention {
        notice_days: raw.notice_days.unwrap_or(d.notice_days),
        audit_years: raw.audit_years.unwrap_or(d.audit_years),
    };
    if !(1..=3650).contains(&r.notice_days) {
        return invalid(
            "[rules] notice_days",
            format!(
                "{} is outside 1..=3650: give the days a delivered notice is kept",
                r.notice_days
            ),
        );
    }
    if !(1..=50).contains(&r.audit_years) {
        return invalid(
            "[rules] audit_years",
            format!(
                "{} is outside 1..=50: give the years the audit trail is kept",
                r.audit_years
            ),
        );
    }
    Ok(r)
}

/// `[policy]`: renewal and the withdrawal guard.
pub(super) fn policy(raw: &raw::RawPolicy) -> Result<Policy, Invalid> {
    let p = Policy::default();
    let policy = Policy {
        renewal_notice_days: raw.renewal_notice_days.unwrap_or(p.renewal_notice_days),
        auto_renew: raw.auto_renew.unwrap_or(p.auto_renew),
        max_withdraw_fraction: raw.max_withdraw_fraction.unwrap_or(p.max_withdraw_fraction),
    };
    if !(0.0..=1.0).contains(&policy.max_withdraw_fraction) {
        return invalid(
            "[policy] max_withdraw_fraction",
            format!("{} is outside 0.0..=1.0", policy.max_withdraw_fraction),
        );
    }
    Ok(policy)
}
