//! `cargo bench --bench check`: what `visync check` costs on a 1,000,000-row
//! CaseFlow export, set against the bare cost of the same work in-process
//! (streaming the CSV, decoding Windows-1252, the 11-proof, two date parses).
//! That bare cost is the floor no dry run can beat, so the ratio says how much
//! the pipeline adds on top of reading the file. See docs/benchmarks.md.
//!
//! Run without `--bench` (as `cargo test --all-targets` does) it makes 1,000
//! rows and runs once: a smoke test that the generator, config and binary still
//! fit together, not a measurement.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{Days, NaiveDate};
use encoding_rs::WINDOWS_1252;

/// Must equal the first line of the shipped sample (checked at start), so the
/// bench export is one the shipped mapping reads.
const HEADER: &str = "BSN;Achternaam;Tussenvoegsel;Voorletters;Voornamen;Geboortedatum;\
                      Geslacht;MedewerkerCode;Dossiernummer;Startdatum;Einddatum;Status;\
                      MeldenVIR;Hulpvraag";
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const RUNS: usize = 3;

// Family names with their prefix (Tussenvoegsel) before the last space.
const FAMILY: &str = "Jansen,de Vries,van Dijk,Öztürk,Müller,Çelik,van der Meer,Ünal,Bakker,Saïdi";
const GIVEN: &str = "Noël,Zoë,Daan,Anaïs,Sem,Emre,Fleur,Björn,Lotte";
// Only codes that have a name and a phone or e-mail in
// caseflow-medewerkers.csv, so good rows become signals.
const EMPLOYEES: [&str; 3] = ["EMP-0042", "EMP-0043", "EMP-0050"];
// Free text the mapping never reads; one holds the delimiter, so quoting is
// exercised too.
const CONCERN: &str = "|Schoolverzuim|Zorgen over thuis|\"Ruzie; één ouder weg\"";

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` does not.
    let bench = std::env::args().any(|a| a == "--bench");
    let (rows, runs, dir) = if bench {
        (1_000_000, RUNS, "bench-data")
    } else {
        (1_000, 1, "bench-data-smoke")
    };
    let sample = fs::read(format!("{ROOT}/samples/caseflow/export-20261128.csv")).expect("sample");
    let header = WINDOWS_1252
        .decode(sample.split(|&b| b == b'\n').next().unwrap_or_default())
        .0;
    assert_eq!(header.trim_end(), HEADER, "the sample's header changed");

    // CARGO_TARGET_TMPDIR is <target>/tmp; its parent follows CARGO_TARGET_DIR.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("a target dir");
    let data = target.join(dir);
    // The export gets a drop folder of its own: `check` reads every file in
    // the watched folder, so a config or report beside the export would be
    // taken for an export too (and fail the run as unreadable).
    let drop = data.join("caseflow");
    let export = drop.join("export-20261128.csv");
    fs::create_dir_all(&drop).expect("create the data folder");
    if count_rows(&export) == Some(rows) {
        println!("reusing {}", export.display());
    } else {
        let t = Instant::now();
        generate(&export, rows).expect("write the export");
        let secs = t.elapsed().as_secs_f64();
        println!("generated {} in {secs:.1} s", export.display());
    }
    let config = write_config(&data, &drop);
    let mib = fs::metadata(&export).expect("stat the export").len() as f64 / 1024.0 / 1024.0;

    let mut bare = f64::INFINITY;
    for _ in 0..runs {
        let t = Instant::now();
        let tally = bare_pass(&export);
        let secs = t.elapsed().as_secs_f64();
        bare = bare.min(secs);
        assert_eq!(tally.rows, rows, "the bare pass read every row");
        let (bsns, dates) = (tally.bsn_ok, tally.dates_ok);
        println!("bare:  {secs:.2} s; {bsns} valid BSNs, {dates} valid dates");
    }
    let (mut check, mut rss_kib) = (f64::INFINITY, 0.0);
    for _ in 0..runs {
        let (secs, kib) = run_check(&config, &data, rows);
        check = check.min(secs);
        rss_kib = f64::max(rss_kib, kib);
    }

    let (ratio, rss) = (check / bare, rss_kib / 1024.0);
    let (bare_rate, check_rate) = (rows as f64 / bare, rows as f64 / check);
    let ratio_ok = if ratio <= 3.0 { "ok" } else { "OVER" };
    let rss_ok = if rss < 256.0 { "ok" } else { "OVER" };
    println!("\nrows                {rows:>10}");
    println!("file size (MiB)     {mib:>10.1}");
    println!("bare (s)            {bare:>10.2}   {bare_rate:>9.0} rows/s");
    println!("check (s)           {check:>10.2}   {check_rate:>9.0} rows/s");
    println!("ratio check/bare    {ratio:>10.2}   target 3x: {ratio_ok}");
    println!("peak RSS (MiB)      {rss:>10.1}   target 256: {rss_ok}");
}

/// The data rows of an existing export (its lines less the header).
fn count_rows(path: &Path) -> Option<u64> {
    let mut lines = BufReader::new(File::open(path).ok()?).split(b'\n');
    lines
        .try_fold(0u64, |n, l| l.map(|_| n + 1))
        .ok()?
        .checked_sub(1)
}

/// Streams the export to a `.tmp` name (which `check` ignores) and renames it
/// when complete, so an interrupted run never leaves a short file to reuse.
fn generate(path: &Path, rows: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("csv.tmp");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    write!(out, "{HEADER}\r\n")?;
    let families: Vec<&str> = FAMILY.split(',').collect();
    let givens: Vec<&str> = GIVEN.split(',').collect();
    let concerns: Vec<&str> = CONCERN.split('|').collect();
    let mut rng = SplitMix(0x5eed);
    let mut bsns = (100_000_000u32..)
        .map(|n| n.to_string())
        .filter(|s| eleven_proof(s.as_bytes()));
    let birth0 = NaiveDate::from_ymd_opt(2005, 1, 1).expect("a date");
    let start0 = NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date");
    let mut line = String::new();
    for i in 0..rows {
        let mut bsn = bsns.next().expect("enough BSNs");
        // 5844 days: 1 January 2005 up to 31 December 2020.
        let mut birth = (birth0 + Days::new(rng.below(5844)))
            .format("%d-%m-%Y")
            .to_string();
        // About 1% bad rows: half with a wrong check digit (one digit off
        // always fails the 11-proof), half with a date that does not exist.
        match i % 200 {
            37 => {
                let last = bsn.pop().expect("nine digits") as u8 - b'0';
                bsn.push(char::from(b'0' + (last + 1) % 10));
            }
            137 => birth = "31-02-2014".into(),
            _ => {}
        }
        // About 2% without the decision to register: skipped, not rejected.
        let melden = if i % 50 == 11 { "N" } else { "J" };
        let name = rng.pick(&families);
        let (prefix, family) = name.rsplit_once(' ').unwrap_or(("", name));
        let given = rng.pick(&givens);
        let initial = given.chars().next().expect("a name");
        // 331 days from 1 January: the last is 27 November, the day before today.
        let start = (start0 + Days::new(rng.below(331))).format("%d-%m-%Y");
        let gender = rng.pick(&["M", "V", "X"]);
        let (employee, concern) = (rng.pick(&EMPLOYEES), rng.pick(&concerns));
        line.clear();
        let _ = write!(
            line,
            "{bsn};{family};{prefix};{initial}.;{given};{birth};{gender};{employee};D-{};{start};;\
             Actief;{melden};{concern}\r\n",
            i + 1
        );
        let (bytes, _, unmappable) = WINDOWS_1252.encode(&line);
        assert!(!unmappable, "not Windows-1252: {line}");
        out.write_all(&bytes)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(tmp, path)
}

/// Like samples/visync.toml, with the one source that reads the export.
fn write_config(data: &Path, drop: &Path) -> PathBuf {
    let quote = |s: String| toml::Value::String(s).to_string();
    let db = data.join("state/visync.db");
    let state = quote(format!("sqlite://{}", db.display()));
    let mapping = quote(format!("{ROOT}/mappings/caseflow-csv.toml"));
    let watch = quote(drop.display().to_string());
    // Rules and policy as in the samples (and the defaults), spelled out
    // because they decide which rows are rejected.
    let text = format!(
        r#"# Written by benches/check.rs on every run.
organisation = {{ code = "01234567", name = "Jeugdhulp Voorbeeld" }}
state = {{ url = {state} }}
index = {{ url = "embedded" }}
rules = {{ max_active_years = 2, archive_years = 5, age_limit = 23 }}
policy = {{ renewal_notice_days = 30, auto_renew = false, max_withdraw_fraction = 0.10 }}

[[sources]]
mapping = {mapping}
watch = {watch}
settle_secs = 10
"#
    );
    let path = data.join("visync.toml");
    fs::write(&path, text).expect("write the config");
    path
}

#[derive(Default)]
struct Tally {
    rows: u64,
    bsn_ok: u64,
    dates_ok: u64,
}

/// The floor: the reading and checking `check` cannot avoid, and nothing else.
/// Every field is decoded into a reused owned buffer, as the connector's
/// reader does with the fields it reads.
fn bare_pass(path: &Path) -> Tally {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_path(path)
        .expect("open");
    let mut record = csv::ByteRecord::new();
    let mut fields: Vec<String> = Vec::new();
    let mut tally = Tally::default();
    while reader.read_byte_record(&mut record).expect("a CSV record") {
        fields.resize(record.len(), String::new());
        for (out, raw) in fields.iter_mut().zip(record.iter()) {
            out.clear();
            out.push_str(&WINDOWS_1252.decode_without_bom_handling(raw).0);
        }
        tally.rows += 1;
        tally.bsn_ok += u64::from(eleven_proof(fields[0].as_bytes()));
        for date in [&fields[5], &fields[9]] {
            tally.dates_ok += u64::from(NaiveDate::parse_from_str(date, "%d-%m-%Y").is_ok());
        }
    }
    std::hint::black_box(tally)
}

/// One `visync check` under /usr/bin/time: (wall seconds, peak RSS in KiB).
fn run_check(config: &Path, data: &Path, rows: u64) -> (f64, f64) {
    let (times, report) = (data.join("time.txt"), data.join("check-report.json"));
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %M", "-o"])
        .arg(&times)
        .arg(env!("CARGO_BIN_EXE_visync"))
        .args(["--today", "2026-11-28", "check", "--json", "-c"])
        .arg(config)
        .stdout(File::create(&report).expect("create the report file"))
        .output()
        .expect("run /usr/bin/time");
    // 1 is expected (the bad rows are rejected); 2 or a signal is a failure.
    if !matches!(out.status.code(), Some(0 | 1)) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        panic!("visync check failed ({}):\n{stderr}", out.status);
    }
    // A fast run that read nothing must not pass for a fast run.
    let report: serde_json::Value =
        serde_json::from_reader(BufReader::new(File::open(&report).expect("the report")))
            .expect("a JSON report");
    let (s, plan) = (&report["sources"][0], &report["plan"]);
    assert_eq!(s["records"], rows, "check read every row");
    // GNU time writes "Command exited with non-zero status 1" first.
    let times = fs::read_to_string(&times).expect("read the time output");
    let last = times.lines().last().unwrap_or_default().split_whitespace();
    let nums: Vec<f64> = last.map(|v| v.parse().expect("a number")).collect();
    let (secs, kib) = (nums[0], nums[1]);
    println!(
        "check: {secs:.2} s, {kib} KiB; {} accepted, {} rejected, {} skipped; {} to register",
        s["accepted"], s["rejected"], s["skipped"], plan["register"]
    );
    (secs, kib)
}

/// The 11-proof on nine ASCII digits: 9·d1 + 8·d2 + … + 2·d8 − d9 ≡ 0 (mod 11).
fn eleven_proof(d: &[u8]) -> bool {
    let digit = |i: usize| i32::from(d[i]) - i32::from(b'0');
    let sum = || (0..8).map(|i| (9 - i as i32) * digit(i)).sum::<i32>() - digit(8);
    d.len() == 9 && d.iter().all(u8::is_ascii_digit) && sum() % 11 == 0
}

/// A fixed-seed generator (splitmix64), so every machine benchmarks the same file.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}
