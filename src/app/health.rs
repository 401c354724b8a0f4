//! What `/healthz` answers (daemon.md, `[http]`): an event sink that keeps
//! just enough state to say whether the daemon does its work, and why not.
//!
//! Unhealthy when the index refused our credentials or certificate, when a
//! drop or return folder is missing, or when a job kind has had work and no
//! success for `unhealthy_after`. A reason names a source, a folder's role
//! or a job: never a path, a file name or anything read from an export.
//!
//! Must not: read the system time (instants come from the one clock), or
//! block a job for longer than one short lock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::app::events::{Event, FolderRole, JobKind, Sink};
use crate::clock::Clock;

/// `drop` or `return`: the word for a folder's role in reasons and in the
/// `role` label of `visync_folder_missing`.
pub(crate) fn role_name(role: FolderRole) -> &'static str {
    match role {
        FolderRole::Drop => "drop",
        FolderRole::Return => "return",
    }
}

/// The health of the daemon, fed by events, read by `/healthz`. Shared
/// between the jobs (which emit) and the HTTP server (which reports).
#[derive(Debug)]
pub struct Health {
    /// Stamps the events, which carry no time of their own.
    clock: Clock,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The index's last answer on our credentials was a refusal.
    auth_refused: bool,
    /// API sources whose last poll was refused our credentials.
    source_auth_refused: BTreeSet<String>,
    /// Configured folders that are missing now, by (source, role).
    missing: BTreeSet<(String, FolderRole)>,
    jobs: BTreeMap<JobKind, JobHealth>,
}

/// One job kind's record; intake of each source is its own kind.
#[derive(Debug, Default, Clone, Copy)]
struct JobHealth {
    last_success: Option<DateTime<Utc>>,
    /// The first run that had work and failed after the last success;
    /// `None` while the kind succeeds, or has had nothing to do.
    failing_since: Option<DateTime<Utc>>,
}

/// The body of `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    pub status: HealthStatus,
    /// Why it is unhealthy, one sentence each; left out when healthy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Each job kind seen so far, by its label (`send`, `intake:NAME`).
    pub jobs: BTreeMap<String, JobReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Unhealthy,
}

/// One job kind in the report: instants in RFC 3339, UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
}

impl HealthReport {
    pub fn is_ok(&self) -> bool {
        self.status == HealthStatus::Ok
    }
}

impl Health {
    pub fn new(clock: Clock) -> Health {
        Health {
            clock,
            state: Mutex::new(State::default()),
        }
    }

    /// The report at `now`: a job kind that has had work and no success for
    /// `unhealthy_after` (or longer) makes it unhealthy.
    pub fn report(&self, now: DateTime<Utc>, unhealthy_after: Duration) -> HealthReport {
        let state = self.lock();
        let mut reasons = Vec::new();
        if state.auth_refused {
            reasons.push("the index refused our credentials or certificate".to_string());
        }
        for source in &state.source_auth_refused {
            reasons.push(format!(
                "the API of source {source} refused our credentials: check its [source.auth]"
            ));
        }
        for (source, role) in &state.missing {
            let role = role_name(*role);
            reasons.push(format!("the {role} folder of source {source} is missing"));
        }
        for (job, health) in &state.jobs {
            if let Some(reason) = stalled(job, health, now, unhealthy_after) {
                reasons.push(reason);
            }
        }
        let status = if reasons.is_empty() {
            HealthStatus::Ok
        } else {
            HealthStatus::Unhealthy
        };
        let jobs = state
            .jobs
            .iter()
            .map(|(job, health)| (job.label(), job_report(health)))
            .collect();
        HealthReport {
            status,
            reasons,
            jobs,
        }
    }

    /// Takes in one event as if it happened at `at`: `emit` with the clock's
    /// time, tests with fixed instants.
    fn record(&self, event: &Event, at: DateTime<Utc>) {
        let mut state = self.lock();
        match event {
            Event::IndexAuth { refused } => state.auth_refused = *refused,
            Event::SourceAuth { source, refused } => {
                if *refused {
                    state.source_auth_refused.insert(source.clone());
                } else {
                    state.source_auth_refused.remove(source);
                }
            }
            Event::Folder {
                source,
                role,
                present,
            } => {
                let key = (source.clone(), *role);
                if *present {
                    state.missing.remove(&key);
                } else {
                    state.missing.insert(key);
                }
            }
            Event::JobFinished {
                job, ok, had_work, ..
            } => {
                let health = state.jobs.entry(job.clone()).or_default();
                finished(health, *ok, *had_work, at);
            }
            Event::Sources { names } => {
                // A return channel is keyed by source name too.
                let kept = |s: &String| names.contains(s);
                state.missing.retain(|(s, _)| kept(s));
                state.source_auth_refused.retain(|s| kept(s));
                state
                    .jobs
                    .retain(|j, _| !matches!(j, JobKind::Intake(s) if !kept(s)));
            }
            _ => {}
        }
    }

    /// A panic while the lock was held cannot leave the state half-changed
    /// in a way that matters (each field is set whole), so a poisoned lock
    /// is used as it is rather than taking `/healthz` down with it.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sink for Health {
    fn emit(&self, event: &Event) {
        self.record(event, self.clock.now());
    }
}

/// A run ended: a success clears the failure; a failure with work starts
/// one (or continues it); a run without work says nothing either way.
fn finished(health: &mut JobHealth, ok: bool, had_work: bool, at: DateTime<Utc>) {
    if ok {
        health.last_success = Some(at);
        health.failing_since = None;
    } else if had_work && health.failing_since.is_none() {
        health.failing_since = Some(at);
    }
}

/// The reason a job kind makes the daemon unhealthy, if it does.
fn stalled(
    job: &JobKind,
    health: &JobHealth,
    now: DateTime<Utc>,
    unhealthy_after: Duration,
) -> Option<String> {
    let since = health.failing_since?;
    // A clock moved backwards counts as no time passed, not as an error.
    let failing = (now - since).to_std().unwrap_or_default();
    (failing >= unhealthy_after).then(|| {
        format!(
            "{} has not succeeded for {} s while it had work",
            job.label(),
            failing.as_secs()
        )
    })
}

fn job_report(health: &JobHealth) -> JobReport {
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    JobReport {
        last_success: health.last_success.map(stamp),
        failing_since: health.failing_since.map(stamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const HOUR: Duration = Duration::from_secs(3600);

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, h, m, 0).unwrap()
    }

    fn health() -> Health {
        Health::new(Clock::Fixed(t(0, 0)))
    }

    fn finished(job: JobKind, ok: bool, had_work: bool) -> Event {
        Event::JobFinished {
            job,
            ok,
            had_work,
            seconds: 1.0,
        }
    }

    #[test]
    fn healthy_when_nothing_happened() {
        let report = health().report(t(12, 0), HOUR);
        assert!(report.is_ok());
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            r#"{"status":"ok","jobs":{}}"#
        );
    }

    /// An API source's 401/403 is a configuration problem (api-sources.md):
    /// unhealthy, naming the source, until a poll is accepted again.
    #[test]
    fn an_api_source_refusing_our_credentials_makes_it_unhealthy() {
        let h = health();
        h.emit(&Event::SourceAuth {
            source: "zorgapp".into(),
            refused: true,
        });
        assert_eq!(
            h.report(t(0, 0), HOUR).reasons,
            ["the API of source zorgapp refused our credentials: check its [source.auth]"]
        );
        h.emit(&Event::SourceAuth {
            source: "zorgapp".into(),
            refused: false,
        });
        assert!(h.report(t(0, 0), HOUR).is_ok());
    }

    #[test]
    fn refused_credentials_make_it_unhealthy_until_accepted() {
        let h = health();
        h.emit(&Event::IndexAuth { refused: true });
        let report = h.report(t(0, 0), HOUR);
        assert_eq!(report.status, HealthStatus::Unhealthy);
        assert_eq!(
            report.reasons,
            ["the index refused our credentials or certificate"]
        );
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            r#"{"status":"unhealthy","reasons":["the index refused our credentials or certificate"],"jobs":{}}"#
        );
        h.emit(&Event::IndexAuth { refused: false });
        assert!(h.report(t(0, 0), HOUR).is_ok());
    }

    #[test]
    fn a_missing_folder_is_named_by_source_and_role_until_back() {
        let h = health();
        let folder = |role, present| Event::Folder {
            source: "caseflow".into(),
            role,
            present,
        };
        h.emit(&folder(FolderRole::Drop, false));
        h.emit(&folder(FolderRole::Return, false));
        assert_eq!(
            h.report(t(0, 0), HOUR).reasons,
            [
                "the drop folder of source caseflow is missing",
                "the return folder of source caseflow is missing",
            ]
        );
        h.emit(&folder(FolderRole::Drop, true));
        assert_eq!(
            h.report(t(0, 0), HOUR).reasons,
            ["the return folder of source caseflow is missing"]
        );
        h.emit(&folder(FolderRole::Return, true));
        assert!(h.report(t(0, 0), HOUR).is_ok());
    }

    #[test]
    fn a_job_with_work_and_no_success_turns_unhealthy_after_the_limit() {
        let h = health();
        h.record(&finished(JobKind::Send, true, true), t(8, 0));
        h.record(&finished(JobKind::Send, false, true), t(9, 0));
        // Later failures do not move the start of the failure.
        h.record(&finished(JobKind::Send, false, true), t(9, 30));
        assert!(h.report(t(9, 59), HOUR).is_ok());
        let report = h.report(t(10, 0), HOUR);
        assert_eq!(
            report.reasons,
            ["send has not succeeded for 3600 s while it had work"]
        );
        assert_eq!(
            report.jobs["send"],
            JobReport {
                last_success: Some("2026-11-02T08:00:00Z".into()),
                failing_since: Some("2026-11-02T09:00:00Z".into()),
            }
        );
        h.record(&finished(JobKind::Send, true, true), t(10, 5));
        assert!(h.report(t(12, 0), HOUR).is_ok());
    }

    #[test]
    fn a_job_without_work_is_never_blamed() {
        let h = health();
        h.record(&finished(JobKind::Notices, true, true), t(1, 0));
        h.record(&finished(JobKind::Notices, false, false), t(2, 0));
        assert!(h.report(t(23, 0), HOUR).is_ok());
        // A failure with work starts the count at that failure, not at the
        // last success long before it.
        h.record(&finished(JobKind::Notices, false, true), t(22, 30));
        assert!(h.report(t(23, 0), HOUR).is_ok());
        // A run without work in between does not end the failure.
        h.record(&finished(JobKind::Notices, false, false), t(22, 45));
        assert!(!h.report(t(23, 30), HOUR).is_ok());
    }

    #[test]
    fn intake_of_each_source_is_its_own_kind() {
        let h = health();
        let a = JobKind::Intake("a".into());
        let b = JobKind::Intake("b".into());
        h.record(&finished(a.clone(), false, true), t(1, 0));
        h.record(&finished(b, true, true), t(3, 0));
        let report = h.report(t(3, 0), HOUR);
        assert_eq!(
            report.reasons,
            ["intake:a has not succeeded for 7200 s while it had work"]
        );
        assert_eq!(report.jobs.len(), 2);
        h.record(&finished(a, true, true), t(3, 1));
        assert!(h.report(t(3, 1), HOUR).is_ok());
    }

    #[test]
    fn a_clock_that_went_back_counts_no_time() {
        let h = health();
        h.record(&finished(JobKind::Reconcile, false, true), t(5, 0));
        assert!(h.report(t(1, 0), HOUR).is_ok());
        assert_eq!(
            h.report(t(1, 0), Duration::ZERO).reasons,
            ["reconcile has not succeeded for 0 s while it had work"]
        );
    }
}
