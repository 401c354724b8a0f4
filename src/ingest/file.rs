//! Files from a drop folder: settled, recognised by hash, read and planned,
//! applied, then moved to `processed/` (or `rejected/` with a report).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{io, Commit, IngestError, IngestSummary, Input, Intake};
use crate::app::events::{Event, FileOutcome};
use crate::pipeline;
use crate::source::{waiting_files, ReadError};
use crate::store::files::TakenFile;
use crate::store::{ts, Applied, Audit, LedgerOutcome, Taken};

impl Intake<'_> {
    pub async fn take_waiting(&self) -> Result<IngestSummary, IngestError> {
        let mut summary = IngestSummary::default();
        let files = waiting_files(&self.watch).map_err(io(&self.watch))?;
        for path in files {
            match self.take_one(&path, &mut summary).await {
                Ok(()) => {}
                // Gone between the listing and its reading: taken by
                // another instance on the shared store (or removed by
                // hand). Nothing of it is ours to report.
                Err(IngestError::Io { path, source })
                    if source.kind() == std::io::ErrorKind::NotFound && !path.exists() =>
                {
                    tracing::debug!(file = %path.display(), "gone before it was taken");
                }
                // One file that cannot be opened, read or moved (permissions,
                // a read-only mount) does not stop the others; it is tried
                // again at the next look. The store failing stops the intake.
                Err(IngestError::Io { path, source }) => {
                    tracing::error!(
                        source = self.mapping.name,
                        file = %path.display(),
                        "cannot take the file now, trying again later: {source}"
                    );
                    summary.failed += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(summary)
    }

    /// One file, in steps: settled and hashed, recognised, planned (pass 1),
    /// applied (pass 2 and the commit), moved, counted.
    async fn take_one(&self, path: &Path, summary: &mut IngestSummary) -> Result<(), IngestError> {
        let source = self.mapping.name.as_str();
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let Some((sha256, size)) = self.settled(path).await? else {
            summary.unsettled += 1;
            return Ok(());
        };
        // Claimed by its content before it is read, and let go once its
        // outcome is recorded and it is moved: on a shared store another
        // instance that took over this source's lease mid-file leaves it
        // alone until then (or until this instance's lease runs out).
        if let Taken::Elsewhere { holder } = self
            .store
            .claim_file(source, &sha256, self.clock.now())
            .await?
        {
            tracing::info!(
                source,
                file = name,
                holder,
                "being taken by another instance"
            );
            return Ok(());
        }
        let result = self
            .take_claimed(path, name, sha256.clone(), size, summary)
            .await;
        let released = self.store.release_file(source, &sha256).await;
        // The taking's own error first; a claim not let go runs out.
        result.and(released.map_err(Into::into))
    }

    async fn take_claimed(
        &self,
        path: &Path,
        name: String,
        sha256: String,
        size: u64,
        summary: &mut IngestSummary,
    ) -> Result<(), IngestError> {
        let source = self.mapping.name.as_str();
        if self.moved_if_seen(path, &name, &sha256).await? {
            summary.duplicates += 1;
            return Ok(());
        }
        let mut taken = TakenFile {
            source: source.to_string(),
            name: name.clone(),
            sha256,
            size,
            records: 0,
            accepted: 0,
            rejected: 0,
            skipped: 0,
        };

        // Pass 1: plan.
        let objections = Arc::new(self.store.objections().await?);
        let mut outcome = match self
            .read(
                Input::File(path.to_path_buf()),
                objections.clone(),
                pipeline::read_file,
            )
            .await
        {
            Ok(o) => o,
            Err(e) => return self.reject_file(path, &taken, &e, summary).await,
        };
        self.tell_rejections(&name, &outcome.rejections);
        taken.records = outcome.records;
        taken.accepted = outcome.accepted;
        taken.rejected = outcome.rejected;
        taken.skipped = outcome.skipped;
        let (plan, active) = self.plan(&mut outcome.desired).await?;
        crate::fault::point("ingest-planned");

        // Pass 2 and the commit.
        let applied = match self
            .apply(
                Input::File(path.to_path_buf()),
                Commit::File(&taken),
                plan,
                outcome.desired,
                active,
                objections,
            )
            .await?
        {
            Ok(a) => a,
            Err(e) => return self.reject_file(path, &taken, &e, summary).await,
        };
        self.move_to(path, "processed")?;
        self.tell_taken(&taken, &applied);
        add_taken(summary, &taken, &applied);
        Ok(())
    }

    /// The file's hash and size once it has settled: old enough (or renamed
    /// into the folder, so complete), and unchanged while it was hashed.
    /// `None`: still being written, left for a later look.
    async fn settled(&self, path: &Path) -> Result<Option<(String, u64)>, IngestError> {
        let before = std::fs::metadata(path).map_err(io(path))?;
        let modified: chrono::DateTime<chrono::Utc> = before
            .modified()
            .map_or(chrono::DateTime::UNIX_EPOCH, chrono::DateTime::from);
        let age = (self.clock.wall() - modified)
            .to_std()
            .unwrap_or(Duration::ZERO);
        if age < self.settle && !self.fresh.contains(path) {
            return Ok(None);
        }
        let owned = path.to_path_buf();
        let hashed = tokio::task::spawn_blocking(move || hash_file(&owned))
            .await
            .expect("hashing does not panic")
            .map_err(io(path))?;
        let after = std::fs::metadata(path).map_err(io(path))?;
        if after.len() != before.len() || after.modified().ok() != before.modified().ok() {
            // Still being written: the second look differs from the first.
            return Ok(None);
        }
        Ok(Some(hashed))
    }

    /// A file whose content was taken before (under any name) is moved
    /// where the first went, and not read again. `true`: it was.
    async fn moved_if_seen(
        &self,
        path: &Path,
        name: &str,
        sha256: &str,
    ) -> Result<bool, IngestError> {
        let source = self.mapping.name.as_str();
        let Some(seen) = self.store.file_seen(source, sha256).await? else {
            return Ok(false);
        };
        tracing::info!(
            source,
            file = name,
            first = seen.name,
            at = seen.taken_at,
            "already taken (same content): moved aside, not read again"
        );
        let dir = if seen.outcome == LedgerOutcome::Rejected {
            "rejected"
        } else {
            "processed"
        };
        self.move_to(path, dir)?;
        self.tell_file(name, FileOutcome::Duplicate);
        Ok(true)
    }

    /// A file taken: its event, its records' event and its log line.
    fn tell_taken(&self, taken: &TakenFile, applied: &Applied) {
        let source = self.mapping.name.as_str();
        self.tell_file(&taken.name, FileOutcome::Processed);
        self.events.emit(Event::Records {
            source: source.to_string(),
            accepted: taken.accepted,
            rejected: taken.rejected,
            skipped: taken.skipped,
        });
        tracing::info!(
            source,
            file = taken.name,
            records = taken.records,
            accepted = taken.accepted,
            rejected = taken.rejected,
            skipped = taken.skipped,
            registered = applied.registered,
            updated = applied.updated,
            withdrawn = applied.withdrawn,
            renewed = applied.renewed,
            held = applied.held,
            "file taken"
        );
    }

    async fn reject_file(
        &self,
        path: &Path,
        taken: &TakenFile,
        e: &ReadError,
        summary: &mut IngestSummary,
    ) -> Result<(), IngestError> {
        let message = e.to_string();
        tracing::error!(
            source = taken.source,
            file = taken.name,
            "file refused as a whole: {message}"
        );
        let at = ts(self.clock.now());
        let mut tx = self.store.begin().await?;
        tx.record_file(taken, LedgerOutcome::Rejected, Some(&message), &at)
            .await?;
        let event = Audit::FileRejected {
            file: &taken.name,
            sha256: &taken.sha256,
        };
        tx.audit(&at, None, Some(&taken.source), &event).await?;
        tx.commit().await?;
        let moved = self.move_to(path, "rejected")?;
        let report = serde_json::json!({
            "source": taken.source, "file": taken.name, "sha256": taken.sha256, "at": at, "error": message,
            "what_to_do": "fix the export (or the mapping) and drop the file again; nothing in this file was used",
        });
        let report_path = moved.with_file_name(format!(
            "{}.error.json",
            moved.file_name().unwrap_or_default().to_string_lossy()
        ));
        std::fs::write(
            &report_path,
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        )
        .map_err(io(&report_path))?;
        self.tell_file(&taken.name, FileOutcome::Rejected);
        summary.unreadable += 1;
        Ok(())
    }

    fn tell_file(&self, file: &str, outcome: FileOutcome) {
        self.events.emit(Event::FileTaken {
            source: self.mapping.name.clone(),
            file: file.to_string(),
            outcome,
        });
    }

    /// Moves a file to `processed/YYYY-MM-DD/` or `rejected/` beside it, never
    /// over another file.
    fn move_to(&self, path: &Path, dir: &str) -> Result<PathBuf, IngestError> {
        let mut target = self.watch.join(dir);
        if dir == "processed" {
            target.push(self.clock.today().to_string());
        }
        std::fs::create_dir_all(&target).map_err(io(&target))?;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut dest = target.join(&name);
        let mut n = 1;
        while dest.exists() {
            dest = target.join(format!("{name}.{n}"));
            n += 1;
        }
        std::fs::rename(path, &dest).map_err(io(path))?;
        Ok(dest)
    }
}

/// A taken file's counts into the pass's summary.
fn add_taken(summary: &mut IngestSummary, taken: &TakenFile, applied: &Applied) {
    summary.files += 1;
    summary.records += taken.records;
    summary.accepted += taken.accepted;
    summary.rejected += taken.rejected;
    summary.skipped += taken.skipped;
    let a = &mut summary.applied;
    a.registered += applied.registered;
    a.updated += applied.updated;
    a.withdrawn += applied.withdrawn;
    a.renewed += applied.renewed;
    a.held += applied.held;
}

fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((
        h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        size,
    ))
}
