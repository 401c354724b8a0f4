//! `visync mapping init` end to end, data-driven: each folder under
//! tests/fixtures/onboard/ holds a sample export written for the tests and
//! expect.toml, the parts of the draft that matter (the column each field
//! got, date formats, delimiter, encoding, record, the gender map, the
//! decision column) and the counts `check` must give with the draft. Then
//! bad input (exit 2, nothing written), --out and --force, and a target that
//! cannot be found.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures/onboard"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expect.toml").exists())
        .collect();
    v.sort();
    v
}

fn export_in(case: &Path) -> PathBuf {
    std::fs::read_dir(case)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_stem().is_some_and(|s| s == "export"))
        .expect("an export file")
}

fn init(export: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "mapping",
        "init",
        export.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    visync(&args)
}

/// A field's source expression and date formats, as the draft writes it.
fn field(v: &toml::Value) -> (String, Vec<String>) {
    match v {
        toml::Value::String(s) => (s.clone(), vec![]),
        toml::Value::Table(t) => {
            let from = t
                .get("from")
                .and_then(|f| f.as_str())
                .unwrap_or("")
                .to_string();
            let dates = match t.get("date") {
                Some(toml::Value::String(s)) => vec![s.clone()],
                Some(toml::Value::Array(a)) => {
                    a.iter().map(|x| x.as_str().unwrap().to_string()).collect()
                }
                _ => vec![],
            };
            (from, dates)
        }
        other => panic!("a field is a string or a table: {other}"),
    }
}

/// The commented-out filter line the draft proposes.
fn proposed_filter(text: &str) -> Option<(String, String)> {
    let line = text.lines().find(|l| l.starts_with("# only = "))?;
    let v: toml::Table = toml::from_str(&line[2..]).unwrap();
    let cond = &v["only"].as_array().unwrap()[0];
    Some((
        cond["from"].as_str().unwrap().to_string(),
        cond["in"].as_array().unwrap()[0]
            .as_str()
            .unwrap()
            .to_string(),
    ))
}

fn compare_draft(name: &str, draft: &toml::Table, text: &str, expect: &toml::Table) {
    let src = draft["source"].as_table().unwrap();
    for (k, v) in expect["source"].as_table().unwrap() {
        assert_eq!(src.get(k), Some(v), "{name}: [source] {k}");
    }
    let fields = draft["fields"].as_table().unwrap();
    let mut got: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in fields {
        let (from, _) = field(v);
        if !from.is_empty() {
            got.insert(k.clone(), from);
        }
    }
    let want: BTreeMap<String, String> = expect["fields"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    assert_eq!(got, want, "{name}: which column each field got");
    for (k, v) in expect["dates"].as_table().unwrap() {
        let want: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        assert_eq!(field(&fields[k]).1, want, "{name}: date formats of {k}");
    }
    let map = fields["gender"]["map"].as_table().unwrap();
    assert_eq!(
        map,
        expect["gender"].as_table().unwrap(),
        "{name}: gender map"
    );
    let d = expect["decision"].as_table().unwrap();
    assert_eq!(
        proposed_filter(text),
        Some((
            d["column"].as_str().unwrap().to_string(),
            d["yes"].as_str().unwrap().to_string()
        )),
        "{name}: the decision column"
    );
    assert!(
        draft.get("filter").and_then(|f| f.get("only")).is_none(),
        "{name}: proposed, not active"
    );
}

#[test]
fn each_sample_gets_the_expected_draft_which_passes_its_tests_and_checks_as_expected() {
    let cases = fixtures();
    assert!(cases.len() >= 5, "{cases:?}");
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expect: toml::Table =
            toml::from_str(&std::fs::read_to_string(case.join("expect.toml")).unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let export = export_in(&case);
        let out = dir.path().join("draft.toml");
        let run = init(&export, &out, &[]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains("its 4 tests pass"),
            "{name}: {}",
            run.stderr
        );
        let text = std::fs::read_to_string(&out).unwrap();
        let draft: toml::Table = toml::from_str(&text).unwrap();
        compare_draft(&name, &draft, &text, &expect);

        // The draft in a config: its own tests pass, and check counts.
        let watch = dir.path().join("in");
        std::fs::create_dir(&watch).unwrap();
        std::fs::copy(&export, watch.join(export.file_name().unwrap())).unwrap();
        let config = config_for(dir.path(), Path::new("draft.toml"), Some(Path::new("in")));
        let c = config.to_str().unwrap();
        let tests = visync(&["check", "-c", c, "--mapping-tests"]);
        assert_eq!(tests.code, 0, "{name}: {}{}", tests.stdout, tests.stderr);
        assert!(
            tests.stdout.contains("4 passed, 0 failed"),
            "{name}: {}",
            tests.stdout
        );
        let html = dir.path().join("report.html");
        let check = visync(&["check", "-c", c, "--json", "--html", html.to_str().unwrap()]);
        let r = check.json();
        let want = expect["check"].as_table().unwrap();
        let s = &r["sources"][0];
        for k in ["records", "accepted", "rejected", "skipped"] {
            assert_eq!(
                s[k].as_i64(),
                want[k].as_integer(),
                "{name}: {k}\n{}",
                check.stdout
            );
        }
        let mut codes: BTreeMap<String, i64> = BTreeMap::new();
        for rej in r["rejections"].as_array().unwrap() {
            *codes
                .entry(rej["code"].as_str().unwrap().into())
                .or_default() += 1;
        }
        let want_codes: BTreeMap<String, i64> = want["codes"]
            .as_table()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_integer().unwrap()))
            .collect();
        assert_eq!(codes, want_codes, "{name}: rejections by code");
        let page = std::fs::read_to_string(&html).unwrap();
        let records = format!(
            "data-count=\"records\">{}<",
            want["records"].as_integer().unwrap()
        );
        assert!(page.contains(&records), "{name}: the page has the counts");
    }
}

/// Inputs that are no sample: exit 2, a message naming the file, no draft.
#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let doctype = "<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY a \"b\">]>\n<E><R><T>&a;</T></R><R><T>1</T></R></E>\n";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.csv", b"".to_vec(), "is empty"),
        ("blank.csv", b"\n\n  \n".to_vec(), "is empty"),
        (
            "one-line.csv",
            b"BSN;Achternaam;Geboortedatum\n".to_vec(),
            "no records",
        ),
        (
            "binary.csv",
            b"BSN;Naam\n\x00\x01\x02\x03".to_vec(),
            "looks binary",
        ),
        ("utf16.csv", b"\xff\xfeB\x00S\x00N\x00".to_vec(), "UTF-16"),
        ("doctype.xml", doctype.as_bytes().to_vec(), "DOCTYPE"),
        (
            "prose.txt",
            b"Dear all,\nplease find the export attached.\nRegards\n".to_vec(),
            "not a CSV or XML export",
        ),
        (
            "no-header.csv",
            b"999990019;Jansen;04-03-2012\n999990020;Vries;17-08-2015\n".to_vec(),
            "looks like a record",
        ),
        (
            "page.json",
            b"{\"items\": [{\"bsn\": \"999990019\"}]}\n".to_vec(),
            "looks like JSON",
        ),
        (
            "broken.xml",
            b"<E><R><T>1</T></R><R><T>2</X></R></E>".to_vec(),
            "not well-formed",
        ),
    ];
    for (file, bytes, said) in cases {
        let export = dir.path().join(file);
        std::fs::write(&export, &bytes).unwrap();
        let out = dir.path().join(format!("{file}.toml"));
        let run = init(&export, &out, &[]);
        assert_eq!(run.code, 2, "{file}: {}", run.stderr);
        assert!(
            run.stderr.contains(file) && run.stderr.contains(said),
            "{file}: {}",
            run.stderr
        );
        assert!(!out.exists(), "{file}: nothing written");
        assert!(
            !run.stderr.contains("999990019") && !run.stderr.contains("Jansen"),
            "{}",
            run.stderr
        );
        // Nor to stdout.
        let run = visync(&["mapping", "init", export.to_str().unwrap()]);
        assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{file}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        10,
        "no stray files"
    );
}

#[test]
fn out_is_never_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let export = export_in(&repo().join("tests/fixtures/onboard/nl-semicolon-cp1252"));
    let out = dir.path().join("draft.toml");
    std::fs::write(&out, "# mine\n").unwrap();
    let run = init(&export, &out, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "# mine\n");
    let run = init(&export, &out, &["--force"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read_to_string(&out).unwrap().contains("[fields]"));
}

#[test]
fn a_field_it_cannot_find_is_todo_and_check_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export.csv");
    // No family name column, no contact data, no decision column.
    std::fs::write(
        &export,
        "BSN;Geboortedatum;Geslacht;MedewerkerCode;Dossiernummer;Startdatum;Notitie\n\
         999990019;04-03-2012;M;EMP-1;D-1;01-11-2026;geheim een\n\
         999990020;17-08-2015;V;EMP-1;D-2;15-10-2026;geheim twee\n\
         999990032;30-01-2009;V;EMP-2;D-3;01-09-2026;geheim drie\n",
    )
    .unwrap();
    let out = dir.path().join("draft.toml");
    let run = init(&export, &out, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("# TODO family_name"), "{text}");
    assert!(text.contains("# TODO professional contact"), "{text}");
    assert!(
        text.contains("# TODO: no column looks like that decision"),
        "{text}"
    );
    assert!(
        run.stderr
            .contains("not found (TODO in the draft): family_name"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("[fields] family_name"),
        "{}",
        run.stderr
    );
    assert!(!text.contains("geheim") && !run.stderr.contains("geheim"));
    let config = config_for(dir.path(), Path::new("draft.toml"), None);
    let check = visync(&["check", "-c", config.to_str().unwrap(), "--mapping-tests"]);
    assert_eq!(check.code, 2, "{}", check.stderr);
    assert!(
        check.stderr.contains("[fields] family_name: is missing"),
        "{}",
        check.stderr
    );
}

/// The shipped samples (the README's tour): the draft maps each field to the
/// column the hand-written mapping uses, and proposes its filter's column.
#[test]
fn the_shipped_samples_get_the_columns_of_their_hand_written_mappings() {
    for (export, mapping, unguessed) in [
        (
            "samples/caseflow/export-20261128.csv",
            "mappings/caseflow-csv.toml",
            vec![],
        ),
        (
            "samples/jeugdnet/export-20261128-0200.xml",
            "mappings/jeugdnet-xml.toml",
            vec!["withdraw_reason"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("draft.toml");
        let run = init(&repo().join(export), &out, &[]);
        assert_eq!(run.code, 0, "{export}: {}", run.stderr);
        let text = std::fs::read_to_string(&out).unwrap();
        let draft: toml::Table = toml::from_str(&text).unwrap();
        let hand: toml::Table =
            toml::from_str(&std::fs::read_to_string(repo().join(mapping)).unwrap()).unwrap();
        let columns = |t: &toml::Table| -> BTreeMap<String, String> {
            t["fields"]
                .as_table()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), field(v).0))
                .filter(|(k, _)| !unguessed.contains(&k.as_str()))
                .collect()
        };
        assert_eq!(columns(&draft), columns(&hand), "{export}");
        let only = &hand["filter"]["only"].as_array().unwrap()[0];
        assert_eq!(
            proposed_filter(&text),
            Some((
                only["from"].as_str().unwrap().to_string(),
                only["in"].as_array().unwrap()[0]
                    .as_str()
                    .unwrap()
                    .to_string()
            )),
            "{export}"
        );
    }
}

/// A large export is read only to its first 5,000 records, and says so.
#[test]
fn a_large_export_is_read_to_its_first_records_only() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("big.csv");
    let ids = bsns(50);
    let mut text =
        String::from("BSN;Achternaam;Geboortedatum;MedewerkerCode;Dossiernummer;Startdatum\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "{};Jansen;04-03-2012;EMP-{};D-{i};01-11-2026\n",
            ids[i % 50],
            i % 7
        ));
    }
    std::fs::write(&export, text).unwrap();
    let out = dir.path().join("draft.toml");
    let run = init(&export, &out, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("5000 records read (the first 5000"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("5000 of 5000 (100%) values pass the 11-proof"),
        "{}",
        run.stderr
    );
}

/// `--record` names the record element instead of the guess.
#[test]
fn record_names_the_xml_record() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("draft.toml");
    let export = repo().join("samples/jeugdnet/export-20261128-0200.xml");
    let run = init(
        &export,
        &out,
        &["--record", "jn:Export/jn:Dossiers/jn:Dossier/jn:Client"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let draft: toml::Table = toml::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        draft["source"]["record"].as_str(),
        Some("Export/Dossiers/Dossier/Client")
    );
    assert_eq!(draft["fields"]["bsn"].as_str(), Some("BSN"));
    let run = init(
        &export,
        &dir.path().join("x.toml"),
        &["--record", "Dossiers/Dossier"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--record must start at the root"),
        "{}",
        run.stderr
    );
}

/// A Windows-1252 byte past the head that judged the encoding: the sample is
/// read again as Windows-1252, and the draft says so.
#[test]
fn windows_1252_past_the_head_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("late.csv");
    let ids = bsns(40);
    let mut text =
        b"BSN;Achternaam;Geboortedatum;MedewerkerCode;Dossiernummer;Startdatum\n".to_vec();
    for i in 0..8_000 {
        let name: &[u8] = if i == 4_990 {
            b"M\xfcller-Vermeulen"
        } else {
            b"Jansen-Vermeulen"
        };
        text.extend_from_slice(format!("{};", ids[i % 40]).as_bytes());
        text.extend_from_slice(name);
        text.extend_from_slice(format!(";04-03-2012;EMP-{};D-{i};01-11-2026\n", i % 7).as_bytes());
    }
    let at = text.iter().position(|&b| b == 0xfc).unwrap();
    assert!(at > 256 * 1024, "past the head: {at}");
    std::fs::write(&export, text).unwrap();
    let out = dir.path().join("draft.toml");
    let run = init(&export, &out, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let draft = std::fs::read_to_string(&out).unwrap();
    assert!(draft.contains("encoding = \"windows-1252\""), "{draft}");
    assert!(
        run.stderr.contains("not valid UTF-8 further on"),
        "{}",
        run.stderr
    );
}

/// Numbers that fail the 11-proof under a BSN header (an anonymised
/// sample): the column is taken by its header, and the summary says to check.
#[test]
fn a_bsn_column_of_made_up_numbers_is_taken_by_its_header_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("anon.csv");
    let mut text = String::from("Dossier;BSN;Achternaam;Geboortedatum;Medewerker;Startdatum\n");
    for i in 0..10 {
        text.push_str(&format!(
            "D-{i};12345678{i};Jansen;04-03-2012;EMP-{};01-11-2026\n",
            i % 3
        ));
    }
    std::fs::write(&export, text).unwrap();
    let out = dir.path().join("draft.toml");
    let run = init(&export, &out, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let draft = std::fs::read_to_string(&out).unwrap();
    assert!(draft.contains("bsn = \"BSN\""), "{draft}");
    assert!(
        run.stderr.contains("taken by its header only"),
        "{}",
        run.stderr
    );
    assert!(!draft.contains("12345678"), "{draft}");
}

/// Without --out the draft goes to stdout and the summary to stderr, which
/// still says whether the draft loads (checked from a temporary copy).
#[test]
fn without_out_the_draft_goes_to_stdout() {
    let export = repo().join("samples/caseflow/export-20261128.csv");
    let run = visync(&["mapping", "init", export.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let draft: toml::Table = toml::from_str(&run.stdout).expect("stdout is the draft");
    assert_eq!(draft["fields"]["bsn"].as_str(), Some("BSN"));
    assert!(
        !run.stdout.contains("visync mapping init:"),
        "no summary in the draft"
    );
    assert!(
        run.stderr.contains("the draft loads and its 4 tests pass"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("/tmp"), "{}", run.stderr);
}
