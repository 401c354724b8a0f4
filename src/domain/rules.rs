//! The law's numbers and the date arithmetic built on them. The numbers are
//! settings (`[rules]`): regions differ and the law is under revision.
//!
//! Birthdays on 29 February fall on 28 February in other years. That is the
//! earlier of the two readings, so every cap errs on the side of ending a
//! signal sooner.

use chrono::{Datelike, NaiveDate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// A signal is active this many years at most (2 by law, 1 in some regions).
    pub max_active_years: u32,
    /// Ended signals stay archived this long before they are destroyed.
    pub archive_years: u32,
    /// Nothing is held about anyone of this age or older.
    pub age_limit: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            max_active_years: 2,
            archive_years: 5,
            age_limit: 23,
        }
    }
}

/// `date` plus whole years; 29 February becomes 28 February. What adding
/// 12 × `years` months gives (`same_as_adding_months`), by setting the year:
/// chrono's month arithmetic was the most of the rules' cost per record.
pub fn add_years(date: NaiveDate, years: u32) -> NaiveDate {
    let Some(year) = i32::try_from(years)
        .ok()
        .and_then(|y| date.year().checked_add(y))
    else {
        return NaiveDate::MAX;
    };
    // `with_year` refuses only 29 February in a common year, and a year
    // out of chrono's range (where 28 February is out of range too).
    date.with_year(year)
        .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
        .unwrap_or(NaiveDate::MAX)
}

/// Age in whole years on `on`.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> u32 {
    if on < birth {
        return 0;
    }
    let mut years = (on.year() - birth.year()) as u32;
    if add_years(birth, years) > on {
        years -= 1;
    }
    years
}

impl Rules {
    /// The last day a signal may be active: the day before the birthday at
    /// `age_limit`.
    pub fn last_day(&self, birth: NaiveDate) -> NaiveDate {
        add_years(birth, self.age_limit)
            .pred_opt()
            .unwrap_or(NaiveDate::MIN)
    }

    /// The end date sent: the earliest of the source's own end date,
    /// `start + max_active_years` and the day before the age limit.
    pub fn capped_end(
        &self,
        start: NaiveDate,
        mapped_end: Option<NaiveDate>,
        birth: NaiveDate,
    ) -> NaiveDate {
        let mut end = add_years(start, self.max_active_years).min(self.last_day(birth));
        if let Some(m) = mapped_end {
            end = end.min(m);
        }
        end
    }

    /// Whether a subject is too old to be registered on `start`.
    pub fn too_old_on(&self, birth: NaiveDate, start: NaiveDate) -> bool {
        age_on(birth, start) >= self.age_limit
    }
}

/// Who must be told of a new registration (Jeugdwet): parents under 12, parents
/// and the youth from 12 to 15, only the youth from 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Parents,
    ParentsAndYouth,
    Youth,
}

impl Audience {
    pub fn for_age(age: u32) -> Audience {
        match age {
            0..=11 => Audience::Parents,
            12..=15 => Audience::ParentsAndYouth,
            _ => Audience::Youth,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Parents => "parents",
            Audience::ParentsAndYouth => "parents_and_youth",
            Audience::Youth => "youth",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn same_as_adding_months() {
        use chrono::Months;
        let months = |date: NaiveDate, years: u32| {
            date.checked_add_months(Months::new(years.saturating_mul(12)))
                .unwrap_or(NaiveDate::MAX)
        };
        let mut dates: Vec<NaiveDate> = d("2011-12-25").iter_days().take(1600).collect();
        dates.extend([
            NaiveDate::MIN,
            NaiveDate::MAX,
            d("2000-02-29"),
            d("1900-02-28"),
        ]);
        for date in dates {
            for years in [0, 1, 2, 4, 5, 23, 100, 300_000, u32::MAX] {
                assert_eq!(
                    add_years(date, years),
                    months(date, years),
                    "{date} + {years}"
                );
            }
        }
    }

    #[test]
    fn ages_turn_on_the_birthday() {
        assert_eq!(age_on(d("2012-03-04"), d("2024-03-03")), 11);
        assert_eq!(age_on(d("2012-03-04"), d("2024-03-04")), 12);
        assert_eq!(age_on(d("2012-03-04"), d("2011-01-01")), 0);
    }

    #[test]
    fn leap_day_birthdays_come_on_the_28th() {
        assert_eq!(age_on(d("2008-02-29"), d("2031-02-28")), 23);
        assert_eq!(age_on(d("2008-02-29"), d("2031-02-27")), 22);
        assert_eq!(Rules::default().last_day(d("2008-02-29")), d("2031-02-27"));
    }

    #[test]
    fn the_end_is_the_earliest_of_three() {
        let r = Rules::default();
        // Two years from the start.
        assert_eq!(
            r.capped_end(d("2026-11-01"), None, d("2012-03-04")),
            d("2028-11-01")
        );
        // The day before the 23rd birthday.
        assert_eq!(
            r.capped_end(d("2026-11-01"), None, d("2004-06-10")),
            d("2027-06-09")
        );
        // The source's own end.
        assert_eq!(
            r.capped_end(d("2026-11-01"), Some(d("2027-01-01")), d("2012-03-04")),
            d("2027-01-01")
        );
        // A region with one year.
        let one = Rules {
            max_active_years: 1,
            ..r
        };
        assert_eq!(
            one.capped_end(d("2026-11-01"), None, d("2012-03-04")),
            d("2027-11-01")
        );
    }

    #[test]
    fn too_old_from_the_23rd_birthday() {
        let r = Rules::default();
        assert!(!r.too_old_on(d("2003-11-02"), d("2026-11-01")));
        assert!(r.too_old_on(d("2003-11-01"), d("2026-11-01")));
    }

    #[test]
    fn audiences_change_on_the_12th_and_16th_birthdays() {
        assert_eq!(Audience::for_age(11), Audience::Parents);
        assert_eq!(Audience::for_age(12), Audience::ParentsAndYouth);
        assert_eq!(Audience::for_age(15), Audience::ParentsAndYouth);
        assert_eq!(Audience::for_age(16), Audience::Youth);
    }
}
