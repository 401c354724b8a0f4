//! Helpers for the integration tests: run the real `visync` binary.

#![allow(dead_code)]

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
