//! One batch item, checked: JSON value → `Incoming` or an item error. Pure: no
//! IO, and one bad item never fails the batch. The end-date windows are in
//! `window.rs`.
//!
//! Messages go back to the client that sent the item; even so they never
//! repeat a BSN or a name.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::bsn::Bsn;
use crate::rules::Rules;
use crate::vocab::Gender;

/// A checked signal, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub signal_id: String,
    pub bsn: Bsn,
    pub family_name: String,
    pub name_prefix: Option<String>,
    pub initials: Option<String>,
    pub given_names: Option<String>,
    pub birth_date: NaiveDate,
    pub gender: Gender,
    pub professional_id: String,
    pub professional_name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub start_date: NaiveDate,
    /// As sent; `resolve_end` turns it into the stored end date.
    pub end_date: Option<NaiveDate>,
}

/// Why an item was rejected: `code` is one of the protocol's item codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub code: &'static str,
    pub message: String,
}

/// A rejected item, with the id it carried if it carried a usable one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub signal_id: Option<String>,
    pub error: ItemError,
}

pub(super) fn err(code: &'static str, message: impl Into<String>) -> ItemError {
    ItemError {
        code,
        message: message.into(),
    }
}

const TOP: &[&str] = &[
    "signal_id",
    "subject",
    "professional",
    "start_date",
    "end_date",
];
const SUBJECT: &[&str] = &[
    "bsn",
    "family_name",
    "name_prefix",
    "initials",
    "given_names",
    "birth_date",
    "gender",
];
const PROFESSIONAL: &[&str] = &["id", "name", "phone", "email"];

/// Longest accepted text field: a name or an address, not a document.
const MAX_TEXT: usize = 200;

/// Checks one item against the protocol and the rules on `today`.
///
/// The order of the checks is the order a client would fix them in: the id,
/// then the shape (unknown, missing), then the values.
pub fn parse_item(v: &Value, today: NaiveDate, rules: &Rules) -> Result<Incoming, Rejected> {
    let obj = v.as_object();
    let signal_id = obj
        .and_then(|o| o.get("signal_id"))
        .and_then(Value::as_str)
        .filter(|s| valid_id(s))
        .map(str::to_owned);
    let reject = |error| Rejected {
        signal_id: signal_id.clone(),
        error,
    };
    let Some(obj) = obj else {
        return Err(reject(err("missing_field", "an item must be an object")));
    };
    if signal_id.is_none() {
        return Err(reject(err(
            "missing_field",
            "signal_id: required, 1-64 characters of A-Z a-z 0-9 - _",
        )));
    }
    check(obj, today, rules, signal_id.clone().unwrap_or_default()).map_err(reject)
}

/// Whether `s` can be a signal id: it appears in URL paths, so no escaping
/// games.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check(
    obj: &Map<String, Value>,
    today: NaiveDate,
    rules: &Rules,
    signal_id: String,
) -> Result<Incoming, ItemError> {
    unknown(obj, TOP, "")?;
    let subject = object(obj, "subject")?;
    let professional = object(obj, "professional")?;
    unknown(subject, SUBJECT, "subject.")?;
    unknown(professional, PROFESSIONAL, "professional.")?;

    let bsn_raw = required(subject, "bsn", "subject.")?;
    let family_name = required(subject, "family_name", "subject.")?;
    let birth_raw = required(subject, "birth_date", "subject.")?;
    let gender_raw = required(subject, "gender", "subject.")?;
    let professional_id = required(professional, "id", "professional.")?;
    let professional_name = required(professional, "name", "professional.")?;
    let phone = optional(professional, "phone", "professional.")?;
    let email = optional(professional, "email", "professional.")?;
    if phone.is_none() && email.is_none() {
        return Err(err(
            "missing_field",
            "professional.phone or professional.email: one is required",
        ));
    }
    let start_date = date(&required(obj, "start_date", "")?, "start_date")?;
    let end_date = match optional(obj, "end_date", "")? {
        Some(s) => Some(date(&s, "end_date")?),
        None => None,
    };
    let gender = Gender::parse(&gender_raw).ok_or_else(|| {
        err(
            "missing_field",
            "subject.gender: one of male, female, other, unknown",
        )
    })?;
    let bsn = Bsn::parse(&bsn_raw).map_err(|e| err("bsn_invalid", format!("subject.bsn {e}")))?;
    let birth_date = NaiveDate::parse_from_str(&birth_raw, "%Y-%m-%d").map_err(|_| {
        err(
            "birth_date_invalid",
            "subject.birth_date: not a YYYY-MM-DD date",
        )
    })?;
    if birth_date > today || birth_date > start_date {
        return Err(err(
            "birth_date_invalid",
            "subject.birth_date: after today or after start_date",
        ));
    }
    if rules.too_old_on(birth_date, start_date) || rules.too_old_on(birth_date, today) {
        return Err(err(
            "subject_too_old",
            format!("the subject is {} or older", rules.age_limit),
        ));
    }
    Ok(Incoming {
        signal_id,
        bsn,
        family_name,
        name_prefix: optional(subject, "name_prefix", "subject.")?,
        initials: optional(subject, "initials", "subject.")?,
        given_names: optional(subject, "given_names", "subject.")?,
        birth_date,
        gender,
        professional_id,
        professional_name,
        phone,
        email,
        start_date,
        end_date,
    })
}

fn unknown(obj: &Map<String, Value>, known: &[&str], prefix: &str) -> Result<(), ItemError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        // The key is the client's own text; cap it so a message stays short.
        Some(k) => Err(err(
            "unknown_field",
            format!("{prefix}{}: not a signal field", truncate(k, 40)),
        )),
        None => Ok(()),
    }
}

fn object<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a Map<String, Value>, ItemError> {
    obj.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| err("missing_field", format!("{key}: required object")))
}

/// A text field: absent, null or blank is `None`; anything but a string is
/// treated as missing, since it cannot be used.
fn optional(
    obj: &Map<String, Value>,
    key: &str,
    prefix: &str,
) -> Result<Option<String>, ItemError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.chars().count() > MAX_TEXT {
                return Err(err(
                    "missing_field",
                    format!("{prefix}{key}: longer than {MAX_TEXT} characters"),
                ));
            }
            Ok((!t.is_empty()).then(|| t.to_owned()))
        }
        Some(_) => Err(err(
            "missing_field",
            format!("{prefix}{key}: must be a string"),
        )),
    }
}

fn required(obj: &Map<String, Value>, key: &str, prefix: &str) -> Result<String, ItemError> {
    optional(obj, key, prefix)?
        .ok_or_else(|| err("missing_field", format!("{prefix}{key}: required")))
}

fn date(s: &str, key: &str) -> Result<NaiveDate, ItemError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| err("missing_field", format!("{key}: not a YYYY-MM-DD date")))
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    const TODAY: &str = "2026-11-28";

    fn item() -> Value {
        json!({
            "signal_id": "s-1",
            "subject": {"bsn": "999990019", "family_name": "Jansen",
                        "birth_date": "2012-03-04", "gender": "male"},
            "professional": {"id": "EMP-1", "name": "A. de Vries", "phone": "+31 30 1"},
            "start_date": "2026-11-01"
        })
    }

    fn code(v: &Value) -> &'static str {
        parse_item(v, d(TODAY), &Rules::default())
            .unwrap_err()
            .error
            .code
    }

    #[test]
    fn a_complete_item_passes() {
        let i = parse_item(&item(), d(TODAY), &Rules::default()).unwrap();
        assert_eq!(i.signal_id, "s-1");
        assert_eq!(i.bsn.as_str(), "999990019");
        assert_eq!(i.end_date, None);
    }

    #[test]
    fn each_item_error_has_its_code() {
        let mut v = item();
        v["subject"]["bsn"] = json!("123456783");
        assert_eq!(code(&v), "bsn_invalid");
        let mut v = item();
        v["subject"]["birth_date"] = json!("2012-02-30");
        assert_eq!(code(&v), "birth_date_invalid");
        let mut v = item();
        v["subject"]["birth_date"] = json!("2003-11-01");
        assert_eq!(code(&v), "subject_too_old");
        let mut v = item();
        v["professional"].as_object_mut().unwrap().remove("phone");
        assert_eq!(code(&v), "missing_field");
        let mut v = item();
        v["subject"]["risk"] = json!("x");
        assert_eq!(code(&v), "unknown_field");
        let mut v = item();
        v["reason"] = json!("x");
        assert_eq!(code(&v), "unknown_field");
        let mut v = item();
        v["subject"]["gender"] = json!("m");
        assert_eq!(code(&v), "missing_field");
    }

    #[test]
    fn a_missing_id_is_reported_without_one() {
        let mut v = item();
        v["signal_id"] = json!("a/b");
        let r = parse_item(&v, d(TODAY), &Rules::default()).unwrap_err();
        assert_eq!((r.signal_id, r.error.code), (None, "missing_field"));
    }

    #[test]
    fn too_old_today_counts_even_with_an_early_start() {
        let mut v = item();
        v["subject"]["birth_date"] = json!("2003-11-10");
        v["start_date"] = json!("2026-01-01");
        assert_eq!(code(&v), "subject_too_old");
    }

    #[test]
    fn messages_never_repeat_the_bsn() {
        let mut v = item();
        v["subject"]["bsn"] = json!("123456783");
        let r = parse_item(&v, d(TODAY), &Rules::default()).unwrap_err();
        assert!(
            !r.error.message.contains("123456783"),
            "{}",
            r.error.message
        );
    }
}
