//! `visync reconcile` against the real reference index on loopback: the
//! comparison (paged), `missing` and `unknown`, an index that fails, and
//! the nightly job in the daemon. The law's clock (expiry, the age limit,
//! retention, renewals) is in `reconcile_rules.rs`.

mod common;
mod reconcile_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use reconcile_support::*;

/// The report's keys are exactly reconcile.md's.
fn assert_shape(report: &serde_json::Value) {
    let mut keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "as_of",
            "compared",
            "end_date_taken",
            "expired",
            "missing",
            "purged",
            "renewal_due",
            "renewed",
            "unknown",
            "unknown_signals"
        ]
    );
    let mut purged: Vec<&str> = report["purged"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    purged.sort();
    assert_eq!(purged, ["audit_events", "notices", "signals"]);
}

#[test]
fn an_index_that_agrees_is_compared_page_by_page_and_nothing_changes() {
    let sim = Sim::start(&[]);
    // Two pages of the listing (500 a page); the test range holds 909 BSNs.
    let (site, _) = site_with(&sim, "", 900);
    let before = states(&site);
    let stats = sim.stats();

    let (code, report) = reconcile(&site, &[]);
    assert_eq!(code, 0, "{report}");
    assert_shape(&report);
    assert_eq!(report["as_of"], TODAY);
    assert_eq!(report["compared"], 900, "every page was read: {report}");
    for k in [
        "missing",
        "unknown",
        "end_date_taken",
        "renewal_due",
        "renewed",
        "expired",
    ] {
        assert_eq!(report[k], 0, "{k}: {report}");
    }
    assert_eq!(report["unknown_signals"], serde_json::json!([]));
    assert_eq!(states(&site), before);
    assert_eq!(sim.stats()["register_calls"], stats["register_calls"]);
    assert_eq!(sim.stats()["active_signals"], 900);
}

#[test]
fn signals_the_index_lost_are_missing_and_registered_again_with_their_own_ids() {
    let sim = Sim::start(&[]);
    let (site, kids) = site_with(&sim, "", 3);
    let rows = young(&kids);
    let ids: Vec<String> = states(&site).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 3);

    // The index loses everything: a fresh database on the same address.
    let addr = sim.addr.clone();
    drop(sim.stop());
    let sim = Sim::restart_on(tempfile::tempdir().unwrap(), &addr);
    let (code, report) = reconcile(&site, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["missing"], 3, "{report}");
    assert_eq!(report["compared"], 0);
    assert!(states(&site).iter().all(|(_, s)| s == "missing"));
    assert!(at_index(&sim, TOKEN).is_empty(), "reconcile sends nothing");

    // A second night says the same and changes nothing.
    let (_, again) = reconcile(&site, &[]);
    assert_eq!(again["missing"], 0, "already marked: {again}");

    // The next snapshot that lists them registers them with the same ids.
    let mut rows = rows.clone();
    rows.reverse();
    take(&site, "2.csv", &rows);
    let back: Vec<String> = at_index(&sim, TOKEN).into_iter().map(|s| s.0).collect();
    assert_eq!(back, ids, "the same signal ids at the index");
    // The audit trail names those ids too, not ids the planner made up.
    let trail = site.run(&["audit", "export"]);
    assert_eq!(trail.code, 0, "{}", trail.stderr);
    let planned: Vec<String> = trail
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "register_planned")
        .map(|e| e["signal_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(planned.len(), 6, "three registrations, twice");
    let mut again = planned[3..].to_vec();
    again.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(
        again, want,
        "re-registered under their own ids in the trail"
    );
    assert!(
        states(&site).iter().all(|(_, s)| s == "active"),
        "{:?}",
        states(&site)
    );
    assert_eq!(sim.stats()["duplicate_signals"], 0);
    let (_, after) = reconcile(&site, &[]);
    assert_eq!(after["missing"], 0, "{after}");
    assert_eq!(after["compared"], 3, "{after}");
}

#[test]
fn a_signal_of_another_installation_is_unknown_reported_and_left_alone() {
    let sim = Sim::start(&[]);
    let (ours, theirs) = (site(&sim, ""), site(&sim, ""));
    let kids = bsns(2);
    ours.drop_file("1.csv", export(&[(&kids[0], YOUNG, "E1", "D1")]).as_bytes());
    theirs.drop_file("1.csv", export(&[(&kids[1], YOUNG, "E7", "D9")]).as_bytes());
    pass(&ours);
    pass(&theirs);
    let (their_id, _) = states(&theirs).remove(0);

    let r = ours.run(&["reconcile", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = r.json();
    assert_eq!(report["unknown"], 1, "{report}");
    assert_eq!(
        report["unknown_signals"],
        serde_json::json!([{ "signal_id": their_id, "professional_id": "E7" }])
    );
    assert_eq!(report["missing"], 0);
    // Left alone: still active at the index, nothing withdrawn.
    assert_eq!(sim.stats()["active_signals"], 2);
    // Named by id and professional only, in the log too.
    for text in [&r.stdout, &r.stderr] {
        assert!(
            !text.contains(&kids[1]) && !text.contains(&kids[0]),
            "{text}"
        );
    }
}

/// An index that cannot be reached: the listing is retried, then given up,
/// and nothing is marked (a listing that broke off would make every signal
/// not yet listed look missing).
#[test]
fn an_index_that_cannot_be_reached_leaves_the_comparison_for_the_next_run() {
    let sim = Sim::start(&[]);
    let (site, _) = site_with(&sim, "", 2);
    let before = states(&site);

    let dir = sim.stop();
    let r = site.run_env(
        &["reconcile"],
        &[
            ("VISYNCTEST_BACKOFF_UNIT_MS", "0"),
            ("VISYNCTEST_JITTER_SEED", "1"),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("NOT COMPARED"), "{}", r.stderr);
    assert_eq!(states(&site), before, "nothing marked missing");

    // The index back: the next run compares.
    let sim = Sim::restart(dir, &[]);
    site.point_at(&sim);
    let (code, report) = reconcile(&site, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["compared"], 2);
    assert_eq!(report["missing"], 0);
}

/// A chaotic index (failures, rate limits, slow and dropped answers on
/// most calls): whatever a run manages, it never takes a broken listing
/// for a lost signal.
#[test]
fn a_chaotic_index_never_makes_a_signal_look_missing() {
    let sim = Sim::start(&[]);
    let (site, _) = site_with(&sim, "", 3);
    let before = states(&site);
    let mut dir = sim.stop();
    let mut compared = 0;
    for seed in ["1", "2", "3"] {
        let chaotic = Sim::restart(dir, &["--chaos", "0.7", "--seed", seed]);
        site.point_at(&chaotic);
        let r = site.run_env(
            &["reconcile", "--json"],
            &[
                ("VISYNCTEST_BACKOFF_UNIT_MS", "0"),
                ("VISYNCTEST_JITTER_SEED", seed),
            ],
        );
        let report = r.json();
        assert_eq!(report["missing"], 0, "seed {seed}: {report}");
        if !r.stderr.contains("NOT COMPARED") {
            assert_eq!(report["compared"], 3, "seed {seed}: {report}");
            compared += 1;
        }
        assert_eq!(states(&site), before, "seed {seed}");
        dir = chaotic.stop();
    }
    assert!(
        compared > 0,
        "retries get a listing through a chaotic index"
    );
}

/// The daemon's `[schedule] reconcile` runs the same reconciliation: here
/// every second, against an index that lost the signal.
#[test]
fn the_nightly_job_in_the_daemon_marks_what_the_index_lost() {
    let sim = Sim::start(&[]);
    let site = site(
        &sim,
        "\n[schedule]\nreconcile = \"* * * * * *\"\n\n[http]\nlisten = \"\"\n",
    );
    let kids = bsns(1);
    take(&site, "1.csv", &[(&kids[0], YOUNG, "E1", "D")]);
    let addr = sim.addr.clone();
    drop(sim.stop());
    let _sim = Sim::restart_on(tempfile::tempdir().unwrap(), &addr);

    let mut child = Command::new(env!("CARGO_BIN_EXE_visync"))
        .args(["--today", TODAY, "run", "-c", site.config.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[visync] {line}");
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let line = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no reconciliation within 30 s: {seen:#?}"));
        if line.contains("reconciliation as of") {
            break line;
        }
        seen.push(line);
    };
    // A dry run takes no lock: it runs beside the daemon, and sees the
    // signal marked by the daemon's run as missing already.
    let (code, dry) = reconcile(&site, &["--dry-run"]);
    assert_eq!(code, 0, "{dry}");
    assert_eq!(dry["missing"], 0, "{dry}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(line.contains("1 missing"), "{line}");
    assert_eq!(states(&site)[0].1, "missing");
}

/// A signal renewed at the index by someone else: its end date is taken,
/// and the next file of the source does not correct it back.
#[test]
fn an_end_date_moved_at_the_index_is_taken() {
    let sim = Sim::start(&[]);
    let site = site(&sim, "");
    let kids = bsns(1);
    let rows = [(kids[0].as_str(), YOUNG, "E1", "D")];
    take(&site, "1.csv", &rows);
    let (id, _) = states(&site).remove(0);
    let answer = http(
        &sim.addr,
        "POST",
        &format!("/v1/signals/{id}/renew"),
        Some(TOKEN),
        r#"{"end_date": "2028-11-20"}"#,
    );
    assert!(answer.contains("2028-11-20"), "{answer}");

    let (code, report) = reconcile(&site, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["end_date_taken"], 1, "{report}");
    let end = query(&site, "SELECT end_date FROM signals");
    assert_eq!(end[0][0], "2028-11-20");
    // The same snapshot again plans nothing that would undo it.
    let mut again = export(&rows);
    again.push_str(&format!(
        "{},Kind,{YOUNG},V,E1,E1 Naam,e1@x.example,D,01-11-2026,,N\n",
        kids[0]
    ));
    site.drop_file("2.csv", again.as_bytes());
    pass(&site);
    assert_eq!(at_index(&sim, TOKEN)[0].2, "2028-11-20");
    let (_, report) = reconcile(&site, &[]);
    assert_eq!(report["end_date_taken"], 0, "{report}");
}

/// Killed (as by SIGKILL) between two chunks of a step: what was committed
/// stays, consistent, and the next run completes the rest.
#[test]
fn a_reconciliation_killed_between_chunks_is_completed_by_the_next() {
    let sim = Sim::start(&[]);
    // More than one chunk (500) to expire.
    let (site, _) = site_with(&sim, "", 600);
    sim_clock(&sim, "2028-11-02");

    let killed = site.run_env(
        &["reconcile", "--as-of", "2028-11-02"],
        &[("VISYNCTEST_CRASH_AT", "reconcile-chunk")],
    );
    assert_ne!(killed.code, 0, "{}", killed.stderr);
    assert!(
        killed.stderr.contains("aborting here on purpose"),
        "{}",
        killed.stderr
    );
    let expired = |site: &Site| {
        query(site, "SELECT COUNT(*) FROM signals WHERE state = 'expired'")[0][0].clone()
    };
    assert_eq!(expired(&site), "500", "the first chunk committed, whole");

    let (code, report) = reconcile(&site, &["--as-of", "2028-11-02"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["expired"], 100, "the rest: {report}");
    assert_eq!(expired(&site), "600");
    let verify = site.run(&["audit", "verify"]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
}
