//! The store's shared vocabulary: what every state change is given (`Ctx`),
//! what it can fail with (`StoreError`), what a batch item comes to
//! (`ItemResult`), and reading a stored date back (`day`).
//!
//! A leaf on purpose: it imports no other store module. `ItemResult` used to
//! live in `write.rs`, which calls the set-based path in `bulk.rs`, while
//! `bulk.rs` imported `ItemResult` back from `write.rs`: a circle. Here both
//! take it from below, and `write.rs` → `bulk.rs` is the only direction
//! left between them.

use chrono::{DateTime, NaiveDate, Utc};

use crate::incoming::ItemError;
use crate::rules::Rules;
use crate::tier::Role;

/// What every state change needs to know: the sim's date, the instant stamped
/// on notices, the index's settings and its tier (which decides who may be
/// matched with whom).
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
    pub rules: Rules,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the index store failed: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the index store could not be migrated (is it another program's database?): {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the index store holds a date it cannot read; start with a fresh --db")]
    Corrupt,
    #[error("no such signal for this organisation")]
    NotFound,
    #[error("the signal is not active (withdrawn or expired); register a new one")]
    NotActive,
    #[error("{0}")]
    EndDate(String),
}

/// The outcome of one batch item, in the protocol's terms. Made by the
/// sequential path (`write.rs`) and the set-based one (`bulk.rs`) alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemResult {
    Created(String),
    Unchanged(String),
    Updated(String),
    Rejected {
        signal_id: Option<String>,
        error: ItemError,
    },
    Conflict {
        signal_id: String,
        existing: String,
    },
}

/// A stored date back into a date.
pub(super) fn day(s: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| StoreError::Corrupt)
}
