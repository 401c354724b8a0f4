//! Step 1: compare with the index. Its signals are listed page by page
//! (`GET /v1/signals`, every state) into the store's comparison table, then
//! joined with the store: `missing` (active here, not active there) is
//! marked, `unknown` (active there, never known here) is reported and left
//! alone, and a different end date at the index is taken.
//!
//! Nothing is decided before the last page: a listing that breaks off would
//! make every signal on the pages not read look missing. A listing that
//! cannot be finished (after retrying what is transient) changes nothing,
//! and the report says so.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use crate::index::{CallError, IndexApi};
use crate::store::{Comparison, Store, StoreError, Unknown};

/// Signals per page: within what the protocol's index allows (1 to 1,000).
const PAGE_SIZE: u32 = 500;

/// How often one page is tried when the index answers with a transient
/// error (5xx, 429, a dropped connection) before the comparison gives up.
const PAGE_ATTEMPTS: i64 = 6;

/// The longest wait between two tries of a page.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// What the comparison found (or, in a dry run, would change).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Compared {
    /// Signals the index listed.
    pub listed: u64,
    pub missing: u64,
    pub end_date_taken: u64,
    pub unknown: Vec<Unknown>,
    /// Why the listing could not be finished: nothing was compared.
    pub failed: Option<String>,
}

pub async fn compare(
    store: &Store,
    api: &impl IndexApi,
    today: NaiveDate,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Compared, StoreError> {
    let mut cmp = store.comparison(now, today).await?;
    let mut out = Compared::default();
    if let Err(e) = list(&mut cmp, api, &mut out).await? {
        tracing::warn!("cannot list this organisation's signals at the index now: {e}; nothing was compared, the next run compares again");
        out.failed = Some(e.to_string());
        cmp.finish().await?;
        return Ok(out);
    }
    out.unknown = cmp.unknown().await?;
    if dry_run {
        out.missing = cmp.count_missing().await?;
        out.end_date_taken = cmp.count_end_dates().await?;
    } else {
        out.missing = cmp.mark_missing(now).await?;
        out.end_date_taken = cmp.take_end_dates(now).await?;
    }
    cmp.finish().await?;
    for u in &out.unknown {
        tracing::warn!(
            signal = u.signal_id,
            professional = u.professional_id,
            "the index holds a signal of this organisation that this installation does not know (another installation, or a restored backup?): reported, left alone"
        );
    }
    if out.missing > 0 {
        tracing::warn!(
            missing = out.missing,
            "signals active here are not active at the index: marked missing, registered again by the next file that lists them"
        );
    }
    Ok(out)
}

/// Every page into the comparison; the inner `Err` is a listing that could
/// not be finished.
async fn list(
    cmp: &mut Comparison,
    api: &impl IndexApi,
    out: &mut Compared,
) -> Result<Result<(), CallError>, StoreError> {
    let mut token: Option<String> = None;
    loop {
        let page = match page(api, token.as_deref()).await {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        cmp.add(&page.signals).await?;
        out.listed += page.signals.len() as u64;
        match page.next_page_token.filter(|t| !t.is_empty()) {
            // A token that does not move on would loop for ever.
            Some(next) if Some(&next) != token.as_ref() && !page.signals.is_empty() => {
                token = Some(next)
            }
            _ => return Ok(Ok(())),
        }
    }
}

/// One page, tried again after a transient error (with backoff, honouring
/// `Retry-After`); anything else ends the listing at once.
async fn page(
    api: &impl IndexApi,
    token: Option<&str>,
) -> Result<crate::index::SignalPage, CallError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match api.signals(token, PAGE_SIZE).await {
            Err(CallError::Transient {
                retry_after,
                message,
            }) if attempt < PAGE_ATTEMPTS => {
                let backoff = crate::store::backoff(attempt).to_std().unwrap_or_default();
                let wait = retry_after.unwrap_or_default().max(backoff).min(MAX_WAIT);
                tracing::debug!("listing signals: {message}; trying again in {wait:?}");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}
