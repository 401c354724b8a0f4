//! Planning: what to register, update, withdraw or renew. A pure function of
//! the desired state (what a source says now) and the stored state (what this
//! installation has sent), so that the dry run and the real run plan alike.
//!
//! `Desired` collects a file's signals as compact entries; `Desired::plan`
//! diffs them against a `Baseline`. A payload `T` rides along with each entry
//! for the caller (the real run carries what it must send; the dry run, `()`).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;

use crate::domain::{add_years, ContentHash, Rules, SubjectKey, WithdrawReason};
use crate::mapping::Mode;
use crate::source::Location;

/// One professional's involvement with one child: what a signal stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InvolvementKey {
    pub subject: SubjectKey,
    pub professional: Box<str>,
}

/// What a source wants for one involvement.
#[derive(Debug, Clone, PartialEq, Eq)]
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

impl Baseline for HashMap<InvolvementKey, Stored> {
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned<T> {
    pub key: InvolvementKey,
    pub action: Action,
    /// The caller's payload for register, update and renew; `None` for
    /// withdrawals of involvements the source no longer lists.
    pub payload: Option<T>,
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
}

#[derive(Debug)]
pub struct Plan<T> {
    pub actions: Vec<Planned<T>>,
    pub counts: Counts,
    /// Whether the withdrawals among `actions` are held for an operator.
    pub withdrawals_held: bool,
}

enum Slot<T> {
    Wanted(Wanted, T),
    /// The same involvement twice with different data: all its records are
    /// rejected, and its stored signal is left as it is.
    Conflicted,
}

/// The desired state of one source, built record by record.
pub struct Desired<T> {
    mode: Mode,
    entries: HashMap<InvolvementKey, Slot<T>>,
    /// Involvements named by records that were rejected: never withdrawn for that.
    present: HashSet<InvolvementKey>,
    /// Locations of records rejected as `duplicate_record`.
    duplicates: Vec<Location>,
}

impl<T> Desired<T> {
    pub fn new(mode: Mode) -> Self {
        Desired {
            mode,
            entries: HashMap::new(),
            present: HashSet::new(),
            duplicates: Vec::new(),
        }
    }

    /// Adds a record's signal. Identical repeats are one signal; a repeat with
    /// different data rejects every record of that involvement.
    pub fn offer(&mut self, key: InvolvementKey, wanted: Wanted, payload: T) {
        use std::collections::hash_map::Entry;
        match self.entries.entry(key) {
            Entry::Vacant(v) => {
                v.insert(Slot::Wanted(wanted, payload));
            }
            Entry::Occupied(mut o) => match o.get() {
                Slot::Wanted(w, _)
                    if w.content == wanted.content
                        && w.end_date == wanted.end_date
                        && w.ended == wanted.ended => {}
                Slot::Wanted(w, _) => {
                    self.duplicates.push(w.location);
                    self.duplicates.push(wanted.location);
                    o.insert(Slot::Conflicted);
                }
                Slot::Conflicted => self.duplicates.push(wanted.location),
            },
        }
    }

    /// Notes an involvement whose record was rejected for other reasons.
    pub fn note_present(&mut self, key: InvolvementKey) {
        self.present.insert(key);
    }

    /// Locations rejected as duplicates so far, in the order they were found.
    pub fn duplicates(&self) -> &[Location] {
        &self.duplicates
    }

    /// Diffs the desired state against the stored one.
    pub fn plan(
        self,
        baseline: &impl Baseline,
        today: NaiveDate,
        rules: &Rules,
        policy: &Policy,
    ) -> Plan<T> {
        let mut counts = Counts::default();
        let mut actions = Vec::new();
        let mut listed: HashSet<InvolvementKey> = self.present;
        for (key, slot) in self.entries {
            let Slot::Wanted(w, payload) = slot else {
                listed.insert(key);
                continue;
            };
            let stored = baseline.get(&key).filter(|s| s.active);
            let action = decide(&w, stored, today, rules, policy);
            listed.insert(key.clone());
            match action {
                None => counts.unchanged += 1,
                Some(a) => {
                    match a {
                        Action::Register => counts.register += 1,
                        Action::Update => counts.update += 1,
                        Action::Withdraw(_) => counts.withdraw += 1,
                        Action::Renew { .. } => counts.renew += 1,
                    }
                    actions.push(Planned {
                        key,
                        action: a,
                        payload: Some(payload),
                    });
                }
            }
        }
        if self.mode == Mode::Snapshot {
            let active = baseline.active_keys();
            for key in active.iter().filter(|k| !listed.contains(*k)) {
                counts.withdraw += 1;
                actions.push(Planned {
                    key: key.clone(),
                    action: Action::Withdraw(WithdrawReason::RiskEnded),
                    payload: None,
                });
            }
            let held = !active.is_empty()
                && counts.withdraw as f64 > policy.max_withdraw_fraction * active.len() as f64;
            if held {
                counts.held = counts.withdraw;
            }
            // Stable order: the plan reads the same on every run.
            actions.sort_by(|a, b| a.key.cmp(&b.key));
            return Plan {
                actions,
                counts,
                withdrawals_held: held,
            };
        }
        actions.sort_by(|a, b| a.key.cmp(&b.key));
        Plan {
            actions,
            counts,
            withdrawals_held: false,
        }
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
