//! The jobs: intake of one source, send, notices, reconcile. Each is a function of a
//! `Context` that returns a typed report and tells what it did as events.
//! Who runs them, when, and what an outcome means for an exit status is not
//! decided here (`run --once` in the CLI, triggers in `daemon.rs`).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::events::{Event, Events, FolderRole, Gauges, JobKind};
use super::observed::ObservedIndex;
use super::snapshot::Snapshot;
use crate::clock::Clock;
use crate::config::ReturnConfig;
use crate::index::{self, PullSummary, SendSummary};
use crate::ingest::{IngestError, IngestSummary, Intake};
use crate::reconcile::Report;
use crate::returns::{self, DeliverySummary};
use crate::store::{Store, StoreError, Taken};

/// What every job runs with. Cheap to clone: a job gets its own copy, with
/// the snapshot that was current when it started (a reload replaces the
/// snapshot for the next jobs, never under a running one).
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub clock: Clock,
    pub snapshot: Arc<Snapshot>,
    pub index: Arc<ObservedIndex>,
    pub events: Events,
}

/// Why a job could not do its work at all (a report says what it did).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("no source is named \"{0}\" in the config")]
    NoSource(String),
    /// Another instance on the shared store leads this job: not an error
    /// of the job, which that instance runs.
    #[error("standing by: instance {holder} runs {job}")]
    StandingBy { job: String, holder: String },
    /// Another instance ran this scheduled job for this fire already.
    #[error("standing by: another instance ran {0} for this time of its schedule")]
    Served(String),
}

impl JobError {
    /// Not this instance's to run: not a failure.
    pub fn standing_by(&self) -> bool {
        matches!(self, JobError::StandingBy { .. } | JobError::Served(_))
    }
}

/// The lease of a source's intake (its files, or its polls).
pub fn intake_job(source: &str) -> String {
    format!("intake:{source}")
}

/// Runs only on the instance that leads `job` (always, on SQLite): a
/// scheduled job and a source's intake are one instance's at a time on a
/// shared store, so that a source's files and pages are taken in order and
/// cursors advance once. The lease is renewed while the returned guard
/// lives, that is while the job runs.
async fn lead(ctx: &Context, job: &str) -> Result<Leading, JobError> {
    match ctx.store.take_lease(job, ctx.clock.now()).await? {
        Taken::Ours => Ok(Leading {
            store: ctx.store.clone(),
            job: job.to_string(),
        }),
        Taken::Elsewhere { holder } => Err(JobError::StandingBy {
            job: job.to_string(),
            holder,
        }),
    }
}

/// A job this instance leads, running: its lease is renewed by the
/// heartbeat until this is dropped.
struct Leading {
    store: Store,
    job: String,
}

impl Drop for Leading {
    fn drop(&mut self) {
        self.store.end_job(&self.job);
    }
}

/// Intake of one source: the files waiting in its drop folder, or one poll
/// of an API source.
pub async fn intake(
    ctx: &Context,
    source: &str,
    fresh: &HashSet<PathBuf>,
) -> Result<IngestSummary, JobError> {
    let _leading = lead(ctx, &intake_job(source)).await?;
    let job = JobKind::Intake(source.to_string());
    let started = begin(ctx, &job);
    let result = intake_inner(ctx, source, fresh).await;
    let had_work = result.as_ref().map_or(true, |s| {
        s.files + s.duplicates + s.unreadable + s.failed + s.polls > 0
    });
    let ok = result
        .as_ref()
        .is_ok_and(|s| s.failed == 0 && s.polls_incomplete == 0);
    finish(ctx, job, started, ok, had_work);
    result
}

async fn intake_inner(
    ctx: &Context,
    source: &str,
    fresh: &HashSet<PathBuf>,
) -> Result<IngestSummary, JobError> {
    let (config, mapping) = ctx
        .snapshot
        .sources
        .list
        .iter()
        .find(|(_, m)| m.name == source)
        .ok_or_else(|| JobError::NoSource(source.to_string()))?;
    if mapping.api().is_some() {
        let intake = Intake {
            store: &ctx.store,
            mapping: Arc::new(mapping.clone()),
            watch: PathBuf::new(),
            settle: Duration::ZERO,
            cfg: &ctx.snapshot.cfg,
            clock: ctx.clock,
            fresh,
            events: &ctx.events,
        };
        return Ok(IngestSummary::of_poll(&intake.poll().await?));
    }
    let Some(watch) = &config.watch else {
        return Ok(IngestSummary::default());
    };
    let present = watch.is_dir();
    ctx.events.emit(Event::Folder {
        source: source.to_string(),
        role: FolderRole::Drop,
        present,
    });
    if !present {
        // Reported (health, metrics, a log line on the change); the folder
        // is looked at again on the next rescan. On a shared store another
        // instance, whose mount may be fine, may take the source meanwhile.
        ctx.store.release_lease(&intake_job(source)).await?;
        return Ok(IngestSummary::default());
    }
    let intake = Intake {
        store: &ctx.store,
        mapping: Arc::new(mapping.clone()),
        watch: watch.clone(),
        settle: Duration::from_secs(config.settle_secs),
        cfg: &ctx.snapshot.cfg,
        clock: ctx.clock,
        fresh,
        events: &ctx.events,
    };
    Ok(intake.take_waiting().await?)
}

/// Send: drains the outbox. `deadline` bounds only waiting on backoffs (the
/// daemon passes now: it schedules a "backoff ended" trigger instead).
pub async fn send(ctx: &Context, deadline: DateTime<Utc>) -> Result<SendSummary, JobError> {
    let job = JobKind::Send;
    let started = begin(ctx, &job);
    let batch = ctx.snapshot.cfg.index.batch_size as usize;
    let result = index::drain(&ctx.store, &*ctx.index, batch, &ctx.clock, deadline).await;
    // Whatever ended the send (done, credentials refused, an error): rows
    // this instance claimed and did not record are anyone's again.
    let result = match (result, ctx.store.unclaim().await) {
        (Ok(_), Err(e)) => Err(e),
        (result, _) => result,
    };
    // Confirmed payloads were deleted: out of the WAL too. Nothing
    // recorded, nothing deleted: no scrub (on PostgreSQL a VACUUM, which
    // instances would otherwise queue up for at every look).
    let result = match result {
        Ok(s) if s.confirmed + s.refused + s.conflicts > 0 => ctx.store.scrub().await.map(|()| s),
        other => other,
    };
    let ok = result
        .as_ref()
        .is_ok_and(|s| !s.auth_failed && s.retries == 0);
    let had_work = result.as_ref().map_or(true, |s| {
        s.confirmed + s.refused + s.conflicts + s.retries > 0 || s.auth_failed
    });
    finish(ctx, job, started, ok, had_work);
    Ok(result?)
}

/// What the notices job did: pulled the feed, delivered what was due.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoticesReport {
    pub pulled: PullSummary,
    pub delivered: DeliverySummary,
}

/// Notices: pulls the feed, then delivers through the return channels.
pub async fn notices(ctx: &Context) -> Result<NoticesReport, JobError> {
    let _leading = lead(ctx, "notices").await?;
    let job = JobKind::Notices;
    let started = begin(ctx, &job);
    let result = notices_inner(ctx).await;
    let ok = result
        .as_ref()
        .is_ok_and(|r| !r.pulled.failed && r.delivered.failed == 0);
    let had_work = result.as_ref().map_or(true, |r| {
        r.pulled.failed || r.pulled.new > 0 || r.delivered.delivered + r.delivered.failed > 0
    });
    finish(ctx, job, started, ok, had_work);
    result
}

async fn notices_inner(ctx: &Context) -> Result<NoticesReport, JobError> {
    let cfg = &ctx.snapshot.cfg;
    for (source, channel) in &cfg.returns {
        if let ReturnConfig::Folder { path, .. } = channel {
            ctx.events.emit(Event::Folder {
                source: source.clone(),
                role: FolderRole::Return,
                present: path.is_dir(),
            });
        }
    }
    let pulled = index::pull_notices(&ctx.store, &*ctx.index, &ctx.clock).await?;
    let delivered = returns::deliver(&ctx.store, cfg, &ctx.clock, &ctx.events).await?;
    // Delivered notices lost their contact data: out of the WAL too.
    if delivered.delivered > 0 || pulled.new > 0 {
        ctx.store.scrub().await?;
    }
    Ok(NoticesReport { pulled, delivered })
}

/// Reconcile (the nightly job, and `visync reconcile`): compare with the
/// index, renewals, expiry, retention (reconcile.md). What it queued goes
/// out with the next send; the notices it made with the next delivery.
pub async fn reconcile(ctx: &Context, dry_run: bool) -> Result<Report, JobError> {
    let _leading = match dry_run {
        false => Some(lead(ctx, "reconcile").await?),
        true => None,
    };
    let job = JobKind::Reconcile;
    let started = begin(ctx, &job);
    let today = ctx.clock.today();
    let now = ctx.clock.now();
    let cfg = &ctx.snapshot.cfg;
    let result = crate::reconcile::run(&ctx.store, &*ctx.index, cfg, today, now, dry_run).await;
    if !dry_run {
        // Whatever the outcome: the next fire (or a run by hand) may be
        // any instance's. Not freed, it expires after a lease.
        if let Err(e) = ctx.store.release_lease("reconcile").await {
            tracing::warn!("cannot let go of the reconciliation's lease: {e}");
        }
    }
    let ok = result.as_ref().is_ok_and(Report::complete);
    finish(ctx, job, started, ok, true);
    Ok(result?)
}

/// The store's counts, told as gauges (after every job, and at start).
pub async fn publish_gauges(ctx: &Context) -> Result<Gauges, JobError> {
    let queue = ctx.store.queue_counts().await?;
    let notices = ctx.store.notice_counts().await?;
    let signals = ctx.store.signal_counts().await?;
    let gauges = Gauges {
        outbox_depth: queue.ready,
        held_withdrawals: queue.held,
        quarantined: queue.quarantined,
        notices_waiting: notices.pending,
        signals: signals
            .into_iter()
            .map(|(k, v)| (k, v.max(0) as u64))
            .collect(),
    };
    ctx.events.emit(Event::Gauges(gauges.clone()));
    Ok(gauges)
}

fn begin(ctx: &Context, job: &JobKind) -> Instant {
    ctx.events.emit(Event::JobStarted { job: job.clone() });
    Instant::now()
}

fn finish(ctx: &Context, job: JobKind, started: Instant, ok: bool, had_work: bool) {
    ctx.events.emit(Event::JobFinished {
        job,
        ok,
        had_work,
        seconds: started.elapsed().as_secs_f64(),
    });
}

/// The heartbeat of this instance on a shared store (PostgreSQL): enters
/// it in the list at once, then renews its leases and claims every third
/// of `[state] lease_secs`, in a task of its own so that a long job never
/// delays it. Nothing on SQLite. Dropping the guard stops it.
pub async fn heartbeat(store: &Store, clock: Clock) -> Option<Heartbeat> {
    if !store.is_shared() {
        return None;
    }
    if let Err(e) = store.heartbeat(clock.now()).await {
        tracing::warn!("cannot enter this instance in the state store's list: {e}");
    }
    let every = (store.instance().lease / 3)
        .to_std()
        .unwrap_or(Duration::from_secs(1));
    let store = store.clone();
    Some(Heartbeat(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = store.heartbeat(clock.now()).await {
                // Nothing was renewed: what it holds runs out one lease
                // after the last beat that worked, unless a later one does.
                tracing::warn!("the heartbeat to the state store failed: {e}");
            }
        }
    })))
}

/// Stops the heartbeat when dropped.
pub struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}
