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
    let key = std::fs::read(path).map_err(|e| err(format!("cannot read it: {e}")))?;
    if key.len() < KEY_BYTES {
        return Err(err(format!(
            "holds {} bytes; a key has at least {KEY_BYTES}",
            key.len()
        )));
    }
    Ok(key)
}

pub fn load_or_create(path: &Path) -> Result<Vec<u8>, StoreError> {
    if path.exists() {
        return load(path);
    }
    let mut key = vec![0u8; KEY_BYTES];
    getrandom::fill(&mut key).map_err(|e| StoreError::Key {
        path: path.to_path_buf(),
        message: format!("no randomness from the OS: {e}"),
    })?;
    // Written beside, then renamed: a crash never leaves a short key behind.
    let tmp = path.with_extension("key.tmp");
    let fail = |what: &str, e: std::io::Error| StoreError::Key {
        path: path.to_path_buf(),
        message: format!("cannot {what} it: {e}"),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail("create", e))?;
    file.write_all(&key)
        .and_then(|_| file.sync_all())
        .map_err(|e| fail("write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| fail("place", e))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
