//! FHIR R4 searchset Bundles of EpisodeOfCare with their included Patient
//! and care manager (Practitioner or PractitionerRole). One record is one
//! episode; its keys are paths or computed keys (`eval.rs`).
//!
//! A page is read in two steps. `read.rs` runs where the page was fetched
//! (a runtime thread, while the reader maps the page before): the bytes
//! parsed into a tape, each episode's own keys and each included patient's
//! taken, the care managers kept, the page dropped. The reader then
//! `take`s it (`records.rs`): includes into the poll's cache, and record by
//! record the episode's patient and manager keys from that cache, into the
//! reader's own buffers.

mod eval;
mod read;
mod records;
mod slots;

use std::borrow::Cow;
use std::sync::Arc;

use self::eval::{eval_into, parse_path, Resources, Step};
use super::tape::{Node, Tape};
use crate::source::Key;

pub use self::eval::is_valid_key;
pub use self::read::{read, FhirPage};
pub use self::records::FhirRecords;

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

/// Which resource a key is read from, and its place among that resource's
/// kept values: the episode's own keys are read with its page; patient
/// and manager keys when the record is made, since the include may have
/// come on an earlier page.
#[derive(Clone, Copy, PartialEq)]
enum Origin {
    Episode(usize),
    Patient(usize),
    Manager(usize),
}

/// A poll's keys, worked out once: their paths parsed, each one's origin.
pub struct FhirKeys {
    keys: Vec<Key>,
    /// `None`: a computed key.
    steps: Vec<Option<Vec<Step>>>,
    from: Vec<Origin>,
    /// The keys of each origin, in the order their values are kept.
    episode: Vec<usize>,
    patient: Vec<usize>,
    manager: Vec<usize>,
}

impl FhirKeys {
    pub fn new(keys: &[Key]) -> Arc<FhirKeys> {
        let (mut episode, mut patient, mut manager) = (Vec::new(), Vec::new(), Vec::new());
        let from = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let (list, origin): (&mut Vec<usize>, fn(usize) -> Origin) =
                    if k.expr.starts_with("patient") {
                        (&mut patient, Origin::Patient)
                    } else if k.expr.starts_with("manager") || k.expr.starts_with("practitioner") {
                        (&mut manager, Origin::Manager)
                    } else {
                        (&mut episode, Origin::Episode)
                    };
                list.push(i);
                origin(list.len() - 1)
            })
            .collect();
        Arc::new(FhirKeys {
            keys: keys.to_vec(),
            steps: keys.iter().map(|k| parse_path(&k.expr)).collect(),
            from,
            episode,
            patient,
            manager,
        })
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn expr(&self, i: usize) -> &str {
        &self.keys[i].expr
    }

    fn eval_into(&self, i: usize, r: &Resources<'_, '_>, out: &mut String) {
        eval_into(&self.keys[i].expr, self.steps[i].as_deref(), r, out);
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
fn normalise_into(reference: &str, out: &mut String) {
    // The last four parts, from the end: `Type/id/_history/v` or `Type/id`.
    let mut parts = reference.trim_end_matches('/').rsplit('/');
    let last: [Option<&str>; 4] = std::array::from_fn(|_| parts.next());
    let (t, id) = match last {
        [_, Some("_history"), Some(id), Some(t)] => (t, id),
        [Some(id), Some(t), ..] => (t, id),
        _ => return out.push_str(reference),
    };
    out.push_str(t);
    out.push('/');
    out.push_str(id);
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

/// The next page's address scanned from a Bundle's bytes, keeping nothing
/// else of them: `Ok(None)` when it has no next link, `Err` when its
/// `link` is not of FHIR's shape or the bytes are not JSON (reading the
/// page then says what it holds).
pub fn scan_next(body: &[u8]) -> Result<Option<String>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Links<'a> {
        #[serde(borrow, default)]
        link: Vec<Link<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Link<'a> {
        #[serde(borrow, default)]
        relation: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        url: Option<Cow<'a, str>>,
    }
    let links: Links<'_> = serde_json::from_slice(body)?;
    Ok(links
        .link
        .into_iter()
        .find(|l| l.relation.as_deref() == Some("next"))
        .and_then(|l| l.url)
        .map(Cow::into_owned))
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
    eval::eval(expr, parse_path(expr).as_deref(), &r)
}
