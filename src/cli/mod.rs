//! The command line: parses arguments, loads the config, runs one command and
//! turns its result into an exit status. Commands live one per file; this
//! file holds what they share.

mod audit;
mod check;
mod index_sim;
mod object;
mod release;
mod report;
mod run;
mod status;
mod subject;

use std::collections::HashMap;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

use crate::clock::Clock;
use crate::config::{self, Config, IndexUrl, LogFormat, SourceConfig};
use crate::index::HttpIndex;
use crate::mapping::{self, Mapping};
use crate::store::Store;

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
    crate::tls::install_provider();
    let clock = cli.today.map_or(Clock::System, Clock::on);
    let code = match cli.command {
        Command::Check(args) => check::run(args, clock),
        Command::IndexSim(args) => index_sim::run(args),
        Command::Run(args) => run::run(args, clock),
        Command::Status(args) => status::run(args),
        Command::Release(args) => release::run(args, clock),
        Command::Audit(args) => audit::run(args),
        Command::Subject(args) => subject::run(args),
        Command::Object(args) => object::run(args, clock),
    };
    ExitCode::from(code)
}

/// A `--bsn` argument, or exit 2 with why, never repeating it in clear.
fn parse_bsn(raw: &str) -> Result<crate::domain::Bsn, u8> {
    crate::domain::Bsn::parse(raw).map_err(|e| {
        eprintln!("error: --bsn: {} {e}", crate::domain::mask(raw));
        exit::CONFIG
    })
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

/// The configured sources with their loaded mappings.
struct Sources {
    list: Vec<(SourceConfig, Mapping)>,
}

impl Sources {
    /// Loads every mapping (all errors at once), checks names are unique, and
    /// keeps only `only` when given.
    fn load(cfg: &Config, only: Option<&str>) -> Result<Sources, String> {
        let mut list = Vec::new();
        let mut errors = Vec::new();
        for s in &cfg.sources {
            match mapping::load(&s.mapping) {
                Ok(m) => list.push((s.clone(), m)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("\nerror: "));
        }
        let mut seen = HashMap::new();
        for (_, m) in &list {
            if let Some(other) = seen.insert(m.name.clone(), m.path.clone()) {
                return Err(format!(
                    "two mappings use the source name \"{}\": {} and {}; names must be unique",
                    m.name,
                    other.display(),
                    m.path.display()
                ));
            }
        }
        if let Some(name) = only {
            list.retain(|(_, m)| m.name == name);
            if list.is_empty() {
                return Err(format!(
                    "config {}: no source is named \"{name}\"",
                    cfg.path.display()
                ));
            }
        }
        if list.is_empty() {
            return Err(format!(
                "config {}: there are no [[sources]]",
                cfg.path.display()
            ));
        }
        Ok(Sources { list })
    }
}

/// The index this installation talks to, and the embedded one if it runs it.
struct IndexConn {
    api: HttpIndex,
    _embedded: Option<crate::indexsim::SimHandle>,
}

/// Connects to the configured index; `embedded` starts the reference index
/// in-process on a loopback port, with its store beside the state.
async fn connect_index(cfg: &Config, store: &Store) -> Result<IndexConn, String> {
    let _ = store;
    match &cfg.index.url {
        IndexUrl::Embedded => {
            let dir = match &cfg.state {
                config::StateUrl::Sqlite(p) => {
                    p.parent().map(|d| d.to_path_buf()).unwrap_or_default()
                }
                config::StateUrl::Postgres(_) => std::env::temp_dir(),
            };
            let token = format!("embedded-{}", cfg.organisation.code);
            let opts = crate::indexsim::SimOptions {
                listen: "127.0.0.1:0".parse().expect("a loopback address"),
                db: dir.join("index-sim.db"),
                orgs: vec![(cfg.organisation.code.clone(), token.clone())],
                families: None,
                chaos: None,
                clock: None,
                rules: cfg.rules,
                role: crate::indexsim::Role::Regional,
                upstream: None,
            };
            let handle = crate::indexsim::start(opts)
                .await
                .map_err(|e| format!("the embedded index: {e}"))?;
            let base =
                url::Url::parse(&format!("http://{}", handle.addr())).expect("a loopback URL");
            tracing::info!(addr = %handle.addr(), "embedded reference index started");
            let api = HttpIndex::new(base, Some(token), None, None).map_err(|e| e.to_string())?;
            Ok(IndexConn {
                api,
                _embedded: Some(handle),
            })
        }
        IndexUrl::Remote(url) => {
            let token = match &cfg.index.token_file {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(|e| {
                            format!(
                                "config {}, [index] token_file: cannot read {}: {e}",
                                cfg.path.display(),
                                p.display()
                            )
                        })?
                        .trim()
                        .to_string(),
                ),
                None => None,
            };
            let identity = cfg
                .index
                .client_cert
                .as_deref()
                .zip(cfg.index.client_key.as_deref());
            let api = HttpIndex::new(url.clone(), token, identity, cfg.index.ca.as_deref())
                .map_err(|e| e.to_string())?;
            Ok(IndexConn {
                api,
                _embedded: None,
            })
        }
    }
}
