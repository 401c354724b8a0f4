//! Planning: what to register, update, withdraw or renew. A pure function of
//! the desired state (what a source says now) and the stored state (what this
//! installation has sent), so that the dry run and the real run plan alike.
//!
//! `Desired` (desired.rs) collects a file's signals as compact entries (44
//! bytes per involvement: a file of ten million rows plans in about 450 MiB);
//! `Desired::plan` diffs them against a `Baseline` and marks each entry with
//! its action, which the caller then takes entry by entry.

mod desired;
mod fasthash;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;

pub use desired::Desired;
pub use fasthash::{FastMap, FastSet};

use crate::domain::{add_years, ContentHash, Rules, SubjectKey, WithdrawReason};
use crate::source::Location;

/// One professional's involvement with one child: what a signal stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InvolvementKey {
    pub subject: SubjectKey,
    pub professional: Arc<str>,
}

/// What a source wants for one involvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub content: ContentHash,
    pub location: Location,
    pub end_date: NaiveDate,
    pub end_from_source: bool,
    /// The last day the rules allow (the day before the age limit).
    pub last_day: NaiveDate,
    pub ended: Option<WithdrawReason>,
}

/// What this installation holds of one involvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub content: ContentHash,
    /// Active at the index (not withdrawn, not expired).
    pub active: bool,
    pub end_date: NaiveDate,
    /// The end date was moved by a renewal, not by the source.
    pub renewed: bool,
}

/// The stored state as the planner sees it.
pub trait Baseline {
    fn get(&self, key: &InvolvementKey) -> Option<Stored>;
    /// Every active involvement of the source being planned.
    fn active_keys(&self) -> Vec<InvolvementKey>;
}

impl<S: std::hash::BuildHasher> Baseline for HashMap<InvolvementKey, Stored, S> {
    fn get(&self, key: &InvolvementKey) -> Option<Stored> {
        HashMap::get(self, key).copied()
    }
    fn active_keys(&self) -> Vec<InvolvementKey> {
        self.iter()
            .filter(|(_, s)| s.active)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub renewal_notice_days: u32,
    pub auto_renew: bool,
    /// A snapshot that would withdraw more than this fraction of the active
    /// signals has its withdrawals held for an operator.
    pub max_withdraw_fraction: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            renewal_notice_days: 30,
            auto_renew: false,
            max_withdraw_fraction: 0.10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Register,
    Update,
    Withdraw(WithdrawReason),
    Renew { end_date: NaiveDate },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub register: u64,
    pub update: u64,
    pub withdraw: u64,
    pub renew: u64,
    pub unchanged: u64,
    /// Withdrawals held by the `max_withdraw_fraction` guard (also in `withdraw`).
    pub held: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.register += o.register;
        self.update += o.update;
        self.withdraw += o.withdraw;
        self.renew += o.renew;
        self.unchanged += o.unchanged;
        self.held += o.held;
    }

    fn count(&mut self, action: Option<Action>) {
        match action {
            None => self.unchanged += 1,
            Some(Action::Register) => self.register += 1,
            Some(Action::Update) => self.update += 1,
            Some(Action::Withdraw(_)) => self.withdraw += 1,
            Some(Action::Renew { .. }) => self.renew += 1,
        }
    }
}

/// The outcome of planning one file. Registrations, updates and renewals
/// stay on their entries (`Desired::take`, `Desired::decided`), so that no
/// second copy of a big file's plan is ever made.
#[derive(Debug)]
pub struct Plan {
    pub counts: Counts,
    /// Every withdrawal, in key order: of involvements the source says have
    /// ended, and (snapshot mode) of those it no longer lists.
    pub withdrawals: Vec<(InvolvementKey, WithdrawReason)>,
    /// Whether those withdrawals are held for an operator.
    pub withdrawals_held: bool,
}

impl Plan {
    /// An incomplete input (a poll that did not read every page) withdraws
    /// nothing: what it did not read is not known to have ended.
    pub fn without_withdrawals(&mut self) {
        self.withdrawals.clear();
        self.withdrawals_held = false;
        self.counts.withdraw = 0;
        self.counts.held = 0;
    }
}

fn decide(
    w: &Wanted,
    stored: Option<Stored>,
    today: NaiveDate,
    rules: &Rules,
    policy: &Policy,
) -> Option<Action> {
    let Some(s) = stored else {
        // Nothing active: register, unless the involvement is over or its
        // time is up already.
        return (w.ended.is_none() && w.end_date >= today).then_some(Action::Register);
    };
    if let Some(reason) = w.ended {
        return Some(Action::Withdraw(reason));
    }
    // A renewal stands until the source itself sets an end.
    let want_end = if s.renewed && !w.end_from_source {
        s.end_date
    } else {
        w.end_date
    };
    if s.content != w.content || want_end != s.end_date {
        return Some(Action::Update);
    }
    let days_left = (s.end_date - today).num_days();
    if policy.auto_renew && days_left >= 0 && days_left <= i64::from(policy.renewal_notice_days) {
        let mut end = add_years(today, rules.max_active_years).min(w.last_day);
        if w.end_from_source {
            end = end.min(w.end_date);
        }
        if end > s.end_date {
            return Some(Action::Renew { end_date: end });
        }
    }
    None
}

#[cfg(test)]
mod tests;
