//! The command line: parses arguments, loads the config, runs one command and
//! turns its result into an exit status. Commands live one per file.

mod check;
mod report;

use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

use crate::clock::Clock;
use crate::config::{self, Config, LogFormat};

#[derive(Parser, Debug)]
#[command(
    name = "visync",
    version,
    about = "Connects case-management systems to the Verwijsindex"
)]
pub struct Cli {
    /// Pretend today is DATE (YYYY-MM-DD), for acceptance tests and previews.
    #[arg(long, global = true, value_name = "DATE")]
    pub today: Option<NaiveDate>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Dry run: read, map, validate and plan without changing anything.
    Check(check::CheckArgs),
}

/// Exit statuses shared by the commands.
pub mod exit {
    pub const OK: u8 = 0;
    /// Some records rejected, a test failed, or items still failing.
    pub const PARTIAL: u8 = 1;
    /// A config, mapping or unreadable-input error.
    pub const CONFIG: u8 = 2;
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let clock = cli.today.map_or(Clock::System, Clock::on);
    let code = match cli.command {
        Command::Check(args) => check::run(args, clock),
    };
    ExitCode::from(code)
}

/// Loads the config, or says why not (exit 2).
fn load_config(path: &std::path::Path) -> Result<Config, u8> {
    match config::load(path) {
        Ok(c) => {
            init_logging(c.log_format);
            Ok(c)
        }
        Err(e) => {
            init_logging(LogFormat::Text);
            eprintln!("error: {e}");
            Err(exit::CONFIG)
        }
    }
}

/// Logs go to stderr; `RUST_LOG` filters them. No log line carries a BSN, a
/// name or a token: code logs signal ids and keyed hashes only.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
