//! `Desired::plan` and the decisions it leaves on the entries.

use chrono::NaiveDate;

use super::{Decided, Desired, Entry};
use crate::domain::{Rules, WithdrawReason};
use crate::mapping::Mode;
use crate::plan::{decide, Action, Baseline, Counts, InvolvementKey, Plan, Policy, Wanted};

impl Desired {
    /// Diffs the desired state against the stored one; each entry is marked
    /// with its action.
    pub fn plan(
        &mut self,
        baseline: &impl Baseline,
        today: NaiveDate,
        rules: &Rules,
        policy: &Policy,
    ) -> Plan {
        self.seal();
        let mut counts = Counts::default();
        let mut withdrawals = Vec::new();
        let (professionals, renewals) = (&self.professionals, &mut self.renewals);
        for e in self.buckets.iter_mut().flatten() {
            if e.conflicted() {
                continue;
            }
            let key = Desired::full(professionals, &e.key);
            let stored = baseline.get(&key).filter(|s| s.active);
            let action = decide(&e.wanted(), stored, today, rules, policy);
            counts.count(action);
            e.decided = match action {
                None => Decided::Nothing,
                Some(Action::Register) => Decided::Register,
                Some(Action::Update) => Decided::Update,
                Some(Action::Renew { end_date }) => {
                    renewals.insert(e.key, end_date);
                    Decided::Renew
                }
                Some(Action::Withdraw(reason)) => {
                    withdrawals.push((key, reason));
                    Decided::Nothing
                }
            };
        }
        let mut withdrawals_held = false;
        if self.mode == Mode::Snapshot {
            let active = baseline.active_keys();
            for key in &active {
                if !self.lists(key) {
                    counts.withdraw += 1;
                    withdrawals.push((key.clone(), WithdrawReason::RiskEnded));
                }
            }
            withdrawals_held = !active.is_empty()
                && withdrawals.len() as f64 > policy.max_withdraw_fraction * active.len() as f64;
            if withdrawals_held {
                counts.held = withdrawals.len() as u64;
            }
        }
        withdrawals.sort();
        Plan {
            counts,
            withdrawals,
            withdrawals_held,
        }
    }

    /// Whether this file names an involvement, by a signal or by a rejected
    /// record: what a snapshot does not name is withdrawn.
    fn lists(&self, key: &InvolvementKey) -> bool {
        self.find(key)
            .is_some_and(|c| self.index(&c).is_some() || self.present.binary_search(&c).is_ok())
    }

    fn action(&self, e: &Entry) -> Option<Action> {
        match e.decided {
            Decided::Nothing => None,
            Decided::Register => Some(Action::Register),
            Decided::Update => Some(Action::Update),
            Decided::Renew => self
                .renewals
                .get(&e.key)
                .map(|&end_date| Action::Renew { end_date }),
        }
    }

    /// Takes the decided register, update or renewal of an involvement, once:
    /// the real run writes it when it meets the record again.
    pub fn take(&mut self, key: &InvolvementKey) -> Option<(Action, Wanted)> {
        let (b, i) = self.index(&self.find(key)?)?;
        let entry = self.buckets[b][i];
        let action = self.action(&entry)?;
        self.buckets[b][i].decided = Decided::Nothing;
        Some((action, entry.wanted()))
    }

    /// Every decided register, update and renewal.
    pub fn decided(&self) -> impl Iterator<Item = (InvolvementKey, Action, Wanted)> + '_ {
        self.entries().filter_map(|e| {
            self.action(e)
                .map(|a| (Desired::full(&self.professionals, &e.key), a, e.wanted()))
        })
    }
}
