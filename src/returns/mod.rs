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
                } => folder::write(path, *format, *delimiter, &notices, clock).await,
                ReturnConfig::Http { url } => http::post(url, &notices).await,
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
                    tracing::error!(
                        source,
                        notices = ids.len(),
                        "cannot deliver notices: {e}; they stay pending"
                    );
                    store.delivery_failed(&ids, &e, clock.now()).await?;
                    summary.failed += ids.len() as u64;
                    break;
                }
            }
        }
    }
    Ok(summary)
}
