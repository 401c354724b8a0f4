//! What `status` reads: held snapshots, quarantined rows, signals by state.

use sqlx::Row;

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
    pub action: String,
    pub attempts: i64,
    pub error: Option<String>,
}

impl Store {
    pub async fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        let rows = sqlx::query(
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
        let rows = sqlx::query(
            "SELECT signal_id, source, action, attempts, last_error FROM outbox WHERE state = 'quarantined' ORDER BY id LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Quarantined {
                signal_id: r.get(0),
                source: r.get(1),
                action: r.get(2),
                attempts: r.get(3),
                error: r.get(4),
            })
            .collect())
    }

    /// Signals by state.
    pub async fn signal_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM signals GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
