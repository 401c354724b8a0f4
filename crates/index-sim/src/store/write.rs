//! The three state changes a client can make: a batch of signals, a
//! withdrawal, a renewal. Each is one transaction, idempotent by `signal_id`.

use chrono::NaiveDate;
use sqlx::SqliteConnection;

use super::bulk::try_fresh;
use super::lifecycle::{archive, leave, purge, sweep};
use super::types::{day, Ctx, ItemResult, StoreError};
use super::{is_tombstone, Store};
use crate::incoming::{Incoming, ItemError, Rejected};
use crate::vocab::WithdrawReason;
use crate::window::{renew_max, resolve_end};

/// A stored signal as far as a batch (or a tier item) compares it.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct Stored {
    pub id: i64,
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
    pub state: String,
    joined: bool,
    /// The region's change number applied last (national index only).
    pub tier_seq: Option<i64>,
}

impl Stored {
    pub fn same_content(&self, i: &Incoming, end: NaiveDate) -> bool {
        self.bsn == i.bsn.as_str()
            && self.family_name == i.family_name
            && self.name_prefix == i.name_prefix
            && self.initials == i.initials
            && self.given_names == i.given_names
            && self.birth_date == i.birth_date.to_string()
            && self.gender == i.gender.as_str()
            && self.professional_id == i.professional_id
            && self.professional_name == i.professional_name
            && self.phone == i.phone
            && self.email == i.email
            && self.start_date == i.start_date.to_string()
            && self.end_date == end.to_string()
    }
}

fn rejected(signal_id: &str, error: ItemError) -> ItemResult {
    ItemResult::Rejected {
        signal_id: Some(signal_id.to_owned()),
        error,
    }
}

impl Store {
    /// Applies a batch in order; counts the call for `register_calls`. A
    /// batch of signals the index has never seen goes set-based (`bulk.rs`),
    /// with the same results.
    pub async fn batch(
        &self,
        ctx: &Ctx,
        org: &str,
        items: Vec<Result<Incoming, Rejected>>,
    ) -> Result<Vec<ItemResult>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sweep(&mut tx, ctx).await?;
        sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'register_calls'")
            .execute(&mut *tx)
            .await?;
        let out = match try_fresh(&mut tx, ctx, org, &items).await? {
            Some(out) => out,
            None => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(match item {
                        Err(r) => ItemResult::Rejected {
                            signal_id: r.signal_id,
                            error: r.error,
                        },
                        Ok(i) => apply(&mut tx, ctx, org, &i).await?,
                    });
                }
                out
            }
        };
        // New signals whose start has come join matching now, in this
        // transaction.
        sweep(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Withdraws a signal; returns the state it is left in (`archived` or
    /// `purged`). Withdrawing an ended signal again succeeds without change,
    /// except that a purging reason purges an archived one.
    pub async fn withdraw(
        &self,
        ctx: &Ctx,
        org: &str,
        signal_id: &str,
        reason: WithdrawReason,
    ) -> Result<&'static str, StoreError> {
        let mut tx = self.pool.begin().await?;
        sweep(&mut tx, ctx).await?;
        let state = if is_tombstone(&mut tx, org, signal_id).await? {
            "purged"
        } else {
            let (id, state) = find(&mut tx, org, signal_id)
                .await?
                .ok_or(StoreError::NotFound)?;
            match (reason, state.as_str()) {
                (WithdrawReason::RiskEnded, "archived") => "archived",
                (WithdrawReason::RiskEnded, _) => {
                    leave(&mut tx, id, ctx).await?;
                    archive(&mut tx, id, ctx.today, ctx).await?;
                    "archived"
                }
                _ => {
                    purge(&mut tx, id, ctx).await?;
                    "purged"
                }
            }
        };
        tx.commit().await?;
        Ok(state)
    }

    /// Moves an active signal's end date; returns it.
    pub async fn renew(
        &self,
        ctx: &Ctx,
        org: &str,
        signal_id: &str,
        end: NaiveDate,
    ) -> Result<NaiveDate, StoreError> {
        let mut tx = self.pool.begin().await?;
        sweep(&mut tx, ctx).await?;
        if is_tombstone(&mut tx, org, signal_id).await? {
            return Err(StoreError::NotActive);
        }
        let row: Option<(i64, String, String, String)> = sqlx::query_as(
            "SELECT id, state, birth_date, start_date FROM signals \
             WHERE org = ? AND signal_id = ?",
        )
        .bind(org)
        .bind(signal_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (id, state, birth, start) = row.ok_or(StoreError::NotFound)?;
        if state != "active" {
            return Err(StoreError::NotActive);
        }
        let max = renew_max(&ctx.rules, ctx.today, day(&birth)?);
        let min = ctx.today.max(day(&start)?);
        if end > max {
            return Err(StoreError::EndDate(format!(
                "end_date: at most {max} (today plus {} years, and before the age limit)",
                ctx.rules.max_active_years
            )));
        }
        if end < min {
            return Err(StoreError::EndDate(format!(
                "end_date: not before {min} (today and the start date)"
            )));
        }
        sqlx::query("UPDATE signals SET end_date = ? WHERE id = ?")
            .bind(end.to_string())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(end)
    }
}

async fn find(
    c: &mut SqliteConnection,
    org: &str,
    signal_id: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, state FROM signals WHERE org = ? AND signal_id = ?")
            .bind(org)
            .bind(signal_id)
            .fetch_optional(&mut *c)
            .await?,
    )
}

/// One checked item: create, leave unchanged, update, or refuse.
async fn apply(
    c: &mut SqliteConnection,
    ctx: &Ctx,
    org: &str,
    i: &Incoming,
) -> Result<ItemResult, StoreError> {
    let sid = i.signal_id.as_str();
    let ended = || {
        rejected(
            sid,
            ItemError {
                code: "withdrawn",
                message: "the signal was withdrawn or has expired; register a new one".into(),
            },
        )
    };
    if is_tombstone(c, org, sid).await? {
        return Ok(ended());
    }
    let stored = load(c, org, sid).await?;
    if stored.as_ref().is_some_and(|s| s.state != "active") {
        return Ok(ended());
    }
    let stored_end = match &stored {
        Some(s) => Some(day(&s.end_date)?),
        None => None,
    };
    let end = match resolve_end(&ctx.rules, i, stored_end) {
        Ok(e) => e,
        Err(e) => return Ok(rejected(sid, e)),
    };
    if let Some(s) = &stored {
        if s.same_content(i, end) {
            return Ok(ItemResult::Unchanged(sid.to_owned()));
        }
    }
    // Another active signal of this organisation for the same subject and
    // professional: the client must adopt it, not make a second one.
    let existing: Option<(String,)> = sqlx::query_as(
        // `origin = ''`: what a regional index stores; it lets SQLite use
        // the whole unique index instead of scanning the organisation.
        "SELECT signal_id FROM signals WHERE state = 'active' AND org = ? AND origin = '' \
         AND professional_id = ? AND bsn = ? AND signal_id <> ?",
    )
    .bind(org)
    .bind(&i.professional_id)
    .bind(i.bsn.as_str())
    .bind(sid)
    .fetch_optional(&mut *c)
    .await?;
    if let Some((existing,)) = existing {
        return Ok(ItemResult::Conflict {
            signal_id: sid.to_owned(),
            existing,
        });
    }
    match stored {
        None => {
            insert(c, ctx, org, "", i, end).await?;
            Ok(ItemResult::Created(sid.to_owned()))
        }
        Some(s) => {
            correct(c, ctx, &s, i, end).await?;
            Ok(ItemResult::Updated(sid.to_owned()))
        }
    }
}

/// The signal `signal_id` of `org`, active or archived, if it is stored.
pub(super) async fn load(
    c: &mut SqliteConnection,
    org: &str,
    signal_id: &str,
) -> Result<Option<Stored>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, bsn, family_name, name_prefix, initials, given_names, birth_date, gender, \
         professional_id, professional_name, phone, email, start_date, end_date, state, joined, \
         tier_seq FROM signals WHERE org = ? AND signal_id = ?",
    )
    .bind(org)
    .bind(signal_id)
    .fetch_optional(&mut *c)
    .await?)
}

/// Stores a new active signal with end date `end`; `origin` is '' on a
/// regional index. Returns its internal id.
pub(super) async fn insert(
    c: &mut SqliteConnection,
    ctx: &Ctx,
    org: &str,
    origin: &str,
    i: &Incoming,
    end: NaiveDate,
) -> Result<i64, StoreError> {
    let subject_purge = ctx.rules.limit_birthday(i.birth_date).to_string();
    let insert = sqlx::query(
        "INSERT INTO signals (org, origin, signal_id, bsn, family_name, name_prefix, initials, \
         given_names, birth_date, gender, professional_id, professional_name, phone, email, \
         start_date, end_date, state, subject_purge_on) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)",
    )
    .bind(org)
    .bind(origin)
    .bind(&i.signal_id);
    let done = content(insert, i)
        .bind(end.to_string())
        .bind(subject_purge)
        .execute(&mut *c)
        .await?;
    Ok(done.last_insert_rowid())
}

/// Overwrites a stored signal's content with `i` and end date `end` (a
/// correction). A correction of who or since when re-runs matching: the old
/// partners are told it ended, and the sweep joins it again.
pub(super) async fn correct(
    c: &mut SqliteConnection,
    ctx: &Ctx,
    s: &Stored,
    i: &Incoming,
    end: NaiveDate,
) -> Result<(), StoreError> {
    let rematch = s.bsn != i.bsn.as_str()
        || s.professional_id != i.professional_id
        || s.start_date != i.start_date.to_string();
    if s.joined && rematch {
        leave(c, s.id, ctx).await?;
    }
    let update = sqlx::query(
        "UPDATE signals SET bsn = ?, family_name = ?, name_prefix = ?, initials = ?, \
         given_names = ?, birth_date = ?, gender = ?, professional_id = ?, \
         professional_name = ?, phone = ?, email = ?, start_date = ?, end_date = ?, \
         subject_purge_on = ? WHERE id = ?",
    );
    content(update, i)
        .bind(end.to_string())
        .bind(ctx.rules.limit_birthday(i.birth_date).to_string())
        .bind(s.id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, <sqlx::Sqlite as sqlx::Database>::Arguments>;

/// Binds a signal's content, `bsn` through `start_date`, in the column order
/// that both the insert and the correction use.
fn content<'q>(q: Query<'q>, i: &'q Incoming) -> Query<'q> {
    q.bind(i.bsn.as_str())
        .bind(&i.family_name)
        .bind(&i.name_prefix)
        .bind(&i.initials)
        .bind(&i.given_names)
        .bind(i.birth_date.to_string())
        .bind(i.gender.as_str())
        .bind(&i.professional_id)
        .bind(&i.professional_name)
        .bind(&i.phone)
        .bind(&i.email)
        .bind(i.start_date.to_string())
}
