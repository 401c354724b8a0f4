//! The crash test: `visync run --once` dying (abort, like SIGKILL) at crash
//! points drawn from a fixed seed, while the index fails, throttles, stalls and drops connections; then clean
//! passes. Every signal must be at the index exactly once, and every file in
//! `processed/`.

mod common;

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

/// Runs one pass that aborts at the `nth` time it reaches `point` (like a
/// SIGKILL: no destructor, no flush); `None` when it died there.
fn pass_crashing_at(site: &Site, point: &str, nth: u64) -> Option<i32> {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_visync"))
        .args([
            "--today",
            TODAY,
            "run",
            "--once",
            "-c",
            site.config.to_str().unwrap(),
        ])
        // Small batches: several in flight when the crash comes.
        .env("VISYNC_INDEX__BATCH_SIZE", "16")
        .env("VISYNCTEST_CRASH_AT", format!("{point}:{nth}"))
        // Retries due at once, and the same waits for the same seed.
        .env("VISYNCTEST_BACKOFF_UNIT_MS", "0")
        .env("VISYNCTEST_JITTER_SEED", "42")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    status.code()
}

#[test]
fn a_crash_at_every_point_of_a_pass_loses_and_duplicates_nothing() {
    let mapping = repo().join("tests/fixtures/cases/csv-codes/mapping.toml");
    let sim = Sim::start(&["--chaos", "0.3", "--seed", "7"]);
    let site = Site::new(&sim, &mapping, "\n[policy]\nmax_withdraw_fraction = 1.0\n");
    let all = bsns(300);
    // Three exports: 200 children; 300 with every name corrected; 250 (50
    // end). Each is dropped once the one before is in the store, and every
    // phase of the work is crashed into (src/fault.rs): before and after the
    // file's commit, after the index answered a batch (the Nth, drawn from a
    // fixed seed, so that a failure names its crash and runs again alike),
    // and after a page of notices was stored.
    let exports = [
        ("1.csv", snapshot(&all, 200, "Jansen")),
        ("2.csv", snapshot(&all, 300, "Janssen")),
        ("3.csv", snapshot(&all, 250, "Janssen")),
    ];
    let mut rng = fastrand::Rng::with_seed(42);
    let mut crashes = Vec::new();
    for (name, text) in &exports {
        site.drop_file(name, text.as_bytes());
        crashes.push(("ingest-before-commit", 1));
        crashes.push(("ingest-after-commit", 1));
        for _ in 0..2 {
            crashes.push(("send-after-call", rng.u64(1..=3)));
        }
        for &(point, nth) in &crashes[crashes.len() - 4..] {
            let code = pass_crashing_at(&site, point, nth);
            assert_eq!(code, None, "the pass did not reach {point}:{nth}");
        }
    }
    assert_eq!(pass_crashing_at(&site, "notices-after-store", 1), None);

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
    // Crashes mid-transaction left the audit trail whole.
    let verify = site.run(&["audit", "verify"]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    assert!(verify.stdout.contains("intact"), "{}", verify.stdout);
}
