//! Matches, family matches and their ends, told only to those involved.

use crate::harness::*;
use serde_json::{json, Value};

#[tokio::test]
async fn a_match_is_told_to_all_involved_and_its_end_to_the_rest() {
    let sim = Sim::start(&[]);
    let child = bsn(0);
    sim.batch(TOKEN_A, vec![signal("a-1", &child, "EMP-A")])
        .await;
    assert!(sim.notices(TOKEN_A, "0").await.0.is_empty());
    sim.batch(TOKEN_B, vec![signal("b-1", &child, "EMP-B")])
        .await;
    let (a, cursor_a) = sim.notices(TOKEN_A, "0").await;
    let (b, _) = sim.notices(TOKEN_B, "0").await;
    assert_eq!((a.len(), b.len()), (1, 1));
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
    let text = serde_json::to_string(&(&a, &b)).unwrap();
    assert!(!text.contains(&child) && !text.contains("Jansen"), "{text}");

    // A third professional joins: everyone hears of everyone else.
    sim.batch(TOKEN_A, vec![signal("a-2", &child, "EMP-A2")])
        .await;
    let (a, cursor_a) = sim.notices(TOKEN_A, &cursor_a).await;
    let mut told: Vec<(String, Vec<String>)> = a
        .iter()
        .map(|n| {
            (
                n["signal_id"].as_str().unwrap().to_owned(),
                counterpart_names(n),
            )
        })
        .collect();
    told.sort();
    assert_eq!(
        told,
        [
            (
                "a-1".to_owned(),
                vec!["Prof EMP-B".to_owned(), "Prof EMP-A2".to_owned()]
            ),
            (
                "a-2".to_owned(),
                vec!["Prof EMP-A".to_owned(), "Prof EMP-B".to_owned()]
            ),
        ]
    );
    // B leaves: the rest are told the match with B ended; B hears nothing.
    let (_, cursor_b) = sim.notices(TOKEN_B, "0").await;
    assert_eq!(sim.withdraw(TOKEN_B, "b-1", "risk_ended").await.0, 200);
    let (a, _) = sim.notices(TOKEN_A, &cursor_a).await;
    assert_eq!(a.len(), 2);
    for n in &a {
        assert_eq!(n["kind"], "match_ended");
        assert_eq!(counterpart_names(n), ["Prof EMP-B"]);
    }
    assert!(sim.notices(TOKEN_B, &cursor_b).await.0.is_empty());
    sim.assert_log_clean(&[&child, "Jansen", "Pieter", "Prof EMP"]);
}

#[tokio::test]
async fn a_match_waits_for_the_start_date_and_ends_on_expiry() {
    let sim = Sim::start(&[]);
    let child = bsn(0);
    let mut later = signal("a-1", &child, "EMP-A");
    later["start_date"] = json!("2026-12-15");
    sim.batch(TOKEN_A, vec![later]).await;
    let mut short = signal("b-1", &child, "EMP-B");
    short["end_date"] = json!("2027-03-01");
    sim.batch(TOKEN_B, vec![short]).await;
    // Registered but not yet in force: no match.
    assert_eq!(sim.signal_ids(TOKEN_A, "active").await, ["a-1"]);
    assert!(sim.notices(TOKEN_A, "0").await.0.is_empty());
    sim.set_clock("2026-12-15").await;
    let (a, cursor) = sim.notices(TOKEN_A, "0").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["kind"], "match");
    assert_eq!(sim.notices(TOKEN_B, "0").await.0.len(), 1);
    // B's signal expires: A is told the match ended.
    sim.set_clock("2027-03-02").await;
    let (a, _) = sim.notices(TOKEN_A, &cursor).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["kind"], "match_ended");
    assert_eq!(counterpart_names(&a[0]), ["Prof EMP-B"]);
    // A match each, one match_ended: nothing else.
    assert_eq!(sim.stats().await["notices"], 3);
}

#[tokio::test]
async fn siblings_with_different_professionals_make_a_family_match() {
    let dir = tempfile::tempdir().unwrap();
    let families = dir.path().join("families.csv");
    std::fs::write(
        &families,
        format!(
            "bsn,family_id\n{},F1\n{},F1\n{},F2\n",
            bsn(0),
            bsn(1),
            bsn(2)
        ),
    )
    .unwrap();
    let families = families.display().to_string();
    let sim = Sim::start_in(dir, &["--families", &families]);
    sim.batch(TOKEN_A, vec![signal("a-1", &bsn(0), "EMP-A")])
        .await;
    // A child of another family, and the same professional on a sibling:
    // neither is a family match.
    sim.batch(TOKEN_B, vec![signal("b-9", &bsn(2), "EMP-B")])
        .await;
    sim.batch(TOKEN_A, vec![signal("a-2", &bsn(1), "EMP-A")])
        .await;
    assert!(sim.notices(TOKEN_A, "0").await.0.is_empty());
    sim.batch(TOKEN_B, vec![signal("b-1", &bsn(1), "EMP-B")])
        .await;
    let (a, _) = sim.notices(TOKEN_A, "0").await;
    let (b, _) = sim.notices(TOKEN_B, "0").await;
    // b-1 matches a-2 (same child) and family-matches a-1 (a sibling).
    let kinds = |ns: &[Value]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = ns
            .iter()
            .map(|n| {
                (
                    n["kind"].as_str().unwrap().into(),
                    n["signal_id"].as_str().unwrap().into(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        kinds(&a),
        [
            ("family_match".into(), "a-1".into()),
            ("match".into(), "a-2".into())
        ]
    );
    assert_eq!(
        kinds(&b),
        [
            ("family_match".into(), "b-1".into()),
            ("match".into(), "b-1".into())
        ]
    );
    let family = a.iter().find(|n| n["kind"] == "family_match").unwrap();
    assert_eq!(counterpart_names(family), ["Prof EMP-B"]);
}
