//! The one clock. Dates are calendar dates in Europe/Amsterdam; instants are
//! UTC. Tests and acceptance runs fix it (`--today`); nothing else reads time.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    System,
    /// Frozen at an instant (unit tests).
    Fixed(DateTime<Utc>),
    /// System time moved by an offset: the calendar says another day, but
    /// time passes, so that backoffs and deadlines still work (`--today`).
    Shifted(chrono::TimeDelta),
}

impl Clock {
    /// A clock whose calendar says `date`: the real clock moved by whole
    /// days, so that the time of day, and the order of instants across
    /// processes, stay real (backoffs written by one run are due in the next).
    pub fn on(date: NaiveDate) -> Clock {
        let today = Clock::System.today();
        Clock::Shifted(chrono::TimeDelta::days((date - today).num_days()))
    }

    /// A clock frozen at noon, Amsterdam time, on `date`.
    pub fn at_noon(date: NaiveDate) -> Clock {
        let noon = date.and_hms_opt(12, 0, 0).expect("noon exists");
        let instant = Amsterdam
            .from_local_datetime(&noon)
            .single()
            .expect("noon is never in a DST gap")
            .with_timezone(&Utc);
        Clock::Fixed(instant)
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => *t,
            Clock::Shifted(d) => Utc::now() + *d,
        }
    }

    /// The instant without the calendar shift of `--today`: for comparing
    /// with times the operating system wrote (a file's modification time),
    /// which are real. A fixed clock stays fixed.
    pub fn wall(&self) -> DateTime<Utc> {
        match self {
            Clock::System | Clock::Shifted(_) => Utc::now(),
            Clock::Fixed(t) => *t,
        }
    }

    /// Today's date in Europe/Amsterdam.
    pub fn today(&self) -> NaiveDate {
        self.now().with_timezone(&Amsterdam).date_naive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_is_amsterdam_time() {
        // 23:30 UTC on 31 December is already New Year's Day in Amsterdam.
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 23, 30, 0).unwrap();
        assert_eq!(
            Clock::Fixed(t).today(),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
        );
        let d = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        assert_eq!(Clock::at_noon(d).today(), d);
        assert_eq!(Clock::on(d).today(), d);
        assert!(matches!(Clock::on(d), Clock::Shifted(_)));
    }
}
