//! Cron schedules read on Amsterdam's wall clock, answered in UTC instants.
//!
//! Owns: when a scheduled job (notices, reconcile, an API poll) fires next,
//! whether one was missed while the daemon was down, and how the next run
//! reads for `visync status`. It takes instants as arguments (the caller
//! asks the one `Clock`), so it never reads the time itself and is pure.
//! Must not: run jobs, sleep, or know where `last_run` is kept.
//!
//! # Daylight saving time
//!
//! The `cron` crate matches wall-clock fields. Asked in `Europe/Amsterdam`
//! (`Schedule::after`), it does this (pinned by
//! `cron_crate_natively_skips_the_gap_and_goes_back_in_the_repeat`):
//! - a wall-clock time in the spring-forward gap (29 March 2026, 02:00 →
//!   03:00) is skipped: "0 30 2 * * *" does not fire that day at all;
//! - a wall-clock time in the repeated autumn hour (25 October 2026, 03:00 →
//!   02:00) is yielded twice by one iterator, interleaved, so an every-five-
//!   minutes iterator goes back and forth in time; asked afresh from an
//!   instant, it answers the first pass only, so it skips the second pass
//!   (a 65-minute hole) and, from inside the second pass, answers an instant
//!   in the past.
//!
//! So this module uses the crate only to list matching wall-clock times (it
//! evaluates them in UTC, a zone without DST, as a plain calendar) and decides
//! itself which instant each one means, the way cronie does:
//! - a **time-of-day** schedule (it names its hours, e.g. "0 30 2 * * *")
//!   runs once per matching wall-clock time: in the gap it runs at the end of
//!   the gap (03:00 CEST), so no day loses its run; in the repeated hour it
//!   runs on the first pass only, so no day runs twice;
//! - a **periodic** schedule (every hour of the day matches, e.g.
//!   "0 */5 * * * *") follows real time: it fires whenever the wall clock
//!   shows a matching time, in both passes of the repeated hour and not in
//!   the gap, so its fires stay the same real time apart across both changes.

use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;
use chrono_tz::Tz;
use cron::TimeUnitSpec;

/// How far a matching wall-clock time can lie from the wall-clock time of
/// the instant it fires at, and from its neighbours: a one-hour gap plus a
/// one-hour repeat, Amsterdam's shifts since 1945. Bounds the search in
/// [`Cron::next_after`].
const REACH: TimeDelta = TimeDelta::hours(2);

/// A validated cron schedule (config already parsed it), read in
/// Europe/Amsterdam time.
#[derive(Debug, Clone)]
pub struct Cron {
    schedule: cron::Schedule,
    /// Decided once from the schedule's hours; see the module header.
    kind: Kind,
}

/// What a wall-clock time means across a DST change (module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Names its hours: once per wall-clock time, gap times at the gap's end.
    TimeOfDay,
    /// Matches every hour: real time, both passes of the repeat, not the gap.
    Periodic,
}

impl From<cron::Schedule> for Cron {
    fn from(schedule: cron::Schedule) -> Cron {
        Cron::new(schedule)
    }
}

impl Cron {
    pub fn new(schedule: cron::Schedule) -> Cron {
        let kind = if schedule.hours().is_all() {
            Kind::Periodic
        } else {
            Kind::TimeOfDay
        };
        Cron { schedule, kind }
    }

    /// The expression as written in the config, for messages.
    pub fn source(&self) -> &str {
        self.schedule.source()
    }

    /// The next fire time strictly after `after`, or `None` when the
    /// schedule never fires again (a schedule limited to past years).
    ///
    /// Stateless: the answer depends on `after` only, so a daemon that
    /// restarts, or asks twice, gets the same instant.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Fires are not in wall-clock order inside the repeated hour, so look
        // at every matching wall-clock time that could fire after `after`
        // and keep the earliest fire, stopping once no later wall-clock time
        // can beat it.
        let start = wall(after) - REACH;
        let mut best: Option<DateTime<Utc>> = None;
        for time in self.wall_times_after(start) {
            if best.is_some_and(|b| time > wall(b) + REACH) {
                break;
            }
            for fire in self.fires_of(time).into_iter().flatten() {
                if fire > after && best.is_none_or(|b| fire < b) {
                    best = Some(fire);
                }
            }
        }
        best
    }

    /// Whether a fire was missed while the daemon was down: one fell in
    /// `(last_run, now]`. However many were missed, the job runs once.
    ///
    /// `last_run` is when the job last started (at or after the fire it ran
    /// for). A job that never ran has missed nothing: it waits for its first
    /// fire, so a fresh install does not run a nightly job in the afternoon.
    pub fn due_at_start(&self, last_run: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        let Some(last) = last_run else {
            return false;
        };
        self.next_after(last).is_some_and(|fire| fire <= now)
    }

    /// When the job should run next: `now` if a fire was missed, otherwise
    /// the next fire after `now` (`None`: never again).
    pub fn next_run(
        &self,
        last_run: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if self.due_at_start(last_run, now) {
            Some(now)
        } else {
            self.next_after(now)
        }
    }

    /// The next fire after `now` on Amsterdam's clock, for `visync status`:
    /// "2026-12-03 02:30 CET".
    pub fn next_local(&self, now: DateTime<Utc>) -> Option<String> {
        self.next_after(now).map(format_local)
    }

    /// The schedule's matching wall-clock times after `start`, in order. UTC
    /// has no DST, so evaluating the schedule there lists every wall-clock
    /// time once, including those Amsterdam skips or repeats.
    fn wall_times_after(&self, start: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> + '_ {
        self.schedule.after(&start.and_utc()).map(|t| t.naive_utc())
    }

    /// The instants at which a matching wall-clock time fires (none, one or
    /// two), by the rules in the module header.
    fn fires_of(&self, time: NaiveDateTime) -> [Option<DateTime<Utc>>; 2] {
        let utc = |t: DateTime<Tz>| t.with_timezone(&Utc);
        match (Amsterdam.from_local_datetime(&time), self.kind) {
            (chrono::LocalResult::Single(t), _) => [Some(utc(t)), None],
            (chrono::LocalResult::Ambiguous(first, _), Kind::TimeOfDay) => [Some(utc(first)), None],
            (chrono::LocalResult::Ambiguous(first, second), Kind::Periodic) => {
                [Some(utc(first)), Some(utc(second))]
            }
            (chrono::LocalResult::None, Kind::TimeOfDay) => [Some(end_of_gap(time)), None],
            (chrono::LocalResult::None, Kind::Periodic) => [None, None],
        }
    }
}

/// Amsterdam's wall-clock time at an instant.
fn wall(instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&Amsterdam).naive_local()
}

/// The first instant at which Amsterdam's clock shows `time` or later: for a
/// time inside the spring-forward gap, the moment the clock jumps (03:00
/// CEST). chrono has no such call, so bisect over whole seconds (cron times
/// and transitions are whole seconds).
fn end_of_gap(time: NaiveDateTime) -> DateTime<Utc> {
    // Amsterdam's offset lies in [0, 3h), so the clock shows less than `time`
    // at `time - 3h` (read as UTC) and at least `time` at `time` (read as
    // UTC); in between it only moves forward, as a repeat is months away.
    let mut before = (time - TimeDelta::hours(3)).and_utc().timestamp();
    let mut at_or_after = time.and_utc().timestamp();
    while at_or_after - before > 1 {
        let mid = before + (at_or_after - before) / 2;
        if wall(instant_at(mid)) >= time {
            at_or_after = mid;
        } else {
            before = mid;
        }
    }
    instant_at(at_or_after)
}

fn instant_at(timestamp: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(timestamp, 0).expect("a timestamp near a cron time is in range")
}

/// "2026-12-03 02:30 CET": Amsterdam's clock with its abbreviation, so that
/// a reader sees which of the two hours is meant.
fn format_local(instant: DateTime<Utc>) -> String {
    instant
        .with_timezone(&Amsterdam)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn cron(expr: &str) -> Cron {
        Cron::new(cron::Schedule::from_str(expr).expect("a valid expression"))
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// The first `n` fires after `start`, each asked afresh.
    fn fires(c: &Cron, start: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        std::iter::successors(c.next_after(start), |&t| c.next_after(t))
            .take(n)
            .collect()
    }

    fn gaps_in_minutes(fires: &[DateTime<Utc>]) -> Vec<i64> {
        fires
            .windows(2)
            .map(|w| (w[1] - w[0]).num_minutes())
            .collect()
    }

    /// Why this module does not just call `Schedule::after` in Amsterdam:
    /// if a crate upgrade changes this, the module header needs revisiting.
    #[test]
    fn cron_crate_natively_skips_the_gap_and_goes_back_in_the_repeat() {
        let daily = cron::Schedule::from_str("0 30 2 * * *").unwrap();
        let from = utc(2026, 3, 28, 12, 0).with_timezone(&Amsterdam);
        let next = daily.after(&from).next().unwrap().with_timezone(&Utc);
        assert_eq!(next, utc(2026, 3, 30, 0, 30), "29 March has no run");

        let every5 = cron::Schedule::from_str("0 */5 * * * *").unwrap();
        let from = utc(2026, 10, 25, 0, 45).with_timezone(&Amsterdam);
        let listed: Vec<_> = every5
            .after(&from)
            .take(3)
            .map(|t| t.with_timezone(&Utc))
            .collect();
        // 02:50 CEST, then 02:50 CET, then back to 02:55 CEST.
        assert_eq!(
            listed,
            [
                utc(2026, 10, 25, 0, 50),
                utc(2026, 10, 25, 1, 50),
                utc(2026, 10, 25, 0, 55)
            ]
        );
        // Asked afresh from inside the second pass, it answers the past.
        let from = utc(2026, 10, 25, 1, 2).with_timezone(&Amsterdam);
        let next = every5.after(&from).next().unwrap().with_timezone(&Utc);
        assert_eq!(next, utc(2026, 10, 25, 0, 5));
    }

    #[test]
    fn kind_follows_whether_the_hours_are_named() {
        assert_eq!(cron("0 30 2 * * *").kind, Kind::TimeOfDay);
        assert_eq!(cron("0 0 */2 * * *").kind, Kind::TimeOfDay);
        assert_eq!(cron("0 */5 * * * *").kind, Kind::Periodic);
        assert_eq!(cron("0 15 0-23 * * *").kind, Kind::Periodic);
    }

    #[test]
    fn daily_fires_at_half_past_two_amsterdam_in_winter_and_summer() {
        let c = cron("0 30 2 * * *");
        assert_eq!(
            c.next_after(utc(2026, 1, 10, 12, 0)),
            Some(utc(2026, 1, 11, 1, 30))
        );
        assert_eq!(
            c.next_after(utc(2026, 7, 10, 12, 0)),
            Some(utc(2026, 7, 11, 0, 30))
        );
    }

    #[test]
    fn next_after_is_strictly_after() {
        let c = cron("0 30 2 * * *");
        let fire = utc(2026, 1, 11, 1, 30);
        assert_eq!(c.next_after(fire - TimeDelta::seconds(1)), Some(fire));
        assert_eq!(c.next_after(fire), Some(utc(2026, 1, 12, 1, 30)));
    }

    #[test]
    fn daily_in_the_spring_gap_runs_once_at_three_cest() {
        let c = cron("0 30 2 * * *");
        assert_eq!(
            fires(&c, utc(2026, 3, 27, 12, 0), 4),
            [
                utc(2026, 3, 28, 1, 30), // 02:30 CET
                utc(2026, 3, 29, 1, 0),  // 03:00 CEST: 02:30 does not exist
                utc(2026, 3, 30, 0, 30), // 02:30 CEST
                utc(2026, 3, 31, 0, 30),
            ]
        );
        assert_eq!(
            c.next_local(utc(2026, 3, 28, 12, 0)).unwrap(),
            "2026-03-29 03:00 CEST"
        );
    }

    #[test]
    fn two_times_in_the_spring_gap_run_once() {
        let c = cron("0 0,30 2 * * *");
        let day = fires(&c, utc(2026, 3, 28, 12, 0), 2);
        assert_eq!(day, [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 0)]);
    }

    #[test]
    fn daily_in_the_autumn_repeat_runs_once() {
        let c = cron("0 30 2 * * *");
        assert_eq!(
            fires(&c, utc(2026, 10, 23, 12, 0), 3),
            [
                utc(2026, 10, 24, 0, 30), // 02:30 CEST
                utc(2026, 10, 25, 0, 30), // the first 02:30 (CEST); not 01:30 UTC too
                utc(2026, 10, 26, 1, 30), // 02:30 CET
            ]
        );
        // Asked from between the two passes, the second one is no fire.
        assert_eq!(
            c.next_after(utc(2026, 10, 25, 1, 0)),
            Some(utc(2026, 10, 26, 1, 30))
        );
    }

    #[test]
    fn every_five_minutes_across_spring_forward_stays_five_minutes_apart() {
        let c = cron("0 */5 * * * *");
        let f = fires(&c, utc(2026, 3, 29, 0, 30), 24);
        assert!(gaps_in_minutes(&f).iter().all(|&g| g == 5), "{f:?}");
        // 01:55 CET is followed by 03:00 CEST, five real minutes later.
        assert!(f.contains(&utc(2026, 3, 29, 0, 55)) && f.contains(&utc(2026, 3, 29, 1, 0)));
        assert_eq!(
            c.next_local(utc(2026, 3, 29, 0, 55)).unwrap(),
            "2026-03-29 03:00 CEST"
        );
    }

    #[test]
    fn every_five_minutes_across_fall_back_stays_five_minutes_apart() {
        let c = cron("0 */5 * * * *");
        // 02:30 CEST to 03:30 CET: two hours of real time, the repeat in it.
        let f = fires(&c, utc(2026, 10, 25, 0, 25), 24);
        assert_eq!(f.first(), Some(&utc(2026, 10, 25, 0, 30)));
        assert_eq!(f.last(), Some(&utc(2026, 10, 25, 2, 25)));
        assert!(gaps_in_minutes(&f).iter().all(|&g| g == 5), "{f:?}");
        assert_eq!(
            c.next_local(utc(2026, 10, 25, 0, 55)).unwrap(),
            "2026-10-25 02:00 CET"
        );
        // From inside the second pass, the next fire is in the future.
        assert_eq!(
            c.next_after(utc(2026, 10, 25, 1, 2)),
            Some(utc(2026, 10, 25, 1, 5))
        );
    }

    /// A periodic schedule fires exactly at the instants whose Amsterdam
    /// wall-clock time matches: checked minute by minute around both
    /// changes, from every instant, so the search's bounds are right too.
    #[test]
    fn periodic_fires_are_the_instants_whose_wall_clock_matches() {
        for expr in ["0 */5 * * * *", "0 30 * * * *", "0 10,50 * * * *"] {
            let c = cron(expr);
            for day in [utc(2026, 3, 28, 22, 0), utc(2026, 10, 24, 22, 0)] {
                let minutes: Vec<_> = (0..8 * 60).map(|m| day + TimeDelta::minutes(m)).collect();
                let matching: Vec<_> = minutes
                    .iter()
                    .copied()
                    .filter(|t| c.schedule.includes(t.with_timezone(&Amsterdam)))
                    .collect();
                for &x in &minutes {
                    let expected = matching.iter().copied().find(|&f| f > x);
                    if expected.is_some() {
                        assert_eq!(c.next_after(x), expected, "{expr} after {x}");
                        let mid_minute = x + TimeDelta::seconds(30);
                        assert_eq!(c.next_after(mid_minute), expected, "{expr} after {x}");
                    }
                }
            }
        }
    }

    #[test]
    fn hourly_across_both_changes_stays_an_hour_apart() {
        let c = cron("0 30 * * * *");
        for start in [utc(2026, 3, 28, 22, 0), utc(2026, 10, 24, 22, 0)] {
            let f = fires(&c, start, 8);
            assert!(gaps_in_minutes(&f).iter().all(|&g| g == 60), "{f:?}");
        }
    }

    #[test]
    fn one_missed_run_is_due_at_start() {
        let c = cron("0 30 2 * * *");
        let last = utc(2026, 1, 10, 1, 30);
        let now = utc(2026, 1, 11, 9, 0);
        assert!(c.due_at_start(Some(last), now));
        assert_eq!(c.next_run(Some(last), now), Some(now));
    }

    #[test]
    fn many_missed_runs_are_one_run() {
        let c = cron("0 */5 * * * *");
        let last = utc(2026, 1, 1, 0, 0);
        let now = utc(2026, 1, 20, 9, 3);
        assert_eq!(c.next_run(Some(last), now), Some(now));
        // Once it ran (last_run = now), nothing is missed any more.
        assert!(!c.due_at_start(Some(now), now));
        assert_eq!(c.next_run(Some(now), now), Some(utc(2026, 1, 20, 9, 5)));
    }

    #[test]
    fn a_fire_at_exactly_now_is_due() {
        let c = cron("0 30 2 * * *");
        let fire = utc(2026, 1, 11, 1, 30);
        assert!(c.due_at_start(Some(utc(2026, 1, 10, 1, 30)), fire));
    }

    #[test]
    fn none_missed_waits_for_the_next_fire() {
        let c = cron("0 30 2 * * *");
        let last = utc(2026, 1, 11, 1, 30);
        let now = utc(2026, 1, 11, 9, 0);
        assert!(!c.due_at_start(Some(last), now));
        assert_eq!(c.next_run(Some(last), now), Some(utc(2026, 1, 12, 1, 30)));
    }

    #[test]
    fn never_run_waits_for_the_first_fire() {
        let c = cron("0 30 2 * * *");
        let now = utc(2026, 1, 11, 9, 0);
        assert!(!c.due_at_start(None, now));
        assert_eq!(c.next_run(None, now), Some(utc(2026, 1, 12, 1, 30)));
    }

    #[test]
    fn the_gap_run_counts_as_missed_and_the_repeat_does_not() {
        let c = cron("0 30 2 * * *");
        let saturday = utc(2026, 3, 28, 1, 30);
        assert!(!c.due_at_start(Some(saturday), utc(2026, 3, 29, 0, 59)));
        assert!(c.due_at_start(Some(saturday), utc(2026, 3, 29, 1, 0)));
        // Ran at the first 02:30 of 25 October; the second one is no miss.
        let first = utc(2026, 10, 25, 0, 30);
        assert!(!c.due_at_start(Some(first), utc(2026, 10, 25, 1, 45)));
    }

    #[test]
    fn next_local_names_the_zone() {
        let c = cron("0 30 2 * * *");
        assert_eq!(
            c.next_local(utc(2026, 12, 2, 12, 0)).unwrap(),
            "2026-12-03 02:30 CET"
        );
        assert_eq!(
            c.next_local(utc(2026, 6, 2, 12, 0)).unwrap(),
            "2026-06-03 02:30 CEST"
        );
    }

    #[test]
    fn a_schedule_without_future_fires_is_never_due() {
        let c = cron("0 0 0 1 1 * 2020");
        assert_eq!(c.next_after(utc(2026, 1, 1, 0, 0)), None);
        assert_eq!(c.next_local(utc(2026, 1, 1, 0, 0)), None);
        assert_eq!(
            c.next_run(Some(utc(2025, 1, 1, 0, 0)), utc(2026, 1, 1, 0, 0)),
            None
        );
    }
}
