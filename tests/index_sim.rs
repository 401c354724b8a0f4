//! `visync index-sim` end to end: the real binary on a loopback port, every
//! rule of VI-API v1 through plain HTTP, and the national tier (`tiers.rs`,
//! `tier_link.rs`: three binaries). Time moves through `/sim/clock`, never
//! by sleeping.

#[path = "index_sim/chaos.rs"]
mod chaos;
#[path = "index_sim/harness.rs"]
mod harness;
#[path = "index_sim/lifecycle.rs"]
mod lifecycle;
#[path = "index_sim/matching.rs"]
mod matching;
#[path = "index_sim/tier_harness.rs"]
mod tier_harness;
#[path = "index_sim/tier_link.rs"]
mod tier_link;
#[path = "index_sim/tiers.rs"]
mod tiers;

use harness::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn registration_and_item_errors() {
    let sim = Sim::start(&[]);
    let (status, body) = sim.call(Method::GET, None, "/v1/health", None).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    let bad_bsn = signal("s-bsn", "123456783", "EMP-1");
    let mut too_old = signal("s-old", &bsn(1), "EMP-1");
    too_old["subject"]["birth_date"] = json!("2003-11-01");
    let mut bad_birth = signal("s-birth", &bsn(2), "EMP-1");
    bad_birth["subject"]["birth_date"] = json!("2012-02-30");
    let mut far = signal("s-far", &bsn(3), "EMP-1");
    far["end_date"] = json!("2028-11-02");
    let mut no_contact = signal("s-contact", &bsn(4), "EMP-1");
    no_contact["professional"] = json!({"id": "EMP-1", "name": "X"});
    let mut extra = signal("s-extra", &bsn(5), "EMP-1");
    extra["subject"]["diagnosis"] = json!("none of your business");
    let mut near_23 = signal("s-23", &bsn(6), "EMP-1");
    near_23["subject"]["birth_date"] = json!("2005-01-10");
    let got = sim
        .statuses(
            TOKEN_A,
            vec![
                signal("s-ok", &bsn(0), "EMP-1"),
                bad_bsn,
                too_old,
                bad_birth,
                far,
                no_contact,
                extra,
                near_23,
            ],
        )
        .await;
    assert_eq!(
        got,
        [
            "created",
            "rejected:bsn_invalid",
            "rejected:subject_too_old",
            "rejected:birth_date_invalid",
            "rejected:end_date_too_far",
            "rejected:missing_field",
            "rejected:unknown_field",
            "created",
        ]
    );
    // The end date defaults to start + 2 years, and never passes the day
    // before the 23rd birthday.
    let (_, listed) = sim.get(TOKEN_A, "/v1/signals?state=active").await;
    let ends: Vec<(&str, &str)> = listed["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["signal_id"].as_str().unwrap(),
                s["end_date"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(ends, [("s-ok", "2028-11-01"), ("s-23", "2028-01-09")]);

    // Authentication, request ids, whole-call errors.
    let (status, body) = sim.call(Method::GET, None, "/v1/signals", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    assert_eq!(sim.get("wrong-token", "/v1/notices").await.0, 401);
    let resp = sim
        .http
        .get(format!("{}/v1/signals", sim.base))
        .bearer_auth(TOKEN_A)
        .header("X-Request-Id", "7d9f0e0c-1111-4222-8333-944445555666")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-request-id"],
        "7d9f0e0c-1111-4222-8333-944445555666"
    );
    let many: Vec<Value> = (0..501)
        .map(|i| signal(&format!("m-{i}"), &bsn(0), "EMP-1"))
        .collect();
    let (status, _) = sim
        .post(TOKEN_A, "/v1/signals:batch", json!({ "signals": many }))
        .await;
    assert_eq!(status, 413);
    let resp = sim
        .http
        .post(format!("{}/v1/signals:batch", sim.base))
        .bearer_auth(TOKEN_A)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(sim.stats().await["register_calls"], 1);
    sim.assert_log_clean(&[&bsn(0), "123456783", "Jansen", "Pieter"]);
}

#[tokio::test]
async fn the_same_signal_twice_is_one_and_a_second_id_is_a_conflict() {
    let sim = Sim::start(&[]);
    let s = signal("s-1", &bsn(0), "EMP-1");
    assert_eq!(sim.statuses(TOKEN_A, vec![s.clone()]).await, ["created"]);
    assert_eq!(sim.statuses(TOKEN_A, vec![s.clone()]).await, ["unchanged"]);
    // Twice in one batch, too.
    assert_eq!(
        sim.statuses(TOKEN_A, vec![s.clone(), s]).await,
        ["unchanged", "unchanged"]
    );
    let results = sim
        .batch(TOKEN_A, vec![signal("s-2", &bsn(0), "EMP-1")])
        .await;
    assert_eq!(results[0]["status"], "conflict");
    assert_eq!(results[0]["existing_signal_id"], "s-1");
    // Another professional of the same organisation is another involvement.
    assert_eq!(
        sim.statuses(TOKEN_A, vec![signal("s-3", &bsn(0), "EMP-2")])
            .await,
        ["created"]
    );
    let stats = sim.stats().await;
    assert_eq!(stats["active_signals"], 2);
    assert_eq!(stats["duplicate_signals"], 0);
}

/// A batch of ids the index has never seen goes set-based; one whose items
/// touch each other goes item by item. Both must answer as if one by one.
#[tokio::test]
async fn a_batch_of_new_signals_answers_as_if_item_by_item() {
    let sim = Sim::start(&[]);
    assert_eq!(
        sim.statuses(TOKEN_A, vec![signal("old", &bsn(0), "EMP-1")])
            .await,
        ["created"]
    );
    // All new ids and pairs: one conflicts with the stored signal, one is
    // refused, the rest are created, in the order sent.
    let mut far = signal("n-far", &bsn(3), "EMP-1");
    far["end_date"] = json!("2030-01-01");
    let results = sim
        .batch(
            TOKEN_A,
            vec![
                signal("n-1", &bsn(1), "EMP-1"),
                signal("n-0", &bsn(0), "EMP-1"),
                far,
                signal("n-bad", "123456783", "EMP-1"),
                signal("n-2", &bsn(2), "EMP-2"),
            ],
        )
        .await;
    let got: Vec<(String, String)> = results
        .iter()
        .map(|r| {
            (
                r["signal_id"].as_str().unwrap_or("-").to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("n-1", "created"),
        ("n-0", "conflict"),
        ("n-far", "rejected"),
        ("n-bad", "rejected"),
        ("n-2", "created"),
    ];
    assert_eq!(
        got,
        want.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec()
    );
    assert_eq!(results[1]["existing_signal_id"], "old");
    // Two new ids for one pair in one batch: the first is created, the
    // second must adopt it.
    let results = sim
        .batch(
            TOKEN_A,
            vec![
                signal("p-1", &bsn(4), "EMP-1"),
                signal("p-2", &bsn(4), "EMP-1"),
            ],
        )
        .await;
    assert_eq!(results[0]["status"], "created");
    assert_eq!(results[1]["status"], "conflict");
    assert_eq!(results[1]["existing_signal_id"], "p-1");
    let stats = sim.stats().await;
    assert_eq!(stats["active_signals"], 4);
    assert_eq!(stats["duplicate_signals"], 0);
}

#[tokio::test]
async fn a_correction_is_an_update_and_a_resend_is_unchanged() {
    let sim = Sim::start(&[]);
    let mut s = signal("s-1", &bsn(0), "EMP-1");
    sim.batch(TOKEN_A, vec![s.clone()]).await;
    s["professional"]["phone"] = json!("+31 30 999 0000");
    assert_eq!(sim.statuses(TOKEN_A, vec![s.clone()]).await, ["updated"]);
    assert_eq!(sim.statuses(TOKEN_A, vec![s.clone()]).await, ["unchanged"]);
    s["end_date"] = json!("2027-06-01");
    assert_eq!(sim.statuses(TOKEN_A, vec![s.clone()]).await, ["updated"]);
    let (_, listed) = sim.get(TOKEN_A, "/v1/signals").await;
    assert_eq!(listed["signals"][0]["end_date"], "2027-06-01");
}

#[tokio::test]
async fn organisations_see_only_their_own() {
    let sim = Sim::start(&[]);
    sim.batch(TOKEN_A, vec![signal("s-1", &bsn(0), "EMP-1")])
        .await;
    assert!(sim.signal_ids(TOKEN_B, "all").await.is_empty());
    assert_eq!(sim.withdraw(TOKEN_B, "s-1", "risk_ended").await.0, 404);
    assert_eq!(sim.renew(TOKEN_B, "s-1", "2027-01-01").await.0, 404);
    assert!(sim.notices(TOKEN_B, "0").await.0.is_empty());
    // Signal ids are each organisation's own: B's s-1 is another signal.
    assert_eq!(
        sim.statuses(TOKEN_B, vec![signal("s-1", &bsn(5), "EMP-9")])
            .await,
        ["created"]
    );
    assert_eq!(sim.signal_ids(TOKEN_A, "active").await, ["s-1"]);
    assert_eq!(sim.stats().await["active_signals"], 2);
}

#[tokio::test]
async fn own_signals_page_stably_without_identities() {
    let sim = Sim::start(&[]);
    let ids: Vec<String> = (0..25).map(|i| format!("s-{i:02}")).collect();
    let signals = ids
        .iter()
        .enumerate()
        .map(|(i, id)| signal(id, &bsn(i), "EMP-1"))
        .collect();
    sim.batch(TOKEN_A, signals).await;
    sim.batch(TOKEN_B, vec![signal("b-1", &bsn(0), "EMP-9")])
        .await;
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let (status, body) = sim
            .get(
                TOKEN_A,
                &format!("/v1/signals?state=active&page_size=10&page_token={token}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let text = body.to_string();
        assert!(
            !text.contains(&bsn(0)) && !text.contains("Jansen"),
            "{text}"
        );
        pages += 1;
        for s in body["signals"].as_array().unwrap() {
            assert_eq!(s["state"], "active");
            seen.push(s["signal_id"].as_str().unwrap().to_owned());
        }
        match body["next_page_token"].as_str() {
            Some(t) => token = t.to_owned(),
            None => break,
        }
        // A signal registered mid-way shows up at the end, nothing twice.
        if pages == 1 {
            sim.batch(TOKEN_A, vec![signal("s-late", &bsn(26), "EMP-1")])
                .await;
        }
        assert!(pages < 10, "paging does not end");
    }
    let mut expected = ids.clone();
    expected.push("s-late".into());
    assert_eq!((pages, seen), (3, expected));
    assert_eq!(sim.get(TOKEN_A, "/v1/signals?page_token=x").await.0, 400);
    assert_eq!(sim.get(TOKEN_A, "/v1/signals?page_size=0").await.0, 400);
}
