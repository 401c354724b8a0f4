//! The command line: parses arguments, loads the config, runs one command and
//! turns its result into an exit status. Commands live one per file; this
//! file holds what they share.

mod audit;
mod check;
mod decommission;
mod error;
mod html;
mod index_sim;
mod mapping;
mod object;
mod progress;
mod reconcile;
mod release;
mod report;
mod run;
mod status;
mod subject;

use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

pub(crate) use crate::app::snapshot::{connect_index, Sources};
use crate::clock::Clock;
use crate::config::{self, Config, LogFormat};
pub use error::CliError;

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
    /// Mappings: `init` drafts one from a sample export.
    Mapping(mapping::MappingArgs),
    /// The reference regional index, for acceptance tests and loopback tests.
    IndexSim(index_sim::IndexSimArgs),
    /// Take files, plan, and send to the index (`--once`: one pass).
    Run(run::RunArgs),
    /// Queue depth, last files, held snapshots, quarantined items.
    Status(status::StatusArgs),
    /// Let a held snapshot's withdrawals go ahead.
    Release(release::ReleaseArgs),
    /// Check the audit trail's hash chain, or export it as JSON lines.
    Audit(audit::AuditArgs),
    /// Everything held and sent about one child (right of access).
    Subject(subject::SubjectArgs),
    /// Record an objection: withdraw the child's signals, never register it again.
    Object(object::ObjectArgs),
    /// The nightly reconciliation now: compare with the index, renewals,
    /// expiry, retention (`--dry-run`: change nothing).
    Reconcile(reconcile::ReconcileArgs),
    /// Withdraw every signal at the index and purge the local state (for a
    /// region that leaves the index); `--confirm` to do it.
    Decommission(decommission::DecommissionArgs),
}

/// Exit statuses shared by the commands.
pub mod exit {
    pub const OK: u8 = 0;
    /// Some records rejected, a test failed, or items still failing.
    pub const PARTIAL: u8 = 1;
    /// A config, mapping or unreadable-input error.
    pub const CONFIG: u8 = 2;
}

/// Runs the command; the one place that prints why a command failed and
/// turns that into its exit status (`CliError::status`).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::tls::install_provider();
    let clock = cli.today.map_or(Clock::System, Clock::on);
    let result = match cli.command {
        Command::Check(args) => check::run(args, clock),
        Command::Mapping(args) => mapping::run(args, clock),
        Command::IndexSim(args) => index_sim::run(args),
        Command::Run(args) => run::run(args, clock),
        Command::Status(args) => status::run(args, clock),
        Command::Release(args) => release::run(args, clock),
        Command::Audit(args) => audit::run(args),
        Command::Subject(args) => subject::run(args),
        Command::Object(args) => object::run(args, clock),
        Command::Reconcile(args) => reconcile::run(args, clock),
        Command::Decommission(args) => decommission::run(args, clock),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // A command that failed before it set up logging (the config
            // did not load) still logs in plain text; a second init is a no-op.
            init_logging(LogFormat::Text, None);
            eprintln!("{}", error::render(&e));
            ExitCode::from(e.status())
        }
    }
}

/// A `--bsn` argument, or why not, never repeating it in clear.
fn parse_bsn(raw: &str) -> Result<crate::domain::Bsn, CliError> {
    crate::domain::Bsn::parse(raw).map_err(|source| CliError::Bsn {
        masked: crate::domain::mask(raw),
        source,
    })
}

/// Loads the config and sets up logging as it says.
fn load_config(path: &std::path::Path) -> Result<Config, CliError> {
    let c = config::load(path)?;
    init_logging(c.log_format, c.log_level.as_deref());
    Ok(c)
}

/// How long a one-shot command that writes waits for the daemon (or another
/// command) to let go of the state.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// One state, one worker: the daemon takes the state's lock at once (another
/// holder is an error naming it, exit 1); a one-shot command that writes
/// waits for it, saying so, up to `LOCK_WAIT`. PostgreSQL has no lock file.
async fn lock_state(
    cfg: &Config,
    who: &str,
    wait: bool,
) -> Result<Option<crate::app::lock::StateLock>, CliError> {
    use crate::app::lock;
    let config::StateUrl::Sqlite(db) = &cfg.state else {
        return Ok(None);
    };
    let result = if wait {
        lock::acquire_waiting(db, who, LOCK_WAIT, |holder| {
            eprintln!(
                "the state is in use by {holder}; waiting up to {} s for it",
                LOCK_WAIT.as_secs()
            )
        })
        .await
    } else {
        lock::acquire(db, who)
    };
    Ok(Some(result?))
}

/// Logs go to stderr; `RUST_LOG` filters them, else `[log] level`, else
/// `info`. No log line carries a BSN, a name or a token: code logs signal ids
/// and keyed hashes only.
fn init_logging(format: LogFormat, level: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::try_new(level.unwrap_or("info"))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
            // PostgreSQL's notices ("relation already exists, skipping")
            // are the server talking to itself, not news for an operator.
            .add_directive(
                "sqlx::postgres::notice=warn"
                    .parse()
                    .expect("a fixed directive"),
            )
    });
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// A small runtime: the work is IO-bound and the machine may be small.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
