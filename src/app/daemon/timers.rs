//! The daemon's triggers that are timers: each source's rescan or poll
//! schedule, a file settling, a backoff ending, and the cron schedules of
//! the notices and the reconciliation (missed runs once, at start, by the
//! last run kept in the store). They only mark jobs as wanted; the loop
//! (`mod.rs`) starts them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::Daemon;
use crate::app::events::JobKind;
use crate::app::schedule::Cron;
use crate::config::WatchMode;

/// Where the last run of each schedule is kept, so that a run missed while
/// the daemon was down happens once at start.
const LAST_RUN: &str = "daemon.last_run.";

/// A cron schedule and its next run.
pub(super) struct Schedule {
    pub(super) cron: Cron,
    pub(super) next: Option<DateTime<Utc>>,
    /// The fire that wants the job now: on a shared store another
    /// instance may have run the job for it already (`ran_since`).
    pub(super) fired: Option<DateTime<Utc>>,
    /// The fire a running job serves, and one that another instance was
    /// serving when this one stood by: looked at again a lease later, so
    /// that a leader dying mid-run does not lose the night's run.
    pub(super) serving: Option<DateTime<Utc>>,
    pub(super) unserved: Option<DateTime<Utc>>,
    pub(super) name: &'static str,
}

impl Schedule {
    pub(super) fn new(name: &'static str, cron: &cron::Schedule) -> Schedule {
        Schedule {
            cron: Cron::new(cron.clone()),
            next: None,
            fired: None,
            serving: None,
            unserved: None,
            name,
        }
    }
}

impl Daemon {
    /// The reconciliation stood by for another instance's run: look again
    /// for the same fire a lease later (it runs then if that one died
    /// without finishing, and is served if it finished).
    pub(super) fn look_again(&mut self) {
        let lease = self.ctx.store.instance().lease;
        let again = self.ctx.clock.now() + lease + chrono::Duration::seconds(1);
        let s = &mut self.reconcile;
        s.unserved = s.serving.take();
        if s.unserved.is_some() {
            s.next = Some(s.next.map_or(again, |n| n.min(again)));
        }
    }

    /// The cron schedules of a new config, each from its next time on (a
    /// reload: a run missed by the old schedule is not made up).
    pub(super) fn reschedule(&mut self, cfg: &crate::config::Config) {
        self.notices = Schedule::new("notices", &cfg.schedule.notices);
        self.reconcile = Schedule::new("reconcile", &cfg.schedule.reconcile);
        let now = self.ctx.clock.now();
        self.notices.next = self.notices.cron.next_after(now);
        self.reconcile.next = self.reconcile.cron.next_after(now);
    }

    pub(super) fn schedule(&self, notices: bool) -> &Schedule {
        if notices {
            &self.notices
        } else {
            &self.reconcile
        }
    }

    pub(super) fn schedule_mut(&mut self, notices: bool) -> &mut Schedule {
        if notices {
            &mut self.notices
        } else {
            &mut self.reconcile
        }
    }

    pub(super) async fn last_run(&self, notices: bool) -> Option<DateTime<Utc>> {
        last_run(&self.ctx.store, self.schedule(notices).name).await
    }

    /// Records when a scheduled job started: a run that began before a
    /// crash counts as run, one that never began does not.
    pub(super) async fn remember_run(&mut self, notices: bool) {
        let name = format!("{LAST_RUN}{}", self.schedule(notices).name);
        let job = if notices {
            JobKind::Notices
        } else {
            JobKind::Reconcile
        };
        let started = self
            .started
            .remove(&job)
            .unwrap_or_else(|| self.ctx.clock.now());
        let at = crate::store::ts(started);
        if let Err(e) = self.ctx.store.set_cursor(&name, &at).await {
            tracing::warn!("cannot record when {name} ran: {e}");
        }
    }

    /// Watches every `notify` source's folder and sets its rescan.
    pub(super) fn sync_watches(&mut self) {
        let now = Instant::now();
        let list: Vec<_> = self
            .ctx
            .snapshot
            .sources
            .list
            .iter()
            .map(|(c, m)| (m.name.clone(), c.clone()))
            .collect();
        let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
        self.watches.retain(&names);
        self.rescan.retain(|s, _| names.contains(&s.as_str()));
        for (name, c) in &list {
            if self.is_api(name) {
                // An API source is polled on its schedule, not watched.
                let wait = self.poll_wait(name);
                self.rescan.entry(name.clone()).or_insert(now + wait);
                continue;
            }
            let Some(folder) = &c.watch else { continue };
            if c.watch_mode == WatchMode::Notify {
                self.watches.ensure(name, folder);
            }
            self.rescan
                .entry(name.clone())
                .or_insert(now + Duration::from_secs(c.rescan_secs));
        }
    }

    /// The earliest timer.
    pub(super) fn next_wake(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let cron = |s: &Schedule| s.next.map(|t| self.instant_of(t));
        self.rescan
            .values()
            .chain(self.settle.values())
            .copied()
            .chain(self.send_at)
            .chain(cron(&self.notices))
            .chain(cron(&self.reconcile))
            .min()
            .unwrap_or(far)
            .min(far)
    }

    pub(super) fn instant_of(&self, t: DateTime<Utc>) -> Instant {
        let ahead = (t - self.ctx.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        Instant::now() + ahead
    }

    /// Marks every job whose timer has come.
    pub(super) fn timers(&mut self) {
        let now = Instant::now();
        let rescans = due(&self.rescan, now);
        if !rescans.is_empty() {
            // A rescan also watches folders again that came back.
            self.sync_watches();
        }
        for s in rescans {
            let every = if self.is_api(&s) {
                self.poll_wait(&s)
            } else {
                self.rescan_secs(&s)
            };
            self.rescan.insert(s.clone(), now + every);
            self.wanted.insert(JobKind::Intake(s));
        }
        let settled = due(&self.settle, now);
        for s in settled {
            self.settle.remove(&s);
            self.wanted.insert(JobKind::Intake(s));
        }
        if self.send_at.is_some_and(|t| t <= now) {
            self.send_at = None;
            self.wanted.insert(JobKind::Send);
        }
        let clock_now = self.ctx.clock.now();
        for (notices, job) in [(true, JobKind::Notices), (false, JobKind::Reconcile)] {
            let s = self.schedule_mut(notices);
            if s.next.is_some_and(|t| t <= clock_now) {
                s.fired = s.unserved.take().or(s.next);
                s.next = s.cron.next_after(clock_now);
                self.wanted.insert(job);
            }
        }
    }

    /// The current config of a source, by name.
    pub(super) fn source_config(&self, source: &str) -> Option<&crate::config::SourceConfig> {
        self.ctx
            .snapshot
            .sources
            .list
            .iter()
            .find(|(_, m)| m.name == source)
            .map(|(c, _)| c)
    }

    pub(super) fn is_api(&self, source: &str) -> bool {
        self.ctx
            .snapshot
            .sources
            .list
            .iter()
            .any(|(_, m)| m.name == source && m.api().is_some())
    }

    /// How long until an API source's next poll: its `schedule` (cron,
    /// Amsterdam time), or every `rescan_secs` without one.
    pub(super) fn poll_wait(&self, source: &str) -> Duration {
        let schedule = self
            .ctx
            .snapshot
            .sources
            .list
            .iter()
            .find(|(_, m)| m.name == source)
            .and_then(|(_, m)| m.api()?.schedule.as_deref()?.parse::<cron::Schedule>().ok());
        let Some(cron) = schedule else {
            return self.rescan_secs(source);
        };
        let now = self.ctx.clock.now();
        Cron::new(cron)
            .next_after(now)
            .and_then(|at| (at - now).to_std().ok())
            .unwrap_or(Duration::from_secs(24 * 60 * 60))
    }

    pub(super) fn rescan_secs(&self, source: &str) -> Duration {
        Duration::from_secs(self.source_config(source).map_or(60, |c| c.rescan_secs))
    }

    pub(super) fn settle_secs(&self, source: &str) -> Duration {
        let secs = self.source_config(source).map_or(10, |c| c.settle_secs);
        // At least a second: a file seen unsettled is looked at again after.
        Duration::from_secs(secs.max(1))
    }
}

/// The sources whose timer has come.
fn due(timers: &std::collections::HashMap<String, Instant>, now: Instant) -> Vec<String> {
    timers
        .iter()
        .filter(|(_, t)| **t <= now)
        .map(|(s, _)| s.clone())
        .collect()
}

/// When the scheduled job `name` last started, on any instance of the
/// store (the cursor is the store's).
async fn last_run(store: &crate::store::Store, name: &str) -> Option<DateTime<Utc>> {
    let value = store
        .cursor(&format!("{LAST_RUN}{name}"))
        .await
        .ok()
        .flatten()?;
    DateTime::parse_from_rfc3339(&value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Whether an instance started the job `name` at or after `fired`: then
/// this fire is served (on a shared store another instance ran it and let
/// go of its lease), and running again would do the work twice.
pub(super) async fn ran_since(
    store: &crate::store::Store,
    name: &str,
    fired: Option<DateTime<Utc>>,
) -> bool {
    match (fired, last_run(store, name).await) {
        (Some(fired), Some(last)) => last >= fired,
        _ => false,
    }
}
