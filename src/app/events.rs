//! Typed events: what the jobs did, told once, consumed by whoever cares
//! (metrics, health, logs, sd_notify's STATUS line, a progress bar). A job
//! emits events and knows nothing of Prometheus or a terminal (Vector's
//! `internal_events`).
//!
//! Events carry ids, names of sources and files, counts and codes: never a
//! BSN, a name or an export's content (ARCHITECTURE.md, invariant 16).

use std::sync::Arc;

/// Which job ran: the `job` label of the job metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKind {
    /// Intake of one source (its name).
    Intake(String),
    Send,
    Notices,
    Reconcile,
}

impl JobKind {
    /// `intake:NAME`, `send`, `notices`, `reconcile` (daemon.md).
    pub fn label(&self) -> String {
        match self {
            JobKind::Intake(s) => format!("intake:{s}"),
            JobKind::Send => "send".into(),
            JobKind::Notices => "notices".into(),
            JobKind::Reconcile => "reconcile".into(),
        }
    }
}

/// How a taken file ended (the `outcome` label of `files_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOutcome {
    Processed,
    Rejected,
    /// Same content as a file taken before.
    Duplicate,
}

impl FileOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            FileOutcome::Processed => "processed",
            FileOutcome::Rejected => "rejected",
            FileOutcome::Duplicate => "duplicate",
        }
    }
}

/// How one call to the index ended (the `result` label of
/// `index_requests_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    Ok,
    /// The call went through; some items were refused.
    ItemError,
    /// 5xx, 429, timeouts, network: tried again later.
    Transient,
    /// 401/403 or a certificate refused: a configuration problem.
    Auth,
    Other,
}

impl CallResult {
    pub fn as_str(self) -> &'static str {
        match self {
            CallResult::Ok => "ok",
            CallResult::ItemError => "item_error",
            CallResult::Transient => "transient",
            CallResult::Auth => "auth",
            CallResult::Other => "other",
        }
    }
}

/// A folder the config names: a drop folder or a return folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FolderRole {
    Drop,
    Return,
}

/// What the store holds, counted after a job (the gauges).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Outbox rows waiting to be sent (held ones excluded).
    pub outbox_depth: u64,
    pub held_withdrawals: u64,
    pub quarantined: u64,
    /// Notices not yet delivered to a return channel (unroutable ones excluded).
    pub notices_waiting: u64,
    /// This installation's signals by state.
    pub signals: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A file of a drop folder was taken (or set aside as a duplicate).
    FileTaken {
        source: String,
        file: String,
        outcome: FileOutcome,
    },
    /// Records read from one file, by outcome.
    Records {
        source: String,
        accepted: u64,
        rejected: u64,
        skipped: u64,
    },
    /// One rejected record (its code from the closed set of connector.md).
    Rejection { source: String, code: &'static str },
    /// One call to the index (`endpoint`: `batch`, `notices`, `signals`, ...).
    IndexCall {
        endpoint: &'static str,
        result: CallResult,
    },
    /// Notices written to a source's return channel, by kind.
    NoticesDelivered {
        source: String,
        kind: String,
        count: u64,
    },
    /// A job started.
    JobStarted { job: JobKind },
    /// A job ended. `ok`: it finished without a failure; `had_work`: there
    /// was something to do (health only blames a job kind that had work).
    JobFinished {
        job: JobKind,
        ok: bool,
        had_work: bool,
        seconds: f64,
    },
    /// The store's counts after a job.
    Gauges(Gauges),
    /// A configured folder is missing (`present: false`) or back.
    Folder {
        source: String,
        role: FolderRole,
        present: bool,
    },
    /// The index refused our credentials or certificate (`refused: true`),
    /// or accepted them again.
    IndexAuth { refused: bool },
    /// An API source refused our credentials (401/403, `refused: true`),
    /// or accepted them again on the next poll.
    SourceAuth { source: String, refused: bool },
    /// SIGHUP: the new config took effect, or was refused (the old one runs on).
    ConfigReload { ok: bool },
    /// The sources configured now (after a reload): what is said about a
    /// source that is gone (a missing folder, a failing intake) is forgotten.
    Sources { names: Vec<String> },
}

/// Something that consumes events. Implementations must be cheap and never
/// block: they run on the job's task.
pub trait Sink: Send + Sync {
    fn emit(&self, event: &Event);
}

/// The sinks a job's events go to.
#[derive(Clone, Default)]
pub struct Events {
    sinks: Vec<Arc<dyn Sink>>,
}

impl Events {
    pub fn new(sinks: Vec<Arc<dyn Sink>>) -> Events {
        Events { sinks }
    }

    /// No sink: for `check` and tests that look only at reports.
    pub fn none() -> Events {
        Events::default()
    }

    pub fn emit(&self, event: Event) {
        for s in &self.sinks {
            s.emit(&event);
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Events({} sinks)", self.sinks.len())
    }
}
