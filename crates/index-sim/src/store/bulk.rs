//! The fast path of a batch: an initial load or a day's new registrations
//! are batches of signals the index has never seen. For those, three
//! set-based statements replace four per item, with the same outcome item
//! for item as the sequential path (`write::apply`).
//!
//! A batch qualifies only when no item can affect another's outcome: every
//! checked item has its own `signal_id` and its own (professional, subject),
//! and none of the ids is stored or purged. Then each item's outcome depends
//! only on the state before the batch, and order no longer matters. Anything
//! else (a correction, a resend, a repeat inside the batch) takes the
//! sequential path.

use std::collections::{HashMap, HashSet};

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

// `ItemResult` comes from the leaf `types.rs`, not from `write.rs`, which
// calls this module: the two no longer import each other.
use super::types::{Ctx, ItemResult, StoreError};
use crate::incoming::{Incoming, Rejected};
use crate::window::resolve_end;

/// Rows per multi-row INSERT: 18 values each, well under SQLite's 32,766
/// bound variables.
const INSERT_ROWS: usize = 200;

/// Applies the batch set-based if it qualifies; `None` leaves it to the
/// sequential path, with nothing changed.
pub(super) async fn try_fresh(
    c: &mut SqliteConnection,
    ctx: &Ctx,
    org: &str,
    items: &[Result<Incoming, Rejected>],
) -> Result<Option<Vec<ItemResult>>, StoreError> {
    let checked: Vec<&Incoming> = items.iter().filter_map(|i| i.as_ref().ok()).collect();
    let mut ids = HashSet::with_capacity(checked.len());
    let mut pairs = HashSet::with_capacity(checked.len());
    for i in &checked {
        if !ids.insert(i.signal_id.as_str())
            || !pairs.insert((i.professional_id.as_str(), i.bsn.as_str()))
        {
            return Ok(None);
        }
    }
    if checked.is_empty() || any_known(c, org, &checked).await? {
        return Ok(None);
    }
    let taken = active_pairs(c, org, &checked).await?;

    let mut out = Vec::with_capacity(items.len());
    let mut new = Vec::with_capacity(checked.len());
    for item in items {
        out.push(match item {
            Err(r) => ItemResult::Rejected {
                signal_id: r.signal_id.clone(),
                error: r.error.clone(),
            },
            Ok(i) => {
                let sid = i.signal_id.clone();
                match resolve_end(&ctx.rules, i, None) {
                    Err(error) => ItemResult::Rejected {
                        signal_id: Some(sid),
                        error,
                    },
                    Ok(end) => match taken.get(&(i.professional_id.as_str(), i.bsn.as_str())) {
                        Some(existing) => ItemResult::Conflict {
                            signal_id: sid,
                            existing: existing.clone(),
                        },
                        None => {
                            new.push((i, end));
                            ItemResult::Created(sid)
                        }
                    },
                }
            }
        });
    }
    for chunk in new.chunks(INSERT_ROWS) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO signals (org, origin, signal_id, bsn, family_name, name_prefix, \
             initials, given_names, birth_date, gender, professional_id, professional_name, \
             phone, email, start_date, end_date, state, subject_purge_on) ",
        );
        q.push_values(chunk, |mut row, (i, end)| {
            row.push_bind(org)
                .push_bind("")
                .push_bind(i.signal_id.as_str())
                .push_bind(i.bsn.as_str())
                .push_bind(i.family_name.as_str())
                .push_bind(i.name_prefix.as_deref())
                .push_bind(i.initials.as_deref())
                .push_bind(i.given_names.as_deref())
                .push_bind(i.birth_date.to_string())
                .push_bind(i.gender.as_str())
                .push_bind(i.professional_id.as_str())
                .push_bind(i.professional_name.as_str())
                .push_bind(i.phone.as_deref())
                .push_bind(i.email.as_deref())
                .push_bind(i.start_date.to_string())
                .push_bind(end.to_string())
                .push_bind("active")
                .push_bind(ctx.rules.limit_birthday(i.birth_date).to_string());
        });
        q.build().execute(&mut *c).await?;
    }
    Ok(Some(out))
}

/// Whether any of the ids is stored (active or archived) or purged.
async fn any_known(
    c: &mut SqliteConnection,
    org: &str,
    items: &[&Incoming],
) -> Result<bool, StoreError> {
    for table in ["signals", "tombstones"] {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT 1 FROM ");
        q.push(table)
            .push(" WHERE org = ")
            .push_bind(org)
            .push(" AND signal_id IN (");
        let mut list = q.separated(", ");
        for i in items {
            list.push_bind(i.signal_id.as_str());
        }
        q.push(") LIMIT 1");
        if q.build().fetch_optional(&mut *c).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The organisation's active signals for the items' (professional, subject)
/// pairs: a conflict for each item that names one.
async fn active_pairs<'i>(
    c: &mut SqliteConnection,
    org: &str,
    items: &[&'i Incoming],
) -> Result<HashMap<(&'i str, &'i str), String>, StoreError> {
    // One lookup in the unique index `signals_one_active` per pair: the
    // pairs are a VALUES table joined on all four of its columns. `CROSS
    // JOIN` keeps the pairs the outer loop: with bound values SQLite would
    // rather scan the organisation's signals and compare each with every pair.
    let mut q = QueryBuilder::<Sqlite>::new("WITH want (p, b) AS (");
    q.push_values(items, |mut row, i| {
        row.push_bind(i.professional_id.as_str())
            .push_bind(i.bsn.as_str());
    });
    q.push(
        ") SELECT s.professional_id, s.bsn, s.signal_id FROM want CROSS JOIN signals s \
         ON s.state = 'active' AND s.org = ",
    )
    .push_bind(org)
    .push(" AND s.origin = '' AND s.professional_id = want.p AND s.bsn = want.b");
    let rows = q.build().fetch_all(&mut *c).await?;
    let mut found = HashMap::with_capacity(rows.len());
    for r in rows {
        let (p, b): (&str, &str) = (r.get(0), r.get(1));
        // Map back to the items' own strings, so the map borrows them.
        if let Some(i) = items
            .iter()
            .find(|i| i.professional_id == p && i.bsn.as_str() == b)
        {
            found.insert((i.professional_id.as_str(), i.bsn.as_str()), r.get(2));
        }
    }
    Ok(found)
}
