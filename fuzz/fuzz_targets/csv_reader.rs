//! Arbitrary bytes as a CSV export, read as the pipeline reads one: through
//! `FileReader` with the readers of two fixture mappings (UTF-8 with `,`,
//! Windows-1252 with `;`), every record drained. Seeds: the CSV fixtures.
#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use visync::source::ReaderSpec;

fn specs() -> &'static [ReaderSpec] {
    static SPECS: OnceLock<Vec<ReaderSpec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let codes = common::mapping("tests/fixtures/cases/csv-codes/mapping.toml").reader;
        let bom = common::mapping("tests/fixtures/cases/csv-1252-bom-crlf/mapping.toml").reader;
        // The same keys, none required: past the header more often.
        let mut lenient = codes.clone();
        lenient.keys.iter_mut().for_each(|k| k.required = false);
        vec![codes, bom, lenient]
    })
}

fuzz_target!(|data: &[u8]| {
    for spec in specs() {
        common::drain(spec, data);
    }
});
