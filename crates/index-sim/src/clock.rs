//! The index's own clock: its date is a calendar date in Europe/Amsterdam,
//! and instants (a notice's `created_at`) are UTC. `--clock` and
//! `POST /sim/clock` move the calendar by whole days; time still runs, so
//! that notices made one after the other keep their order and a slow answer
//! still takes its time. Nothing else in the index reads the time of day.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Europe::Amsterdam;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    /// Whole days added to the system's time; 0 without `--clock`.
    shift: TimeDelta,
}

impl Clock {
    /// The system's date and time.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock whose calendar in Amsterdam says `date`: the system clock
    /// moved by whole days.
    pub fn on(date: NaiveDate) -> Clock {
        let days = (date - Clock::system().today()).num_days();
        Clock {
            shift: TimeDelta::days(days),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.shift
    }

    /// The index's today: the date in Europe/Amsterdam.
    pub fn today(&self) -> NaiveDate {
        self.now().with_timezone(&Amsterdam).date_naive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_date_is_today_and_time_still_runs() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let c = Clock::on(date);
        assert_eq!(c.today(), date);
        let a = c.now();
        assert!(c.now() >= a);
    }
}
