//! `cargo bench --bench check`: what `visync check` costs on a 1,000,000-row
//! CaseFlow export, set against the bare cost of the same work in-process
//! (streaming the CSV, decoding Windows-1252, the 11-proof, two date parses).
//! That bare cost is the floor no dry run can beat, so the ratio says how much
//! the pipeline adds on top of reading the file. See docs/benchmarks.md.
//!
//! Run without `--bench` (as `cargo test --all-targets` does) it makes 1,000
//! rows and runs once: a smoke test that the generator, config and binary still
//! fit together, not a measurement.

use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use encoding_rs::WINDOWS_1252;

mod export;
use export::{count_rows, eleven_proof};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const RUNS: usize = 3;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` does not.
    let bench = std::env::args().any(|a| a == "--bench");
    let (rows, runs, dir) = if bench {
        (1_000_000, RUNS, "bench-data")
    } else {
        (1_000, 1, "bench-data-smoke")
    };
    export::check_sample_header(ROOT);

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
        export::generate(&export, rows, true).expect("write the export");
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
    // The same work written as tightly as it goes: split, decode every field
    // into one reused buffer, the 11-proof and two date checks by hand (no
    // chrono, no allocation per row). `check` is held to a small multiple
    // of this.
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_path(path)
        .expect("open");
    let mut record = csv::ByteRecord::new();
    let mut text = String::with_capacity(256);
    let mut tally = Tally::default();
    while reader.read_byte_record(&mut record).expect("a CSV record") {
        let mut decoded = 0;
        for raw in record.iter() {
            text.clear();
            text.push_str(&WINDOWS_1252.decode_without_bom_handling(raw).0);
            decoded += text.len();
        }
        std::hint::black_box(decoded);
        tally.rows += 1;
        tally.bsn_ok += u64::from(eleven_proof(&record[0]));
        for date in [&record[5], &record[9]] {
            tally.dates_ok += u64::from(dd_mm_yyyy(date));
        }
    }
    std::hint::black_box(tally)
}

/// A `%d-%m-%Y` date that exists (leap years included), by hand.
fn dd_mm_yyyy(b: &[u8]) -> bool {
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() != 10 || b[2] != b'-' || b[5] != b'-' {
        return false;
    }
    let (Some(d), Some(m), Some(y)) = (digits(0..2), digits(3..5), digits(6..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
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
