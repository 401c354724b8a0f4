//! Part D of `cargo bench --bench run` under `BENCH_STATE=postgres`: two
//! instances against one on the same work. The export is cut in two halves
//! for two sources (a source's intake is one instance's at a time, so one
//! source could not be shared); each measurement starts on a fresh database
//! and a fresh index: one `visync run --once`, then two started at once on
//! the same config. The index's own CPU time is measured apart (from
//! /proc), so that what the pair gains or loses is visyncs', not the
//! index's.

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{pg_state, Sim, ORG, ROOT, TODAY, TOKEN, VISYNC};

/// One measurement: wall time until every instance ended, and the index's
/// CPU seconds over it.
pub struct Measured {
    pub secs: f64,
    pub index_cpu: f64,
}

/// One instance, then two, on the same two halves of `export`.
pub fn compare(export: &Path, rows: u64, work: &Path) -> (Measured, Measured) {
    let halves = split(export, work);
    let one = measure(1, &halves, rows, &work.join("one"));
    let two = measure(2, &halves, rows, &work.join("two"));
    (one, two)
}

/// The export's rows in two files with its header, the first half and the
/// rest (bytes as they are: the export is Windows-1252).
fn split(export: &Path, dir: &Path) -> [PathBuf; 2] {
    let mut lines = BufReader::new(fs::File::open(export).expect("open the export")).split(b'\n');
    let header = lines.next().expect("a header").expect("read the header");
    let rows: Vec<Vec<u8>> = lines
        .map(|l| l.expect("read a row"))
        .filter(|l| !l.is_empty() && l != b"\r")
        .collect();
    let half = rows.len() / 2;
    let paths = [dir.join("half-a.csv"), dir.join("half-b.csv")];
    for (path, part) in paths.iter().zip([&rows[..half], &rows[half..]]) {
        let mut out = BufWriter::new(fs::File::create(path).expect("create a half"));
        for line in std::iter::once(&header).chain(part) {
            out.write_all(line)
                .and_then(|()| out.write_all(b"\n"))
                .expect("write a half");
        }
    }
    paths
}

fn measure(instances: usize, halves: &[PathBuf; 2], rows: u64, dir: &Path) -> Measured {
    fs::create_dir_all(dir).expect("create the work folder");
    let sim = Sim::start(&dir.join("index"));
    let config = write_config(dir, &sim.addr);
    for (half, source) in halves.iter().zip(["a", "b"]) {
        let dest = dir.join(format!("in-{source}/export-{source}.csv"));
        fs::copy(half, dest.with_extension("tmp")).expect("copy a half");
        fs::rename(dest.with_extension("tmp"), &dest).expect("rename it into place");
    }
    let cpu_before = cpu_secs(sim.child.id());
    let started = Instant::now();
    let passes: Vec<_> = (0..instances)
        .map(|i| {
            let log = fs::File::create(dir.join(format!("pass-{i}.log"))).expect("a log file");
            Command::new(VISYNC)
                .args(["--today", TODAY, "run", "--once", "-c"])
                .arg(&config)
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("visync run --once starts")
        })
        .collect();
    for (i, mut p) in passes.into_iter().enumerate() {
        let status = p.wait().expect("wait for a pass");
        let log = fs::read_to_string(dir.join(format!("pass-{i}.log"))).unwrap_or_default();
        assert!(status.success(), "pass {i} of {instances}: {status}\n{log}");
    }
    let secs = started.elapsed().as_secs_f64();
    let index_cpu = cpu_secs(sim.child.id()) - cpu_before;
    let stats = sim.stats();
    assert_eq!(
        stats["active_signals"], rows,
        "D: every signal at the index"
    );
    assert_eq!(stats["duplicate_signals"], 0, "D: no signal twice");
    Measured { secs, index_cpu }
}

/// Two sources, one per half, with their own drop folders, on a fresh
/// PostgreSQL database; the second source's mapping is the shipped one
/// under another name (with its professionals file beside it).
fn write_config(dir: &Path, addr: &str) -> PathBuf {
    let url = pg_state().expect("part D runs on PostgreSQL");
    fs::create_dir_all(dir.join("state")).expect("create the key's folder");
    fs::write(dir.join("token"), format!("{TOKEN}\n")).expect("write the token");
    let shipped = Path::new(ROOT).join("mappings");
    let mapping = fs::read_to_string(shipped.join("caseflow-csv.toml")).expect("the mapping");
    let renamed = mapping.replacen("name = \"caseflow\"", "name = \"caseflow-b\"", 1);
    assert_ne!(
        mapping, renamed,
        "the shipped mapping names its source caseflow"
    );
    fs::write(dir.join("caseflow-b.toml"), renamed).expect("write the second mapping");
    fs::copy(
        shipped.join("caseflow-medewerkers.csv"),
        dir.join("caseflow-medewerkers.csv"),
    )
    .expect("copy the professionals file");
    for source in ["a", "b"] {
        fs::create_dir_all(dir.join(format!("in-{source}"))).expect("a drop folder");
    }
    let quote = |p: PathBuf| toml::Value::String(p.display().to_string()).to_string();
    let text = format!(
        r#"# Written by benches/pair on every run.
organisation = {{ code = "{ORG}", name = "Jeugdhulp Voorbeeld" }}
state = {{ url = {url}, key_file = {key} }}
index = {{ url = "http://{addr}", token_file = {token}, batch_size = 500 }}
rules = {{ max_active_years = 2, archive_years = 5, age_limit = 23 }}
http = {{ listen = "" }}

[[sources]]
mapping = {a}
watch = {in_a}
settle_secs = 0

[[sources]]
mapping = {b}
watch = {in_b}
settle_secs = 0
"#,
        url = toml::Value::String(url),
        key = quote(dir.join("state/subject.key")),
        token = quote(dir.join("token")),
        a = quote(shipped.join("caseflow-csv.toml")),
        b = quote(dir.join("caseflow-b.toml")),
        in_a = quote(dir.join("in-a")),
        in_b = quote(dir.join("in-b")),
    );
    let path = dir.join("visync.toml");
    fs::write(&path, text).expect("write the config");
    path
}

/// User and system CPU seconds of process `pid` so far (/proc/PID/stat,
/// fields 14 and 15, in clock ticks of 1/100 s on Linux).
fn cpu_secs(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let after = stat.rsplit_once(')').expect("a stat line").1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is field 3, so utime (14) is index 11.
    let ticks: u64 =
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    ticks as f64 / 100.0
}
