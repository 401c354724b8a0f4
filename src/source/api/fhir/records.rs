//! The reader's side of a FHIR poll: the includes of every page so far,
//! and the page being handed out, one record at a time into the reader's
//! own buffers.

use std::collections::HashMap;
use std::sync::Arc;

use super::eval::Resources;
use super::read::{FhirPage, EPISODE_SLOTS, ID, MANAGER, PATIENT};
use super::slots::{Packed, Slots};
use super::{normalise_into, FhirKeys, Origin};
use crate::source::api::tape::Tape;
use crate::source::api::transport::PageError;
use crate::source::{Location, RawRecord, MAX_VALUE_BYTES};

/// Included resources kept across the pages of one poll: an episode may
/// name a patient or care manager that came on an earlier page. Patients
/// are kept as their keys' values only (never whole); care managers, few,
/// as resources, with their keys' values worked out once per page.
pub struct FhirRecords {
    keys: Arc<FhirKeys>,
    patients: HashMap<String, Packed>,
    managers: HashMap<String, Tape<'static>>,
    /// The manager keys' values by the episode's manager reference; empty
    /// again whenever a page brings managers (a role's practitioner may
    /// come later, or a newer version).
    manager_values: HashMap<String, Packed>,
    /// The page being handed out.
    page: Option<Current>,
}

struct Current {
    episodes: Slots,
    stride: usize,
    count: usize,
    at: usize,
    number: u64,
    /// Records before this page's first.
    before: u64,
}

impl FhirRecords {
    pub fn new(keys: Arc<FhirKeys>) -> FhirRecords {
        FhirRecords {
            keys,
            patients: HashMap::new(),
            managers: HashMap::new(),
            manager_values: HashMap::new(),
            page: None,
        }
    }

    /// A read page (number `number`), its records numbered on from `before`.
    pub fn take(&mut self, read: FhirPage, number: u64, before: u64) {
        self.patients.extend(read.patients);
        if !read.managers.is_empty() {
            self.managers.extend(read.managers);
            self.manager_values.clear();
        }
        let stride = EPISODE_SLOTS + self.keys.episode.len();
        self.page = Some(Current {
            count: read.episodes.len() / stride,
            episodes: read.episodes,
            stride,
            at: 0,
            number,
            before,
        });
    }

    /// The next record of the page into `rec`; `Ok(false)` when the page
    /// is done.
    pub fn next_into(&mut self, rec: &mut RawRecord) -> Result<bool, PageError> {
        let Some(mut cur) = self.page.take() else {
            return Ok(false);
        };
        if cur.at == cur.count {
            return Ok(false);
        }
        let (base, number) = (cur.at * cur.stride, cur.before + cur.at as u64 + 1);
        cur.at += 1;
        let eps = &cur.episodes;
        self.work_out_manager(eps.get(base + MANAGER));
        let keys = &self.keys;
        let patient = self.patients.get(eps.get(base + PATIENT));
        let manager = self.manager_values.get(eps.get(base + MANAGER));
        rec.values.resize_with(keys.len(), String::new);
        for (i, v) in rec.values.iter_mut().enumerate() {
            v.clear();
            match keys.from[i] {
                Origin::Episode(n) => v.push_str(eps.get(base + EPISODE_SLOTS + n)),
                Origin::Patient(n) => v.push_str(patient.map_or("", |p| p.get(n))),
                Origin::Manager(n) => v.push_str(manager.map_or("", |m| m.get(n))),
            }
            if v.len() > MAX_VALUE_BYTES {
                return Err(PageError::Malformed {
                    page: cur.number,
                    message: format!(
                        "record {number} has a value of more than {MAX_VALUE_BYTES} bytes for \"{}\"",
                        keys.expr(i)
                    ),
                });
            }
        }
        rec.location = Some(Location::Record(number));
        let resource = rec.resource.get_or_insert_with(String::new);
        resource.clear();
        resource.push_str("EpisodeOfCare/");
        resource.push_str(eps.get(base + ID));
        self.page = Some(cur);
        Ok(true)
    }

    /// The manager keys' values for the episodes naming `reference`, once.
    fn work_out_manager(&mut self, reference: &str) {
        if self.keys.manager.is_empty() || self.manager_values.contains_key(reference) {
            return;
        }
        let manager = self.managers.get(reference).map(Tape::root);
        let practitioner = match manager {
            Some(m) if m.str_at("resourceType") == Some("PractitionerRole") => m
                .pointer("/practitioner/reference")
                .and_then(|n| n.as_str())
                .and_then(|r| {
                    let mut t = String::new();
                    normalise_into(r, &mut t);
                    self.managers.get(&t)
                })
                .map(Tape::root),
            other => other,
        };
        let res = Resources {
            manager,
            practitioner,
            ..Resources::default()
        };
        let mut values = Slots::default();
        for &i in &self.keys.manager {
            values.push_with(|t| self.keys.eval_into(i, &res, t));
        }
        self.manager_values
            .insert(reference.to_string(), values.packed());
    }
}
