//! `visync index-sim`: the reference index as a process, regional (the
//! default) or national (`--role national`). Prints `listening on IP:PORT`
//! once bound (so that `--listen 127.0.0.1:0` can be used and the port read
//! from stdout), logs to stderr, and runs until SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use url::Url;
use visync_index_sim::{Role, Rules, SimOptions};

use super::{exit, CliError};
use crate::config::LogFormat;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleArg {
    /// Organisations register here (`--org` per organisation).
    Regional,
    /// Regional indexes forward here (`--org` per region).
    National,
}

#[derive(Args, Debug)]
pub struct IndexSimArgs {
    /// Address to listen on (IP:PORT); port 0 picks a free one.
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The index's own SQLite file (created when missing).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// An organisation (on a national index: a region) and its bearer
    /// token; repeat for more.
    #[arg(long = "org", value_name = "CODE=TOKEN", required = true, value_parser = parse_org)]
    pub orgs: Vec<(String, String)>,
    /// Which tier this index is.
    #[arg(long, value_enum, default_value_t = RoleArg::Regional)]
    pub role: RoleArg,
    /// The national index to forward this region's signals to (plain http
    /// only to loopback).
    #[arg(long, value_name = "URL", requires = "upstream_token")]
    pub upstream: Option<Url>,
    /// The bearer token this region presents to the national index (its
    /// `--org` there).
    #[arg(long, value_name = "TOKEN", requires = "upstream")]
    pub upstream_token: Option<String>,
    /// Family ties, `bsn,family_id` per line, for family matches.
    #[arg(long, value_name = "FILE")]
    pub families: Option<PathBuf>,
    /// Give this fraction (0 to 1) of /v1 calls a fault.
    #[arg(long, value_name = "RATE")]
    pub chaos: Option<f64>,
    /// Seed for --chaos: the same seed gives the same faults.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "chaos")]
    pub seed: u64,
    /// Fix the index's date (YYYY-MM-DD) instead of today in Europe/Amsterdam.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub clock: Option<NaiveDate>,
    /// How long a signal may be active, in years.
    #[arg(long, value_name = "YEARS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_active_years: u32,
    /// How long ended signals stay archived before they are purged, in years.
    #[arg(long, value_name = "YEARS", default_value_t = 5)]
    pub archive_years: u32,
    /// Subjects of this age or older are refused, and purged on that birthday.
    #[arg(long, value_name = "YEARS", default_value_t = 23, value_parser = clap::value_parser!(u32).range(1..=150))]
    pub age_limit: u32,
}

fn parse_org(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((code, token)) if !code.trim().is_empty() && !token.trim().is_empty() => {
            Ok((code.trim().to_owned(), token.trim().to_owned()))
        }
        _ => Err("expected CODE=TOKEN".into()),
    }
}

pub fn run(args: IndexSimArgs) -> Result<u8, CliError> {
    super::init_logging(LogFormat::Text, None);
    let opts = SimOptions {
        listen: args.listen,
        db: args.db,
        orgs: args.orgs,
        families: args.families,
        chaos: args.chaos.map(|rate| (rate, args.seed)),
        clock: args.clock,
        // The index's own rules type: it shares no code with the connector's
        // `domain::Rules`, so that the two are checked against each other.
        rules: Rules {
            max_active_years: args.max_active_years,
            archive_years: args.archive_years,
            age_limit: args.age_limit,
        },
        role: match args.role {
            RoleArg::Regional => Role::Regional,
            RoleArg::National => Role::National,
        },
        upstream: args.upstream.zip(args.upstream_token),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(serve(opts))
}

async fn serve(opts: SimOptions) -> Result<u8, CliError> {
    let handle = visync_index_sim::start(opts).await?;
    // The one line on stdout: tests and scripts read the port from it.
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", handle.addr())
        .and_then(|()| out.flush())
        .map_err(CliError::Stdout)?;
    drop(out);
    if let Err(e) = stopped().await {
        // Not fatal: the index stops as it would on a signal.
        tracing::error!("cannot wait for a signal: {e}");
    }
    tracing::info!("stopping");
    handle.shutdown().await.map_err(CliError::IndexSimStop)?;
    Ok(exit::OK)
}

/// Resolves on SIGTERM or SIGINT.
async fn stopped() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisations_are_code_equals_token() {
        assert_eq!(parse_org("A1=tok"), Ok(("A1".into(), "tok".into())));
        // A token may itself contain '='.
        assert_eq!(parse_org("A1=to=k"), Ok(("A1".into(), "to=k".into())));
        assert!(parse_org("A1").is_err());
        assert!(parse_org("=tok").is_err());
        assert!(parse_org("A1=").is_err());
    }
}
