//! `visync run --once` against the real reference index on loopback: the
//! whole flow from a drop folder to the index, exactly once.

mod common;

use common::*;

fn mapping() -> std::path::PathBuf {
    repo().join("tests/fixtures/cases/csv-codes/mapping.toml")
}

const HEADER: &str = "bsn,achternaam,geboren,geslacht,mw,mw_naam,mw_mail,dossier,start,eind,vir";

/// A snapshot of children `range` of `all`, with `name` as every family name.
fn snapshot(all: &[String], range: std::ops::Range<usize>, name: &str) -> String {
    let mut s = format!("{HEADER}\n");
    for i in range {
        s.push_str(&format!(
            "{},{name},04-03-2012,M,E1,A. Vries,a@x.example,D{i},01-11-2026,,J\n",
            all[i]
        ));
    }
    s
}

#[test]
fn registers_once_and_a_rerun_sends_nothing() {
    let sim = Sim::start(&[]);
    let site = Site::new(&sim, &mapping(), "");
    let all = bsns(10);
    site.drop_file("a.csv", snapshot(&all, 0..10, "Jansen").as_bytes());
    let run = site.run(&["run", "--once"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("planned: 10 register"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("index: 10 confirmed"), "{}", run.stderr);
    let stats = sim.stats();
    assert_eq!(stats["active_signals"], 10);
    assert_eq!(stats["duplicate_signals"], 0);
    assert!(site.waiting().is_empty());
    assert!(site.watch.join(format!("processed/{TODAY}/a.csv")).exists());
    let calls = stats["register_calls"].clone();

    // The same content under a new name is recognised and not read again;
    // a new export with the same data plans nothing.
    site.drop_file("b.csv", snapshot(&all, 0..10, "Jansen").as_bytes());
    let mut same = snapshot(&all, 0..10, "Jansen");
    same.push('\n');
    site.drop_file("c.csv", same.as_bytes());
    let again = site.run(&["run", "--once"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("1 taken, 1 already taken"),
        "{}",
        again.stderr
    );
    assert!(
        again
            .stderr
            .contains("planned: 0 register, 0 update, 0 withdraw"),
        "{}",
        again.stderr
    );
    assert_eq!(sim.stats()["register_calls"], calls, "nothing was sent");
    // A BSN never reaches the log.
    for b in &all {
        assert!(!run.stderr.contains(b.as_str()) && !again.stderr.contains(b.as_str()));
    }
}

#[test]
fn corrections_update_and_a_smaller_snapshot_withdraws() {
    let sim = Sim::start(&[]);
    let site = Site::new(
        &sim,
        &mapping(),
        "\n[policy]\nmax_withdraw_fraction = 0.5\n",
    );
    let all = bsns(10);
    site.drop_file("1.csv", snapshot(&all, 0..10, "Jansen").as_bytes());
    assert_eq!(site.run(&["run", "--once"]).code, 0);
    // Two children leave, every name is corrected.
    site.drop_file("2.csv", snapshot(&all, 0..8, "Janssen").as_bytes());
    let run = site.run(&["run", "--once"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("planned: 0 register, 8 update, 2 withdraw"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("index: 10 confirmed"), "{}", run.stderr);
    let stats = sim.stats();
    assert_eq!(stats["active_signals"], 8);
    assert_eq!(
        stats["archived_signals"], 2,
        "risk_ended withdrawals are archived"
    );
}

/// Small batches, so that several are in flight: batch N+1 goes out while
/// batch N is recorded. The withdrawals of the second file wait behind their
/// signals' registrations; one sent first would be refused (404).
#[test]
fn pipelined_batches_keep_each_signals_order() {
    let sim = Sim::start(&[]);
    let site = Site::new(
        &sim,
        &mapping(),
        "\n[policy]\nmax_withdraw_fraction = 1.0\n",
    );
    let all = bsns(40);
    site.drop_file("1.csv", snapshot(&all, 0..40, "Jansen").as_bytes());
    site.drop_file("2.csv", snapshot(&all, 0..20, "Jansen").as_bytes());
    let run = site.run_env(&["run", "--once"], &[("VISYNC_INDEX__BATCH_SIZE", "7")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("index: 60 confirmed, 0 refused"),
        "{}",
        run.stderr
    );
    let stats = sim.stats();
    assert_eq!(stats["active_signals"], 20, "{stats}");
    assert_eq!(stats["archived_signals"], 20, "{stats}");
    assert_eq!(stats["duplicate_signals"], 0, "{stats}");
    // 40 registrations in batches of 7: 6 calls, none repeated.
    assert_eq!(stats["register_calls"], 6, "{stats}");
}

#[test]
fn a_truncated_snapshot_is_held_until_released() {
    let sim = Sim::start(&[]);
    let site = Site::new(&sim, &mapping(), "");
    let all = bsns(20);
    site.drop_file("1.csv", snapshot(&all, 0..20, "Jansen").as_bytes());
    assert_eq!(site.run(&["run", "--once"]).code, 0);
    // Half the export is missing: the 10 withdrawals are held, one new child goes ahead.
    let mut half = snapshot(&all, 0..10, "Jansen");
    half.push_str(&format!(
        "{},Nieuw,04-03-2012,M,E2,B. Bos,b@x.example,N1,01-11-2026,,J\n",
        bsns(21)[20]
    ));
    site.drop_file("2.csv", half.as_bytes());
    let run = site.run(&["run", "--once"]);
    assert!(
        run.stderr
            .contains("planned: 1 register, 0 update, 0 withdraw, 0 renew, 10 withdrawals held"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("max_withdraw_fraction"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.stats()["active_signals"], 21);
    let status = site.run(&["status"]);
    assert!(status.stdout.contains("HELD "), "{}", status.stdout);
    let json = site.run(&["status", "--json"]).json();
    assert_eq!(json["queue"]["held"], 10);
    assert_eq!(json["held"][0]["withdrawals"], 10);

    let released = site.run(&["release", "--source", "codes"]);
    assert_eq!(released.code, 0, "{}{}", released.stdout, released.stderr);
    assert_eq!(
        site.run(&["release", "--source", "codes"]).code,
        1,
        "nothing is held any more"
    );
    assert_eq!(site.run(&["run", "--once"]).code, 0);
    assert_eq!(sim.stats()["active_signals"], 11);
}

#[test]
fn item_errors_are_recorded_and_reported() {
    // A region whose index stops at 12: our 14-year-olds are refused by it.
    let sim = Sim::start(&["--age-limit", "12"]);
    let site = Site::new(&sim, &mapping(), "");
    let all = bsns(3);
    site.drop_file("1.csv", snapshot(&all, 0..3, "Jansen").as_bytes());
    let run = site.run(&["run", "--once"]);
    assert_eq!(run.code, 1, "refused items exit 1\n{}", run.stderr);
    assert!(
        run.stderr.contains("index: 0 confirmed, 3 refused"),
        "{}",
        run.stderr
    );
    let status = site.run(&["status", "--json"]).json();
    assert_eq!(status["signals"]["rejected"], 3);
    assert_eq!(
        status["queue"]["ready"], 0,
        "a refused item is final, not retried"
    );
    // The next pass does not send them again.
    let calls = sim.stats()["register_calls"].clone();
    assert_eq!(site.run(&["run", "--once"]).code, 0);
    assert_eq!(sim.stats()["register_calls"], calls);
}

#[test]
fn a_wrong_token_stops_sending_and_keeps_the_queue() {
    let sim = Sim::start(&[]);
    let site = Site::new(&sim, &mapping(), "");
    std::fs::write(site.dir.path().join("token"), "wrong\n").unwrap();
    let all = bsns(4);
    site.drop_file("1.csv", snapshot(&all, 0..4, "Jansen").as_bytes());
    let run = site.run(&["run", "--once"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("refused our credentials"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("wrong"), "the token is never logged");
    assert_eq!(site.run(&["status", "--json"]).json()["queue"]["ready"], 4);
    assert_eq!(sim.stats()["active_signals"], 0);
    // Fixed: the queue goes out.
    std::fs::write(site.dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    assert_eq!(site.run(&["run", "--once"]).code, 0);
    assert_eq!(sim.stats()["active_signals"], 4);
}

#[test]
fn an_unreadable_file_goes_to_rejected_with_a_report_and_the_rest_goes_ahead() {
    let sim = Sim::start(&[]);
    let site = Site::new(&sim, &mapping(), "");
    let all = bsns(2);
    site.drop_file("a-good.csv", snapshot(&all, 0..2, "Jansen").as_bytes());
    site.drop_file("b-bad.csv", b"bsn,achternaam\n\x00\x01binary");
    let run = site.run(&["run", "--once"]);
    assert!(
        run.stderr
            .contains("1 taken, 0 already taken, 1 unreadable"),
        "{}",
        run.stderr
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(site.watch.join("rejected/b-bad.csv.error.json")).unwrap(),
    )
    .unwrap();
    assert!(
        report["error"].as_str().unwrap().contains("binary"),
        "{report}"
    );
    assert!(site.watch.join("rejected/b-bad.csv").exists());
    assert_eq!(sim.stats()["active_signals"], 2);
}

#[test]
fn check_plans_against_the_real_state_and_changes_nothing() {
    let sim = Sim::start(&[]);
    let site = Site::new(
        &sim,
        &mapping(),
        "\n[policy]\nmax_withdraw_fraction = 0.5\n",
    );
    let all = bsns(10);
    site.drop_file("1.csv", snapshot(&all, 0..10, "Jansen").as_bytes());
    assert_eq!(site.run(&["run", "--once"]).code, 0);
    // The next export: two children gone, one renamed, one new.
    let mut next = snapshot(&all, 0..8, "Jansen").replacen(",Jansen,", ",Janssen,", 1);
    next.push_str(&format!(
        "{},Nieuw,04-03-2012,M,E1,A. Vries,a@x.example,D99,01-11-2026,,J\n",
        bsns(11)[10]
    ));
    site.drop_file("2.csv", next.as_bytes());
    // SQLite's own companion files (-wal, -shm) may come and go with any
    // reader; everything else must stay as it is.
    let files = || -> Vec<String> {
        tree(site.dir.path())
            .into_iter()
            .filter(|f| !f.ends_with("-wal") && !f.ends_with("-shm"))
            .collect()
    };
    let before = files();
    let digest = site.store_contents();
    let calls = sim.stats()["register_calls"].clone();
    let check = site.run(&["check", "--json"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let plan = &check.json()["plan"];
    assert_eq!(
        (
            plan["register"].as_u64(),
            plan["update"].as_u64(),
            plan["withdraw"].as_u64(),
            plan["unchanged"].as_u64()
        ),
        (Some(1), Some(1), Some(2), Some(7))
    );
    assert_eq!(files(), before, "check moved or created something");
    assert!(site.store_contents() == digest, "check wrote to the store");
    assert_eq!(sim.stats()["register_calls"], calls, "check sent something");
}
