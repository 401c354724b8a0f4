//! `visync::mapping::load` on an arbitrary mapping file: a `Mapping` or a
//! `MappingError`, never a panic. A mapping that loads has its own
//! `[[tests]]` run (`Mapping::apply` on the file's example records), and
//! every example value is read through its date formats, which must agree
//! with chrono. The shipped CaseFlow professionals table sits beside the
//! file, so `[professionals] file = "caseflow-medewerkers.csv"` loads.
//! Seeds: the fixture and shipped mappings.
#![no_main]

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = common::scratch("mapping");
        std::fs::copy(
            common::repo("mappings/caseflow-medewerkers.csv"),
            dir.join("caseflow-medewerkers.csv"),
        )
        .expect("the professionals table");
        dir.join("mapping.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(path, data).expect("the scratch file");
    let mapping = match visync::mapping::load(path) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for reveal in [false, true] {
        for failure in visync::mapping::run_tests(&mapping, &common::context(reveal)) {
            let _ = failure.message;
        }
    }
    for test in &mapping.tests {
        for (_, value) in &test.input {
            common::same_dates_as_chrono(&mapping, value);
        }
    }
});
