//! `visync run`: the daemon (`app::daemon`), or one full pass (`--once`):
//! every job once, in order, and an exit status from their reports.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::progress::PassProgress;
use super::{connect_index, exit, load_config, lock_state, runtime, CliError, Sources};
use crate::app::events::Events;
use crate::app::jobs::{self, Context, JobError};
use crate::app::snapshot::Snapshot;
use crate::app::{daemon, ObservedIndex};
use crate::clock::Clock;
use crate::config;
use crate::index::SendSummary;
use crate::ingest::IngestSummary;
use crate::store::{QueueCounts, Store};

/// How long one pass keeps retrying what the index answered with a transient
/// error before it leaves the rest for the next pass.
const SEND_BUDGET: Duration = Duration::from_secs(120);

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[arg(short = 'c', long = "config", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// One full pass, then exit.
    #[arg(long)]
    pub once: bool,
}

pub fn run(args: RunArgs, clock: Clock) -> Result<u8, CliError> {
    runtime().block_on(async move {
        // The daemon's signal handlers come first: a SIGTERM while the config
        // loads or migrations run is answered, not fatal.
        let mut signals = (!args.once).then(daemon::Signals::install).transpose()?;
        let cfg = load_config(&args.config)?;
        let sources = Sources::load(&cfg, None)?;
        let snapshot = Snapshot { cfg, sources };
        // One state, one worker: the daemon refuses to start beside another
        // holder; a one-shot pass waits for the daemon to let go.
        let who = if args.once {
            "visync run --once"
        } else {
            "visync run (daemon)"
        };
        let _lock = lock_state(&snapshot.cfg, who, args.once).await?;
        let cfg = &snapshot.cfg;
        let store = match &mut signals {
            Some(signals) => match open_waiting(cfg, signals).await? {
                Some(store) => store,
                None => return Ok(exit::OK),
            },
            None => Store::open(&cfg.state, cfg.state_key_file.as_deref()).await?,
        };
        if let Some(signals) = signals {
            daemon::run(args.config.clone(), snapshot, store, clock, signals).await?;
            return Ok(exit::OK);
        }
        let index = connect_index(cfg).await?;
        // A spinner for a person at a terminal; nothing for a pipe or a log.
        let progress = super::progress::spinner().map(|b| Arc::new(PassProgress::new(b)));
        let events = match &progress {
            Some(p) => Events::new(vec![p.clone() as Arc<dyn crate::app::events::Sink>]),
            None => Events::none(),
        };
        let ctx = Context {
            index: Arc::new(ObservedIndex::new(index.api.clone(), events.clone())),
            store,
            clock,
            snapshot: Arc::new(snapshot),
            events,
        };
        let beat = jobs::heartbeat(&ctx.store, clock).await;
        let code = pass(&ctx, progress.as_deref()).await;
        drop(beat);
        ctx.store.close().await;
        Ok(code)
    })
}

/// How long the service waits at start for a database server that does
/// not answer: after a power cut the machines come back in any order, and
/// the unit does not restart an exit 2 (`RestartPreventExitStatus=2`).
const SERVER_WAIT: Duration = Duration::from_secs(120);

/// The store, for the service: a server that does not answer (refused,
/// timed out) is waited for up to `SERVER_WAIT`, saying so; one that
/// answers and refuses us (a wrong password, an unknown role) is an exit 2
/// at once, as is a server still silent after the wait.
/// `None`: stopped (SIGTERM) while waiting.
async fn open_waiting(
    cfg: &config::Config,
    signals: &mut daemon::Signals,
) -> Result<Option<Store>, CliError> {
    let deadline = tokio::time::Instant::now() + SERVER_WAIT;
    let mut told = false;
    loop {
        match Store::open(&cfg.state, cfg.state_key_file.as_deref()).await {
            Err(
                e @ crate::store::StoreError::Server {
                    unreachable: true, ..
                },
            ) if tokio::time::Instant::now() < deadline => {
                if !told {
                    tracing::warn!("{e}; waiting up to {} s for it", SERVER_WAIT.as_secs());
                    crate::app::sd::status("waiting for the state database");
                    told = true;
                }
                if signals.stopped_within(Duration::from_secs(2)).await {
                    return Ok(None);
                }
            }
            result => return Ok(Some(result?)),
        }
    }
}

/// One pass, and what its outcome means as an exit status.
async fn pass(ctx: &Context, progress: Option<&PassProgress>) -> u8 {
    let result = jobs_in_order(ctx).await;
    if let Some(p) = progress {
        p.finish();
    }
    match result {
        Ok(code) => code,
        // The pass ran and some of it failed: items still failing, not a
        // config error.
        Err(e) => {
            tracing::error!("the pass stopped: {e}");
            exit::PARTIAL
        }
    }
}

/// Every job once, in order; the exit status says whether anything is
/// still failing.
async fn jobs_in_order(ctx: &Context) -> Result<u8, JobError> {
    let mut taken = IngestSummary::default();
    let none = HashSet::new();
    for (_, mapping) in &ctx.snapshot.sources.list {
        match jobs::intake(ctx, &mapping.name, &none).await {
            Ok(s) => add(&mut taken, &s),
            // A running service on the shared store takes this source.
            Err(e) if e.standing_by() => tracing::info!(source = mapping.name, "{e}"),
            // One source's trouble (an unreachable share) does not stop the others.
            Err(e) => {
                tracing::error!(source = mapping.name, "cannot take files or poll: {e}");
                taken.failed += 1;
            }
        }
    }
    let deadline = ctx.clock.now() + chrono::Duration::from_std(SEND_BUDGET).unwrap_or_default();
    let sent = jobs::send(ctx, deadline).await?;
    let notices = match jobs::notices(ctx).await {
        Err(e) if e.standing_by() => {
            tracing::info!("{e}");
            jobs::NoticesReport::default()
        }
        result => result?,
    };
    let (pulled, delivered) = (notices.pulled, notices.delivered);
    let store = &ctx.store;
    let queue = store.queue_counts().await?;
    report(&taken, &sent, &queue);
    eprintln!(
        "notices: {} received ({} new){}, {} delivered, {} waiting for their channel, {} kept (no [returns] for their source)",
        pulled.received,
        pulled.new,
        if pulled.failed { ", FEED UNREADABLE" } else { "" },
        delivered.delivered,
        delivered.failed,
        delivered.no_channel
    );
    // Notices whose channel failed before (and still wait for a retry) count too.
    let troubled = store
        .notice_trouble()
        .await?
        .iter()
        .any(|(_, _, e)| e.is_some());
    let failing = taken.failed > 0
        || taken.polls_incomplete > 0
        || sent.auth_failed
        || sent.refused > 0
        || queue.ready > 0
        || queue.quarantined > 0
        || pulled.failed
        || delivered.failed > 0
        || troubled;
    Ok(if failing { exit::PARTIAL } else { exit::OK })
}

fn add(total: &mut IngestSummary, s: &IngestSummary) {
    total.files += s.files;
    total.duplicates += s.duplicates;
    total.unreadable += s.unreadable;
    total.unsettled += s.unsettled;
    total.failed += s.failed;
    total.records += s.records;
    total.accepted += s.accepted;
    total.rejected += s.rejected;
    total.skipped += s.skipped;
    total.applied.registered += s.applied.registered;
    total.applied.updated += s.applied.updated;
    total.applied.withdrawn += s.applied.withdrawn;
    total.applied.renewed += s.applied.renewed;
    total.applied.held += s.applied.held;
    total.polls += s.polls;
    total.polls_incomplete += s.polls_incomplete;
}

/// The pass summary, on stderr, for a person reading a terminal or a journal.
fn report(t: &IngestSummary, s: &SendSummary, q: &QueueCounts) {
    let a = &t.applied;
    eprintln!(
        "files: {} taken, {} already taken, {} unreadable, {} not settled yet, {} could not be taken now\n\
         polls: {} run, {} incomplete (nothing withdrawn from those)\n\
         records: {} read, {} accepted, {} rejected, {} skipped\n\
         planned: {} register, {} update, {} withdraw, {} renew, {} withdrawals held\n\
         index: {} confirmed, {} refused, {} conflicts adopted, {} to retry{}\n\
         queue: {} waiting, {} held, {} quarantined",
        t.files,
        t.duplicates,
        t.unreadable,
        t.unsettled,
        t.failed,
        t.polls,
        t.polls_incomplete,
        t.records,
        t.accepted,
        t.rejected,
        t.skipped,
        a.registered,
        a.updated,
        a.withdrawn,
        a.renewed,
        a.held,
        s.confirmed,
        s.refused,
        s.conflicts,
        s.retries,
        if s.auth_failed {
            "; STOPPED: the index refused our credentials"
        } else {
            ""
        },
        q.ready,
        q.held,
        q.quarantined,
    );
}
