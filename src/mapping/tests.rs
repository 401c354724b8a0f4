use super::*;
use crate::domain::{Bsn, Rules, WithdrawReason};
use chrono::NaiveDate;

const BASE: &str = r#"
[source]
name = "t"
kind = "csv"

[fields]
bsn = "bsn"
family_name = "naam"
birth_date = "geboren"
gender = { default = "unknown" }
professional_id = "mw"
professional_name = { default = "A. Vries" }
professional_email = { default = "a@x.example" }
case_ref = "dossier"
start_date = "start"
end_date = { from = "eind", optional = true }
withdraw_reason = { from = "reden", optional = true, map = { KLAAR = "risk_ended", FOUT = "unjustified" } }
"#;

fn load_str(text: &str) -> Result<Mapping, MappingError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(&path, text).unwrap();
    load(&path)
}

fn record(m: &Mapping, pairs: &[(&str, &str)]) -> Vec<String> {
    let mut values = vec![String::new(); m.reader.keys.len()];
    for (k, v) in pairs {
        values[m.slot_of(k).unwrap()] = v.to_string();
    }
    values
}

fn ctx<'a>(objected: &'a (dyn Fn(&Bsn) -> bool + Sync)) -> Context<'a> {
    Context {
        today: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        rules: Rules::default(),
        objected,
        reveal: false,
    }
}

const ROW: &[(&str, &str)] = &[
    ("bsn", "999990019"),
    ("naam", "Jansen"),
    ("geboren", "2012-03-04"),
    ("mw", "E1"),
    ("dossier", "D1"),
    ("start", "2026-11-01"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<_> = ROW.to_vec();
    v.extend_from_slice(extra);
    v
}

#[test]
fn constants_fill_fields_the_export_lacks() {
    let m = load_str(BASE).unwrap();
    let no = |_: &Bsn| false;
    let Outcome::Signal(s) = m.apply(&record(&m, ROW), &ctx(&no)) else {
        panic!()
    };
    assert_eq!(&*s.professional.name, "A. Vries");
    assert_eq!(s.subject.gender.as_str(), "unknown");
    assert_eq!(s.ended, None);
}

#[test]
fn an_end_date_today_or_before_ends_the_involvement() {
    let m = load_str(BASE).unwrap();
    let no = |_: &Bsn| false;
    let Outcome::Signal(s) = m.apply(&record(&m, &with(&[("eind", "2026-11-28")])), &ctx(&no))
    else {
        panic!()
    };
    assert_eq!(s.ended, Some(WithdrawReason::RiskEnded));
    let Outcome::Signal(s) = m.apply(&record(&m, &with(&[("eind", "2026-11-29")])), &ctx(&no))
    else {
        panic!()
    };
    assert_eq!(s.ended, None);
    assert!(s.end_from_source);
}

#[test]
fn a_withdraw_reason_ends_it_with_that_reason_and_unknown_ones_do_not() {
    let m = load_str(BASE).unwrap();
    let no = |_: &Bsn| false;
    let Outcome::Signal(s) = m.apply(&record(&m, &with(&[("reden", "FOUT")])), &ctx(&no)) else {
        panic!()
    };
    assert_eq!(s.ended, Some(WithdrawReason::Unjustified));
    let Outcome::Signal(s) = m.apply(&record(&m, &with(&[("reden", "ANDERS")])), &ctx(&no)) else {
        panic!()
    };
    assert_eq!(s.ended, None);
}

#[test]
fn an_objection_is_rejected_and_still_names_the_involvement() {
    let m = load_str(BASE).unwrap();
    let yes = |b: &Bsn| b.as_str() == "999990019";
    let Outcome::Rejected(r) = m.apply(&record(&m, ROW), &ctx(&yes)) else {
        panic!()
    };
    assert_eq!(r.code, Code::Objection);
    assert_eq!(
        r.message,
        "*****0019 is on the objection list: it is never registered"
    );
    assert_eq!(
        r.involvement.map(|(b, p)| (b.as_str().to_string(), p)),
        Some(("999990019".into(), "E1".into()))
    );
}

#[test]
fn time_parts_after_the_date_are_read_and_ignored() {
    let m = load_str(&BASE.replace(
        "start_date = \"start\"",
        "start_date = { from = \"start\", date = \"%Y-%m-%d %H:%M\" }",
    ))
    .unwrap();
    let no = |_: &Bsn| false;
    let row: Vec<_> = ROW
        .iter()
        .map(|&(k, v)| {
            if k == "start" {
                (k, "2026-11-01 13:45")
            } else {
                (k, v)
            }
        })
        .collect();
    let Outcome::Signal(s) = m.apply(&record(&m, &row), &ctx(&no)) else {
        panic!()
    };
    assert_eq!(s.start_date.to_string(), "2026-11-01");
}

/// Each mapping text is refused with this key, and a message saying this.
fn assert_refused<const N: usize>(cases: [(String, &str, &str); N]) {
    for (text, key, fragment) in cases {
        let e = load_str(&text).unwrap_err();
        assert_eq!(e.key, key, "{e}");
        assert!(e.message.contains(fragment), "{e}");
    }
}

#[test]
fn a_wrong_field_is_named_with_what_is_wrong() {
    assert_refused([
        (
            BASE.replace("bsn = \"bsn\"", "bsn = { from = \"bsn\", optional = true }"),
            "[fields] bsn",
            "cannot be optional",
        ),
        (
            BASE.replace(
                "start_date = \"start\"",
                "start_date = { from = \"start\", date = \"%d-%m\" }",
            ),
            "[fields] start_date",
            "not a full date format",
        ),
        (
            BASE.replace("FOUT = \"unjustified\"", "FOUT = \"wrong\""),
            "[fields] withdraw_reason",
            "not a reason",
        ),
        (
            BASE.replace("case_ref = \"dossier\"\n", ""),
            "[fields] case_ref",
            "is missing",
        ),
        (
            BASE.replace(
                "gender = { default = \"unknown\" }",
                "gender = { default = \"boy\" }",
            ),
            "[fields] gender",
            "not a gender",
        ),
    ]);
}

#[test]
fn a_source_kind_with_the_wrong_keys_is_named_with_what_is_wrong() {
    assert_refused([
        (
            BASE.replace("kind = \"csv\"", "kind = \"fhir\""),
            "[source] base_url",
            "is missing: an API source needs the URL it polls",
        ),
        (
            BASE.replace(
                "kind = \"csv\"",
                "kind = \"fhir\"\nbase_url = \"https://fhir.example.org/r4\"",
            ),
            "[fields] birth_date",
            "is not a FHIR path",
        ),
        (
            BASE.replace(
                "kind = \"csv\"",
                "kind = \"http-json\"\nurl = \"http://cms.example.org/api\"",
            ),
            "[source] url",
            "plain http is allowed only to loopback",
        ),
        (
            BASE.replace(
                "kind = \"csv\"",
                "kind = \"http-json\"\nurl = \"https://cms.example.org/api\"",
            ),
            "[fields] birth_date",
            "is not a JSON pointer",
        ),
        (
            BASE.replace(
                "kind = \"csv\"",
                "kind = \"csv\"\nschedule = \"0 * * * * *\"",
            ),
            "[source] url",
            "are for API sources",
        ),
    ]);
}

#[test]
fn an_unknown_key_is_refused_with_its_line() {
    let e = load_str(&BASE.replace("[fields]", "[fields]\ncolour = \"kleur\"")).unwrap_err();
    assert_eq!(e.line, Some(7), "{e}");
    let e = load_str(&BASE.replace("kind = \"csv\"", "kind = \"csv\"\nencodng = \"utf-8\""))
        .unwrap_err();
    assert!(
        e.message.contains("unknown field `encodng`") && e.line == Some(5),
        "{e}"
    );
}

mod dates {
    use super::super::load::date_format;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    const PATTERNS: [&str; 5] = ["%d-%m-%Y", "%Y-%m-%d", "%Y%m%d", "%d/%m/%Y", "%d.%m.%Y"];

    /// The fast path for numeric patterns must read exactly what chrono
    /// reads: the same date, or nothing.
    fn agrees(pattern: &str, value: &str) {
        let ours = date_format(pattern).unwrap().parse(value);
        let chrono = NaiveDate::parse_from_str(value, pattern).ok();
        assert_eq!(ours, chrono, "{pattern} on {value:?}");
    }

    #[test]
    fn the_fast_path_reads_what_chrono_reads() {
        for p in PATTERNS {
            assert!(date_format(p).unwrap().fixed.is_some(), "{p} is numeric");
        }
        for p in ["%d %m %Y", "%e-%m-%Y", "%d %b %Y", "%Y-%m-%dT%H:%M:%S"] {
            assert!(date_format(p).unwrap().fixed.is_none(), "{p} is for chrono");
            agrees(p, "04 03 2012");
        }
        for p in PATTERNS {
            for v in [
                "04-03-2012",
                "2012-03-04",
                "20120304",
                "04/03/2012",
                "04.03.2012",
                "4-3-2012",
                "31-02-2014",
                "29-02-2016",
                "29-02-2015",
                "00-01-2012",
                "04-13-2012",
                "04-03-12",
                "04-03-2012 ",
                " 04-03-2012",
                "04-03-20120",
                "+2012-03-04",
                "2012-3-4",
                "",
                "--",
                "0a-03-2012",
                "04-03-２０１２",
            ] {
                agrees(p, v);
            }
        }
    }

    proptest! {
        #[test]
        fn the_fast_path_agrees_on_anything(
            p in 0usize..PATTERNS.len(),
            v in "[0-9./-]{0,12}",
        ) {
            agrees(PATTERNS[p], &v);
        }

        #[test]
        fn the_fast_path_agrees_on_real_dates(p in 0usize..PATTERNS.len(), days in 0i32..80_000) {
            let d = NaiveDate::from_num_days_from_ce_opt(700_000 + days).unwrap();
            agrees(PATTERNS[p], &d.format(PATTERNS[p]).to_string());
        }
    }
}

/// Regression (issue 10): the professionals lookup file was read whole into
/// memory, outside the guard every export goes through. It is streamed
/// through that guard now: a binary file and a file without line breaks are
/// refused the way an export is, and a valid one still loads.
#[test]
fn the_professionals_file_is_streamed_through_the_input_guard() {
    let load_with = |table: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mw.csv"), table).unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(
            &path,
            BASE.replace(
                "professional_name = { default = \"A. Vries\" }\nprofessional_email = { default = \"a@x.example\" }\n",
                "",
            ) + "\n[professionals]\nfile = \"mw.csv\"\n",
        )
        .unwrap();
        load(&path).map(|m| m.professionals.map(|t| t.len()))
    };
    assert_eq!(
        load_with(b"\xEF\xBB\xBFid;name;phone;email\nE1;A. Vries;;a@x.example\n").unwrap(),
        Some(1)
    );
    let binary = load_with(b"id;name\nE1;A\0B\n").unwrap_err().to_string();
    assert!(binary.contains("binary"), "{binary}");
    let endless = [b"id;name\nE1;".as_slice(), &vec![b'x'; 2 * 1024 * 1024]].concat();
    let endless = load_with(&endless).unwrap_err().to_string();
    assert!(endless.contains("without a line break"), "{endless}");
    // The mapping's encoding (UTF-8 here) holds for the table too, strictly.
    let bad = load_with(b"id;name\nE1;\xFF\xFE\xFD\n")
        .unwrap_err()
        .to_string();
    assert!(bad.contains("is not valid UTF-8"), "{bad}");
}
