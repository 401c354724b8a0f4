//! The law's clock, kept locally and at the index (domain.md's rules,
//! reconcile.md's steps 2 to 4): renewals, expiry, the age limit and
//! retention, with the reference index's calendar moved (`/sim/clock`) and
//! `visync reconcile --as-of` previewing or running a future night.

mod common;
mod reconcile_support;

use common::*;
use reconcile_support::*;

/// Born 04-03-2012: far from the age limit (last day 2035-03-03).
/// Born 04-03-2006: 20 on the start date, last day 2029-03-03.
const OLDER: &str = "04-03-2006";
/// Born 15-12-2004: 21 on the start date, 23 on 2027-12-15.
const NEAR_23: &str = "15-12-2004";

/// Rule rows "under 23 only", "active at most 2 years", "expired signals
/// archived for 5 years, then destroyed", "all data destroyed at 23", and
/// retention of delivered notices (`notice_days`); the dry run of each
/// night reports exactly what the night then does, and changes no byte.
#[test]
fn expiry_the_age_limit_and_the_archive_follow_the_rules() {
    let sim = Sim::start(&[]);
    let site = site(&sim, "");
    let kids = bsns(2);
    let (young, near) = (&kids[0], &kids[1]);
    take(
        &site,
        "1.csv",
        &[(young, YOUNG, "E1", "D1"), (near, NEAR_23, "E1", "D2")],
    );
    assert_eq!(
        delivered(&site).len(),
        2,
        "two notify_subject tasks delivered"
    );

    // The 23rd birthday of one child: a dry run first.
    sim_clock(&sim, "2027-12-15");
    let bytes = store_bytes(&site);
    let calls = sim.stats()["register_calls"].clone();
    let (code, dry) = reconcile(&site, &["--dry-run", "--as-of", "2027-12-15"]);
    assert_eq!(code, 0, "{dry}");
    assert_eq!(
        store_bytes(&site),
        bytes,
        "a dry run changes no byte of the store"
    );
    assert_eq!(sim.stats()["register_calls"], calls);
    let (code, night) = reconcile(&site, &["--as-of", "2027-12-15"]);
    assert_eq!(code, 0, "{night}");
    assert_eq!(dry, night, "the dry run reports what the night does");
    assert_eq!(night["as_of"], "2027-12-15");
    assert_eq!(night["expired"], 1, "{night}");
    assert_eq!(night["missing"], 0, "the index purged it too: not missing");
    // Its signal and notices, and (90 days after delivery) the other's.
    assert_eq!(night["purged"]["signals"], 1, "{night}");
    assert_eq!(night["purged"]["notices"], 2, "{night}");
    let gone = site.run(&["subject", "--bsn", near]);
    assert_eq!(
        gone.code, 1,
        "nothing held about the 23-year-old: {}",
        gone.stdout
    );
    assert_eq!(states(&site).len(), 1);
    assert_eq!(states(&site)[0].1, "active");

    // The other signal's end date (start + 2 years) passes: expired here too.
    sim_clock(&sim, "2028-11-02");
    let (_, night) = reconcile(&site, &["--as-of", "2028-11-02"]);
    assert_eq!(night["expired"], 1, "{night}");
    assert_eq!(night["purged"]["signals"], 0, "archived, not destroyed");
    assert_eq!(states(&site)[0].1, "expired");

    // Archived from 2028-11-02 for 5 years: kept on 2033-11-01, gone on the 2nd.
    let (_, night) = reconcile(&site, &["--as-of", "2033-11-01"]);
    assert_eq!(night["purged"]["signals"], 0, "{night}");
    let (_, night) = reconcile(&site, &["--as-of", "2033-11-02"]);
    assert_eq!(night["purged"]["signals"], 1, "{night}");
    assert!(states(&site).is_empty());
    let verify = site.run(&["audit", "verify"]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
}

/// Rule row "unjustified ones are not archived; all data destroyed at
/// death" (and an objection): withdrawn for such a reason, a signal leaves
/// the store at the next reconciliation, its id only in the audit trail.
#[test]
fn a_signal_withdrawn_on_objection_leaves_the_store_at_once() {
    let sim = Sim::start(&[]);
    let site = site(&sim, "");
    let kids = bsns(2);
    take(
        &site,
        "1.csv",
        &[(&kids[0], YOUNG, "E1", "D1"), (&kids[1], YOUNG, "E1", "D2")],
    );
    let r = site.run(&["object", "--bsn", &kids[0]]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    pass(&site);
    let withdrawn = query(
        &site,
        "SELECT signal_id FROM signals WHERE state = 'withdrawn'",
    );
    assert_eq!(withdrawn.len(), 1);

    let (code, night) = reconcile(&site, &[]);
    assert_eq!(code, 0, "{night}");
    assert_eq!(night["purged"]["signals"], 1, "{night}");
    assert_eq!(states(&site).len(), 1, "the other child's signal stays");
    let trail = query(
        &site,
        "SELECT signal_id, detail FROM audit WHERE kind = 'signal_purged'",
    );
    assert_eq!(
        trail,
        [[
            withdrawn[0][0].clone(),
            r#"{"rule":"not_archived"}"#.to_string()
        ]]
    );
    // The objection itself stays: it blocks a new registration.
    assert_eq!(query(&site, "SELECT COUNT(*) FROM objections")[0][0], "1");
}

/// Rule row "the professional may renew; warn ahead of expiry": one
/// `renewal_due` per signal and expiry, `renewal_notice_days` (30) ahead,
/// with the end date as its due date, through the return channel.
#[test]
fn renewal_due_is_told_once_thirty_days_ahead() {
    let sim = Sim::start(&[]);
    let site = site(&sim, "");
    let kids = bsns(1);
    take(&site, "1.csv", &[(&kids[0], YOUNG, "E1", "D1")]);
    let due = |site: &Site| {
        delivered(site)
            .into_iter()
            .filter(|r| r["kind"] == "renewal_due")
            .collect::<Vec<_>>()
    };
    // The signal ends 2028-11-01: 31 days ahead is too early.
    sim_clock(&sim, "2028-10-01");
    let (_, night) = reconcile(&site, &["--as-of", "2028-10-01"]);
    assert_eq!(night["renewal_due"], 0, "{night}");
    for day in ["2028-10-02", "2028-10-03", "2028-10-20"] {
        sim_clock(&sim, day);
        let (code, night) = reconcile(&site, &["--as-of", day]);
        assert_eq!(code, 0, "{night}");
        let want = u64::from(day == "2028-10-02");
        assert_eq!(night["renewal_due"], want, "{day}: {night}");
    }
    let rows = due(&site);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["due_date"], "2028-11-01");
    assert_eq!(rows[0]["case_ref"], "D1");
    assert_eq!(rows[0]["professional_id"], "E1");
    assert_eq!(rows[0]["reason"], "");
    assert_eq!(
        at_index(&sim, TOKEN)[0].2,
        "2028-11-01",
        "not renewed without auto_renew"
    );
}

/// Rule rows "active at most 2 years; renew only by policy" and "a signal
/// ends on the day before the 23rd birthday at the latest": `auto_renew`
/// extends at the index to today + 2 years or the day before the 23rd
/// birthday, whichever comes first, says so with `renewed`, and a signal
/// that cannot go further gets `renewal_due` with the reason `age_limit`.
#[test]
fn auto_renew_extends_at_the_index_but_never_past_the_age_limit() {
    let sim = Sim::start(&[]);
    let site = site(&sim, "\n[policy]\nauto_renew = true\n");
    let kids = bsns(2);
    let (young, older) = (&kids[0], &kids[1]);
    take(
        &site,
        "1.csv",
        &[(young, YOUNG, "E1", "D1"), (older, OLDER, "E2", "D2")],
    );
    sim_clock(&sim, "2028-10-15");
    let (code, night) = reconcile(&site, &["--as-of", "2028-10-15"]);
    assert_eq!(code, 0, "{night}");
    assert_eq!(night["renewed"], 2, "{night}");
    let ends: Vec<(String, String)> = at_index(&sim, TOKEN)
        .into_iter()
        .map(|(_, prof, end, _)| (prof, end))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        ends,
        [
            ("E1".to_string(), "2030-10-15".to_string()),
            ("E2".to_string(), "2029-03-03".to_string())
        ]
    );
    let renewed: Vec<_> = delivered(&site)
        .into_iter()
        .filter(|r| r["kind"] == "renewed")
        .map(|r| (r["case_ref"].clone(), r["due_date"].clone()))
        .collect();
    assert_eq!(renewed.len(), 2, "{renewed:?}");
    assert!(renewed.contains(&("D2".into(), "2029-03-03".into())));

    // Within 30 days of the older child's last day: no further to go.
    sim_clock(&sim, "2029-02-10");
    let (code, night) = reconcile(&site, &["--as-of", "2029-02-10"]);
    assert_eq!(code, 0, "{night}");
    assert_eq!(
        (night["renewed"].as_u64(), night["renewal_due"].as_u64()),
        (Some(0), Some(1))
    );
    let told: Vec<_> = delivered(&site)
        .into_iter()
        .filter(|r| r["kind"] == "renewal_due")
        .collect();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["reason"], "age_limit");
    assert_eq!(told[0]["due_date"], "2029-03-03");
    assert_eq!(told[0]["case_ref"], "D2");
}

/// `[rules] audit_years` (7): the trail is purged oldest first, and what is
/// kept still verifies from the hash the first kept event follows; a change
/// after the purge still shows.
#[test]
fn the_audit_trail_is_purged_oldest_first_and_still_verifies() {
    let sim = Sim::start(&[]);
    let site = site(&sim, "");
    let kids = bsns(2);
    take(
        &site,
        "1.csv",
        &[(&kids[0], YOUNG, "E1", "D1"), (&kids[1], YOUNG, "E1", "D2")],
    );
    // Expired on 2028-11-02 (events that night), kept until then.
    let (_, night) = reconcile(&site, &["--as-of", "2028-11-02"]);
    assert_eq!(night["expired"], 2, "{night}");
    let all: u64 = query(&site, "SELECT COUNT(*) FROM audit")[0][0]
        .parse()
        .unwrap();
    let young: u64 = query(&site, "SELECT COUNT(*) FROM audit WHERE at >= '2028-11-02'")[0][0]
        .parse()
        .unwrap();
    assert!(young >= 2 && all > young, "{all} {young}");

    // Seven years after the first night: that night's events stay.
    let (code, night) = reconcile(&site, &["--as-of", "2035-11-02"]);
    assert_eq!(code, 0, "{night}");
    assert_eq!(night["purged"]["audit_events"], all - young, "{night}");
    let verify = site.run(&["audit", "verify"]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
    let kept = query(&site, "SELECT kind FROM audit ORDER BY id");
    assert_eq!(kept.first().unwrap()[0], "expired", "{kept:?}");
    assert_eq!(kept.last().unwrap()[0], "audit_purged", "{kept:?}");

    // Removing the first kept event still shows.
    site.tamper("DELETE FROM audit WHERE id = (SELECT MIN(id) FROM audit)");
    let verify = site.run(&["audit", "verify"]);
    assert_eq!(verify.code, 1, "{}", verify.stdout);
}
