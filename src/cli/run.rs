//! `visync run`: one full pass (`--once`), or passes until stopped. A pass
//! takes the waiting files of every source into the store, then drains the
//! outbox to the index.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{exit, load_config, runtime, Sources};
use crate::clock::Clock;
use crate::config::{self, Config};
use crate::index::{self, SendSummary};
use crate::ingest::{IngestSummary, Intake};
use crate::returns;
use crate::store::{QueueCounts, Store};

/// How long one pass keeps retrying what the index answered with a transient
/// error before it leaves the rest for the next pass.
const SEND_BUDGET: Duration = Duration::from_secs(120);
/// Between passes of the daemon: a rescan catches files whose events were missed.
const RESCAN: Duration = Duration::from_secs(30);

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[arg(short = 'c', long = "config", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// One full pass, then exit.
    #[arg(long)]
    pub once: bool,
}

pub fn run(args: RunArgs, clock: Clock) -> u8 {
    let cfg = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let sources = match Sources::load(&cfg, None) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::CONFIG;
        }
    };
    runtime().block_on(async move {
        let store = match Store::open(&cfg.state, cfg.state_key_file.as_deref()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::CONFIG;
            }
        };
        let index = match super::connect_index(&cfg, &store).await {
            Ok(i) => i,
            Err(message) => {
                eprintln!("error: {message}");
                return exit::CONFIG;
            }
        };
        loop {
            let code = match pass(&cfg, &sources, &store, &index.api, clock).await {
                Ok(code) => code,
                Err(message) => {
                    tracing::error!("the pass stopped: {message}");
                    exit::PARTIAL
                }
            };
            if args.once {
                store.close().await;
                return code;
            }
            tokio::select! {
                _ = tokio::time::sleep(RESCAN) => {}
                _ = shutdown() => {
                    tracing::info!("stopping");
                    store.close().await;
                    return exit::OK;
                }
            }
        }
    })
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// One pass; the exit status says whether anything is still failing.
async fn pass(
    cfg: &Config,
    sources: &Sources,
    store: &Store,
    api: &index::HttpIndex,
    clock: Clock,
) -> Result<u8, String> {
    let mut taken = IngestSummary::default();
    for (source, mapping) in &sources.list {
        let Some(watch) = &source.watch else { continue };
        let intake = Intake {
            store,
            mapping: Arc::new(mapping.clone()),
            watch: watch.clone(),
            settle: Duration::from_secs(source.settle_secs),
            cfg,
            clock,
        };
        match intake.take_waiting().await {
            Ok(s) => add(&mut taken, &s),
            // One source's trouble (an unreachable share) does not stop the others.
            Err(e) => tracing::error!(source = mapping.name, "cannot take files: {e}"),
        }
    }
    let deadline = clock.now() + chrono::Duration::from_std(SEND_BUDGET).unwrap_or_default();
    let sent = index::drain(store, api, cfg.index.batch_size as usize, &clock, deadline)
        .await
        .map_err(|e| e.to_string())?;
    let pulled = index::pull_notices(store, api, &clock)
        .await
        .map_err(|e| e.to_string())?;
    let delivered = returns::deliver(store, cfg, &clock)
        .await
        .map_err(|e| e.to_string())?;
    // Confirmed payloads and delivered contact data were deleted: out of the WAL too.
    store.scrub().await.map_err(|e| e.to_string())?;
    let queue = store.queue_counts().await.map_err(|e| e.to_string())?;
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
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .any(|(_, _, e)| e.is_some());
    let failing = sent.auth_failed
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
    total.records += s.records;
    total.accepted += s.accepted;
    total.rejected += s.rejected;
    total.skipped += s.skipped;
    total.applied.registered += s.applied.registered;
    total.applied.updated += s.applied.updated;
    total.applied.withdrawn += s.applied.withdrawn;
    total.applied.renewed += s.applied.renewed;
    total.applied.held += s.applied.held;
}

/// The pass summary, on stderr, for a person reading a terminal or a journal.
fn report(t: &IngestSummary, s: &SendSummary, q: &QueueCounts) {
    let a = &t.applied;
    eprintln!(
        "files: {} taken, {} already taken, {} unreadable, {} not settled yet\n\
         records: {} read, {} accepted, {} rejected, {} skipped\n\
         planned: {} register, {} update, {} withdraw, {} renew, {} withdrawals held\n\
         index: {} confirmed, {} refused, {} conflicts adopted, {} to retry{}\n\
         queue: {} waiting, {} held, {} quarantined",
        t.files,
        t.duplicates,
        t.unreadable,
        t.unsettled,
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
