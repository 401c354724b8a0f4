//! The SQL of `visync decommission` (reconcile.md): every live signal
//! withdrawn through the outbox, then, once the index confirmed them all,
//! the store purged down to one summarising audit event and the chain's
//! horizon. Each step is idempotent, so an interrupted run is run again.

use crate::store::sql;
use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, AnyPool, Row};

use super::audit::Chain;
use super::chunked::Chunks;
use super::event::Audit;
use super::states::{marks, OutboxAction, OutboxState, SignalState, Stored};
use super::transition::{self, OnDecommission};
use super::{ts, Store, StoreError};
use crate::config::StateUrl;

/// The audit event that says a store was decommissioned: what is left.
pub const DECOMMISSIONED: &str = "decommissioned";

/// The tables a decommission empties; `cursors` keeps the audit horizon.
const TABLES: [&str; 10] = [
    // The key's fingerprint goes with the key: a store made again after a
    // decommission makes a new key.
    "meta",
    "leases",
    "file_claims",
    "instances",
    "outbox",
    "notices",
    "holds",
    "objections",
    "files",
    "signals",
];

/// Live signals per source: what a decommission would withdraw.
pub type PerSource = BTreeMap<String, u64>;

impl Store {
    /// Signals the index may hold (pending, active, withdrawing, missing),
    /// per source.
    pub async fn live_per_source(&self) -> Result<PerSource, StoreError> {
        let live = transition::states_where(transition::decommission_live);
        let mut q = sql::query(format!(
            "SELECT source, COUNT(*) FROM signals
             WHERE state IN ({}) GROUP BY source ORDER BY source",
            marks(live.len())
        ));
        for s in live {
            q = q.bind(s);
        }
        let rows = q.fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<i64, _>(1) as u64))
            .collect())
    }

    /// Queues the withdrawal (`risk_ended`) of every live signal; held
    /// withdrawals are released. A registration never tried is dropped (it
    /// never reached the index); one that was tried is withdrawn instead of
    /// sent (the index answers 404 if it never got it, which counts as
    /// done). A `missing` signal is not at the index: withdrawn here.
    /// Returns how many withdrawals were queued.
    pub async fn withdraw_all(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let at = ts(now);
        let mut tx = self.transaction().await?;
        clear_queue(&mut tx, &at).await?;
        tx.commit().await?;
        self.withdraw_live(&at, now).await
    }

    /// Then every signal the index may hold gets its withdrawal, in chunks.
    async fn withdraw_live(&self, at: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let withdraw = transition::states_where(|s| {
            transition::on_decommission(s, false) == OnDecommission::Withdraw
        });
        let select = format!(
            "SELECT signal_id, source FROM signals WHERE state IN ({})
             AND signal_id > ? ORDER BY signal_id LIMIT ?",
            marks(withdraw.len())
        );
        let binds: Vec<&str> = withdraw.iter().map(|s| s.as_str()).collect();
        let mut conn = self.pool.acquire().await?;
        let mut chunks = Chunks::new(select, "decommission-chunk");
        while let Some(mut c) = chunks.next(&mut conn, &binds).await? {
            for r in &c.rows {
                let (id, source): (String, String) = (r.get(0), r.get(1));
                let reason = crate::domain::WithdrawReason::RiskEnded;
                super::signals::withdraw_planned(
                    &mut c.tx,
                    &mut c.chain,
                    at,
                    &source,
                    &id,
                    reason,
                    true,
                    now,
                )
                .await?;
            }
            chunks.commit(c).await?;
        }
        Ok(chunks.done())
    }

    /// What the index has not confirmed yet: signals still live, by state.
    pub async fn not_withdrawn(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let live = transition::states_where(transition::decommission_live);
        let mut q = sql::query(format!(
            "SELECT state, COUNT(*), MIN(signal_id) FROM signals
             WHERE state IN ({}) GROUP BY state",
            marks(live.len())
        ));
        for s in live {
            q = q.bind(s);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let state = SignalState::read("signals", r.get::<&str, _>(2), "state", r.get(0))?;
                Ok((state.as_str().to_owned(), r.get::<i64, _>(1) as u64))
            })
            .collect()
    }

    /// Empties the store: every table but the audit trail, which is purged
    /// to its horizon and gets one event summarising the decommission:
    /// `withdrawn` confirmed by the index, `queued` by `withdraw_all`, and
    /// the live signals per source before.
    pub async fn purge_all(
        &self,
        withdrawn: u64,
        queued: u64,
        per_source: &PerSource,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.transaction().await?;
        // Asked again under the writers' lock: an instance started since
        // the command's first look would write beside the purge.
        let others = self.others_beating(&mut tx, now).await?;
        if !others.is_empty() {
            return Err(StoreError::OthersRunning(others.join(", ")));
        }
        for table in TABLES {
            sql::query(format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        sql::query("DELETE FROM cursors WHERE name <> ?")
            .bind(super::audit::HORIZON)
            .execute(&mut *tx)
            .await?;
        let head: Option<String> =
            sql::query_scalar("SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(head) = head {
            sql::query("DELETE FROM audit").execute(&mut *tx).await?;
            super::audit::set_horizon(&mut tx, &head).await?;
        }
        let event = Audit::Decommissioned {
            withdrawn,
            queued,
            per_source,
        };
        Chain::append_one(&mut tx, &ts(now), None, None, &event).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// What a decommission finds, read without the subject key (a
/// decommission deletes the key; opening the store the usual way would
/// make a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// No store yet: a SQLite file that does not exist, a PostgreSQL
    /// database no instance has migrated.
    Nothing,
    /// It holds no signal and its last audit event says it was
    /// decommissioned.
    Decommissioned,
    /// Anything else: there is something to decommission.
    Live,
}

/// The store read-only, without its key, or `None` when there is none.
async fn trail_pool(url: &StateUrl) -> Result<Option<AnyPool>, StoreError> {
    match url {
        StateUrl::Sqlite(db) if !db.exists() => Ok(None),
        StateUrl::Sqlite(db) => Ok(Some(super::open::sqlite(db, true).await?)),
        StateUrl::Postgres(pg) => {
            let pool = super::open::postgres(pg).await?;
            // A database nothing has migrated has no audit table.
            let migrated: i64 =
                sql::query_scalar("SELECT CASE WHEN to_regclass(?) IS NULL THEN 0 ELSE 1 END")
                    .bind("audit")
                    .fetch_one(&pool)
                    .await?;
            if migrated == 1 {
                Ok(Some(pool))
            } else {
                pool.close().await;
                Ok(None)
            }
        }
    }
}

pub async fn found(url: &StateUrl) -> Result<Found, StoreError> {
    let Some(pool) = trail_pool(url).await? else {
        return Ok(Found::Nothing);
    };
    let last: Option<String> = sql::query_scalar("SELECT kind FROM audit ORDER BY id DESC LIMIT 1")
        .fetch_optional(&pool)
        .await
        .unwrap_or(None);
    let signals: i64 = sql::query_scalar("SELECT COUNT(*) FROM signals")
        .fetch_one(&pool)
        .await
        .unwrap_or(1);
    pool.close().await;
    Ok(
        match last.as_deref() == Some(DECOMMISSIONED) && signals == 0 {
            true => Found::Decommissioned,
            false => Found::Live,
        },
    )
}

/// The store opened read-only for its audit trail alone, when its key is
/// gone (after a decommission): `audit verify` and `audit export` need no
/// key, and nothing else may be asked of it (no child can be looked up).
pub async fn open_trail(url: &StateUrl) -> Result<Option<Store>, StoreError> {
    let Some(pool) = trail_pool(url).await? else {
        return Ok(None);
    };
    // A key no one has: the trail holds no keyed hash to compare with.
    let mut throwaway = [0u8; 32];
    getrandom::fill(&mut throwaway).map_err(|e| StoreError::Key {
        path: PathBuf::from("[state] key_file"),
        message: e.to_string(),
    })?;
    Ok(Some(Store::new(
        url,
        pool,
        crate::domain::SubjectHasher::new(&throwaway),
        false,
    )))
}

/// First, in one transaction: held withdrawals released, quarantined rows
/// tried again, registrations never sent dropped with the signals only
/// they stood for, corrections and renewals dropped, and what cannot reach
/// the index ended here.
async fn clear_queue(conn: &mut AnyConnection, at: &str) -> Result<(), StoreError> {
    let release = transition::RELEASE;
    sql::query(
        "UPDATE signals SET state = ?, withdraw_reason = ?, updated_at = ?
             WHERE signal_id IN (SELECT signal_id FROM outbox WHERE state = ?)",
    )
    .bind(release.signal)
    .bind(release.reason.as_str())
    .bind(at)
    .bind(release.from)
    .execute(&mut *conn)
    .await?;
    sql::query("UPDATE outbox SET state = ?, not_before = ? WHERE state = ?")
        .bind(release.to)
        .bind(at)
        .bind(release.from)
        .execute(&mut *conn)
        .await?;
    sql::query("DELETE FROM holds").execute(&mut *conn).await?;
    // A run again retries what an earlier one could not get through.
    sql::query("UPDATE outbox SET state = ?, attempts = 0, not_before = ? WHERE state = ?")
        .bind(OutboxState::Ready)
        .bind(at)
        .bind(OutboxState::Quarantined)
        .execute(&mut *conn)
        .await?;
    // Registrations never tried go first: their signals are then the
    // unsent ones, with nothing queued.
    sql::query("DELETE FROM outbox WHERE action = ? AND attempts = 0")
        .bind(OutboxAction::Register)
        .execute(&mut *conn)
        .await?;
    for state in
        transition::states_where(|s| transition::on_decommission(s, true) == OnDecommission::Drop)
    {
        sql::query(
            "DELETE FROM signals WHERE state = ?
                   AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.signal_id = signals.signal_id)",
        )
        .bind(state)
        .execute(&mut *conn)
        .await?;
    }
    sql::query("DELETE FROM outbox WHERE action IN (?, ?, ?)")
        .bind(OutboxAction::Register)
        .bind(OutboxAction::Update)
        .bind(OutboxAction::Renew)
        .execute(&mut *conn)
        .await?;
    for from in SignalState::ALL {
        if let OnDecommission::EndHere(to, reason) = transition::on_decommission(*from, false) {
            sql::query("UPDATE signals SET state = ?, withdraw_reason = ? WHERE state = ?")
                .bind(to)
                .bind(reason.as_str())
                .bind(*from)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
