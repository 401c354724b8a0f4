//! The crash test: `visync run --once` killed with SIGKILL at random moments
//! while the index fails, throttles, stalls and drops connections; then clean
//! passes. Every signal must be at the index exactly once, and every file in
//! `processed/`.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;

fn snapshot(all: &[String], n: usize, name: &str) -> String {
    let mut s =
        String::from("bsn,achternaam,geboren,geslacht,mw,mw_naam,mw_mail,dossier,start,eind,vir\n");
    for (i, b) in all.iter().take(n).enumerate() {
        s.push_str(&format!(
            "{b},{name},04-03-2012,M,E{},A. Vries,a@x.example,D{i},01-11-2026,,J\n",
            i % 3
        ));
    }
    s
}

/// Runs one pass and kills it after `after` unless it ended first. The wait
/// is on the child itself (a waiter thread), not a sleep: a pass that ends
/// sooner is not waited for.
fn pass_killed_after(site: &Site, after: Duration) -> Option<i32> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_visync"))
        .args([
            "--today",
            TODAY,
            "run",
            "--once",
            "-c",
            site.config.to_str().unwrap(),
        ])
        // Small batches: several in flight when the kill comes.
        .env("VISYNC_INDEX__BATCH_SIZE", "16")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait().unwrap();
        let _ = tx.send(status.code());
    });
    let code = match rx.recv_timeout(after) {
        Ok(code) => code,
        Err(_) => {
            // SIGKILL: no destructor, no flush, no goodbye.
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            rx.recv().ok().flatten()
        }
    };
    waiter.join().unwrap();
    code
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let mapping = repo().join("tests/fixtures/cases/csv-codes/mapping.toml");
    let sim = Sim::start(&["--chaos", "0.3", "--seed", "7"]);
    let site = Site::new(&sim, &mapping, "\n[policy]\nmax_withdraw_fraction = 1.0\n");
    let all = bsns(300);
    // Three exports: 200 children; 300 with every name corrected; 250 (50 end).
    site.drop_file("1.csv", snapshot(&all, 200, "Jansen").as_bytes());
    site.drop_file("2.csv", snapshot(&all, 300, "Janssen").as_bytes());
    site.drop_file("3.csv", snapshot(&all, 250, "Janssen").as_bytes());

    let mut rng = fastrand::Rng::with_seed(42);
    let mut killed = 0;
    for _ in 0..12 {
        if pass_killed_after(&site, Duration::from_millis(rng.u64(20..1500))).is_none() {
            killed += 1;
        }
    }
    assert!(
        killed >= 3,
        "only {killed} passes were killed: the test did not crash anything"
    );

    // The index recovers; clean passes finish the work.
    let sim = Sim::restart(sim.stop(), &[]);
    site.point_at(&sim);
    let mut last = None;
    for _ in 0..4 {
        let run = site.run(&["run", "--once"]);
        let code = run.code;
        last = Some(run);
        if code == 0 {
            break;
        }
    }
    let last = last.unwrap();
    assert_eq!(last.code, 0, "clean passes converge:\n{}", last.stderr);

    let stats = sim.stats();
    assert_eq!(stats["duplicate_signals"], 0, "{stats}");
    assert_eq!(stats["active_signals"], 250, "{stats}");
    assert_eq!(stats["archived_signals"], 50, "{stats}");
    assert!(
        site.waiting().is_empty(),
        "every file was taken: {:?}",
        site.waiting()
    );
    assert!(!site.watch.join("rejected").exists());
    let processed: Vec<_> = std::fs::read_dir(site.watch.join(format!("processed/{TODAY}")))
        .unwrap()
        .collect();
    assert_eq!(processed.len(), 3);
    let status = site.run(&["status", "--json"]).json();
    assert_eq!(status["queue"]["ready"], 0, "{status}");
    assert_eq!(status["queue"]["quarantined"], 0, "{status}");
    assert_eq!(status["signals"]["active"], 250, "{status}");
    let verify = site.run(&["status"]);
    assert_eq!(verify.code, 0);
}
