//! Helpers for the integration tests: run the real `visync` binary.

#![allow(dead_code)]

pub mod daemon;
pub mod pg;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The date every test pretends is today.
pub const TODAY: &str = "2026-11-28";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `visync --today TODAY ARGS...` with the given extra environment.
pub fn visync_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_visync"));
    cmd.arg("--today").arg(TODAY).args(args);
    // Tests must not pick up overrides from the machine they run on.
    for (k, _) in std::env::vars() {
        if k.starts_with("VISYNC_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("the visync binary runs");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

pub fn visync(args: &[&str]) -> Run {
    visync_env(args, &[])
}

/// Writes a config for one source into `dir` and returns its path.
pub fn config_for(dir: &Path, mapping: &Path, watch: Option<&Path>) -> PathBuf {
    let mut text = format!(
        "[organisation]\ncode = \"01234567\"\nname = \"Test\"\n\n[state]\nurl = \"sqlite://state/visync.db\"\n\n[[sources]]\nmapping = \"{}\"\n",
        mapping.display()
    );
    if let Some(w) = watch {
        text.push_str(&format!("watch = \"{}\"\n", w.display()));
    }
    let path = dir.join("visync.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every file below `dir`, relative, sorted: to show that nothing changed.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A `visync index-sim` child on a loopback port, killed when dropped.
pub struct Sim {
    pub child: std::process::Child,
    pub addr: String,
    /// Holds the index's database; `None` only after `stop`.
    dir: Option<tempfile::TempDir>,
}

pub const ORG: &str = "01234567";
pub const TOKEN: &str = "s3cret-token";

impl Sim {
    /// Starts the reference index for organisation `ORG` with `TOKEN`.
    pub fn start(extra: &[&str]) -> Sim {
        Sim::restart(tempfile::tempdir().unwrap(), extra)
    }

    /// Starts it again on the database in `dir` and the address it had.
    pub fn restart_on(dir: tempfile::TempDir, addr: &str) -> Sim {
        Sim::spawn(dir, addr, &[])
    }

    /// Starts it on the database in `dir` (kept from an earlier `stop`).
    pub fn restart(dir: tempfile::TempDir, extra: &[&str]) -> Sim {
        Sim::spawn(dir, "127.0.0.1:0", extra)
    }

    fn spawn(dir: tempfile::TempDir, listen: &str, extra: &[&str]) -> Sim {
        use std::io::BufRead;
        let db = dir.path().join("index.db");
        let org = format!("{ORG}={TOKEN}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_visync"))
            .args([
                "index-sim",
                "--listen",
                listen,
                "--db",
                db.to_str().unwrap(),
                "--org",
                &org,
                "--clock",
                TODAY,
            ])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("index-sim starts");
        // The first line says where it listens, once it does.
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Sim {
            child,
            addr,
            dir: Some(dir),
        }
    }

    /// Stops it and hands back its database folder.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take().expect("a running sim has its folder")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET /sim/stats` as JSON.
    pub fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&http(&self.addr, "GET", "/sim/stats", None, "")).unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 request over loopback; returns the body.
pub fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, rest) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// A workspace for `visync run`: a config against `sim`, a drop folder, a state folder.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub watch: PathBuf,
    /// The site's PostgreSQL database, under `TEST_STATE=postgres`.
    pub pg: Option<pg::PgDb>,
}

impl Site {
    pub fn new(sim: &Sim, mapping: &Path, extra: &str) -> Site {
        Site::for_org(sim, ORG, TOKEN, mapping, extra)
    }

    /// A site of another organisation known to `sim` as `org=token`.
    pub fn for_org(sim: &Sim, org: &str, token: &str, mapping: &Path, extra: &str) -> Site {
        Site::build(sim, org, token, mapping, extra, pg::state_section())
    }

    /// A site on SQLite whatever `TEST_STATE` says: for what only SQLite
    /// has (its one writer, its files).
    pub fn sqlite(sim: &Sim, mapping: &Path, extra: &str) -> Site {
        Site::build(sim, ORG, TOKEN, mapping, extra, pg::sqlite_section())
    }

    fn build(
        sim: &Sim,
        org: &str,
        token: &str,
        mapping: &Path,
        extra: &str,
        (state, pg): (String, Option<pg::PgDb>),
    ) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let watch = dir.path().join("in");
        std::fs::create_dir(&watch).unwrap();
        std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
        let config = dir.path().join("visync.toml");
        if pg.is_some() {
            // Where the key file is made: PostgreSQL has no folder of its own.
            std::fs::create_dir(dir.path().join("state")).unwrap();
        }
        std::fs::write(
            &config,
            format!(
                "[organisation]\ncode = \"{org}\"\nname = \"Test\"\n\n{state}\n\
                 [index]\nurl = \"{}\"\ntoken_file = \"token\"\n\n[[sources]]\nmapping = \"{}\"\nwatch = \"in\"\nsettle_secs = 0\n{extra}",
                sim.url(),
                mapping.display()
            ),
        )
        .unwrap();
        Site {
            dir,
            config,
            watch,
            pg,
        }
    }

    /// Points the config at another (restarted) index.
    pub fn point_at(&self, sim: &Sim) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let text: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with("url = \"http://") {
                    format!("url = \"{}\"", sim.url())
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(&self.config, text.join("\n") + "\n").unwrap();
    }

    pub fn drop_file(&self, name: &str, content: &[u8]) {
        // Written under a temporary name and renamed, as a CMS should.
        let tmp = self.watch.join(format!("{name}.tmp"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, self.watch.join(name)).unwrap();
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// `run` with extra environment (`VISYNC_SECTION__KEY` overrides).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all = vec![args[0], "-c", self.config.to_str().unwrap()];
        all.extend_from_slice(&args[1..]);
        visync_env(&all, env)
    }

    /// Every row a query on the site's store returns, each column as text
    /// (NULL as ""), whichever backend it is on.
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        match &self.pg {
            Some(db) => db.query(sql),
            None => pg::query_sqlite(&self.dir.path().join("state/visync.db"), sql, false),
        }
    }

    /// Runs one statement on the site's store, as someone editing it by
    /// hand would.
    pub fn tamper(&self, sql: &str) {
        match &self.pg {
            Some(db) => drop(db.query(sql)),
            None => drop(pg::query_sqlite(
                &self.dir.path().join("state/visync.db"),
                sql,
                true,
            )),
        }
    }

    /// What the store holds, to show that something did not change it: the
    /// SQLite file byte for byte, or every row of every PostgreSQL table.
    pub fn store_contents(&self) -> Vec<String> {
        match &self.pg {
            Some(db) => db.contents(),
            None => {
                let bytes = std::fs::read(self.dir.path().join("state/visync.db")).unwrap();
                vec![format!("{bytes:?}")]
            }
        }
    }

    /// Files left in the drop folder itself (not yet taken).
    pub fn waiting(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.watch)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// `n` valid test BSNs from the 99999xxxx range (numbers for test persons).
pub fn bsns(n: usize) -> Vec<String> {
    (999_990_000u64..)
        .map(|x| x.to_string())
        .filter(|s| eleven_proof(s))
        .take(n)
        .collect()
}

/// Whether nine ASCII digits pass the 11-proof (domain.md), written apart
/// from the connector's own check so that a test cannot share its bug.
pub fn eleven_proof(s: &str) -> bool {
    let w = [9i64, 8, 7, 6, 5, 4, 3, 2, -1];
    s.len() == 9
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.bytes()
            .zip(w)
            .map(|(b, w)| w * i64::from(b - b'0'))
            .sum::<i64>()
            % 11
            == 0
}
