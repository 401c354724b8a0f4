//! `visync run` as a service: the real binary as a child process, against the
//! real reference index on loopback, with a test `NOTIFY_SOCKET` (a Unix
//! datagram socket the test binds) standing in for systemd. Tests wait on
//! notify messages, files, exit statuses and the index's own counts; none
//! sleeps to synchronise.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::*;

fn mapping() -> PathBuf {
    repo().join("tests/fixtures/cases/csv-codes/mapping.toml")
}

const HEADER: &str = "bsn,achternaam,geboren,geslacht,mw,mw_naam,mw_mail,dossier,start,eind,vir\n";

/// An export of `n` children, from the `from`-th test BSN on.
fn export(n: usize, from: usize) -> String {
    let mut csv = String::from(HEADER);
    for (i, b) in bsns(from + n).iter().enumerate().skip(from) {
        csv.push_str(&format!(
            "{b},Jansen,04-03-2012,M,E1,A. Vries,a@x.example,D{i},01-11-2026,,J\n"
        ));
    }
    csv
}

/// A running `visync run` and the socket it notifies.
/// A site whose source is rescanned rarely: only events can make it quick.
fn site(sim: &Sim, extra: &str) -> Site {
    Site::new(
        sim,
        &mapping(),
        &format!("rescan_secs = 3600\n\n[http]\nlisten = \"127.0.0.1:0\"\n{extra}"),
    )
}

fn index_signals(sim: &Sim) -> u64 {
    sim.stats()["active_signals"].as_u64().unwrap_or(0)
}

#[test]
fn ready_and_watchdog_and_a_renamed_file_reaches_the_index_without_a_rescan() {
    let sim = Sim::start(&[]);
    let site = site(&sim, "");
    let mut d = Daemon::start(&site);
    d.ready();
    d.wait_for(Duration::from_secs(5), |m| m.contains("WATCHDOG=1"));
    let t = Instant::now();
    site.drop_file("a.csv", export(3, 0).as_bytes());
    d.status("3 confirmed");
    let took = t.elapsed();
    eprintln!("rename to confirmed at the index: {took:?}");
    assert_eq!(index_signals(&sim), 3, "{}", sim.stats());
    assert!(site.waiting().is_empty(), "the file is taken");
    let (code, took) = d.stop();
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(20), "stopped in {took:?}");
}

#[test]
fn a_file_written_in_place_is_taken_only_once_it_has_settled() {
    let sim = Sim::start(&[]);
    let site = site(&sim, "");
    // settle_secs = 0 in the site; this source waits a second.
    let text = std::fs::read_to_string(&site.config)
        .unwrap()
        .replace("settle_secs = 0", "settle_secs = 1");
    std::fs::write(&site.config, text).unwrap();
    let mut d = Daemon::start(&site);
    d.ready();
    let path = site.watch.join("slow.csv");
    let full = export(2, 10);
    let (first, rest) = full.split_at(full.len() / 2);
    std::fs::write(&path, first).unwrap();
    // The write is seen, and the file is found not settled yet.
    d.status("1 not settled");
    assert_eq!(site.waiting(), vec!["slow.csv".to_string()]);
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(rest.as_bytes()).unwrap();
    drop(f);
    let written = Instant::now();
    d.status("2 confirmed");
    assert!(
        written.elapsed() >= Duration::from_secs(1),
        "taken before it settled"
    );
    assert_eq!(index_signals(&sim), 2);
}

#[test]
fn metrics_health_and_a_broken_reload_that_keeps_the_old_config() {
    let sim = Sim::start(&[]);
    let site = site(&sim, "");
    let mut d = Daemon::start(&site);
    d.ready();
    let addr = d.metrics_addr();
    let metrics = http(&addr, "GET", "/metrics", None, "");
    assert_prometheus_text(&metrics);
    assert!(metrics.contains("visync_build_info{version="), "{metrics}");
    let health = http(&addr, "GET", "/healthz", None, "");
    assert!(health.contains("\"status\":\"ok\""), "{health}");

    // A broken config: refused, loudly, and the old one keeps running.
    let good = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(&site.config, format!("{good}\n[nonsense]\nx = 1\n")).unwrap();
    d.signal("HUP");
    d.status("reload refused");
    let metrics = http(&addr, "GET", "/metrics", None, "");
    assert!(
        metrics.contains("visync_config_reload_failures_total 1"),
        "{metrics}"
    );
    site.drop_file("a.csv", export(2, 20).as_bytes());
    d.status("2 confirmed");

    // Fixed: it takes effect.
    std::fs::write(&site.config, &good).unwrap();
    d.signal("HUP");
    d.status("config reloaded");
    let (code, _) = d.stop();
    assert_eq!(code, 0);
}

fn assert_prometheus_text(text: &str) {
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "not a sample: {line}"
        );
        let bare = name.split('{').next().unwrap();
        assert!(
            !bare.is_empty()
                && bare
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "not a metric name: {line}"
        );
        if let Some(labels) = name.split_once('{').map(|(_, l)| l) {
            assert!(labels.ends_with('}'), "labels not closed: {line}");
        }
    }
}

#[test]
fn a_second_daemon_is_refused_and_run_once_waits_for_the_first() {
    let sim = Sim::start(&[]);
    // The state lock is SQLite's (docs/operations.md, "One state, one worker").
    let site = Site::sqlite(
        &sim,
        &mapping(),
        "rescan_secs = 3600\n\n[http]\nlisten = \"127.0.0.1:0\"\n",
    );
    let mut a = Daemon::start(&site);
    a.ready();
    let b = site.run(&["run"]);
    assert_eq!(b.code, 1, "{}", b.stderr);
    assert!(
        b.stderr.contains(&a.child.id().to_string()),
        "names the holder: {}",
        b.stderr
    );
    // A one-shot pass beside it waits, then runs when the daemon stops.
    let mut once = Command::new(env!("CARGO_BIN_EXE_visync"))
        .args(["--today", TODAY, "run", "--once", "-c"])
        .arg(&site.config)
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(once.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("waiting"), "{line}");
    let (code, _) = a.stop();
    assert_eq!(code, 0);
    assert_eq!(once.wait().unwrap().code(), Some(0));
}

#[test]
fn two_daemons_started_at_once_on_an_empty_state_never_both_run() {
    let sim = Sim::start(&[]);
    // The state lock is SQLite's: on PostgreSQL instances share the store
    // (tests/instances.rs).
    let site = Site::sqlite(
        &sim,
        &mapping(),
        "rescan_secs = 3600\n\n[http]\nlisten = \"127.0.0.1:0\"\n",
    );
    let mut a = Daemon::start(&site);
    let mut b = Daemon::start(&site);
    // Exactly one of them exits (1, naming the other); the other gets ready.
    let end = Instant::now() + Duration::from_secs(30);
    let (loser, winner) = loop {
        if let Some(s) = a.child.try_wait().unwrap() {
            break (s, &mut b);
        }
        if let Some(s) = b.child.try_wait().unwrap() {
            break (s, &mut a);
        }
        assert!(Instant::now() < end, "neither refused the other");
        std::thread::yield_now();
    };
    assert_eq!(loser.code(), Some(1));
    winner.ready();
}

#[test]
fn sigterm_mid_batch_exits_in_time_and_a_restart_loses_and_doubles_nothing() {
    let sim = Sim::start(&[]);
    let site = site(&sim, "[daemon]\nshutdown_grace_secs = 2\n");
    let mut d = Daemon::start_with(&site, &[("VISYNC_INDEX__BATCH_SIZE", "10")]);
    d.ready();
    site.drop_file("big.csv", export(400, 30).as_bytes());
    // Taken: the queue is full and sending has begun.
    d.status("400 waiting");
    let (code, took) = d.stop();
    assert_eq!(code, 0);
    assert!(
        took < Duration::from_secs(4),
        "took {took:?} with a grace of 2 s"
    );
    let mut d = Daemon::start(&site);
    d.ready();
    d.status("queue: 0 waiting");
    let stats = sim.stats();
    assert_eq!(index_signals(&sim), 400, "{stats}");
    assert_eq!(stats["duplicate_signals"], 0, "{stats}");
}

#[test]
fn the_index_down_and_back_on_the_same_port_drains_the_queue() {
    let sim = Sim::start(&[]);
    let addr = sim.addr.clone();
    let site = site(&sim, "");
    let mut d = Daemon::start(&site);
    d.ready();
    let db = sim.stop();
    site.drop_file("a.csv", export(3, 500).as_bytes());
    d.status("3 waiting");
    let sim = Sim::restart_on(db, &addr);
    d.status("3 confirmed");
    assert_eq!(index_signals(&sim), 3);
}

/// The moments of start-up and of a pass at which a SIGTERM arrives.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// At the first STATUS line: the loop runs, the first intake may not
    /// have ended. (Before `main` runs, a SIGTERM takes the default action,
    /// which systemd counts as a clean stop; see docs/operations.md.)
    FirstStatus,
    /// At READY=1: the files waiting at start are taken, sending begins.
    Ready,
    /// At the first watchdog ping: the loop runs.
    Watchdog,
    /// When a dropped file's intake has ended: sending runs.
    Taken,
}

#[test]
fn a_sigterm_at_any_moment_of_start_up_or_a_pass_ends_it_cleanly() {
    let sim = Sim::start(&[]);
    let site = site(&sim, "[daemon]\nshutdown_grace_secs = 3\n");
    let moments = [
        Moment::FirstStatus,
        Moment::Ready,
        Moment::Watchdog,
        Moment::Taken,
    ];
    for (i, moment) in moments.into_iter().enumerate() {
        // Snapshots: each lists every child so far, so nothing is withdrawn.
        site.drop_file(&format!("f{i}.csv"), export(20 * (i + 1), 0).as_bytes());
        let mut d = Daemon::start(&site);
        match moment {
            Moment::FirstStatus => {
                d.wait_for(Duration::from_secs(30), |m| m.starts_with("STATUS="));
            }
            Moment::Ready => d.ready(),
            Moment::Watchdog => {
                d.wait_for(Duration::from_secs(30), |m| m.contains("WATCHDOG=1"));
            }
            Moment::Taken => {
                d.ready();
                site.drop_file(&format!("g{i}.csv"), export(20 * (i + 1) + 5, 0).as_bytes());
                d.status("taken 2 files");
            }
        }
        let (code, took) = d.stop();
        assert_eq!(code, 0, "SIGTERM at {moment:?}");
        assert!(took < Duration::from_secs(5), "{moment:?}: {took:?}");
    }
    let mut d = Daemon::start(&site);
    d.ready();
    d.status("queue: 0 waiting");
    let stats = sim.stats();
    assert_eq!(
        index_signals(&sim),
        85,
        "{stats}; seen {:?}; waiting {:?}",
        d.seen,
        site.waiting()
    );
    assert_eq!(stats["duplicate_signals"], 0, "{stats}");
}

#[test]
fn a_drop_folder_that_disappears_is_reported_and_watched_again_when_it_returns() {
    let sim = Sim::start(&[]);
    let site = site(&sim, "");
    let text = std::fs::read_to_string(&site.config)
        .unwrap()
        .replace("rescan_secs = 3600", "rescan_secs = 1");
    std::fs::write(&site.config, text).unwrap();
    let mut d = Daemon::start(&site);
    d.ready();
    let addr = d.metrics_addr();
    std::fs::remove_dir_all(&site.watch).unwrap();
    // The next rescan finds it gone: unhealthy, with the reason, no exit.
    let end = Instant::now() + Duration::from_secs(30);
    let health = loop {
        d.status("idle");
        let h = http(&addr, "GET", "/healthz", None, "");
        if h.contains("unhealthy") || Instant::now() > end {
            break h;
        }
    };
    assert!(
        health.contains("the drop folder of source codes is missing"),
        "{health}"
    );
    let metrics = http(&addr, "GET", "/metrics", None, "");
    assert!(
        metrics.contains("visync_folder_missing{source=\"codes\",role=\"drop\"} 1"),
        "{metrics}"
    );
    // Back: watched again, and what arrives is taken.
    std::fs::create_dir(&site.watch).unwrap();
    site.drop_file("a.csv", export(2, 600).as_bytes());
    d.status("2 confirmed");
    let health = http(&addr, "GET", "/healthz", None, "");
    assert!(health.contains("\"status\":\"ok\""), "{health}");
}
