//! FHIR R4 searchset Bundles of EpisodeOfCare with their included Patient
//! and care manager (Practitioner or PractitionerRole). One record is one
//! episode; its keys are paths or computed keys (`eval.rs`).
//!
//! A page is read in two steps. `read` runs where the page was fetched (a
//! runtime thread, while the reader maps the page before): it parses the
//! bytes into a borrowed tree, reads each episode's own keys and each
//! included patient's, and keeps the care managers, dropping the page. The
//! reader then `take`s it: includes into the poll's cache, the episodes'
//! patient and manager keys from that cache, records out in page order.

mod eval;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use self::eval::{eval, parse_path, Resources, Step};
use super::tape::{Items, Node, Tape};
use super::transport::PageError;
use crate::source::{Key, Location, RawRecord, MAX_VALUE_BYTES};

pub use self::eval::is_valid_key;

/// The episode's last change: the delta bookmark.
pub const LAST_UPDATED: &str = "episode.meta.lastUpdated";

/// Computed keys of the default fields (api-sources.md); see `mapping::api`.
pub const FAMILY: &str = "patient.name:family";
pub const PREFIX: &str = "patient.name:prefix";
pub const INITIALS: &str = "patient.name:initials";
pub const GIVEN: &str = "patient.name:given";
pub const MANAGER_ID: &str = "manager:id";
pub const MANAGER_NAME: &str = "manager:name";
pub const MANAGER_PHONE: &str = "manager:phone";
pub const MANAGER_EMAIL: &str = "manager:email";
pub const EPISODE_REF: &str = "episode:reference";
pub const STATUS: &str = "episode.status";

/// Which resource a key is read from: the episode's own keys are read
/// with its page; patient and manager keys when the record is made, since
/// the include may have come on an earlier page.
#[derive(Clone, Copy, PartialEq)]
enum Origin {
    Episode,
    /// The n-th of the patient's kept values.
    Patient(usize),
    Manager,
}

/// A poll's keys, worked out once: their paths parsed, each one's source.
pub struct FhirKeys {
    keys: Vec<Key>,
    /// `None`: a computed key.
    steps: Vec<Option<Vec<Step>>>,
    from: Vec<Origin>,
    /// The patient keys' slots, in the order a patient's values are kept.
    patient: Vec<usize>,
}

impl FhirKeys {
    pub fn new(keys: &[Key]) -> Arc<FhirKeys> {
        let mut patient = Vec::new();
        let from = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                if k.expr.starts_with("patient") {
                    patient.push(i);
                    Origin::Patient(patient.len() - 1)
                } else if k.expr.starts_with("manager") || k.expr.starts_with("practitioner") {
                    Origin::Manager
                } else {
                    Origin::Episode
                }
            })
            .collect();
        Arc::new(FhirKeys {
            keys: keys.to_vec(),
            steps: keys.iter().map(|k| parse_path(&k.expr)).collect(),
            from,
            patient,
        })
    }

    fn eval(&self, i: usize, r: &Resources<'_, '_>) -> String {
        eval(&self.keys[i].expr, self.steps[i].as_deref(), r)
    }
}

/// One Bundle, read: what is left of it once its tree is dropped.
pub struct FhirPage {
    pub next: Option<String>,
    patients: Vec<(String, Packed)>,
    managers: Vec<(String, Tape<'static>)>,
    episodes: Vec<Episode>,
}

/// A matched episode: its own keys' values (the others empty until
/// `take`), and the references its patient and manager are found by.
struct Episode {
    resource: String,
    patient: Option<String>,
    manager: Option<String>,
    values: Vec<String>,
}

/// Parses and reads one page's body (page number `page`).
pub fn read(body: &[u8], page: u64, keys: &FhirKeys) -> Result<FhirPage, PageError> {
    let tape = Tape::parse(body).map_err(|e| super::json::malformed(&e, page))?;
    let bundle = tape.root();
    let entries = entries(bundle, page)?;
    let mut out = FhirPage {
        next: next(bundle),
        patients: Vec::new(),
        managers: Vec::new(),
        episodes: Vec::new(),
    };
    for e in entries.into_iter().flatten() {
        let Some(r) = e.get("resource") else { continue };
        let included = e.pointer("/search/mode").and_then(|m| m.as_str()) == Some("include");
        match r.str_at("resourceType") {
            Some("EpisodeOfCare") if !included => out.episodes.push(episode(r, keys)),
            Some("Patient") => {
                let res = Resources {
                    patient: Some(r),
                    ..Resources::default()
                };
                let values: Vec<String> =
                    keys.patient.iter().map(|&i| keys.eval(i, &res)).collect();
                out.patients.push((reference_of(&r), Packed::new(&values)));
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
    match bundle.get("entry") {
        Some(e) if e.items().is_some() => Ok(e.items()),
        None if bundle.get("total").and_then(|t| t.as_u64()).unwrap_or(0) == 0 => Ok(None),
        _ => Err(malformed(
            "has no entry list, yet says it has results".into(),
        )),
    }
}

fn episode(r: Node<'_, '_>, keys: &FhirKeys) -> Episode {
    let res = Resources {
        episode: Some(r),
        ..Resources::default()
    };
    let values = (0..keys.keys.len())
        .map(|i| match keys.from[i] {
            Origin::Episode => keys.eval(i, &res),
            Origin::Patient(_) | Origin::Manager => String::new(),
        })
        .collect();
    let reference = |path: &str| r.pointer(path).and_then(|n| n.as_str()).map(normalise);
    Episode {
        resource: format!("EpisodeOfCare/{}", shown_id(r.str_at("id").unwrap_or("?"))),
        patient: reference("/patient/reference"),
        manager: reference("/careManager/reference"),
        values,
    }
}

/// Included resources kept across the pages of one poll: an episode may
/// name a patient or care manager that came on an earlier page. Patients
/// are kept as their keys' values only (never whole); care managers, few,
/// as resources.
pub struct FhirRecords {
    keys: Arc<FhirKeys>,
    patients: HashMap<String, Packed>,
    managers: HashMap<String, Tape<'static>>,
}

impl FhirRecords {
    pub fn new(keys: Arc<FhirKeys>) -> FhirRecords {
        FhirRecords {
            keys,
            patients: HashMap::new(),
            managers: HashMap::new(),
        }
    }

    /// A read page's episodes as records, numbered on from `before`.
    pub fn take(
        &mut self,
        read: FhirPage,
        page: u64,
        before: u64,
        out: &mut VecDeque<RawRecord>,
    ) -> Result<(), PageError> {
        self.patients.extend(read.patients);
        self.managers.extend(read.managers);
        for (i, episode) in read.episodes.into_iter().enumerate() {
            let number = before + i as u64 + 1;
            out.push_back(self.record(episode, number, page)?);
        }
        Ok(())
    }

    fn record(&self, episode: Episode, number: u64, page: u64) -> Result<RawRecord, PageError> {
        let keys = &self.keys;
        let patient = episode.patient.and_then(|r| self.patients.get(&r));
        let manager = episode
            .manager
            .and_then(|r| self.managers.get(&r))
            .map(Tape::root);
        let practitioner = match manager {
            Some(m) if m.str_at("resourceType") == Some("PractitionerRole") => m
                .pointer("/practitioner/reference")
                .and_then(|n| n.as_str())
                .and_then(|r| self.managers.get(&normalise(r)))
                .map(Tape::root),
            other => other,
        };
        let res = Resources {
            manager,
            practitioner,
            ..Resources::default()
        };
        let mut values = episode.values;
        for (i, v) in values.iter_mut().enumerate() {
            match keys.from[i] {
                Origin::Episode => {}
                Origin::Patient(n) => {
                    *v = patient.map(|p| p.get(n).to_string()).unwrap_or_default()
                }
                Origin::Manager => *v = keys.eval(i, &res),
            }
            if v.len() > MAX_VALUE_BYTES {
                return Err(PageError::Malformed {
                    page,
                    message: format!(
                        "record {number} has a value of more than {MAX_VALUE_BYTES} bytes for \"{}\"",
                        keys.keys[i].expr
                    ),
                });
            }
        }
        Ok(RawRecord {
            location: Some(Location::Record(number)),
            resource: Some(episode.resource),
            values,
        })
    }
}

/// A patient's values for the patient keys, in one allocation (plus their
/// ends): what stays of an included patient for the rest of the poll.
struct Packed {
    text: Box<str>,
    ends: Box<[u32]>,
}

impl Packed {
    fn new(values: &[String]) -> Packed {
        let mut text = String::with_capacity(values.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(values.len());
        for v in values {
            text.push_str(v);
            ends.push(text.len() as u32);
        }
        Packed {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
}

/// An id as a location may show it: FHIR ids are `[A-Za-z0-9-.]{1,64}`;
/// anything else is not quoted.
fn shown_id(id: &str) -> &str {
    if !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        id
    } else {
        "(an id that is not a FHIR id)"
    }
}

/// `Type/id` of a resource.
fn reference_of(r: &Node<'_, '_>) -> String {
    format!(
        "{}/{}",
        r.str_at("resourceType").unwrap_or(""),
        r.str_at("id").unwrap_or("")
    )
}

/// A reference, relative (`Patient/1`) or absolute (a full URL, with or
/// without `_history`), as `Type/id`.
fn normalise(reference: &str) -> String {
    // The last four parts, from the end: `Type/id/_history/v` or `Type/id`.
    let mut parts = reference.trim_end_matches('/').rsplit('/');
    let last: [Option<&str>; 4] = std::array::from_fn(|_| parts.next());
    match last {
        [_, Some("_history"), Some(id), Some(t)] => format!("{t}/{id}"),
        [Some(id), Some(t), ..] => format!("{t}/{id}"),
        _ => reference.to_string(),
    }
}

/// The next page: `Bundle.link` with `relation = "next"`.
fn next(bundle: Node<'_, '_>) -> Option<String> {
    bundle
        .get("link")?
        .items()?
        .find(|l| l.str_at("relation") == Some("next"))?
        .str_at("url")
        .map(str::to_string)
}

/// An OperationOutcome's diagnostics, if `body` is one.
pub fn outcome(body: &[u8]) -> Option<String> {
    let tape = Tape::parse(body).ok()?;
    let v = tape.root();
    (v.str_at("resourceType") == Some("OperationOutcome")).then(|| outcome_text(&v))
}

/// The issues' diagnostics (or details), short, with any long number
/// masked: a server should never put personal data there, and if it does,
/// a BSN does not reach a log.
fn outcome_text(v: &Node<'_, '_>) -> String {
    let texts: Vec<String> = v
        .get("issue")
        .and_then(|i| i.items())
        .map(|issues| {
            issues
                .filter_map(|i| {
                    i.get("diagnostics")
                        .or_else(|| i.pointer("/details/text"))
                        .and_then(|t| t.as_str())
                })
                .map(|t| t.chars().take(200).collect())
                .collect()
        })
        .unwrap_or_default();
    if texts.is_empty() {
        "(no diagnostics)".into()
    } else {
        crate::redact::foreign(&texts.join("; "))
    }
}

#[cfg(test)]
pub(super) fn eval_for_test(expr: &str, episode: &str, patient: &str) -> String {
    let (episode, patient) = (
        Tape::parse(episode.as_bytes()).unwrap(),
        Tape::parse(patient.as_bytes()).unwrap(),
    );
    let r = Resources {
        episode: Some(episode.root()),
        patient: Some(patient.root()),
        ..Resources::default()
    };
    eval(expr, parse_path(expr).as_deref(), &r)
}
