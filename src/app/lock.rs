//! One state, one worker: an exclusive lock beside a SQLite state database.
//!
//! Owns: `state.db.lock` beside `state.db`, locked with the kernel's advisory
//! lock (`flock` on Linux, through std's `File::try_lock`), and the holder's
//! pid and role written into it so that whoever is refused can be told who
//! holds it. The lock belongs to the open file, not to the file on disk: it
//! ends when the process ends (crash or SIGKILL included), so a leftover
//! file is harmless and is simply taken over.
//! Must not: be used for a PostgreSQL state (several instances share that
//! one by design), or decide which commands lock (the CLI does).
//!
//! `flock` locks belong to an open file description, so a second open of the
//! same file conflicts even inside one process; the tests rely on that.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a waiting command looks again. Polling is the sound way here:
/// a blocking `File::lock` in a spawned thread cannot be called off at the
/// timeout, and would later take the lock in a thread nobody listens to and
/// hold it until the process ends. Five looks a second cost nothing and
/// keep the wait short once the holder lets go.
const POLL: Duration = Duration::from_millis(200);

/// The most of a lock file read to name its holder: a pid and a short role.
/// Bounded, as anyone who can write the folder can write the file.
const HOLDER_MAX_BYTES: u64 = 256;

/// The state is held by this process for as long as this lives; dropping it
/// (or the process ending) releases it.
#[derive(Debug)]
pub struct StateLock {
    /// Kept open for the process lifetime: the lock lives on it.
    file: File,
    /// The lock file (`state.db.lock`), for messages.
    path: PathBuf,
}

impl StateLock {
    /// The lock file this holds.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first says so
        // here. A failure leaves the close to do it, so it is not reported.
        let _ = self.file.unlock();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the state {} is in use by {holder}; stop that process first, or use the running service",
        .state.display()
    )]
    Held { state: PathBuf, holder: String },
    #[error(
        "the state {} is still in use by {holder} after waiting {}; nothing was changed. \
         Stop that process first (for the service: systemctl stop visync), run this again, \
         then start it",
        .state.display(),
        seconds(*.waited)
    )]
    Timeout {
        state: PathBuf,
        holder: String,
        waited: Duration,
    },
    #[error(
        "cannot {action} the lock file {}: {source}; check that its folder exists and that \
         this user may write there",
        .path.display()
    )]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
}

/// The lock file of a SQLite state: its path plus `.lock`
/// (`/var/lib/visync/state.db` → `/var/lib/visync/state.db.lock`).
pub fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the state's lock, or says who holds it. One look, no waiting: for
/// the daemon, which must not start beside another worker.
pub fn acquire(state: &Path, who: &str) -> Result<StateLock, LockError> {
    let path = lock_path(state);
    let file = open(&path)?;
    if try_lock(&file, &path)? {
        return claim(file, path, who);
    }
    Err(LockError::Held {
        state: state.to_path_buf(),
        holder: read_holder(&path),
    })
}

/// Takes the state's lock, waiting up to `timeout` if another process holds
/// it: for one-shot commands that write. `on_wait` is told the holder once,
/// before waiting, so the caller can say that it waits and for whom.
pub async fn acquire_waiting(
    state: &Path,
    who: &str,
    timeout: Duration,
    on_wait: impl FnOnce(&str),
) -> Result<StateLock, LockError> {
    let path = lock_path(state);
    let file = open(&path)?;
    if try_lock(&file, &path)? {
        return claim(file, path, who);
    }
    on_wait(&read_holder(&path));
    let started = tokio::time::Instant::now();
    // Cancelling the poll at the timeout is safe: each look either took the
    // lock (and the poll returned) or left nothing behind.
    match tokio::time::timeout(timeout, poll_until_locked(&file, &path)).await {
        Ok(Ok(())) => claim(file, path, who),
        Ok(Err(e)) => Err(e),
        Err(_elapsed) => Err(LockError::Timeout {
            state: state.to_path_buf(),
            // Read again: the holder may have changed while we waited.
            holder: read_holder(&path),
            waited: started.elapsed(),
        }),
    }
}

/// Opens (creating, mode 0600) the lock file, and its folder as
/// `Store::open` would, so that the lock can be taken before the store is
/// opened. Never truncates: the file may name a live holder.
fn open(path: &Path) -> Result<File, LockError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(path, "create the folder of"))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io(path, "open"))
}

/// One non-blocking look: `true` if the lock is now ours.
fn try_lock(file: &File, path: &Path) -> Result<bool, LockError> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(io(path, "lock")(e)),
    }
}

/// Looks every `POLL` until the lock is ours.
async fn poll_until_locked(file: &File, path: &Path) -> Result<(), LockError> {
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if try_lock(file, path)? {
            return Ok(());
        }
    }
}

/// Writes who holds the lock (now ours) into the file: the pid on the first
/// line, so that `ps -p "$(head -1 state.db.lock)"` works, the role on the
/// second. A waiting process that reads between our lock and this write
/// sees the previous holder's lines; the window is a few microseconds.
fn claim(mut file: File, path: PathBuf, who: &str) -> Result<StateLock, LockError> {
    let role = who.replace(['\n', '\r'], " ");
    let text = format!("{}\n{role}\n", std::process::id());
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(text.as_bytes()))
        .map_err(io(&path, "write the holder into"))?;
    Ok(StateLock { file, path })
}

/// The holder as a message names it: "pid 1234 (visync run (daemon))".
/// Never fails: a refusal must still be explained when the file cannot be
/// read or the holder has not written it yet.
fn read_holder(path: &Path) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|f| f.take(HOLDER_MAX_BYTES).read_to_string(&mut text));
    if read.is_err() {
        return "another process (the lock file cannot be read)".into();
    }
    describe(&text)
}

/// Reads the two lines `claim` writes.
fn describe(text: &str) -> String {
    let mut lines = text.lines();
    let pid = lines
        .next()
        .map(str::trim)
        .filter(|p| p.parse::<u32>().is_ok());
    let role = lines.next().map(str::trim).filter(|r| !r.is_empty());
    match (pid, role) {
        (Some(pid), Some(role)) => format!("pid {pid} ({role})"),
        (Some(pid), None) => format!("pid {pid}"),
        (None, _) => "another process (its pid is not written yet)".into(),
    }
}

/// "30 s", "0.3 s": a wait as a person reads it.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 || d >= Duration::from_secs(10) {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Wraps an IO failure with the file and what was being done to it.
fn io(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> LockError {
    let path = path.to_path_buf();
    move |source| LockError::Io {
        path,
        action,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use tokio::sync::Notify;

    fn state_in(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("state.db")
    }

    fn held_by_us() -> String {
        format!("pid {} (visync run (daemon))", std::process::id())
    }

    #[test]
    fn lock_path_appends_lock() {
        assert_eq!(
            lock_path(Path::new("/var/lib/visync/state.db")),
            Path::new("/var/lib/visync/state.db.lock")
        );
    }

    #[test]
    fn the_file_names_the_holder_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let lock = acquire(&state_in(&dir), "visync run (daemon)").unwrap();
        assert_eq!(lock.path(), dir.path().join("state.db.lock"));
        let text = std::fs::read_to_string(lock.path()).unwrap();
        assert_eq!(
            text,
            format!("{}\nvisync run (daemon)\n", std::process::id())
        );
        let mode = std::fs::metadata(lock.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_second_acquire_in_the_same_process_is_refused_naming_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        let _first = acquire(&state, "visync run (daemon)").unwrap();
        let err = acquire(&state, "visync run --once").unwrap_err();
        let LockError::Held { holder, .. } = &err else {
            panic!("expected Held, got {err:?}");
        };
        assert_eq!(holder, &held_by_us());
        assert_eq!(
            err.to_string(),
            format!(
                "the state {} is in use by {}; stop that process first, or use the running service",
                state.display(),
                held_by_us()
            )
        );
        // The refused attempt left the holder's lines alone.
        let text = std::fs::read_to_string(lock_path(&state)).unwrap();
        assert!(text.ends_with("visync run (daemon)\n"), "{text}");
    }

    #[test]
    fn dropping_releases() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        drop(acquire(&state, "visync run (daemon)").unwrap());
        acquire(&state, "visync run --once").unwrap();
    }

    #[test]
    fn a_leftover_file_is_taken_over_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        // A crashed holder's longer lines: truncated, not overwritten in part.
        std::fs::write(
            lock_path(&state),
            "4000000\nvisync run (a very long role)\n",
        )
        .unwrap();
        let lock = acquire(&state, "visync release").unwrap();
        let text = std::fs::read_to_string(lock.path()).unwrap();
        assert_eq!(text, format!("{}\nvisync release\n", std::process::id()));
    }

    #[test]
    fn the_folder_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("new").join("state.db");
        acquire(&state, "visync run (daemon)").unwrap();
        assert!(lock_path(&state).exists());
    }

    #[test]
    fn describe_reads_what_claim_writes_and_copes_with_less() {
        assert_eq!(
            describe("1234\nvisync run (daemon)\n"),
            "pid 1234 (visync run (daemon))"
        );
        assert_eq!(describe("1234\n"), "pid 1234");
        assert_eq!(describe(""), "another process (its pid is not written yet)");
        assert_eq!(
            describe("garbage"),
            "another process (its pid is not written yet)"
        );
    }

    #[tokio::test]
    async fn waiting_is_not_needed_when_free() {
        let dir = tempfile::tempdir().unwrap();
        let mut told = false;
        let lock = acquire_waiting(&state_in(&dir), "visync release", POLL, |_| told = true)
            .await
            .unwrap();
        assert!(!told);
        assert!(lock.path().exists());
    }

    #[tokio::test]
    async fn waiting_takes_the_lock_once_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        let first = acquire(&state, "visync run (daemon)").unwrap();
        let told = Notify::new();
        let mut seen = None;
        // A generous timeout: the release below, not the clock, ends the wait.
        let waiter = acquire_waiting(&state, "visync release", Duration::from_secs(30), |h| {
            seen = Some(h.to_owned());
            told.notify_one();
        });
        let releaser = async {
            told.notified().await;
            drop(first);
        };
        let (second, ()) = tokio::join!(waiter, releaser);
        let second = second.unwrap();
        assert_eq!(seen.as_deref(), Some(held_by_us().as_str()));
        let text = std::fs::read_to_string(second.path()).unwrap();
        assert!(text.ends_with("\nvisync release\n"), "{text}");
    }

    #[tokio::test]
    async fn waiting_gives_up_at_the_timeout_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(&dir);
        let _first = acquire(&state, "visync run (daemon)").unwrap();
        let timeout = Duration::from_millis(300);
        let mut told = 0;
        // A real, bounded wait: the lock is a kernel lock, not tokio time.
        let err = acquire_waiting(&state, "visync release", timeout, |_| told += 1)
            .await
            .unwrap_err();
        assert_eq!(told, 1);
        let LockError::Timeout { holder, waited, .. } = &err else {
            panic!("expected Timeout, got {err:?}");
        };
        assert_eq!(holder, &held_by_us());
        assert!(*waited >= timeout, "{waited:?}");
        let message = err.to_string();
        assert!(message.contains(&held_by_us()), "{message}");
        assert!(message.contains("systemctl stop visync"), "{message}");
    }

    #[test]
    fn seconds_reads_well() {
        assert_eq!(seconds(Duration::from_secs(30)), "30 s");
        assert_eq!(seconds(Duration::from_millis(300)), "0.3 s");
        assert_eq!(seconds(Duration::from_millis(30_200)), "30 s");
    }
}
