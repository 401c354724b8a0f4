//! `visync release`: let a held snapshot's withdrawals go ahead, and try
//! quarantined notices again. Both go on the next pass.

use std::path::PathBuf;

use super::{exit, load_config, runtime, CliError};
use crate::clock::Clock;
use crate::config;
use crate::store::Store;

#[derive(clap::Args, Debug)]
pub struct ReleaseArgs {
    #[arg(short = 'c', long = "config", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The source whose held withdrawals go ahead.
    #[arg(long)]
    pub source: String,
}

pub fn run(args: ReleaseArgs, clock: Clock) -> Result<u8, CliError> {
    let cfg = load_config(&args.config)?;
    runtime().block_on(async {
        let _lock = super::lock_state(&cfg, "visync release", true).await?;
        let store = Store::open(&cfg.state, cfg.state_key_file.as_deref()).await?;
        let result = match store.release(&args.source, clock.now()).await {
            Ok(w) => store
                .release_notices(&args.source, clock.now())
                .await
                .map(|n| (w, n)),
            Err(e) => Err(e),
        };
        store.close().await;
        match result? {
            (0, 0) => {
                println!("nothing is held for source \"{}\"", args.source);
                Ok(exit::PARTIAL)
            }
            (w, n) => {
                if w > 0 {
                    println!(
                        "released {w} withdrawals of source \"{}\"; the next pass sends them",
                        args.source
                    );
                }
                if n > 0 {
                    println!(
                        "released {n} quarantined notices of source \"{}\"; the next pass delivers them",
                        args.source
                    );
                }
                Ok(exit::OK)
            }
        }
    })
}
