//! systemd's notify protocol (`sd_notify`): READY, STATUS, WATCHDOG and
//! STOPPING. Without `NOTIFY_SOCKET` (not under systemd, or `run --once`)
//! nothing is sent. A failed send is logged, never fatal: systemd may have
//! gone away during a shutdown.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("cannot notify systemd: {e}");
    }
}

/// Start-up is done: migrations ran and the files waiting at start are taken.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// One line on what the daemon does (`systemctl status` shows it).
pub fn status(line: &str) {
    send(&[NotifyState::Status(line)]);
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when systemd
/// set one for this process.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .map(|d| d / 2)
        .filter(|d| !d.is_zero())
}
