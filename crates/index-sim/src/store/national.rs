//! The national index's side of the tier link: the states a region forwards
//! (`tier::TierItem`), applied like a batch, in one transaction per call.
//!
//! The region is the authority on its own signals, so an item is what the
//! national index must hold from now on, not a request it may refuse on its
//! own windows:
//!
//! - `active`: created, corrected, or brought back from the archive (a
//!   renewal the national index learns of only after its own clock expired
//!   the signal);
//! - `archived`: out of matching;
//! - `purged`: only the id is kept, and nothing brings it back.
//!
//! A state older than the one applied last (`seq`) is ignored, so a late
//! retry never undoes newer news. Matching then runs as on any index, across
//! regions only (`lifecycle.rs`), by the national index's own clock.

use sqlx::SqliteConnection;

use super::lifecycle::{archive, leave, purge, sweep};
use super::types::{Ctx, StoreError};
use super::write::{correct, insert, load, Stored};
use super::{is_tombstone, Store};
use crate::incoming::{err, Incoming, ItemError, Rejected};
use crate::tier::{TierItem, TierState};

/// The outcome of one tier item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierResult {
    Created,
    Updated,
    Unchanged,
    Archived,
    Purged,
    /// A newer state of this signal was applied already; this one is ignored.
    Stale,
    Rejected(ItemError),
}

impl TierResult {
    pub fn status(&self) -> &'static str {
        match self {
            TierResult::Created => "created",
            TierResult::Updated => "updated",
            TierResult::Unchanged => "unchanged",
            TierResult::Archived => "archived",
            TierResult::Purged => "purged",
            TierResult::Stale => "stale",
            TierResult::Rejected(_) => "rejected",
        }
    }
}

impl Store {
    /// Applies a region's tier items in order; counts the call for
    /// `register_calls` (these are the national index's registrations).
    pub async fn sync(
        &self,
        ctx: &Ctx,
        region: &str,
        items: Vec<Result<TierItem, Rejected>>,
    ) -> Result<Vec<TierResult>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sweep(&mut tx, ctx).await?;
        sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'register_calls'")
            .execute(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(match item {
                Err(r) => TierResult::Rejected(r.error),
                Ok(i) => apply(&mut tx, ctx, region, &i).await?,
            });
        }
        sweep(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(out)
    }
}

async fn apply(
    c: &mut SqliteConnection,
    ctx: &Ctx,
    region: &str,
    item: &TierItem,
) -> Result<TierResult, StoreError> {
    let id = item.tier_id();
    if is_tombstone(c, region, &id).await? {
        return Ok(match item.state {
            TierState::Active(_) => TierResult::Rejected(err(
                "withdrawn",
                "the signal was purged at the national index; register a new one",
            )),
            TierState::Archived | TierState::Purged => TierResult::Unchanged,
        });
    }
    let stored = load(c, region, &id).await?;
    if stored
        .as_ref()
        .and_then(|s| s.tier_seq)
        .is_some_and(|applied| applied > item.seq)
    {
        return Ok(TierResult::Stale);
    }
    let result = match (&item.state, stored) {
        (TierState::Purged, Some(s)) => {
            purge(c, s.id, ctx).await?;
            return Ok(TierResult::Purged);
        }
        (TierState::Purged, None) => {
            // Never held here, or not yet: the id is kept all the same, so
            // that a late `active` for it cannot bring it to life.
            sqlx::query("INSERT INTO tombstones (org, signal_id, purged_on) VALUES (?, ?, ?)")
                .bind(region)
                .bind(&id)
                .bind(ctx.today.to_string())
                .execute(&mut *c)
                .await?;
            return Ok(TierResult::Purged);
        }
        // Nothing to end: the national index never held it.
        (TierState::Archived, None) => return Ok(TierResult::Unchanged),
        (TierState::Archived, Some(s)) if s.state != "active" => TierResult::Unchanged,
        (TierState::Archived, Some(s)) => {
            leave(c, s.id, ctx).await?;
            archive(c, s.id, ctx.today, ctx).await?;
            TierResult::Archived
        }
        (TierState::Active(i), stored) => {
            let i = Incoming {
                signal_id: id.clone(),
                ..(**i).clone()
            };
            apply_active(c, ctx, region, &item.organisation, &i, stored).await?
        }
    };
    sqlx::query("UPDATE signals SET tier_seq = ? WHERE org = ? AND signal_id = ?")
        .bind(item.seq)
        .bind(region)
        .bind(&id)
        .execute(&mut *c)
        .await?;
    Ok(result)
}

/// A region's active signal: created, unchanged, or corrected (and back
/// from the archive if it was there).
async fn apply_active(
    c: &mut SqliteConnection,
    ctx: &Ctx,
    region: &str,
    organisation: &str,
    i: &Incoming,
    stored: Option<Stored>,
) -> Result<TierResult, StoreError> {
    // Set by `tier::parse_item`; the start is the floor regardless.
    let end = i.end_date.unwrap_or(i.start_date);
    displace(c, ctx, region, organisation, i).await?;
    Ok(match stored {
        None => {
            insert(c, ctx, region, organisation, i, end).await?;
            TierResult::Created
        }
        Some(s) if s.state == "active" && s.same_content(i, end) => TierResult::Unchanged,
        Some(s) => {
            correct(c, ctx, &s, i, end).await?;
            if s.state != "active" {
                // Back from the archive; the sweep joins it again.
                sqlx::query(
                    "UPDATE signals SET state = 'active', archived_on = NULL, \
                     purge_on = NULL WHERE id = ?",
                )
                .bind(s.id)
                .execute(&mut *c)
                .await?;
            }
            TierResult::Updated
        }
    })
}

/// Archives any other active signal of the same organisation, professional
/// and subject. A region holds at most one, so another one here is a signal
/// the region has already ended but whose news is still on its way (or was
/// lost with an old database): the region's newest word wins, and the
/// database's one-active rule holds.
async fn displace(
    c: &mut SqliteConnection,
    ctx: &Ctx,
    region: &str,
    origin: &str,
    i: &Incoming,
) -> Result<(), StoreError> {
    let others: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM signals WHERE state = 'active' AND org = ? AND origin = ? \
         AND professional_id = ? AND bsn = ? AND signal_id <> ? ORDER BY id",
    )
    .bind(region)
    .bind(origin)
    .bind(&i.professional_id)
    .bind(i.bsn.as_str())
    .bind(&i.signal_id)
    .fetch_all(&mut *c)
    .await?;
    for (other,) in others {
        tracing::warn!(
            region,
            "an older signal of the same involvement was still active here; archived"
        );
        leave(c, other, ctx).await?;
        archive(c, other, ctx.today, ctx).await?;
    }
    Ok(())
}
