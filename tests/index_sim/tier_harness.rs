//! Shared by the national tier's tests (`tiers.rs`, `tier_link.rs`): three
//! real index-sims (a national index and two regions) on loopback. Forwarding
//! and the national index's notices travel in a region's background link
//! task, so a test checks for its outcome (a notice, an empty queue) after
//! each round of that link, waiting on the round itself
//! (`/sim/tier?after_round=N`), never on a timer.

use std::ffi::OsString;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::{json, Value};

pub const TOKEN_C: &str = "tok-c-secret";
pub const TOKEN_R1: &str = "tok-region-1-secret";
pub const TOKEN_R2: &str = "tok-region-2-secret";

/// Everything a log must never hold, besides what a test adds.
pub const SECRETS: &[&str] = &[
    "Jansen", "Pieter", TOKEN_A, TOKEN_B, TOKEN_C, TOKEN_R1, TOKEN_R2,
];

pub fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// A national index for REGION-1 and REGION-2, on `listen`.
pub fn national(listen: &str, extra: &[&str]) -> Sim {
    let mut args = os(&["--role", "national"]);
    args.extend(os(&["--org", &format!("REGION-1={TOKEN_R1}")]));
    args.extend(os(&["--org", &format!("REGION-2={TOKEN_R2}")]));
    args.extend(os(extra));
    Sim::launch(tempfile::tempdir().unwrap(), listen, args)
}

/// A regional index for `orgs` that forwards to `national` as the region
/// with `token`.
pub fn regional(national: &Sim, token: &str, orgs: &[(&str, &str)], extra: &[&str]) -> Sim {
    let mut args = os(&["--upstream", &national.base, "--upstream-token", token]);
    for (code, tok) in orgs {
        args.extend(os(&["--org", &format!("{code}={tok}")]));
    }
    args.extend(os(extra));
    Sim::launch(tempfile::tempdir().unwrap(), "127.0.0.1:0", args)
}

/// The usual three: a national index, region 1 with organisation A (and C),
/// region 2 with organisation B.
pub fn three(national_extra: &[&str], region_extra: &[&str]) -> (Sim, Sim, Sim) {
    let n = national("127.0.0.1:0", national_extra);
    let r1 = regional(
        &n,
        TOKEN_R1,
        &[("ORG-A", TOKEN_A), ("ORG-C", TOKEN_C)],
        region_extra,
    );
    let r2 = regional(&n, TOKEN_R2, &[("ORG-B", TOKEN_B)], region_extra);
    (n, r1, r2)
}

/// Checks `probe` now and after each round of `region`'s link that ends
/// from here on, until it gives `Some`; gives up after 60 seconds. The count
/// of rounds is read before each check, so a round that ends during a check
/// is not missed.
pub async fn eventually<T, F, Fut>(what: &str, region: &Sim, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = rounds(&tier(region).await);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        let path = format!("/sim/tier?after_round={seen}");
        let (status, body) = region.call(reqwest::Method::GET, None, &path, None).await;
        assert_eq!(status, 200, "{body}");
        seen = rounds(&body);
    }
}

/// The link's round count in a `/sim/tier` answer; only a region has one.
fn rounds(tier: &Value) -> u64 {
    tier["rounds"]
        .as_u64()
        .unwrap_or_else(|| panic!("not a region with a link: {tier}"))
}

/// At least `n` notices for the organisation after `after`, at `region`.
pub async fn notices_until(region: &Sim, token: &str, after: &str, n: usize) -> Vec<Value> {
    eventually(&format!("{n} notices"), region, || async {
        let (got, _) = region.notices(token, after).await;
        (got.len() >= n).then_some(got)
    })
    .await
}

pub async fn tier(sim: &Sim) -> Value {
    let (status, body) = sim
        .call(reqwest::Method::GET, None, "/sim/tier", None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until the region has forwarded everything and fanned out every
/// notice the national index holds for it: after this, its feeds are final
/// for what happened so far. (It reads the national feed's first page, 100
/// notices, which no test comes near.)
pub async fn settle(national: &Sim, region: &Sim, token: &str) {
    eventually("an empty forward queue", region, || async {
        (tier(region).await["forward_queue"] == 0).then_some(())
    })
    .await;
    let (_, latest) = national.notices(token, "0").await;
    eventually("the region to read its notices", region, || async {
        (tier(region).await["notice_cursor"] == json!(latest)).then_some(())
    })
    .await;
}

/// (kind, counterpart names) per notice, sorted.
pub fn told(notices: &[Value]) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<(String, Vec<String>)> = notices
        .iter()
        .map(|n| (n["kind"].as_str().unwrap().to_owned(), counterpart_names(n)))
        .collect();
    v.sort();
    v
}

pub fn pair(kind: &str, names: &[&str]) -> (String, Vec<String>) {
    (
        kind.to_owned(),
        names.iter().map(|n| n.to_string()).collect(),
    )
}

/// (tier id, end date) of the region's active signals at the national index.
pub async fn national_active(national: &Sim, token: &str) -> Vec<(String, String)> {
    let (status, body) = national
        .get(token, "/v1/signals?state=active&page_size=1000")
        .await;
    assert_eq!(status, 200, "{body}");
    body["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["signal_id"].as_str().unwrap().to_owned(),
                s["end_date"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub fn assert_logs_clean(sims: &[&Sim], extra: &[&str]) {
    for sim in sims {
        sim.assert_log_clean(&[SECRETS, extra].concat());
    }
}

/// A free loopback port below the range the system hands out for outgoing
/// connections, so that nothing else takes it while the national index is
/// down between a kill and a restart on the same port.
pub fn quiet_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let span = low.saturating_sub(20_000).max(1);
    let start = 20_000 + (std::process::id() % u32::from(span)) as u16;
    (0..span)
        .map(|i| 20_000 + (start - 20_000 + i) % span)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port")
}

/// A tier item for an active signal, as a regional index sends it.
pub fn active(org: &str, id: &str, seq: i64, child: &str, professional: &str, end: &str) -> Value {
    let mut content = signal(id, child, professional);
    content.as_object_mut().unwrap().remove("signal_id");
    content["end_date"] = json!(end);
    json!({"organisation": org, "signal_id": id, "seq": seq, "state": "active",
           "signal": content})
}

pub fn ended(org: &str, id: &str, seq: i64, state: &str) -> Value {
    json!({"organisation": org, "signal_id": id, "seq": seq, "state": state})
}

/// Sends tier items to the national index as region `token`; returns each
/// result's status (with the code when rejected).
pub async fn sync(national: &Sim, token: &str, items: Vec<Value>) -> Vec<String> {
    let (status, body) = national
        .post(token, "/v1/tier/signals:sync", json!({ "signals": items }))
        .await;
    assert_eq!(status, 200, "{body}");
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match r["status"].as_str().unwrap() {
            "rejected" => format!("rejected:{}", r["error"]["code"].as_str().unwrap()),
            s => s.to_owned(),
        })
        .collect()
}
