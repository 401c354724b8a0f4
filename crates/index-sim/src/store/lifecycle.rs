//! The lifecycle by the sim's clock, and matching. Runs inside the caller's
//! transaction; deterministic (ordered by internal id), no timers.
//!
//! A signal *joins* matching when it is active and its start date has come:
//! links to the signals it matches are made and every involved signal's
//! organisation gets a notice naming all its current counterparts. It *leaves*
//! when it ends (withdrawal, expiry, purge): its links go and each former
//! partner gets `match_ended` naming the one that left.
//!
//! On a national index the same rules run over the regions' signals, with
//! one difference (`partners`): only signals of *different* regions are
//! matched. A match inside a region is that region's, and its organisations
//! heard of it from their regional index already.

use chrono::NaiveDate;
use serde_json::{json, Value};
// The SQL built with `format!` below joins `&'static str` constants only,
// never a value: values are always bound.
use sqlx::{AssertSqlSafe, SqliteConnection};

use super::types::{day, Ctx, StoreError};
use crate::tier::Role;

/// Applies everything the date `ctx.today` implies, in this order: subjects
/// at the age limit are purged; signals past their end date are archived;
/// archives past their period are purged; signals whose start date has come
/// join matching. Expiry goes before joining so that a clock jump over a
/// signal's whole period never makes a match that was never real.
pub(super) async fn sweep(c: &mut SqliteConnection, ctx: &Ctx) -> Result<(), StoreError> {
    let today = ctx.today.to_string();
    let aged: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM signals WHERE bsn IN \
         (SELECT bsn FROM signals WHERE subject_purge_on <= ?) ORDER BY id",
    )
    .bind(&today)
    .fetch_all(&mut *c)
    .await?;
    for (id,) in aged {
        purge(c, id, ctx).await?;
    }

    let expired: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, end_date FROM signals WHERE state = 'active' AND end_date < ? ORDER BY id",
    )
    .bind(&today)
    .fetch_all(&mut *c)
    .await?;
    for (id, end) in expired {
        // Active through its end date: archived from the day after.
        let on = day(&end)?.succ_opt().unwrap_or(ctx.today);
        leave(c, id, ctx).await?;
        archive(c, id, on, ctx).await?;
    }

    let old: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM signals WHERE state = 'archived' AND purge_on <= ? ORDER BY id",
    )
    .bind(&today)
    .fetch_all(&mut *c)
    .await?;
    for (id,) in old {
        purge(c, id, ctx).await?;
    }

    // A signal whose subject has no other signal and no family ties has
    // nobody to match, now or while the others join: it joins without links
    // or notices, whatever the order, so all such join in one statement.
    // `INDEXED BY` here and below: without statistics SQLite picks the
    // `(state, purge_on)` index and reads every active signal, twice a batch.
    sqlx::query(
        "UPDATE signals INDEXED BY signals_waiting SET joined = 1 WHERE state = 'active' AND joined = 0 \
         AND start_date <= ? \
         AND NOT EXISTS (SELECT 1 FROM signals o WHERE o.bsn = signals.bsn AND o.id <> signals.id) \
         AND NOT EXISTS (SELECT 1 FROM families f WHERE f.bsn = signals.bsn)",
    )
    .bind(&today)
    .execute(&mut *c)
    .await?;
    let starting: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM signals INDEXED BY signals_waiting \
         WHERE state = 'active' AND joined = 0 AND start_date <= ? ORDER BY id",
    )
    .bind(&today)
    .fetch_all(&mut *c)
    .await?;
    for (id,) in starting {
        join(c, id, ctx).await?;
    }
    Ok(())
}

/// Ends a signal for good, keeping only its id (see `tombstones`): its
/// matches end, its notices go.
pub(super) async fn purge(c: &mut SqliteConnection, id: i64, ctx: &Ctx) -> Result<(), StoreError> {
    leave(c, id, ctx).await?;
    let Some((org, signal_id)) =
        sqlx::query_as::<_, (String, String)>("SELECT org, signal_id FROM signals WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?
    else {
        return Ok(());
    };
    sqlx::query("DELETE FROM notices WHERE org = ? AND signal_id = ?")
        .bind(&org)
        .bind(&signal_id)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT OR IGNORE INTO tombstones (org, signal_id, purged_on) VALUES (?, ?, ?)")
        .bind(&org)
        .bind(&signal_id)
        .bind(ctx.today.to_string())
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM signals WHERE id = ?")
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Makes a signal inactive and starts its archive period on `on`.
pub(super) async fn archive(
    c: &mut SqliteConnection,
    id: i64,
    on: NaiveDate,
    ctx: &Ctx,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE signals SET state = 'archived', joined = 0, archived_on = ?, purge_on = ? \
         WHERE id = ?",
    )
    .bind(on.to_string())
    .bind(ctx.rules.purge_archived_on(on).to_string())
    .bind(id)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Takes a signal out of matching; every former partner gets `match_ended`.
pub(super) async fn leave(c: &mut SqliteConnection, id: i64, ctx: &Ctx) -> Result<(), StoreError> {
    let partners: Vec<(i64,)> = sqlx::query_as(
        "SELECT CASE WHEN a = ?1 THEN b ELSE a END AS p FROM links WHERE a = ?1 OR b = ?1 \
         ORDER BY p",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await?;
    if !partners.is_empty() {
        let gone = counterpart(c, id).await?;
        sqlx::query("DELETE FROM links WHERE a = ?1 OR b = ?1")
            .bind(id)
            .execute(&mut *c)
            .await?;
        for (p,) in partners {
            notify(c, p, "match_ended", vec![gone.clone()], ctx).await?;
        }
    }
    sqlx::query("UPDATE signals SET joined = 0 WHERE id = ?")
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Puts a signal into matching: links it to the joined signals of other
/// professionals on the same subject (`match`) and on the subject's siblings
/// (`family_match`), then tells every signal involved.
async fn join(c: &mut SqliteConnection, id: i64, ctx: &Ctx) -> Result<(), StoreError> {
    let (org, origin, bsn, professional): (String, String, String, String) =
        sqlx::query_as("SELECT org, origin, bsn, professional_id FROM signals WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *c)
            .await?;
    let who = partners(ctx.role);
    let same: Vec<(i64,)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT s.id FROM signals s WHERE s.joined = 1 AND s.bsn = ?1 AND s.id <> ?5 \
         AND {who} ORDER BY s.id"
    )))
    .bind(&bsn)
    .bind(&org)
    .bind(&origin)
    .bind(&professional)
    .bind(id)
    .fetch_all(&mut *c)
    .await?;
    let siblings: Vec<(i64,)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT DISTINCT s.id FROM signals s JOIN families f ON f.bsn = s.bsn \
         WHERE s.joined = 1 AND s.bsn <> ?1 \
         AND f.family_id IN (SELECT family_id FROM families WHERE bsn = ?1) \
         AND {who} ORDER BY s.id"
    )))
    .bind(&bsn)
    .bind(&org)
    .bind(&origin)
    .bind(&professional)
    .fetch_all(&mut *c)
    .await?;
    sqlx::query("UPDATE signals SET joined = 1 WHERE id = ?")
        .bind(id)
        .execute(&mut *c)
        .await?;
    for (kind, partners) in [("match", same), ("family_match", siblings)] {
        if partners.is_empty() {
            continue;
        }
        for &(p,) in &partners {
            sqlx::query("INSERT OR IGNORE INTO links (a, b, kind) VALUES (?, ?, ?)")
                .bind(id.min(p))
                .bind(id.max(p))
                .bind(kind)
                .execute(&mut *c)
                .await?;
        }
        let everyone = std::iter::once(id).chain(partners.iter().map(|&(p,)| p));
        for s in everyone {
            let names = counterparts(c, s, kind).await?;
            notify(c, s, kind, names, ctx).await?;
        }
    }
    Ok(())
}

/// The condition on a candidate `s` for a signal of organisation `?2`
/// (origin `?3`) and professional `?4`: another professional, and on a
/// national index also another region. A professional is the organisation
/// plus its professional id; on a national index the organisation is the
/// origin, whichever region it registered in.
fn partners(role: Role) -> &'static str {
    match role {
        // `origin` is '' throughout a regional index: the organisation alone.
        Role::Regional => "NOT (s.org = ?2 AND s.origin = ?3 AND s.professional_id = ?4)",
        Role::National => "s.org <> ?2 AND NOT (s.origin = ?3 AND s.professional_id = ?4)",
    }
}

/// The organisation a counterpart belongs to: on a national index the
/// origin, not the region that forwarded it.
const ORGANISATION: &str = "CASE s.origin WHEN '' THEN s.org ELSE s.origin END";

/// organisation, professional id, name, phone, email.
type ProfessionalRow = (String, String, String, Option<String>, Option<String>);

/// The professionals linked to signal `id` by `kind`, once each, in the
/// order their signals were registered.
async fn counterparts(
    c: &mut SqliteConnection,
    id: i64,
    kind: &str,
) -> Result<Vec<Value>, StoreError> {
    let rows: Vec<ProfessionalRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {ORGANISATION}, s.professional_id, s.professional_name, s.phone, s.email \
         FROM links l JOIN signals s ON s.id = CASE WHEN l.a = ?1 THEN l.b ELSE l.a END \
         WHERE (l.a = ?1 OR l.b = ?1) AND l.kind = ?2 ORDER BY s.id"
    )))
    .bind(id)
    .bind(kind)
    .fetch_all(&mut *c)
    .await?;
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for (org, pid, name, phone, email) in rows {
        if seen.contains(&(org.clone(), pid.clone())) {
            continue;
        }
        out.push(counterpart_json(&org, &name, phone, email));
        seen.push((org, pid));
    }
    Ok(out)
}

async fn counterpart(c: &mut SqliteConnection, id: i64) -> Result<Value, StoreError> {
    let (org, name, phone, email): (String, String, Option<String>, Option<String>) =
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {ORGANISATION}, s.professional_name, s.phone, s.email FROM signals s \
             WHERE s.id = ?"
        )))
        .bind(id)
        .fetch_one(&mut *c)
        .await?;
    Ok(counterpart_json(&org, &name, phone, email))
}

/// A counterpart as notices name it: the organisation (the sim knows no
/// better name than the code) and the professional's contact data, nothing
/// about the involvement.
fn counterpart_json(org: &str, name: &str, phone: Option<String>, email: Option<String>) -> Value {
    json!({
        "organisation": {"code": org, "name": org},
        "professional": {"name": name, "phone": phone, "email": email},
    })
}

/// Adds a notice for the organisation that owns signal `id`.
async fn notify(
    c: &mut SqliteConnection,
    id: i64,
    kind: &str,
    counterparts: Vec<Value>,
    ctx: &Ctx,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notices (notice_id, org, signal_id, kind, created_at, counterparts) \
         SELECT ?, org, signal_id, ?, ?, ? FROM signals WHERE id = ?",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(kind)
    .bind(ctx.now.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    .bind(Value::Array(counterparts).to_string())
    .bind(id)
    .execute(&mut *c)
    .await?;
    Ok(())
}
