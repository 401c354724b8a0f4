//! `visync audit verify` and `visync audit export`: the audit trail's hash
//! chain checked, or written out as JSON lines, for a privacy officer or an
//! auditor. Both open the state store read-only, so they are safe beside a
//! running daemon. The trail holds ids and codes, never a BSN or a name.

use std::io::Write;
use std::path::PathBuf;

use chrono::NaiveDate;

use super::{exit, load_config, runtime, CliError};
use crate::config;
use crate::store::{Store, StoreError};

#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// Also accepted after the subcommand (`audit verify -c CONFIG`).
    #[arg(short = 'c', long = "config", default_value = config::DEFAULT_PATH, global = true)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub action: AuditAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum AuditAction {
    /// Check the hash chain: exit 0 intact, 1 broken (names the event).
    Verify,
    /// Write the trail to stdout as JSON lines, oldest first.
    Export {
        /// Only events on or after this day (YYYY-MM-DD, UTC).
        #[arg(long, value_name = "DATE")]
        since: Option<NaiveDate>,
    },
}

pub fn run(args: AuditArgs) -> Result<u8, CliError> {
    let cfg = load_config(&args.config)?;
    runtime().block_on(async {
        let mut store = Store::open_read_only(&cfg.state, cfg.state_key_file.as_deref()).await?;
        // A decommissioned store keeps its trail and has no key any more.
        if store.is_none() {
            store = crate::store::decommission::open_trail(&cfg.state).await?;
        }
        let Some(store) = store else {
            eprintln!("there is no state store yet: nothing has been done, so there is no trail");
            return Ok(exit::OK);
        };
        let result = match args.action {
            AuditAction::Verify => verify(&store).await,
            AuditAction::Export { since } => export(&store, since).await,
        };
        store.close().await;
        Ok(result?)
    })
}

async fn verify(store: &Store) -> Result<u8, StoreError> {
    Ok(match store.verify_audit().await? {
        Ok(n) => {
            println!("audit trail intact: {n} events");
            exit::OK
        }
        Err(id) => {
            println!(
                "audit trail BROKEN at event {id}: it, or the event before it, was changed or removed; \
                 keep a copy of the state store as it is and compare with a backup"
            );
            exit::PARTIAL
        }
    })
}

async fn export(store: &Store, since: Option<NaiveDate>) -> Result<u8, StoreError> {
    let since = since.map(|d| d.to_string());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after = 0;
    loop {
        let page = store.audit_page(after, since.as_deref()).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        for event in &page {
            let line = serde_json::to_string(event).expect("an event serialises");
            if writeln!(out, "{line}").is_err() {
                // stdout closed (a pipe into `head`): stop quietly.
                return Ok(exit::OK);
            }
        }
    }
    let _ = out.flush();
    Ok(exit::OK)
}
