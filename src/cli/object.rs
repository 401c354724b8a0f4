//! `visync object --bsn BSN [--undo]`: record that a child (or the parents)
//! objected. Every signal of the child is withdrawn with reason `objection`
//! (the index purges it; one never sent is dropped here), and no source can
//! register the child again: its records are rejected with code `objection`.
//! `--undo` takes the objection back; nothing is registered again until a
//! source lists the child again.

use std::path::PathBuf;

use super::{exit, load_config, parse_bsn, runtime, CliError};
use crate::clock::Clock;
use crate::config;
use crate::store::Store;

#[derive(clap::Args, Debug)]
pub struct ObjectArgs {
    #[arg(short = 'c', long = "config", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The child's BSN.
    #[arg(long)]
    pub bsn: String,
    /// Take the objection back.
    #[arg(long)]
    pub undo: bool,
}

pub fn run(args: ObjectArgs, clock: Clock) -> Result<u8, CliError> {
    let cfg = load_config(&args.config)?;
    let bsn = parse_bsn(&args.bsn)?;
    runtime().block_on(async {
        let _lock = super::lock_state(&cfg, "visync object", true).await?;
        let store = Store::open(&cfg.state, cfg.state_key_file.as_deref()).await?;
        let key = store.hasher().key(&bsn);
        let result = if args.undo {
            store.unobject(&key, clock.now()).await.map(|taken_back| {
                if taken_back {
                    println!("objection for {bsn} taken back: a source that lists the child again registers it");
                } else {
                    println!("no objection was recorded for {bsn}");
                }
            })
        } else {
            store.object(&key, clock.now()).await.map(|done| {
                let already = if done.already { " (it was already recorded)" } else { "" };
                println!(
                    "objection recorded for {bsn}{already}: {} signal(s) to withdraw on the next pass, \
                     {} never sent and dropped; the child is never registered again",
                    done.withdrawn, done.dropped
                );
            })
        };
        store.close().await;
        result?;
        Ok(exit::OK)
    })
}
