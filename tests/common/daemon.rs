//! `visync run` as a child process with a test `NOTIFY_SOCKET` (a Unix
//! datagram socket the test binds) standing in for systemd: the tests wait
//! on its notify messages, never on the clock.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Site, TODAY};

/// A child's log lines, and the condition the reader signals per line.
type Log = std::sync::Arc<(std::sync::Mutex<Vec<String>>, std::sync::Condvar)>;

pub struct Daemon {
    pub child: Child,
    notify: UnixDatagram,
    /// Every message received so far, in order.
    pub seen: Vec<String>,
    /// Every line of its log so far, and a signal for each new one.
    log: Log,
    _sock_dir: tempfile::TempDir,
}

impl Daemon {
    pub fn start(site: &Site) -> Daemon {
        Daemon::start_with(site, &[])
    }

    pub fn start_with(site: &Site, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_config(&site.config, env)
    }

    /// `visync run -c CONFIG` with `env`.
    pub fn start_config(config: &std::path::Path, env: &[(&str, &str)]) -> Daemon {
        let sock_dir = tempfile::tempdir().unwrap();
        let path = sock_dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&path).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_visync"));
        cmd.args(["--today", TODAY, "run", "-c", config.to_str().unwrap()])
            .env("NOTIFY_SOCKET", &path)
            // A watchdog of 0.4 s: pings every 0.2 s from the job loop.
            .env("WATCHDOG_USEC", "400000")
            .env_remove("WATCHDOG_PID")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("visync run starts");
        // The log goes to the test's stderr, so that a failure shows it.
        let stderr = child.stderr.take().unwrap();
        let log = Log::default();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[visync] {line}");
                let (lines, added) = &*kept;
                lines.lock().unwrap().push(line);
                added.notify_all();
            }
        });
        Daemon {
            child,
            notify,
            seen: Vec::new(),
            log,
            _sock_dir: sock_dir,
        }
    }

    /// The first message from now on that `pred` accepts; fails with every
    /// message seen when none comes within `within`.
    pub fn wait_for(&mut self, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + within;
        let mut buf = vec![0u8; 4096];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no such message within {within:?}; seen:\n{}",
                self.seen.join("\n")
            );
            self.notify.set_read_timeout(Some(left)).unwrap();
            match self.notify.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    self.seen.push(msg.clone());
                    if pred(&msg) {
                        return msg;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("the notify socket: {e}"),
            }
        }
    }

    /// Waits for a line of its log that contains `text`; fails with the
    /// log when none comes within `within`.
    pub fn log_line(&self, within: Duration, text: &str) -> String {
        let end = Instant::now() + within;
        let (lines, added) = &*self.log;
        let mut seen = lines.lock().unwrap();
        loop {
            if let Some(l) = seen.iter().find(|l| l.contains(text)) {
                return l.clone();
            }
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no log line with {text:?} within {within:?}"
            );
            // Woken by the next line the reader thread keeps.
            seen = added.wait_timeout(seen, left).unwrap().0;
        }
    }

    pub fn ready(&mut self) {
        self.wait_for(Duration::from_secs(30), |m| m.contains("READY=1"));
    }

    /// Waits for a STATUS line that contains `text`.
    pub fn status(&mut self, text: &str) -> String {
        self.wait_for(Duration::from_secs(60), |m| {
            m.starts_with("STATUS=") && m.contains(text)
        })
    }

    /// Where `/metrics` listens, as the STATUS line says.
    pub fn metrics_addr(&mut self) -> String {
        self.status("http ")
            .split("http ")
            .nth(1)
            .and_then(|s| s.split([';', ' ', '\n']).next())
            .unwrap()
            .to_string()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// SIGTERM, then the exit status and how long it took.
    pub fn stop(mut self) -> (i32, Duration) {
        let t = Instant::now();
        self.signal("TERM");
        let status = self.child.wait().unwrap();
        (status.code().unwrap_or(-1), t.elapsed())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
