//! The national tier across regions: two regional index-sims forwarding to
//! a national one, each a real child process on loopback. Matches, their
//! ends and family matches across the border; what stays inside a region;
//! a national index that is down for a while, or chaotic.

use crate::harness::*;
use crate::tier_harness::*;

#[tokio::test]
async fn a_match_across_regions_reaches_both_organisations_and_so_does_its_end() {
    let (n, r1, r2) = three(&[], &[]);
    let child = bsn(0);
    r1.batch(TOKEN_A, vec![signal("a-1", &child, "EMP-A")])
        .await;
    r2.batch(TOKEN_B, vec![signal("b-1", &child, "EMP-B")])
        .await;
    let a = notices_until(&r1, TOKEN_A, "0", 1).await;
    let b = notices_until(&r2, TOKEN_B, "0", 1).await;
    assert_eq!((a.len(), b.len()), (1, 1));
    // Each in its own region's words: its own signal id, the other's
    // organisation and professional.
    assert_eq!(
        (a[0]["kind"].as_str(), a[0]["signal_id"].as_str()),
        (Some("match"), Some("a-1"))
    );
    assert_eq!(counterpart_names(&a[0]), ["Prof EMP-B"]);
    assert_eq!(a[0]["counterparts"][0]["organisation"]["code"], "ORG-B");
    assert_eq!(
        a[0]["counterparts"][0]["professional"]["phone"],
        "+31 30 123 4567"
    );
    assert_eq!(b[0]["signal_id"], "b-1");
    assert_eq!(counterpart_names(&b[0]), ["Prof EMP-A"]);
    assert_eq!(b[0]["counterparts"][0]["organisation"]["code"], "ORG-A");
    let text = serde_json::to_string(&(&a, &b)).unwrap();
    assert!(!text.contains(&child) && !text.contains("Jansen"), "{text}");

    // The national index holds each region's active set, under ids
    // namespaced by organisation, and a renewal reaches it too.
    assert_eq!(
        national_active(&n, TOKEN_R1).await,
        [("ORG-A/a-1".to_owned(), "2028-11-01".to_owned())]
    );
    assert_eq!(r1.renew(TOKEN_A, "a-1", "2028-11-28").await.0, 200);
    eventually("the renewal at the national index", &r1, || async {
        (national_active(&n, TOKEN_R1).await[0].1 == "2028-11-28").then_some(())
    })
    .await;

    // B withdraws in region 2: A, in region 1, hears that the match ended.
    let cursor_a = a[0]["cursor"].as_str().unwrap().to_owned();
    let (_, cursor_b) = r2.notices(TOKEN_B, "0").await;
    assert_eq!(r2.withdraw(TOKEN_B, "b-1", "risk_ended").await.0, 200);
    let ended = notices_until(&r1, TOKEN_A, &cursor_a, 1).await;
    assert_eq!(told(&ended), [pair("match_ended", &["Prof EMP-B"])]);
    assert_eq!(ended[0]["signal_id"], "a-1");
    settle(&n, &r2, TOKEN_R2).await;
    assert!(national_active(&n, TOKEN_R2).await.is_empty());
    assert_eq!(n.signal_ids(TOKEN_R2, "archived").await, ["ORG-B/b-1"]);
    // The one who left hears nothing.
    assert!(r2.notices(TOKEN_B, &cursor_b).await.0.is_empty());
    let stats = n.stats().await;
    assert_eq!(
        (
            stats["active_signals"].as_i64(),
            stats["duplicate_signals"].as_i64()
        ),
        (Some(1), Some(0))
    );
    assert_logs_clean(&[&n, &r1, &r2], &[&child, "Prof EMP"]);
}

#[tokio::test]
async fn a_match_inside_a_region_is_told_once_and_the_border_adds_only_what_crosses_it() {
    let (n, r1, r2) = three(&[], &[]);
    let child = bsn(0);
    r1.batch(TOKEN_A, vec![signal("a-1", &child, "EMP-A")])
        .await;
    r1.batch(TOKEN_C, vec![signal("c-1", &child, "EMP-C")])
        .await;
    settle(&n, &r1, TOKEN_R1).await;
    let (a, cursor_a) = r1.notices(TOKEN_A, "0").await;
    let (c, cursor_c) = r1.notices(TOKEN_C, "0").await;
    assert_eq!(told(&a), [pair("match", &["Prof EMP-C"])]);
    assert_eq!(told(&c), [pair("match", &["Prof EMP-A"])]);
    // The national index holds both and made nothing of them.
    let stats = n.stats().await;
    assert_eq!(
        (stats["active_signals"].as_i64(), stats["notices"].as_i64()),
        (Some(2), Some(0))
    );

    // B joins from region 2: B hears of both, each of them of B only.
    r2.batch(TOKEN_B, vec![signal("b-1", &child, "EMP-B")])
        .await;
    let b = notices_until(&r2, TOKEN_B, "0", 1).await;
    assert_eq!(told(&b), [pair("match", &["Prof EMP-A", "Prof EMP-C"])]);
    let codes: Vec<&str> = b[0]["counterparts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["organisation"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ORG-A", "ORG-C"]);
    notices_until(&r1, TOKEN_A, &cursor_a, 1).await;
    notices_until(&r1, TOKEN_C, &cursor_c, 1).await;
    settle(&n, &r1, TOKEN_R1).await;
    settle(&n, &r2, TOKEN_R2).await;
    assert_eq!(
        told(&r1.notices(TOKEN_A, &cursor_a).await.0),
        [pair("match", &["Prof EMP-B"])]
    );
    assert_eq!(
        told(&r1.notices(TOKEN_C, &cursor_c).await.0),
        [pair("match", &["Prof EMP-B"])]
    );
    assert_eq!(r2.notices(TOKEN_B, "0").await.0.len(), 1);
    assert_logs_clean(&[&n, &r1, &r2], &[&child]);
}

#[tokio::test]
async fn family_matches_across_regions_come_from_the_national_index() {
    // The same family file for every tier: the national index makes the
    // family matches across regions, each region those inside it.
    let files = tempfile::tempdir().unwrap();
    let families = files.path().join("families.csv");
    std::fs::write(
        &families,
        format!("bsn,family_id\n{},F1\n{},F1\n", bsn(0), bsn(1)),
    )
    .unwrap();
    let families = families.display().to_string();
    let with = ["--families", families.as_str()];
    let (n, r1, r2) = three(&with, &with);

    r1.batch(TOKEN_A, vec![signal("a-1", &bsn(0), "EMP-A")])
        .await;
    r2.batch(TOKEN_B, vec![signal("b-1", &bsn(1), "EMP-B")])
        .await;
    let a = notices_until(&r1, TOKEN_A, "0", 1).await;
    let b = notices_until(&r2, TOKEN_B, "0", 1).await;
    assert_eq!(told(&a), [pair("family_match", &["Prof EMP-B"])]);
    assert_eq!(told(&b), [pair("family_match", &["Prof EMP-A"])]);

    // C, in region 1, on B's child: a match with B across the border, and a
    // family match with A inside region 1, each told once.
    r1.batch(TOKEN_C, vec![signal("c-1", &bsn(1), "EMP-C")])
        .await;
    notices_until(&r1, TOKEN_C, "0", 2).await;
    notices_until(&r2, TOKEN_B, "0", 2).await;
    settle(&n, &r1, TOKEN_R1).await;
    settle(&n, &r2, TOKEN_R2).await;
    assert_eq!(
        told(&r1.notices(TOKEN_A, "0").await.0),
        [
            pair("family_match", &["Prof EMP-B"]),
            pair("family_match", &["Prof EMP-C"])
        ]
    );
    assert_eq!(
        told(&r1.notices(TOKEN_C, "0").await.0),
        [
            pair("family_match", &["Prof EMP-A"]),
            pair("match", &["Prof EMP-B"])
        ]
    );
    assert_eq!(
        told(&r2.notices(TOKEN_B, "0").await.0),
        [
            pair("family_match", &["Prof EMP-A"]),
            pair("match", &["Prof EMP-C"])
        ]
    );
    assert_logs_clean(&[&n, &r1, &r2], &[&bsn(0), &bsn(1)]);
}

#[tokio::test]
async fn forwarding_waits_out_a_national_index_that_is_down() {
    let mut n = national(&format!("127.0.0.1:{}", quiet_port()), &[]);
    let r1 = regional(&n, TOKEN_R1, &[("ORG-A", TOKEN_A)], &[]);
    let r2 = regional(&n, TOKEN_R2, &[("ORG-B", TOKEN_B)], &[]);
    let child = bsn(0);
    r1.batch(TOKEN_A, vec![signal("a-1", &child, "EMP-A")])
        .await;
    settle(&n, &r1, TOKEN_R1).await;

    n.kill();
    // B registers while the national index is down: the change waits in
    // region 2's queue, which the link keeps trying.
    r2.batch(TOKEN_B, vec![signal("b-1", &child, "EMP-B")])
        .await;
    assert_eq!(tier(&r2).await["forward_queue"], 1);
    eventually(
        "region 2 to notice the national index is down",
        &r2,
        || async {
            let t = tier(&r2).await;
            t["last_error"].is_string().then_some(())
        },
    )
    .await;
    assert_eq!(tier(&r2).await["forward_queue"], 1);

    // Back on the same database and port: the match arises after all.
    n.restart();
    let a = notices_until(&r1, TOKEN_A, "0", 1).await;
    let b = notices_until(&r2, TOKEN_B, "0", 1).await;
    assert_eq!(told(&a), [pair("match", &["Prof EMP-B"])]);
    assert_eq!(told(&b), [pair("match", &["Prof EMP-A"])]);
    settle(&n, &r2, TOKEN_R2).await;
    assert!(tier(&r2).await["last_error"].is_null());
    let stats = n.stats().await;
    assert_eq!(
        (
            stats["active_signals"].as_i64(),
            stats["duplicate_signals"].as_i64()
        ),
        (Some(2), Some(0))
    );
    assert_logs_clean(&[&n, &r1, &r2], &[&child]);
}

#[tokio::test]
async fn a_chaotic_national_index_gets_each_signal_once_and_each_notice_arrives_once() {
    let (n, r1, r2) = three(&["--chaos", "0.4", "--seed", "11"], &[]);
    // One registration per call, so that the links make many calls to the
    // national index and meet its faults, lost answers included.
    for i in 0..10 {
        r1.batch(TOKEN_A, vec![signal(&format!("a-{i}"), &bsn(i), "EMP-A")])
            .await;
        r2.batch(TOKEN_B, vec![signal(&format!("b-{i}"), &bsn(i), "EMP-B")])
            .await;
    }
    notices_until(&r1, TOKEN_A, "0", 10).await;
    notices_until(&r2, TOKEN_B, "0", 10).await;
    settle(&n, &r1, TOKEN_R1).await;
    settle(&n, &r2, TOKEN_R2).await;
    for (sim, token) in [(&r1, TOKEN_A), (&r2, TOKEN_B)] {
        let (got, _) = sim.notices(token, "0").await;
        let mut ids: Vec<&str> = got
            .iter()
            .map(|n| n["signal_id"].as_str().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!((got.len(), ids.len()), (10, 10), "{got:?}");
    }
    let stats = n.stats().await;
    assert_eq!(
        (
            stats["active_signals"].as_i64(),
            stats["duplicate_signals"].as_i64()
        ),
        (Some(20), Some(0))
    );
}
