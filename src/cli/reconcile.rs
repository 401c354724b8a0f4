//! `visync reconcile`: the nightly job, now (reconcile.md). Without
//! `--dry-run` it is the daemon's reconcile job followed by a send and a
//! delivery of notices, so that what it queued (renewals) and made
//! (`renewal_due`, `renewed`) goes out in the same run; the exit status is
//! `run --once`'s. With `--dry-run` the store is opened read-only, the
//! index gets `GET`s only, and nothing anywhere changes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;

use super::{connect_index, exit, load_config, lock_state, runtime, CliError, Sources};
use crate::app::events::Events;
use crate::app::jobs::{self, Context, JobError};
use crate::app::snapshot::Snapshot;
use crate::app::ObservedIndex;
use crate::clock::Clock;
use crate::config::{self, StateUrl};
use crate::reconcile::Report;
use crate::store::Store;

/// How long the run keeps retrying what the index answered with a transient
/// error before it leaves the rest for the next pass (as `run --once`).
const SEND_BUDGET: Duration = Duration::from_secs(120);

#[derive(clap::Args, Debug)]
pub struct ReconcileArgs {
    #[arg(short = 'c', long = "config", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Compute and print the report; change nothing anywhere (GETs only).
    #[arg(long)]
    pub dry_run: bool,
    /// Reconcile as if today were DATE (YYYY-MM-DD); as `--today`, and it
    /// wins over it.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<NaiveDate>,
    /// The report as JSON on stdout (reconcile.md's shape).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ReconcileArgs, clock: Clock) -> Result<u8, CliError> {
    let clock = args.as_of.map_or(clock, Clock::on);
    let cfg = load_config(&args.config)?;
    runtime().block_on(async move {
        let sources = Sources::load(&cfg, None)?;
        // The dry run writes nothing, so it needs no lock: it runs beside
        // the daemon. The real one waits for the daemon, as `run --once`.
        let _lock = match args.dry_run {
            true => None,
            false => lock_state(&cfg, "visync reconcile", true).await?,
        };
        let store = open(&cfg, args.dry_run).await?;
        let index = connect_index(&cfg).await?;
        let ctx = Context {
            index: Arc::new(ObservedIndex::new(index.api.clone(), Events::none())),
            store,
            clock,
            snapshot: Arc::new(Snapshot { cfg, sources }),
            events: Events::none(),
        };
        // On a shared store it is an instance while it runs: listed, its
        // lease renewed however long it takes, freed by a successor on this
        // machine if it is killed.
        let beat = crate::app::jobs::heartbeat(&ctx.store, clock).await;
        let result = reconcile(&ctx, args.dry_run).await;
        drop(beat);
        ctx.store.close().await;
        let (report, failing) = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("the reconciliation stopped: {e}");
                return Ok(exit::PARTIAL);
            }
        };
        if args.json {
            let text = serde_json::to_string_pretty(&report.json()).expect("JSON serialises");
            println!("{text}");
        } else {
            eprintln!("{}", report.text());
        }
        Ok(if failing || !report.complete() {
            exit::PARTIAL
        } else {
            exit::OK
        })
    })
}

/// The store: read-only for the dry run, which creates nothing.
async fn open(cfg: &config::Config, dry_run: bool) -> Result<Store, CliError> {
    let key = cfg.state_key_file.as_deref();
    if !dry_run {
        return Ok(Store::open(&cfg.state, key).await?);
    }
    match Store::open_read_only(&cfg.state, key).await? {
        Some(s) => Ok(s),
        None => Err(CliError::NoState(match &cfg.state {
            StateUrl::Sqlite(p) => p.clone(),
            StateUrl::Postgres(_) => PathBuf::from("[state] url"),
        })),
    }
}

/// The job, then (not in a dry run) send and deliver; whether anything is
/// still failing afterwards.
async fn reconcile(ctx: &Context, dry_run: bool) -> Result<(Report, bool), JobError> {
    let report = jobs::reconcile(ctx, dry_run).await?;
    if dry_run {
        return Ok((report, false));
    }
    let deadline = ctx.clock.now() + chrono::Duration::from_std(SEND_BUDGET).unwrap_or_default();
    let sent = jobs::send(ctx, deadline).await?;
    let notices = jobs::notices(ctx).await?;
    let (pulled, delivered) = (notices.pulled, notices.delivered);
    let queue = ctx.store.queue_counts().await?;
    eprintln!(
        "index: {} confirmed, {} refused, {} to retry{}; queue: {} waiting, {} quarantined\n\
         notices: {} delivered, {} waiting for their channel",
        sent.confirmed,
        sent.refused,
        sent.retries,
        if sent.auth_failed {
            "; STOPPED: the index refused our credentials"
        } else {
            ""
        },
        queue.ready,
        queue.quarantined,
        delivered.delivered,
        delivered.failed,
    );
    let failing = sent.auth_failed
        || queue.ready > 0
        || queue.quarantined > 0
        || pulled.failed
        || delivered.failed > 0;
    Ok((report, failing))
}
