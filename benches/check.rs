//! `cargo bench --bench check`: what `visync check` costs on a 1,000,000-row
//! CaseFlow export, set against the bare cost of the same work in-process
//! (streaming the CSV, decoding Windows-1252, the 11-proof, two date parses).
//! That bare cost is the floor no dry run can beat, so the ratio says how much
//! the pipeline adds on top of reading the file. See docs/benchmarks.md.
//!
//! `BENCH_ROWS=N` sets the number of rows (default 1,000,000);
//! `BENCH_FORMAT=xml` reads a JeugdNet XML export of N dossiers (about
//! 1.1 KB each) instead, for memory on big XML files: `check` only, no bare
//! pass. Exports other than the default go to a folder of their own,
//! `target/bench-data-FORMAT-N/`; delete it when done, they are big.
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

mod bare;
mod export;
#[path = "export/xml.rs"]
mod xml_export;
use export::{count_rows, eleven_proof};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const RUNS: usize = 3;
const DEFAULT_ROWS: u64 = 1_000_000;

/// What this run measures, from the command line and the environment.
struct Setup {
    rows: u64,
    runs: usize,
    xml: bool,
    /// The folder under the target dir.
    dir: String,
}

fn setup() -> Setup {
    // `cargo bench` passes `--bench`; `cargo test` does not.
    let bench = std::env::args().any(|a| a == "--bench");
    let rows = match std::env::var("BENCH_ROWS") {
        Ok(v) => v.replace('_', "").parse().expect("BENCH_ROWS is a number"),
        Err(_) if bench => DEFAULT_ROWS,
        Err(_) => 1_000,
    };
    let xml = match std::env::var("BENCH_FORMAT").as_deref() {
        Ok("xml") => true,
        Ok("csv") | Err(_) => false,
        Ok(other) => panic!("BENCH_FORMAT is csv or xml, not {other}"),
    };
    let dir = match (bench, xml, rows) {
        (false, false, _) => "bench-data-smoke".to_string(),
        (false, true, _) => "bench-data-smoke-xml".to_string(),
        (true, false, DEFAULT_ROWS) => "bench-data".to_string(),
        (true, false, n) => format!("bench-data-csv-{n}"),
        (true, true, n) => format!("bench-data-xml-{n}"),
    };
    let runs = if bench { RUNS } else { 1 };
    Setup {
        rows,
        runs,
        xml,
        dir,
    }
}

fn main() {
    let setup = setup();
    let rows = setup.rows;
    export::check_sample_header(ROOT);

    // CARGO_TARGET_TMPDIR is <target>/tmp; its parent follows CARGO_TARGET_DIR.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("a target dir");
    let data = target.join(&setup.dir);
    // The export gets a drop folder of its own: `check` reads every file in
    // the watched folder, so a config or report beside the export would be
    // taken for an export too (and fail the run as unreadable).
    let drop = data.join(if setup.xml { "jeugdnet" } else { "caseflow" });
    fs::create_dir_all(&drop).expect("create the data folder");
    let export = make_export(&drop, rows, setup.xml);
    let config = write_config(&data, &drop, setup.xml);
    let mib = fs::metadata(&export).expect("stat the export").len() as f64 / 1024.0 / 1024.0;

    let bare = if setup.xml {
        f64::NAN
    } else {
        bare_best(&export, rows, setup.runs)
    };
    let (mut check, mut rss_kib) = (f64::INFINITY, 0.0);
    for _ in 0..setup.runs {
        let (secs, kib) = run_check(&config, &data, rows);
        check = check.min(secs);
        rss_kib = f64::max(rss_kib, kib);
    }
    summary(rows, mib, bare, check, rss_kib / 1024.0);
}

/// The export of `rows` records, reused when one of that size is there.
fn make_export(drop: &Path, rows: u64, xml: bool) -> PathBuf {
    let (export, existing) = if xml {
        let path = drop.join("export-20261128-0200.xml");
        let n = xml_export::count_records(&path);
        (path, n)
    } else {
        let path = drop.join("export-20261128.csv");
        let n = count_rows(&path);
        (path, n)
    };
    if existing == Some(rows) {
        println!("reusing {}", export.display());
        return export;
    }
    let t = Instant::now();
    if xml {
        xml_export::generate(&export, rows).expect("write the export");
    } else {
        export::generate(&export, rows, true).expect("write the export");
    }
    let secs = t.elapsed().as_secs_f64();
    println!("generated {} in {secs:.1} s", export.display());
    export
}

/// The best of `runs` bare passes, in seconds.
fn bare_best(export: &Path, rows: u64, runs: usize) -> f64 {
    let mut bare = f64::INFINITY;
    for _ in 0..runs {
        let t = Instant::now();
        let tally = bare_pass(export);
        let secs = t.elapsed().as_secs_f64();
        bare = bare.min(secs);
        assert_eq!(tally.rows, rows, "the bare pass read every row");
        let (bsns, dates) = (tally.bsn_ok, tally.dates_ok);
        println!("bare:  {secs:.2} s; {bsns} valid BSNs, {dates} valid dates");
    }
    bare
}

/// The figures and the targets: 3× the bare cost; peak RSS 256 MiB at up to
/// 1,000,000 rows, 1 GiB at up to 10,000,000.
fn summary(rows: u64, mib: f64, bare: f64, check: f64, rss: f64) {
    let check_rate = rows as f64 / check;
    println!("\nrows                {rows:>10}");
    println!("file size (MiB)     {mib:>10.1}");
    if !bare.is_nan() {
        let (ratio, bare_rate) = (check / bare, rows as f64 / bare);
        let ratio_ok = if ratio <= 3.0 { "ok" } else { "OVER" };
        println!("bare (s)            {bare:>10.2}   {bare_rate:>9.0} rows/s");
        println!("check (s)           {check:>10.2}   {check_rate:>9.0} rows/s");
        println!("ratio check/bare    {ratio:>10.2}   target 3x: {ratio_ok}");
    } else {
        println!("check (s)           {check:>10.2}   {check_rate:>9.0} rows/s");
    }
    let limit = if rows <= DEFAULT_ROWS { 256.0 } else { 1024.0 };
    let rss_ok = if rss <= limit { "ok" } else { "OVER" };
    println!("peak RSS (MiB)      {rss:>10.1}   target {limit}: {rss_ok}");
}

/// Like samples/visync.toml, with the one source that reads the export.
fn write_config(data: &Path, drop: &Path, xml: bool) -> PathBuf {
    let quote = |s: String| toml::Value::String(s).to_string();
    let db = data.join("state/visync.db");
    let state = quote(format!("sqlite://{}", db.display()));
    let file = if xml { "jeugdnet-xml" } else { "caseflow-csv" };
    let mapping = quote(format!("{ROOT}/mappings/{file}.toml"));
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
            tally.dates_ok += u64::from(bare::date_exists(date, &DD_MM_YYYY));
        }
    }
    std::hint::black_box(tally)
}

/// The export's dates.
const DD_MM_YYYY: bare::Layout = bare::Layout {
    day: 0..2,
    month: 3..5,
    year: 6..10,
    dashes: [2, 5],
};

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
