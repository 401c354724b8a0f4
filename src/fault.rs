//! Crash points for tests: a fault that no real part can produce on demand
//! (the process dying between two steps). `VISYNCTEST_CRASH_AT=NAME` aborts
//! the process the first time it reaches the point called NAME;
//! `NAME:N` the N-th time. `abort` runs no destructor and flushes nothing,
//! like a SIGKILL or a power cut. Unset, a point costs one environment
//! lookup.
//!
//! `VISYNCTEST_STALL_AT=NAME` instead stops the process there (SIGSTOP,
//! every thread, the heartbeat too) until a SIGCONT: an instance stalled
//! past its lease (a frozen VM, a swapped-out process), which no real part
//! produces on demand either.
//!
//! The points, in the order a pass meets them:
//! - `ingest-planned`: a file read and planned, its unit of work not begun;
//! - `ingest-before-commit`: a file's plan is written, not committed;
//! - `ingest-after-commit`: committed, the file not yet moved;
//! - `send-after-call`: the index answered a batch, nothing recorded yet;
//! - `send-after-single-call`: the index answered a withdrawal or renewal,
//!   nothing recorded yet;
//! - `notices-after-store`: a page of notices stored with its cursor;
//! - `after-return-write`: a return file renamed into place, not yet marked
//!   delivered;
//! - `reconcile-chunk`: a chunk of a reconciliation step (missing, end
//!   dates, expiry, a retention rule, the audit trail) committed, the
//!   next not begun.

use std::sync::atomic::{AtomicU64, Ordering};

/// How often any point was reached in this process (one counter suffices:
/// only the named point's hits are counted against N).
static HITS: AtomicU64 = AtomicU64::new(0);

pub fn point(name: &str) {
    if std::env::var("VISYNCTEST_STALL_AT").is_ok_and(|at| at == name) {
        eprintln!("VISYNCTEST_STALL_AT={name}: stopping here on purpose");
        let me = rustix::process::getpid();
        let _ = rustix::process::kill_process(me, rustix::process::Signal::STOP);
        // The stop is process-wide but not synchronous with `kill` (this
        // thread ran on into the next transaction): hold it for a second,
        // by when the stop has taken every thread; it goes on after the
        // SIGCONT.
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let Ok(wanted) = std::env::var("VISYNCTEST_CRASH_AT") else {
        return;
    };
    let (target, nth) = match wanted.split_once(':') {
        Some((t, n)) => (t, n.parse::<u64>().unwrap_or(1).max(1)),
        None => (wanted.as_str(), 1),
    };
    if target != name {
        return;
    }
    if HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        eprintln!("VISYNCTEST_CRASH_AT={wanted}: aborting here on purpose");
        std::process::abort();
    }
}
