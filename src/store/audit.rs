//! The audit trail: every action, as typed events with ids and never a BSN or
//! a name, chained by hash (each event's hash covers the previous one), so
//! that `visync audit verify` can show that nothing was changed or removed.
//!
//! Retention (`[rules] audit_years`) and decommission remove the oldest
//! events, a prefix of the chain: the hash of the last one removed is kept
//! as the trail's *horizon* (the `cursors` row `audit.horizon`), and the
//! first kept event's `prev_hash` must be it. The chain still shows any
//! change or removal after the horizon.

use crate::store::sql;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use super::event::Audit;
use super::{Store, StoreError};

#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: String,
    pub kind: String,
    pub signal_id: Option<String>,
    pub source: Option<String>,
    pub detail: serde_json::Value,
    pub hash: String,
}

fn chain(
    prev: &str,
    at: &str,
    kind: &str,
    signal_id: Option<&str>,
    source: Option<&str>,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        at,
        kind,
        signal_id.unwrap_or(""),
        source.unwrap_or(""),
        detail,
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The head of the chain, read once per transaction, and the events appended
/// since: they are written in multi-row inserts (a file or a batch makes
/// thousands), so a transaction must end with `flush`. The daemon is the only
/// writer.
pub struct Chain {
    prev: String,
    pending: Vec<Pending>,
}

struct Pending {
    at: String,
    kind: String,
    signal_id: Option<String>,
    source: Option<String>,
    detail: String,
    prev: String,
    hash: String,
}

/// Events per insert: 7 values each, far under SQLite's bound-variable limit.
const FLUSH_AT: usize = 256;

impl Chain {
    pub(super) async fn load(conn: &mut AnyConnection) -> Result<Chain, StoreError> {
        let prev: Option<String> =
            sql::query_scalar("SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut *conn)
                .await?;
        // A trail purged to nothing goes on from its horizon.
        let prev = match prev {
            Some(p) => p,
            None => horizon(conn).await?,
        };
        Ok(Chain {
            prev,
            pending: Vec::new(),
        })
    }

    /// Appends one event about `signal_id` of `source` (either may be
    /// none) inside the caller's transaction (written at the latest by
    /// `flush`).
    pub(super) async fn append(
        &mut self,
        conn: &mut AnyConnection,
        at: &str,
        signal_id: Option<&str>,
        source: Option<&str>,
        event: &Audit<'_>,
    ) -> Result<(), StoreError> {
        let (kind, detail) = (event.kind(), event.detail());
        let hash = chain(&self.prev, at, &kind, signal_id, source, &detail);
        let prev = std::mem::replace(&mut self.prev, hash.clone());
        self.pending.push(Pending {
            at: at.to_owned(),
            kind,
            signal_id: signal_id.map(str::to_owned),
            source: source.map(str::to_owned),
            detail,
            prev,
            hash,
        });
        if self.pending.len() >= FLUSH_AT {
            self.flush(conn).await?;
        }
        Ok(())
    }

    /// Writes the events appended so far; call before the commit.
    pub(super) async fn flush(&mut self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut q = sql::Builder::new(
            "INSERT INTO audit (at, kind, signal_id, source, detail, prev_hash, hash) ",
        );
        q.push_values(&self.pending, |row, e| {
            row.push_bind(e.at.as_str())
                .push_bind(e.kind.as_str())
                .push_bind(e.signal_id.as_deref())
                .push_bind(e.source.as_deref())
                .push_bind(e.detail.as_str())
                .push_bind(e.prev.as_str())
                .push_bind(e.hash.as_str());
        });
        q.build().execute(conn).await?;
        self.pending.clear();
        Ok(())
    }

    /// One event on its own: load, append, flush.
    pub(super) async fn append_one(
        conn: &mut AnyConnection,
        at: &str,
        signal_id: Option<&str>,
        source: Option<&str>,
        event: &Audit<'_>,
    ) -> Result<(), StoreError> {
        let mut chain = Chain::load(conn).await?;
        chain.append(conn, at, signal_id, source, event).await?;
        chain.flush(conn).await
    }
}

/// Where the trail kept today begins: the hash of the last event purged
/// ("" when none ever was).
pub const HORIZON: &str = "audit.horizon";

async fn horizon(conn: &mut AnyConnection) -> Result<String, StoreError> {
    let h: Option<String> = sql::query_scalar("SELECT value FROM cursors WHERE name = ?")
        .bind(HORIZON)
        .fetch_optional(conn)
        .await?;
    Ok(h.unwrap_or_default())
}

/// Records the hash of the last event purged, in the purge's transaction.
pub(super) async fn set_horizon(conn: &mut AnyConnection, hash: &str) -> Result<(), StoreError> {
    sql::query(
        "INSERT INTO cursors (name, value) VALUES (?, ?)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(HORIZON)
    .bind(hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// Events read per query by `verify_audit` and `audit_page`: memory stays
/// bounded however long the trail.
const PAGE: i64 = 1000;

impl Store {
    /// Checks the chain; `Err(id)` names the first event that does not fit
    /// (it, or the one before it, was changed or removed).
    pub async fn verify_audit(&self) -> Result<Result<u64, i64>, StoreError> {
        let mut prev = horizon(&mut *self.pool.acquire().await?).await?;
        let (mut after, mut count) = (0i64, 0u64);
        loop {
            let rows = sql::query(
                "SELECT id, at, kind, signal_id, source, detail, prev_hash, hash FROM audit
                 WHERE id > ? ORDER BY id LIMIT ?",
            )
            .bind(after)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else {
                return Ok(Ok(count));
            };
            after = last.get(0);
            for r in &rows {
                let want = chain(&prev, r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
                if r.get::<&str, _>(6) != prev || r.get::<&str, _>(7) != want {
                    return Ok(Err(r.get(0)));
                }
                prev = want;
                count += 1;
            }
        }
    }

    /// Up to a page of events after id `after`, at or after `since` (a date
    /// or an instant, compared as text: both are ISO 8601), oldest first.
    pub async fn audit_page(
        &self,
        after: i64,
        since: Option<&str>,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sql::query(
            "SELECT id, at, kind, signal_id, source, detail, hash FROM audit
             WHERE id > ? AND (? IS NULL OR at >= ?) ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(since)
        .bind(since)
        .bind(PAGE)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEvent {
                id: r.get(0),
                at: r.get(1),
                kind: r.get(2),
                signal_id: r.get(3),
                source: r.get(4),
                detail: serde_json::from_str(r.get(5)).unwrap_or(serde_json::Value::Null),
                hash: r.get(6),
            })
            .collect())
    }
}
