//! `visync decommission`: for a region that leaves the index (reconcile.md).
//! Without `--confirm` it says what it would do and exits 1. With it: every
//! live signal is withdrawn through the outbox and sent; what the index did
//! not confirm is reported (exit 1: run it again); once all are confirmed
//! the store is purged down to one audit event and the chain's horizon,
//! and the subject-hash key is deleted. Run again, it does nothing (exit 0).
//! It holds the state's lock throughout, so no intake or poll runs beside
//! it (the daemon must be stopped first: the lock waits for it). On
//! PostgreSQL, which has no lock file, it refuses while another instance
//! beats: the services on every machine are stopped first.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{connect_index, exit, load_config, lock_state, runtime, CliError, Sources};
use crate::app::events::Events;
use crate::app::jobs::{self, Context};
use crate::app::snapshot::Snapshot;
use crate::app::ObservedIndex;
use crate::clock::Clock;
use crate::config::{self, Config, StateUrl};
use crate::store::{decommission, default_key_file, Store, StoreError};

/// How long the run waits on the index's transient failures before it
/// reports what is left (as `run --once`).
const SEND_BUDGET: Duration = Duration::from_secs(120);

#[derive(clap::Args, Debug)]
pub struct DecommissionArgs {
    #[arg(short = 'c', long = "config", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Do it: withdraw everything at the index and purge the local state.
    #[arg(long)]
    pub confirm: bool,
}

pub fn run(args: DecommissionArgs, clock: Clock) -> Result<u8, CliError> {
    let cfg = load_config(&args.config)?;
    runtime().block_on(async move {
        let key = key_file(&cfg)?;
        if decommission::found(&cfg.state).await? != decommission::Found::Live {
            eprintln!("nothing to decommission: the state store holds nothing");
            return Ok(exit::OK);
        }
        let sources = Sources::load(&cfg, None)?;
        let _lock = lock_state(&cfg, "visync decommission", true).await?;
        let store = Store::open(&cfg.state, Some(&key)).await?;
        // Its first beat frees what dead instances of this machine held (a
        // decommission killed before), so that only living ones count.
        let beat = jobs::heartbeat(&store, clock).await;
        let others = store.others_running(clock.now()).await?;
        if !others.is_empty() {
            drop(beat);
            store.close().await;
            let e = StoreError::OthersRunning(others.join(", "));
            eprintln!("visync decommission: {e}");
            return Ok(exit::PARTIAL);
        }
        let live = store.live_per_source().await?;
        if !args.confirm {
            drop(beat);
            store.close().await;
            say_what_it_would_do(&live);
            return Ok(exit::PARTIAL);
        }
        let index = connect_index(&cfg).await?;
        let ctx = Context {
            index: Arc::new(ObservedIndex::new(index.api.clone(), Events::none())),
            store,
            clock,
            snapshot: Arc::new(Snapshot { cfg, sources }),
            events: Events::none(),
        };
        let code = decommission(&ctx, &live, &key).await;
        drop(beat);
        ctx.store.close().await;
        code
    })
}

/// The subject key's file: beside a SQLite store unless the config says
/// otherwise; the config requires it with PostgreSQL.
fn key_file(cfg: &Config) -> Result<PathBuf, CliError> {
    match (&cfg.state_key_file, &cfg.state) {
        (Some(key), _) => Ok(key.clone()),
        (None, StateUrl::Sqlite(db)) => Ok(default_key_file(db)),
        (None, StateUrl::Postgres(_)) => Err(StoreError::NoKeyFile.into()),
    }
}

fn say_what_it_would_do(live: &decommission::PerSource) {
    let total: u64 = live.values().sum();
    eprintln!(
        "visync decommission would withdraw {total} signals at the index (reason risk_ended):"
    );
    for (source, n) in live {
        eprintln!("  source \"{source}\": {n}");
    }
    eprintln!(
        "then, once the index confirms every withdrawal, delete the local state (signals, notices, \
         outbox, ledger, objections, cursors, the subject-hash key), keeping one audit event that \
         summarises it. Stop the daemon first, then run it again with --confirm."
    );
}

/// Withdraw, send, check, purge. The exit status: 0 done, 1 something is
/// left (run again).
async fn decommission(
    ctx: &Context,
    live: &decommission::PerSource,
    key: &Path,
) -> Result<u8, CliError> {
    let store = &ctx.store;
    let queued = store.withdraw_all(ctx.clock.now()).await?;
    let deadline = ctx.clock.now() + chrono::Duration::from_std(SEND_BUDGET).unwrap_or_default();
    let sent = match jobs::send(ctx, deadline).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot send the withdrawals: {e}");
            return Ok(exit::PARTIAL);
        }
    };
    let left = store.not_withdrawn().await?;
    if !left.is_empty() || sent.auth_failed {
        let total: u64 = left.values().sum();
        eprintln!(
            "decommission NOT finished: {total} signals not yet withdrawn at the index ({}){}; \
             nothing was purged. Run `visync decommission --confirm` again once the index answers.",
            left.iter()
                .map(|(state, n)| format!("{n} {state}"))
                .collect::<Vec<_>>()
                .join(", "),
            if sent.auth_failed {
                "; the index refused our credentials: check [index] token_file or the certificate"
            } else {
                ""
            }
        );
        return Ok(exit::PARTIAL);
    }
    let withdrawn = sent.confirmed + sent.refused;
    store
        .purge_all(withdrawn, queued, live, ctx.clock.now())
        .await?;
    store.scrub_all().await?;
    if let Err(e) = std::fs::remove_file(key) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(StoreError::KeyIo {
                path: key.to_path_buf(),
                what: "delete",
                source: e,
            }
            .into());
        }
    }
    eprintln!(
        "decommissioned: {} withdrawals confirmed by the index; the local state is purged \
         (one audit event remains: `visync audit verify` checks it)",
        sent.confirmed + sent.refused
    );
    Ok(exit::OK)
}
