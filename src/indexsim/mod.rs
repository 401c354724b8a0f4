//! The reference regional index (`visync index-sim`): a real server that
//! implements every rule of VI-API v1 (docs/index-sim.md), so that an
//! organisation can test its mappings and the whole flow before going live,
//! and every test runs against a real index on loopback. The daemon can embed
//! it in-process through `start`.
//!
//! Owns: its own SQLite store (`store/`), the checks on incoming signals
//! and the date windows (`incoming.rs`, `window.rs`, pure), the VI-API
//! handlers (`v1.rs`), matching and the lifecycle by its own clock
//! (`store/lifecycle.rs`), chaos mode (`chaos.rs`, `net.rs`), the family file
//! (`families.rs`, pure) and the HTTP routes (`http.rs`).
//!
//! Must not: share state with the connector's store, run background timers
//! (the lifecycle is applied on each request and on a clock change), or log a
//! BSN, a name or a token.
//!
//! The regional role only; the national tier (`--role`, `--upstream`) is a
//! later issue.

mod chaos;
mod families;
mod http;
mod incoming;
mod net;
mod store;
mod v1;
mod window;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::domain::Rules;

pub use store::StoreError;
pub use v1::MAX_BATCH;

/// Everything the index is started with (the CLI's flags, typed).
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Where to listen; port 0 picks a free one (see `SimHandle::addr`).
    pub listen: SocketAddr,
    /// The index's own SQLite file; created when missing.
    pub db: PathBuf,
    /// (organisation code, bearer token) pairs; at least one.
    pub orgs: Vec<(String, String)>,
    /// A `bsn,family_id` file standing in for the population register.
    pub families: Option<PathBuf>,
    /// (rate, seed): the fraction of `/v1` calls that get a fault.
    pub chaos: Option<(f64, u64)>,
    /// A fixed date instead of today in Europe/Amsterdam.
    pub clock: Option<NaiveDate>,
    pub rules: Rules,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("give at least one --org CODE=TOKEN")]
    NoOrgs,
    #[error("--org: {0}")]
    Org(String),
    #[error("--chaos: the rate must be a fraction from 0 to 1")]
    ChaosRate,
    #[error("{0}")]
    Rules(&'static str),
    #[error("--families {}: {message}", path.display())]
    Families { path: PathBuf, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the index server failed: {0}")]
    Serve(io::Error),
}

/// A running index. Dropping it stops the server too (without waiting).
pub struct SimHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
    store: store::Store,
}

impl SimHandle {
    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets calls in flight finish and closes the store.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        };
        self.store.close().await;
        served.map_err(SimError::Serve)
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds, opens the store and serves on the current tokio runtime.
pub async fn start(opts: SimOptions) -> Result<SimHandle, SimError> {
    let tokens = check_orgs(&opts.orgs)?;
    let chaos = match opts.chaos {
        Some((rate, _)) if !(0.0..=1.0).contains(&rate) => return Err(SimError::ChaosRate),
        Some((rate, seed)) => Some(chaos::Chaos::new(rate, seed)),
        None => None,
    };
    if opts.rules.max_active_years == 0 || opts.rules.age_limit == 0 {
        return Err(SimError::Rules(
            "--max-active-years and --age-limit must be at least 1",
        ));
    }
    let ties = match &opts.families {
        Some(path) => {
            let fail = |message: String| SimError::Families {
                path: path.clone(),
                message,
            };
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| fail(e.to_string()))?;
            families::parse(&text).map_err(|e| fail(e.to_string()))?
        }
        None => Vec::new(),
    };
    let store = store::Store::open(&opts.db, &opts.rules).await?;
    store.replace_families(&ties).await?;
    let state = Arc::new(http::AppState {
        store: store.clone(),
        tokens,
        clock: Mutex::new(opts.clock.map_or(Clock::System, Clock::on)),
        rules: opts.rules,
        chaos,
    });
    store.sweep(&state.ctx()).await?;

    let bind = |source| SimError::Bind {
        addr: opts.listen,
        source,
    };
    let listener = net::KillableListener(TcpListener::bind(opts.listen).await.map_err(bind)?);
    let addr = listener.addr().map_err(bind)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = http::router(state).into_make_service_with_connect_info::<net::ConnTag>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, organisations = opts.orgs.len(), "index-sim started");
    Ok(SimHandle {
        addr,
        stop: Some(stop),
        task: Some(task),
        store,
    })
}

/// Token → code, refusing blanks and repeats (a shared token would make two
/// organisations one).
fn check_orgs(orgs: &[(String, String)]) -> Result<HashMap<String, String>, SimError> {
    if orgs.is_empty() {
        return Err(SimError::NoOrgs);
    }
    let mut tokens = HashMap::new();
    for (code, token) in orgs {
        if code.trim().is_empty() || token.trim().is_empty() {
            return Err(SimError::Org("CODE and TOKEN must not be empty".into()));
        }
        if tokens.values().any(|c| c == code) {
            return Err(SimError::Org(format!("organisation {code} given twice")));
        }
        if tokens.insert(token.clone(), code.clone()).is_some() {
            return Err(SimError::Org(format!(
                "organisation {code} reuses another's token"
            )));
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(c, t)| (c.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn organisations_need_distinct_codes_and_tokens() {
        assert!(matches!(check_orgs(&[]), Err(SimError::NoOrgs)));
        assert_eq!(
            check_orgs(&o(&[("A", "t1"), ("B", "t2")])).unwrap().len(),
            2
        );
        assert!(check_orgs(&o(&[("A", "t1"), ("A", "t2")])).is_err());
        assert!(check_orgs(&o(&[("A", "t1"), ("B", "t1")])).is_err());
        assert!(check_orgs(&o(&[("A", " ")])).is_err());
    }

    #[test]
    fn token_errors_never_show_the_token() {
        let e = check_orgs(&o(&[("A", "secret-1"), ("B", "secret-1")])).unwrap_err();
        assert!(!e.to_string().contains("secret-1"));
    }
}
