//! Applying a mapping to one record: pure, total, and one outcome per record.
//! Checks run in a fixed order and the first failure is the record's reason.

use chrono::NaiveDate;

use super::{Code, Mapping, Target};
use crate::domain::{
    Bsn, Gender, ProfessionalRef, Rules, Signal, SignalRef, SubjectRef, WithdrawReason,
};

/// What applying needs from outside the record.
pub struct Context<'a> {
    /// Today in Europe/Amsterdam, from the one clock.
    pub today: NaiveDate,
    pub rules: Rules,
    /// Whether a child is on the objection list.
    pub objected: &'a (dyn Fn(&Bsn) -> bool + Sync),
    /// Show BSNs in clear in messages (`check --reveal`); masked otherwise.
    pub reveal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: Code,
    pub field: Option<Target>,
    /// Says what is wrong; a BSN in it is masked unless revealed on purpose.
    pub message: String,
    /// The involvement a rejected record still names (a valid BSN and a
    /// professional): its signal must not be withdrawn for bad data elsewhere.
    pub involvement: Option<(Bsn, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Signal(Box<Signal>),
    Rejected(Rejection),
    /// Filtered out: the record carries no decision to register.
    Skipped,
}

/// An `Outcome` whose signal borrows from the record and the mapping: what
/// the hot path plans with, without an allocation per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeRef<'r> {
    Signal(SignalRef<'r>),
    Rejected(Rejection),
    Skipped,
}

impl OutcomeRef<'_> {
    pub fn into_owned(self) -> Outcome {
        match self {
            OutcomeRef::Signal(s) => Outcome::Signal(Box::new(s.to_signal())),
            OutcomeRef::Rejected(r) => Outcome::Rejected(r),
            OutcomeRef::Skipped => Outcome::Skipped,
        }
    }
}

/// A record's values, and whether messages may quote them (`check --reveal`).
#[derive(Clone, Copy)]
struct Input<'a> {
    values: &'a [String],
    reveal: bool,
}

fn reject(code: Code, field: Target, message: impl Into<String>) -> Rejection {
    Rejection {
        code,
        field: Some(field),
        message: message.into(),
        involvement: None,
    }
}

/// `str::trim`, with the common case first: a value that starts and ends
/// with a visible ASCII character has nothing to trim (Unicode's whitespace
/// is never ASCII-graphic), and `trim`'s Unicode test was a few percent of
/// a big file's time.
fn trim(v: &str) -> &str {
    let b = v.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) if f.is_ascii_graphic() && l.is_ascii_graphic() => v,
        _ => v.trim(),
    }
}

impl Mapping {
    /// The value of a target: trimmed, mapped, defaulted; `None` when absent.
    /// Borrowed from the record or the mapping, never copied.
    fn value<'r>(&'r self, t: Target, input: Input<'r>) -> Result<Option<&'r str>, Rejection> {
        let Some(rule) = self.field(t) else {
            return Ok(None);
        };
        let raw = rule
            .slot
            .and_then(|s| input.values.get(s))
            .map(|v| trim(v))
            .filter(|v| !v.is_empty());
        if raw == Some(crate::source::api::STRUCTURED) {
            // An API record whose pointer reaches an object or a list: not
            // a value to read as text.
            let from = rule.from.as_deref().unwrap_or("");
            return Err(reject(
                t.invalid_code().unwrap_or(Code::MissingField),
                t,
                format!(
                    "\"{from}\" is an object or a list, not a value: point at the value inside it"
                ),
            ));
        }
        let mapped: Option<&'r str> = match (raw, &rule.map) {
            (Some(v), Some(map)) => match map.get(v) {
                Some(m) => Some(m.as_str()),
                None if rule.default.is_some() => rule.default.as_deref(),
                None if t == Target::Gender => {
                    return Err(reject(
                        Code::GenderInvalid,
                        t,
                        format!(
                            "{} is not in the mapping's gender map and there is no default",
                            crate::redact::value(v, input.reveal)
                        ),
                    ));
                }
                // An unnamed withdraw reason is no withdrawal (see docs/mapping.md).
                None if t == Target::WithdrawReason => None,
                None => Some(v),
            },
            (Some(v), None) => Some(v),
            (None, _) => rule.default.as_deref(),
        };
        if mapped.is_none()
            && !rule.optional
            && rule.default.is_none()
            && t != Target::WithdrawReason
        {
            let from = rule.from.as_deref().unwrap_or("");
            return Err(reject(
                Code::MissingField,
                t,
                format!("\"{from}\" is empty or absent"),
            ));
        }
        Ok(mapped)
    }

    fn required<'r>(&'r self, t: Target, values: Input<'r>) -> Result<&'r str, Rejection> {
        self.value(t, values)?
            .ok_or_else(|| reject(Code::MissingField, t, "is empty or absent"))
    }

    fn date(
        &self,
        t: Target,
        code: Code,
        values: Input<'_>,
    ) -> Result<Option<NaiveDate>, Rejection> {
        let Some(v) = self.value(t, values)? else {
            return Ok(None);
        };
        let rule = self.field(t).expect("a value implies a rule");
        rule.formats
            .iter()
            .find_map(|f| f.parse(v))
            .map(Some)
            .ok_or_else(|| {
                let formats: Vec<&str> = rule
                    .formats
                    .iter()
                    .map(|f| match f.pattern.as_str() {
                        "fhir" => "FHIR date (YYYY-MM-DD, not partial) or dateTime",
                        p => p,
                    })
                    .collect();
                reject(
                    code,
                    t,
                    format!(
                        "{} is not a date in the format {}",
                        crate::redact::value(v, values.reveal),
                        formats.join(" or ")
                    ),
                )
            })
    }

    fn skipped(&self, values: &[String]) -> bool {
        let val = |slot: usize| values.get(slot).map_or("", |v| trim(v));
        self.filter
            .only
            .iter()
            .any(|c| !c.values.iter().any(|v| v == val(c.slot)))
            || self
                .filter
                .skip
                .iter()
                .any(|c| c.values.iter().any(|v| v == val(c.slot)))
    }

    /// Maps and validates one record.
    pub fn apply(&self, values: &[String], ctx: &Context<'_>) -> Outcome {
        self.apply_ref(values, ctx).into_owned()
    }

    /// `apply` with the signal borrowed from `values` and the mapping.
    pub fn apply_ref<'r>(&'r self, values: &'r [String], ctx: &Context<'_>) -> OutcomeRef<'r> {
        if self.skipped(values) {
            return OutcomeRef::Skipped;
        }
        // The involvement is worked out first, so that a rejection for any
        // later field still tells the planner that this involvement exists.
        let mut involvement = None;
        let result = self.signal(values, ctx, &mut involvement);
        match result {
            Ok(s) => OutcomeRef::Signal(s),
            Err(mut r) => {
                r.involvement = involvement.map(|(bsn, id)| (bsn, id.to_owned()));
                OutcomeRef::Rejected(r)
            }
        }
    }

    /// One record into a signal, step by step in the order the checks must
    /// run: a record's first problem is the one it is rejected for.
    fn signal<'r>(
        &'r self,
        values: &'r [String],
        ctx: &Context<'_>,
        involvement: &mut Option<(Bsn, &'r str)>,
    ) -> Result<SignalRef<'r>, Rejection> {
        let values = Input {
            values,
            reveal: ctx.reveal,
        };
        let (bsn, professional_id) = self.involvement(values, ctx)?;
        // Named before anything else can fail: a rejected record that still
        // names its involvement keeps its signal (invariant 6).
        *involvement = Some((bsn, professional_id));
        let subject = self.subject(bsn, values)?;
        let case_ref = self.required(Target::CaseRef, values)?;
        let (start_date, mapped_end) = self.period(subject.birth_date, values, ctx)?;
        let professional = self.professional(professional_id, values)?;
        if (ctx.objected)(&subject.bsn) {
            return Err(reject(
                Code::Objection,
                Target::Bsn,
                format!(
                    "{} is on the objection list: it is never registered",
                    crate::redact::identifier(subject.bsn.as_str(), ctx.reveal)
                ),
            ));
        }
        let reason = self
            .value(Target::WithdrawReason, values)?
            .and_then(WithdrawReason::parse_from_source);
        let ended = match (reason, mapped_end) {
            (Some(r), _) => Some(r),
            (None, Some(end)) if end <= ctx.today => Some(WithdrawReason::RiskEnded),
            _ => None,
        };
        // The end the rules allow; the source's own end, when earlier, is kept.
        let cap = ctx.rules.capped_end(start_date, None, subject.birth_date);
        Ok(SignalRef {
            subject,
            professional,
            case_ref,
            start_date,
            end_date: mapped_end.map_or(cap, |m| m.min(cap)),
            end_from_source: mapped_end.is_some_and(|m| m <= cap),
            ended,
        })
    }

    /// The involvement's identity, the child's BSN and the professional's id:
    /// first, because planning needs it even when the rest is rejected.
    fn involvement<'r>(
        &'r self,
        values: Input<'r>,
        ctx: &Context<'_>,
    ) -> Result<(Bsn, &'r str), Rejection> {
        let raw_bsn = self.required(Target::Bsn, values)?;
        let bsn = Bsn::parse(raw_bsn).map_err(|e| {
            reject(
                Code::BsnInvalid,
                Target::Bsn,
                format!("{} {e}", crate::redact::identifier(raw_bsn, ctx.reveal)),
            )
        })?;
        let professional_id = self.required(Target::ProfessionalId, values)?;
        Ok((bsn, professional_id))
    }

    /// The child: names, birth date and gender (mapped to the closed set).
    fn subject<'r>(&'r self, bsn: Bsn, values: Input<'r>) -> Result<SubjectRef<'r>, Rejection> {
        let family_name = self.required(Target::FamilyName, values)?;
        let name_prefix = self.value(Target::NamePrefix, values)?;
        let initials = self.value(Target::Initials, values)?;
        let given_names = self.value(Target::GivenNames, values)?;
        let birth_date = self
            .date(Target::BirthDate, Code::BirthDateInvalid, values)?
            .ok_or_else(|| reject(Code::MissingField, Target::BirthDate, "is empty or absent"))?;
        let gender_text = self.value(Target::Gender, values)?.ok_or_else(|| {
            reject(
                Code::MissingField,
                Target::Gender,
                "is empty or absent and there is no default",
            )
        })?;
        let gender = Gender::parse(gender_text).ok_or_else(|| {
            reject(
                Code::GenderInvalid,
                Target::Gender,
                format!(
                    "{} is not male, female, other or unknown; add a `map` to the mapping",
                    crate::redact::value(gender_text, values.reveal)
                ),
            )
        })?;
        Ok(SubjectRef {
            bsn,
            family_name,
            name_prefix,
            initials,
            given_names,
            birth_date,
            gender,
        })
    }

    /// The involvement's start and mapped end, checked against each other
    /// and against the child's age on the start date.
    fn period(
        &self,
        birth_date: NaiveDate,
        values: Input<'_>,
        ctx: &Context<'_>,
    ) -> Result<(NaiveDate, Option<NaiveDate>), Rejection> {
        let start_date = self
            .date(Target::StartDate, Code::StartDateInvalid, values)?
            .ok_or_else(|| reject(Code::MissingField, Target::StartDate, "is empty or absent"))?;
        let mapped_end = self.date(Target::EndDate, Code::EndDateInvalid, values)?;
        if birth_date > start_date {
            return Err(reject(
                Code::BirthDateInFuture,
                Target::BirthDate,
                "the birth date is after the start date",
            ));
        }
        if ctx.rules.too_old_on(birth_date, start_date) {
            return Err(reject(
                Code::SubjectTooOld,
                Target::BirthDate,
                format!(
                    "the child is {} or older on the start date",
                    ctx.rules.age_limit
                ),
            ));
        }
        if mapped_end.is_some_and(|end| end < start_date) {
            return Err(reject(
                Code::EndBeforeStart,
                Target::EndDate,
                "the end date is before the start date",
            ));
        }
        Ok((start_date, mapped_end))
    }

    /// The professional's contact: the record's own values first, then the
    /// professionals table's (borrowed, not copied); a name and a way to
    /// reach them are required, since the index puts colleagues in touch.
    fn professional<'r>(
        &'r self,
        id: &'r str,
        values: Input<'r>,
    ) -> Result<ProfessionalRef<'r>, Rejection> {
        let looked_up = self.professionals.as_ref().and_then(|t| t.get(id));
        let contact_field = |t: Target, table: fn(&'r super::Contact) -> Option<&'r str>| {
            Ok::<_, Rejection>(self.value(t, values)?.or_else(|| looked_up.and_then(table)))
        };
        let name = contact_field(Target::ProfessionalName, |c| c.name.as_deref())?;
        let phone = contact_field(Target::ProfessionalPhone, |c| c.phone.as_deref())?;
        let email = contact_field(Target::ProfessionalEmail, |c| c.email.as_deref())?;
        let Some(name) = name else {
            return Err(reject(
                Code::ProfessionalUnknown,
                Target::ProfessionalId,
                format!(
                    "no name for professional {}: add them to the professionals file or map professional_name (check --reveal shows the id)",
                    crate::redact::value(id, values.reveal)
                ),
            ));
        };
        if phone.is_none() && email.is_none() {
            return Err(reject(
                Code::ProfessionalUnknown,
                Target::ProfessionalId,
                format!(
                    "no phone or e-mail for professional {}: the index needs one to put colleagues in touch (check --reveal shows the id)",
                    crate::redact::value(id, values.reveal)
                ),
            ));
        }
        Ok(ProfessionalRef {
            id,
            name,
            phone,
            email,
        })
    }
}
