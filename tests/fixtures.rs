//! Data-driven tests of the readers and the mapping: each folder under
//! `tests/fixtures/cases/` holds a mapping, one input file and `expect.toml`
//! (counts, rejections by location, or a whole-file error). The real binary
//! checks the input and its JSON report is compared field by field.

mod common;

use common::*;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    records: u64,
    #[serde(default)]
    accepted: u64,
    #[serde(default)]
    skipped: u64,
    #[serde(default)]
    register: u64,
    #[serde(default)]
    rejections: Vec<(String, String, String)>,
    /// Substrings of the whole-file error; the file's records are then not used.
    file_error: Option<Vec<String>>,
}

#[test]
fn every_fixture_case() {
    let cases = repo().join("tests/fixtures/cases");
    let mut names: Vec<_> = std::fs::read_dir(&cases)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 8, "the fixture cases are missing");
    for case in names {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expect: Expect =
            toml::from_str(&std::fs::read_to_string(case.join("expect.toml")).unwrap())
                .unwrap_or_else(|e| panic!("{name}/expect.toml: {e}"));
        let input = std::fs::read_dir(&case)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_stem().is_some_and(|s| s == "input"))
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let cfg = config_for(tmp.path(), &case.join("mapping.toml"), None);
        let run = visync(&[
            "check",
            "--json",
            "-c",
            cfg.to_str().unwrap(),
            input.to_str().unwrap(),
        ]);
        let report = run.json();
        let source = &report["sources"][0];
        assert_eq!(
            source["records"], expect.records,
            "{name}: records\n{}",
            run.stdout
        );
        match &expect.file_error {
            Some(fragments) => {
                assert_eq!(run.code, 2, "{name}: a file error exits 2");
                let msg = report["file_errors"][0]["message"]
                    .as_str()
                    .unwrap_or_default();
                for fragment in fragments {
                    assert!(
                        msg.contains(fragment.as_str()),
                        "{name}: file error {msg:?} lacks {fragment:?}"
                    );
                }
                assert_eq!(
                    report["plan"]["register"], 0,
                    "{name}: nothing from a refused file is planned"
                );
            }
            None => {
                assert_eq!(
                    report["file_errors"].as_array().unwrap().len(),
                    0,
                    "{name}: {}",
                    run.stdout
                );
                assert_eq!(
                    source["accepted"], expect.accepted,
                    "{name}: accepted\n{}",
                    run.stdout
                );
                assert_eq!(source["skipped"], expect.skipped, "{name}: skipped");
                assert_eq!(
                    source["rejected"],
                    expect.rejections.len() as u64,
                    "{name}: rejected"
                );
                assert_eq!(
                    report["plan"]["register"], expect.register,
                    "{name}: register"
                );
                let got: Vec<(String, String, String)> = report["rejections"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        (
                            r["location"].as_str().unwrap().to_string(),
                            r["code"].as_str().unwrap().to_string(),
                            r["field"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect();
                assert_eq!(got, expect.rejections, "{name}: rejections");
                let want_code = if expect.rejections.is_empty() { 0 } else { 1 };
                assert_eq!(run.code, want_code, "{name}: exit status");
            }
        }
    }
}
