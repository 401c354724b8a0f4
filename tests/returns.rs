//! Matches back into the case-management system: two organisations on one
//! reference index, each with its own visync and return folder.

mod common;

use std::path::Path;

use common::*;

const OTHER: &str = "07654321";
const OTHER_TOKEN: &str = "other-token";

fn mapping() -> std::path::PathBuf {
    repo().join("tests/fixtures/cases/csv-codes/mapping.toml")
}

/// One export: (bsn, birth date, professional code, professional name, case).
fn export(rows: &[(&str, &str, &str, &str, &str)]) -> String {
    let mut s =
        String::from("bsn,achternaam,geboren,geslacht,mw,mw_naam,mw_mail,dossier,start,eind,vir\n");
    for (bsn, born, mw, name, case) in rows {
        s.push_str(&format!(
            "{bsn},Kind,{born},V,{mw},{name},{}@x.example,{case},01-11-2026,,J\n",
            mw.to_lowercase()
        ));
    }
    s
}

const RETURNS: &str = "\n[returns.codes]\nkind = \"folder\"\npath = \"out\"\nformat = \"csv\"\n\n[policy]\nmax_withdraw_fraction = 1.0\n";

fn site(sim: &Sim, org: &str, token: &str) -> Site {
    let s = Site::for_org(sim, org, token, &mapping(), RETURNS);
    std::fs::create_dir(s.dir.path().join("out")).unwrap();
    s
}

/// Every row of every notice file in a return folder, as header → value maps.
fn delivered(site: &Site) -> Vec<std::collections::HashMap<String, String>> {
    rows_in(&site.dir.path().join("out"))
}

fn rows_in(dir: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("visync-notices-") && name.ends_with(".csv"),
            "unexpected file {name}"
        );
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            bytes.starts_with(&[0xEF, 0xBB, 0xBF]),
            "CSV starts with a BOM"
        );
        let mut r = csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(&bytes[3..]);
        let headers = r.headers().unwrap().clone();
        for row in r.records() {
            let row = row.unwrap();
            let mut m: std::collections::HashMap<String, String> = headers
                .iter()
                .zip(row.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect();
            m.insert("file".into(), name.clone());
            out.push(m);
        }
    }
    out
}

fn of_kind<'a>(
    rows: &'a [std::collections::HashMap<String, String>],
    kind: &str,
) -> Vec<&'a std::collections::HashMap<String, String>> {
    rows.iter().filter(|r| r["kind"] == kind).collect()
}

#[test]
fn a_child_registered_by_two_organisations_is_a_match_on_both_sides_until_one_withdraws() {
    let other = format!("{OTHER}={OTHER_TOKEN}");
    let sim = Sim::start(&["--org", &other]);
    let (a, b) = (site(&sim, ORG, TOKEN), site(&sim, OTHER, OTHER_TOKEN));
    let kids = bsns(2);
    a.drop_file(
        "1.csv",
        export(&[
            (&kids[0], "04-03-2012", "EA", "A. Vries", "A-1"),
            (&kids[1], "04-03-2012", "EA", "A. Vries", "A-2"),
        ])
        .as_bytes(),
    );
    b.drop_file(
        "1.csv",
        export(&[(&kids[0], "04-03-2012", "EB", "B. Bos", "B-9")]).as_bytes(),
    );
    assert_eq!(a.run(&["run", "--once"]).code, 0);
    let rb = b.run(&["run", "--once"]);
    assert_eq!(rb.code, 0, "{}", rb.stderr);
    assert_eq!(
        a.run(&["run", "--once"]).code,
        0,
        "A pulls the match made by B's registration"
    );

    let (ra, rb) = (delivered(&a), delivered(&b));
    let ma = of_kind(&ra, "match");
    assert_eq!(ma.len(), 1, "{ra:?}");
    assert_eq!(ma[0]["case_ref"], "A-1", "next to the right case");
    assert_eq!(ma[0]["professional_id"], "EA");
    assert_eq!(ma[0]["counterpart_name"], "B. Bos");
    assert_eq!(ma[0]["counterpart_email"], "eb@x.example");
    let mb = of_kind(&rb, "match");
    assert_eq!(mb.len(), 1, "{rb:?}");
    assert_eq!(mb[0]["case_ref"], "B-9");
    assert_eq!(mb[0]["counterpart_name"], "A. Vries");
    // Each registration asks the CMS to tell the family.
    assert_eq!(of_kind(&ra, "notify_subject").len(), 2);
    assert_eq!(of_kind(&rb, "notify_subject").len(), 1);

    // A's involvement with the shared child ends: B hears the match is over.
    a.drop_file(
        "2.csv",
        export(&[(&kids[1], "04-03-2012", "EA", "A. Vries", "A-2")]).as_bytes(),
    );
    assert_eq!(a.run(&["run", "--once"]).code, 0);
    assert_eq!(b.run(&["run", "--once"]).code, 0);
    let ended = of_kind(&delivered(&b), "match_ended").len();
    assert_eq!(ended, 1);
    // Nothing was delivered twice.
    let all = delivered(&b);
    let mut ids: Vec<_> = all
        .iter()
        .map(|r| (r["notice_id"].clone(), r["counterpart_name"].clone()))
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a notice row was delivered twice");
}

#[test]
fn siblings_at_two_organisations_are_a_family_match() {
    let kids = bsns(2);
    let families = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        families.path(),
        format!("{},F-1\n{},F-1\n", kids[0], kids[1]),
    )
    .unwrap();
    let other = format!("{OTHER}={OTHER_TOKEN}");
    let sim = Sim::start(&[
        "--org",
        &other,
        "--families",
        families.path().to_str().unwrap(),
    ]);
    let (a, b) = (site(&sim, ORG, TOKEN), site(&sim, OTHER, OTHER_TOKEN));
    a.drop_file(
        "1.csv",
        export(&[(&kids[0], "04-03-2012", "EA", "A. Vries", "A-1")]).as_bytes(),
    );
    b.drop_file(
        "1.csv",
        export(&[(&kids[1], "05-06-2014", "EB", "B. Bos", "B-1")]).as_bytes(),
    );
    assert_eq!(a.run(&["run", "--once"]).code, 0);
    assert_eq!(b.run(&["run", "--once"]).code, 0);
    assert_eq!(a.run(&["run", "--once"]).code, 0);
    let fa = delivered(&a);
    let fam = of_kind(&fa, "family_match");
    assert_eq!(fam.len(), 1, "{fa:?}");
    assert_eq!(
        (
            fam[0]["case_ref"].as_str(),
            fam[0]["counterpart_name"].as_str()
        ),
        ("A-1", "B. Bos")
    );
    assert_eq!(of_kind(&delivered(&b), "family_match").len(), 1);
}

#[test]
fn notify_subject_names_who_must_be_told_by_age_on_the_start_date() {
    let sim = Sim::start(&[]);
    let a = site(&sim, ORG, TOKEN);
    let kids = bsns(4);
    // Start 01-11-2026: 11 (12 tomorrow), 12 today, 15 (16 tomorrow), 16 today.
    a.drop_file(
        "1.csv",
        export(&[
            (&kids[0], "02-11-2014", "EA", "A. Vries", "C-11"),
            (&kids[1], "01-11-2014", "EA", "A. Vries", "C-12"),
            (&kids[2], "02-11-2010", "EA", "A. Vries", "C-15"),
            (&kids[3], "01-11-2010", "EA", "A. Vries", "C-16"),
        ])
        .as_bytes(),
    );
    assert_eq!(a.run(&["run", "--once"]).code, 0);
    let rows = delivered(&a);
    let audience = |case: &str| {
        rows.iter()
            .find(|r| r["case_ref"] == case && r["kind"] == "notify_subject")
            .map(|r| r["audience"].clone())
    };
    assert_eq!(audience("C-11").as_deref(), Some("parents"));
    assert_eq!(audience("C-12").as_deref(), Some("parents_and_youth"));
    assert_eq!(audience("C-15").as_deref(), Some("parents_and_youth"));
    assert_eq!(audience("C-16").as_deref(), Some("youth"));
}

#[test]
fn a_crash_after_writing_a_delivery_redelivers_the_same_notices_and_loses_none() {
    let sim = Sim::start(&[]);
    let a = site(&sim, ORG, TOKEN);
    let kids = bsns(3);
    a.drop_file(
        "1.csv",
        export(&[
            (&kids[0], "04-03-2012", "EA", "A", "C-1"),
            (&kids[1], "04-03-2012", "EA", "A", "C-2"),
            (&kids[2], "04-03-2012", "EA", "A", "C-3"),
        ])
        .as_bytes(),
    );
    let crashed = visync_env(
        &["run", "--once", "-c", a.config.to_str().unwrap()],
        &[("VISYNCTEST_CRASH_AT", "after-return-write")],
    );
    assert_ne!(crashed.code, 0, "the crash point was reached");
    let first = delivered(&a);
    assert_eq!(first.len(), 3, "the file was complete before the crash");
    assert_eq!(a.run(&["run", "--once"]).code, 0);
    let all = delivered(&a);
    let files: std::collections::BTreeSet<_> = all.iter().map(|r| r["file"].clone()).collect();
    assert_eq!(files.len(), 2, "delivered again, in a second file");
    let ids: std::collections::BTreeSet<_> = all.iter().map(|r| r["notice_id"].clone()).collect();
    assert_eq!(ids.len(), 3, "the same three notices, none lost, none new");
    // Delivered now: a third pass writes nothing.
    assert_eq!(a.run(&["run", "--once"]).code, 0);
    assert_eq!(delivered(&a).len(), 6);
}

#[test]
fn a_missing_return_folder_keeps_notices_until_it_is_fixed() {
    let sim = Sim::start(&[]);
    let a = site(&sim, ORG, TOKEN);
    std::fs::remove_dir(a.dir.path().join("out")).unwrap();
    let kids = bsns(1);
    a.drop_file(
        "1.csv",
        export(&[(&kids[0], "04-03-2012", "EA", "A", "C-1")]).as_bytes(),
    );
    let run = a.run_env(&["run", "--once"], NO_BACKOFF);
    assert_eq!(
        run.code, 1,
        "undelivered notices fail the pass\n{}",
        run.stderr
    );
    let status = a.run(&["status"]);
    assert!(
        status.stdout.contains("NOTICES WAITING codes: 1"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("does not exist"),
        "{}",
        status.stdout
    );
    std::fs::create_dir(a.dir.path().join("out")).unwrap();
    // With a zero backoff unit the retry is due at once: the next pass
    // delivers, with no waiting on a real backoff.
    let code = a.run_env(&["run", "--once"], NO_BACKOFF).code;
    assert_eq!(code, 0);
    assert_eq!(of_kind(&delivered(&a), "notify_subject").len(), 1);
}

#[test]
fn notices_for_signals_this_installation_does_not_know_are_kept_and_reported() {
    let other = format!("{OTHER}={OTHER_TOKEN}");
    let sim = Sim::start(&["--org", &other]);
    let (a, b) = (site(&sim, ORG, TOKEN), site(&sim, OTHER, OTHER_TOKEN));
    let kids = bsns(1);
    a.drop_file(
        "1.csv",
        export(&[(&kids[0], "04-03-2012", "EA", "A", "A-1")]).as_bytes(),
    );
    b.drop_file(
        "1.csv",
        export(&[(&kids[0], "04-03-2012", "EB", "B", "B-1")]).as_bytes(),
    );
    assert_eq!(a.run(&["run", "--once"]).code, 0);
    assert_eq!(b.run(&["run", "--once"]).code, 0);
    // A's state is lost (restored from an old backup): a fresh installation
    // of the same organisation reads the feed.
    let restored = site(&sim, ORG, TOKEN);
    assert_eq!(restored.run(&["run", "--once"]).code, 0);
    let status = restored.run(&["status", "--json"]).json();
    assert!(
        status["notices"]["unroutable"].as_u64().unwrap() >= 1,
        "{status}"
    );
    assert!(
        delivered(&restored).is_empty(),
        "nothing is delivered without its case"
    );
}

/// A CMS endpoint on loopback: answers 500 to the first POST, then 200,
/// and hands over every body it accepted.
fn cms_endpoint() -> (String, std::sync::mpsc::Receiver<String>) {
    cms_endpoint_failing(1, "500 Internal Server Error")
}

/// A CMS endpoint on loopback that answers `failing` POSTs with `status`,
/// then 200; the bodies it accepted arrive on the channel.
fn cms_endpoint_failing(
    failing: usize,
    status: &'static str,
) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { break };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            let ok = n >= failing;
            let status = if ok { "200 OK" } else { status };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            if ok && tx.send(String::from_utf8(body).unwrap()).is_err() {
                break;
            }
        }
    });
    (addr, rx)
}

/// Retries due at once, the same waits every run: no test waits on a real
/// backoff, and a failure reproduces.
const NO_BACKOFF: &[(&str, &str)] = &[
    ("VISYNCTEST_BACKOFF_UNIT_MS", "0"),
    ("VISYNCTEST_JITTER_SEED", "1"),
];

#[test]
fn an_http_channel_is_retried_until_the_cms_acknowledges() {
    let (addr, bodies) = cms_endpoint();
    let sim = Sim::start(&[]);
    let extra = format!("\n[returns.codes]\nkind = \"http\"\nurl = \"http://{addr}/notices\"\n");
    let a = Site::new(&sim, &mapping(), &extra);
    let kids = bsns(1);
    a.drop_file(
        "1.csv",
        export(&[(&kids[0], "04-03-2012", "EA", "A", "C-1")]).as_bytes(),
    );
    let first = a.run_env(&["run", "--once"], NO_BACKOFF);
    assert_eq!(
        first.code, 1,
        "the CMS failed: the pass says so\n{}",
        first.stderr
    );
    assert!(first.stderr.contains("500"), "{}", first.stderr);
    // The retry is due at once (a zero backoff unit): the next pass sends it.
    let second = a.run_env(&["run", "--once"], NO_BACKOFF);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let body: serde_json::Value = serde_json::from_str(
        &bodies
            .recv_timeout(std::time::Duration::from_secs(1))
            .unwrap(),
    )
    .unwrap();
    let n = &body["notices"][0];
    assert_eq!(n["kind"], "notify_subject");
    assert_eq!(n["case_ref"], "C-1");
    assert_eq!(n["audience"], "parents_and_youth");
    assert_eq!(
        a.run(&["status", "--json"]).json()["notices"]["delivered"],
        1
    );
}

/// Regression (issue 10): the HTTP channel retried a refusal without end. A
/// CMS that keeps answering 400 gets the notice five times, then it is
/// quarantined, shown by `status`, and tried again after `release`.
#[test]
fn an_http_channel_that_keeps_refusing_quarantines_the_notice_until_release() {
    let (addr, bodies) = cms_endpoint_failing(5, "400 Bad Request");
    let sim = Sim::start(&[]);
    let extra = format!("\n[returns.codes]\nkind = \"http\"\nurl = \"http://{addr}/notices\"\n");
    let a = Site::new(&sim, &mapping(), &extra);
    let kids = bsns(1);
    a.drop_file(
        "1.csv",
        export(&[(&kids[0], "04-03-2012", "EA", "A", "C-1")]).as_bytes(),
    );
    for _ in 0..5 {
        assert_eq!(a.run_env(&["run", "--once"], NO_BACKOFF).code, 1);
    }
    let status = a.run(&["status", "--json"]).json();
    assert_eq!(status["notices"]["quarantined"], 1, "{status}");
    assert_eq!(status["notices"]["pending"], 0, "{status}");
    let text = a.run(&["status"]).stdout;
    assert!(text.contains("QUARANTINED NOTICES: 1"), "{text}");
    // Quarantined: a pass no longer tries it (the endpoint would now accept).
    a.run_env(&["run", "--once"], NO_BACKOFF);
    assert!(bodies.try_recv().is_err(), "a quarantined notice was sent");
    let release = a.run(&["release", "--source", "codes"]);
    assert_eq!(release.code, 0, "{}", release.stderr);
    assert!(
        release.stdout.contains("released 1 quarantined notices"),
        "{}",
        release.stdout
    );
    assert_eq!(a.run_env(&["run", "--once"], NO_BACKOFF).code, 0);
    let body = bodies
        .recv_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    assert!(body.contains("notify_subject"), "{body}");
}
