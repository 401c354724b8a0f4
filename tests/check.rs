//! `visync check` end to end: the real binary on the shipped samples and on
//! small fixtures, its JSON report field by field, its exit statuses, and the
//! promise that a dry run changes nothing.

mod common;

use common::*;
use std::path::Path;

/// A private copy of the shipped samples and mappings (the README's first
/// command moves the repository's own sample files into `processed/`).
struct Samples {
    dir: tempfile::TempDir,
}

impl Samples {
    fn new() -> Samples {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["samples", "mappings"] {
            copy_tree(&repo().join(sub), &dir.path().join(sub));
        }
        // Only the shipped exports: whatever a local run left is not ours.
        for leftover in [
            "samples/state",
            "samples/caseflow/processed",
            "samples/jeugdnet/processed",
        ] {
            let _ = std::fs::remove_dir_all(dir.path().join(leftover));
        }
        Samples { dir }
    }

    fn config(&self) -> String {
        self.dir
            .path()
            .join("samples/visync.toml")
            .display()
            .to_string()
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

#[test]
fn the_samples_report_matches_the_spec_schema() {
    let s = Samples::new();
    let before = tree(&s.path("samples"));
    let run = visync(&["check", "-c", &s.config(), "--json"]);
    assert_eq!(run.code, 1, "rejected records exit 1\n{}", run.stderr);
    let r = run.json();
    let caseflow = &r["sources"][0];
    assert_eq!(caseflow["name"], "caseflow");
    assert_eq!(
        caseflow["files"],
        serde_json::json!(["export-20261128.csv"])
    );
    assert_eq!(caseflow["records"], 15);
    assert_eq!(caseflow["accepted"], 4);
    assert_eq!(caseflow["rejected"], 9);
    assert_eq!(caseflow["skipped"], 2);
    let jeugdnet = &r["sources"][1];
    assert_eq!(jeugdnet["name"], "jeugdnet");
    assert_eq!(
        (jeugdnet["records"].as_u64(), jeugdnet["accepted"].as_u64()),
        (Some(5), Some(2))
    );
    let first = &r["rejections"][0];
    assert_eq!(first["source"], "caseflow");
    assert_eq!(first["file"], "export-20261128.csv");
    assert_eq!(first["location"], "line 8");
    assert_eq!(first["field"], "bsn");
    assert_eq!(first["code"], "bsn_invalid");
    assert_eq!(first["message"], "*****0083 fails the 11-proof");
    let xml = r["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["source"] == "jeugdnet")
        .unwrap();
    assert_eq!(xml["location"], "record 4");
    assert_eq!(xml["code"], "gender_invalid");
    // Four CSV signals and one XML registration; the closed JeugdNet case was
    // never sent, so it needs nothing.
    assert_eq!(
        r["plan"],
        serde_json::json!({"register": 5, "update": 0, "withdraw": 0, "renew": 0, "unchanged": 1, "held": 0})
    );
    // A dry run changes nothing: no state, no moved files.
    assert_eq!(tree(&s.path("samples")), before);
    assert!(!s.path("samples/state").exists());
}

#[test]
fn bsns_are_masked_unless_revealed() {
    let s = Samples::new();
    let text = visync(&["check", "-c", &s.config()]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains("*****0083 fails the 11-proof"),
        "{}",
        text.stdout
    );
    for clear in ["999990083", "999990019", "999990020"] {
        assert!(
            !text.stdout.contains(clear),
            "{clear} in clear:\n{}",
            text.stdout
        );
        assert!(
            !text.stderr.contains(clear),
            "{clear} in the log:\n{}",
            text.stderr
        );
    }
    let revealed = visync(&["check", "-c", &s.config(), "--reveal"]);
    assert!(
        revealed.stdout.contains("999990083 fails the 11-proof"),
        "{}",
        revealed.stdout
    );
}

#[test]
fn the_shipped_mapping_tests_pass() {
    let s = Samples::new();
    let run = visync(&["check", "-c", &s.config(), "--mapping-tests"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("caseflow: 6 tests, 0 failed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("jeugdnet: 3 tests, 0 failed"),
        "{}",
        run.stdout
    );
}

fn copy_mapping(dir: &Path, extra: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/cases/csv-codes/mapping.toml"))
        .unwrap();
    let path = dir.join("mapping.toml");
    std::fs::write(&path, format!("{text}{extra}")).unwrap();
    path
}

#[test]
fn a_failing_mapping_test_names_itself_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let mapping = copy_mapping(
        tmp.path(),
        "\n[[tests]]\nname = \"wrong gender\"\ninput = { bsn = \"999990019\", achternaam = \"J\", geboren = \"04-03-2012\", geslacht = \"V\", mw = \"E1\", mw_naam = \"N\", mw_mail = \"a@b.example\", dossier = \"D\", start = \"01-11-2026\", vir = \"J\" }\nexpect = { gender = \"male\" }\n",
    );
    let cfg = config_for(tmp.path(), &mapping, None);
    let run = visync(&["check", "-c", cfg.to_str().unwrap(), "--mapping-tests"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("[wrong gender]: gender: expected \"male\", got \"female\""),
        "{}",
        run.stdout
    );
}

#[test]
fn config_errors_name_the_file_line_and_key_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("visync.toml");
    std::fs::write(
        &cfg,
        "[organisation]\ncode = \"1\"\nname = \"x\"\n[index]\nbatch_sise = 10\n",
    )
    .unwrap();
    let run = visync(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(&format!("config {}, line 5", cfg.display())),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("unknown field `batch_sise`"),
        "{}",
        run.stderr
    );

    let missing = visync(&["check", "-c", "/nonexistent/visync.toml"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("/nonexistent/visync.toml"),
        "{}",
        missing.stderr
    );
}

#[test]
fn mapping_errors_name_the_file_line_and_key_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let mapping = copy_mapping(tmp.path(), "");
    let text = std::fs::read_to_string(&mapping).unwrap().replace(
        "case_ref = \"dossier\"",
        "case_ref = \"dossier\"\nreason = \"Hulpvraag\"",
    );
    std::fs::write(&mapping, text).unwrap();
    let cfg = config_for(tmp.path(), &mapping, None);
    let run = visync(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(&format!(
            "mapping {}, line 15, [fields] reason: is not a signal field",
            mapping.display()
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn environment_overrides_apply_and_are_checked() {
    let s = Samples::new();
    // A region with an age limit of 12: the samples' older children are refused.
    let run = visync_env(
        &["check", "-c", &s.config(), "--json"],
        &[("VISYNC_RULES__AGE_LIMIT", "12")],
    );
    let too_old = run.json()["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["code"] == "subject_too_old")
        .count();
    assert!(too_old >= 3, "{}", run.stdout);
    let bad = visync_env(
        &["check", "-c", &s.config()],
        &[("VISYNC_INDEX__BATCH_SIZE", "900")],
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("[index] batch_size: 900 is outside 1..=500"),
        "{}",
        bad.stderr
    );
}

#[test]
fn other_visync_variables_are_ignored_and_an_unknown_override_is_named() {
    let s = Samples::new();
    // An operator's shell or a wrapper script sets these: not config.
    let fine = visync_env(
        &["check", "-c", &s.config()],
        &[
            ("VISYNC_CONFIG", "/etc/visync/visync.toml"),
            ("VISYNC_BIN", "x"),
        ],
    );
    assert_eq!(fine.code, 1, "{}", fine.stderr);
    let typo = visync_env(
        &["check", "-c", &s.config()],
        &[("VISYNC_INDEX__BATCHSIZE", "100")],
    );
    assert_eq!(typo.code, 2);
    assert!(
        typo.stderr.contains("VISYNC_INDEX__BATCHSIZE"),
        "{}",
        typo.stderr
    );
}

#[test]
fn a_bad_file_never_stops_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let watch = tmp.path().join("in");
    std::fs::create_dir(&watch).unwrap();
    let cases = repo().join("tests/fixtures/cases");
    std::fs::copy(
        cases.join("csv-binary/input.csv"),
        watch.join("a-binary.csv"),
    )
    .unwrap();
    std::fs::copy(cases.join("csv-codes/input.csv"), watch.join("b-good.csv")).unwrap();
    std::fs::write(watch.join("c-partial.csv.part"), "half").unwrap();
    std::fs::write(watch.join(".hidden.csv"), "x").unwrap();
    let cfg = config_for(
        tmp.path(),
        &cases.join("csv-codes/mapping.toml"),
        Some(&watch),
    );
    let before = tree(tmp.path());
    let run = visync(&["check", "-c", cfg.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 2, "an unreadable file exits 2");
    let r = run.json();
    assert_eq!(
        r["sources"][0]["files"],
        serde_json::json!(["a-binary.csv", "b-good.csv"])
    );
    assert_eq!(r["sources"][0]["records"], 17);
    assert_eq!(r["file_errors"][0]["file"], "a-binary.csv");
    assert_eq!(r["plan"]["register"], 2);
    assert_eq!(tree(tmp.path()), before, "check moved or created something");
}

#[test]
fn successive_snapshots_plan_like_the_run_and_a_big_drop_is_held() {
    let tmp = tempfile::tempdir().unwrap();
    let watch = tmp.path().join("in");
    std::fs::create_dir(&watch).unwrap();
    let cases = repo().join("tests/fixtures/cases");
    let full = std::fs::read_to_string(cases.join("csv-codes/input.csv")).unwrap();
    // The second snapshot lists only the first child: the other is withdrawn,
    // which is half of what is active, so it is held.
    let lines: Vec<&str> = full.lines().collect();
    std::fs::write(watch.join("1.csv"), full.as_bytes()).unwrap();
    std::fs::write(watch.join("2.csv"), format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    let cfg = config_for(
        tmp.path(),
        &cases.join("csv-codes/mapping.toml"),
        Some(&watch),
    );
    let run = visync(&["check", "-c", cfg.to_str().unwrap(), "--json"]);
    let plan = &run.json()["plan"];
    assert_eq!(plan["register"], 2);
    assert_eq!(plan["unchanged"], 1);
    assert_eq!(plan["withdraw"], 1);
    assert_eq!(plan["held"], 1);
    let text = visync(&["check", "-c", cfg.to_str().unwrap()]);
    assert!(
        text.stdout
            .contains("held: 1 withdrawals exceed [policy] max_withdraw_fraction"),
        "{}",
        text.stdout
    );
}

#[test]
fn files_and_sources_are_chosen_on_the_command_line() {
    let s = Samples::new();
    let one = s.path("samples/jeugdnet/export-20261128-0200.xml");
    let run = visync(&["check", "-c", &s.config(), "--json", one.to_str().unwrap()]);
    let r = run.json();
    assert_eq!(
        r["sources"].as_array().unwrap().len(),
        1,
        "only the source whose folder holds the file"
    );
    assert_eq!(r["sources"][0]["name"], "jeugdnet");

    let only = visync(&["check", "-c", &s.config(), "--json", "--source", "caseflow"]);
    assert_eq!(only.json()["sources"].as_array().unwrap().len(), 1);

    let unknown = visync(&["check", "-c", &s.config(), "--source", "nope"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("no source is named \"nope\""),
        "{}",
        unknown.stderr
    );

    let stray = visync(&["check", "-c", &s.config(), "/tmp/elsewhere.csv"]);
    assert_eq!(stray.code, 2);
    assert!(stray.stderr.contains("--source NAME"), "{}", stray.stderr);
}
