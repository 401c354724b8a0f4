//! The date windows the index allows: where a signal's end date may fall,
//! and how far a renewal may reach. Pure, so that the store only applies them.

use chrono::NaiveDate;

use crate::incoming::{err, Incoming, ItemError};
use crate::rules::Rules;

/// The end date to store for an item.
///
/// A new signal defaults to, and may go at most to, the earlier of
/// `start + max_active_years` and the day before the age-limit birthday. A
/// correction of a stored signal keeps its stored end when it names none (a
/// re-send must not undo a renewal) and may name one up to the later of that
/// cap and the stored end (which a renewal may have moved), still never past
/// the day before the age-limit birthday. An end before the start is outside
/// the window too: `end_date_too_far`.
pub fn resolve_end(
    rules: &Rules,
    item: &Incoming,
    stored_end: Option<NaiveDate>,
) -> Result<NaiveDate, ItemError> {
    let last = rules.last_day(item.birth_date);
    let cap = rules.active_cap(item.start_date);
    let max = stored_end.map_or(cap, |s| cap.max(s)).min(last);
    let end = match (item.end_date, stored_end) {
        (Some(e), _) => e,
        (None, Some(s)) => s.min(last),
        (None, None) => max,
    };
    if end > max {
        return Err(err(
            "end_date_too_far",
            format!("end_date: at most {max} for this signal"),
        ));
    }
    if end < item.start_date {
        return Err(err("end_date_too_far", "end_date: before start_date"));
    }
    Ok(end)
}

/// The latest date a renewal may reach on `today`.
pub fn renew_max(rules: &Rules, today: NaiveDate, birth: NaiveDate) -> NaiveDate {
    rules.active_cap(today).min(rules.last_day(birth))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incoming::parse_item;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    const TODAY: &str = "2026-11-28";

    /// A signal starting 2026-11-01 for a subject born on `birth`.
    fn incoming(end: Option<&str>, birth: &str) -> Incoming {
        let v = json!({
            "signal_id": "s-1",
            "subject": {"bsn": "999990019", "family_name": "Jansen",
                        "birth_date": birth, "gender": "male"},
            "professional": {"id": "EMP-1", "name": "A. de Vries", "phone": "+31 30 1"},
            "start_date": "2026-11-01"
        });
        let mut i = parse_item(&v, d(TODAY), &Rules::default()).unwrap();
        i.end_date = end.map(d);
        i
    }

    #[test]
    fn end_defaults_to_the_earlier_cap() {
        let r = Rules::default();
        assert_eq!(
            resolve_end(&r, &incoming(None, "2012-03-04"), None),
            Ok(d("2028-11-01"))
        );
        assert_eq!(
            resolve_end(&r, &incoming(None, "2005-01-10"), None),
            Ok(d("2028-01-09"))
        );
        let e = resolve_end(&r, &incoming(Some("2028-11-02"), "2012-03-04"), None);
        assert_eq!(e.unwrap_err().code, "end_date_too_far");
        let e = resolve_end(&r, &incoming(Some("2026-10-31"), "2012-03-04"), None);
        assert_eq!(e.unwrap_err().code, "end_date_too_far");
    }

    #[test]
    fn a_resend_keeps_a_renewed_end() {
        let r = Rules::default();
        let renewed = Some(d("2029-06-01"));
        assert_eq!(
            resolve_end(&r, &incoming(None, "2012-03-04"), renewed),
            Ok(d("2029-06-01"))
        );
        assert_eq!(
            resolve_end(&r, &incoming(Some("2029-06-01"), "2012-03-04"), renewed),
            Ok(d("2029-06-01"))
        );
        let e = resolve_end(&r, &incoming(Some("2029-06-02"), "2012-03-04"), renewed);
        assert_eq!(e.unwrap_err().code, "end_date_too_far");
    }

    #[test]
    fn renewals_stop_before_the_age_limit() {
        let r = Rules::default();
        assert_eq!(renew_max(&r, d(TODAY), d("2012-03-04")), d("2028-11-28"));
        assert_eq!(renew_max(&r, d(TODAY), d("2005-01-10")), d("2028-01-09"));
    }
}
