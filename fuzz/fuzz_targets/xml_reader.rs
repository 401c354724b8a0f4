//! Arbitrary bytes as an XML export, read as the pipeline reads one: through
//! `FileReader` with the readers of a fixture mapping (namespaced record
//! path) and of the shipped JeugdNet mapping, every record drained. Seeds:
//! the XML fixtures and the JeugdNet sample.
#![no_main]

mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use visync::source::ReaderSpec;

fn specs() -> &'static [ReaderSpec] {
    static SPECS: OnceLock<Vec<ReaderSpec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let ns = common::mapping("tests/fixtures/cases/xml-namespaced/mapping.toml").reader;
        let jeugdnet = common::mapping("mappings/jeugdnet-xml.toml").reader;
        // The same keys in Windows-1252: the other decoding path.
        let mut latin = jeugdnet.clone();
        latin.encoding = encoding_rs::WINDOWS_1252;
        vec![ns, jeugdnet, latin]
    })
}

fuzz_target!(|data: &[u8]| {
    for spec in specs() {
        common::drain(spec, data);
    }
});
