//! Planning: what to register, update, withdraw or renew. A pure function of
//! the desired state (what a source says now) and the stored state (what this
//! installation has sent), so that the dry run and the real run plan alike.
//!
//! `Desired` collects a file's signals as compact entries (48 bytes per
//! involvement in the map: a file of a million rows plans in about 100 MiB);
//! `Desired::plan` diffs them against a `Baseline` and marks each entry with
//! its action, which the caller then takes entry by entry.

mod fasthash;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;

pub use fasthash::{FastMap, FastSet};

use crate::domain::{add_years, ContentHash, Rules, SubjectKey, WithdrawReason};
use crate::mapping::Mode;
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

/// The compact key inside `Desired`: professionals are interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Compact {
    subject: SubjectKey,
    professional: u32,
}

/// One entry, packed: at a million rows every byte here is a megabyte.
#[derive(Debug, Clone, Copy)]
struct Slot {
    content: ContentHash,
    /// The record's line or record number (saturating at 4 billion).
    position: u32,
    end_date: NaiveDate,
    last_day: NaiveDate,
    ended: Option<WithdrawReason>,
    /// Bit 0: the end date is the source's own; bit 1: the position is an
    /// XML/API record number rather than a CSV line; bit 2: conflicted (the
    /// same involvement twice with different data: all its records are
    /// rejected, and its stored signal is left as it is).
    flags: u8,
    /// The action decided by `plan`; a renewal's date is in `Desired::renewals`.
    decided: Decided,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decided {
    Nothing,
    Register,
    Update,
    Renew,
}

const FROM_SOURCE: u8 = 1;
const RECORD: u8 = 2;
const CONFLICTED: u8 = 4;

impl Slot {
    fn new(w: &Wanted) -> Slot {
        let (position, record) = match w.location {
            Location::Line(n) => (n, false),
            Location::Record(n) => (n, true),
        };
        Slot {
            content: w.content,
            position: u32::try_from(position).unwrap_or(u32::MAX),
            end_date: w.end_date,
            last_day: w.last_day,
            ended: w.ended,
            flags: if w.end_from_source { FROM_SOURCE } else { 0 }
                | if record { RECORD } else { 0 },
            decided: Decided::Nothing,
        }
    }

    fn wanted(&self) -> Wanted {
        let n = u64::from(self.position);
        Wanted {
            content: self.content,
            location: if self.flags & RECORD != 0 {
                Location::Record(n)
            } else {
                Location::Line(n)
            },
            end_date: self.end_date,
            end_from_source: self.flags & FROM_SOURCE != 0,
            last_day: self.last_day,
            ended: self.ended,
        }
    }

    fn conflicted(&self) -> bool {
        self.flags & CONFLICTED != 0
    }
}

/// The desired state of one source's file, built record by record.
pub struct Desired {
    mode: Mode,
    entries: FastMap<Compact, Slot>,
    /// Involvements named by records that were rejected: never withdrawn for that.
    present: FastSet<Compact>,
    professionals: Vec<Arc<str>>,
    interned: FastMap<Arc<str>, u32>,
    /// The end dates of decided renewals (rare, so not in every slot).
    renewals: FastMap<Compact, NaiveDate>,
    /// Locations of records rejected as `duplicate_record`.
    duplicates: Vec<Location>,
}

impl Desired {
    pub fn new(mode: Mode) -> Self {
        Desired {
            mode,
            entries: FastMap::default(),
            present: FastSet::default(),
            professionals: Vec::new(),
            interned: FastMap::default(),
            renewals: FastMap::default(),
            duplicates: Vec::new(),
        }
    }

    fn compact(&mut self, key: &InvolvementKey) -> Compact {
        self.compact_parts(key.subject, &key.professional)
    }

    /// Interns by `&str`: no allocation for a professional seen before.
    fn compact_parts(&mut self, subject: SubjectKey, professional: &str) -> Compact {
        let professional = match self.interned.get(professional) {
            Some(&i) => i,
            None => {
                let i = self.professionals.len() as u32;
                let name: Arc<str> = professional.into();
                self.professionals.push(name.clone());
                self.interned.insert(name, i);
                i
            }
        };
        Compact {
            subject,
            professional,
        }
    }

    /// The compact key, if this file names the professional at all.
    fn find(&self, key: &InvolvementKey) -> Option<Compact> {
        let &professional = self.interned.get(&key.professional)?;
        Some(Compact {
            subject: key.subject,
            professional,
        })
    }

    fn full(&self, c: &Compact) -> InvolvementKey {
        InvolvementKey {
            subject: c.subject,
            professional: self.professionals[c.professional as usize].clone(),
        }
    }

    /// Adds a record's signal. Identical repeats are one signal; a repeat with
    /// different data rejects every record of that involvement.
    pub fn offer(&mut self, key: &InvolvementKey, wanted: Wanted) {
        self.offer_parts(key.subject, &key.professional, wanted);
    }

    /// `offer` without building a key first (the hot path of a big file).
    pub fn offer_parts(&mut self, subject: SubjectKey, professional: &str, wanted: Wanted) {
        use std::collections::hash_map::Entry;
        let c = self.compact_parts(subject, professional);
        match self.entries.entry(c) {
            Entry::Vacant(v) => {
                v.insert(Slot::new(&wanted));
            }
            Entry::Occupied(mut o) => {
                let slot = o.get_mut();
                if slot.conflicted() {
                    self.duplicates.push(wanted.location);
                } else if slot.content != wanted.content
                    || slot.end_date != wanted.end_date
                    || slot.ended != wanted.ended
                {
                    self.duplicates.push(slot.wanted().location);
                    self.duplicates.push(wanted.location);
                    slot.flags |= CONFLICTED;
                }
            }
        }
    }

    /// Notes an involvement whose record was rejected for other reasons.
    pub fn note_present(&mut self, key: &InvolvementKey) {
        let c = self.compact(key);
        self.present.insert(c);
    }

    /// The children this file offers a signal for (with repeats): of the
    /// stored state, a delta's plan needs only theirs.
    pub fn subjects(&self) -> impl Iterator<Item = SubjectKey> + '_ {
        self.entries.keys().map(|c| c.subject)
    }

    /// Locations rejected as duplicates so far, in the order they were found.
    pub fn duplicates(&self) -> &[Location] {
        &self.duplicates
    }

    /// Diffs the desired state against the stored one; each entry is marked
    /// with its action.
    pub fn plan(
        &mut self,
        baseline: &impl Baseline,
        today: NaiveDate,
        rules: &Rules,
        policy: &Policy,
    ) -> Plan {
        let mut counts = Counts::default();
        let mut withdrawals = Vec::new();
        let mut decided = Vec::new();
        for (c, slot) in &self.entries {
            if slot.conflicted() {
                continue;
            }
            let key = self.full(c);
            let stored = baseline.get(&key).filter(|s| s.active);
            let action = decide(&slot.wanted(), stored, today, rules, policy);
            counts.count(action);
            match action {
                Some(Action::Withdraw(reason)) => withdrawals.push((key, reason)),
                Some(a) => decided.push((*c, a)),
                None => {}
            }
        }
        for (c, a) in decided {
            if let Some(slot) = self.entries.get_mut(&c) {
                slot.decided = match a {
                    Action::Register => Decided::Register,
                    Action::Update => Decided::Update,
                    Action::Renew { end_date } => {
                        self.renewals.insert(c, end_date);
                        Decided::Renew
                    }
                    Action::Withdraw(_) => Decided::Nothing,
                };
            }
        }
        let mut withdrawals_held = false;
        if self.mode == Mode::Snapshot {
            let active = baseline.active_keys();
            for key in active {
                let listed = self
                    .find(&key)
                    .is_some_and(|c| self.entries.contains_key(&c) || self.present.contains(&c));
                if !listed {
                    counts.withdraw += 1;
                    withdrawals.push((key, WithdrawReason::RiskEnded));
                }
            }
            let active = baseline.active_keys().len();
            withdrawals_held = active > 0
                && withdrawals.len() as f64 > policy.max_withdraw_fraction * active as f64;
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

    fn action(&self, c: &Compact, d: Decided) -> Option<Action> {
        match d {
            Decided::Nothing => None,
            Decided::Register => Some(Action::Register),
            Decided::Update => Some(Action::Update),
            Decided::Renew => self
                .renewals
                .get(c)
                .map(|&end_date| Action::Renew { end_date }),
        }
    }

    /// Takes the decided register, update or renewal of an involvement, once:
    /// the real run writes it when it meets the record again.
    pub fn take(&mut self, key: &InvolvementKey) -> Option<(Action, Wanted)> {
        let c = self.find(key)?;
        let slot = *self.entries.get(&c)?;
        let action = self.action(&c, slot.decided)?;
        if let Some(s) = self.entries.get_mut(&c) {
            s.decided = Decided::Nothing;
        }
        Some((action, slot.wanted()))
    }

    /// Every decided register, update and renewal.
    pub fn decided(&self) -> impl Iterator<Item = (InvolvementKey, Action, Wanted)> + '_ {
        self.entries.iter().filter_map(|(c, s)| {
            self.action(c, s.decided)
                .map(|a| (self.full(c), a, s.wanted()))
        })
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
