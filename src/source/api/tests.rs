//! The FHIR extraction, data-driven: one searchset Bundle in (nl-core
//! names, a PractitionerRole, includes by relative and absolute reference,
//! every status), the records' values out. And the paging helpers.

use std::collections::VecDeque;

use serde_json::json;

use super::fhir::{self, FhirKeys, FhirRecords};
use super::transport::link_header;
use crate::source::{Key, RawRecord};

const KEYS: [&str; 10] = [
    "patient.identifier[system=http://fhir.nl/fhir/NamingSystem/bsn].value",
    fhir::FAMILY,
    fhir::PREFIX,
    fhir::INITIALS,
    fhir::GIVEN,
    fhir::MANAGER_ID,
    fhir::MANAGER_PHONE,
    fhir::EPISODE_REF,
    fhir::STATUS,
    "patient.birthDate",
];

fn keys() -> Vec<Key> {
    KEYS.iter()
        .map(|k| Key {
            expr: k.to_string(),
            required: false,
        })
        .collect()
}

fn bundle() -> serde_json::Value {
    json!({
      "resourceType": "Bundle", "type": "searchset",
      "link": [{"relation": "self", "url": "x"}, {"relation": "next", "url": "https://fhir.example.org/r4/EpisodeOfCare?page=2"}],
      "entry": [
        {"fullUrl": "https://fhir.example.org/r4/EpisodeOfCare/ep-1", "search": {"mode": "match"},
         "resource": {"resourceType": "EpisodeOfCare", "id": "ep-1", "status": "active",
                      "patient": {"reference": "Patient/p-1"},
                      "careManager": {"reference": "https://fhir.example.org/r4/PractitionerRole/r-1"}}},
        {"search": {"mode": "match"},
         "resource": {"resourceType": "EpisodeOfCare", "id": "ep-2", "status": "cancelled",
                      "patient": {"reference": "https://fhir.example.org/r4/Patient/p-2/_history/3"},
                      "careManager": {"reference": "Practitioner/pr-2"}}},
        {"search": {"mode": "match"},
         "resource": {"resourceType": "EpisodeOfCare", "id": "ep-3", "status": "active",
                      "patient": {"reference": "Patient/not-included"},
                      "careManager": {"reference": "Practitioner/pr-2"}}},
        {"search": {"mode": "include"},
         "resource": {"resourceType": "Patient", "id": "p-1",
           "identifier": [{"system": "urn:other", "value": "X"}, {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999990019"}],
           "name": [{"use": "usual", "family": "Jantje"},
                    {"use": "official", "family": "van Dijk",
                     "_family": {"extension": [
                        {"url": "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix", "valueString": "van"},
                        {"url": "http://hl7.org/fhir/StructureDefinition/humanname-own-name", "valueString": "Dijk"}]},
                     "given": ["J.", "P", "Jan", "Pieter"],
                     "_given": [
                        {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier", "valueCode": "IN"}]},
                        {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier", "valueCode": "IN"}]},
                        {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier", "valueCode": "BR"}]},
                        null]}],
           "birthDate": "2012-03-04"}},
        {"search": {"mode": "include"},
         "resource": {"resourceType": "Patient", "id": "p-2",
           "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999990020"}],
           "name": [{"family": "Bakker"}], "birthDate": "2013-05"}},
        {"search": {"mode": "include"},
         "resource": {"resourceType": "PractitionerRole", "id": "r-1",
           "practitioner": {"reference": "Practitioner/pr-1"},
           "telecom": [{"system": "phone", "value": "020-1111111"}]}},
        {"search": {"mode": "include"},
         "resource": {"resourceType": "Practitioner", "id": "pr-1",
           "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": "01234567"}],
           "telecom": [{"system": "phone", "value": "020-2222222"}]}},
        {"search": {"mode": "include"},
         "resource": {"resourceType": "Practitioner", "id": "pr-2",
           "telecom": [{"system": "email", "value": "b@x.example"}]}}
      ]
    })
}

fn cache() -> FhirRecords {
    FhirRecords::new(FhirKeys::new(&keys()))
}

/// One page through both steps: read as the fetching thread does, taken.
fn page(
    b: &serde_json::Value,
    number: u64,
    cache: &mut FhirRecords,
    out: &mut VecDeque<RawRecord>,
) -> Result<Option<String>, super::PageError> {
    let read = fhir::read(
        &serde_json::to_vec(b).unwrap(),
        number,
        &FhirKeys::new(&keys()),
    )?;
    let next = read.next.clone();
    cache.take(read, number, 0);
    let mut rec = RawRecord::default();
    while cache.next_into(&mut rec)? {
        out.push_back(rec.clone());
    }
    Ok(next)
}

fn records(b: &serde_json::Value, cache: &mut FhirRecords) -> Vec<RawRecord> {
    let mut out = VecDeque::new();
    page(b, 1, cache, &mut out).unwrap();
    out.into_iter().collect()
}

#[test]
fn a_bundles_episodes_become_records_with_their_includes() {
    let got = records(&bundle(), &mut cache());
    let values: Vec<Vec<&str>> = got
        .iter()
        .map(|r| r.values.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        values,
        vec![
            // Official name's own parts, initials by the IN qualifier, the
            // AGB code of the role's practitioner, the role's phone first.
            vec![
                "999990019",
                "Dijk",
                "van",
                "J.P.",
                "Jan Pieter",
                "01234567",
                "020-1111111",
                "EpisodeOfCare/ep-1",
                "active",
                "2012-03-04"
            ],
            // An absolute reference with _history; no AGB: Practitioner/ID.
            vec![
                "999990020",
                "Bakker",
                "",
                "",
                "",
                "Practitioner/pr-2",
                "",
                "EpisodeOfCare/ep-2",
                "cancelled",
                "2013-05"
            ],
            // A patient not in the bundle: nothing of it.
            vec![
                "",
                "",
                "",
                "",
                "",
                "Practitioner/pr-2",
                "",
                "EpisodeOfCare/ep-3",
                "active",
                ""
            ],
        ]
    );
    assert_eq!(got[1].resource.as_deref(), Some("EpisodeOfCare/ep-2"));
    assert_eq!(got[2].location, Some(crate::source::Location::Record(3)));
    assert_eq!(
        page(&bundle(), 1, &mut cache(), &mut VecDeque::new())
            .unwrap()
            .as_deref(),
        Some("https://fhir.example.org/r4/EpisodeOfCare?page=2")
    );
}

#[test]
fn the_next_link_is_scanned_before_the_page_is_read() {
    let body = serde_json::to_vec(&bundle()).unwrap();
    assert_eq!(
        fhir::scan_next(&body).unwrap().as_deref(),
        Some("https://fhir.example.org/r4/EpisodeOfCare?page=2")
    );
    let last =
        br#"{"resourceType": "Bundle", "entry": [], "link": [{"relation": "self", "url": "x"}]}"#;
    assert_eq!(fhir::scan_next(last).unwrap(), None);
    // An odd shape is not guessed at: reading the page decides.
    let odd = br#"{"resourceType": "Bundle", "link": [{"relation": 7, "url": "x"}]}"#;
    assert!(fhir::scan_next(odd).is_err());
}

#[test]
fn an_include_from_an_earlier_page_is_found() {
    let mut cache = cache();
    records(&bundle(), &mut cache);
    let page2 = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "EpisodeOfCare", "id": "ep-9", "status": "onhold",
                      "patient": {"reference": "Patient/p-1"}, "careManager": {"reference": "Practitioner/pr-2"}}}]});
    let got = records(&page2, &mut cache);
    assert_eq!(got[0].values[0], "999990019");
    assert_eq!(got[0].values[8], "onhold");
}

#[test]
fn garbage_pages_are_refused_by_name() {
    let mut cache = cache();
    let mut out = VecDeque::new();
    let outcome = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "diagnostics": "search parameter type unknown for 999990019"}]});
    let e = page(&outcome, 2, &mut cache, &mut out)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("page 2") && e.contains("search parameter type unknown"),
        "{e}"
    );
    assert!(!e.contains("999990019"), "a long number is masked: {e}");
    let patient = json!({"resourceType": "Patient"});
    assert!(page(&patient, 1, &mut cache, &mut out).is_err());
    let no_entries = json!({"resourceType": "Bundle", "total": 3});
    assert!(page(&no_entries, 1, &mut cache, &mut out).is_err());
    let empty = json!({"resourceType": "Bundle", "total": 0});
    page(&empty, 1, &mut cache, &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn paths_of_the_specs_form_are_valid_keys_and_others_are_not() {
    for ok in [
        "patient.identifier[system=http://fhir.nl/fhir/NamingSystem/bsn].value",
        "episode.identifier[system=http://x.example/d].value",
        "patient.name[use=official].given[0]",
        "manager.telecom[system=email].value",
        fhir::FAMILY,
    ] {
        assert!(fhir::is_valid_key(ok), "{ok}");
    }
    for bad in [
        "BSN",
        "/client/bsn",
        "client.bsn",
        "patient",
        "patient.name[use=official",
    ] {
        assert!(!fhir::is_valid_key(bad), "{bad}");
    }
    let ep = r#"{"identifier": [{"system": "a", "value": "1"}, {"system": "b", "value": "2"}]}"#;
    let p = r#"{"name": [{"use": "official", "given": ["A", "B"]}]}"#;
    assert_eq!(
        fhir::eval_for_test("episode.identifier[system=b].value", ep, p),
        "2"
    );
    assert_eq!(
        fhir::eval_for_test("episode.identifier[1].system", ep, p),
        "b"
    );
    assert_eq!(
        fhir::eval_for_test("patient.name[use=official].given", ep, p),
        "A B"
    );
    assert_eq!(
        fhir::eval_for_test("patient.name", ep, p),
        super::STRUCTURED
    );
}

#[test]
fn link_headers_are_read_by_relation() {
    let mut h = reqwest::header::HeaderMap::new();
    h.append(
        reqwest::header::LINK,
        r#"<https://a.example/p?x=1,2>; rel="prev", <https://a.example/p?page=3>; rel="next last""#
            .parse()
            .unwrap(),
    );
    assert_eq!(
        link_header(&h, "next").as_deref(),
        Some("https://a.example/p?page=3")
    );
    assert_eq!(
        link_header(&h, "prev").as_deref(),
        Some("https://a.example/p?x=1,2")
    );
    assert_eq!(link_header(&h, "first"), None);
}

#[test]
fn next_pages_by_body_url_and_by_cursor() {
    use super::json;
    use super::transport::Page;
    use super::Next;
    let page = Page {
        headers: reqwest::header::HeaderMap::new(),
        body: Vec::new(),
        page: 1,
    };
    let url = url::Url::parse("https://cms.example.org/api/items?vir=true&cursor=old").unwrap();
    let body =
        json!({"links": {"next": "/api/items?page=2"}, "meta": {"next_cursor": "c2"}, "data": []});
    assert_eq!(
        json::next(&page, &body, &Next::Pointer("/links/next".into()), &url).as_deref(),
        Some("/api/items?page=2")
    );
    assert_eq!(
        json::next(
            &page,
            &body,
            &Next::Cursor {
                pointer: "/meta/next_cursor".into(),
                param: "cursor".into()
            },
            &url
        )
        .as_deref(),
        Some("https://cms.example.org/api/items?vir=true&cursor=c2"),
        "the cursor replaces the old one, the other parameters stay"
    );
    let last = json!({"links": {"next": null}, "meta": {"next_cursor": ""}, "data": []});
    assert_eq!(
        json::next(&page, &last, &Next::Pointer("/links/next".into()), &url),
        None
    );
    let cursor = Next::Cursor {
        pointer: "/meta/next_cursor".into(),
        param: "cursor".into(),
    };
    assert_eq!(
        json::next(&page, &last, &cursor, &url),
        None,
        "an empty cursor ends"
    );
}

#[test]
fn json_values_read_numbers_and_booleans_as_text_and_refuse_structures() {
    let record = json!({"a": 12, "b": true, "c": null, "d": {"x": 1}, "e": [1], "f": "tekst"});
    let keys: Vec<Key> = ["/a", "/b", "/c", "/d", "/e", "/f", "/missing"]
        .iter()
        .map(|k| Key {
            expr: k.to_string(),
            required: false,
        })
        .collect();
    assert_eq!(
        super::json_values(&record, &keys),
        [
            "12",
            "true",
            "",
            super::STRUCTURED,
            super::STRUCTURED,
            "tekst",
            ""
        ]
    );
}
