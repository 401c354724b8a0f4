//! Runs the real `visync index-sim` on a loopback port and talks to it over
//! HTTP. The child is killed when the `Sim` is dropped; its log goes to a file
//! in the test's temporary folder so that tests can check what it logged.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

/// The sim's date in every test unless a test moves it.
pub const TODAY: &str = "2026-11-28";
pub const TOKEN_A: &str = "tok-a-secret";
pub const TOKEN_B: &str = "tok-b-secret";

pub struct Sim {
    child: Child,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// What it was started with, for `restart`.
    listen: String,
    args: Vec<OsString>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sim {
    /// Two organisations (ORG-A, ORG-B), the clock on `TODAY`, plus `extra`.
    pub fn start(extra: &[&str]) -> Sim {
        Sim::start_in(tempfile::tempdir().unwrap(), extra)
    }

    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Sim {
        let mut args: Vec<OsString> = vec![
            "--org".into(),
            format!("ORG-A={TOKEN_A}").into(),
            "--org".into(),
            format!("ORG-B={TOKEN_B}").into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        Sim::launch(dir, "127.0.0.1:0", args)
    }

    /// `visync index-sim --listen LISTEN --db DIR/index.db --clock TODAY`
    /// plus `args` (which must name the organisations).
    pub fn launch(dir: tempfile::TempDir, listen: &str, args: Vec<OsString>) -> Sim {
        visync::tls::install_provider();
        let (child, addr) = spawn(dir.path(), listen, &args);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Sim {
            child,
            base: format!("http://{addr}"),
            http,
            dir,
            listen: listen.to_owned(),
            args,
        }
    }

    /// Kills the process at once (SIGKILL: no goodbye); the database stays.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills it and starts it again with the same arguments, database and
    /// `--listen` (so a fixed port stays the same); the log goes on.
    pub fn restart(&mut self) {
        let args = self.args.clone();
        self.restart_with(args);
    }

    /// Kills it and starts it again on the same database and `--listen`,
    /// with other arguments.
    pub fn restart_with(&mut self, args: Vec<OsString>) {
        self.kill();
        let (child, addr) = spawn(self.dir.path(), &self.listen, &args);
        self.child = child;
        self.base = format!("http://{addr}");
        self.args = args;
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The sim's log; a missing log fails the test (a check that reads
    /// nothing would pass on nothing).
    pub fn log(&self) -> String {
        let path = self.path("stderr.log");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the sim's log {}: {e}", path.display()))
    }

    /// Fails if the log holds any of `secrets` (BSNs, names, tokens).
    pub fn assert_log_clean(&self, secrets: &[&str]) {
        let log = self.log();
        assert!(log.contains("request"), "the sim logged nothing:\n{log}");
        for s in secrets.iter().chain([&TOKEN_A, &TOKEN_B]) {
            assert!(!log.contains(s), "the log holds {s:?}:\n{log}");
        }
    }

    pub async fn call(
        &self,
        method: Method,
        token: Option<&str>,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the sim answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, Some(token), path, Some(body)).await
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.call(Method::GET, Some(token), path, None).await
    }

    /// Registers `signals`; returns the results (the call must succeed).
    pub async fn batch(&self, token: &str, signals: Vec<Value>) -> Vec<Value> {
        let (status, body) = self
            .post(token, "/v1/signals:batch", json!({ "signals": signals }))
            .await;
        assert_eq!(status, 200, "{body}");
        body["results"].as_array().unwrap().clone()
    }

    /// The status of each result, in order.
    pub async fn statuses(&self, token: &str, signals: Vec<Value>) -> Vec<String> {
        let results = self.batch(token, signals).await;
        results
            .iter()
            .map(|r| match r["status"].as_str().unwrap() {
                "rejected" => format!("rejected:{}", r["error"]["code"].as_str().unwrap()),
                s => s.to_owned(),
            })
            .collect()
    }

    pub async fn withdraw(&self, token: &str, id: &str, reason: &str) -> (u16, Value) {
        self.post(
            token,
            &format!("/v1/signals/{id}/withdraw"),
            json!({ "reason": reason }),
        )
        .await
    }

    pub async fn renew(&self, token: &str, id: &str, end: &str) -> (u16, Value) {
        self.post(
            token,
            &format!("/v1/signals/{id}/renew"),
            json!({ "end_date": end }),
        )
        .await
    }

    pub async fn stats(&self) -> Value {
        let (status, body) = self.call(Method::GET, None, "/sim/stats", None).await;
        assert_eq!(status, 200);
        body
    }

    pub async fn set_clock(&self, today: &str) {
        let (status, body) = self
            .call(
                Method::POST,
                None,
                "/sim/clock",
                Some(json!({ "today": today })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// The organisation's signals in one state (all pages).
    pub async fn signal_ids(&self, token: &str, state: &str) -> Vec<String> {
        let (status, body) = self
            .get(token, &format!("/v1/signals?state={state}&page_size=1000"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["signals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["signal_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The organisation's notices after `after`, and the next cursor.
    pub async fn notices(&self, token: &str, after: &str) -> (Vec<Value>, String) {
        let (status, body) = self
            .get(token, &format!("/v1/notices?after={after}&limit=100"))
            .await;
        assert_eq!(status, 200, "{body}");
        (
            body["notices"].as_array().unwrap().clone(),
            body["next_cursor"].as_str().unwrap().to_owned(),
        )
    }
}

/// Starts the binary and waits for its `listening on` line; returns the
/// child and the address it bound.
fn spawn(dir: &Path, listen: &str, args: &[OsString]) -> (Child, String) {
    // Appended, so that a restarted sim's log holds both runs.
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("stderr.log"))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_visync"))
        .args(["index-sim", "--listen", listen, "--db"])
        .arg(dir.join("index.db"))
        .args(["--clock", TODAY])
        .args(args)
        // Debug too: the no-identifiers check covers every level.
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("the visync binary starts");
    let stdout = child.stdout.take().unwrap();
    // The line comes once the sim has bound; EOF if it exited. A reader
    // thread bounds the wait, so that a hung start fails the test.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no listening line: {line:?}\n{log}"))
        .to_owned();
    (child, addr)
}

/// A complete signal as a client sends it.
pub fn signal(id: &str, bsn: &str, professional: &str) -> Value {
    json!({
        "signal_id": id,
        "subject": {
            "bsn": bsn, "family_name": "Jansen", "name_prefix": "van",
            "initials": "P.J.", "given_names": "Pieter Jan",
            "birth_date": "2012-03-04", "gender": "male"
        },
        "professional": {
            "id": professional, "name": format!("Prof {professional}"),
            "phone": "+31 30 123 4567", "email": "prof@example.org"
        },
        "start_date": "2026-11-01"
    })
}

/// The professional names a notice's counterparts carry.
pub fn counterpart_names(notice: &Value) -> Vec<String> {
    notice["counterparts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["professional"]["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The `n`th valid test BSN (from the 99999xxxx range for test persons).
pub fn bsn(n: usize) -> String {
    (999_990_000u32..)
        .map(|x| x.to_string())
        .filter(|s| visync::domain::Bsn::parse(s).is_ok())
        .nth(n)
        .unwrap()
}
