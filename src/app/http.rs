//! The `[http]` endpoint of daemon.md: `GET /metrics` (Prometheus text) and
//! `GET /healthz` (200 or 503 with a small JSON body), served with axum on a
//! listener the caller bound, so that a bind error is reported by the caller
//! under the config key `[http] listen`.
//!
//! Must not: serve anything else, or answer with personal data (the metrics
//! and the health report carry none).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::health::Health;
use crate::app::metrics::Metrics;
use crate::clock::Clock;

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the handlers need.
#[derive(Clone)]
struct App {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    clock: Clock,
    /// `unhealthy_after_secs`, which a reload may change: the daemon keeps
    /// the `watch::Sender` and sends the new value; each `/healthz` reads
    /// the current one.
    unhealthy_after: watch::Receiver<Duration>,
}

/// Serves `/metrics` and `/healthz` on `listener` until `shutdown`
/// completes; then stops taking connections and lets the open ones finish.
///
/// `unhealthy_after` is a `watch` channel rather than a plain `Duration` so
/// that a reload can change it without restarting the server (keep the
/// sender; `send_replace` the new value).
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    clock: Clock,
    unhealthy_after: watch::Receiver<Duration>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = App {
        metrics,
        health,
        clock,
        unhealthy_after,
    };
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
}

fn router(app: App) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(app)
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        app.metrics.render(),
    )
}

async fn healthz(State(app): State<App>) -> impl IntoResponse {
    // Copied out at once: the borrow holds a lock.
    let after = *app.unhealthy_after.borrow();
    let report = app.health.report(app.clock.now(), after);
    let status = if report.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        // A probe must see the state now, never a cached answer.
        [(header::CACHE_CONTROL, "no-store")],
        Json(report),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::events::{Event, JobKind, Sink};
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    /// One request on its own connection: (status, headers, body).
    async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    /// Every line is a comment, or `name value` / `name{labels} value`
    /// with a valid name, well-formed labels and a number.
    #[track_caller]
    fn assert_prometheus_text(text: &str) {
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a value");
            assert!(value.parse::<f64>().is_ok(), "not a number in {line:?}");
            let name = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').expect("labels closed");
                    assert_labels(labels, line);
                    name
                }
                None => series,
            };
            assert!(is_name(name), "not a metric name in {line:?}");
        }
    }

    fn is_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    /// `k="v",k="v"`, values with `\"` and `\\` escapes.
    #[track_caller]
    fn assert_labels(mut rest: &str, line: &str) {
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").expect("key=\"value\"");
            assert!(is_name(key), "not a label name in {line:?}");
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().expect("label value closed") {
                    (_, '\\') => {
                        chars.next();
                    }
                    (i, '"') => break i,
                    _ => {}
                }
            };
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }

    #[tokio::test]
    async fn serves_metrics_and_health_until_shut_down() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::install(Clock::System));
        let health = Arc::new(Health::new(Clock::System));
        let (_after_tx, after_rx) = watch::channel(Duration::from_secs(3600));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            metrics.clone(),
            health.clone(),
            Clock::System,
            after_rx,
            async move {
                let _ = stop_rx.await;
            },
        ));

        metrics.emit(&Event::JobFinished {
            job: JobKind::Intake("http \"test\"".into()),
            ok: true,
            had_work: true,
            seconds: 0.3,
        });
        let (status, head, body) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(body.contains("visync_build_info{version="), "{body}");
        assert!(
            body.contains("visync_job_duration_seconds_bucket{"),
            "{body}"
        );
        assert_prometheus_text(&body);

        let (status, head, body) = get(addr, "/healthz").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: application/json"), "{head}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "ok");

        health.emit(&Event::IndexAuth { refused: true });
        let (status, _, body) = get(addr, "/healthz").await;
        assert_eq!(status, 503);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "unhealthy");
        assert_eq!(
            json["reasons"][0],
            "the index refused our credentials or certificate"
        );

        let (status, _, _) = get(addr, "/other").await;
        assert_eq!(status, 404);

        stop_tx.send(()).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(10), server).await;
        ended.expect("stopped in time").unwrap().unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn a_new_unhealthy_after_takes_effect_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let health = Arc::new(Health::new(Clock::System));
        health.emit(&Event::JobFinished {
            job: JobKind::Send,
            ok: false,
            had_work: true,
            seconds: 1.0,
        });
        let (after_tx, after_rx) = watch::channel(Duration::from_secs(3600));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            Arc::new(Metrics::detached(Clock::System)),
            health,
            Clock::System,
            after_rx,
            async move {
                let _ = stop_rx.await;
            },
        ));
        assert_eq!(get(addr, "/healthz").await.0, 200);
        after_tx.send_replace(Duration::ZERO);
        let (status, _, body) = get(addr, "/healthz").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("send has not succeeded"), "{body}");
        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
