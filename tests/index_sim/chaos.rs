//! Chaos mode against a client that retries: never a duplicate.

use crate::harness::*;
use serde_json::{json, Value};

/// Retries one call until it answers 200, as a client does on 5xx, 429 and
/// connection failures; counts what went wrong on the way.
async fn until_ok(
    sim: &Sim,
    http: &reqwest::Client,
    path: &str,
    body: &Value,
    faults: &mut [u32; 3],
) -> Value {
    for _ in 0..200 {
        let sent = http
            .post(format!("{}{path}", sim.base))
            .bearer_auth(TOKEN_A)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 200 => match r.json::<Value>().await {
                Ok(v) => return v,
                Err(_) => faults[2] += 1,
            },
            Ok(r) if r.status() == 429 => faults[1] += 1,
            Ok(r) if r.status().is_server_error() => faults[0] += 1,
            Ok(r) => panic!("{path}: {}", r.status()),
            Err(_) => faults[2] += 1,
        }
    }
    panic!("{path}: no 200 in 200 tries");
}

#[tokio::test]
async fn chaos_never_makes_a_duplicate_when_a_client_retries() {
    let sim = Sim::start(&["--chaos", "0.4", "--seed", "42"]);
    // Shorter than a slow answer: a retry races the call it gave up on.
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(1500))
        .build()
        .unwrap();
    let mut faults = [0u32; 3];
    let batches: Vec<Value> = (0..20)
        .map(|b| {
            let signals: Vec<Value> = (0..5)
                .map(|i| signal(&format!("s-{b}-{i}"), &bsn(b * 5 + i), "EMP-1"))
                .collect();
            json!({ "signals": signals })
        })
        .collect();
    let mut first = Vec::new();
    for round in 0..2 {
        for batch in &batches {
            let r = until_ok(&sim, &http, "/v1/signals:batch", batch, &mut faults).await;
            for item in r["results"].as_array().unwrap() {
                let status = item["status"].as_str().unwrap().to_owned();
                assert!(status == "created" || status == "unchanged", "{item}");
                if round == 0 {
                    first.push(status);
                } else {
                    assert_eq!(status, "unchanged");
                }
            }
        }
    }
    for i in 0..10 {
        let path = format!("/v1/signals/s-0-{}/withdraw", i % 5);
        until_ok(
            &sim,
            &http,
            &path,
            &json!({"reason": "risk_ended"}),
            &mut faults,
        )
        .await;
    }
    let stats = sim.stats().await;
    assert_eq!(stats["duplicate_signals"], 0);
    assert_eq!(
        (
            stats["active_signals"].as_i64(),
            stats["archived_signals"].as_i64()
        ),
        (Some(95), Some(5))
    );
    // The run met every kind of trouble, including answers lost after the
    // change was made (seen as `unchanged` on the first round).
    assert!(faults.iter().all(|&n| n > 0), "{faults:?}");
    assert!(first.iter().any(|s| s == "unchanged"), "no lost answer");
    sim.assert_log_clean(&[&bsn(0), "Jansen", "Pieter"]);
}
