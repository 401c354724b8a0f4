//! Delivery into a folder: one file per delivery, written under a temporary
//! name, synced, then renamed, so that the CMS never reads half a file. The
//! folder is not created: a missing folder is a configuration problem that an
//! operator should see, and the notices wait for it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::clock::Clock;
use crate::config::ReturnFormat;
use crate::store::Notice;

/// Why a delivery into the return folder failed. The notices stay pending
/// and go out on a later pass once the cause is mended. Messages name the
/// folder or file, never what the notices say.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error(
        "the return folder {} does not exist: create it (visync does not) or correct [returns] path",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error(
        "cannot create a file in the return folder {}: {source}; check that visync may write there",
        path.display()
    )]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot write the return file {}: {source}; check the disk's free space and the folder's permissions",
        path.display()
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the return folder's writer stopped before it finished: {0}; see the log for why")]
    Task(#[from] tokio::task::JoinError),
}

/// Writes `notices` as one file in `dir`; returns the file's path.
pub async fn write(
    dir: &Path,
    format: ReturnFormat,
    delimiter: u8,
    notices: &[Notice],
    clock: &Clock,
) -> Result<String, FolderError> {
    let ext = match format {
        ReturnFormat::Csv => "csv",
        ReturnFormat::Xml => "xml",
        ReturnFormat::Json => "json",
    };
    let body = super::render(format, delimiter, notices);
    let dir = dir.to_path_buf();
    let stamp = clock.now().format("%Y%m%dT%H%M%SZ").to_string();
    tokio::task::spawn_blocking(move || {
        if !dir.is_dir() {
            return Err(FolderError::Missing { path: dir });
        }
        let (name, mut file) = create(&dir, &stamp, ext)?;
        let (tmp, path) = (dir.join(format!(".{name}.tmp")), dir.join(&name));
        let done = file
            .write_all(&body)
            .and_then(|_| file.sync_all())
            .and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(source) = done {
            let _ = std::fs::remove_file(&tmp);
            return Err(FolderError::Write { path, source });
        }
        // The rename itself must survive a crash too.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(path.display().to_string())
    })
    .await?
}

/// The temporary file of the first free sequence number for this second,
/// and the name it will be renamed to.
fn create(dir: &Path, stamp: &str, ext: &str) -> Result<(String, File), FolderError> {
    let mut last = None;
    for n in 1..10_000 {
        let name = format!("visync-notices-{stamp}-{n:04}.{ext}");
        if dir.join(&name).exists() {
            continue;
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((name, f)),
            Err(e) => last = Some(e),
        }
    }
    let source = last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "every sequence number of this second is taken",
        )
    });
    Err(FolderError::Create {
        path: dir.to_path_buf(),
        source,
    })
}
