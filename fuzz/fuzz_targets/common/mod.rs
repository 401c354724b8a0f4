//! What the targets share: the fixtures they load, the reader loop they
//! drive, and the checks they make beyond "no panic".
#![allow(dead_code)] // each target uses its own part

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use visync::domain::{Bsn, Rules};
use visync::mapping::{Context, Mapping, Outcome, Target};
use visync::source::{FileReader, Format, RawRecord, ReaderSpec, MAX_VALUE_BYTES};

/// A file of the repository (fixtures, shipped mappings).
pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// A mapping of the repository; these are tested, so loading cannot fail.
pub fn mapping(rel: &str) -> Mapping {
    visync::mapping::load(&repo(rel)).unwrap_or_else(|e| panic!("{e}"))
}

/// A private folder for a target that must hand the library a file.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visync-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder in the temp dir");
    dir
}

/// Reads every record of `bytes` as the pipeline does (stopping at the first
/// whole-file error), and checks what a reader promises of each record.
pub fn drain(spec: &ReaderSpec, bytes: &[u8]) {
    let input = Box::new(std::io::Cursor::new(bytes.to_vec()));
    let mut reader = match FileReader::from_reader(input, spec) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    // A CSV value is limited before decoding, and Windows-1252 can grow to
    // three bytes a byte; an XML value is limited as decoded. (An API source
    // is polled, not read from bytes: `from_reader` refused it above.)
    let limit = match spec.format {
        Format::Csv { .. } => 3 * MAX_VALUE_BYTES,
        Format::Xml { .. } | Format::Api(_) => MAX_VALUE_BYTES,
    };
    let mut rec = RawRecord::default();
    let mut last = None;
    loop {
        match reader.next_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        }
        assert_eq!(rec.values.len(), spec.keys.len(), "one value per key");
        for v in &rec.values {
            assert!(v.len() <= limit, "a value of {} bytes", v.len());
        }
        let location = rec.location.expect("a reader says where a record is");
        assert!(last < Some(location), "locations go forward");
        last = Some(location);
    }
}

/// The day the targets apply mappings on: the samples' export date.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).expect("a date")
}

fn objected(bsn: &Bsn) -> bool {
    bsn.as_str().ends_with('7')
}

pub fn context(reveal: bool) -> Context<'static> {
    Context {
        today: today(),
        rules: Rules::default(),
        objected: &objected,
        reveal,
    }
}

/// A date format's fast path must read what chrono reads (load.rs,
/// `parse_fixed`): the same date, or none, for any text.
pub fn same_dates_as_chrono(mapping: &Mapping, text: &str) {
    let text = text.trim();
    for t in Target::ALL.into_iter().filter(|t| t.is_date()) {
        let Some(rule) = mapping.field(t) else {
            continue;
        };
        for f in &rule.formats {
            assert_eq!(
                f.parse(text),
                NaiveDate::parse_from_str(text, &f.pattern).ok(),
                "{text:?} read with {:?}",
                f.pattern
            );
        }
    }
}

/// Checks one record's outcome: a signal never ends before it starts, and
/// without `--reveal` no message quotes a number of seven or more digits
/// from the record (what could be a BSN; redact.rs, invariant 16). A run of
/// nines is left out: it is also what a value's shape shows for any digits.
pub fn check_outcome(outcome: &Outcome, values: &[String], reveal: bool) {
    match outcome {
        Outcome::Signal(s) => {
            assert!(s.end_date >= s.start_date, "ends before it starts");
        }
        Outcome::Rejected(r) if !reveal => {
            for v in values {
                for run in v
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|r| r.len() >= 7 && r.bytes().any(|b| b != b'9'))
                {
                    assert!(
                        !r.message.contains(run),
                        "the message quotes {run:?}: {}",
                        r.message
                    );
                }
            }
        }
        _ => {}
    }
}
