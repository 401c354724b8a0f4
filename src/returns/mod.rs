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
        // One client per channel and run: the index's transport, with the
        // channel's CA and client certificate.
        let client = match channel {
            ReturnConfig::Http { ca, identity, .. } => {
                let identity = identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
                match crate::index::transport(identity, ca.as_deref()) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        let n = store.count_pending_notices(&source).await?;
                        tracing::error!(source, notices = n, "cannot make the HTTP client of [returns.{source}]: {e}; the notices wait");
                        summary.failed += n;
                        continue;
                    }
                }
            }
            ReturnConfig::Folder { .. } => None,
        };
        loop {
            let notices = store.pending_notices(&source, BATCH).await?;
            if notices.is_empty() {
                break;
            }
            let ids: Vec<String> = notices.iter().map(|n| n.notice_id.clone()).collect();
            let result = match channel {
                ReturnConfig::Folder {
                    path,
                    format,
                    delimiter,
                } => folder::write(path, *format, *delimiter, &notices, clock)
                    .await
                    .map_err(|message| http::Failure {
                        refused: false,
                        message,
                    }),
                ReturnConfig::Http { url, .. } => match &client {
                    Some(c) => http::post(c, url, &notices).await,
                    None => Err(http::Failure {
                        refused: false,
                        message: "no HTTP client".into(),
                    }),
                },
            };
            match result {
                Ok(delivery) => {
                    crate::fault::point("after-return-write");
                    store.delivered(&ids, &delivery, clock.now()).await?;
                    tracing::info!(source, notices = ids.len(), delivery, "notices delivered");
                    summary.delivered += ids.len() as u64;
                    tell_kinds(events, &source, &notices);
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
                    break;
                }
            }
        }
    }
    Ok(summary)
}
