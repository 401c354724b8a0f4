//! The signal: identity and contact data, and nothing else. This type is the
//! data-minimisation guarantee: a mapping can only fill these fields, and only
//! these fields ever leave a source.

use super::Bsn;
use chrono::{Datelike, NaiveDate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    Male,
    Female,
    Other,
    Unknown,
}

impl Gender {
    pub fn parse(s: &str) -> Option<Gender> {
        Some(match s {
            "male" => Gender::Male,
            "female" => Gender::Female,
            "other" => Gender::Other,
            "unknown" => Gender::Unknown,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }
}

/// Why a signal ends early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WithdrawReason {
    /// The concern is over (archived by the index).
    RiskEnded,
    /// The signal should never have been made (purged at once).
    Unjustified,
    /// The child or parents objected (purged at once, never registered again).
    Objection,
    Deceased,
}

impl WithdrawReason {
    /// The reasons a source may give; `objection` comes only from `visync object`.
    pub fn parse_from_source(s: &str) -> Option<WithdrawReason> {
        Some(match s {
            "risk_ended" => WithdrawReason::RiskEnded,
            "unjustified" => WithdrawReason::Unjustified,
            "deceased" => WithdrawReason::Deceased,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawReason::RiskEnded => "risk_ended",
            WithdrawReason::Unjustified => "unjustified",
            WithdrawReason::Objection => "objection",
            WithdrawReason::Deceased => "deceased",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub bsn: Bsn,
    pub family_name: String,
    pub name_prefix: Option<String>,
    pub initials: Option<String>,
    pub given_names: Option<String>,
    pub birth_date: NaiveDate,
    pub gender: Gender,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Professional {
    pub id: String,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// One involvement of one professional with one child, as the source states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub subject: Subject,
    pub professional: Professional,
    /// The source's case reference: kept locally to route notices back, never sent.
    pub case_ref: String,
    pub start_date: NaiveDate,
    /// Already capped by the rules (see `Rules::capped_end`).
    pub end_date: NaiveDate,
    /// Whether `end_date` is the source's own date rather than a cap.
    pub end_from_source: bool,
    /// Set when the source says the involvement is over.
    pub ended: Option<WithdrawReason>,
}

/// A hash of a signal's content, to tell a correction from a re-send. It covers
/// what the index holds and the local case reference; the end date is compared
/// on its own (renewals move it). FNV-1a, 64 bits: stable across versions (it
/// is stored), cheap, and a collision (a correction missed) is a 2⁻⁶⁴ event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub u64);

impl Signal {
    pub fn content_hash(&self) -> ContentHash {
        let s = &self.subject;
        let p = &self.professional;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes.iter().chain(&[0x1f]) {
                // The unit separator after each field: ("ab","c") ≠ ("a","bc").
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        // Dates as their day numbers: no string to build on the hot path.
        let (start, birth) = (
            self.start_date.num_days_from_ce().to_le_bytes(),
            s.birth_date.num_days_from_ce().to_le_bytes(),
        );
        eat(&start);
        eat(&birth);
        for part in [
            s.bsn.as_str(),
            &s.family_name,
            s.name_prefix.as_deref().unwrap_or(""),
            s.initials.as_deref().unwrap_or(""),
            s.given_names.as_deref().unwrap_or(""),
            s.gender.as_str(),
            &p.id,
            &p.name,
            p.phone.as_deref().unwrap_or(""),
            p.email.as_deref().unwrap_or(""),
            &self.case_ref,
        ] {
            eat(part.as_bytes());
        }
        ContentHash(h)
    }
}
