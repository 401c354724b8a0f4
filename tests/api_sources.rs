//! API sources end to end: the real binary polls a loopback API (axum, in
//! this test process) and submits to the real reference index.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use common::{bsns, visync_env, Sim, ORG, TOKEN};

const API_TOKEN: &str = "api-token-do-not-leak";

/// What the fake CMS serves: pages by number, and what it was asked.
#[derive(Default)]
struct Cms {
    /// Page n's body; page numbers from 1.
    pages: Vec<String>,
    /// Link header target per page (relative or absolute).
    next: Vec<Option<String>>,
    /// Pages that answer 500.
    failing: Vec<usize>,
    status: Option<StatusCode>,
    /// Answer every page with this body instead (garbage).
    raw: Option<String>,
    /// Never answer (a server that hangs).
    hang: bool,
    /// Every request: the page asked for, its query, whether the token came.
    seen: Vec<(usize, HashMap<String, String>, bool)>,
}

type Shared = Arc<Mutex<Cms>>;

async fn page(
    State(cms): State<Shared>,
    Path(n): Path<usize>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let answer = answer(&cms, n, q, &headers);
    match answer {
        Some(r) => r,
        None => {
            // The fault itself, not a synchronisation: visync's timeout
            // must end it.
            std::future::pending::<()>().await;
            unreachable!()
        }
    }
}

/// The page's answer; `None`: hang.
fn answer(
    cms: &Shared,
    n: usize,
    q: HashMap<String, String>,
    headers: &HeaderMap,
) -> Option<Response> {
    let mut c = cms.lock().unwrap();
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    // Bearer API_TOKEN, or Basic visync:API_TOKEN.
    let authorised = given == Some(&format!("Bearer {API_TOKEN}"))
        || given == Some("Basic dmlzeW5jOmFwaS10b2tlbi1kby1ub3QtbGVhaw==");
    c.seen.push((n, q, authorised));
    if let Some(s) = c.status {
        return Some(s.into_response());
    }
    if !authorised {
        return Some(StatusCode::UNAUTHORIZED.into_response());
    }
    if c.failing.contains(&n) {
        return Some(StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    if c.hang {
        return None;
    }
    let body = c
        .raw
        .clone()
        .unwrap_or_else(|| c.pages.get(n - 1).cloned().unwrap_or_default());
    let mut r = body.into_response();
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    if let Some(Some(next)) = c.next.get(n - 1) {
        r.headers_mut()
            .insert("link", format!("<{next}>; rel=\"next\"").parse().unwrap());
    }
    Some(r)
}

/// Starts a fake CMS on a loopback port; its base URL.
fn serve(rt: &tokio::runtime::Runtime, cms: Shared) -> String {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/api/page/{n}", axum::routing::get(page))
        .with_state(cms);
    rt.spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn record(bsn: &str, n: usize) -> serde_json::Value {
    serde_json::json!({
        "client": {"bsn": bsn, "name": {"family": "Jansen"}, "birthDate": "2012-03-04", "gender": "F"},
        "worker": {"code": "EMP-0042", "name": "A. de Vries", "email": "a@zorg.example"},
        "caseNumber": format!("Z-{n}"), "start": "2026-11-01", "registerVir": true,
        "updatedAt": format!("2026-11-2{}T10:00:00Z", n % 8),
    })
}

/// Pages of `per` records each over `bsns`, linked by relative Link headers.
fn pages(cms: &Shared, children: &[String], per: usize) {
    let mut c = cms.lock().unwrap();
    c.pages.clear();
    c.next.clear();
    let chunks: Vec<_> = children.chunks(per).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let data: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(j, b)| record(b, i * per + j))
            .collect();
        c.pages
            .push(serde_json::json!({ "data": data }).to_string());
        c.next
            .push((i + 1 < chunks.len()).then(|| format!("/api/page/{}", i + 2)));
    }
}

struct Site {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

/// The JSON sites' policy: a withdrawal of half the signals is not held.
const POLICY: &str = "[policy]\nmax_withdraw_fraction = 0.5\n\n";

/// A site for `sim` with one API source: `mapping` is its mapping's text
/// (the API's credential is in `api-token`), `config` comes before
/// `[[sources]]` and `source` after the source's `mapping` key.
fn site_with(sim: &Sim, mapping: &str, config: &str, source: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    std::fs::write(dir.path().join("api-token"), format!("{API_TOKEN}\n")).unwrap();
    std::fs::write(dir.path().join("mapping.toml"), mapping).unwrap();
    let path = dir.path().join("visync.toml");
    std::fs::write(
        &path,
        format!(
            "[organisation]\ncode = \"{ORG}\"\nname = \"Test\"\n\n[state]\nurl = \"sqlite://state/visync.db\"\n\n\
             [index]\nurl = \"{}\"\ntoken_file = \"token\"\n\n{config}[[sources]]\nmapping = \"mapping.toml\"\n{source}",
            sim.url()
        ),
    )
    .unwrap();
    Site { dir, config: path }
}

/// The JSON sample's mapping, polling `base`'s pages, with `extra_source`
/// in its `[source]`.
fn json_mapping(base: &str, extra_source: &str) -> String {
    let sample =
        std::fs::read_to_string(common::repo().join("mappings/zorgapp-json.toml")).unwrap();
    sample
        .replace(
            "url = \"http://127.0.0.1:8089/api/v2/involvements?vir=true\"",
            &format!("url = \"{base}/api/page/1\"\n{extra_source}"),
        )
        .replace(
            "token_file = \"zorgapp-token\"",
            "token_file = \"api-token\"",
        )
}

/// A site polling `base` with the JSON sample's mapping.
fn site(sim: &Sim, base: &str, extra_source: &str) -> Site {
    site_with(sim, &json_mapping(base, extra_source), POLICY, "")
}

impl Site {
    fn run(&self, args: &[&str]) -> common::Run {
        let mut all = vec![args[0], "-c", self.config.to_str().unwrap()];
        all.extend_from_slice(&args[1..]);
        visync_env(
            &all,
            &[
                ("VISYNCTEST_BACKOFF_UNIT_MS", "0"),
                ("VISYNCTEST_JITTER_SEED", "7"),
            ],
        )
    }
}

fn active(sim: &Sim) -> u64 {
    sim.stats()["active_signals"].as_u64().unwrap()
}

#[test]
fn a_paged_snapshot_registers_then_sends_nothing_then_withdraws_what_it_no_longer_lists() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cms: Shared = Arc::default();
    let base = serve(&rt, cms.clone());
    let sim = Sim::start(&[]);
    let site = site(&sim, &base, "");
    let children = bsns(7);
    pages(&cms, &children, 3);

    let check = site.run(&["check", "--json"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let report = check.json();
    assert_eq!(report["plan"]["register"], 7, "{report}");
    assert_eq!(report["sources"][0]["records"], 7);
    assert!(
        !site.dir.path().join("state").exists(),
        "check creates no state"
    );

    let first = site.run(&["run", "--once"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(active(&sim), 7);
    let calls = sim.stats()["register_calls"].as_u64().unwrap();
    let seen = cms.lock().unwrap().seen.len();
    assert_eq!(seen, 3 + 3, "check and run each read the three pages once");

    let again = site.run(&["run", "--once"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        sim.stats()["register_calls"].as_u64().unwrap(),
        calls,
        "an unchanged poll sends nothing"
    );

    pages(&cms, &children[..5], 3);
    let smaller = site.run(&["run", "--once"]);
    assert_eq!(smaller.code, 0, "{}", smaller.stderr);
    assert_eq!(active(&sim), 5, "the two it no longer lists are withdrawn");
    assert!(
        cms.lock().unwrap().seen.iter().all(|(_, _, auth)| *auth),
        "every page got the token"
    );
}

#[test]
fn a_poll_failing_on_page_two_withdraws_nothing_and_the_pass_fails() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cms: Shared = Arc::default();
    let base = serve(&rt, cms.clone());
    let sim = Sim::start(&[]);
    let site = site(&sim, &base, "attempts = 2");
    let children = bsns(6);
    pages(&cms, &children, 3);
    assert_eq!(site.run(&["run", "--once"]).code, 0);
    assert_eq!(active(&sim), 6);

    // Page 1 now lists only one child; page 2 keeps failing.
    pages(&cms, &children[..4], 1);
    cms.lock().unwrap().failing = vec![2];
    let r = site.run(&["run", "--once"]);
    assert_eq!(r.code, 1, "an incomplete poll fails the pass: {}", r.stderr);
    assert!(r.stderr.contains("page 2"), "{}", r.stderr);
    assert!(r.stderr.contains("1 incomplete"), "{}", r.stderr);
    assert_eq!(active(&sim), 6, "nothing was withdrawn");
    let tries = cms
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|(n, _, _)| *n == 2)
        .count();
    assert_eq!(
        tries,
        1 + 2,
        "page 2: once in the first poll, attempts = 2 in the second"
    );
}

#[test]
fn a_next_link_to_another_port_is_refused_and_that_server_gets_no_token() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cms: Shared = Arc::default();
    let other: Shared = Arc::default();
    let base = serve(&rt, cms.clone());
    let elsewhere = serve(&rt, other.clone());
    let sim = Sim::start(&[]);
    let site = site(&sim, &base, "");
    pages(&cms, &bsns(2), 1);
    cms.lock().unwrap().next[0] = Some(format!("{elsewhere}/api/page/2"));
    let r = site.run(&["run", "--once"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("another scheme, host or port"),
        "{}",
        r.stderr
    );
    assert!(
        other.lock().unwrap().seen.is_empty(),
        "the other server was never asked"
    );
    assert_eq!(active(&sim), 1, "what was read still registers");
    assert!(!r.stderr.contains(API_TOKEN));
}

#[test]
fn refused_credentials_stop_the_poll_at_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cms: Shared = Arc::default();
    let base = serve(&rt, cms.clone());
    let sim = Sim::start(&[]);
    let site = site(&sim, &base, "");
    pages(&cms, &bsns(2), 1);
    cms.lock().unwrap().status = Some(StatusCode::FORBIDDEN);
    let r = site.run(&["run", "--once"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("refused the credentials"), "{}", r.stderr);
    assert_eq!(
        cms.lock().unwrap().seen.len(),
        1,
        "no retry, no second page"
    );
    assert!(!r.stderr.contains(API_TOKEN));
}

#[test]
fn a_delta_bookmark_is_kept_and_the_next_poll_starts_from_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cms: Shared = Arc::default();
    let base = serve(&rt, cms.clone());
    let sim = Sim::start(&[]);
    let bookmark = "bookmark = { param = \"updated_since\", from = \"/updatedAt\" }";
    let mapping = json_mapping(&base, bookmark).replace("mode = \"snapshot\"", "mode = \"delta\"");
    let site = site_with(&sim, &mapping, POLICY, "");
    let children = bsns(3);
    pages(&cms, &children, 3);

    // A crash between plan and commit: nothing taken, no bookmark.
    let crashed = visync_env(
        &["run", "-c", site.config.to_str().unwrap(), "--once"],
        &[("VISYNCTEST_CRASH_AT", "ingest-before-commit:1")],
    );
    assert_ne!(crashed.code, 0);
    assert_eq!(active(&sim), 0);
    let first = site.run(&["run", "--once"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(active(&sim), 3);
    let calls = sim.stats()["register_calls"].as_u64().unwrap();
    {
        let c = cms.lock().unwrap();
        assert!(
            c.seen
                .iter()
                .all(|(_, q, _)| !q.contains_key("updated_since")),
            "no bookmark before the first commit"
        );
    }
    let second = site.run(&["run", "--once"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let c = cms.lock().unwrap();
    let (_, q, _) = c.seen.last().unwrap();
    // The greatest updatedAt of the three (records 0..2: 20th..22nd) minus
    // the five-minute overlap.
    assert_eq!(
        q.get("updated_since").map(String::as_str),
        Some("2026-11-22T09:55:00Z")
    );
    assert_eq!(
        sim.stats()["register_calls"].as_u64().unwrap(),
        calls,
        "re-read changes plan as unchanged"
    );
    drop(c);
    assert_eq!(active(&sim), 3);
    let status = site.run(&["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let poll = &status.json()["polls"][0];
    assert_eq!(poll["source"], "zorgapp");
    assert_eq!(poll["complete"], true);
    assert_eq!(poll["records"], 3);
    assert!(poll["bookmark_age_secs"].is_i64(), "{poll}");
    let text = site.run(&["status"]);
    assert!(
        text.stdout.contains("last poll of zorgapp"),
        "{}",
        text.stdout
    );
}

/// A FHIR R4 server: three searchset pages; records what it was asked.
#[derive(Default)]
struct Fhir {
    pages: Vec<serde_json::Value>,
    seen: Vec<HashMap<String, String>>,
}

async fn episodes(
    State(fhir): State<Arc<Mutex<Fhir>>>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let mut f = fhir.lock().unwrap();
    let page: usize = q
        .iter()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1);
    f.seen.push(q.into_iter().collect());
    let mut r = f.pages[page - 1].to_string().into_response();
    r.headers_mut()
        .insert("content-type", "application/fhir+json".parse().unwrap());
    r
}

fn episode(id: &str, status: &str, patient: &str, manager: &str, start: &str) -> serde_json::Value {
    serde_json::json!({"search": {"mode": "match"}, "resource": {
        "resourceType": "EpisodeOfCare", "id": id, "status": status,
        "patient": {"reference": patient}, "careManager": {"reference": manager},
        "period": {"start": start}}})
}

fn patient(id: &str, bsn: &str, birth: &str) -> serde_json::Value {
    serde_json::json!({"search": {"mode": "include"}, "resource": {
        "resourceType": "Patient", "id": id,
        "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": bsn}],
        "name": [{"use": "official", "family": "van Dijk",
                  "_family": {"extension": [
                      {"url": "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix", "valueString": "van"},
                      {"url": "http://hl7.org/fhir/StructureDefinition/humanname-own-name", "valueString": "Dijk"}]},
                  "given": ["J."], "_given": [{"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier", "valueCode": "IN"}]}]}],
        "gender": "female", "birthDate": birth}})
}

fn bundle(entries: Vec<serde_json::Value>, next: Option<&str>) -> serde_json::Value {
    let link: Vec<_> = next
        .map(|n| serde_json::json!({"relation": "next", "url": n}))
        .into_iter()
        .collect();
    serde_json::json!({"resourceType": "Bundle", "type": "searchset", "link": link, "entry": entries})
}

#[test]
fn a_fhir_search_over_three_pages_registers_the_current_episodes_and_rejects_by_episode() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fhir: Arc<Mutex<Fhir>> = Arc::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/r4/EpisodeOfCare", axum::routing::get(episodes))
        .with_state(fhir.clone());
    rt.spawn(async move { axum::serve(listener, app).await });
    let b = bsns(6);
    let role = serde_json::json!({"search": {"mode": "include"}, "resource": {
        "resourceType": "PractitionerRole", "id": "r-1", "practitioner": {"reference": "Practitioner/pr-1"},
        "telecom": [{"system": "email", "value": "team@jeugdzorg.example"}]}});
    let practitioner = serde_json::json!({"search": {"mode": "include"}, "resource": {
        "resourceType": "Practitioner", "id": "pr-1",
        "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": "01234567"}],
        "name": [{"text": "A. de Vries"}]}});
    let base = format!("http://{addr}/r4");
    fhir.lock().unwrap().pages = vec![
        bundle(
            vec![
                episode(
                    "ep-1",
                    "active",
                    "Patient/p-1",
                    "PractitionerRole/r-1",
                    "2026-11-01",
                ),
                // A dateTime late on 31 October UTC: 1 November in Amsterdam.
                episode(
                    "ep-2",
                    "onhold",
                    &format!("{base}/Patient/p-2"),
                    "PractitionerRole/r-1",
                    "2026-10-31T23:30:00Z",
                ),
                patient("p-1", &b[0], "2012-03-04"),
                patient("p-2", &b[1], "2013-05-06"),
                role,
                practitioner,
            ],
            Some(&format!("{base}/EpisodeOfCare?page=2")),
        ),
        bundle(
            vec![
                // Its patient came on page 1.
                episode(
                    "ep-3",
                    "active",
                    "Patient/p-1",
                    "Practitioner/pr-3",
                    "2026-11-02",
                ),
                serde_json::json!({"search": {"mode": "include"}, "resource": {
                    "resourceType": "Practitioner", "id": "pr-3",
                    "name": [{"given": ["B."], "family": "Bakker"}],
                    "telecom": [{"system": "phone", "value": "050-1234567"}]}}),
                episode(
                    "ep-4",
                    "active",
                    "Patient/p-4",
                    "PractitionerRole/r-1",
                    "2026-11-01",
                ),
                patient("p-4", &b[3], "2012-03"),
                episode(
                    "ep-5",
                    "active",
                    "Patient/p-missing",
                    "PractitionerRole/r-1",
                    "2026-11-01",
                ),
            ],
            Some(&format!("{base}/EpisodeOfCare?page=3")),
        ),
        bundle(
            vec![
                episode(
                    "ep-6",
                    "waitlist",
                    "Patient/p-6",
                    "PractitionerRole/r-1",
                    "2026-11-01",
                ),
                patient("p-6", &b[5], "2014-01-01"),
            ],
            None,
        ),
    ];
    let sim = Sim::start(&[]);
    let mapping = std::fs::read_to_string(common::repo().join("mappings/jeugdzorg-fhir.toml"))
        .unwrap()
        .replace(
            "base_url = \"http://127.0.0.1:8090/fhir/r4\"",
            &format!("base_url = \"{base}\""),
        )
        .replace(
            "token_file = \"jeugdzorg-fhir-token\"",
            "token_file = \"api-token\"",
        );
    let site = site_with(&sim, &mapping, "", "");
    let c = site.config.to_str().unwrap();

    let check = visync_env(&["check", "-c", c, "--json"], &[]);
    assert_eq!(check.code, 1, "records were rejected: {}", check.stderr);
    let report = check.json();
    let rejections: Vec<(String, String, String)> = report["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["location"].as_str().unwrap().to_string(),
                r["code"].as_str().unwrap().to_string(),
                r["field"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    assert_eq!(
        rejections,
        vec![
            (
                "EpisodeOfCare/ep-4".into(),
                "birth_date_invalid".into(),
                "birth_date".into()
            ),
            (
                "EpisodeOfCare/ep-5".into(),
                "missing_field".into(),
                "bsn".into()
            ),
        ]
    );
    assert_eq!(report["sources"][0]["records"], 6);
    assert_eq!(report["sources"][0]["skipped"], 1, "the waitlisted episode");
    assert_eq!(report["plan"]["register"], 3);
    assert!(
        !check.stdout.contains(&b[3]) && !check.stderr.contains(&b[3]),
        "no BSN in the report"
    );

    let run = visync_env(&["run", "-c", c, "--once"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(active(&sim), 3);
    let f = fhir.lock().unwrap();
    let first = &f.seen[0];
    assert_eq!(
        first.get("status").map(String::as_str),
        Some("active,onhold")
    );
    assert_eq!(
        first.get("type").map(String::as_str),
        Some("http://example.org/fhir/CodeSystem/vir|aanmelden")
    );
    assert_eq!(f.seen.len(), 6, "check and run each read three pages");
}

#[test]
fn garbage_hostile_and_hanging_pages_end_the_poll_with_a_clear_error_and_withdraw_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cms: Shared = Arc::default();
    let base = serve(&rt, cms.clone());
    let sim = Sim::start(&[]);
    let site = site(
        &sim,
        &base,
        "attempts = 1\ntimeout_secs = 1\nmax_page_bytes = 4096",
    );
    let children = bsns(4);
    pages(&cms, &children, 2);
    assert_eq!(site.run(&["run", "--once"]).code, 0);
    assert_eq!(active(&sim), 4);

    type Fault = Box<dyn Fn(&mut Cms)>;
    let cases: Vec<(&str, Fault, &str)> = vec![
        (
            "an HTML error page",
            Box::new(|c| c.raw = Some("<html><body>Bad gateway</body></html>".into())),
            "not JSON",
        ),
        (
            "truncated JSON",
            Box::new(|c| c.raw = Some("{\"data\": [{\"client\":".into())),
            "truncated",
        ),
        (
            "no records array",
            Box::new(|c| c.raw = Some("{\"items\": []}".into())),
            "no array of records at \"/data\"",
        ),
        (
            "a page over max_page_bytes",
            Box::new(|c| {
                c.raw = Some(format!(
                    "{{\"data\": [], \"pad\": \"{}\"}}",
                    "x".repeat(5000)
                ))
            }),
            "larger than max_page_bytes",
        ),
        (
            "a next link back to page 1",
            Box::new(|c| c.next[1] = Some("/api/page/1".into())),
            "already read",
        ),
        (
            "a server that hangs",
            Box::new(|c| c.hang = true),
            "timed out",
        ),
    ];
    for (what, fault, says) in cases {
        pages(&cms, &children[..2], 2);
        {
            let mut c = cms.lock().unwrap();
            c.next = vec![Some("/api/page/2".into()), None];
            let first = c.pages[0].clone();
            c.pages.push(first);
            c.raw = None;
            c.hang = false;
            fault(&mut c);
        }
        let r = site.run(&["run", "--once"]);
        assert_eq!(r.code, 1, "{what}: {}", r.stderr);
        assert!(
            r.stderr.contains(says),
            "{what}: expected \"{says}\" in:\n{}",
            r.stderr
        );
        assert!(
            r.stderr.contains("page "),
            "{what} names the page: {}",
            r.stderr
        );
        assert_eq!(active(&sim), 4, "{what}: nothing withdrawn");
        for b in &children {
            assert!(!r.stderr.contains(b.as_str()), "{what}: no BSN in the log");
        }
        assert!(!r.stderr.contains(API_TOKEN));
    }
}

/// The README's FHIR sample works as it says: its two Bundles, served from
/// `samples/fhir` as a static server would, through the shipped mapping.
#[test]
fn the_fhir_sample_checks_as_the_readme_says() {
    async fn file(Path(name): Path<String>) -> Response {
        let path = common::repo().join("samples/fhir/fhir/r4").join(name);
        match std::fs::read(path) {
            Ok(body) => body.into_response(),
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/fhir/r4/{name}", axum::routing::get(file));
    rt.spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let repo = common::repo();
    let mapping = std::fs::read_to_string(repo.join("mappings/jeugdzorg-fhir.toml"))
        .unwrap()
        .replace("127.0.0.1:8090", &addr.to_string())
        .replace(
            "token_file = \"jeugdzorg-fhir-token\"",
            &format!(
                "token_file = \"{}\"",
                repo.join("mappings/jeugdzorg-fhir-token").display()
            ),
        );
    std::fs::write(dir.path().join("mapping.toml"), mapping).unwrap();
    let config = std::fs::read_to_string(repo.join("samples/fhir/visync.toml"))
        .unwrap()
        .replace("../../mappings/jeugdzorg-fhir.toml", "mapping.toml");
    std::fs::write(dir.path().join("visync.toml"), config).unwrap();
    let r = visync_env(
        &[
            "check",
            "-c",
            dir.path().join("visync.toml").to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(r.code, 1, "one record is rejected: {}", r.stderr);
    let report = r.json();
    let s = &report["sources"][0];
    assert_eq!(
        (s["records"].as_u64(), s["accepted"].as_u64()),
        (Some(5), Some(3))
    );
    assert_eq!(
        (s["rejected"].as_u64(), s["skipped"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(report["rejections"][0]["location"], "EpisodeOfCare/ep-1003");
    assert_eq!(report["rejections"][0]["code"], "birth_date_invalid");
}

/// An API source with a `watch` is a config error, not a folder silently
/// ignored.
#[test]
fn a_watch_on_an_api_source_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let repo = common::repo();
    let config = dir.path().join("visync.toml");
    std::fs::write(
        &config,
        format!(
            "[organisation]\ncode = \"{ORG}\"\nname = \"Test\"\n[state]\nurl = \"sqlite://state/visync.db\"\n\
             [[sources]]\nmapping = \"{}\"\nwatch = \"in\"\n",
            repo.join("mappings/jeugdzorg-fhir.toml").display()
        ),
    )
    .unwrap();
    let r = visync_env(&["check", "-c", config.to_str().unwrap()], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("\"jeugdzorg-fhir\" is an API source (fhir): remove its `watch`"),
        "{}",
        r.stderr
    );
}

/// The daemon polls an API source at start, then on its schedule: a child
/// the CMS adds later reaches the index without any file or restart.
#[test]
fn the_daemon_polls_at_start_and_on_the_sources_schedule() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cms: Shared = Arc::default();
    let base = serve(&rt, cms.clone());
    let sim = Sim::start(&[]);
    // Every second: the test waits on the daemon's STATUS lines, not on
    // the clock.
    let mapping = json_mapping(&base, "").replace(
        "schedule = \"0 */15 * * * *\"",
        "schedule = \"* * * * * *\"",
    );
    // No rescan to fall back on: only the schedule can poll again.
    let http = format!("{POLICY}[http]\nlisten = \"\"\n\n");
    let site = site_with(&sim, &mapping, &http, "rescan_secs = 3600\n");
    let children = bsns(4);
    pages(&cms, &children[..2], 2);
    let mut d = common::daemon::Daemon::start_config(&site.config, &[]);
    d.ready();
    d.status("2 confirmed");
    pages(&cms, &children, 2);
    d.status("4 confirmed");
    assert_eq!(active(&sim), 4);
    let (code, _) = d.stop();
    assert_eq!(code, 0);
}

#[test]
fn basic_auth_reads_the_password_from_its_file() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cms: Shared = Arc::default();
    let base = serve(&rt, cms.clone());
    let sim = Sim::start(&[]);
    let mapping = json_mapping(&base, "").replace(
        "kind = \"bearer\"\ntoken_file = \"api-token\"",
        "kind = \"basic\"\nuser = \"visync\"\npassword_file = \"api-token\"",
    );
    assert!(
        mapping.contains("kind = \"basic\""),
        "the sample's auth was replaced"
    );
    let site = site_with(&sim, &mapping, POLICY, "");
    pages(&cms, &bsns(2), 2);
    let r = site.run(&["run", "--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(active(&sim), 2);
    assert!(cms.lock().unwrap().seen.iter().all(|(_, _, auth)| *auth));
    assert!(!r.stderr.contains(API_TOKEN));
}

/// A source's CA that cannot be used stops that source before any request,
/// naming `[source] ca` and the file, and saying what to give.
#[test]
fn an_unusable_source_ca_is_named_before_any_request() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cms: Shared = Arc::default();
    let base = serve(&rt, cms.clone());
    let sim = Sim::start(&[]);
    pages(&cms, &bsns(2), 1);
    let missing = site(&sim, &base, "ca = \"no-such-ca.pem\"");
    let garbage = site(&sim, &base, "ca = \"garbage.pem\"");
    std::fs::write(garbage.dir.path().join("garbage.pem"), "not a certificate").unwrap();
    for (site, says) in [
        (
            &missing,
            ["cannot poll: cannot read [source] ca ", "no-such-ca.pem"],
        ),
        (
            &garbage,
            [
                "cannot poll: [source] ca ",
                "garbage.pem is not a PEM certificate",
            ],
        ),
    ] {
        // The dry run lists it with the inputs it could not read (exit 2).
        let r = site.run(&["check"]);
        assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
        for s in says {
            assert!(r.stdout.contains(s), "{s}: {}", r.stdout);
        }
    }
    assert!(cms.lock().unwrap().seen.is_empty(), "no request was made");
}
