//! Drop folders: which files are waiting. Half-written files are never taken:
//! names ending in `.tmp`, `.part` or `.partial` and hidden files are ignored,
//! and so are the `processed/` and `rejected/` folders beside them.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Whether a file name marks a file that is still being written, or hidden.
pub fn is_ignored_name(name: &str) -> bool {
    name.starts_with('.')
        || [".tmp", ".part", ".partial"]
            .iter()
            .any(|ext| name.to_ascii_lowercase().ends_with(ext))
}

/// The regular files waiting in `dir`, oldest first (then by name), so that
/// successive snapshots are taken in the order they were written.
pub fn waiting_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            // A name that is not UTF-8 cannot be reported cleanly; skip it
            // rather than mangle it.
            tracing::warn!(folder = %dir.display(), "skipping a file whose name is not UTF-8");
            continue;
        };
        if is_ignored_name(name) {
            continue;
        }
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        files.push((
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            entry.path(),
        ));
    }
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_and_hidden_files_are_not_taken() {
        for name in [".hidden.csv", "x.csv.tmp", "x.PART", "x.partial"] {
            assert!(is_ignored_name(name), "{name}");
        }
        assert!(!is_ignored_name("export.csv"));
    }

    #[test]
    fn lists_files_not_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("processed")).unwrap();
        std::fs::write(dir.path().join("a.csv"), "x").unwrap();
        std::fs::write(dir.path().join("b.csv.part"), "x").unwrap();
        let files = waiting_files(dir.path()).unwrap();
        assert_eq!(files, vec![dir.path().join("a.csv")]);
    }
}
