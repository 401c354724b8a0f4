//! Mappings: how one source's records become signals. Loading (`load`) turns a
//! mapping file into a typed `Mapping`; applying (`apply`) is pure: one record
//! in, one outcome out (a signal, a rejection with its reason, or skipped).
//!
//! The targets are a closed set: a mapping can fill the fields of a signal and
//! nothing else, which is the data-minimisation guarantee.

mod api;
mod apply;
mod date;
mod load;
mod raw;
mod selftest;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::format::Item;

pub use apply::{Context, Outcome, OutcomeRef, Rejection};
pub use load::{load, MappingError};
pub use selftest::{run_tests, TestFailure};

use crate::source::ReaderSpec;

/// Every field a mapping may fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Bsn,
    FamilyName,
    NamePrefix,
    Initials,
    GivenNames,
    BirthDate,
    Gender,
    ProfessionalId,
    ProfessionalName,
    ProfessionalPhone,
    ProfessionalEmail,
    CaseRef,
    StartDate,
    EndDate,
    WithdrawReason,
}

impl Target {
    pub const ALL: [Target; 15] = [
        Target::Bsn,
        Target::FamilyName,
        Target::NamePrefix,
        Target::Initials,
        Target::GivenNames,
        Target::BirthDate,
        Target::Gender,
        Target::ProfessionalId,
        Target::ProfessionalName,
        Target::ProfessionalPhone,
        Target::ProfessionalEmail,
        Target::CaseRef,
        Target::StartDate,
        Target::EndDate,
        Target::WithdrawReason,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Bsn => "bsn",
            Target::FamilyName => "family_name",
            Target::NamePrefix => "name_prefix",
            Target::Initials => "initials",
            Target::GivenNames => "given_names",
            Target::BirthDate => "birth_date",
            Target::Gender => "gender",
            Target::ProfessionalId => "professional_id",
            Target::ProfessionalName => "professional_name",
            Target::ProfessionalPhone => "professional_phone",
            Target::ProfessionalEmail => "professional_email",
            Target::CaseRef => "case_ref",
            Target::StartDate => "start_date",
            Target::EndDate => "end_date",
            Target::WithdrawReason => "withdraw_reason",
        }
    }

    pub fn from_name(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Fields every mapping must fill, and that no record may lack: the index
    /// needs them, or notices could not find their way back to the case.
    pub fn is_essential(self) -> bool {
        matches!(
            self,
            Target::Bsn
                | Target::FamilyName
                | Target::BirthDate
                | Target::ProfessionalId
                | Target::CaseRef
                | Target::StartDate
        )
    }

    /// The field's own `_invalid` rejection code, where it has one.
    pub fn invalid_code(self) -> Option<Code> {
        Some(match self {
            Target::Bsn => Code::BsnInvalid,
            Target::BirthDate => Code::BirthDateInvalid,
            Target::StartDate => Code::StartDateInvalid,
            Target::EndDate => Code::EndDateInvalid,
            Target::Gender => Code::GenderInvalid,
            _ => return None,
        })
    }

    pub fn is_date(self) -> bool {
        matches!(
            self,
            Target::BirthDate | Target::StartDate | Target::EndDate
        )
    }
}

/// The rejection codes: a closed set, as the dry-run report documents them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    MissingField,
    BsnInvalid,
    BirthDateInvalid,
    BirthDateInFuture,
    SubjectTooOld,
    StartDateInvalid,
    EndDateInvalid,
    EndBeforeStart,
    GenderInvalid,
    ProfessionalUnknown,
    DuplicateRecord,
    Objection,
}

impl Code {
    pub const ALL: [Code; 12] = [
        Code::MissingField,
        Code::BsnInvalid,
        Code::BirthDateInvalid,
        Code::BirthDateInFuture,
        Code::SubjectTooOld,
        Code::StartDateInvalid,
        Code::EndDateInvalid,
        Code::EndBeforeStart,
        Code::GenderInvalid,
        Code::ProfessionalUnknown,
        Code::DuplicateRecord,
        Code::Objection,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::MissingField => "missing_field",
            Code::BsnInvalid => "bsn_invalid",
            Code::BirthDateInvalid => "birth_date_invalid",
            Code::BirthDateInFuture => "birth_date_in_future",
            Code::SubjectTooOld => "subject_too_old",
            Code::StartDateInvalid => "start_date_invalid",
            Code::EndDateInvalid => "end_date_invalid",
            Code::EndBeforeStart => "end_before_start",
            Code::GenderInvalid => "gender_invalid",
            Code::ProfessionalUnknown => "professional_unknown",
            Code::DuplicateRecord => "duplicate_record",
            Code::Objection => "objection",
        }
    }

    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each file lists all current involvements: what is missing has ended.
    Snapshot,
    /// Each file lists changes only.
    Delta,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Snapshot => "snapshot",
            Mode::Delta => "delta",
        }
    }
}

/// A date format, compiled once at load.
#[derive(Debug, Clone)]
pub struct DateFormat {
    pub pattern: String,
    items: Vec<Item<'static>>,
    /// The layout for the fast path, when the pattern is all numbers.
    fixed: Option<Vec<Piece>>,
    /// `date = "fhir"`: a FHIR date or dateTime (`load::fhir_date`).
    fhir: bool,
}

/// One byte position group of a fixed-width date pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Year,
    Month,
    Day,
    Lit(u8),
}

/// How one target field is filled.
#[derive(Debug, Clone)]
pub struct FieldRule {
    /// The reader slot of the source expression; `None` for a constant (`default` only).
    pub slot: Option<usize>,
    pub from: Option<String>,
    /// An absent value is allowed (the field stays empty).
    pub optional: bool,
    /// Date formats, tried in order (date fields only).
    pub formats: Vec<DateFormat>,
    /// Source value → target value.
    pub map: Option<HashMap<String, String>>,
    /// Used when the value is absent or not named by `map`.
    pub default: Option<String>,
}

/// Contact data of a professional, from the lookup table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub name: Option<Arc<str>>,
    pub phone: Option<Arc<str>>,
    pub email: Option<Arc<str>>,
}

/// A record is skipped when it fails an `only` condition or meets a `skip` one.
#[derive(Debug, Clone)]
pub struct Condition {
    pub slot: usize,
    pub from: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub only: Vec<Condition>,
    pub skip: Vec<Condition>,
}

/// A `[[tests]]` entry of a mapping file.
#[derive(Debug, Clone)]
pub struct MappingTest {
    pub name: String,
    pub input: Vec<(String, String)>,
    pub expect: Vec<(Target, String)>,
    pub expect_rejection: Option<(Code, Option<Target>)>,
    pub expect_skipped: bool,
}

/// A loaded, validated mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub path: PathBuf,
    pub name: String,
    pub mode: Mode,
    /// What the reader extracts: the only source keys that leave a record.
    pub reader: ReaderSpec,
    /// Indexed by `Target as usize`.
    fields: Vec<Option<FieldRule>>,
    professionals: Option<HashMap<String, Contact>>,
    filter: Filter,
    pub tests: Vec<MappingTest>,
}

impl Mapping {
    pub fn field(&self, t: Target) -> Option<&FieldRule> {
        self.fields[t as usize].as_ref()
    }

    /// The reader slot of a source expression, if the mapping reads it.
    pub fn slot_of(&self, expr: &str) -> Option<usize> {
        self.reader.keys.iter().position(|k| k.expr == expr)
    }

    pub fn kind_name(&self) -> &'static str {
        match self.reader.format {
            crate::source::Format::Csv { .. } => "csv",
            crate::source::Format::Xml { .. } => "xml",
            crate::source::Format::Api(ref a) if a.is_fhir() => "fhir",
            crate::source::Format::Api(_) => "http-json",
        }
    }

    /// How the source is polled, if it is an API source.
    pub fn api(&self) -> Option<&std::sync::Arc<crate::source::api::ApiSpec>> {
        match &self.reader.format {
            crate::source::Format::Api(a) => Some(a),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
