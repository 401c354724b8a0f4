//! The `[[tests]]` inside a mapping file: example records and what they must
//! become, so that a mapping's author can pin its behaviour down.

use super::{Context, Mapping, Outcome, Target};
use crate::domain::Signal;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFailure {
    pub test: String,
    pub message: String,
}

/// A signal field as text, in the form `expect` is written in.
pub fn render(s: &Signal, t: Target) -> Option<String> {
    Some(match t {
        Target::Bsn => s.subject.bsn.as_str().to_string(),
        Target::FamilyName => s.subject.family_name.clone(),
        Target::NamePrefix => s.subject.name_prefix.clone()?,
        Target::Initials => s.subject.initials.clone()?,
        Target::GivenNames => s.subject.given_names.clone()?,
        Target::BirthDate => s.subject.birth_date.to_string(),
        Target::Gender => s.subject.gender.as_str().to_string(),
        Target::ProfessionalId => s.professional.id.clone(),
        Target::ProfessionalName => s.professional.name.to_string(),
        Target::ProfessionalPhone => s.professional.phone.as_deref()?.to_owned(),
        Target::ProfessionalEmail => s.professional.email.as_deref()?.to_owned(),
        Target::CaseRef => s.case_ref.clone(),
        Target::StartDate => s.start_date.to_string(),
        Target::EndDate => s.end_date.to_string(),
        Target::WithdrawReason => s.ended?.as_str().to_string(),
    })
}

/// Runs every test of `mapping`; returns the failures (empty: all passed).
pub fn run_tests(mapping: &Mapping, ctx: &Context<'_>) -> Vec<TestFailure> {
    let mut failures = Vec::new();
    for test in &mapping.tests {
        let fail = |message: String| TestFailure {
            test: test.name.clone(),
            message,
        };
        let mut values = vec![String::new(); mapping.reader.keys.len()];
        let mut unknown = Vec::new();
        for (k, v) in &test.input {
            match mapping.slot_of(k) {
                Some(slot) => values[slot] = v.clone(),
                None => unknown.push(k.as_str()),
            }
        }
        if !unknown.is_empty() {
            failures.push(fail(format!(
                "input names {}, which the mapping does not read",
                unknown.join(", ")
            )));
            continue;
        }
        let outcome = mapping.apply(&values, ctx);
        let describe = |o: &Outcome| match o {
            Outcome::Signal(_) => "a signal".to_string(),
            Outcome::Skipped => "skipped".to_string(),
            Outcome::Rejected(r) => format!(
                "rejected ({}, {}: {})",
                r.code.as_str(),
                r.field.map_or("-", |f| f.name()),
                r.message
            ),
        };
        if let Some((code, field)) = test.expect_rejection {
            match &outcome {
                Outcome::Rejected(r)
                    if r.code == code && field.is_none_or(|f| r.field == Some(f)) => {}
                other => failures.push(fail(format!(
                    "expected rejection {}{}, got {}",
                    code.as_str(),
                    field.map_or(String::new(), |f| format!(" on {}", f.name())),
                    describe(other)
                ))),
            }
        } else if test.expect_skipped {
            if outcome != Outcome::Skipped {
                failures.push(fail(format!(
                    "expected the record to be skipped, got {}",
                    describe(&outcome)
                )));
            }
        } else {
            match &outcome {
                Outcome::Signal(s) => {
                    for (t, want) in &test.expect {
                        let got = render(s, *t);
                        if got.as_deref() != Some(want.as_str()) {
                            failures.push(fail(format!(
                                "{}: expected \"{want}\", got {}",
                                t.name(),
                                got.map_or("nothing".to_string(), |g| format!("\"{g}\""))
                            )));
                        }
                    }
                }
                other => failures.push(fail(format!("expected a signal, got {}", describe(other)))),
            }
        }
    }
    failures
}
