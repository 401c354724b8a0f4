//! The index's own rules (index-api.md, "Rules the index enforces"): the
//! age limit, how long a signal may be active, how long an ended one stays
//! archived, and the date arithmetic on them. The numbers are settings of
//! the index (`--age-limit`, `--max-active-years`, `--archive-years`), not
//! constants: regions use shorter periods and the law is under revision.
//!
//! Written apart from the connector's `domain::Rules` on purpose and shares
//! no code with it: an end-to-end test checks one against the other, which it
//! could not if both were the same code.
//!
//! A birthday on 29 February falls on 28 February in a year without one: the
//! earlier reading, so that the index never holds a signal or a subject a day
//! longer than the law allows.

use chrono::{Datelike, NaiveDate};

/// The index's periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// A signal is active at most this many years from its start, and a
    /// renewal reaches at most this far from today (2 by law; 1 in some
    /// regions).
    pub max_active_years: u32,
    /// An archived signal (expired, or withdrawn as `risk_ended`) is purged
    /// this many years after it was archived.
    pub archive_years: u32,
    /// Subjects of this age or older are refused, and everything about a
    /// subject is purged on this birthday.
    pub age_limit: u32,
}

impl Default for Rules {
    /// The numbers of index-api.md: 2 years active, 5 archived, age 23.
    fn default() -> Self {
        Rules {
            max_active_years: 2,
            archive_years: 5,
            age_limit: 23,
        }
    }
}

/// The same day `years` later; 29 February becomes 28 February in a year
/// without one. Past the calendar's end: the last date there is.
pub fn add_years(date: NaiveDate, years: u32) -> NaiveDate {
    let Some(year) = i32::try_from(years)
        .ok()
        .and_then(|y| date.year().checked_add(y))
    else {
        return NaiveDate::MAX;
    };
    date.with_year(year)
        .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
        .unwrap_or(NaiveDate::MAX)
}

impl Rules {
    /// The subject's age-limit birthday: from this day on nothing about the
    /// subject may be held.
    pub fn limit_birthday(&self, birth: NaiveDate) -> NaiveDate {
        add_years(birth, self.age_limit)
    }

    /// The last day a signal may be active: the day before the age-limit
    /// birthday.
    pub fn last_day(&self, birth: NaiveDate) -> NaiveDate {
        self.limit_birthday(birth)
            .pred_opt()
            .unwrap_or(NaiveDate::MIN)
    }

    /// Whether the subject has reached the age limit on `on`.
    pub fn too_old_on(&self, birth: NaiveDate, on: NaiveDate) -> bool {
        on >= self.limit_birthday(birth)
    }

    /// The furthest an active period starting (or renewed) on `from` may
    /// reach, before the age limit is applied.
    pub fn active_cap(&self, from: NaiveDate) -> NaiveDate {
        add_years(from, self.max_active_years)
    }

    /// The day a signal archived on `archived_on` is purged.
    pub fn purge_archived_on(&self, archived_on: NaiveDate) -> NaiveDate {
        add_years(archived_on, self.archive_years)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_defaults_are_the_protocols_numbers() {
        let r = Rules::default();
        assert_eq!(
            (r.max_active_years, r.archive_years, r.age_limit),
            (2, 5, 23)
        );
    }

    #[test]
    fn years_are_added_on_the_calendar() {
        assert_eq!(add_years(d("2026-11-01"), 2), d("2028-11-01"));
        assert_eq!(add_years(d("2024-02-29"), 4), d("2028-02-29"));
        assert_eq!(add_years(d("2024-02-29"), 1), d("2025-02-28"));
        assert_eq!(add_years(d("2026-11-01"), u32::MAX), NaiveDate::MAX);
    }

    #[test]
    fn too_old_from_the_age_limit_birthday_on() {
        let r = Rules::default();
        assert!(!r.too_old_on(d("2003-11-02"), d("2026-11-01")));
        assert!(r.too_old_on(d("2003-11-01"), d("2026-11-01")));
        assert!(r.too_old_on(d("2000-01-01"), d("2026-11-01")));
        assert!(!r.too_old_on(d("2012-03-04"), d("2026-11-01")));
    }

    #[test]
    fn the_last_day_is_the_day_before_the_birthday() {
        let r = Rules::default();
        assert_eq!(r.limit_birthday(d("2005-01-10")), d("2028-01-10"));
        assert_eq!(r.last_day(d("2005-01-10")), d("2028-01-09"));
    }

    #[test]
    fn a_leap_day_birthday_comes_on_the_28th() {
        let r = Rules::default();
        assert_eq!(r.limit_birthday(d("2008-02-29")), d("2031-02-28"));
        assert_eq!(r.last_day(d("2008-02-29")), d("2031-02-27"));
        assert!(!r.too_old_on(d("2008-02-29"), d("2031-02-27")));
        assert!(r.too_old_on(d("2008-02-29"), d("2031-02-28")));
    }

    #[test]
    fn the_periods_are_settings() {
        let r = Rules {
            max_active_years: 1,
            archive_years: 3,
            age_limit: 18,
        };
        assert_eq!(r.active_cap(d("2026-11-01")), d("2027-11-01"));
        assert_eq!(r.purge_archived_on(d("2026-11-01")), d("2029-11-01"));
        assert!(r.too_old_on(d("2008-11-01"), d("2026-11-01")));
        let default = Rules::default();
        assert_eq!(default.active_cap(d("2026-11-01")), d("2028-11-01"));
        assert_eq!(default.purge_archived_on(d("2026-11-01")), d("2031-11-01"));
    }
}
