//! A progress line for a person at a terminal: a spinner with what `check`
//! or `run --once` is doing, fed by the jobs' events (`run --once`) or by the
//! command itself (`check`, file by file). Never drawn when stderr is not a
//! terminal (a pipe, a file, the journal), and never in the daemon.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::app::events::{Event, Sink};

/// A spinner on stderr, or `None` when stderr is not a terminal.
pub fn spinner() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    Some(bar)
}

/// What a pass did so far, told on the spinner's line.
pub struct PassProgress {
    bar: ProgressBar,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    job: String,
    files: u64,
    records: u64,
    calls: u64,
    notices: u64,
}

impl PassProgress {
    pub fn new(bar: ProgressBar) -> PassProgress {
        PassProgress {
            bar,
            counts: Mutex::new(Counts::default()),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Sink for PassProgress {
    fn emit(&self, event: &Event) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::JobStarted { job } => c.job = job.label(),
            Event::FileTaken { .. } => c.files += 1,
            Event::Records {
                accepted,
                rejected,
                skipped,
                ..
            } => c.records += accepted + rejected + skipped,
            Event::IndexCall { .. } => c.calls += 1,
            Event::NoticesDelivered { count, .. } => c.notices += count,
            _ => return,
        }
        self.bar.set_message(format!(
            "{}: {} files, {} records taken; {} index calls; {} notices delivered",
            c.job, c.files, c.records, c.calls, c.notices
        ));
    }
}
