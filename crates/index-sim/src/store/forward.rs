//! A regional index's side of the tier link, in its own store: the forward
//! queue read as tier items, and the national index's notices fanned out to
//! the organisations they belong to.
//!
//! The queue is filled by triggers (migrations/0002_tier.sql) in the
//! transaction of every change, so it is exactly as durable as the change:
//! a crash, a restart or a national index that is down loses nothing. It is
//! drained by the link task (`upstream.rs`), which removes an entry only once
//! the national index has answered for that version of it.

use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::SqliteConnection;

use super::lifecycle::sweep;
use super::types::{Ctx, StoreError};
use super::{is_tombstone, Store};
use crate::incoming::valid_id;
use crate::tier::{active_item, ended_item, split_tier_id};

/// One queued change: the signal's state now, as a tier item.
#[derive(Debug, Clone)]
pub struct Queued {
    pub seq: i64,
    /// `None` when the signal left no trace at all (nothing to tell).
    pub item: Option<Value>,
}

/// A notice as the national index's `GET /v1/notices` gives it.
#[derive(Debug, Clone, Deserialize)]
pub struct UpNotice {
    pub notice_id: String,
    pub kind: String,
    /// The tier id (`ORGANISATION/SIGNAL_ID`) of this region's signal.
    pub signal_id: String,
    pub created_at: String,
    pub counterparts: Value,
}

/// A stored signal's forwarded fields.
#[derive(Debug, sqlx::FromRow)]
struct Content {
    bsn: String,
    family_name: String,
    name_prefix: Option<String>,
    initials: Option<String>,
    given_names: Option<String>,
    birth_date: String,
    gender: String,
    professional_id: String,
    professional_name: String,
    phone: Option<String>,
    email: Option<String>,
    start_date: String,
    end_date: String,
    state: String,
}

impl Store {
    /// Sets the link up at start. With an upstream, forwarding is switched
    /// on; if it was off (or pointed elsewhere) everything is queued, so that
    /// the national index learns what changed meanwhile, and a new national
    /// index's notices are read from its start. Without one, forwarding is
    /// off and the queue is dropped (a later start with an upstream rebuilds
    /// it whole).
    pub async fn configure_link(&self, upstream: Option<&str>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let (forwarding, previous): (bool, Option<String>) =
            sqlx::query_as("SELECT forwarding, upstream FROM tier_link WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        match upstream {
            None => {
                sqlx::query("UPDATE tier_link SET forwarding = 0 WHERE id = 1")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM forward_queue")
                    .execute(&mut *tx)
                    .await?;
            }
            Some(url) => {
                let moved = previous.as_deref() != Some(url);
                if !forwarding || moved {
                    queue_everything(&mut tx).await?;
                }
                if moved {
                    sqlx::query("UPDATE tier_link SET notice_cursor = '0' WHERE id = 1")
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("UPDATE tier_link SET forwarding = 1, upstream = ? WHERE id = 1")
                    .bind(url)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` queued changes, oldest first, each with its signal's
    /// state as of now (after bringing the lifecycle up to today, so that an
    /// expiry nobody has asked about yet is forwarded too).
    pub async fn queued(&self, ctx: &Ctx, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sweep(&mut tx, ctx).await?;
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT seq, org, signal_id FROM forward_queue ORDER BY seq LIMIT ?")
                .bind(limit as i64)
                .fetch_all(&mut *tx)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, org, sid) in rows {
            let item = item(&mut tx, seq, &org, &sid).await?;
            out.push(Queued { seq, item });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Removes the queue entries the national index answered for. An entry
    /// a newer change replaced meanwhile has another seq and stays.
    pub async fn dequeue(&self, seqs: &[i64]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for seq in seqs {
            sqlx::query("DELETE FROM forward_queue WHERE seq = ?")
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// (queued changes, the national index's notice cursor for this region).
    pub async fn link_status(&self) -> Result<(i64, String), StoreError> {
        let mut c = self.pool.acquire().await?;
        let (queued,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM forward_queue")
            .fetch_one(&mut *c)
            .await?;
        let (cursor,): (String,) =
            sqlx::query_as("SELECT notice_cursor FROM tier_link WHERE id = 1")
                .fetch_one(&mut *c)
                .await?;
        Ok((queued, cursor))
    }

    /// Stores the national index's notices in the feeds of the organisations
    /// whose signals they are about, and advances the cursor to `next` in
    /// the same transaction. Idempotent by `notice_id`, so a page read twice
    /// (a crash between reading and committing) is stored once. A notice for
    /// a signal that is no longer active here (withdrawn or expired since the
    /// national index made it) is dropped: the organisation has let go of the
    /// involvement. Returns how many notices were delivered.
    pub async fn fan_out(
        &self,
        ctx: &Ctx,
        notices: &[UpNotice],
        next: &str,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        sweep(&mut tx, ctx).await?;
        let mut delivered = 0;
        for n in notices {
            let well_formed = matches!(n.kind.as_str(), "match" | "family_match" | "match_ended")
                && valid_id(&n.notice_id)
                && n.counterparts.is_array();
            let target = split_tier_id(&n.signal_id).filter(|_| well_formed);
            let Some((org, sid)) = target else {
                // Nothing of it is logged: it is not known to be safe to.
                tracing::warn!("a notice from the national index that is not one; skipped");
                continue;
            };
            let active: Option<(i64,)> = sqlx::query_as(
                "SELECT 1 FROM signals WHERE org = ? AND signal_id = ? AND state = 'active'",
            )
            .bind(org)
            .bind(sid)
            .fetch_optional(&mut *tx)
            .await?;
            if active.is_none() {
                continue;
            }
            let done = sqlx::query(
                "INSERT OR IGNORE INTO notices (notice_id, org, signal_id, kind, created_at, \
                 counterparts) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&n.notice_id)
            .bind(org)
            .bind(sid)
            .bind(&n.kind)
            .bind(&n.created_at)
            .bind(n.counterparts.to_string())
            .execute(&mut *tx)
            .await?;
            delivered += done.rows_affected() as usize;
        }
        sqlx::query("UPDATE tier_link SET notice_cursor = ? WHERE id = 1")
            .bind(next)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(delivered)
    }
}

/// Queues every signal the region holds or held. Purged ones go first and
/// active ones last, so that the national index sees an ended involvement
/// end before a new signal of the same involvement arrives.
async fn queue_everything(c: &mut SqliteConnection) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT OR REPLACE INTO forward_queue (org, signal_id) \
         SELECT org, signal_id FROM tombstones ORDER BY purged_on, org, signal_id",
    )
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "INSERT OR REPLACE INTO forward_queue (org, signal_id) \
         SELECT org, signal_id FROM signals ORDER BY state = 'active', id",
    )
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The tier item for one queued signal, from what the store holds now.
async fn item(
    c: &mut SqliteConnection,
    seq: i64,
    org: &str,
    sid: &str,
) -> Result<Option<Value>, StoreError> {
    let row: Option<Content> = sqlx::query_as(
        "SELECT bsn, family_name, name_prefix, initials, given_names, birth_date, gender, \
         professional_id, professional_name, phone, email, start_date, end_date, state \
         FROM signals WHERE org = ? AND signal_id = ?",
    )
    .bind(org)
    .bind(sid)
    .fetch_optional(&mut *c)
    .await?;
    Ok(match row {
        Some(r) if r.state == "active" => {
            let signal = json!({
                "subject": {"bsn": r.bsn, "family_name": r.family_name,
                            "name_prefix": r.name_prefix, "initials": r.initials,
                            "given_names": r.given_names, "birth_date": r.birth_date,
                            "gender": r.gender},
                "professional": {"id": r.professional_id, "name": r.professional_name,
                                 "phone": r.phone, "email": r.email},
                "start_date": r.start_date,
                "end_date": r.end_date,
            });
            Some(active_item(org, sid, seq, signal))
        }
        Some(_) => Some(ended_item(org, sid, seq, "archived")),
        None if is_tombstone(c, org, sid).await? => Some(ended_item(org, sid, seq, "purged")),
        None => None,
    })
}
