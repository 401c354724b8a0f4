//! Who this process is to the other instances on a shared store, and
//! whether a process of this machine still runs.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

/// This process, as the other instances see it.
#[derive(Debug)]
pub struct Instance {
    /// Host, pid and a random part: a restarted process is a new instance,
    /// so nothing of its predecessor's is taken for its own.
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// The machine and pid namespace it runs in: where its pid means
    /// something (`running`).
    pub node: String,
    /// How long what it holds lasts without a heartbeat.
    pub lease: chrono::Duration,
    /// The leased jobs running in this process now: the heartbeat renews
    /// their leases, and only theirs, so a leader that stops running a job
    /// (its folder gone, the source removed by a reload, its loop stuck)
    /// loses it one lease later.
    running: Mutex<BTreeSet<String>>,
}

impl Instance {
    pub(in crate::store) fn new(lease_secs: u64) -> Instance {
        let host = hostname().unwrap_or_else(|| "localhost".into());
        let pid = std::process::id();
        let random = uuid::Uuid::new_v4().simple().to_string();
        Instance {
            id: format!("{host}-{pid}-{}", &random[..8]),
            host,
            pid,
            node: node().unwrap_or_else(|| format!("unknown-{random}")),
            lease: chrono::Duration::seconds(lease_secs as i64),
            running: Mutex::default(),
        }
    }

    pub(super) fn start(&self, job: &str) {
        self.jobs().insert(job.to_string());
    }

    pub(super) fn end(&self, job: &str) {
        self.jobs().remove(job);
    }

    pub(super) fn running_jobs(&self) -> Vec<String> {
        self.jobs().iter().cloned().collect()
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The host's name (`uname`: the unit's `ProcSubset=pid` hides /proc/sys).
fn hostname() -> Option<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// The machine (`/etc/machine-id`, readable under the unit's sandbox) and
/// this process's pid namespace: two instances with the same node see the
/// same pids. Unknown (never matched) when either cannot be read, as in a
/// container without a machine id. `VISYNCTEST_NODE` stands for another
/// machine in the tests, where a real second machine is not at hand.
fn node() -> Option<String> {
    if let Ok(node) = std::env::var("VISYNCTEST_NODE") {
        return Some(node);
    }
    let machine = std::fs::read_to_string("/etc/machine-id").ok()?;
    let machine = machine.trim();
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    (!machine.is_empty()).then(|| format!("{machine}/{}", ns.display()))
}

/// Whether process `pid` of this node still runs: `kill(pid, 0)`, which
/// says "no such process" only for one that is gone (a process of another
/// user, hidden by `ProtectProc=invisible`, answers "not permitted").
pub(super) fn running(pid: i64) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}
