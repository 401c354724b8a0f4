//! Delivery into a folder: one file per delivery, written under a temporary
//! name, synced, then renamed, so that the CMS never reads half a file. The
//! folder is not created: a missing folder is a configuration problem that an
//! operator should see, and the notices wait for it.

use std::io::Write;
use std::path::Path;

use crate::clock::Clock;
use crate::config::ReturnFormat;
use crate::store::Notice;

pub async fn write(
    dir: &Path,
    format: ReturnFormat,
    delimiter: u8,
    notices: &[Notice],
    clock: &Clock,
) -> Result<String, String> {
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
            return Err(format!(
                "the return folder {} does not exist",
                dir.display()
            ));
        }
        // The first free sequence number for this second.
        let (name, mut file) = (1..10_000)
            .find_map(|n| {
                let name = format!("visync-notices-{stamp}-{n:04}.{ext}");
                if dir.join(&name).exists() {
                    return None;
                }
                let tmp = dir.join(format!(".{name}.tmp"));
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                    .ok()
                    .map(|f| (name, f))
            })
            .ok_or_else(|| format!("cannot create a file in {}", dir.display()))?;
        let tmp = dir.join(format!(".{name}.tmp"));
        let done = file
            .write_all(&body)
            .and_then(|_| file.sync_all())
            .and_then(|_| std::fs::rename(&tmp, dir.join(&name)));
        if let Err(e) = done {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("cannot write {}: {e}", dir.join(&name).display()));
        }
        // The rename itself must survive a crash too.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(dir.join(&name).display().to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}
