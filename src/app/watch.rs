//! Drop folders watched for file events (the `notify` crate: inotify on
//! Linux). Events are hints that start intake of a source; a periodic rescan
//! catches what was missed, and is all that `watch_mode = "poll"` uses
//! (network shares, where inotify sees nothing).
//!
//! A file renamed into the folder is complete (a CMS that writes a temporary
//! name and renames it is done with it), so it is taken at once; a file
//! written in place waits for `settle_secs`. A folder that disappears stops
//! its watch; the daemon's rescan finds it again and calls `ensure` to watch
//! it anew.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

/// What a file event means for intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// A file was renamed into the folder: complete, take it now.
    Renamed(PathBuf),
    /// A file was created or written in place: take it once it settles.
    Written,
}

/// A hint for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHint {
    pub source: String,
    pub hint: Hint,
}

/// The watches of every `notify` source, by source name.
pub struct Watches {
    tx: UnboundedSender<FileHint>,
    /// The folder watched, its identity (device, inode) when the watch
    /// began, and the watch.
    watchers: HashMap<String, Watched>,
}

struct Watched {
    folder: PathBuf,
    identity: Option<(u64, u64)>,
    /// Set by the watch itself when its folder is removed: a new folder may
    /// get the old one's inode number, so the identity alone cannot tell.
    gone: Arc<AtomicBool>,
    _watcher: RecommendedWatcher,
}

/// A folder's identity: a folder removed and made again under the same name
/// is another folder, and the old watch sees nothing of it.
fn identity(folder: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(folder)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

impl Watches {
    pub fn new(tx: UnboundedSender<FileHint>) -> Watches {
        Watches {
            tx,
            watchers: HashMap::new(),
        }
    }

    /// Watches `folder` for `source` unless it is watched already. `false`
    /// when it cannot be watched now (missing): the next rescan tries again.
    pub fn ensure(&mut self, source: &str, folder: &Path) -> bool {
        let now = identity(folder);
        if let Some(w) = self.watchers.get(source) {
            // A watch on a folder that was removed sees nothing any more,
            // even when a new folder appears under the same name.
            if w.folder == folder
                && now.is_some()
                && w.identity == now
                && !w.gone.load(Ordering::Relaxed)
            {
                return true;
            }
            self.watchers.remove(source);
        }
        if now.is_none() {
            return false;
        }
        let tx = self.tx.clone();
        let name = source.to_string();
        let gone = Arc::new(AtomicBool::new(false));
        let (gone_in, watched) = (gone.clone(), folder.to_path_buf());
        let handler = move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, EventKind::Remove(_)) && event.paths.contains(&watched) {
                gone_in.store(true, Ordering::Relaxed);
            }
            for hint in hints(&event) {
                // The daemon may be stopping: a closed channel is fine.
                let _ = tx.send(FileHint {
                    source: name.clone(),
                    hint,
                });
            }
        };
        let watcher = notify::recommended_watcher(handler)
            .and_then(|mut w| w.watch(folder, RecursiveMode::NonRecursive).map(|()| w));
        match watcher {
            Ok(w) => {
                self.watchers.insert(
                    source.to_string(),
                    Watched {
                        folder: folder.to_path_buf(),
                        identity: now,
                        gone,
                        _watcher: w,
                    },
                );
                true
            }
            Err(e) => {
                tracing::warn!(
                    source,
                    "cannot watch the drop folder ({e}); the rescan still looks at it"
                );
                false
            }
        }
    }

    /// Stops watching sources that are no longer configured.
    pub fn retain(&mut self, sources: &[&str]) {
        self.watchers.retain(|s, _| sources.contains(&s.as_str()));
    }
}

/// The hints in one event: files only, never the `processed/` and
/// `rejected/` folders visync itself makes.
fn hints(event: &notify::Event) -> Vec<Hint> {
    let files = || {
        event.paths.iter().filter(|p| !p.is_dir()).filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !crate::source::is_ignored_name(n))
        })
    };
    match event.kind {
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
            files().cloned().map(Hint::Renamed).collect()
        }
        // Both: `paths` is [from, to]; only `to` is in the folder for sure.
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => event
            .paths
            .last()
            .filter(|p| files().any(|f| f == *p))
            .cloned()
            .map(Hint::Renamed)
            .into_iter()
            .collect(),
        EventKind::Create(CreateKind::File | CreateKind::Any)
        | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
        | EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
            if files().next().is_some() {
                vec![Hint::Written]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_renamed_file_is_a_rename_hint_and_a_written_one_a_write_hint() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut w = Watches::new(tx);
        assert!(w.ensure("s", dir.path()));
        let tmp = dir.path().join("a.csv.tmp");
        std::fs::write(&tmp, b"x").unwrap();
        let done = dir.path().join("a.csv");
        std::fs::rename(&tmp, &done).unwrap();
        // The `.tmp` writes give no hint; the rename does (inotify's pair of
        // moves may come as one event or as two).
        let got = rx.recv().await.unwrap();
        assert_eq!(got.source, "s");
        assert_eq!(got.hint, Hint::Renamed(done.clone()));
        std::fs::write(dir.path().join("b.csv"), b"y").unwrap();
        while let Hint::Renamed(p) = rx.recv().await.unwrap().hint {
            assert_eq!(p, done);
        }
    }

    #[test]
    fn a_missing_folder_is_not_watched_and_a_new_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut w = Watches::new(tx);
        let folder = dir.path().join("in");
        assert!(!w.ensure("s", &folder));
        std::fs::create_dir(&folder).unwrap();
        assert!(w.ensure("s", &folder));
        std::fs::remove_dir(&folder).unwrap();
        assert!(!w.ensure("s", &folder));
        std::fs::create_dir(&folder).unwrap();
        assert!(w.ensure("s", &folder));
    }

    #[tokio::test]
    async fn a_folder_made_again_under_the_same_name_is_watched_anew() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("in");
        std::fs::create_dir(&folder).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut w = Watches::new(tx);
        assert!(w.ensure("s", &folder));
        std::fs::remove_dir(&folder).unwrap();
        // The watch hears its folder go (the daemon's rescan comes later).
        let gone = &w.watchers["s"].gone;
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !gone.load(Ordering::Relaxed) {
            assert!(std::time::Instant::now() < end, "the removal was not seen");
            tokio::task::yield_now().await;
        }
        std::fs::create_dir(&folder).unwrap();
        assert!(w.ensure("s", &folder));
        let tmp = folder.join("a.csv.tmp");
        std::fs::write(&tmp, b"x").unwrap();
        std::fs::rename(&tmp, folder.join("a.csv")).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("the new folder's rename is heard");
        assert_eq!(got.unwrap().hint, Hint::Renamed(folder.join("a.csv")));
    }
}
