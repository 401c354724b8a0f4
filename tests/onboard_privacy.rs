//! The draft and the summary of `visync mapping init` never carry what the
//! export holds: a property over generated exports, CSV (any of the four
//! delimiters) and XML (values in elements and attributes), with random BSNs
//! outside the test range, random family names and random free text, that no
//! such value appears in the draft or on stderr.

mod common;

use common::*;
use proptest::prelude::*;

/// A valid BSN outside 99999xxxx (the range the draft's made-up tests use),
/// from eight random digits and the check digit they need.
fn bsn() -> impl Strategy<Value = String> {
    (10_000_000u32..89_999_999).prop_filter_map("no check digit", |head| {
        let digits: Vec<u32> = format!("{head:08}")
            .bytes()
            .map(|b| u32::from(b - b'0'))
            .collect();
        let sum: u32 = digits.iter().zip((2..=9).rev()).map(|(d, w)| d * w).sum();
        let check = sum % 11;
        (check < 10).then(|| format!("{head:08}{check}"))
    })
}

/// Free text as a CMS's notes: words that occur nowhere in a draft.
fn note() -> impl Strategy<Value = String> {
    // Consonants only: no word of a draft's own text looks like these.
    proptest::collection::vec("[bcdfghjklmnpqrstvwxz]{6,9}", 1..4).prop_map(|w| w.join(" "))
}

fn family() -> impl Strategy<Value = String> {
    "Zx[a-z]{5,9}"
}

#[derive(Debug, Clone)]
struct Row {
    bsn: String,
    family: String,
    note: String,
    diagnosis: String,
}

fn rows() -> impl Strategy<Value = Vec<Row>> {
    proptest::collection::vec(
        (bsn(), family(), note(), note()).prop_map(|(bsn, family, note, diagnosis)| Row {
            bsn,
            family,
            note,
            diagnosis,
        }),
        3..25,
    )
}

fn export(rows: &[Row], delimiter: char) -> String {
    let d = delimiter.to_string();
    let mut text = [
        "BSN",
        "Achternaam",
        "Geboortedatum",
        "Geslacht",
        "MedewerkerCode",
        "Dossiernummer",
        "Startdatum",
        "Hulpvraag",
        "Diagnose",
    ]
    .join(&d);
    text.push('\n');
    for (i, r) in rows.iter().enumerate() {
        let cells = [
            r.bsn.clone(),
            r.family.clone(),
            format!("{:02}-{:02}-{}", 1 + i % 28, 1 + i % 12, 2008 + i % 14),
            ["M", "V"][i % 2].to_string(),
            format!("EMP-{}", i % 3),
            format!("D-{}", 1000 + i),
            format!("{:02}-{:02}-2026", 1 + i % 28, 1 + i % 10),
            r.note.clone(),
            r.diagnosis.clone(),
        ];
        text.push_str(&cells.join(&d));
        text.push('\n');
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn nothing_of_the_exports_content_reaches_the_draft_or_the_summary(
        rows in rows(),
        delimiter in prop_oneof![Just(';'), Just(','), Just('\t'), Just('|')],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.csv");
        std::fs::write(&path, export(&rows, delimiter)).unwrap();
        let out = dir.path().join("draft.toml");
        let run = visync(&["mapping", "init", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        prop_assert_eq!(run.code, 0, "{}", run.stderr);
        let draft = std::fs::read_to_string(&out).unwrap();
        // The guess itself is right, or the property would be empty.
        prop_assert!(draft.contains("bsn = \"BSN\""), "{}", draft);
        prop_assert!(draft.contains("family_name = \"Achternaam\""), "{}", draft);
        for r in &rows {
            for v in [&r.bsn, &r.family, &r.note, &r.diagnosis] {
                prop_assert!(!draft.contains(v.as_str()), "{} in the draft", v);
                prop_assert!(!run.stderr.contains(v.as_str()), "{} in the summary", v);
            }
            for word in r.note.split(' ').chain(r.diagnosis.split(' ')) {
                prop_assert!(!draft.contains(word) && !run.stderr.contains(word), "{}", word);
            }
        }
    }

    #[test]
    fn nor_does_anything_of_an_xml_export(rows in rows()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.xml");
        std::fs::write(&path, xml(&rows)).unwrap();
        let out = dir.path().join("draft.toml");
        let run = visync(&["mapping", "init", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        prop_assert_eq!(run.code, 0, "{}", run.stderr);
        let draft = std::fs::read_to_string(&out).unwrap();
        prop_assert!(draft.contains("bsn = \"Kind/@bsn\""), "{}", draft);
        for r in &rows {
            for v in [&r.bsn, &r.family, &r.note, &r.diagnosis] {
                prop_assert!(!draft.contains(v.as_str()), "{} in the draft", v);
                prop_assert!(!run.stderr.contains(v.as_str()), "{} in the summary", v);
            }
        }
    }
}

fn xml(rows: &[Row]) -> String {
    let mut text =
        String::from("<?xml version=\"1.0\"?>\n<x:Export xmlns:x=\"urn:test\"><x:Zaken>\n");
    for (i, r) in rows.iter().enumerate() {
        text.push_str(&format!(
            "<x:Zaak nummer=\"Z-{i}\"><x:Kind bsn=\"{}\"><x:Achternaam>{}</x:Achternaam><x:Geboortedatum>{}-{:02}-{:02}</x:Geboortedatum></x:Kind>\
             <x:Medewerker code=\"M{}\"/><x:Start>2026-{:02}-{:02}</x:Start><x:Notitie>{}</x:Notitie><x:Diagnose reden=\"{}\"/></x:Zaak>\n",
            r.bsn, r.family, 2008 + i % 14, 1 + i % 12, 1 + i % 28, i % 3, 1 + i % 10, 1 + i % 28, r.note, r.diagnosis
        ));
    }
    text.push_str("</x:Zaken></x:Export>\n");
    text
}
