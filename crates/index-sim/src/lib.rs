//! The reference index (`visync index-sim`): a real server that implements
//! every rule of VI-API v1 (docs/index-sim.md), so that an organisation can
//! test its mappings and the whole flow before going live, and every test
//! runs against a real index on loopback. The connector's binary links this
//! crate for `visync index-sim`, and its daemon embeds it in-process through
//! `start` (`[index] url = "embedded"`).
//!
//! A test and acceptance tool, not part of the product, and independent of
//! the connector on purpose: it depends on no code of `visync`. Its BSN
//! check (`bsn.rs`), rules and date arithmetic (`rules.rs`), words
//! (`vocab.rs`) and clock (`clock.rs`) are its own, written from
//! index-api.md, so that a bug in the connector's domain rules meets a
//! refusal here instead of being repeated by the index it is tested against.
//!
//! Owns: its own SQLite store (`store/`, migrations in `migrations/`), the
//! checks on incoming signals and the date windows (`incoming.rs`,
//! `window.rs`, pure), the VI-API handlers (`v1.rs`), the test extras
//! (`sim.rs`), matching and the lifecycle by its own clock
//! (`store/lifecycle.rs`), chaos mode (`chaos.rs`, `net.rs`), the family file
//! (`families.rs`, pure) and the router (`http.rs`). What the handlers share
//! sits below them, in modules that import none of them: the state
//! (`state.rs`), the error answers (`error.rs`) and the request readers
//! (`request.rs`).
//!
//! The national tier: an index is regional (organisations register with it)
//! or national (`--role national`: regional indexes forward to it, and it
//! matches across regions only). The tier link's vocabulary is `tier.rs`
//! (pure), the national side `national.rs` and `store/national.rs`, the
//! regional side the forward queue (`store/forward.rs`) and the link task
//! (`upstream.rs`, sharing its status through `link.rs`).
//!
//! Must not: depend on the connector's crate (`visync` depends on this one,
//! never the other way round), share state with the connector's store, run
//! timers for the lifecycle (it is applied on each request, on a clock
//! change and on each round of the link task, and depends only on the date,
//! so when it runs never changes what it does), or log a BSN, a name or a
//! token.

#![forbid(unsafe_code)]

mod bsn;
mod chaos;
mod clock;
mod error;
mod families;
mod http;
mod incoming;
mod link;
mod national;
mod net;
mod request;
mod rules;
mod sim;
mod state;
mod store;
mod tier;
mod upstream;
mod v1;
mod vocab;
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
use url::Url;

use crate::clock::Clock;

pub use request::MAX_BATCH;
pub use rules::Rules;
pub use store::StoreError;
pub use tier::Role;

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
    /// The index's periods (its own `Rules`, not the connector's: a caller
    /// converts).
    pub rules: Rules,
    /// Regional (organisations register here) or national (regions forward
    /// here; `orgs` are then the regions).
    pub role: Role,
    /// A regional index's national index, and the bearer token this region
    /// presents there (its `--org` at the national index). Regional only.
    pub upstream: Option<(Url, String)>,
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
    #[error("--upstream: {0}")]
    Upstream(String),
}

/// A running index. Dropping it stops the server too (without waiting).
pub struct SimHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
    /// The link to the national index (`--upstream`), aborted on shutdown:
    /// each of its steps is idempotent, so it may stop anywhere.
    link: Option<JoinHandle<()>>,
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
        if let Some(link) = self.link.take() {
            link.abort();
            // Cancelled, or a panic already reported: either way it is done.
            let _ = link.await;
        }
        self.store.close().await;
        served.map_err(SimError::Serve)
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(link) = self.link.take() {
            link.abort();
        }
    }
}

/// Binds, opens the store and serves on the current tokio runtime.
pub async fn start(opts: SimOptions) -> Result<SimHandle, SimError> {
    let tokens = check_orgs(&opts.orgs)?;
    check_upstream(opts.role, opts.upstream.as_ref())?;
    let chaos = match opts.chaos {
        Some((rate, _)) if !(0.0..=1.0).contains(&rate) => return Err(SimError::ChaosRate),
        Some((rate, seed)) => Some(Arc::new(chaos::Chaos::new(rate, seed))),
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
    let upstream = opts.upstream.as_ref().map(|(url, _)| url.as_str());
    store.configure_link(upstream).await?;
    let link = opts
        .upstream
        .as_ref()
        .map(|(url, _)| Arc::new(link::LinkStatus::new(url.clone())));
    let state = Arc::new(state::AppState {
        store: store.clone(),
        tokens,
        clock: Mutex::new(opts.clock.map_or(Clock::system(), Clock::on)),
        rules: opts.rules,
        role: opts.role,
        link: link.clone(),
    });
    store.sweep(&state.ctx()).await?;

    let bind = |source| SimError::Bind {
        addr: opts.listen,
        source,
    };
    let listener = net::KillableListener(TcpListener::bind(opts.listen).await.map_err(bind)?);
    let addr = listener.addr().map_err(bind)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let link_task = match (link, &opts.upstream) {
        (Some(status), Some((_, token))) => Some(
            upstream::spawn(state.clone(), status, token.clone()).map_err(SimError::Upstream)?,
        ),
        _ => None,
    };
    let app = http::router(state, chaos).into_make_service_with_connect_info::<net::ConnTag>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(
        %addr,
        role = opts.role.as_str(),
        organisations = opts.orgs.len(),
        upstream = opts.upstream.as_ref().map(|(u, _)| u.as_str()),
        "index-sim started"
    );
    Ok(SimHandle {
        addr,
        stop: Some(stop),
        task: Some(task),
        link: link_task,
        store,
    })
}

/// A national index forwards to no one; a regional one forwards over plain
/// HTTP only to loopback (the token would travel in the clear), and carries
/// its credentials in the token, not in the URL (which is logged).
fn check_upstream(role: Role, upstream: Option<&(Url, String)>) -> Result<(), SimError> {
    let Some((url, token)) = upstream else {
        return Ok(());
    };
    let fail = |m: &str| Err(SimError::Upstream(m.to_owned()));
    if role == Role::National {
        return fail("a national index forwards to no one; give --upstream to regional indexes");
    }
    if token.trim().is_empty() {
        return fail("give the region's token at the national index with --upstream-token");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return fail("no credentials in the URL; use --upstream-token");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return fail("the national index's base URL, without a query or fragment");
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => fail("plain http is allowed only to loopback addresses; use https"),
        _ => fail("an http or https URL"),
    }
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
    fn upstreams_are_checked() {
        let up = |u: &str, t: &str| Some((Url::parse(u).unwrap(), t.to_owned()));
        let ok = |r: Role, u: Option<(Url, String)>| check_upstream(r, u.as_ref()).is_ok();
        assert!(ok(Role::Regional, None));
        assert!(ok(Role::National, None));
        assert!(ok(Role::Regional, up("http://127.0.0.1:8800", "t")));
        assert!(ok(Role::Regional, up("http://localhost:8800/base/", "t")));
        assert!(ok(Role::Regional, up("https://lvi.example.org", "t")));
        assert!(!ok(Role::National, up("http://127.0.0.1:8800", "t")));
        assert!(!ok(Role::Regional, up("http://lvi.example.org", "t")));
        assert!(!ok(Role::Regional, up("http://127.0.0.1:8800", " ")));
        assert!(!ok(Role::Regional, up("http://u:p@127.0.0.1:8800", "t")));
        assert!(!ok(Role::Regional, up("ftp://127.0.0.1", "t")));
    }

    #[test]
    fn token_errors_never_show_the_token() {
        let e = check_orgs(&o(&[("A", "secret-1"), ("B", "secret-1")])).unwrap_err();
        assert!(!e.to_string().contains("secret-1"));
    }
}
