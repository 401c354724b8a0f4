//! The tier link itself: the national index's sync endpoint driven
//! directly (newest state wins, purged is for good), what each role refuses,
//! a region whose token is refused, and a region that starts forwarding
//! late.

use crate::harness::*;
use crate::tier_harness::*;
use serde_json::json;

#[tokio::test]
async fn each_role_keeps_to_its_own_calls() {
    let n = national("127.0.0.1:0", &[]);
    // A national index takes no organisation's signals.
    let (status, body) = n
        .post(
            TOKEN_R1,
            "/v1/signals:batch",
            json!({"signals": [signal("s-1", &bsn(0), "EMP-1")]}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    assert_eq!(n.withdraw(TOKEN_R1, "s-1", "risk_ended").await.0, 404);
    assert_eq!(tier(&n).await["role"], "national");
    // A regional index without --upstream has no tier endpoint and queues
    // nothing.
    let r = Sim::start(&[]);
    r.batch(TOKEN_A, vec![signal("s-1", &bsn(0), "EMP-1")])
        .await;
    let (status, _) = r
        .post(TOKEN_A, "/v1/tier/signals:sync", json!({"signals": []}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        tier(&r).await,
        json!({"role": "regional", "upstream": null, "forward_queue": 0,
               "notice_cursor": "0", "last_error": null, "rounds": null})
    );
    // A national index forwards to no one: refused at start (exit 2).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_visync"))
        .args(["index-sim", "--listen", "127.0.0.1:0", "--role", "national"])
        .arg("--db")
        .arg(n.path("other.db"))
        .args([
            "--org",
            "R=t",
            "--upstream",
            &n.base,
            "--upstream-token",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--upstream"));
}

#[tokio::test]
async fn a_region_refused_by_the_national_index_keeps_its_queue() {
    let n = national("127.0.0.1:0", &[]);
    let r = regional(&n, "not-a-region-token", &[("ORG-A", TOKEN_A)], &[]);
    r.batch(TOKEN_A, vec![signal("a-1", &bsn(0), "EMP-A")])
        .await;
    let error = eventually("the refusal", &r, || async {
        tier(&r).await["last_error"].as_str().map(str::to_owned)
    })
    .await;
    assert!(error.contains("--upstream-token"), "{error}");
    assert!(!error.contains("not-a-region-token"), "{error}");
    assert_eq!(tier(&r).await["forward_queue"], 1);
    assert!(!r.log().contains("not-a-region-token"));
}

#[tokio::test]
async fn the_national_index_holds_the_newest_state_of_each_forwarded_signal() {
    let n = national("127.0.0.1:0", &[]);
    let (a, c) = (bsn(0), bsn(1));
    // Two organisations of one region may use the same signal id.
    let got = sync(
        &n,
        TOKEN_R1,
        vec![
            active("ORG-A", "s-1", 1, &a, "EMP-A", "2028-11-01"),
            active("ORG-C", "s-1", 2, &c, "EMP-C", "2028-11-01"),
        ],
    )
    .await;
    assert_eq!(got, ["created", "created"]);
    // A re-send changes nothing; a state older than the one applied is
    // ignored, so a late retry cannot undo newer news.
    let again = active("ORG-A", "s-1", 1, &a, "EMP-A", "2028-11-01");
    assert_eq!(sync(&n, TOKEN_R1, vec![again]).await, ["unchanged"]);
    let archived = ended("ORG-A", "s-1", 3, "archived");
    assert_eq!(sync(&n, TOKEN_R1, vec![archived]).await, ["archived"]);
    let late = active("ORG-A", "s-1", 2, &a, "EMP-A", "2028-11-01");
    assert_eq!(sync(&n, TOKEN_R1, vec![late]).await, ["stale"]);
    // A newer active state brings it back, with the end date the region
    // decided (a renewal may reach past start + 2 years).
    let renewed = active("ORG-A", "s-1", 4, &a, "EMP-A", "2028-11-28");
    assert_eq!(sync(&n, TOKEN_R1, vec![renewed]).await, ["updated"]);
    assert_eq!(
        national_active(&n, TOKEN_R1).await,
        [
            ("ORG-A/s-1".to_owned(), "2028-11-28".to_owned()),
            ("ORG-C/s-1".to_owned(), "2028-11-01".to_owned())
        ]
    );
    // Purged is for good.
    let purged = ended("ORG-A", "s-1", 5, "purged");
    assert_eq!(sync(&n, TOKEN_R1, vec![purged]).await, ["purged"]);
    let revived = active("ORG-A", "s-1", 6, &a, "EMP-A", "2028-11-01");
    assert_eq!(
        sync(&n, TOKEN_R1, vec![revived]).await,
        ["rejected:withdrawn"]
    );
    // A bad item is refused on its own.
    let got = sync(
        &n,
        TOKEN_R1,
        vec![
            json!({"organisation": "ORG-C"}),
            ended("ORG-C", "s-1", 3, "archived"),
        ],
    )
    .await;
    assert_eq!(got, ["rejected:missing_field", "archived"]);

    // Within one region the national index matches nothing; across regions
    // it does, and tells each region about its own signals only.
    let child = bsn(2);
    let got = sync(
        &n,
        TOKEN_R1,
        vec![
            active("ORG-A", "s-2", 7, &child, "EMP-A", "2028-11-01"),
            active("ORG-C", "s-2", 8, &child, "EMP-C", "2028-11-01"),
        ],
    )
    .await;
    assert_eq!(got, ["created", "created"]);
    assert_eq!(n.stats().await["notices"], 0);
    let theirs = active("ORG-B", "s-2", 1, &child, "EMP-B", "2028-11-01");
    assert_eq!(sync(&n, TOKEN_R2, vec![theirs]).await, ["created"]);
    let (r1, _) = n.notices(TOKEN_R1, "0").await;
    let (r2, _) = n.notices(TOKEN_R2, "0").await;
    let mut ids: Vec<&str> = r1
        .iter()
        .map(|n| n["signal_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["ORG-A/s-2", "ORG-C/s-2"]);
    assert_eq!(told(&r2), [pair("match", &["Prof EMP-A", "Prof EMP-C"])]);
    assert_eq!(r2[0]["signal_id"], "ORG-B/s-2");
    assert_eq!(n.stats().await["duplicate_signals"], 0);
    n.assert_log_clean(&[SECRETS, &[&a, &c, &child]].concat());
}

#[tokio::test]
async fn a_region_that_starts_forwarding_late_sends_all_it_holds() {
    let n = national("127.0.0.1:0", &[]);
    let orgs = os(&["--org", &format!("ORG-A={TOKEN_A}")]);
    let mut r1 = Sim::launch(tempfile::tempdir().unwrap(), "127.0.0.1:0", orgs.clone());
    let child = bsn(0);
    r1.batch(
        TOKEN_A,
        vec![
            signal("a-1", &child, "EMP-A"),
            signal("a-2", &bsn(1), "EMP-A"),
        ],
    )
    .await;
    assert_eq!(r1.withdraw(TOKEN_A, "a-2", "unjustified").await.0, 200);
    assert_eq!(tier(&r1).await["forward_queue"], 0);

    // Now with an upstream: what it holds goes up, purged ids included.
    let mut args = orgs;
    args.extend(os(&["--upstream", &n.base, "--upstream-token", TOKEN_R1]));
    r1.restart_with(args);
    let r2 = regional(&n, TOKEN_R2, &[("ORG-B", TOKEN_B)], &[]);
    r2.batch(TOKEN_B, vec![signal("b-1", &child, "EMP-B")])
        .await;
    let a = notices_until(&r1, TOKEN_A, "0", 1).await;
    assert_eq!(told(&a), [pair("match", &["Prof EMP-B"])]);
    settle(&n, &r1, TOKEN_R1).await;
    assert_eq!(n.signal_ids(TOKEN_R1, "all").await, ["ORG-A/a-1"]);
    // Restarted with the same upstream, only what changes is sent: the
    // national index never has to answer `unchanged`.
    r1.restart();
    r1.batch(TOKEN_A, vec![signal("a-3", &bsn(2), "EMP-A")])
        .await;
    eventually("a-3 at the national index", &r1, || async {
        (n.signal_ids(TOKEN_R1, "active").await.len() == 2).then_some(())
    })
    .await;
    let log = n.log();
    let syncs: Vec<&str> = log.lines().filter(|l| l.contains("tier sync")).collect();
    // Regression (issue 10): with no log, `all` held on nothing and passed.
    assert!(
        !syncs.is_empty(),
        "the national index logged no tier sync:\n{log}"
    );
    assert!(syncs.iter().all(|l| !l.contains("unchanged")), "{syncs:?}");
    assert_eq!(n.stats().await["duplicate_signals"], 0);
}
