//! The national tier's vocabulary, pure: which tier an index is, the ids a
//! region's signals carry at the national index, and the items of the tier
//! link (`POST /v1/tier/signals:sync`), made by the regional side and checked
//! by the national side. No IO.
//!
//! A tier item carries a signal's *state* as its region holds it ("active
//! with this content", "archived", "purged"), not the call that led there.
//! That makes the link idempotent and order-proof: re-sending a state
//! changes nothing, the latest state is all that needs to arrive, and `seq`
//! (the region's change number) lets the national index ignore a state
//! that arrives after a newer one.

use chrono::NaiveDate;
use serde_json::{json, Map, Value};

use crate::incoming::{self, err, valid_id, Incoming, Rejected};
use crate::rules::Rules;

/// Which tier an index is (`--role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Organisations register with it (`--org` per organisation); with
    /// `--upstream` it forwards their signals to a national index.
    #[default]
    Regional,
    /// Regional indexes forward to it (`--org` per region); it matches only
    /// signals of different regions.
    National,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Regional => "regional",
            Role::National => "national",
        }
    }
}

/// Longest organisation code accepted on the link: a code, not a document.
const MAX_CODE: usize = 100;

/// The id a region's signal has at the national index: the organisation's
/// code, `/`, its own signal id. The national index keys it under the
/// calling region, so the full key is (region, organisation, signal id): two
/// organisations, or two regions, with the same signal id never meet. A
/// signal id never holds `/` (`valid_id`), so the last `/` splits it again.
pub fn tier_id(organisation: &str, signal_id: &str) -> String {
    format!("{organisation}/{signal_id}")
}

/// (organisation, signal id) from a tier id; `None` if it is not one.
pub fn split_tier_id(id: &str) -> Option<(&str, &str)> {
    let (org, sid) = id.rsplit_once('/')?;
    (!org.is_empty() && valid_id(sid)).then_some((org, sid))
}

/// The state a tier item asks the national index to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierState {
    /// Active with this content; `signal_id` is the organisation's own id
    /// and `end_date` is always set (the region's stored end date).
    Active(Box<Incoming>),
    /// Ended and kept: out of matching.
    Archived,
    /// Gone for good: only the id is kept, so it can never come back.
    Purged,
}

/// One checked tier item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierItem {
    /// The organisation inside the region that made the signal.
    pub organisation: String,
    /// That organisation's own signal id.
    pub signal_id: String,
    /// The region's change number: a state with a lower number than the one
    /// applied last is stale.
    pub seq: i64,
    pub state: TierState,
}

impl TierItem {
    pub fn tier_id(&self) -> String {
        tier_id(&self.organisation, &self.signal_id)
    }
}

/// The item for an active signal. `signal` is the VI-API signal without its
/// `signal_id` (which the item carries beside the organisation).
pub fn active_item(organisation: &str, signal_id: &str, seq: i64, signal: Value) -> Value {
    json!({"organisation": organisation, "signal_id": signal_id, "seq": seq,
           "state": "active", "signal": signal})
}

/// The item for an archived (`archived`) or purged (`purged`) signal.
pub fn ended_item(organisation: &str, signal_id: &str, seq: i64, state: &str) -> Value {
    json!({"organisation": organisation, "signal_id": signal_id, "seq": seq, "state": state})
}

const ITEM: &[&str] = &["organisation", "signal_id", "seq", "state", "signal"];

/// Checks one tier item. The signal of an active item passes the same checks
/// as a VI-API signal (`incoming::parse_item`) on the national index's own
/// date and rules, except the end-date window: the region applied its own,
/// and a renewal may reach past what a new signal could.
pub fn parse_item(v: &Value, today: NaiveDate, rules: &Rules) -> Result<TierItem, Rejected> {
    let obj = v.as_object();
    let text = |key: &str| obj.and_then(|o| o.get(key)).and_then(Value::as_str);
    let signal_id = text("signal_id").filter(|s| valid_id(s)).map(str::to_owned);
    let reject = |code, message: &str| Rejected {
        signal_id: signal_id.clone(),
        error: err(code, message),
    };
    let Some(obj) = obj else {
        return Err(reject("missing_field", "an item must be an object"));
    };
    if let Some(k) = obj.keys().find(|k| !ITEM.contains(&k.as_str())) {
        let k: String = k.chars().take(40).collect();
        return Err(reject(
            "unknown_field",
            &format!("{k}: not a tier item field"),
        ));
    }
    let organisation = text("organisation")
        .map(str::trim)
        .filter(|o| !o.is_empty() && o.chars().count() <= MAX_CODE)
        .filter(|o| !o.chars().any(char::is_control));
    let Some(organisation) = organisation else {
        return Err(reject("missing_field", "organisation: required code"));
    };
    let Some(sid) = signal_id.clone() else {
        return Err(reject(
            "missing_field",
            "signal_id: required, 1-64 characters of A-Z a-z 0-9 - _",
        ));
    };
    let Some(seq) = obj.get("seq").and_then(Value::as_i64).filter(|n| *n > 0) else {
        return Err(reject("missing_field", "seq: required positive number"));
    };
    let state = match (text("state"), obj.get("signal")) {
        (Some("active"), Some(Value::Object(signal))) => {
            TierState::Active(Box::new(active(signal, &sid, today, rules)?))
        }
        (Some("archived"), None) => TierState::Archived,
        (Some("purged"), None) => TierState::Purged,
        (Some("active"), _) => return Err(reject("missing_field", "signal: required object")),
        (Some("archived" | "purged"), Some(_)) => {
            return Err(reject("unknown_field", "signal: only for an active item"))
        }
        _ => {
            return Err(reject(
                "missing_field",
                "state: one of active, archived, purged",
            ))
        }
    };
    Ok(TierItem {
        organisation: organisation.to_owned(),
        signal_id: sid,
        seq,
        state,
    })
}

fn active(
    signal: &Map<String, Value>,
    signal_id: &str,
    today: NaiveDate,
    rules: &Rules,
) -> Result<Incoming, Rejected> {
    if signal.contains_key("signal_id") {
        return Err(Rejected {
            signal_id: Some(signal_id.to_owned()),
            error: err("unknown_field", "signal.signal_id: the item carries it"),
        });
    }
    let mut whole = signal.clone();
    whole.insert("signal_id".into(), Value::String(signal_id.to_owned()));
    let i = incoming::parse_item(&Value::Object(whole), today, rules)?;
    let fail = |code, message: &str| Rejected {
        signal_id: Some(signal_id.to_owned()),
        error: err(code, message),
    };
    match i.end_date {
        None => Err(fail(
            "missing_field",
            "signal.end_date: required on the tier link",
        )),
        Some(end) if end < i.start_date => Err(fail(
            "end_date_too_far",
            "signal.end_date: before start_date",
        )),
        Some(_) => Ok(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn content() -> Value {
        json!({
            "subject": {"bsn": "999990019", "family_name": "Jansen", "name_prefix": null,
                        "initials": null, "given_names": null,
                        "birth_date": "2012-03-04", "gender": "male"},
            "professional": {"id": "EMP-1", "name": "A. de Vries", "phone": "+31 30 1",
                             "email": null},
            "start_date": "2026-11-01",
            "end_date": "2029-06-01"
        })
    }

    fn parse(v: &Value) -> Result<TierItem, Rejected> {
        parse_item(v, d("2026-11-28"), &Rules::default())
    }

    #[test]
    fn tier_ids_split_at_the_last_slash() {
        assert_eq!(tier_id("ORG-A", "s-1"), "ORG-A/s-1");
        assert_eq!(split_tier_id("ORG/A/s-1"), Some(("ORG/A", "s-1")));
        assert_eq!(split_tier_id("s-1"), None);
        assert_eq!(split_tier_id("/s-1"), None);
        assert_eq!(split_tier_id("ORG-A/"), None);
    }

    #[test]
    fn what_the_region_makes_the_nation_reads() {
        let item = parse(&active_item("ORG-A", "s-1", 7, content())).unwrap();
        assert_eq!((item.tier_id(), item.seq), ("ORG-A/s-1".to_owned(), 7));
        let TierState::Active(i) = item.state else {
            panic!("not active")
        };
        // A renewed end date past start + 2 years is the region's to decide.
        assert_eq!(i.end_date, Some(d("2029-06-01")));
        assert_eq!(i.signal_id, "s-1");
        let gone = parse(&ended_item("ORG-A", "s-1", 8, "purged")).unwrap();
        assert_eq!(gone.state, TierState::Purged);
        let ended = parse(&ended_item("ORG-A", "s-1", 9, "archived")).unwrap();
        assert_eq!(ended.state, TierState::Archived);
    }

    #[test]
    fn bad_items_are_refused_one_by_one() {
        let code = |v: &Value| parse(v).unwrap_err().error.code;
        let mut v = active_item("ORG-A", "s-1", 7, content());
        v["signal"]["subject"]["bsn"] = json!("123456783");
        assert_eq!(code(&v), "bsn_invalid");
        let mut v = active_item("ORG-A", "s-1", 7, content());
        v["signal"].as_object_mut().unwrap().remove("end_date");
        assert_eq!(code(&v), "missing_field");
        let mut v = active_item("ORG-A", "s-1", 7, content());
        v["reason"] = json!("x");
        assert_eq!(code(&v), "unknown_field");
        assert_eq!(
            code(&ended_item("ORG-A", "s-1", 0, "purged")),
            "missing_field"
        );
        assert_eq!(code(&ended_item("", "s-1", 1, "purged")), "missing_field");
        assert_eq!(
            code(&ended_item("ORG-A", "a/b", 1, "purged")),
            "missing_field"
        );
        assert_eq!(
            code(&ended_item("ORG-A", "s-1", 1, "gone")),
            "missing_field"
        );
        let mut v = ended_item("ORG-A", "s-1", 1, "archived");
        v["signal"] = content();
        assert_eq!(code(&v), "unknown_field");
    }
}
