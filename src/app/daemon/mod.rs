//! `visync run` as a service: one loop that decides what runs next.
//!
//! Triggers (file events, rescans, a file settling, cron schedules, "work was
//! queued", "a backoff ended", SIGHUP, SIGTERM) only mark jobs as wanted; the
//! loop starts a wanted job when it is not running, so two runs of the same
//! job never overlap, and a trigger that arrives while its job runs makes it
//! run once more afterwards. Jobs run on their own tasks: the loop itself
//! never blocks, which is what the systemd watchdog checks (it pings from
//! here).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;
use tokio::time::Instant;

mod reload;
mod timers;

use timers::Schedule;

use super::events::{Events, JobKind};
use super::health::Health;
use super::jobs::{self, Context, JobError, NoticesReport};
use super::log::LogSink;
use super::metrics::Metrics;
use super::snapshot::{connect_index, IndexConn, Snapshot, SnapshotError};
use super::watch::{FileHint, Hint, Watches};
use super::{sd, ObservedIndex};
use crate::config::IndexUrl;
use crate::index::SendSummary;
use crate::ingest::IngestSummary;

/// After the index refused our credentials, try again this often, with the
/// client made anew from the config's files (so a fixed token file or
/// certificate is picked up without a restart).
const AUTH_RETRY: Duration = Duration::from_secs(60);
/// After a job failed on the store (a busy database, a full disk), try again
/// this soon.
const JOB_RETRY: Duration = Duration::from_secs(5);

/// What a finished job hands back to the loop: its report, or the typed
/// error that stopped it (logged with its sources, never stringified early).
enum Done {
    Intake(String, Result<IngestSummary, JobError>),
    /// With the index client made anew for it, if it was.
    Send(Result<SendSummary, JobError>, Option<Arc<ObservedIndex>>),
    Notices(Result<NoticesReport, JobError>),
    Reconcile(Result<crate::reconcile::Report, JobError>),
}

/// The loop's state.
struct Daemon {
    config_path: PathBuf,
    ctx: Context,
    /// Keeps an embedded index running for as long as the daemon uses it.
    _index: IndexConn,
    watches: Watches,
    hints: UnboundedReceiver<FileHint>,
    /// Files renamed into a source's folder since its last intake.
    fresh: HashMap<String, HashSet<PathBuf>>,
    running: HashSet<JobKind>,
    wanted: BTreeSet<JobKind>,
    tasks: JoinSet<Done>,
    /// The index refused our credentials: make the client anew from the
    /// config's files before the next send.
    reconnect: bool,
    /// When each scheduled job that runs now started (its "last run").
    started: HashMap<JobKind, DateTime<Utc>>,
    /// When each source's folder is looked at again without an event.
    rescan: HashMap<String, Instant>,
    /// A file was seen that had not settled yet: look again then.
    settle: HashMap<String, Instant>,
    /// A backoff of a queued row ends (or the credentials are tried again).
    send_at: Option<Instant>,
    notices: Schedule,
    reconcile: Schedule,
    /// READY=1 is sent once the files waiting at start are taken.
    first_intakes: Option<HashSet<String>>,
    stopping: bool,
    /// Counts since start, for the STATUS line.
    totals: Totals,
    /// `unhealthy_after_secs` for `/healthz`, which a reload may change.
    unhealthy_after: tokio::sync::watch::Sender<Duration>,
    /// Where `/metrics` and `/healthz` listen, when they do.
    http: Option<std::net::SocketAddr>,
}

/// What the daemon did since it started, for the STATUS line.
#[derive(Default)]
struct Totals {
    files: u64,
    confirmed: u64,
    /// Files seen not settled yet at each source's last intake.
    unsettled: HashMap<String, u64>,
    /// The last reload's outcome, said until the next job.
    reload: Option<&'static str>,
}

/// A client for a remote index made anew from the context's config.
async fn reconnected(ctx: &Context) -> Option<Arc<ObservedIndex>> {
    let cfg = &ctx.snapshot.cfg;
    if matches!(cfg.index.url, IndexUrl::Embedded) {
        return None;
    }
    match connect_index(cfg).await {
        Ok(conn) => Some(Arc::new(ObservedIndex::new(conn.api, ctx.events.clone()))),
        Err(e) => {
            tracing::error!("cannot make the index client anew: {e}");
            None
        }
    }
}

/// Why the daemon could not start (the CLI exits 2 with it).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot install the signal handlers")]
    Signals,
    #[error("config {}, [http] listen: cannot listen on {addr}: {source}", .config.display())]
    Listen {
        config: PathBuf,
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Index(#[from] SnapshotError),
}

/// The signals the daemon answers. Installed before anything else (config,
/// lock, migrations), so that a SIGTERM during start-up is not lost.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    pub fn install() -> Result<Signals, StartError> {
        let (Ok(term), Ok(int), Ok(hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            return Err(StartError::Signals);
        };
        Ok(Signals { term, int, hup })
    }

    /// Waits up to `d`: `true` when SIGTERM or SIGINT came meanwhile (for
    /// the waits before the loop runs, which must not outlast a stop).
    pub async fn stopped_within(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = self.term.recv() => true,
            _ = self.int.recv() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }
}

/// Runs the daemon until SIGTERM/SIGINT, which ends it normally.
pub async fn run(
    config_path: PathBuf,
    snapshot: Snapshot,
    store: crate::store::Store,
    clock: crate::clock::Clock,
    mut signals: Signals,
) -> Result<(), StartError> {
    let metrics = Arc::new(Metrics::install(clock));
    let health = Arc::new(Health::new(clock));
    let events = Events::new(vec![
        metrics.clone(),
        health.clone(),
        Arc::new(LogSink::default()),
    ]);
    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let (unhealthy_tx, unhealthy_rx) =
        tokio::sync::watch::channel(snapshot.cfg.daemon.unhealthy_after);
    let http_addr = match snapshot.cfg.http_listen {
        None => None,
        Some(addr) => {
            let served = (metrics.clone(), health.clone(), unhealthy_rx);
            serve_http(&snapshot.cfg, addr, served, clock, http_stopped).await?
        }
    };
    let index = connect_index(&snapshot.cfg).await?;
    let observed = Arc::new(ObservedIndex::new(index.api.clone(), events.clone()));
    let ctx = Context {
        store,
        clock,
        snapshot: Arc::new(snapshot),
        index: observed,
        events,
    };
    let (tx, hints) = tokio::sync::mpsc::unbounded_channel();
    let mut d = Daemon {
        config_path,
        notices: Schedule::new("notices", &ctx.snapshot.cfg.schedule.notices),
        reconcile: Schedule::new("reconcile", &ctx.snapshot.cfg.schedule.reconcile),
        ctx,
        _index: index,
        watches: Watches::new(tx),
        hints,
        fresh: HashMap::new(),
        running: HashSet::new(),
        wanted: BTreeSet::new(),
        tasks: JoinSet::new(),
        rescan: HashMap::new(),
        settle: HashMap::new(),
        send_at: None,
        first_intakes: None,
        stopping: false,
        totals: Totals::default(),
        reconnect: false,
        started: HashMap::new(),
        unhealthy_after: unhealthy_tx,
        http: http_addr,
    };
    let beat = jobs::heartbeat(&d.ctx.store, d.ctx.clock).await;
    d.start().await;
    d.run_loop(&mut signals.term, &mut signals.int, &mut signals.hup)
        .await;
    drop(beat);
    let _ = stop_http.send(true);
    d.ctx.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `/metrics` and `/healthz` on `addr`, until `stopped` turns true.
/// Returns the address bound (a port 0 is given one).
async fn serve_http(
    cfg: &crate::config::Config,
    addr: std::net::SocketAddr,
    (metrics, health, unhealthy): (
        Arc<Metrics>,
        Arc<Health>,
        tokio::sync::watch::Receiver<Duration>,
    ),
    clock: crate::clock::Clock,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<std::net::SocketAddr>, StartError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen {
            config: cfg.path.clone(),
            addr,
            source,
        })?;
    let bound = listener.local_addr().ok();
    tokio::spawn(super::http::serve(
        listener,
        metrics,
        health,
        clock,
        unhealthy,
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    Ok(bound)
}

impl Daemon {
    fn sources(&self) -> Vec<String> {
        self.ctx
            .snapshot
            .sources
            .list
            .iter()
            .map(|(_, m)| m.name.clone())
            .collect()
    }

    /// Watches, schedules, and the first intake of every source.
    async fn start(&mut self) {
        self.sync_watches();
        let sources = self.sources();
        for s in &sources {
            self.wanted.insert(JobKind::Intake(s.clone()));
        }
        self.first_intakes = Some(sources.into_iter().collect());
        self.wanted.insert(JobKind::Send);
        let now = self.ctx.clock.now();
        for which in [true, false] {
            let last = self.last_run(which).await;
            let due = {
                let s = self.schedule(which);
                s.cron.due_at_start(last, now)
            };
            let s = self.schedule_mut(which);
            s.next = if due {
                Some(now)
            } else {
                s.cron.next_after(now)
            };
        }
        self.tell_status().await;
    }

    async fn run_loop(&mut self, term: &mut Signal, int: &mut Signal, hup: &mut Signal) {
        let watchdog = sd::watchdog_interval();
        let mut ping = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        loop {
            if self.stopping && self.running.is_empty() {
                return;
            }
            // Wanted jobs start after this round of the select, so that a
            // signal that is already pending (a SIGTERM during start-up) is
            // seen first: `biased` polls the signals before anything else.
            let wake = if self.wanted.iter().any(|j| !self.running.contains(j)) {
                Instant::now()
            } else {
                self.next_wake()
            };
            tokio::select! {
                biased;
                _ = term.recv() => self.stop(),
                _ = int.recv() => self.stop(),
                _ = hup.recv(), if !self.stopping => self.reload().await,
                Some(hint) = self.hints.recv() => self.hint(hint),
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => match done {
                    Ok(done) => self.finished(done).await,
                    Err(e) => tracing::error!("a job ended abnormally: {e}"),
                },
                _ = ping.tick(), if watchdog.is_some() => sd::watchdog(),
                _ = tokio::time::sleep_until(wake) => self.timers(),
            }
            if self.stopping {
                return self.drain().await;
            }
            self.start_wanted();
        }
    }

    /// SIGTERM/SIGINT: no new work; what runs finishes or is abandoned.
    fn stop(&mut self) {
        if !self.stopping {
            tracing::info!("stopping: no new work is taken");
            sd::stopping();
            self.stopping = true;
            self.wanted.clear();
        }
    }

    /// Waits for running jobs within the grace, then abandons them: a batch
    /// in flight is re-sent after a restart and answered `unchanged`; a file
    /// whose transaction did not commit is taken again.
    async fn drain(&mut self) {
        let grace = self.ctx.snapshot.cfg.daemon.shutdown_grace;
        // Leave a moment for closing the store within the grace.
        let deadline = Instant::now() + grace.saturating_sub(Duration::from_secs(1));
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(Ok(done))) => self.log_done(&done),
                Ok(Some(Err(_))) => {}
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        jobs = self.running.len(),
                        "the shutdown grace ended: abandoning what still runs (safe: it is redone after a restart)"
                    );
                    self.tasks.abort_all();
                    break;
                }
            }
        }
    }

    fn start_wanted(&mut self) {
        let wanted: Vec<JobKind> = self
            .wanted
            .iter()
            .filter(|j| !self.running.contains(*j))
            .cloned()
            .collect();
        for job in wanted {
            self.wanted.remove(&job);
            self.running.insert(job.clone());
            let mut ctx = self.ctx.clone();
            match job {
                JobKind::Intake(source) => {
                    let fresh = self.fresh.remove(&source).unwrap_or_default();
                    self.tasks.spawn(async move {
                        let r = jobs::intake(&ctx, &source, &fresh).await;
                        Done::Intake(source, r)
                    });
                }
                JobKind::Send => {
                    self.send_at = None;
                    let reconnect = std::mem::take(&mut self.reconnect);
                    self.tasks.spawn(async move {
                        // After a refusal of our credentials: a client made
                        // anew re-reads the token file and certificates.
                        let fresh = if reconnect {
                            reconnected(&ctx).await
                        } else {
                            None
                        };
                        if let Some(index) = &fresh {
                            ctx.index = index.clone();
                        }
                        // Never wait on a backoff inside the job: the loop
                        // sets a timer for it instead.
                        let now = ctx.clock.now();
                        let result = jobs::send(&ctx, now).await;
                        Done::Send(result, fresh)
                    });
                }
                JobKind::Notices => {
                    self.started.insert(JobKind::Notices, ctx.clock.now());
                    self.tasks
                        .spawn(async move { Done::Notices(jobs::notices(&ctx).await) });
                }
                JobKind::Reconcile => {
                    self.started.insert(JobKind::Reconcile, ctx.clock.now());
                    let fired = self.reconcile.fired.take();
                    self.reconcile.serving = fired;
                    self.tasks.spawn(async move {
                        if timers::ran_since(&ctx.store, "reconcile", fired).await {
                            return Done::Reconcile(Err(JobError::Served("reconcile".into())));
                        }
                        let r = jobs::reconcile(&ctx, false).await;
                        Done::Reconcile(r)
                    });
                }
            }
        }
    }

    fn hint(&mut self, hint: FileHint) {
        if self.stopping {
            return;
        }
        if let Hint::Renamed(path) = hint.hint {
            self.fresh
                .entry(hint.source.clone())
                .or_default()
                .insert(path);
        }
        self.wanted.insert(JobKind::Intake(hint.source));
    }

    async fn finished(&mut self, done: Done) {
        self.log_done(&done);
        match &done {
            Done::Intake(source, result) => {
                self.running.remove(&JobKind::Intake(source.clone()));
                if result.as_ref().is_err_and(JobError::standing_by) {
                    // Another instance takes this source; this one helps
                    // send what waits in the shared outbox, at each look.
                    self.wanted.insert(JobKind::Send);
                }
                if let Ok(s) = result {
                    self.totals.files += s.files;
                    self.totals.unsettled.insert(source.clone(), s.unsettled);
                    if s.unsettled > 0 {
                        let settle = self.settle_secs(source);
                        self.settle.insert(source.clone(), Instant::now() + settle);
                    }
                    let a = &s.applied;
                    if a.registered + a.updated + a.withdrawn + a.renewed > 0 {
                        self.wanted.insert(JobKind::Send);
                    }
                }
                if let Some(first) = &mut self.first_intakes {
                    first.remove(source);
                    if first.is_empty() {
                        self.first_intakes = None;
                        sd::ready();
                        tracing::info!("ready: the files waiting at start are taken");
                    }
                }
            }
            Done::Send(result, fresh) => {
                self.running.remove(&JobKind::Send);
                if let Some(index) = fresh {
                    self.ctx.index = index.clone();
                }
                self.after_send(result).await;
            }
            Done::Notices(result) => {
                self.running.remove(&JobKind::Notices);
                if !result.as_ref().is_err_and(JobError::standing_by) {
                    self.remember_run(true).await;
                }
            }
            Done::Reconcile(result) => {
                self.running.remove(&JobKind::Reconcile);
                if !result.as_ref().is_err_and(JobError::standing_by) {
                    self.remember_run(false).await;
                }
                match result {
                    Err(JobError::StandingBy { .. }) => self.look_again(),
                    Err(e) if e.standing_by() => {}
                    // Renewals queued, notices made: out with the next send
                    // and delivery, not at the next scheduled time.
                    Ok(r) => {
                        let line = r.text().replace('\n', "; ");
                        match r.complete() {
                            true => tracing::info!("{line}"),
                            false => tracing::warn!("{line}"),
                        }
                        self.wanted.extend([JobKind::Send, JobKind::Notices]);
                    }
                    Err(e) => tracing::error!("the reconciliation stopped: {e}"),
                }
            }
        }
        self.tell_status().await;
    }

    /// The STATUS line: what the daemon does, what it did, what waits.
    async fn tell_status(&mut self) {
        let Ok(g) = jobs::publish_gauges(&self.ctx).await else {
            return;
        };
        let t = &self.totals;
        let mut line = format!(
            "{}; taken {} file{}; {} confirmed; {} not settled; queue: {} waiting, {} held, {} quarantined; notices waiting: {}",
            if self.running.is_empty() { "idle" } else { "working" },
            t.files,
            if t.files == 1 { "" } else { "s" },
            t.confirmed,
            t.unsettled.values().sum::<u64>(),
            g.outbox_depth,
            g.held_withdrawals,
            g.quarantined,
            g.notices_waiting
        );
        if let Some(addr) = self.http {
            line.push_str(&format!("; metrics on http {addr}"));
        }
        if let Some(r) = self.totals.reload.take() {
            line.push_str(&format!("; {r}"));
        }
        sd::status(&line);
    }

    async fn after_send(&mut self, result: &Result<SendSummary, JobError>) {
        if let Ok(s) = result {
            self.totals.confirmed += s.confirmed;
        }
        match result {
            Ok(s) if s.auth_failed => {
                self.send_at = Some(Instant::now() + AUTH_RETRY);
                self.reconnect = true;
            }
            Ok(s) => {
                if s.confirmed > 0 {
                    // Registrations confirmed: their notify_subject tasks
                    // go out now, not at the next scheduled pull.
                    self.wanted.insert(JobKind::Notices);
                }
                if let Ok(Some(t)) = self.ctx.store.next_due().await {
                    // A row due now that this send did not take is held by
                    // a transaction of another job or instance (`SKIP
                    // LOCKED`): look again in a moment, not at once.
                    let soon = Instant::now() + Duration::from_secs(1);
                    self.send_at = Some(self.instant_of(t).max(soon));
                }
            }
            // The store or the job itself failed: soon again, not at once.
            Err(_) => self.send_at = Some(Instant::now() + JOB_RETRY),
        }
    }

    fn log_done(&self, done: &Done) {
        match done {
            // Another instance leads the job: quiet, it is not ours to run.
            Done::Intake(_, Err(e)) | Done::Notices(Err(e)) | Done::Reconcile(Err(e))
                if e.standing_by() =>
            {
                tracing::debug!("{e}")
            }
            Done::Intake(source, Err(e)) => tracing::error!(source, "intake failed: {e}"),
            Done::Send(Err(e), _) => tracing::error!("sending failed: {e}"),
            Done::Notices(Err(e)) => tracing::error!("the notices job failed: {e}"),
            _ => {}
        }
    }
}
