//! systemd's notify protocol (`sd_notify`): READY, STATUS, WATCHDOG and
//! STOPPING. Without `NOTIFY_SOCKET` (not under systemd, or `run --once`)
//! nothing is sent. A failed send is logged, never fatal: systemd may have
//! gone away during a shutdown, or not read its socket.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// One message to `NOTIFY_SOCKET`, never waiting: a manager that does not
/// read its socket (a full queue) must not stop the job loop, which sends
/// from its own thread; the message is dropped instead (the next STATUS
/// says the same and more). `sd_notify::notify` sends blocking.
fn send(message: &str) {
    send_waiting(message, None);
}

/// READY and STOPPING are sent once and matter (systemd waits for READY),
/// so they may wait a moment for room: `wait`, at most.
fn send_waiting(message: &str, wait: Option<Duration>) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|sock| {
        match wait {
            Some(wait) => sock.set_write_timeout(Some(wait))?,
            None => sock.set_nonblocking(true)?,
        }
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
        match bytes.strip_prefix(b"@") {
            // An abstract socket (systemd's own are paths, containers' may not be).
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(message.as_bytes(), &addr)
            }
            None => sock.send_to(message.as_bytes(), &path),
        }
    });
    if let Err(e) = sent {
        tracing::debug!("cannot notify systemd: {e}");
    }
}

/// How long READY or STOPPING may wait for room in a full queue.
const ONCE_WAIT: Duration = Duration::from_secs(1);

/// Start-up is done: migrations ran and the files waiting at start are taken.
pub fn ready() {
    send_waiting("READY=1", Some(ONCE_WAIT));
}

pub fn stopping() {
    send_waiting("STOPPING=1", Some(ONCE_WAIT));
}

/// One line on what the daemon does (`systemctl status` shows it).
pub fn status(line: &str) {
    // One line: the protocol ends a field at a newline.
    send(&format!("STATUS={}", line.replace('\n', "; ")));
}

pub fn watchdog() {
    send("WATCHDOG=1");
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when systemd
/// set one for this process.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .map(|d| d / 2)
        .filter(|d| !d.is_zero())
}
