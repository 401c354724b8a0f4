//! The shipped unit, checked with `systemd-analyze`: it verifies (with the
//! binary this build made in place of /usr/bin/visync), and its hardening
//! rates 2.0 or lower. `systemd-analyze` is on the developers' machines and
//! in CI, where this test runs; only a machine without systemd skips it,
//! and says so.

mod common;

use std::process::Command;

fn analyze_present() -> bool {
    Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn unit() -> String {
    std::fs::read_to_string(common::repo().join("systemd/visync.service")).unwrap()
}

#[test]
fn the_unit_verifies_and_rates_two_or_lower() {
    if !analyze_present() {
        eprintln!("SKIPPED: systemd-analyze is not installed on this machine");
        return;
    }
    let text = unit();
    assert!(text.contains("Type=notify"), "the daemon notifies systemd");
    assert!(text.contains("WatchdogSec="));
    assert!(text.contains("ExecReload=/bin/kill -HUP $MAINPID"));

    // verify: the unit as shipped, with this build's binary at its place.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("visync.service");
    std::fs::write(
        &copy,
        text.replace("/usr/bin/visync", env!("CARGO_BIN_EXE_visync")),
    )
    .unwrap();
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stderr).into_owned()
        + &String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "systemd-analyze verify: {said}");
    // Warnings about this machine (no systemd running, no such user) are not
    // the unit's; anything naming the unit file is.
    let ours: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("visync.service:"))
        .collect();
    assert!(ours.is_empty(), "systemd-analyze verify: {ours:?}");

    // security: the exposure level of the shipped unit.
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(common::repo().join("systemd/visync.service"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&security.stdout);
    let level: f64 = out
        .lines()
        .find_map(|l| l.split("exposure level for visync.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{out}"));
    assert!(
        level <= 2.0,
        "exposure level {level} (must be 2.0 or lower)"
    );
}
