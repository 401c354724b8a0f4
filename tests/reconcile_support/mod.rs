//! What the reconciliation tests share: exports for the csv-codes mapping,
//! the reference index's own view (its listing, its clock) and a read-only
//! look into the state store.

#![allow(dead_code)]

use std::path::PathBuf;

use super::common::*;

pub fn mapping() -> PathBuf {
    repo().join("tests/fixtures/cases/csv-codes/mapping.toml")
}

const HEADER: &str = "bsn,achternaam,geboren,geslacht,mw,mw_naam,mw_mail,dossier,start,eind,vir\n";

/// One child: (bsn, birth date DD-MM-YYYY, professional, case).
pub type Row<'a> = (&'a str, &'a str, &'a str, &'a str);

/// A snapshot listing `rows`, all starting 01-11-2026 without an end date.
pub fn export(rows: &[Row]) -> String {
    let mut s = String::from(HEADER);
    for (bsn, born, mw, case) in rows {
        s.push_str(&format!(
            "{bsn},Kind,{born},V,{mw},{mw} Naam,{}@x.example,{case},01-11-2026,,J\n",
            mw.to_lowercase()
        ));
    }
    s
}

/// Born 04-03-2012: far from the age limit on every date the tests use.
pub const YOUNG: &str = "04-03-2012";

/// Young children, each with professional E1 and case D.
pub fn young(kids: &[String]) -> Vec<Row<'_>> {
    kids.iter()
        .map(|b| (b.as_str(), YOUNG, "E1", "D"))
        .collect()
}

/// Drops `rows` as the snapshot `file` and takes it (`pass`).
pub fn take(site: &Site, file: &str, rows: &[Row]) {
    site.drop_file(file, export(rows).as_bytes());
    pass(site);
}

/// A site (`site(sim, extra)`) that took a first snapshot of `n` young
/// children (`young`): the site and the children's BSNs.
pub fn site_with(sim: &Sim, extra: &str, n: usize) -> (Site, Vec<String>) {
    let site = site(sim, extra);
    let kids = bsns(n);
    take(&site, "1.csv", &young(&kids));
    (site, kids)
}

/// A site with a CSV return folder `out/` and any extra config.
pub fn site(sim: &Sim, extra: &str) -> Site {
    let returns = "\n[returns.codes]\nkind = \"folder\"\npath = \"out\"\nformat = \"csv\"\n";
    let s = Site::new(sim, &mapping(), &format!("{returns}{extra}"));
    std::fs::create_dir(s.dir.path().join("out")).unwrap();
    s
}

/// Takes the files and sends (exit 0 asserted).
pub fn pass(site: &Site) {
    let r = site.run(&["run", "--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// `visync reconcile --json ARGS`: its exit status and report.
pub fn reconcile(site: &Site, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["reconcile", "--json"];
    all.extend_from_slice(args);
    let r = site.run(&all);
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    (r.code, r.json())
}

/// Moves the reference index's calendar.
pub fn sim_clock(sim: &Sim, date: &str) {
    let body = format!("{{\"today\": \"{date}\"}}");
    let answer = http(&sim.addr, "POST", "/sim/clock", None, &body);
    assert!(answer.contains(date), "{answer}");
}

/// The organisation's signals as the index lists them (one page suffices
/// for a test): (signal_id, professional_id, end_date, state).
pub fn at_index(sim: &Sim, token: &str) -> Vec<(String, String, String, String)> {
    let body = http(
        &sim.addr,
        "GET",
        "/v1/signals?page_size=1000",
        Some(token),
        "",
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out: Vec<_> = v["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (
                f("signal_id"),
                f("professional_id"),
                f("end_date"),
                f("state"),
            )
        })
        .collect();
    out.sort();
    out
}

pub fn db(site: &Site) -> PathBuf {
    site.dir.path().join("state/visync.db")
}

/// Every row a query returns, each column as text (NULL as "").
pub fn query(site: &Site, sql: &str) -> Vec<Vec<String>> {
    site.query(sql)
}

/// (signal_id, state) of every signal in the store, by id.
pub fn states(site: &Site) -> Vec<(String, String)> {
    query(
        site,
        "SELECT signal_id, state FROM signals ORDER BY signal_id",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect()
}

/// The rows delivered to the return folder so far: header → value maps.
pub fn delivered(site: &Site) -> Vec<std::collections::HashMap<String, String>> {
    let dir = site.dir.path().join("out");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let mut r = csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(&bytes[3..]);
        let headers = r.headers().unwrap().clone();
        for row in r.records() {
            let row = row.unwrap();
            out.push(
                headers
                    .iter()
                    .zip(row.iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect(),
            );
        }
    }
    out
}

/// The state store's files, byte for byte (the database, its WAL and the
/// key), as a digest each, so that a difference names the file. An empty
/// WAL holds nothing: SQLite makes one for any reader of a WAL database
/// (ARCHITECTURE.md, "check and the state store"), so it is left out.
pub fn store_bytes(site: &Site) -> Vec<(String, u64, String)> {
    use sha2::Digest;
    let dir = site.dir.path().join("state");
    let mut out: Vec<(String, u64, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n == "visync.db" || n == "visync.db-wal" || n == "subject.key"
        })
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let digest = sha2::Sha256::digest(&bytes);
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                bytes.len() as u64,
                digest.iter().map(|b| format!("{b:02x}")).collect(),
            )
        })
        .collect();
    out.sort();
    out
}
