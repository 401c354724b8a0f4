//! Pulling the notices feed: page by page from the stored cursor; each page
//! is stored and the cursor advanced in one transaction (at least once from
//! the index, never twice in the store).

use super::{CallError, IndexApi};
use crate::clock::Clock;
use crate::store::{notices::NOTICE_CURSOR, Store, StoreError};

const PAGE: u32 = 500;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PullSummary {
    pub received: u64,
    pub new: u64,
    /// The feed could not be read (the reason is logged); the next pass tries again.
    pub failed: bool,
}

pub async fn pull_notices(
    store: &Store,
    api: &impl IndexApi,
    clock: &Clock,
) -> Result<PullSummary, StoreError> {
    let mut summary = PullSummary::default();
    let mut cursor = store.cursor(NOTICE_CURSOR).await?;
    loop {
        let page = match api.notices(cursor.as_deref(), PAGE).await {
            Ok(p) => p,
            Err(e) => {
                if matches!(e, CallError::Auth { .. } | CallError::Tls(_)) {
                    tracing::error!("the index refused our credentials for the notices feed: {e}");
                } else {
                    tracing::warn!("cannot read the notices feed now: {e}");
                }
                summary.failed = true;
                return Ok(summary);
            }
        };
        let next = page
            .next_cursor
            .clone()
            .or_else(|| cursor.clone())
            .unwrap_or_default();
        summary.received += page.notices.len() as u64;
        summary.new += store
            .store_notices(&page.notices, &next, clock.now())
            .await?;
        crate::fault::point("notices-after-store");
        if page.notices.is_empty() || Some(&next) == cursor.as_ref() {
            return Ok(summary);
        }
        cursor = Some(next);
    }
}
