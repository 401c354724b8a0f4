//! A unit of work that writes: what a caller outside the store holds while
//! it applies a plan (a file's or a poll's), in the store's own terms. The
//! driver's transaction and the audit chain stay in here: this is the seam a
//! second backend goes behind (docs/design/postgresql.md).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{AnyConnection, Transaction};

use super::audit::Chain;
use super::event::Audit;
use super::files::TakenFile;
use super::polls::PollRecord;
use super::signals::{self, NewSignal};
use super::states::LedgerOutcome;
use super::{files, polls, StoreError};
use crate::domain::{Signal, WithdrawReason};
use crate::plan::InvolvementKey;

pub struct Tx {
    tx: Transaction<'static, sqlx::Any>,
    /// This instance's id on a shared store: whose leases it holds to.
    holder: Option<String>,
    /// The audit trail's chain, loaded at the first event: events are
    /// chained in memory and written with the transaction.
    chain: Option<Chain>,
}

impl Tx {
    pub(super) fn new(tx: Transaction<'static, sqlx::Any>, holder: Option<String>) -> Tx {
        Tx {
            tx,
            holder,
            chain: None,
        }
    }

    /// Holds the unit of work to this instance's lease of `job`: on a
    /// shared store, fails (`LeaseLost`) unless this instance still holds
    /// it, and keeps it from being taken until the commit (`FOR SHARE`
    /// locks the lease's row against the taker's upsert). So an instance
    /// whose lease another took while it was stalled commits nothing of
    /// the job: a source's files are applied in order by one instance.
    pub async fn hold_lease(&mut self, job: &str) -> Result<(), StoreError> {
        let Some(me) = &self.holder else {
            return Ok(());
        };
        let holder: Option<String> =
            super::sql::query_scalar("SELECT holder FROM leases WHERE job = ? FOR SHARE")
                .bind(job)
                .fetch_optional(&mut *self.tx)
                .await?;
        match holder {
            Some(h) if &h == me => Ok(()),
            _ => Err(StoreError::LeaseLost {
                job: job.to_string(),
            }),
        }
    }

    /// An audit event, chained to the trail, written with the transaction.
    pub async fn audit(
        &mut self,
        at: &str,
        signal_id: Option<&str>,
        source: Option<&str>,
        event: &Audit<'_>,
    ) -> Result<(), StoreError> {
        let Tx { tx, chain, .. } = self;
        let chain = match chain {
            Some(c) => c,
            None => chain.insert(Chain::load(tx).await?),
        };
        chain.append(tx, at, signal_id, source, event).await
    }

    /// Writes what is pending and commits: all of it or, on any error or a
    /// crash before this, none of it.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        if let Some(mut chain) = self.chain.take() {
            chain.flush(&mut self.tx).await?;
        }
        Ok(self.tx.commit().await?)
    }

    fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// A file in the ledger with its outcome.
    pub async fn record_file(
        &mut self,
        f: &TakenFile,
        outcome: LedgerOutcome,
        error: Option<&str>,
        at: &str,
    ) -> Result<(), StoreError> {
        files::insert(self.conn(), f, outcome, error, at).await
    }

    /// A poll's row, its bookmark with it.
    pub async fn record_poll(
        &mut self,
        source: &str,
        poll: &PollRecord,
        at: &str,
    ) -> Result<(), StoreError> {
        polls::record(self.conn(), source, poll, at).await
    }

    /// A source's held withdrawals dropped: a new snapshot decides again.
    pub async fn drop_holds(&mut self, source: &str) -> Result<(), StoreError> {
        signals::drop_holds(self.conn(), source).await
    }

    /// Whether the source has `missing` signals (a registration takes one
    /// back).
    pub async fn has_missing(&mut self, source: &str) -> Result<bool, StoreError> {
        signals::has_missing(self.conn(), source).await
    }

    /// The live signal of an involvement, if any.
    pub async fn live_id(
        &mut self,
        source: &str,
        key: &InvolvementKey,
    ) -> Result<Option<String>, StoreError> {
        signals::live_id(self.conn(), source, key).await
    }

    /// The `missing` signal of an involvement, if any.
    pub async fn missing_id(
        &mut self,
        source: &str,
        key: &InvolvementKey,
    ) -> Result<Option<String>, StoreError> {
        signals::missing_id(self.conn(), source, key).await
    }

    pub async fn register_many(
        &mut self,
        source: &str,
        new: &[NewSignal],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        signals::register_many(self.conn(), source, new, now).await
    }

    pub async fn update(
        &mut self,
        source: &str,
        id: &str,
        signal: &Signal,
        last_day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        signals::update(self.conn(), source, id, signal, last_day, now).await
    }

    pub async fn withdraw(
        &mut self,
        source: &str,
        id: &str,
        reason: WithdrawReason,
        held: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        signals::withdraw(self.conn(), source, id, reason, held, now).await
    }

    pub async fn renew(
        &mut self,
        source: &str,
        id: &str,
        end: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        signals::renew(self.conn(), source, id, end, now).await
    }

    /// A snapshot's withdrawals held for an operator.
    pub async fn hold(
        &mut self,
        source: &str,
        file: &str,
        withdrawals: u64,
        active: u64,
        at: &str,
    ) -> Result<(), StoreError> {
        signals::hold(self.conn(), source, file, withdrawals, active, at).await
    }
}
