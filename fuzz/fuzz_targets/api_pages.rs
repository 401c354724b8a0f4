//! API sources' page parsing (`visync::source::api::read_page`): an
//! `http-json` page (records at `/data`, fields by JSON pointer) and a FHIR
//! searchset Bundle (episodes with their included patients and care
//! managers, the default fields' paths and computed keys). A page is
//! another system's input: whatever it holds must become records or a
//! refusal naming the page, never a panic, and every record carries one
//! value per key, none longer than the bound.
//!
//! Input: the first byte picks the kind (even: http-json, odd: FHIR), the
//! rest is the page. Seeds: pages of the tests and samples/fhir.
#![no_main]

use libfuzzer_sys::fuzz_target;
use visync::source::api::read_page;
use visync::source::{Key, Location, MAX_VALUE_BYTES};

const JSON_KEYS: [&str; 6] = [
    "/client/bsn",
    "/client/name/family",
    "/client/birthDate",
    "/worker/code",
    "/registerVir",
    "/updatedAt",
];

const FHIR_KEYS: [&str; 9] = [
    "patient.identifier[system=http://fhir.nl/fhir/NamingSystem/bsn].value",
    "patient.name:family",
    "patient.name:prefix",
    "patient.name:initials",
    "patient.birthDate",
    "manager:id",
    "manager:phone",
    "episode:reference",
    "episode.period.start",
];

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let fhir = kind % 2 == 1;
    let exprs: &[&str] = if fhir { &FHIR_KEYS } else { &JSON_KEYS };
    let keys: Vec<Key> = exprs
        .iter()
        .map(|e| Key {
            expr: e.to_string(),
            required: false,
        })
        .collect();
    let Ok(records) = read_page(fhir, body, "/data", &keys) else {
        return;
    };
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.values.len(), keys.len(), "one value per key");
        assert_eq!(r.location, Some(Location::Record(i as u64 + 1)));
        assert!(r.values.iter().all(|v| v.len() <= MAX_VALUE_BYTES));
        if let Some(res) = &r.resource {
            assert!(
                res.starts_with("EpisodeOfCare/"),
                "a location names the episode"
            );
        }
    }
});
