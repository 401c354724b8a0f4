//! `visync object --bsn BSN [--undo]`: record that a child (or the parents)
//! objected. Every signal of the child is withdrawn with reason `objection`
//! (the index purges it; one never sent is dropped here), and no source can
//! register the child again: its records are rejected with code `objection`.
//! `--undo` takes the objection back; nothing is registered again until a
//! source lists the child again.

use std::path::PathBuf;

use super::{exit, load_config, parse_bsn, runtime};
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

pub fn run(args: ObjectArgs, clock: Clock) -> u8 {
    let cfg = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let bsn = match parse_bsn(&args.bsn) {
        Ok(b) => b,
        Err(code) => return code,
    };
    runtime().block_on(async {
        let _lock = match super::lock_state(&cfg, "visync object", true).await {
            Ok(l) => l,
            Err(code) => return code,
        };
        let store = match Store::open(&cfg.state, cfg.state_key_file.as_deref()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::CONFIG;
            }
        };
        let key = store.hasher().key(&bsn);
        let code = if args.undo {
            match store.unobject(&key, clock.now()).await {
                Ok(true) => {
                    println!("objection for {bsn} taken back: a source that lists the child again registers it");
                    exit::OK
                }
                Ok(false) => {
                    println!("no objection was recorded for {bsn}");
                    exit::OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::CONFIG
                }
            }
        } else {
            match store.object(&key, clock.now()).await {
                Ok(done) => {
                    let already = if done.already { " (it was already recorded)" } else { "" };
                    println!(
                        "objection recorded for {bsn}{already}: {} signal(s) to withdraw on the next pass, \
                         {} never sent and dropped; the child is never registered again",
                        done.withdrawn, done.dropped
                    );
                    exit::OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::CONFIG
                }
            }
        };
        store.close().await;
        code
    })
}
