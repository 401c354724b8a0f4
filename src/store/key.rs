//! The per-installation key of the subject hash. Created once, mode 0600,
//! beside the store (or where `[state] key_file` says, e.g. a systemd
//! credential). Losing it makes local state unable to recognise children, so
//! it is never rotated silently.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::StoreError;

const KEY_BYTES: usize = 32;

pub fn load(path: &Path) -> Result<Vec<u8>, StoreError> {
    let err = |message: String| StoreError::Key {
        path: path.to_path_buf(),
        message,
    };
    let key = std::fs::read(path).map_err(|source| StoreError::KeyIo {
        path: path.to_path_buf(),
        what: "read",
        source,
    })?;
    if key.len() < KEY_BYTES {
        return Err(err(format!(
            "holds {} bytes; a key has at least {KEY_BYTES}",
            key.len()
        )));
    }
    Ok(key)
}

pub fn load_or_create(path: &Path) -> Result<Vec<u8>, StoreError> {
    // Only a missing file is made; the error itself says so (an `exists()`
    // check after a failed read raced with a process creating the file
    // between the two, and failed with the read's "not found").
    match load(path) {
        Ok(key) => return Ok(key),
        Err(StoreError::KeyIo { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut key = vec![0u8; KEY_BYTES];
    getrandom::fill(&mut key).map_err(|e| StoreError::Key {
        path: path.to_path_buf(),
        message: format!("no randomness from the OS: {e}"),
    })?;
    let fail = |what: &'static str, source: std::io::Error| StoreError::KeyIo {
        path: path.to_path_buf(),
        what,
        source,
    };
    // Written in full under a name of this process's own, then linked into
    // place. A link never replaces an existing file: when two processes
    // create a key at once, one wins and the other reads the winner's, so
    // no two processes ever hash children with different keys. (An
    // `exists()` check and a rename, as before, let the second replace the
    // first's key under its feet.)
    let tmp = path.with_extension(format!(
        "key.{}.{:016x}.tmp",
        std::process::id(),
        fastrand::u64(..)
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail("create", e))?;
    file.write_all(&key)
        .and_then(|_| file.sync_all())
        .map_err(|e| fail("write", e))?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return load(path),
        Err(e) => return Err(fail("place", e)),
    }
    // The new name must survive a power loss too: sync the folder's entry.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail("sync the folder of", e))?;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Regression (issue 10): the key was created after an `exists()` check
    /// and renamed into place, so two processes starting at once could each
    /// keep a different key. Now exactly one key wins, and all read it.
    #[test]
    fn the_subject_key_file_is_never_raced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subject.key");
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create(&path).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "one key for all");
        assert_eq!(keys[0], load(&path).unwrap());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
    }

    #[test]
    fn created_once_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subject.key");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), KEY_BYTES);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
