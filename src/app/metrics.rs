//! The Prometheus metrics of daemon.md (`[http]`, the metric table): an
//! event sink that turns each `Event` into counters, gauges and a histogram,
//! and renders them in the Prometheus text format for `GET /metrics`.
//!
//! Besides the table's metrics (which "other metrics may be added" allows):
//! `visync_folder_missing{source,role}` (0/1), `visync_index_auth_refused`
//! (0/1), `visync_source_auth_refused{source}` (0/1: an API source refused us)
//! and `visync_job_running{job}` (0/1), so that an alert can say
//! what `/healthz` says, and a job that never ends can be seen.
//!
//! Must not: carry personal data in a label (labels are source names,
//! outcomes, codes, endpoints and job labels), or read the system time
//! (the job timestamps come from the one clock).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::app::events::{Event, Gauges, JobKind, Sink};
use crate::app::health::role_name;
use crate::clock::Clock;

const JOB_DURATION: &str = "visync_job_duration_seconds";

/// Upper bounds of the job duration buckets, in seconds: from a rescan that
/// finds nothing (10 ms) to a first load of a large export. They reach past
/// 900 s so that the example alert "a job regularly over 15 minutes"
/// (`histogram_quantile(...) > 900`) can fire: a quantile that falls in the
/// `+Inf` bucket is reported as the highest finite bound.
const JOB_BUCKETS: [f64; 18] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
    1800.0, 3600.0,
];

/// The process's one set of metrics (see `Metrics::install`).
static PROCESS: OnceLock<Arc<Shared>> = OnceLock::new();

/// The metrics sink. Cheap to make more than once: every `install` shares
/// the process's recorder.
#[derive(Debug)]
pub struct Metrics {
    shared: Arc<Shared>,
    /// Stamps `visync_job_last_success_timestamp_seconds`.
    clock: Clock,
}

/// What all `Metrics` of one recorder share.
#[derive(Debug)]
struct Shared {
    /// Where the events are recorded: used directly (as a local recorder),
    /// so that our metrics never go astray even when another recorder was
    /// installed globally first.
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    /// The states of `visync_signals` set by the last `Gauges` event, so
    /// that a state no longer counted goes to 0 instead of keeping its
    /// last number.
    signal_states: Mutex<BTreeSet<String>>,
}

impl Metrics {
    /// The process's metrics. The first call builds the recorder and installs
    /// it as the global one (for anything that uses the `metrics` macros);
    /// later calls (a reload, a second test) share it, so that counters are
    /// never reset and the global recorder is set only once.
    pub fn install(clock: Clock) -> Metrics {
        let shared = PROCESS.get_or_init(|| {
            let shared = Arc::new(Shared::new());
            if metrics::set_global_recorder(shared.recorder.clone()).is_err() {
                // Ours still gets every event (see `Shared::recorder`); only
                // other code's macros go to the other recorder.
                tracing::warn!(
                    "another metrics recorder was installed first; visync keeps its own"
                );
            }
            shared
        });
        Metrics {
            shared: shared.clone(),
            clock,
        }
    }

    /// Metrics with a recorder of their own, not installed globally: tests
    /// that must not see each other's counts.
    pub fn detached(clock: Clock) -> Metrics {
        Metrics {
            shared: Arc::new(Shared::new()),
            clock,
        }
    }

    /// Everything recorded so far, in the Prometheus text format (0.0.4).
    pub fn render(&self) -> String {
        self.shared.handle.render()
    }

    fn record(&self, event: &Event) {
        match event {
            Event::FileTaken {
                source, outcome, ..
            } => {
                counter!("visync_files_total", "source" => source.clone(), "outcome" => outcome.as_str())
                    .increment(1);
            }
            Event::Records {
                source,
                accepted,
                rejected,
                skipped,
            } => records(source, *accepted, *rejected, *skipped),
            Event::Rejection { source, code } => {
                counter!("visync_rejections_total", "source" => source.clone(), "code" => *code)
                    .increment(1);
            }
            Event::IndexCall { endpoint, result } => {
                counter!("visync_index_requests_total", "endpoint" => *endpoint, "result" => result.as_str())
                    .increment(1);
            }
            Event::NoticesDelivered {
                source,
                kind,
                count,
            } => {
                counter!("visync_notices_total", "source" => source.clone(), "kind" => kind.clone())
                    .increment(*count);
            }
            Event::JobStarted { job } => {
                gauge!("visync_job_running", "job" => job.label()).set(1.0)
            }
            Event::JobFinished {
                job, ok, seconds, ..
            } => self.job_finished(job, *ok, *seconds),
            Event::Gauges(g) => self.gauges(g),
            Event::Folder {
                source,
                role,
                present,
            } => {
                gauge!("visync_folder_missing", "source" => source.clone(), "role" => role_name(*role))
                    .set(flag(!present));
            }
            Event::IndexAuth { refused } => gauge!("visync_index_auth_refused").set(flag(*refused)),
            // Beside the index's: an API source that refuses our credentials.
            Event::SourceAuth { source, refused } => {
                gauge!("visync_source_auth_refused", "source" => source.clone())
                    .set(flag(*refused));
            }
            Event::ConfigReload { ok } => {
                if !ok {
                    counter!("visync_config_reload_failures_total").increment(1);
                }
            }
            // Folders of removed sources are set present by the daemon.
            Event::Sources { .. } => {}
        }
    }

    fn job_finished(&self, job: &JobKind, ok: bool, seconds: f64) {
        let label = job.label();
        histogram!(JOB_DURATION, "job" => label.clone()).record(seconds);
        gauge!("visync_job_running", "job" => label.clone()).set(0.0);
        if ok {
            let now = self.clock.now().timestamp() as f64;
            gauge!("visync_job_last_success_timestamp_seconds", "job" => label).set(now);
        }
        // Samples wait in the histogram until drained; without a scraper they
        // would pile up for months. Draining them here keeps memory bounded.
        self.shared.handle.run_upkeep();
    }

    fn gauges(&self, g: &Gauges) {
        gauge!("visync_outbox_depth").set(g.outbox_depth as f64);
        gauge!("visync_held_withdrawals").set(g.held_withdrawals as f64);
        gauge!("visync_quarantined").set(g.quarantined as f64);
        gauge!("visync_notices_waiting").set(g.notices_waiting as f64);
        let current: BTreeSet<String> = g.signals.iter().map(|(s, _)| s.clone()).collect();
        // Held across the updates, so that two Gauges events cannot interleave.
        let mut previous = self
            .shared
            .signal_states
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (state, n) in &g.signals {
            gauge!("visync_signals", "state" => state.clone()).set(*n as f64);
        }
        for gone in previous.difference(&current) {
            gauge!("visync_signals", "state" => gone.clone()).set(0.0);
        }
        *previous = current;
    }
}

impl Sink for Metrics {
    fn emit(&self, event: &Event) {
        metrics::with_local_recorder(&*self.shared.recorder, || self.record(event));
    }
}

impl Shared {
    fn new() -> Shared {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(JOB_DURATION.into()), &JOB_BUCKETS)
            .expect("the job buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let recorder = Arc::new(recorder);
        metrics::with_local_recorder(&*recorder, describe);
        Shared {
            recorder,
            handle,
            signal_states: Mutex::new(BTreeSet::new()),
        }
    }
}

/// The help texts, and the series that exist from the start: `build_info`
/// (its presence says visync runs) and the reload failures at 0 (so that
/// `increase()` sees the first failure).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "visync_files_total",
        "Files taken from drop folders, by outcome."
    );
    describe_counter!("visync_records_total", "Records read, by outcome.");
    describe_counter!("visync_rejections_total", "Rejected records, by code.");
    describe_gauge!(
        "visync_outbox_depth",
        "Outbox rows waiting to be sent (held ones excluded)."
    );
    describe_gauge!(
        "visync_held_withdrawals",
        "Withdrawals held for visync release."
    );
    describe_gauge!("visync_quarantined", "Outbox rows quarantined.");
    describe_counter!(
        "visync_index_requests_total",
        "Calls to the index, by endpoint and result."
    );
    describe_gauge!("visync_signals", "This installation's signals, by state.");
    describe_counter!(
        "visync_notices_total",
        "Notices delivered to a return channel, by kind."
    );
    describe_gauge!("visync_notices_waiting", "Notices not yet delivered.");
    describe_gauge!(
        "visync_job_last_success_timestamp_seconds",
        "When a job last succeeded (Unix time)."
    );
    describe_histogram!(JOB_DURATION, "How long jobs take.");
    describe_gauge!("visync_job_running", "1 while a job runs.");
    describe_counter!("visync_config_reload_failures_total", "Reloads refused.");
    describe_gauge!(
        "visync_folder_missing",
        "1 while a configured folder is missing."
    );
    describe_gauge!(
        "visync_index_auth_refused",
        "1 while the index refuses our credentials."
    );
    describe_gauge!("visync_build_info", "Always 1; the running version.");
    gauge!("visync_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    counter!("visync_config_reload_failures_total").increment(0);
}

/// Three counters for one file's records.
fn records(source: &str, accepted: u64, rejected: u64, skipped: u64) {
    for (outcome, n) in [
        ("accepted", accepted),
        ("rejected", rejected),
        ("skipped", skipped),
    ] {
        counter!("visync_records_total", "source" => source.to_owned(), "outcome" => outcome)
            .increment(n);
    }
}

fn flag(on: bool) -> f64 {
    if on {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::events::{CallResult, FileOutcome, FolderRole};
    use chrono::{TimeZone, Utc};

    fn metrics() -> Metrics {
        let t = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
        Metrics::detached(Clock::Fixed(t))
    }

    fn finished(job: JobKind, ok: bool, seconds: f64) -> Event {
        Event::JobFinished {
            job,
            ok,
            had_work: true,
            seconds,
        }
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[track_caller]
    fn assert_lines(text: &str, lines: &[&str]) {
        for line in lines {
            assert!(has_line(text, line), "no line {line:?} in:\n{text}");
        }
    }

    #[test]
    fn each_event_counts_under_its_name_and_labels() {
        let m = metrics();
        let source = || "caseflow".to_string();
        m.emit(&Event::FileTaken {
            source: source(),
            file: "export.csv".into(),
            outcome: FileOutcome::Processed,
        });
        m.emit(&Event::Records {
            source: source(),
            accepted: 7,
            rejected: 2,
            skipped: 0,
        });
        m.emit(&Event::Rejection {
            source: source(),
            code: "bsn_invalid",
        });
        m.emit(&Event::IndexCall {
            endpoint: "batch",
            result: CallResult::ItemError,
        });
        m.emit(&Event::NoticesDelivered {
            source: source(),
            kind: "match".into(),
            count: 3,
        });
        m.emit(&Event::Folder {
            source: source(),
            role: FolderRole::Return,
            present: false,
        });
        m.emit(&Event::IndexAuth { refused: true });
        m.emit(&Event::ConfigReload { ok: false });
        m.emit(&Event::ConfigReload { ok: true });
        m.emit(&Event::Gauges(Gauges {
            outbox_depth: 5,
            held_withdrawals: 1,
            quarantined: 2,
            notices_waiting: 4,
            signals: vec![("active".into(), 10)],
        }));
        let text = m.render();
        assert_lines(
            &text,
            &[
                r#"visync_files_total{source="caseflow",outcome="processed"} 1"#,
                r#"visync_records_total{source="caseflow",outcome="accepted"} 7"#,
                r#"visync_records_total{source="caseflow",outcome="rejected"} 2"#,
                r#"visync_records_total{source="caseflow",outcome="skipped"} 0"#,
                r#"visync_rejections_total{source="caseflow",code="bsn_invalid"} 1"#,
                r#"visync_index_requests_total{endpoint="batch",result="item_error"} 1"#,
                r#"visync_notices_total{source="caseflow",kind="match"} 3"#,
                r#"visync_folder_missing{source="caseflow",role="return"} 1"#,
                "visync_index_auth_refused 1",
                "visync_config_reload_failures_total 1",
                "visync_outbox_depth 5",
                "visync_held_withdrawals 1",
                "visync_quarantined 2",
                "visync_notices_waiting 4",
                r#"visync_signals{state="active"} 10"#,
                &format!(
                    r#"visync_build_info{{version="{}"}} 1"#,
                    env!("CARGO_PKG_VERSION")
                ),
            ],
        );
        assert!(text.contains("# HELP visync_files_total"));
    }

    #[test]
    fn build_info_and_reload_failures_exist_from_the_start() {
        let text = metrics().render();
        assert_lines(&text, &["visync_config_reload_failures_total 0"]);
        assert!(text.contains("visync_build_info{version="));
    }

    #[test]
    fn last_success_is_absent_until_a_job_succeeds() {
        let m = metrics();
        m.emit(&Event::JobStarted { job: JobKind::Send });
        assert_lines(&m.render(), &[r#"visync_job_running{job="send"} 1"#]);
        m.emit(&finished(JobKind::Send, false, 0.2));
        let text = m.render();
        assert!(!text.contains("visync_job_last_success_timestamp_seconds{"));
        assert_lines(&text, &[r#"visync_job_running{job="send"} 0"#]);
        m.emit(&finished(JobKind::Intake("caseflow".into()), true, 0.2));
        // 2026-11-02T09:00:00Z, from the clock given at construction.
        assert_lines(
            &m.render(),
            &[r#"visync_job_last_success_timestamp_seconds{job="intake:caseflow"} 1793610000"#],
        );
    }

    #[test]
    fn job_duration_is_a_histogram_with_job_buckets() {
        let m = metrics();
        m.emit(&finished(JobKind::Reconcile, true, 0.5));
        m.emit(&finished(JobKind::Reconcile, false, 1000.0));
        let text = m.render();
        assert_lines(
            &text,
            &[
                "# TYPE visync_job_duration_seconds histogram",
                r#"visync_job_duration_seconds_bucket{job="reconcile",le="0.01"} 0"#,
                r#"visync_job_duration_seconds_bucket{job="reconcile",le="0.5"} 1"#,
                r#"visync_job_duration_seconds_bucket{job="reconcile",le="600"} 1"#,
                r#"visync_job_duration_seconds_bucket{job="reconcile",le="1800"} 2"#,
                r#"visync_job_duration_seconds_bucket{job="reconcile",le="+Inf"} 2"#,
                r#"visync_job_duration_seconds_count{job="reconcile"} 2"#,
                r#"visync_job_duration_seconds_sum{job="reconcile"} 1000.5"#,
            ],
        );
    }

    #[test]
    fn a_signal_state_no_longer_counted_goes_to_zero() {
        let m = metrics();
        let gauges = |signals: &[(&str, u64)]| {
            Event::Gauges(Gauges {
                signals: signals.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
                ..Gauges::default()
            })
        };
        m.emit(&gauges(&[("active", 3), ("pending", 2)]));
        m.emit(&gauges(&[("active", 5)]));
        assert_lines(
            &m.render(),
            &[
                r#"visync_signals{state="active"} 5"#,
                r#"visync_signals{state="pending"} 0"#,
            ],
        );
        m.emit(&gauges(&[("pending", 1)]));
        assert_lines(
            &m.render(),
            &[
                r#"visync_signals{state="active"} 0"#,
                r#"visync_signals{state="pending"} 1"#,
            ],
        );
    }

    #[test]
    fn install_twice_shares_one_recorder() {
        let clock = Clock::System;
        let a = Metrics::install(clock);
        let b = Metrics::install(clock);
        a.emit(&Event::FileTaken {
            source: "install-twice".into(),
            file: "x.csv".into(),
            outcome: FileOutcome::Duplicate,
        });
        assert_lines(
            &b.render(),
            &[r#"visync_files_total{source="install-twice",outcome="duplicate"} 1"#],
        );
        // It is the global recorder too: the macros outside a sink reach it.
        counter!("visync_test_global_total").increment(1);
        assert_lines(&a.render(), &["visync_test_global_total 1"]);
    }
}
