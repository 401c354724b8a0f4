//! Withdrawal, renewal, expiry, archiving and purging by the sim's clock.

use crate::harness::*;
use serde_json::json;

#[tokio::test]
async fn withdrawing_is_idempotent_and_ends_the_signal_for_good() {
    let sim = Sim::start(&[]);
    sim.batch(
        TOKEN_A,
        vec![
            signal("s-1", &bsn(0), "EMP-1"),
            signal("s-2", &bsn(1), "EMP-1"),
        ],
    )
    .await;
    let (status, body) = sim.withdraw(TOKEN_A, "s-1", "risk_ended").await;
    assert_eq!((status, body["state"].as_str()), (200, Some("archived")));
    // A client retries after a lost answer: the same again succeeds.
    assert_eq!(sim.withdraw(TOKEN_A, "s-1", "risk_ended").await.0, 200);
    assert_eq!(
        sim.statuses(TOKEN_A, vec![signal("s-1", &bsn(0), "EMP-1")])
            .await,
        ["rejected:withdrawn"]
    );
    assert_eq!(sim.renew(TOKEN_A, "s-1", "2027-01-01").await.0, 409);
    // Unjustified: purged at once, only its id remains.
    let (status, body) = sim.withdraw(TOKEN_A, "s-2", "unjustified").await;
    assert_eq!((status, body["state"].as_str()), (200, Some("purged")));
    assert_eq!(sim.withdraw(TOKEN_A, "s-2", "unjustified").await.0, 200);
    assert_eq!(
        sim.statuses(TOKEN_A, vec![signal("s-2", &bsn(1), "EMP-1")])
            .await,
        ["rejected:withdrawn"]
    );
    let stats = sim.stats().await;
    assert_eq!(
        (
            stats["active_signals"].as_i64(),
            stats["archived_signals"].as_i64()
        ),
        (Some(0), Some(1))
    );
    assert_eq!(sim.withdraw(TOKEN_A, "nope", "risk_ended").await.0, 404);
    let (status, body) = sim.withdraw(TOKEN_A, "s-1", "bored").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("reason_invalid"))
    );
}

#[tokio::test]
async fn renewal_stops_at_two_years_and_before_the_age_limit() {
    let sim = Sim::start(&[]);
    let mut young = signal("s-young", &bsn(0), "EMP-1");
    young["end_date"] = json!("2027-01-01");
    let mut older = signal("s-older", &bsn(1), "EMP-1");
    older["subject"]["birth_date"] = json!("2005-01-10");
    sim.batch(TOKEN_A, vec![young, older]).await;
    let (status, body) = sim.renew(TOKEN_A, "s-young", "2028-11-29").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("end_date_too_far"))
    );
    let (status, body) = sim.renew(TOKEN_A, "s-young", "2028-11-28").await;
    assert_eq!(
        (status, body["end_date"].as_str()),
        (200, Some("2028-11-28"))
    );
    // A re-send without an end date keeps the renewed one.
    assert_eq!(
        sim.statuses(TOKEN_A, vec![signal("s-young", &bsn(0), "EMP-1")])
            .await,
        ["unchanged"]
    );
    assert_eq!(sim.renew(TOKEN_A, "s-older", "2028-01-10").await.0, 400);
    assert_eq!(sim.renew(TOKEN_A, "s-older", "2028-01-09").await.0, 200);
    assert_eq!(sim.renew(TOKEN_A, "s-older", "2026-11-27").await.0, 400);
    assert_eq!(sim.renew(TOKEN_A, "nope", "2027-01-01").await.0, 404);
    sim.withdraw(TOKEN_A, "s-older", "risk_ended").await;
    assert_eq!(sim.renew(TOKEN_A, "s-older", "2027-01-01").await.0, 409);
}

#[tokio::test]
async fn signals_expire_archive_and_purge_by_the_clock() {
    let sim = Sim::start(&[]);
    let mut turns_23 = signal("s-23", &bsn(1), "EMP-1");
    turns_23["subject"]["birth_date"] = json!("2005-06-10");
    sim.batch(TOKEN_A, vec![signal("s-1", &bsn(0), "EMP-1"), turns_23])
        .await;
    // On the 23rd birthday everything about the subject goes, archive or not.
    sim.set_clock("2028-06-10").await;
    assert_eq!(sim.signal_ids(TOKEN_A, "all").await, ["s-1"]);
    // Active through its end date, archived the day after.
    sim.set_clock("2028-11-01").await;
    assert_eq!(sim.signal_ids(TOKEN_A, "active").await, ["s-1"]);
    sim.set_clock("2028-11-02").await;
    assert!(sim.signal_ids(TOKEN_A, "active").await.is_empty());
    assert_eq!(sim.signal_ids(TOKEN_A, "archived").await, ["s-1"]);
    assert_eq!(sim.renew(TOKEN_A, "s-1", "2029-01-01").await.0, 409);
    assert_eq!(
        sim.statuses(TOKEN_A, vec![signal("s-1", &bsn(0), "EMP-1")])
            .await,
        ["rejected:withdrawn"]
    );
    // Purged five years after archiving.
    sim.set_clock("2033-11-01").await;
    assert_eq!(sim.stats().await["archived_signals"], 1);
    sim.set_clock("2033-11-02").await;
    let stats = sim.stats().await;
    assert_eq!(
        (
            stats["active_signals"].as_i64(),
            stats["archived_signals"].as_i64()
        ),
        (Some(0), Some(0))
    );
    assert!(sim.signal_ids(TOKEN_A, "all").await.is_empty());
}
