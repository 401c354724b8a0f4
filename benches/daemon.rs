//! `cargo bench --bench daemon`: the service over many jobs. A `visync run`
//! daemon against the real reference index on loopback takes a stream of
//! small exports, each renamed into its drop folder as a CMS would, one
//! after the other (the next is dropped once the daemon's STATUS line says
//! the last one's signals are confirmed). It measures:
//!
//! - the time from a file's rename to its signals being confirmed by the
//!   index (median and 95th percentile);
//! - the daemon's resident memory (VmRSS) as the jobs add up, which must
//!   stay flat: memory that grows with the number of jobs is a leak.
//!
//! See docs/benchmarks.md. Run without `--bench` (as `cargo test
//! --all-targets` does) it drops 20 files: a smoke test, not a measurement.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VISYNC: &str = env!("CARGO_BIN_EXE_visync");
const TODAY: &str = "2026-11-28";
const ORG: &str = "01234567";
const TOKEN: &str = "bench-token";
/// Children per export: small files, many jobs.
const ROWS: usize = 5;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    // BENCH_FILES=N for a longer soak than the default 2,000.
    let files = match std::env::var("BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) if bench => n,
        _ if bench => 2000,
        _ => 20,
    };
    let work = tempfile::Builder::new()
        .prefix("visync-bench-daemon.")
        .tempdir()
        .expect("a temporary folder");
    let (_sim, addr) = start_sim(work.path());
    let config = write_config(work.path(), &addr);
    let watch = work.path().join("in");

    let sock_path = work.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let daemon = Killed(
        Command::new(VISYNC)
            .args(["--today", TODAY, "run", "-c"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &sock_path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("visync run starts"),
    );
    let pid = daemon.0.id();
    wait_for(&sock, |m| m.contains("READY=1"));

    let bsns = test_bsns(files * ROWS);
    let mut latencies = Vec::with_capacity(files);
    let mut rss = Vec::new();
    for i in 0..files {
        let mut csv = String::from(
            "bsn,achternaam,geboren,geslacht,mw,mw_naam,mw_mail,dossier,start,eind,vir\n",
        );
        for (j, b) in bsns[i * ROWS..(i + 1) * ROWS].iter().enumerate() {
            csv.push_str(&format!(
                "{b},Jansen,04-03-2012,M,E1,A. Vries,a@x.example,D{i}-{j},01-11-2026,,J\n"
            ));
        }
        let tmp = watch.join(format!("f{i}.csv.tmp"));
        std::fs::write(&tmp, csv).expect("write an export");
        let t = Instant::now();
        std::fs::rename(&tmp, watch.join(format!("f{i}.csv"))).expect("rename it in");
        let want = format!(" {} confirmed;", (i + 1) * ROWS);
        wait_for(&sock, |m| m.starts_with("STATUS=") && m.contains(&want));
        latencies.push(t.elapsed());
        if (i + 1) % (files / 10).max(1) == 0 || i == 0 {
            rss.push((i + 1, vm_rss_kib(pid)));
        }
    }
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "{files} files of {ROWS} signals, one at a time: rename to confirmed at the index: median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        pct(50).as_secs_f64() * 1e3,
        pct(95).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    println!("daemon VmRSS after N jobs:");
    for (n, kib) in &rss {
        println!("  after {n:>5} files: {:.1} MiB", *kib as f64 / 1024.0);
    }
    let first = rss[1.min(rss.len() - 1)].1 as f64;
    let last = rss.last().unwrap().1 as f64;
    println!(
        "growth from the first tenth to the end: {:+.1} MiB",
        (last - first) / 1024.0
    );
}

fn wait_for(sock: &UnixDatagram, pred: impl Fn(&str) -> bool) {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).expect("a notify message within 60 s");
        if pred(&String::from_utf8_lossy(&buf[..n])) {
            return;
        }
    }
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn start_sim(dir: &Path) -> (Killed, String) {
    let org = format!("{ORG}={TOKEN}");
    let mut child = Command::new(VISYNC)
        .args(["index-sim", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join("index.db"))
        .args(["--org", &org, "--clock", TODAY])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("index-sim starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("index-sim says where it listens")
        .to_string();
    (Killed(child), addr)
}

fn write_config(dir: &Path, addr: &str) -> std::path::PathBuf {
    let mapping =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cases/csv-codes/mapping.toml");
    std::fs::create_dir_all(dir.join("in")).unwrap();
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let config = dir.join("visync.toml");
    // The fixture mapping reads snapshots, in which every file would have
    // to list every child so far; in delta mode each file is its own change.
    let text = std::fs::read_to_string(&mapping).unwrap().replacen(
        "[source]\n",
        "[source]\nmode = \"delta\"\n",
        1,
    );
    assert!(
        text.contains("mode = \"delta\""),
        "the mapping reads deltas"
    );
    let delta = dir.join("mapping.toml");
    std::fs::write(&delta, text).unwrap();
    std::fs::write(
        &config,
        format!(
            "[organisation]\ncode = \"{ORG}\"\nname = \"Bench\"\n\n[state]\nurl = \"sqlite://state/visync.db\"\n\n\
             [index]\nurl = \"http://{addr}\"\ntoken_file = \"token\"\n\n\
             [[sources]]\nmapping = \"{}\"\nwatch = \"in\"\nsettle_secs = 10\nrescan_secs = 3600\n\n[http]\nlisten = \"\"\n",
            delta.display()
        ),
    )
    .unwrap();
    config
}

/// Numbers that pass the 11-proof, counted up from 100000000 as the other
/// benches' generator does: synthetic, and they never leave this machine.
fn test_bsns(n: usize) -> Vec<String> {
    (100_000_000u64..)
        .map(|x| x.to_string())
        .filter(|s| {
            let w = [9i64, 8, 7, 6, 5, 4, 3, 2, -1];
            s.bytes()
                .zip(w)
                .map(|(b, w)| w * i64::from(b - b'0'))
                .sum::<i64>()
                % 11
                == 0
        })
        .take(n)
        .collect()
}
