//! The return channel: notices go back to the case-management system their
//! signal came from, next to the right case. `folder` writes one file per
//! delivery (temporary name, then renamed); `http` POSTs one JSON batch. A
//! notice is marked delivered only after the rename or the acknowledgement;
//! a failure leaves it pending, with the reason, for the next pass.

mod folder;
mod format;
mod http;

use crate::clock::Clock;
use crate::config::{Config, ReturnConfig};
use crate::store::{Store, StoreError};

use crate::app::events::{Event, Events};
pub use format::{csv_escape, render, COLUMNS};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySummary {
    pub delivered: u64,
    /// Notices whose channel failed: retried on a later pass.
    pub failed: u64,
    /// Notices of sources without a `[returns.NAME]`: kept.
    pub no_channel: u64,
}

/// `notices_total{source,kind}`: one event per kind delivered.
fn tell_kinds(events: &Events, source: &str, notices: &[crate::store::Notice]) {
    let mut kinds: std::collections::BTreeMap<&str, u64> = Default::default();
    for n in notices {
        *kinds.entry(n.kind.as_str()).or_default() += 1;
    }
    for (kind, count) in kinds {
        events.emit(Event::NoticesDelivered {
            source: source.to_string(),
            kind: kind.to_string(),
            count,
        });
    }
}

/// Notices per delivery: a file or a POST stays a reasonable size.
const BATCH: i64 = 1000;

/// Delivers every due notice through its source's return channel.
pub async fn deliver(
    store: &Store,
    cfg: &Config,
    clock: &Clock,
    events: &Events,
) -> Result<DeliverySummary, StoreError> {
    let mut summary = DeliverySummary::default();
    for source in store.notice_sources(clock.now()).await? {
        let Some(channel) = cfg.returns.get(&source) else {
            let n = store.count_pending_notices(&source).await?;
            tracing::warn!(
                source,
                notices = n,
                "notices are waiting, but the config has no [returns.{source}]: they are kept"
            );
            summary.no_channel += n;
            continue;
        };
        let client = match client(channel) {
            Ok(c) => c,
            Err(e) => {
                let n = store.count_pending_notices(&source).await?;
                tracing::error!(
                    source,
                    notices = n,
                    "cannot make the HTTP client of [returns.{source}]: {e}; the notices wait"
                );
                summary.failed += n;
                continue;
            }
        };
        let channel = Channel {
            source: &source,
            config: channel,
            client,
        };
        deliver_source(store, &channel, clock, events, &mut summary).await?;
    }
    Ok(summary)
}

/// One source's return channel, ready for a run.
struct Channel<'a> {
    source: &'a str,
    config: &'a ReturnConfig,
    /// For `Http`: made once per channel and run.
    client: Option<reqwest::Client>,
}

/// The HTTP client of an `Http` channel: the index's transport, with the
/// channel's CA and client certificate.
fn client(channel: &ReturnConfig) -> Result<Option<reqwest::Client>, crate::index::ClientError> {
    match channel {
        ReturnConfig::Http { ca, identity, .. } => {
            let identity = identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
            crate::index::transport(identity, ca.as_deref()).map(Some)
        }
        ReturnConfig::Folder { .. } => Ok(None),
    }
}

/// A source's due notices, batch by batch, until none is left or a batch
/// fails (the rest waits for the next pass).
async fn deliver_source(
    store: &Store,
    channel: &Channel<'_>,
    clock: &Clock,
    events: &Events,
    summary: &mut DeliverySummary,
) -> Result<(), StoreError> {
    let source = channel.source;
    loop {
        let notices = store.pending_notices(source, BATCH).await?;
        if notices.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = notices.iter().map(|n| n.notice_id.clone()).collect();
        match send(channel, &notices, clock).await {
            Ok(delivery) => {
                crate::fault::point("after-return-write");
                store.delivered(&ids, &delivery, clock.now()).await?;
                tracing::info!(source, notices = ids.len(), delivery, "notices delivered");
                summary.delivered += ids.len() as u64;
                tell_kinds(events, source, &notices);
            }
            Err(e) => {
                let quarantined = store
                    .delivery_failed(&ids, &e.message, e.refused, clock.now())
                    .await?;
                if quarantined > 0 {
                    tracing::error!(
                        source,
                        notices = quarantined,
                        "the CMS keeps refusing these notices ({}): quarantined; fix the endpoint, then `visync release --source {source}`",
                        e.message
                    );
                } else {
                    tracing::error!(
                        source,
                        notices = ids.len(),
                        "cannot deliver notices: {}; they stay pending",
                        e.message
                    );
                }
                summary.failed += ids.len() as u64;
                return Ok(());
            }
        }
    }
}

/// One batch through the channel: where it went, or why not.
async fn send(
    channel: &Channel<'_>,
    notices: &[crate::store::Notice],
    clock: &Clock,
) -> Result<String, http::Failure> {
    match channel.config {
        ReturnConfig::Folder {
            path,
            format,
            delimiter,
        } => folder::write(path, *format, *delimiter, notices, clock)
            .await
            .map_err(|e| http::Failure {
                refused: false,
                message: e.to_string(),
            }),
        ReturnConfig::Http { url, .. } => match &channel.client {
            Some(c) => http::post(c, url, notices).await,
            None => Err(http::Failure {
                refused: false,
                message: "no HTTP client".into(),
            }),
        },
    }
}
