//! FHIR R4 searchset Bundles of EpisodeOfCare with their included Patient
//! and care manager (Practitioner or PractitionerRole). One record is one
//! episode; its keys are paths (`patient.birthDate`,
//! `patient.identifier[system=URI].value`) or the computed keys below that
//! the default fields use (Dutch name parts, the professional's id).

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::json::STRUCTURED;
use super::transport::PageError;
use crate::source::{Key, Location, RawRecord, MAX_VALUE_BYTES};

/// The episode's last change: the delta bookmark.
pub const LAST_UPDATED: &str = "episode.meta.lastUpdated";

const OWN_NAME: &str = "http://hl7.org/fhir/StructureDefinition/humanname-own-name";
const OWN_PREFIX: &str = "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix";
const QUALIFIER: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier";
const AGB: &str = "http://fhir.nl/fhir/NamingSystem/agb-z";

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

/// Included resources kept across the pages of one poll: an episode may
/// name a patient or care manager that came on an earlier page. Patients
/// are kept as their keys' values only (never whole); care managers, few,
/// as resources.
#[derive(Default)]
pub struct FhirRecords {
    patients: HashMap<String, Packed>,
    managers: HashMap<String, Value>,
    /// The keys' paths, parsed once per poll (`None`: a computed key).
    compiled: Option<Vec<Option<Vec<Step>>>>,
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

impl FhirRecords {
    /// One Bundle's episodes as records, numbered on from `before`.
    pub fn page(
        &mut self,
        bundle: &Value,
        page: u64,
        keys: &[Key],
        before: u64,
        out: &mut VecDeque<RawRecord>,
    ) -> Result<(), PageError> {
        let malformed = |message: String| PageError::Malformed { page, message };
        match bundle.get("resourceType").and_then(Value::as_str) {
            Some("Bundle") => {}
            Some("OperationOutcome") => {
                return Err(malformed(format!(
                    "an OperationOutcome instead of a Bundle: {}",
                    outcome_text(bundle)
                )))
            }
            _ => return Err(malformed("is not a FHIR Bundle (resourceType)".into())),
        }
        let entries = match bundle.get("entry") {
            Some(Value::Array(e)) => e.as_slice(),
            None if bundle.get("total").and_then(Value::as_u64).unwrap_or(0) == 0 => &[],
            _ => {
                return Err(malformed(
                    "has no entry list, yet says it has results".into(),
                ))
            }
        };
        if self.compiled.is_none() {
            self.compiled = Some(keys.iter().map(|k| parse_path(&k.expr)).collect());
        }
        let compiled = self.compiled.take().unwrap_or_default();
        let result = self.take_page(entries, page, keys, &compiled, before, out);
        self.compiled = Some(compiled);
        result
    }

    fn take_page(
        &mut self,
        entries: &[Value],
        page: u64,
        keys: &[Key],
        compiled: &[Option<Vec<Step>>],
        before: u64,
        out: &mut VecDeque<RawRecord>,
    ) -> Result<(), PageError> {
        let patient_keys: Vec<usize> = (0..keys.len())
            .filter(|&i| keys[i].expr.starts_with("patient"))
            .collect();
        let mut episodes = Vec::new();
        for e in entries {
            let Some(r) = e.get("resource") else { continue };
            let included = e.pointer("/search/mode").and_then(Value::as_str) == Some("include");
            match r.get("resourceType").and_then(Value::as_str) {
                Some("EpisodeOfCare") if !included => episodes.push(r),
                Some("Patient") => {
                    let values: Vec<String> = patient_keys
                        .iter()
                        .map(|&i| {
                            eval(
                                &keys[i].expr,
                                compiled[i].as_deref(),
                                &Resources::patient(r),
                            )
                        })
                        .collect();
                    self.patients.insert(reference_of(r), Packed::new(&values));
                }
                Some("Practitioner" | "PractitionerRole") => {
                    self.managers.insert(reference_of(r), r.clone());
                }
                _ => {}
            }
        }
        for (i, episode) in episodes.into_iter().enumerate() {
            let number = before + i as u64 + 1;
            out.push_back(self.record(episode, keys, compiled, &patient_keys, number, page)?);
        }
        Ok(())
    }

    fn record(
        &self,
        episode: &Value,
        keys: &[Key],
        compiled: &[Option<Vec<Step>>],
        patient_keys: &[usize],
        number: u64,
        page: u64,
    ) -> Result<RawRecord, PageError> {
        let patient = episode
            .pointer("/patient/reference")
            .and_then(Value::as_str)
            .and_then(|r| self.patients.get(&normalise(r)));
        let manager = episode
            .get("careManager")
            .and_then(|m| m.get("reference"))
            .and_then(Value::as_str)
            .and_then(|r| self.managers.get(&normalise(r)));
        let practitioner = match manager {
            Some(m) if m["resourceType"] == "PractitionerRole" => m
                .pointer("/practitioner/reference")
                .and_then(Value::as_str)
                .and_then(|r| self.managers.get(&normalise(r))),
            other => other,
        };
        let res = Resources {
            episode: Some(episode),
            patient: None,
            manager,
            practitioner,
        };
        let mut values = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let v = match patient_keys.iter().position(|&p| p == i) {
                Some(n) => patient.map(|p| p.get(n).to_string()).unwrap_or_default(),
                None => eval(&k.expr, compiled[i].as_deref(), &res),
            };
            if v.len() > MAX_VALUE_BYTES {
                return Err(PageError::Malformed {
                    page,
                    message: format!(
                        "record {number} has a value of more than {MAX_VALUE_BYTES} bytes for \"{}\"",
                        k.expr
                    ),
                });
            }
            values.push(v);
        }
        let id = episode.get("id").and_then(Value::as_str).unwrap_or("?");
        Ok(RawRecord {
            location: Some(Location::Record(number)),
            resource: Some(format!("EpisodeOfCare/{}", shown_id(id))),
            values,
        })
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
fn reference_of(r: &Value) -> String {
    format!(
        "{}/{}",
        r.get("resourceType").and_then(Value::as_str).unwrap_or(""),
        r.get("id").and_then(Value::as_str).unwrap_or("")
    )
}

/// A reference, relative (`Patient/1`) or absolute (a full URL, with or
/// without `_history`), as `Type/id`.
fn normalise(reference: &str) -> String {
    let mut parts: Vec<&str> = reference.trim_end_matches('/').split('/').collect();
    if parts.len() >= 4 && parts[parts.len() - 2] == "_history" {
        parts.truncate(parts.len() - 2);
    }
    match parts.as_slice() {
        [.., t, id] => format!("{t}/{id}"),
        _ => reference.to_string(),
    }
}

/// The resources one record's paths start from.
struct Resources<'a> {
    episode: Option<&'a Value>,
    patient: Option<&'a Value>,
    manager: Option<&'a Value>,
    practitioner: Option<&'a Value>,
}

impl<'a> Resources<'a> {
    fn patient(p: &'a Value) -> Resources<'a> {
        Resources {
            episode: None,
            patient: Some(p),
            manager: None,
            practitioner: None,
        }
    }
}

/// A key's value for one record: empty when absent.
fn eval(expr: &str, steps: Option<&[Step]>, r: &Resources<'_>) -> String {
    let text = match expr {
        FAMILY | PREFIX | INITIALS | GIVEN => r.patient.and_then(|p| name_part(p, expr)),
        MANAGER_ID => manager_id(r),
        MANAGER_NAME => r.practitioner.and_then(person_name),
        MANAGER_PHONE | MANAGER_EMAIL => {
            let system = if expr == MANAGER_PHONE {
                "phone"
            } else {
                "email"
            };
            [r.manager, r.practitioner]
                .into_iter()
                .flatten()
                .find_map(|m| telecom(m, system))
        }
        EPISODE_REF => r
            .episode
            .and_then(|e| e.get("id"))
            .and_then(Value::as_str)
            .map(|id| format!("EpisodeOfCare/{id}")),
        _ => steps.and_then(|s| path(s, r)),
    };
    text.unwrap_or_default()
}

/// The patient's official name (else the first), and the part asked for.
fn name_part(patient: &Value, part: &str) -> Option<String> {
    let names = patient.get("name")?.as_array()?;
    let name = names
        .iter()
        .find(|n| n.get("use").and_then(Value::as_str) == Some("official"))
        .or_else(|| names.first())?;
    let family_ext = |url: &str| {
        name.pointer("/_family/extension")?
            .as_array()?
            .iter()
            .find(|x| x.get("url").and_then(Value::as_str) == Some(url))?
            .get("valueString")?
            .as_str()
            .map(str::to_string)
    };
    match part {
        FAMILY => family_ext(OWN_NAME).or_else(|| name.get("family")?.as_str().map(str::to_string)),
        PREFIX => family_ext(OWN_PREFIX),
        _ => {
            let given = name.get("given")?.as_array()?;
            let quals = name.get("_given").and_then(Value::as_array);
            let mut initials = String::new();
            let mut names = Vec::new();
            for (i, g) in given.iter().enumerate() {
                let Some(g) = g.as_str() else { continue };
                let is_initial = quals
                    .and_then(|q| q.get(i))
                    .and_then(|q| q.get("extension"))
                    .and_then(Value::as_array)
                    .is_some_and(|xs| {
                        xs.iter().any(|x| {
                            x.get("url").and_then(Value::as_str) == Some(QUALIFIER)
                                && x.get("valueCode").and_then(Value::as_str) == Some("IN")
                        })
                    });
                if is_initial {
                    initials.push_str(g.trim());
                    if !g.trim().ends_with('.') {
                        initials.push('.');
                    }
                } else {
                    names.push(g.trim());
                }
            }
            let out = if part == INITIALS {
                initials
            } else {
                names.join(" ")
            };
            (!out.is_empty()).then_some(out)
        }
    }
}

/// The care manager's AGB code, else `Practitioner/ID` (or the role's).
fn manager_id(r: &Resources<'_>) -> Option<String> {
    let agb = |m: &Value| {
        m.get("identifier")?
            .as_array()?
            .iter()
            .find(|i| i.get("system").and_then(Value::as_str) == Some(AGB))?
            .get("value")?
            .as_str()
            .map(str::to_string)
    };
    [r.practitioner, r.manager]
        .into_iter()
        .flatten()
        .find_map(agb)
        .or_else(|| r.practitioner.or(r.manager).map(reference_of))
}

fn person_name(p: &Value) -> Option<String> {
    let name = p.get("name")?.as_array()?.first()?;
    if let Some(t) = name.get("text").and_then(Value::as_str) {
        return Some(t.to_string());
    }
    let mut parts: Vec<&str> = name
        .get("given")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    parts.extend(name.get("family").and_then(Value::as_str));
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn telecom(m: &Value, system: &str) -> Option<String> {
    m.get("telecom")?
        .as_array()?
        .iter()
        .find(|t| t.get("system").and_then(Value::as_str) == Some(system))?
        .get("value")?
        .as_str()
        .map(str::to_string)
}

/// A path of the spec's form: `episode.`, `patient.`, `manager.` or
/// `practitioner.`, then element names, `[N]` and `[member=value]`.
fn path(steps: &[Step], r: &Resources<'_>) -> Option<String> {
    let (root, rest) = steps.split_first()?;
    let mut v = match root {
        Step::Name(n) if n == "episode" => r.episode?,
        Step::Name(n) if n == "patient" => r.patient?,
        Step::Name(n) if n == "manager" => r.manager?,
        Step::Name(n) if n == "practitioner" => r.practitioner?,
        _ => return None,
    };
    for step in rest {
        v = match (step, v) {
            (Step::Name(n), Value::Array(a)) => a.first()?.get(n)?,
            (Step::Name(n), _) => v.get(n)?,
            (Step::Index(i), Value::Array(a)) => a.get(*i)?,
            (Step::Index(0), _) => v,
            (Step::Where(k, want), Value::Array(a)) => a
                .iter()
                .find(|x| x.get(k).and_then(Value::as_str) == Some(want.as_str()))?,
            (Step::Where(k, want), _) => {
                (v.get(k).and_then(Value::as_str) == Some(want.as_str())).then_some(v)?
            }
            _ => return None,
        };
    }
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
        // A list of strings (`given`) reads as its parts joined.
        Value::Array(a) if a.iter().all(Value::is_string) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => Some(STRUCTURED.to_string()),
    }
}

#[derive(Debug, PartialEq)]
enum Step {
    Name(String),
    Index(usize),
    Where(String, String),
}

/// Parses a path; `None` when it is not of the spec's form (the mapping
/// loader refuses such a path, naming it).
fn parse_path(expr: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = expr;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            let sel = &inner[..end];
            steps.push(match sel.split_once('=') {
                Some((k, v)) if !k.is_empty() => Step::Where(k.to_string(), v.to_string()),
                _ => Step::Index(sel.parse().ok()?),
            });
            rest = inner[end + 1..]
                .strip_prefix('.')
                .unwrap_or(&inner[end + 1..]);
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let name = &rest[..end];
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return None;
            }
            steps.push(Step::Name(name.to_string()));
            rest = &rest[end..];
            rest = rest.strip_prefix('.').unwrap_or(rest);
        }
    }
    Some(steps)
}

/// Whether `expr` is a key a `fhir` source can read: a computed key or a
/// path from one of the four roots.
pub fn is_valid_key(expr: &str) -> bool {
    matches!(
        expr,
        FAMILY | PREFIX | INITIALS | GIVEN | MANAGER_ID | MANAGER_NAME | MANAGER_PHONE
            | MANAGER_EMAIL | EPISODE_REF
    ) || parse_path(expr).is_some_and(|s| {
        s.len() >= 2
            && matches!(&s[0], Step::Name(n) if ["episode", "patient", "manager", "practitioner"].contains(&n.as_str()))
    })
}

/// The next page: `Bundle.link` with `relation = "next"`.
pub fn next(bundle: &Value) -> Option<String> {
    bundle
        .get("link")?
        .as_array()?
        .iter()
        .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))?
        .get("url")?
        .as_str()
        .map(str::to_string)
}

/// An OperationOutcome's diagnostics, if `body` is one.
pub fn outcome(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    (v.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome"))
        .then(|| outcome_text(&v))
}

/// The issues' diagnostics (or details), short, with any long number
/// masked: a server should never put personal data there, and if it does,
/// a BSN does not reach a log.
fn outcome_text(v: &Value) -> String {
    let texts: Vec<String> = v
        .get("issue")
        .and_then(Value::as_array)
        .map(|issues| {
            issues
                .iter()
                .filter_map(|i| {
                    i.get("diagnostics")
                        .or_else(|| i.pointer("/details/text"))
                        .and_then(Value::as_str)
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
pub(super) fn eval_for_test(expr: &str, episode: &Value, patient: &Value) -> String {
    let r = Resources {
        episode: Some(episode),
        patient: Some(patient),
        manager: None,
        practitioner: None,
    };
    eval(expr, parse_path(expr).as_deref(), &r)
}
