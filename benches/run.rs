//! `cargo bench --bench run`: what `visync run --once` costs against the real
//! reference index (`visync index-sim` on a loopback port) for a 100,000-row
//! CaseFlow export in which every row is a signal:
//!
//! - A, the first pass: every row planned, stored, sent and confirmed;
//! - B, the same records again in a file with other bytes (so it is read, not
//!   recognised by its hash): planned against the store, nothing to send;
//! - C, `visync check` on the export with the store B left: the dry run of the
//!   same work, so B / C is what a real pass adds over the pure pipeline when
//!   there is nothing to do.
//!
//! - D, with `BENCH_STATE=postgres`: the same rows as two sources, one
//!   `run --once` against two at once on one database (`pair/`).
//!
//! See docs/benchmarks.md. Run without `--bench` (as `cargo test --all-targets`
//! does) it makes 1,000 rows: a smoke test that the generator, the config, the
//! index and the binary still fit together, not a measurement.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

mod export;
mod pair;
use export::count_rows;

/// Must equal the first line of the shipped sample (checked at start), so the
/// bench export is one the shipped mapping reads.
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VISYNC: &str = env!("CARGO_BIN_EXE_visync");
/// The connector's and the index's calendar agree, so no signal has expired on
/// one side and not the other.
const TODAY: &str = "2026-11-28";
const ORG: &str = "01234567";
const TOKEN: &str = "bench-token";
const EXPORT: &str = "export-20261128.csv";
/// B and C take about a second each, so they are cheap to repeat; A cannot
/// be (it is a first pass only once per store and index).
const RUNS: usize = 3;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` does not.
    let bench = std::env::args().any(|a| a == "--bench");
    let (rows, runs, dir) = if bench {
        (100_000, RUNS, "bench-data")
    } else {
        (1_000, 1, "bench-data-smoke")
    };
    export::check_sample_header(ROOT);

    // CARGO_TARGET_TMPDIR is <target>/tmp; its parent follows CARGO_TARGET_DIR.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("a target dir");
    // A folder of its own: benches/check.rs makes 1,000,000 rows with bad ones
    // among them, this bench 100,000 that are all signals.
    let data = target.join(dir).join("run");
    let export = data.join(EXPORT);
    fs::create_dir_all(&data).expect("create the data folder");
    if count_rows(&export) == Some(rows) {
        println!("reusing {}", export.display());
    } else {
        let t = Instant::now();
        export::generate(&export, rows, false).expect("write the export");
        let secs = t.elapsed().as_secs_f64();
        println!("generated {} in {secs:.1} s", export.display());
    }
    let mib = fs::metadata(&export).expect("stat the export").len() as f64 / 1024.0 / 1024.0;

    // Everything else is fresh on every run: A is only a first pass against
    // an empty store and an empty index. `work` is declared before `sim`, so
    // the index is killed before its database folder is removed, on a panic
    // too.
    let work = tempfile::Builder::new()
        .prefix("visync-bench-run.")
        .tempdir()
        .expect("a temporary folder");
    let sim = Sim::start(&work.path().join("index"));
    let (config, watch) = write_config(work.path(), &sim.addr);

    // A: every row is registered and confirmed in this one pass.
    drop_file(&export, &watch.join(EXPORT), 0);
    let a = run_once(&config, work.path());
    expect_line(&a.stderr, &format!("records: {rows} read, {rows} accepted"));
    expect_line(&a.stderr, &format!("planned: {rows} register, 0 update"));
    expect_line(&a.stderr, &format!("index: {rows} confirmed, 0 refused"));
    let stats = sim.stats();
    // The index's own count, so that a summary that merely says so cannot
    // pass for signals that arrived.
    assert_eq!(
        stats["active_signals"], rows,
        "A: the index holds every signal"
    );
    assert_eq!(stats["duplicate_signals"], 0, "A: no signal twice");
    let calls = stats["register_calls"].as_i64().expect("register_calls");
    println!("A: {:.2} s, {} KiB, {calls} register calls", a.secs, a.kib);

    // B, best of `runs`: the same records under another name, one more empty
    // line each time. The same bytes would be recognised by their SHA-256 and
    // only moved aside, which is not the re-run this measures. C, the dry run
    // of the same work against the same store (read-only), alternates with B
    // so that a slow moment of the machine does not fall on one side only.
    let (mut b, mut c) = (Best::default(), Best::default());
    for i in 1..=runs {
        let again = watch.join(format!("export-20261128-again{i}.csv"));
        drop_file(&export, &again, i);
        let t = run_once(&config, work.path());
        expect_line(&t.stderr, "files: 1 taken, 0 already taken");
        expect_line(&t.stderr, &format!("records: {rows} read, {rows} accepted"));
        expect_line(&t.stderr, "planned: 0 register, 0 update, 0 withdraw");
        let after = sim.stats()["register_calls"].as_i64();
        assert_eq!(
            after,
            Some(calls),
            "B: no register call for unchanged records"
        );
        println!("B: {:.2} s, {} KiB", t.secs, t.kib);
        b.add(&t);
        let t = run_check(&config, &export, work.path(), rows);
        println!("C: {:.2} s, {} KiB", t.secs, t.kib);
        c.add(&t);
    }
    drop(sim);

    let rate = rows as f64 / a.secs;
    let ratio = b.secs / c.secs;
    let rate_ok = if rate >= 5_000.0 { "ok" } else { "MISSED" };
    let ratio_ok = if ratio <= 2.0 { "ok" } else { "MISSED" };
    let mib_of = |kib: f64| kib / 1024.0;
    println!("\nrows                      {rows:>10}");
    println!("file size (MiB)           {mib:>10.1}");
    println!(
        "A first pass (s)          {:>10.2}   {rate:>7.0} signals/s   target 5000/s: {rate_ok}",
        a.secs
    );
    println!("A peak RSS (MiB)          {:>10.1}", mib_of(a.kib));
    println!("B unchanged re-run (s)    {:>10.2}", b.secs);
    println!("B peak RSS (MiB)          {:>10.1}", mib_of(b.kib));
    println!("C check (s)               {:>10.2}", c.secs);
    println!("C peak RSS (MiB)          {:>10.1}", mib_of(c.kib));
    println!("ratio B/C                 {ratio:>10.2}   target 2x: {ratio_ok}");
    if !bench {
        println!("(smoke run of {rows} rows: the figures mean nothing)");
    }
    // D: two instances against one, on PostgreSQL (several instances are
    // what it is for).
    if bench && std::env::var("BENCH_STATE").as_deref() == Ok("postgres") {
        let (one, two) = pair::compare(&export, rows, work.path());
        let ok = if two.secs <= one.secs { "ok" } else { "MISSED" };
        println!(
            "D one instance (s)        {:>10.2}   index CPU {:.2} s",
            one.secs, one.index_cpu
        );
        println!(
            "D two instances (s)       {:>10.2}   index CPU {:.2} s   target: no slower than one: {ok}",
            two.secs, two.index_cpu
        );
    }
}

/// The best wall time of several runs, and the highest peak RSS.
struct Best {
    secs: f64,
    kib: f64,
}

impl Default for Best {
    fn default() -> Best {
        Best {
            secs: f64::INFINITY,
            kib: 0.0,
        }
    }
}

impl Best {
    fn add(&mut self, t: &Timed) {
        self.secs = self.secs.min(t.secs);
        self.kib = self.kib.max(t.kib);
    }
}

/// Copies the export into the drop folder as a CMS should deliver it: under a
/// `.tmp` name the run never takes, renamed when complete. `empty` lines are
/// appended, which the reader skips: the records stay the same and only the
/// content hash changes.
fn drop_file(export: &Path, dest: &Path, empty: usize) {
    let tmp = dest.with_extension("csv.tmp");
    fs::copy(export, &tmp).expect("copy the export into the drop folder");
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(&tmp)
        .expect("reopen the copy");
    f.write_all(&b"\r\n".repeat(empty))
        .expect("append empty lines");
    drop(f);
    fs::rename(&tmp, dest).expect("rename into the drop folder");
}

/// `BENCH_STATE=postgres`: the store on a fresh PostgreSQL database
/// `visync_bench` of the server at `TEST_POSTGRES_URL` (made again here with
/// `psql`, so that A is a first pass), instead of a SQLite file.
fn pg_state() -> Option<String> {
    match std::env::var("BENCH_STATE").as_deref() {
        Ok("postgres") => {}
        Ok("sqlite") | Err(_) => return None,
        Ok(other) => panic!("BENCH_STATE={other}: say sqlite or postgres"),
    }
    let admin = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    for sql in [
        "DROP DATABASE IF EXISTS visync_bench WITH (FORCE)",
        "CREATE DATABASE visync_bench",
    ] {
        let ok = Command::new("psql")
            .args([admin.as_str(), "-qc", sql])
            .status()
            .expect("psql runs")
            .success();
        assert!(ok, "psql: {sql}");
    }
    let mut url = url::Url::parse(&admin).expect("TEST_POSTGRES_URL is a URL");
    url.set_path("visync_bench");
    Some(url.to_string())
}

/// A config for one source against the index at `addr`: state, token and drop
/// folder all under `dir`. Returns the config's path and the drop folder.
fn write_config(dir: &Path, addr: &str) -> (PathBuf, PathBuf) {
    let quote = |s: String| toml::Value::String(s).to_string();
    let watch = dir.join("in");
    fs::create_dir_all(&watch).expect("create the drop folder");
    let token = dir.join("token");
    fs::write(&token, format!("{TOKEN}\n")).expect("write the token");
    let state = match pg_state() {
        None => format!(
            "{{ url = {} }}",
            quote(format!(
                "sqlite://{}",
                dir.join("state/visync.db").display()
            ))
        ),
        Some(url) => {
            fs::create_dir_all(dir.join("state")).expect("create the key's folder");
            let key = dir.join("state/subject.key").display().to_string();
            format!("{{ url = {}, key_file = {} }}", quote(url), quote(key))
        }
    };
    let mapping = quote(format!("{ROOT}/mappings/caseflow-csv.toml"));
    let (token, watched) = (
        quote(token.display().to_string()),
        quote(watch.display().to_string()),
    );
    // Rules as in the samples (and the defaults), spelled out because they
    // decide the end dates the index checks. 500 a batch is the most the index
    // takes, and the fewest round trips.
    let text = format!(
        r#"# Written by benches/run.rs on every run.
organisation = {{ code = "{ORG}", name = "Jeugdhulp Voorbeeld" }}
state = {state}
index = {{ url = "http://{addr}", token_file = {token}, batch_size = 500 }}
rules = {{ max_active_years = 2, archive_years = 5, age_limit = 23 }}

[[sources]]
mapping = {mapping}
watch = {watched}
settle_secs = 0
"#
    );
    let path = dir.join("visync.toml");
    fs::write(&path, text).expect("write the config");
    (path, watch)
}

/// What one command cost under /usr/bin/time, and what it said on stderr.
struct Timed {
    secs: f64,
    kib: f64,
    stderr: String,
}

/// `visync --today TODAY ARGS…` under /usr/bin/time, stdout to `stdout`.
/// Any exit status but 0 fails the bench with the command's stderr.
fn timed(args: &[&str], config: &Path, dir: &Path, stdout: Stdio) -> Timed {
    let times = dir.join("time.txt");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%e %M", "-o"])
        .arg(&times)
        .arg(VISYNC)
        .args(["--today", TODAY])
        .args(args)
        .arg("-c")
        .arg(config)
        .stdout(stdout);
    // The figures must not depend on overrides or log filters of the machine
    // they are taken on.
    for (k, _) in std::env::vars() {
        if k.starts_with("VISYNC_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG");
    let out = cmd.output().expect("run /usr/bin/time");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        // Rows left queued after a pass that had nothing to retry: the pass
        // sends for at most two minutes (SEND_BUDGET in src/cli/run.rs), and a
        // slow machine or index does not get through the whole first pass.
        let waiting = |l: &str| l.starts_with("queue: ") && !l.starts_with("queue: 0 waiting");
        let hint = if stderr.lines().any(waiting) {
            "\n(rows still waiting: the pass's send budget ran out, see docs/benchmarks.md)"
        } else {
            ""
        };
        panic!(
            "visync {} failed ({}):\n{}{hint}",
            args.join(" "),
            out.status,
            tail(&stderr)
        );
    }
    // GNU time writes "Command exited with non-zero status N" first, if so.
    let times = fs::read_to_string(&times).expect("read the time output");
    let last = times.lines().last().unwrap_or_default().split_whitespace();
    let nums: Vec<f64> = last.map(|v| v.parse().expect("a number")).collect();
    Timed {
        secs: nums[0],
        kib: nums[1],
        stderr,
    }
}

fn run_once(config: &Path, dir: &Path) -> Timed {
    timed(&["run", "--once"], config, dir, Stdio::null())
}

/// `visync check --json` on the export, and the report's proof that it read
/// every row and planned against the store (nothing left to register).
fn run_check(config: &Path, export: &Path, dir: &Path, rows: u64) -> Timed {
    let report = dir.join("check-report.json");
    let out = File::create(&report).expect("create the report file");
    let file = export.to_str().expect("a UTF-8 path");
    let c = timed(&["check", "--json", file], config, dir, out.into());
    let report: serde_json::Value =
        serde_json::from_reader(BufReader::new(File::open(&report).expect("the report")))
            .expect("a JSON report");
    assert_eq!(
        report["sources"][0]["records"], rows,
        "C: check read every row"
    );
    assert_eq!(
        report["plan"]["register"], 0,
        "C: planned against the store"
    );
    c
}

/// Fails the bench unless a line of the run's summary starts with `prefix`,
/// showing the summary (the end of stderr) when it does not.
fn expect_line(stderr: &str, prefix: &str) {
    if !stderr.lines().any(|l| l.starts_with(prefix)) {
        panic!(
            "expected a line \"{prefix}…\" in the summary:\n{}",
            tail(stderr)
        );
    }
}

/// The last lines of stderr: the summary, and the errors before it, without
/// the whole log of a 100,000-row pass.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A `visync index-sim` child on a loopback port, killed when dropped (on a
/// panic too), so no bench run leaves an index behind.
struct Sim {
    child: Child,
    addr: String,
}

impl Sim {
    fn start(dir: &Path) -> Sim {
        fs::create_dir_all(dir).expect("create the index folder");
        let db = dir.join("index.db");
        let org = format!("{ORG}={TOKEN}");
        let child = Command::new(VISYNC)
            .args(["index-sim", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(["--org", &org, "--clock", TODAY])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("index-sim starts");
        // Guarded before the first read, so that a child that never says where
        // it listens is still killed.
        let mut sim = Sim {
            child,
            addr: String::new(),
        };
        let stdout = sim.child.stdout.take().expect("a piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read index-sim's first line");
        sim.addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from index-sim: {line:?}"))
            .to_owned();
        sim
    }

    /// `GET /sim/stats` over a bare HTTP/1.1 connection, as JSON.
    fn stats(&self) -> serde_json::Value {
        let mut s = TcpStream::connect(&self.addr).expect("connect to index-sim");
        write!(
            s,
            "GET /sim/stats HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .expect("send the request");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read the answer");
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        assert!(head.starts_with("HTTP/1.1 200"), "GET /sim/stats: {head}");
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        serde_json::from_str(&body).expect("/sim/stats is JSON")
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
