//! No personal data anywhere it should not be (issue: privacy defects).
//!
//! Whole passes at `RUST_LOG=trace` over exports that include broken ones (a
//! CSV without its header line, one whose BSN column has another name, a
//! binary file, XML truncated right after a child's name), then every
//! command an operator or a privacy officer runs. Every BSN of the fixtures
//! (9 digits, and 8 without a leading zero), every child's family name and
//! every value of a content column is then looked for:
//! - in every line every command printed, on stdout and stderr;
//! - in every row of every table of the state store, and in the raw bytes of
//!   its files (the database and its WAL): what was deleted must be gone;
//! - in what visync wrote next to the exports (`*.error.json`) and in the
//!   return files, which carry counterpart professionals, never a child.
//!
//! The exports themselves are moved to `processed/` and `rejected/` whole: a
//! CMS's file is not visync's to edit. The test checks that each file there is
//! byte for byte one of the exports dropped, so that nothing visync wrote
//! hides among them.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A child of the fixtures: what must never show.
struct Child {
    bsn: String,
    family: &'static str,
}

/// Values of content columns (`Hulpvraag`): never read, so never anywhere.
const CONTENT: [&str; 3] = [
    "Vermoeden van verwaarlozing",
    "Schoolverzuim sinds september",
    "Zorgen over ontwikkeling thuis",
];

/// A valid BSN with a leading zero, which exports write as 8 digits.
fn bsn_with_leading_zero() -> String {
    (12_345_600u64..)
        .map(|x| format!("{x:09}"))
        .find(|s| eleven_proof(s))
        .unwrap()
}

struct Fixture {
    children: Vec<Child>,
    /// A number in a BSN column that fails the 11-proof: still a child's.
    invalid_bsn: String,
    /// Every export dropped, by content, to recognise them in processed/ and rejected/.
    exports: Vec<Vec<u8>>,
}

fn caseflow_mapping() -> PathBuf {
    repo().join("mappings/caseflow-csv.toml")
}

fn jeugdnet_mapping() -> PathBuf {
    repo().join("mappings/jeugdnet-xml.toml")
}

const CSV_HEADER: &str = "BSN;Achternaam;Tussenvoegsel;Voorletters;Voornamen;Geboortedatum;Geslacht;MedewerkerCode;Dossiernummer;Startdatum;Einddatum;Status;MeldenVIR;Hulpvraag";

fn csv_row(bsn: &str, family: &str, birth: &str, emp: &str, case: &str, content: &str) -> String {
    format!("{bsn};{family};;K.;Kim;{birth};M;{emp};{case};01-11-2026;;Actief;J;{content}\n")
}

fn xml_dossier(bsn: &str, family: &str, gender: &str, case: &str, content: &str) -> String {
    format!(
        r#"    <jn:Dossier jn:nummer="{case}" vir="ja">
      <jn:Client>
        <jn:BSN>{bsn}</jn:BSN>
        <jn:Naam achternaam="{family}" voorletters="K."/>
        <jn:Geboortedatum>2013-04-05</jn:Geboortedatum>
        <jn:Geslacht>{gender}</jn:Geslacht>
      </jn:Client>
      <jn:Hulpverlener code="HV-7">
        <jn:Naam>L. Jansen</jn:Naam>
        <jn:Email>l.jansen@jeugdnet.example</jn:Email>
      </jn:Hulpverlener>
      <jn:Periode start="2026-10-01"/>
      <jn:Hulpvraag><![CDATA[{content}]]></jn:Hulpvraag>
    </jn:Dossier>
"#
    )
}

const XML_HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<jn:Export xmlns:jn=\"urn:jeugdnet:export:2\">\n  <jn:Dossiers>\n";
const XML_TAIL: &str = "  </jn:Dossiers>\n</jn:Export>\n";

/// Drops the exports into the two sources' folders.
fn drop_exports(caseflow: &Path, jeugdnet: &Path) -> Fixture {
    let mut b = bsns(6);
    let zero = bsn_with_leading_zero();
    let children = vec![
        Child {
            bsn: b.remove(0),
            family: "Zwartkruis",
        },
        Child {
            bsn: zero.clone(),
            family: "Oosterwijk",
        },
        Child {
            bsn: b.remove(0),
            family: "Vlasblom",
        },
        Child {
            bsn: b.remove(0),
            family: "Kloosterboer",
        },
        // In both systems: the match brings return files.
        Child {
            bsn: b.remove(0),
            family: "Hoogendoorn",
        },
        Child {
            bsn: b.remove(0),
            family: "Wijnbergen",
        },
    ];
    let invalid_bsn = "123456789".to_string();
    let c = &children;
    let mut good = format!("{CSV_HEADER}\n");
    good += &csv_row(
        &c[0].bsn,
        c[0].family,
        "04-03-2012",
        "EMP-0042",
        "D-1",
        CONTENT[0],
    );
    // An 8-digit BSN, as older numbers are exported.
    good += &csv_row(
        &zero[1..],
        c[1].family,
        "17-08-2015",
        "EMP-0043",
        "D-2",
        CONTENT[1],
    );
    // A birth date that is not a date: the message must not quote it.
    good += &csv_row(
        &c[2].bsn,
        c[2].family,
        "31-02-2014",
        "EMP-0042",
        "D-3",
        CONTENT[2],
    );
    // A number that fails the 11-proof.
    good += &csv_row(
        &invalid_bsn,
        c[3].family,
        "04-03-2012",
        "EMP-0042",
        "D-4",
        CONTENT[0],
    );
    // A professional the lookup table does not know: the id is not quoted either.
    good += &csv_row(
        &c[5].bsn,
        c[5].family,
        "04-03-2012",
        "Vlasblom",
        "D-6",
        CONTENT[1],
    );
    good += &csv_row(
        &c[4].bsn,
        c[4].family,
        "09-09-2011",
        "EMP-0050",
        "D-5",
        CONTENT[2],
    );
    // The same export without its header line: a child's row is the header.
    let headless: String = good.lines().skip(1).map(|l| format!("{l}\n")).collect();
    // A header whose BSN column has a name the mapping does not know.
    let renamed = good.replacen("BSN;", "Burgerservicenummer;", 1);
    // A binary file with a child's data in it.
    let mut binary = vec![0u8, 1, 2, 0xff];
    binary.extend_from_slice(csv_row(&c[0].bsn, c[0].family, "x", "y", "z", CONTENT[0]).as_bytes());

    let xml_good = format!(
        "{XML_HEAD}{}{}{XML_TAIL}",
        xml_dossier(&c[4].bsn, c[4].family, "M", "JN-1", CONTENT[0]),
        // A gender the map does not name: not quoted.
        xml_dossier(&c[3].bsn, c[3].family, "Q", "JN-2", CONTENT[1]),
    );
    // Truncated right after a child's name.
    let full = xml_dossier(&c[2].bsn, c[2].family, "V", "JN-3", CONTENT[2]);
    let cut = full.find(c[2].family).unwrap() + c[2].family.len();
    let xml_truncated = format!("{XML_HEAD}{}", &full[..cut]);
    // Broken inside the record, with an element named after a child.
    let xml_broken = format!(
        "{XML_HEAD}    <jn:Dossier jn:nummer=\"JN-4\" vir=\"ja\"><{}>{}</{}x></jn:Dossier>\n{XML_TAIL}",
        c[0].family, c[0].bsn, c[0].family
    );

    let mut exports = Vec::new();
    let mut put = |dir: &Path, name: &str, bytes: Vec<u8>| {
        std::fs::write(dir.join(name), &bytes).unwrap();
        exports.push(bytes);
    };
    // Oldest first is the order they are taken in; the good ones last.
    put(caseflow, "a-headless.csv", headless.into_bytes());
    put(caseflow, "b-renamed.csv", renamed.into_bytes());
    put(caseflow, "c-binary.csv", binary);
    put(caseflow, "d-good.csv", good.into_bytes());
    put(jeugdnet, "a-truncated.xml", xml_truncated.into_bytes());
    put(jeugdnet, "b-broken.xml", xml_broken.into_bytes());
    put(jeugdnet, "c-good.xml", xml_good.into_bytes());
    Fixture {
        children,
        invalid_bsn,
        exports,
    }
}

impl Fixture {
    /// Every string that must not be found, with what it is (for the message).
    fn needles(&self) -> Vec<(String, String)> {
        let mut n = Vec::new();
        for c in &self.children {
            n.push((c.bsn.clone(), format!("the BSN of {}", c.family)));
            if let Some(eight) = c.bsn.strip_prefix('0') {
                n.push((
                    eight.to_string(),
                    format!("the 8-digit BSN of {}", c.family),
                ));
            }
            n.push((c.family.to_string(), "a child's family name".into()));
        }
        n.push((self.invalid_bsn.clone(), "an invalid BSN".into()));
        n.push((
            "31-02-2014".into(),
            "a birth date that is not a date".into(),
        ));
        for v in CONTENT {
            n.push((v.to_string(), "a content column's value".into()));
        }
        n
    }
}

/// Where each needle was found, for one text.
fn hits(needles: &[(String, String)], place: &str, text: &[u8], out: &mut Vec<String>) {
    for (needle, what) in needles {
        if let Some(at) = memfind(text, needle.as_bytes()) {
            let from = at.saturating_sub(60);
            let to = (at + needle.len() + 60).min(text.len());
            out.push(format!(
                "{what} in {place}: …{}…",
                String::from_utf8_lossy(&text[from..to]).replace('\n', "⏎")
            ));
        }
    }
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Every row of every table, each column cast to bytes.
fn table_rows(db: &Path) -> Vec<(String, Vec<u8>)> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Row;
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .read_only(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(tables.len() > 5, "the store has its tables: {tables:?}");
        let mut out = Vec::new();
        for t in tables {
            let cols: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT name FROM pragma_table_info('{t}')"
            )))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
            let select = cols
                .iter()
                .map(|c| format!("CAST(\"{c}\" AS BLOB)"))
                .collect::<Vec<_>>()
                .join(", ");
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {select} FROM \"{t}\"")))
                .fetch_all(&pool)
                .await
                .unwrap();
            for (i, row) in rows.iter().enumerate() {
                let mut bytes = Vec::new();
                for c in 0..cols.len() {
                    if let Some(v) = row.get::<Option<Vec<u8>>, _>(c) {
                        bytes.extend_from_slice(&v);
                        bytes.push(b'|');
                    }
                }
                out.push((format!("table {t} row {}", i + 1), bytes));
            }
        }
        pool.close().await;
        out
    })
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files_below(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Looks for the needles in what a command printed.
fn printed(name: &str, r: &Run, needles: &[(String, String)], found: &mut Vec<String>) {
    hits(
        needles,
        &format!("stdout of {name}"),
        r.stdout.as_bytes(),
        found,
    );
    hits(
        needles,
        &format!("stderr of {name}"),
        r.stderr.as_bytes(),
        found,
    );
}

#[test]
fn no_personal_data_in_output_state_error_files_or_returns() {
    let sim = Sim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in [
        "caseflow",
        "jeugdnet",
        "returns/caseflow",
        "returns/jeugdnet",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("token"), format!("{TOKEN}\n")).unwrap();
    let config = root.join("visync.toml");
    std::fs::write(
        &config,
        format!(
            "[organisation]\ncode = \"{ORG}\"\nname = \"Test\"\n\n[state]\nurl = \"sqlite://state/visync.db\"\n\n\
             [index]\nurl = \"{}\"\ntoken_file = \"token\"\n\n\
             [[sources]]\nmapping = \"{}\"\nwatch = \"caseflow\"\nsettle_secs = 0\n\n\
             [[sources]]\nmapping = \"{}\"\nwatch = \"jeugdnet\"\nsettle_secs = 0\n\n\
             [returns.caseflow]\nkind = \"folder\"\npath = \"returns/caseflow\"\nformat = \"csv\"\n\n\
             [returns.jeugdnet]\nkind = \"folder\"\npath = \"returns/jeugdnet\"\nformat = \"xml\"\n",
            sim.url(),
            caseflow_mapping().display(),
            jeugdnet_mapping().display()
        ),
    )
    .unwrap();
    let fixture = drop_exports(&root.join("caseflow"), &root.join("jeugdnet"));
    let needles = fixture.needles();
    let cfg = config.to_str().unwrap();
    let trace = [("RUST_LOG", "trace")];
    let mut found = Vec::new();

    // The dry run, readable and as JSON, on every waiting file.
    let check = visync_env(&["check", "-c", cfg], &trace);
    assert_eq!(
        check.code, 2,
        "unreadable files make check exit 2:\n{}",
        check.stderr
    );
    assert!(
        check.stdout.contains("bsn_invalid") && check.stdout.contains("birth_date_invalid"),
        "the report names the rejections:\n{}",
        check.stdout
    );
    printed("check", &check, &needles, &mut found);
    let check_json = visync_env(&["check", "-c", cfg, "--json"], &trace);
    assert_eq!(
        check_json.json()["file_errors"].as_array().unwrap().len(),
        5
    );
    printed("check --json", &check_json, &needles, &mut found);

    // Passes until the queue is empty: every payload confirmed, so deleted.
    let mut passes = 0;
    loop {
        let run = visync_env(&["run", "--once", "-c", cfg], &trace);
        printed("run --once", &run, &needles, &mut found);
        passes += 1;
        let status = visync_env(&["status", "-c", cfg, "--json"], &[]);
        if status.json()["queue"]["ready"] == 0 {
            break;
        }
        assert!(passes < 4, "the queue does not drain:\n{}", run.stderr);
    }
    let returned = files_below(&root.join("returns"));
    assert!(
        returned.len() >= 2,
        "a match comes back to both systems: {returned:?}"
    );

    for (name, args) in [
        ("status", vec!["status"]),
        ("status --json", vec!["status", "--json"]),
        ("audit export", vec!["audit", "export"]),
        ("audit verify", vec!["audit", "verify"]),
    ] {
        let mut all = args.clone();
        all.extend(["-c", cfg]);
        let r = visync_env(&all, &trace);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        printed(name, &r, &needles, &mut found);
    }
    // Right of access: it may show what is held about the child asked for,
    // with the BSN masked; nothing about any other child.
    let asked = &fixture.children[0];
    let subject = visync_env(&["subject", "-c", cfg, "--bsn", &asked.bsn], &trace);
    assert_eq!(subject.code, 0, "{}", subject.stderr);
    let others: Vec<(String, String)> = needles
        .iter()
        .filter(|(n, _)| n != asked.family)
        .cloned()
        .collect();
    printed("subject", &subject, &others, &mut found);

    // The state store: every row of every table, then the files' raw bytes.
    let db = root.join("state/visync.db");
    for (place, bytes) in table_rows(&db) {
        hits(&needles, &place, &bytes, &mut found);
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(bytes) = std::fs::read(&path) {
            hits(
                &needles,
                &format!("the raw bytes of {}", path.display()),
                &bytes,
                &mut found,
            );
        }
    }

    // What visync wrote next to the exports, and the return files.
    let mut error_files = 0;
    for source in ["caseflow", "jeugdnet"] {
        for path in files_below(&root.join(source)) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            hits(
                &needles,
                &format!("the file name {}", path.display()),
                name.as_bytes(),
                &mut found,
            );
            let bytes = std::fs::read(&path).unwrap();
            if name.ends_with(".error.json") {
                error_files += 1;
                hits(&needles, &path.display().to_string(), &bytes, &mut found);
            } else if !fixture.exports.contains(&bytes) {
                found.push(format!(
                    "{} is not one of the exports dropped",
                    path.display()
                ));
            }
        }
    }
    assert_eq!(error_files, 5, "each unreadable export has its error file");
    for path in returned {
        let bytes = std::fs::read(&path).unwrap();
        hits(&needles, &path.display().to_string(), &bytes, &mut found);
    }

    assert!(
        found.is_empty(),
        "personal data where it must not be ({}):\n{}",
        found.len(),
        found.join("\n")
    );
}
