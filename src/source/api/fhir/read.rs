//! A Bundle read where it was fetched: parsed into a tape, each matched
//! episode's own keys and each included patient's taken into slots, the
//! care managers copied out, the tape dropped. Only this crosses to the
//! reader.

use super::eval::Resources;
use super::slots::{Packed, Slots};
use super::{next, normalise_into, outcome_text, reference_of, shown_id, FhirKeys};
use crate::source::api::tape::{Items, Node, Tape};
use crate::source::api::transport::PageError;

/// One Bundle, read.
pub struct FhirPage {
    pub next: Option<String>,
    pub(super) patients: Vec<(String, Packed)>,
    pub(super) managers: Vec<(String, Tape<'static>)>,
    /// Every matched episode, `EPISODE_SLOTS` and then its own keys' values.
    pub(super) episodes: Slots,
}

/// An episode's first slots: its id as a location shows it, and its
/// patient's and care manager's references (`Type/id`, empty when none).
pub const ID: usize = 0;
pub const PATIENT: usize = 1;
pub const MANAGER: usize = 2;
pub const EPISODE_SLOTS: usize = 3;

/// Parses and reads one page's body (page number `page`).
pub fn read(body: &[u8], page: u64, keys: &FhirKeys) -> Result<FhirPage, PageError> {
    let tape = Tape::parse(body).map_err(|e| crate::source::api::json::malformed(&e, page))?;
    let bundle = tape.root();
    let entries = entries(bundle, page)?;
    let mut out = FhirPage {
        next: next(bundle),
        patients: Vec::new(),
        managers: Vec::new(),
        episodes: Slots::default(),
    };
    let mut patient = Slots::default();
    for e in entries.into_iter().flatten() {
        let Some(r) = e.get("resource") else { continue };
        let included = e.pointer("/search/mode").and_then(|m| m.as_str()) == Some("include");
        match r.str_at("resourceType") {
            Some("EpisodeOfCare") if !included => episode(r, keys, &mut out.episodes),
            Some("Patient") => {
                let res = Resources {
                    patient: Some(r),
                    ..Resources::default()
                };
                patient.clear();
                for &i in &keys.patient {
                    patient.push_with(|t| keys.eval_into(i, &res, t));
                }
                out.patients.push((reference_of(&r), patient.packed()));
            }
            Some("Practitioner" | "PractitionerRole") => {
                out.managers.push((reference_of(&r), r.to_tape()));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The Bundle's entries, or why the page is not a Bundle of results.
fn entries<'t, 'a>(bundle: Node<'t, 'a>, page: u64) -> Result<Option<Items<'t, 'a>>, PageError> {
    let malformed = |message: String| PageError::Malformed { page, message };
    match bundle.str_at("resourceType") {
        Some("Bundle") => {}
        Some("OperationOutcome") => {
            return Err(malformed(format!(
                "an OperationOutcome instead of a Bundle: {}",
                outcome_text(&bundle)
            )))
        }
        _ => return Err(malformed("is not a FHIR Bundle (resourceType)".into())),
    }
    match bundle.get("entry").map(|e| (e, e.items())) {
        Some((_, Some(items))) => Ok(Some(items)),
        None if bundle.get("total").and_then(|t| t.as_u64()).unwrap_or(0) == 0 => Ok(None),
        _ => Err(malformed(
            "has no entry list, yet says it has results".into(),
        )),
    }
}

/// An episode's slots onto the page's.
fn episode(r: Node<'_, '_>, keys: &FhirKeys, out: &mut Slots) {
    out.push(shown_id(r.str_at("id").unwrap_or("?")));
    for path in ["/patient/reference", "/careManager/reference"] {
        out.push_with(|t| {
            if let Some(reference) = r.pointer(path).and_then(|n| n.as_str()) {
                normalise_into(reference, t);
            }
        });
    }
    let res = Resources {
        episode: Some(r),
        ..Resources::default()
    };
    for &i in &keys.episode {
        out.push_with(|t| keys.eval_into(i, &res, t));
    }
}
