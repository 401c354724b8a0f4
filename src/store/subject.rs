//! Everything this installation holds about one child, for the right of
//! access (`visync subject`). The child is found by the keyed hash of the
//! BSN, as everywhere in the store; what comes back is what is kept, no more.

use crate::store::sql;
use serde::Serialize;
use sqlx::Row;

use super::states::{
    read_opt, NoticeKind, NoticeState, OutboxAction, OutboxState, SignalState, Stored,
};
use super::{SignalRow, Store, StoreError};
use crate::domain::SubjectKey;

/// What the store holds about one child.
#[derive(Debug, Default, Serialize)]
pub struct SubjectRecord {
    /// On the objection list: never registered again.
    pub objection: Option<String>,
    pub signals: Vec<SubjectSignal>,
}

/// One signal, with what is queued for it, the notices about it and its
/// audit events.
#[derive(Debug, Serialize)]
pub struct SubjectSignal {
    #[serde(flatten)]
    pub signal: SignalRow,
    /// Waiting for the index; a registration or correction carries the
    /// signal as it will be sent (identity and contact data).
    pub outbox: Vec<Queued>,
    pub notices: Vec<HeldNotice>,
    pub audit: Vec<Event>,
}

#[derive(Debug, Serialize)]
pub struct Queued {
    pub action: OutboxAction,
    pub state: OutboxState,
    pub created_at: String,
    pub payload: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct HeldNotice {
    pub notice_id: String,
    pub kind: NoticeKind,
    pub created_at: String,
    pub state: NoticeState,
    /// The other professionals named, until the notice is delivered.
    pub counterparts: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct Event {
    pub at: String,
    pub kind: String,
}

impl Store {
    /// Everything held about the child with subject key `key`.
    pub async fn subject(&self, key: &SubjectKey) -> Result<SubjectRecord, StoreError> {
        let objection: Option<String> =
            sql::query_scalar("SELECT at FROM objections WHERE subject_key = ?")
                .bind(&key.0[..])
                .fetch_optional(&self.pool)
                .await?;
        let rows = sql::query(
            "SELECT signal_id, source, professional_id, case_ref, start_date, end_date, state,
                    withdraw_reason, error, created_at, updated_at
             FROM signals WHERE subject_key = ? ORDER BY created_at, signal_id",
        )
        .bind(&key.0[..])
        .fetch_all(&self.pool)
        .await?;
        let mut signals = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.get(0);
            signals.push(SubjectSignal {
                outbox: self.queued_for(&id).await?,
                notices: self.notices_for(&id).await?,
                audit: self.events_for(&id).await?,
                signal: SignalRow {
                    state: SignalState::read("signals", &id, "state", r.get(6))?,
                    source: r.get(1),
                    professional_id: r.get(2),
                    case_ref: r.get(3),
                    start_date: r.get(4),
                    end_date: r.get(5),
                    withdraw_reason: read_opt("signals", &id, "withdraw_reason", r.get(7))?,
                    error: r.get(8),
                    created_at: r.get(9),
                    updated_at: r.get(10),
                    signal_id: id,
                },
            });
        }
        Ok(SubjectRecord { objection, signals })
    }

    async fn queued_for(&self, signal_id: &str) -> Result<Vec<Queued>, StoreError> {
        let rows = sql::query(
            "SELECT action, state, created_at, payload, id FROM outbox WHERE signal_id = ? ORDER BY id",
        )
        .bind(signal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(4);
                Ok(Queued {
                    action: OutboxAction::read("outbox", id, "action", r.get(0))?,
                    state: OutboxState::read("outbox", id, "state", r.get(1))?,
                    created_at: r.get(2),
                    payload: json(r.get(3)),
                })
            })
            .collect()
    }

    async fn notices_for(&self, signal_id: &str) -> Result<Vec<HeldNotice>, StoreError> {
        let rows = sql::query(
            "SELECT notice_id, kind, created_at, state, counterparts FROM notices
             WHERE signal_id = ? ORDER BY created_at, notice_id",
        )
        .bind(signal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: &str = r.get(0);
                Ok(HeldNotice {
                    kind: NoticeKind::read("notices", id, "kind", r.get(1))?,
                    state: NoticeState::read("notices", id, "state", r.get(3))?,
                    notice_id: id.to_owned(),
                    created_at: r.get(2),
                    counterparts: json(r.get(4)),
                })
            })
            .collect()
    }

    async fn events_for(&self, signal_id: &str) -> Result<Vec<Event>, StoreError> {
        let rows = sql::query("SELECT at, kind FROM audit WHERE signal_id = ? ORDER BY id")
            .bind(signal_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Event {
                at: r.get(0),
                kind: r.get(1),
            })
            .collect())
    }
}

fn json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}
