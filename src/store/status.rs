//! What `status` reads: held snapshots, quarantined rows, signals by state.

use crate::store::sql;
use sqlx::Row;

use super::states::{OutboxAction, OutboxState, SignalState, Stored};
use super::{Store, StoreError};

/// A held snapshot, for `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hold {
    pub source: String,
    pub file: String,
    pub withdrawals: i64,
    pub active: i64,
    pub held_at: String,
}

/// A quarantined row, for `status`: what, for which signal, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Quarantined {
    pub signal_id: String,
    pub source: String,
    pub action: OutboxAction,
    pub attempts: i64,
    pub error: Option<String>,
}

impl Store {
    pub async fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        let rows = sql::query(
            "SELECT source, file, withdrawals, active, held_at FROM holds ORDER BY source",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Hold {
                source: r.get(0),
                file: r.get(1),
                withdrawals: r.get(2),
                active: r.get(3),
                held_at: r.get(4),
            })
            .collect())
    }

    pub async fn quarantined(&self, limit: i64) -> Result<Vec<Quarantined>, StoreError> {
        let rows = sql::query(
            "SELECT signal_id, source, action, attempts, last_error, id FROM outbox WHERE state = ? ORDER BY id LIMIT ?",
        )
        .bind(OutboxState::Quarantined)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Quarantined {
                    signal_id: r.get(0),
                    source: r.get(1),
                    action: OutboxAction::read("outbox", r.get::<i64, _>(5), "action", r.get(2))?,
                    attempts: r.get(3),
                    error: r.get(4),
                })
            })
            .collect()
    }

    /// Signals by state.
    pub async fn signal_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        // MIN(signal_id): a row to name if the state is not one visync writes.
        let rows = sql::query("SELECT state, COUNT(*), MIN(signal_id) FROM signals GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let state = SignalState::read("signals", r.get::<&str, _>(2), "state", r.get(0))?;
                Ok((state.as_str().to_owned(), r.get(1)))
            })
            .collect()
    }
}
