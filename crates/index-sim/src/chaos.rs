//! Chaos mode (`--chaos RATE --seed N`): a seeded fraction of `/v1` calls
//! (not `/v1/health`, not `/sim`) get a fault. Half the kinds strike before
//! the call is processed (500, 429, a slow answer), the other half after its
//! change was committed (500, a dropped connection): those are the ones a
//! client's exactly-once guarantee must survive, since the change happened
//! but the client never learns it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::net::ConnTag;
use crate::request::route_of;

/// How long a slow answer takes: longer than a hurried client waits, short
/// enough for tests.
pub const SLOW: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 500 before processing: nothing happened.
    FailBefore,
    /// 429 with `Retry-After: 1` before processing.
    RateLimited,
    /// Processed normally after a delay of `SLOW`.
    Slow,
    /// Processed and committed, then answered 500.
    FailAfter,
    /// Processed and committed, then the connection is cut unanswered.
    DropAfter,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::FailBefore => "fail_before",
            Fault::RateLimited => "rate_limited",
            Fault::Slow => "slow",
            Fault::FailAfter => "fail_after",
            Fault::DropAfter => "drop_after",
        }
    }
}

/// The seeded draw: the same seed gives the same faults for the same
/// sequence of calls.
#[derive(Debug)]
pub struct Chaos {
    rate: f64,
    rng: Mutex<fastrand::Rng>,
}

impl Chaos {
    /// `rate` is a fraction of calls, clamped to 0..=1.
    pub fn new(rate: f64, seed: u64) -> Chaos {
        Chaos {
            rate: rate.clamp(0.0, 1.0),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
        }
    }

    /// Whether the next call gets a fault, and which one (the five kinds are
    /// equally likely).
    pub fn draw(&self) -> Option<Fault> {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        // Always draw both numbers, so that a fault's kind does not depend on
        // how many calls went without one.
        let hit = rng.f64() < self.rate;
        let kind = rng.u8(0..5);
        hit.then_some(match kind {
            0 => Fault::FailBefore,
            1 => Fault::RateLimited,
            2 => Fault::Slow,
            3 => Fault::FailAfter,
            _ => Fault::DropAfter,
        })
    }
}

/// Middleware for the chaotic routes, put on them only with `--chaos`. Its
/// state is the draw alone, not the index's `AppState`: the fault decides
/// nothing about the call, and this module needs nothing else of the index.
pub async fn layer(State(chaos): State<Arc<Chaos>>, req: Request, next: Next) -> Response {
    let Some(fault) = chaos.draw() else {
        return next.run(req).await;
    };
    tracing::info!(
        fault = fault.as_str(),
        route = route_of(req.uri().path()),
        "chaos"
    );
    let chaotic = || ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "chaos", "injected fault");
    match fault {
        Fault::FailBefore => chaotic().into_response(),
        Fault::RateLimited => {
            let mut r = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down")
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Fault::Slow => {
            tokio::time::sleep(SLOW).await;
            next.run(req).await
        }
        Fault::FailAfter => {
            let _committed = next.run(req).await;
            chaotic().into_response()
        }
        Fault::DropAfter => {
            let tag = req.extensions().get::<ConnectInfo<ConnTag>>().cloned();
            let _committed = next.run(req).await;
            if let Some(ConnectInfo(tag)) = tag {
                tag.kill();
            }
            // Never written when the connection was cut.
            chaotic().into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(c: &Chaos, n: usize) -> Vec<Option<Fault>> {
        (0..n).map(|_| c.draw()).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        assert_eq!(
            draws(&Chaos::new(0.3, 7), 200),
            draws(&Chaos::new(0.3, 7), 200)
        );
        assert_ne!(
            draws(&Chaos::new(0.3, 7), 200),
            draws(&Chaos::new(0.3, 8), 200)
        );
    }

    #[test]
    fn the_rate_is_the_fraction_of_faults() {
        assert!(draws(&Chaos::new(0.0, 1), 1000).iter().all(Option::is_none));
        assert!(draws(&Chaos::new(1.0, 1), 1000).iter().all(Option::is_some));
        let hits = draws(&Chaos::new(0.25, 1), 10_000)
            .iter()
            .filter(|f| f.is_some())
            .count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
    }

    #[test]
    fn every_kind_occurs() {
        let all = draws(&Chaos::new(1.0, 3), 200);
        for k in [
            Fault::FailBefore,
            Fault::RateLimited,
            Fault::Slow,
            Fault::FailAfter,
            Fault::DropAfter,
        ] {
            assert!(all.contains(&Some(k)), "{k:?}");
        }
    }
}
