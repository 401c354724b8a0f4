//! The signal: identity and contact data, and nothing else. This type is the
//! data-minimisation guarantee: a mapping can only fill these fields, and only
//! these fields ever leave a source.

use super::{Bsn, ContentHash};
use chrono::NaiveDate;
use std::sync::Arc;

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
    /// Shared, not copied, where a signal is cloned (pass 2's payloads).
    pub name: Arc<str>,
    pub phone: Option<Arc<str>>,
    pub email: Option<Arc<str>>,
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

impl Signal {
    /// The signal as a view: what the content hash is computed on.
    pub fn as_ref(&self) -> SignalRef<'_> {
        let (s, p) = (&self.subject, &self.professional);
        SignalRef {
            subject: SubjectRef {
                bsn: s.bsn,
                family_name: &s.family_name,
                name_prefix: s.name_prefix.as_deref(),
                initials: s.initials.as_deref(),
                given_names: s.given_names.as_deref(),
                birth_date: s.birth_date,
                gender: s.gender,
            },
            professional: ProfessionalRef {
                id: &p.id,
                name: &p.name,
                phone: p.phone.as_deref(),
                email: p.email.as_deref(),
            },
            case_ref: &self.case_ref,
            start_date: self.start_date,
            end_date: self.end_date,
            end_from_source: self.end_from_source,
            ended: self.ended,
        }
    }

    pub fn content_hash(&self) -> ContentHash {
        self.as_ref().content_hash()
    }
}

/// A `Subject` borrowed from the record it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectRef<'a> {
    pub bsn: Bsn,
    pub family_name: &'a str,
    pub name_prefix: Option<&'a str>,
    pub initials: Option<&'a str>,
    pub given_names: Option<&'a str>,
    pub birth_date: NaiveDate,
    pub gender: Gender,
}

/// A `Professional` borrowed from the record or the professionals table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfessionalRef<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
}

/// A `Signal` borrowed from the record it was read from. Planning needs only
/// its key, dates and content hash, so the dry run and pass 1 never make the
/// owned `Signal` (an allocation per field per row, most of a big file's
/// cost); pass 2 makes it for the signals it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalRef<'a> {
    pub subject: SubjectRef<'a>,
    pub professional: ProfessionalRef<'a>,
    pub case_ref: &'a str,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub end_from_source: bool,
    pub ended: Option<WithdrawReason>,
}

impl SignalRef<'_> {
    pub fn to_signal(&self) -> Signal {
        let (s, p) = (&self.subject, &self.professional);
        let owned = |v: Option<&str>| v.map(String::from);
        Signal {
            subject: Subject {
                bsn: s.bsn,
                family_name: s.family_name.into(),
                name_prefix: owned(s.name_prefix),
                initials: owned(s.initials),
                given_names: owned(s.given_names),
                birth_date: s.birth_date,
                gender: s.gender,
            },
            professional: Professional {
                id: p.id.into(),
                name: p.name.into(),
                phone: p.phone.map(Arc::from),
                email: p.email.map(Arc::from),
            },
            case_ref: self.case_ref.into(),
            start_date: self.start_date,
            end_date: self.end_date,
            end_from_source: self.end_from_source,
            ended: self.ended,
        }
    }
}
