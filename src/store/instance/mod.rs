//! Several instances on one database (PostgreSQL): who this instance is,
//! its heartbeat, the job leases and file claims it takes, and what
//! `status` shows of them.
//!
//! A lease or claim is a row with a holder and an expiry. Taking one
//! succeeds when it is free, expired, or already ours; the heartbeat
//! renews, every third of `lease_secs`, this instance's claims and the
//! leases of the jobs it is running (`node.rs` keeps that set), so a
//! living instance keeps what it works on (a job lease makes it that job's
//! leader) and a dead one loses all of it one lease after its last beat,
//! or at once when a new instance starts on its machine and finds its
//! process gone (`bury_predecessors`). None of this takes the writers'
//! lock: a beat never waits behind a long apply.
//! On SQLite one process writes (the state lock beside the file), so every
//! take succeeds without a write and nothing here touches the database.
//!
//! Times are RFC 3339 UTC text of one width (`ts`), compared as text.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

mod node;

use node::running;
pub use node::Instance;

use super::{sql, ts, Backend, Store, StoreError};

/// Whether a job lease or a file claim is this instance's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    Ours,
    /// Another living instance holds it: stand by.
    Elsewhere {
        holder: String,
    },
}

/// An instance as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceRow {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub started_at: String,
    pub seen_at: String,
    /// The jobs it leads (`notices`, `reconcile`, `intake:<source>`).
    pub leases: Vec<String>,
    /// Outbox rows it is sending now.
    pub outbox_claims: u64,
    /// Files it is reading now.
    pub file_claims: u64,
}

/// An instance that has not beaten for this long is dropped from the list
/// (it stopped without saying so long ago; what it held expired already).
const FORGET_AFTER_HOURS: i64 = 24;

impl Store {
    /// This process, as the other instances see it.
    pub fn instance(&self) -> &Instance {
        &self.me
    }

    /// Whether instances share this store, so that leases and claims matter.
    pub fn is_shared(&self) -> bool {
        self.backend == Backend::Postgres && self.writable
    }

    /// Enters this instance in the list and renews what it holds: the
    /// leases of the jobs it runs now, its file claims, its outbox claims.
    /// At start, then every third of the lease (`app::jobs::heartbeat`).
    /// Not a writer's transaction: a beat never waits behind a long apply
    /// (which would let this instance's leases run out under it), and the
    /// outbox rows it renews are taken `SKIP LOCKED` (a row being recorded
    /// now is about to leave its claim anyway), so it never waits on a
    /// writer's row locks either.
    pub async fn heartbeat(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        if !self.is_shared() {
            return Ok(());
        }
        let me = &self.me;
        let (at, until) = (ts(now), ts(now + me.lease));
        let forget = ts(now - chrono::Duration::hours(FORGET_AFTER_HOURS));
        let mut tx = self.pool.begin().await?;
        let known: bool = sql::query_scalar::<i64>("SELECT COUNT(*) FROM instances WHERE id = ?")
            .bind(&me.id)
            .fetch_one(&mut *tx)
            .await?
            > 0;
        if !known {
            self.bury_predecessors(&mut tx).await?;
            self.check_clock(&mut tx).await;
        }
        sql::query(
            "INSERT INTO instances (id, host, pid, node, started_at, seen_at) VALUES (?1, ?2, ?3, ?5, ?4, ?4)
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(&me.id)
        .bind(&me.host)
        .bind(me.pid as i64)
        .bind(&at)
        .bind(&me.node)
        .execute(&mut *tx)
        .await?;
        let jobs = me.running_jobs();
        if !jobs.is_empty() {
            let mut q = sql::Builder::new("UPDATE leases SET until = ");
            q.push_bind(&until)
                .push(" WHERE holder = ")
                .push_bind(&me.id);
            q.push(" AND job IN (").push_list(jobs).push(")");
            q.build().execute(&mut *tx).await?;
        }
        for renew in [
            "UPDATE file_claims SET claimed_until = ?1 WHERE claimed_by = ?2",
            "UPDATE outbox SET claimed_until = ?1 WHERE id IN
               (SELECT id FROM outbox WHERE claimed_by = ?2 FOR UPDATE SKIP LOCKED)",
        ] {
            sql::query(renew)
                .bind(&until)
                .bind(&me.id)
                .execute(&mut *tx)
                .await?;
        }
        sql::query("DELETE FROM instances WHERE seen_at < ?")
            .bind(&forget)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Leases and claims compare one machine's clock with another's: says
    /// so in the log when this one is off the database server's by more
    /// than a sixth of a lease (NTP keeps them within milliseconds).
    async fn check_clock(&self, conn: &mut sqlx::AnyConnection) {
        let server: Result<f64, _> = sql::query_scalar(
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)",
        )
        .fetch_one(&mut *conn)
        .await;
        let Ok(server) = server else { return };
        let local = Utc::now().timestamp_millis() as f64 / 1000.0;
        let off = (local - server).abs();
        if off > self.me.lease.num_seconds() as f64 / 6.0 {
            tracing::warn!(
                "this machine's clock is {off:.1} s off the database server's: leases and claims of \
                 several instances need clocks within seconds of each other (enable NTP: timedatectl)"
            );
        }
    }

    /// At this instance's first beat: frees at once what dead instances of
    /// this node held (a service restarted after a crash, a `run --once`
    /// killed): their pids are gone here, so they cannot be beating
    /// elsewhere. Instances of other nodes are left to their leases.
    async fn bury_predecessors(&self, conn: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
        let me = &self.me;
        let rows = sql::query("SELECT id, pid FROM instances WHERE node = ? AND id <> ?")
            .bind(&me.node)
            .bind(&me.id)
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            let (id, pid): (String, i64) = (r.get(0), r.get(1));
            if pid != i64::from(me.pid) && running(pid) {
                continue;
            }
            tracing::info!(
                instance = id,
                "freeing what a dead instance of this machine held"
            );
            free(conn, &id).await?;
        }
        Ok(())
    }

    /// Takes (or keeps) the lease of a job: `Ours` when it was free,
    /// expired or ours already; the heartbeat then renews it until
    /// `end_job`. The first to run a job after the lease ran out leads it;
    /// the others stand by.
    pub async fn take_lease(&self, job: &str, now: DateTime<Utc>) -> Result<Taken, StoreError> {
        let taken = self
            .take(
                "INSERT INTO leases (job, holder, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE leases.until < ?4 OR leases.holder = ?2",
                "SELECT holder FROM leases WHERE job = ?1",
                &[job],
                now,
            )
            .await?;
        if taken == Taken::Ours {
            self.me.start(job);
        }
        Ok(taken)
    }

    /// The job ended: its lease is no longer renewed (it stays ours until
    /// it runs out, so the next run is likely ours again).
    pub fn end_job(&self, job: &str) {
        self.me.end(job);
    }

    /// Lets go of a job's lease now: for the reconciliation, which runs
    /// once per fire of its schedule (the others stood by for that fire).
    pub async fn release_lease(&self, job: &str) -> Result<(), StoreError> {
        self.me.end(job);
        if !self.is_shared() {
            return Ok(());
        }
        sql::query("DELETE FROM leases WHERE job = ? AND holder = ?")
            .bind(job)
            .bind(&self.me.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Lets go of this instance's outbox claims that are not being
    /// recorded: at the end of a send, whatever ended it, so that rows it
    /// took and did not send are anyone's at once.
    pub async fn unclaim(&self) -> Result<(), StoreError> {
        if !self.is_shared() {
            return Ok(());
        }
        sql::query(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id IN
               (SELECT id FROM outbox WHERE claimed_by = ? FOR UPDATE SKIP LOCKED)",
        )
        .bind(&self.me.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims a file by its content before it is read: `Ours`, or the
    /// instance that is reading it now.
    pub async fn claim_file(
        &self,
        source: &str,
        sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<Taken, StoreError> {
        self.take(
            "INSERT INTO file_claims (source, sha256, claimed_by, claimed_until) VALUES (?5, ?1, ?2, ?3)
             ON CONFLICT (source, sha256) DO UPDATE
             SET claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until
             WHERE file_claims.claimed_until < ?4 OR file_claims.claimed_by = ?2",
            "SELECT claimed_by FROM file_claims WHERE sha256 = ?1 AND source = ?2",
            &[sha256, source],
            now,
        )
        .await
    }

    /// Lets go of a file once its outcome is recorded and it is moved.
    pub async fn release_file(&self, source: &str, sha256: &str) -> Result<(), StoreError> {
        if !self.is_shared() {
            return Ok(());
        }
        sql::query("DELETE FROM file_claims WHERE source = ? AND sha256 = ? AND claimed_by = ?")
            .bind(source)
            .bind(sha256)
            .bind(&self.me.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The upsert behind leases and claims: `?1` is the key (a job, a
    /// hash), `?2` us, `?3` the new expiry, `?4` now, `?5` a second key
    /// part (`?2` in `holder`). The upsert's `WHERE` decides: no row
    /// written means someone else holds it, and `holder` names them.
    async fn take(
        &self,
        upsert: &str,
        holder: &str,
        key: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Taken, StoreError> {
        if !self.is_shared() {
            return Ok(Taken::Ours);
        }
        let (until, at) = (ts(now + self.me.lease), ts(now));
        let mut upsert = sql::query(upsert)
            .bind(key[0])
            .bind(&self.me.id)
            .bind(&until)
            .bind(&at);
        let mut holder = sql::query(holder).bind(key[0]);
        if let Some(second) = key.get(1) {
            upsert = upsert.bind(*second);
            holder = holder.bind(*second);
        }
        // Its own transaction, committed at once: the claim must be seen by
        // the others before the work it guards begins. Not a writer's: the
        // upsert decides on its one row, and must not wait behind an apply.
        let mut tx = self.pool.begin().await?;
        let written = upsert.execute(&mut *tx).await?.rows_affected();
        let taken = if written == 1 {
            Taken::Ours
        } else {
            let row = holder.fetch_optional(&mut *tx).await?;
            Taken::Elsewhere {
                holder: row.map_or_else(String::new, |r| r.get(0)),
            }
        };
        tx.commit().await?;
        Ok(taken)
    }

    /// At a clean stop: what this instance held is free at once, not one
    /// lease later, and it leaves the list.
    pub(super) async fn retire(&self) -> Result<(), StoreError> {
        if !self.is_shared() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        free(&mut tx, &self.me.id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The other instances that beat now (within a lease), named, on a
    /// shared store: what a decommission must not run beside. Read on
    /// `conn`, so that a purge can ask inside its own transaction.
    pub(in crate::store) async fn others_beating(
        &self,
        conn: &mut sqlx::AnyConnection,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        if !self.is_shared() {
            return Ok(Vec::new());
        }
        let rows = sql::query(
            "SELECT id, host, pid FROM instances WHERE id <> ? AND seen_at >= ? ORDER BY id",
        )
        .bind(&self.me.id)
        .bind(ts(now - self.me.lease))
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let (id, host, pid): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
                format!("{id} (host {host}, pid {pid})")
            })
            .collect())
    }

    /// `others_beating`, on a connection of its own.
    pub async fn others_running(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.others_beating(&mut conn, now).await
    }

    /// The instances on this store and what each holds, for `status`
    /// (empty on SQLite, where one process works).
    pub async fn instances(&self) -> Result<Vec<InstanceRow>, StoreError> {
        let rows = sql::query(
            "SELECT i.id, i.host, i.pid, i.started_at, i.seen_at,
                    (SELECT COUNT(*) FROM outbox o WHERE o.claimed_by = i.id),
                    (SELECT COUNT(*) FROM file_claims f WHERE f.claimed_by = i.id)
               FROM instances i ORDER BY i.started_at, i.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let leases = sql::query("SELECT holder, job FROM leases ORDER BY job")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: String = r.get(0);
                InstanceRow {
                    leases: leases
                        .iter()
                        .filter(|l| l.get::<String, _>(0) == id)
                        .map(|l| l.get(1))
                        .collect(),
                    host: r.get(1),
                    pid: r.get(2),
                    started_at: r.get(3),
                    seen_at: r.get(4),
                    outbox_claims: r.get::<i64, _>(5).max(0) as u64,
                    file_claims: r.get::<i64, _>(6).max(0) as u64,
                    id,
                }
            })
            .collect())
    }
}

/// Everything instance `id` holds let go, and the instance out of the list.
async fn free(conn: &mut sqlx::AnyConnection, id: &str) -> Result<(), StoreError> {
    for text in [
        "DELETE FROM leases WHERE holder = ?",
        "DELETE FROM file_claims WHERE claimed_by = ?",
        "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ?",
        "DELETE FROM instances WHERE id = ?",
    ] {
        sql::query(text).bind(id).execute(&mut *conn).await?;
    }
    Ok(())
}
