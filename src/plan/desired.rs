//! `Desired`: a file's signals as compact entries, built record by record,
//! and the plan's decisions kept on them.
//!
//! The entries are not a hash map: a map at a 7/8 load limit that doubles
//! as it grows took about 100 bytes an entry at its peak (1.2 GiB at ten
//! million rows, both tables alive while it grew). They are appended to one
//! of 256 buckets by the first byte of their subject key (a keyed hash, so
//! uniform), 44 bytes each, and each bucket is sorted once the file is read
//! (`seal`): repeats meet there, and a lookup is a binary search in one
//! small bucket.

use std::sync::Arc;

use chrono::NaiveDate;

use super::{FastMap, InvolvementKey, Wanted};
use crate::domain::{ContentHash, SubjectKey, WithdrawReason};
use crate::mapping::Mode;
use crate::source::Location;

mod planning;

const BUCKETS: usize = 256;
/// Below this many entries a file's buckets are sorted on one thread.
const PARALLEL_SEAL: usize = 1 << 16;

/// The compact key inside `Desired`: professionals are interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Compact {
    subject: SubjectKey,
    professional: u32,
}

/// One entry, packed: at ten million rows every byte here is ten megabytes.
/// `packed(4)` keeps the hash's 8 bytes from padding the entry to 48; the
/// compiler refuses a reference to a misaligned field, so it costs no care.
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
struct Entry {
    key: Compact,
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

impl Entry {
    fn new(key: Compact, w: &Wanted) -> Entry {
        let (position, record) = match w.location {
            Location::Line(n) => (n, false),
            Location::Record(n) => (n, true),
        };
        Entry {
            key,
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

    fn location(&self) -> Location {
        let n = u64::from(self.position);
        if self.flags & RECORD != 0 {
            Location::Record(n)
        } else {
            Location::Line(n)
        }
    }

    fn wanted(&self) -> Wanted {
        Wanted {
            content: self.content,
            location: self.location(),
            end_date: self.end_date,
            end_from_source: self.flags & FROM_SOURCE != 0,
            last_day: self.last_day,
            ended: self.ended,
        }
    }

    fn conflicted(&self) -> bool {
        self.flags & CONFLICTED != 0
    }

    /// Whether a repeat says the same as this entry (else it conflicts).
    fn same_data(&self, o: &Entry) -> bool {
        let (a, b) = (self.content, o.content);
        let (end, other_end) = (self.end_date, o.end_date);
        let (ended, other_ended) = (self.ended, o.ended);
        a == b && end == other_end && ended == other_ended
    }

    /// Sorted by key, then in file order: the first of a key is its first record.
    fn order(&self) -> (u128, u32, u32) {
        let key = self.key;
        (
            u128::from_be_bytes(key.subject.0),
            key.professional,
            self.position,
        )
    }
}

/// Sorts one bucket and folds each involvement's repeats into its first
/// record: identical repeats are one signal; a repeat with different data
/// marks it conflicted, and its first record and every record from the
/// first different one on are `duplicate_record`s (as when the repeats are
/// met one by one in file order).
fn seal_bucket(bucket: &mut Vec<Entry>, duplicates: &mut Vec<Location>) {
    bucket.sort_unstable_by_key(Entry::order);
    let (mut kept, mut i) = (0, 0);
    while i < bucket.len() {
        let mut first = bucket[i];
        let group = i + bucket[i..]
            .iter()
            .take_while(|e| e.key == first.key)
            .count();
        if let Some(k) = (i + 1..group).find(|&k| !bucket[k].same_data(&first)) {
            duplicates.push(first.location());
            duplicates.extend(bucket[k..group].iter().map(Entry::location));
            first.flags |= CONFLICTED;
        }
        bucket[kept] = first;
        kept += 1;
        i = group;
    }
    bucket.truncate(kept);
}

#[cfg(test)]
pub(super) fn entry_size() -> usize {
    std::mem::size_of::<Entry>()
}

fn seal_buckets(buckets: &mut [Vec<Entry>]) -> Vec<Location> {
    let mut duplicates = Vec::new();
    for bucket in buckets {
        seal_bucket(bucket, &mut duplicates);
    }
    duplicates
}

/// The desired state of one source's file, built record by record.
pub struct Desired {
    mode: Mode,
    /// By the first byte of the subject key; sorted by key once sealed.
    buckets: Vec<Vec<Entry>>,
    /// Involvements named by records that were rejected: never withdrawn
    /// for that. Sorted and without repeats once sealed.
    present: Vec<Compact>,
    professionals: Vec<Arc<str>>,
    interned: FastMap<Arc<str>, u32>,
    /// The end dates of decided renewals (rare, so not in every entry).
    renewals: FastMap<Compact, NaiveDate>,
    /// Locations of records rejected as `duplicate_record`, in file order.
    duplicates: Vec<Location>,
    sealed: bool,
}

impl Desired {
    pub fn new(mode: Mode) -> Self {
        Desired {
            mode,
            buckets: vec![Vec::new(); BUCKETS],
            present: Vec::new(),
            professionals: Vec::new(),
            interned: FastMap::default(),
            renewals: FastMap::default(),
            duplicates: Vec::new(),
            sealed: false,
        }
    }

    /// Interns by `&str`: no allocation for a professional seen before.
    fn compact(&mut self, subject: SubjectKey, professional: &str) -> Compact {
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

    fn full(professionals: &[Arc<str>], c: &Compact) -> InvolvementKey {
        InvolvementKey {
            subject: c.subject,
            professional: professionals[c.professional as usize].clone(),
        }
    }

    fn bucket(c: &Compact) -> usize {
        usize::from(c.subject.0[0])
    }

    fn index(&self, c: &Compact) -> Option<(usize, usize)> {
        assert!(self.sealed, "a Desired is sealed before it is read");
        let b = Self::bucket(c);
        let i = self.buckets[b].binary_search_by_key(c, |e| e.key).ok()?;
        Some((b, i))
    }

    /// Adds a record's signal. Identical repeats are one signal; a repeat with
    /// different data rejects every record of that involvement (`seal`).
    pub fn offer(&mut self, key: &InvolvementKey, wanted: Wanted) {
        self.offer_parts(key.subject, &key.professional, wanted);
    }

    /// `offer` without building a key first (the hot path of a big file).
    pub fn offer_parts(&mut self, subject: SubjectKey, professional: &str, wanted: Wanted) {
        debug_assert!(!self.sealed, "no offers after `seal`");
        let c = self.compact(subject, professional);
        self.buckets[Self::bucket(&c)].push(Entry::new(c, &wanted));
    }

    /// Notes an involvement whose record was rejected for other reasons.
    pub fn note_present(&mut self, key: &InvolvementKey) {
        let c = self.compact(key.subject, &key.professional);
        self.present.push(c);
    }

    /// Ends the offers: sorts the entries and resolves repeats. Idempotent;
    /// every method that reads the entries needs it first. A big file's
    /// buckets are sorted on two threads, half each.
    pub fn seal(&mut self) {
        if self.sealed {
            return;
        }
        let entries: usize = self.buckets.iter().map(Vec::len).sum();
        let mut duplicates = if entries < PARALLEL_SEAL {
            seal_buckets(&mut self.buckets)
        } else {
            let (low, high) = self.buckets.split_at_mut(BUCKETS / 2);
            std::thread::scope(|s| {
                let other = s.spawn(|| seal_buckets(high));
                let mut d = seal_buckets(low);
                d.extend(
                    other
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p)),
                );
                d
            })
        };
        duplicates.sort_unstable();
        self.duplicates = duplicates;
        self.present.sort_unstable();
        self.present.dedup();
        self.sealed = true;
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> + '_ {
        assert!(self.sealed, "a Desired is sealed before it is read");
        self.buckets.iter().flatten()
    }

    /// The children this file offers a signal for: of the stored state, a
    /// delta's plan needs only theirs.
    pub fn subjects(&self) -> impl Iterator<Item = SubjectKey> + '_ {
        self.entries().map(|e| e.key.subject)
    }

    /// Locations rejected as duplicates, in file order.
    pub fn duplicates(&self) -> &[Location] {
        assert!(self.sealed, "a Desired is sealed before it is read");
        &self.duplicates
    }
}
