//! `visync decommission` against the real reference index: what it would
//! do, doing it (zero active signals at the index, an empty store, one
//! audit event that verifies), a second run, and runs that are interrupted
//! (credentials refused; the process killed mid-send) and run again.

mod common;
mod reconcile_support;

use common::*;
use reconcile_support::*;

/// Three children registered and confirmed; a fourth queued, never sent.
fn registered(sim: &Sim) -> Site {
    let (site, _) = site_with(sim, "", 3);
    assert_eq!(sim.stats()["active_signals"], 3);
    site
}

fn rows_in(site: &Site, table: &str) -> u64 {
    query(site, &format!("SELECT COUNT(*) FROM {table}"))[0][0]
        .parse()
        .unwrap()
}

fn assert_purged(site: &Site, sim: &Sim) {
    assert_eq!(
        sim.stats()["active_signals"],
        0,
        "nothing active at the index"
    );
    for table in [
        "signals",
        "notices",
        "outbox",
        "holds",
        "objections",
        "files",
    ] {
        assert_eq!(rows_in(site, table), 0, "{table} is empty");
    }
    assert_eq!(
        query(site, "SELECT kind FROM audit"),
        [["decommissioned".to_string()]]
    );
    assert_eq!(
        query(site, "SELECT name FROM cursors"),
        [["audit.horizon".to_string()]],
        "only the chain's head is kept"
    );
    assert!(
        !site.dir.path().join("state/subject.key").exists(),
        "the key is gone"
    );
    let verify = site.run(&["audit", "verify"]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    assert!(
        verify.stdout.contains("intact: 1 events"),
        "{}",
        verify.stdout
    );
}

#[test]
fn decommission_says_what_it_would_do_then_withdraws_everything_and_purges() {
    let sim = Sim::start(&[]);
    let site = registered(&sim);

    let dry = site.run(&["decommission"]);
    assert_eq!(dry.code, 1, "{}", dry.stderr);
    assert!(
        dry.stderr.contains("would withdraw 3 signals"),
        "{}",
        dry.stderr
    );
    assert!(dry.stderr.contains("source \"codes\": 3"), "{}", dry.stderr);
    assert_eq!(
        sim.stats()["active_signals"],
        3,
        "nothing done without --confirm"
    );
    assert_eq!(rows_in(&site, "signals"), 3);

    let done = site.run(&["decommission", "--confirm"]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_purged(&site, &sim);

    let again = site.run(&["decommission", "--confirm"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("nothing to decommission"),
        "{}",
        again.stderr
    );
    assert!(
        !site.dir.path().join("state/subject.key").exists(),
        "no new key made"
    );
}

#[test]
fn a_decommission_the_index_refuses_is_reported_and_finishes_when_run_again() {
    let sim = Sim::start(&[]);
    let site = registered(&sim);
    let token = site.dir.path().join("token");
    std::fs::write(&token, "not-the-token\n").unwrap();

    let refused = site.run(&["decommission", "--confirm"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("NOT finished: 3 signals"),
        "{}",
        refused.stderr
    );
    assert_eq!(sim.stats()["active_signals"], 3);
    assert_eq!(rows_in(&site, "signals"), 3, "nothing purged");

    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let done = site.run(&["decommission", "--confirm"]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_purged(&site, &sim);
}

/// Killed after the index took the withdrawals and before they were
/// recorded: the next run sends them again (the index says they are not
/// active any more, which counts as done) and finishes.
#[test]
fn a_decommission_killed_mid_send_finishes_when_run_again() {
    let sim = Sim::start(&[]);
    let site = registered(&sim);
    let killed = site.run_env(
        &["decommission", "--confirm"],
        &[("VISYNCTEST_CRASH_AT", "send-after-single-call:2")],
    );
    assert_ne!(killed.code, 0, "{}", killed.stderr);
    assert!(
        killed.stderr.contains("aborting here on purpose"),
        "{}",
        killed.stderr
    );
    assert_eq!(rows_in(&site, "signals"), 3, "nothing purged yet");
    assert_eq!(
        sim.stats()["active_signals"],
        1,
        "two withdrawals reached the index"
    );

    let done = site.run(&["decommission", "--confirm"]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_purged(&site, &sim);
}
