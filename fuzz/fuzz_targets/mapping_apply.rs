//! `Mapping::apply` on arbitrary record values, with three fixed mappings:
//! the CSV fixture `csv-codes` (filter, gender map, one date format), the
//! shipped CaseFlow mapping (professionals table, two birth-date formats, a
//! gender default) and the shipped JeugdNet mapping (withdraw reasons).
//!
//! Input: a first line naming the mapping (`codes`, `caseflow`, `jeugdnet`;
//! anything else picks one by its length), with `reveal` after it for
//! `check --reveal`; then one `source key=value` per line. Keys the mapping
//! does not read are ignored. Seeds: the fixture and sample rows.
//!
//! Beyond "no panic": every date value read through the mapping's formats
//! gives what chrono gives, a signal never ends before it starts, and a
//! rejection without `--reveal` quotes no number of seven digits or more.
#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use visync::mapping::Mapping;

const NAMES: [&str; 3] = ["codes", "caseflow", "jeugdnet"];

fn mappings() -> &'static [Mapping] {
    static MAPPINGS: OnceLock<Vec<Mapping>> = OnceLock::new();
    MAPPINGS.get_or_init(|| {
        vec![
            common::mapping("tests/fixtures/cases/csv-codes/mapping.toml"),
            common::mapping("mappings/caseflow-csv.toml"),
            common::mapping("mappings/jeugdnet-xml.toml"),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let head = lines.next().unwrap_or("");
    let mut words = head.split_whitespace();
    let which = words
        .next()
        .and_then(|w| NAMES.iter().position(|n| *n == w))
        .unwrap_or(head.len() % NAMES.len());
    let reveal = words.any(|w| w == "reveal");
    let mapping = &mappings()[which];

    let mut values = vec![String::new(); mapping.reader.keys.len()];
    for line in lines {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if let Some(slot) = mapping.slot_of(key) {
            values[slot] = value.to_string();
        }
    }
    for v in &values {
        common::same_dates_as_chrono(mapping, v);
    }
    let outcome = mapping.apply(&values, &common::context(reveal));
    common::check_outcome(&outcome, &values, reveal);
});
