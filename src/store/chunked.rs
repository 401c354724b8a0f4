//! The one loop of every writing step that goes through many signals
//! (reconciliation, expiry, retention, decommission): chunks of `CHUNK`
//! rows in id order, each chunk its own transaction with its audit events,
//! each from where the last ended. A run killed half-way leaves each signal
//! either done or not, the next run goes on where it stopped, and the
//! signals are gone through once in all, not once per chunk.
//!
//! A loop rather than a function taking the step as a closure: the futures
//! of an async closure over a borrowed connection are not `Send` for every
//! lifetime, and the daemon runs these steps on its tasks.

use crate::store::sql;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row, Transaction};

use super::audit::Chain;
use super::StoreError;

/// Rows per writing transaction.
pub const CHUNK: i64 = 500;

/// A writing step in chunks:
///
/// ```ignore
/// let mut chunks = Chunks::new(select, "reconcile-chunk");
/// while let Some(mut c) = chunks.next(&mut conn, &binds).await? {
///     for r in &c.rows { /* write through c.tx, tell c.chain */ }
///     chunks.commit(c).await?;
/// }
/// Ok(chunks.done())
/// ```
pub struct Chunks {
    /// Takes the caller's binds, then the last id of the chunk before
    /// (`''` at first) and `CHUNK`: it ends in `AND id > ? ORDER BY id
    /// LIMIT ?`, and its first column is that id.
    select: String,
    /// The crash point after each commit (`fault.rs`).
    point: &'static str,
    after: String,
    done: u64,
}

/// One chunk: its rows, read in its transaction, and the audit chain to
/// tell what is done to them.
pub struct Chunk<'c> {
    pub tx: Transaction<'c, sqlx::Any>,
    pub chain: Chain,
    pub rows: Vec<AnyRow>,
}

impl Chunks {
    pub fn new(select: impl Into<String>, point: &'static str) -> Chunks {
        Chunks {
            select: select.into(),
            point,
            after: String::new(),
            done: 0,
        }
    }

    /// The next chunk, in a transaction begun on `conn`; `None` when no row
    /// is left.
    pub async fn next<'c>(
        &mut self,
        conn: &'c mut AnyConnection,
        binds: &[&str],
    ) -> Result<Option<Chunk<'c>>, StoreError> {
        let mut tx = sql::begin(conn).await?;
        let mut query = sql::query(self.select.clone());
        for b in binds {
            query = query.bind(*b);
        }
        let rows = query
            .bind(&self.after)
            .bind(CHUNK)
            .fetch_all(&mut *tx)
            .await?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        self.after = last.get(0);
        let chain = Chain::load(&mut tx).await?;
        Ok(Some(Chunk { tx, chain, rows }))
    }

    /// Writes the chunk's audit events and commits it.
    pub async fn commit(&mut self, mut c: Chunk<'_>) -> Result<(), StoreError> {
        c.chain.flush(&mut c.tx).await?;
        c.tx.commit().await?;
        crate::fault::point(self.point);
        self.done += c.rows.len() as u64;
        Ok(())
    }

    /// How many rows the chunks held.
    pub fn done(&self) -> u64 {
        self.done
    }
}
