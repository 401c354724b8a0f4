//! Taking files from a drop folder into the store: settle, recognise by hash,
//! read (twice: once to plan, once to write what the plan needs, so that no
//! file is ever held in memory), apply the plan in one transaction, and only
//! then move the file to `processed/` (or `rejected/` with a report).
//!
//! A crash at any point is safe: before the commit nothing happened; after
//! it, the file's hash is in the ledger and the next pass only moves it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::app::events::{Event, Events, FileOutcome};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{Bsn, Signal, SubjectHasher, SubjectKey};
use crate::mapping::{Context, Mapping, Outcome};
use crate::pipeline::{self, involvement_key};
use crate::plan::{Action, Desired, InvolvementKey, Plan};
use crate::source::{waiting_files, FileReader, ReadError};
use crate::store::files::{self, TakenFile};
use crate::store::{signals, ts, Applied, Chain, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file or folder of the drop folder that cannot be read, written or
    /// moved now: that file is tried again at the next look.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> IngestError + '_ {
    move |source| IngestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IngestSummary {
    pub files: u64,
    /// Files whose content was taken before (under any name).
    pub duplicates: u64,
    pub unreadable: u64,
    /// Files not settled yet: left for a later pass.
    pub unsettled: u64,
    /// Files that could not be opened, read or moved now: tried again later.
    pub failed: u64,
    pub records: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub skipped: u64,
    pub applied: Applied,
}

/// One source's drop folder and what it needs to take files.
pub struct Intake<'a> {
    pub store: &'a Store,
    pub mapping: Arc<Mapping>,
    pub watch: PathBuf,
    pub settle: Duration,
    pub cfg: &'a Config,
    pub clock: Clock,
    /// Files renamed into the folder since the last look: complete, so taken
    /// without waiting for `settle` (a CMS that writes a temporary name and
    /// renames it is done with the file).
    pub fresh: &'a HashSet<PathBuf>,
    pub events: &'a Events,
}

impl Intake<'_> {
    pub async fn take_waiting(&self) -> Result<IngestSummary, IngestError> {
        let mut summary = IngestSummary::default();
        let files = waiting_files(&self.watch).map_err(io(&self.watch))?;
        for path in files {
            match self.take_one(&path, &mut summary).await {
                Ok(()) => {}
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
            .read(path, objections.clone(), pipeline::read_file)
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
        let baseline = match self.mapping.mode {
            crate::mapping::Mode::Snapshot => self.store.baseline(source).await?,
            crate::mapping::Mode::Delta => {
                self.store
                    .baseline_of(source, outcome.desired.subjects())
                    .await?
            }
        };
        let today = self.clock.today();
        let plan = outcome
            .desired
            .plan(&baseline, today, &self.cfg.rules, &self.cfg.policy);

        // Pass 2 and the commit.
        let applied = match self
            .apply(
                path,
                &taken,
                plan,
                outcome.desired,
                // The active count only a snapshot's hold reports.
                baseline.len(),
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
        let dir = if seen.outcome == "rejected" {
            "rejected"
        } else {
            "processed"
        };
        self.move_to(path, dir)?;
        self.tell_file(name, FileOutcome::Duplicate);
        Ok(true)
    }

    /// Each rejected record as a log line (positions and codes only) and an
    /// event for the metrics.
    fn tell_rejections(&self, name: &str, rejections: &[pipeline::RecordRejection]) {
        let source = self.mapping.name.as_str();
        for r in rejections {
            tracing::warn!(source, file = name, location = %r.location, code = r.code.as_str(), field = r.field.map(|f| f.name()), "{}", r.message);
            self.events.emit(Event::Rejection {
                source: source.to_string(),
                code: r.code.as_str(),
            });
        }
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

    /// Runs `f` over the file on a blocking thread, with a fresh mapping context.
    async fn read<T: Send + 'static>(
        &self,
        path: &Path,
        objections: Arc<HashSet<SubjectKey>>,
        f: impl FnOnce(&Mapping, FileReader, &Context<'_>, &SubjectHasher) -> Result<T, ReadError>
            + Send
            + 'static,
    ) -> Result<T, ReadError> {
        let mapping = self.mapping.clone();
        let hasher = self.store.hasher().clone();
        let rules = self.cfg.rules;
        let today = self.clock.today();
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let objected = |b: &Bsn| objections.contains(&hasher.key(b));
            let ctx = Context {
                today,
                rules,
                objected: &objected,
                reveal: false,
            };
            let reader = FileReader::open(&path, &mapping.reader)?;
            f(&mapping, reader, &ctx, &hasher)
        })
        .await
        .expect("reading does not panic")
    }

    /// Applies a file's plan in one transaction: withdrawals (or their hold),
    /// then pass 2's writes, then the ledger row and the commit. The inner
    /// `Err` is a file that could not be read again (it changed under us).
    async fn apply(
        &self,
        path: &Path,
        taken: &TakenFile,
        plan: Plan,
        desired: Desired,
        active: usize,
        objections: Arc<HashSet<SubjectKey>>,
    ) -> Result<Result<Applied, ReadError>, IngestError> {
        let source = taken.source.as_str();
        let now = self.clock.now();
        let at = ts(now);
        let mut applied = Applied::default();
        let mut tx = self.store.begin().await?;
        let mut chain = Chain::load(&mut tx).await?;
        if self.mapping.mode == crate::mapping::Mode::Snapshot {
            // A new snapshot supersedes a held one: its own plan decides again.
            signals::drop_holds(&mut tx, source).await?;
        }
        let mut w = Writes {
            tx: &mut tx,
            chain: &mut chain,
            applied: &mut applied,
            source,
            at: &at,
            now,
        };
        self.withdraw(&mut w, &plan, taken, active).await?;
        let c = &plan.counts;
        if c.register + c.update + c.renew > 0 {
            if let Err(e) = self.pass_two(&mut w, path, desired, objections).await? {
                return Ok(Err(e));
            }
        }
        files::insert(&mut tx, taken, "processed", None, &at).await?;
        chain
            .append(&mut tx, &at, "file_taken", None, Some(source), serde_json::json!({
                "file": taken.name, "sha256": taken.sha256, "records": taken.records,
                "accepted": taken.accepted, "rejected": taken.rejected, "skipped": taken.skipped,
            }))
            .await?;
        chain.flush(&mut tx).await?;
        crate::fault::point("ingest-before-commit");
        tx.commit().await.map_err(StoreError::from)?;
        crate::fault::point("ingest-after-commit");
        Ok(Ok(applied))
    }

    /// The plan's withdrawals: done, or held for an operator when the
    /// snapshot would withdraw too much (`max_withdraw_fraction`).
    async fn withdraw(
        &self,
        w: &mut Writes<'_>,
        plan: &Plan,
        taken: &TakenFile,
        active: usize,
    ) -> Result<(), StoreError> {
        let (source, now, at) = (w.source, w.now, w.at);
        let (tx, chain, applied) = (&mut *w.tx, &mut *w.chain, &mut *w.applied);
        for (key, reason) in &plan.withdrawals {
            if let Some(id) = signals::live_id(&mut *tx, source, key).await? {
                signals::withdraw(&mut *tx, source, &id, *reason, plan.withdrawals_held, now)
                    .await?;
                let kind = if plan.withdrawals_held {
                    "withdraw_held"
                } else {
                    "withdraw_planned"
                };
                chain
                    .append(
                        &mut *tx,
                        at,
                        kind,
                        Some(&id),
                        Some(source),
                        serde_json::json!({ "reason": reason.as_str() }),
                    )
                    .await?;
                if plan.withdrawals_held {
                    applied.held += 1;
                } else {
                    applied.withdrawn += 1;
                }
            }
        }
        if plan.withdrawals_held {
            signals::hold(
                &mut *tx,
                source,
                &taken.name,
                applied.held,
                active as u64,
                at,
            )
            .await?;
            tracing::warn!(
                source, file = taken.name, withdrawals = applied.held, active,
                "this snapshot would withdraw more than [policy] max_withdraw_fraction of the active signals: its withdrawals are held until `visync release --source {source}`"
            );
        }
        Ok(())
    }

    /// Pass 2: the file read again on a blocking thread, and each signal the
    /// plan needs (register, update, renew) written as it arrives through a
    /// bounded channel, so that no file's signals are held at once. The
    /// inner `Err` is a file that could not be read again.
    async fn pass_two(
        &self,
        w: &mut Writes<'_>,
        path: &Path,
        mut desired: Desired,
        objections: Arc<HashSet<SubjectKey>>,
    ) -> Result<Result<(), ReadError>, StoreError> {
        let (send, mut recv) =
            tokio::sync::mpsc::channel::<(Action, InvolvementKey, Box<Signal>)>(256);
        let reading = self.read(path, objections, move |mapping, reader, ctx, hasher| {
            pipeline::for_each_outcome(mapping, reader, ctx, |_, outcome| {
                if let Outcome::Signal(signal) = outcome {
                    let key = involvement_key(hasher, &signal);
                    // The first occurrence is the one planned; identical repeats are one.
                    if let Some((action, _)) = desired.take(&key) {
                        let _ = send.blocking_send((action, key, signal));
                    }
                }
            })
        });
        let writing = async {
            let mut new = Vec::with_capacity(signals::REGISTER_ROWS);
            while let Some((action, key, signal)) = recv.recv().await {
                let Some((kind, id)) = self.write_planned(w, &mut new, action, key, signal).await?
                else {
                    continue;
                };
                w.chain
                    .append(
                        &mut *w.tx,
                        w.at,
                        kind,
                        Some(&id),
                        Some(w.source),
                        serde_json::json!({}),
                    )
                    .await?;
            }
            signals::register_many(&mut *w.tx, w.source, &new, w.now).await?;
            Ok::<(), StoreError>(())
        };
        let (read, written) = tokio::join!(reading, writing);
        written?;
        Ok(read)
    }

    /// One signal the plan needs, written: a registration joins the next
    /// multi-row insert; an update or renewal goes to the live row, if there
    /// still is one. The audit event's kind and the signal's id, or `None`.
    async fn write_planned(
        &self,
        w: &mut Writes<'_>,
        new: &mut Vec<signals::NewSignal>,
        action: Action,
        key: InvolvementKey,
        signal: Box<Signal>,
    ) -> Result<Option<(&'static str, String)>, StoreError> {
        let (source, now, tx) = (w.source, w.now, &mut *w.tx);
        let last_day = self.cfg.rules.last_day(signal.subject.birth_date);
        Ok(Some(match action {
            Action::Register => {
                w.applied.registered += 1;
                // Time-ordered (v7, as the protocol's example): new
                // signals append to the end of the signal_id index
                // rather than land at random pages of it.
                let id = uuid::Uuid::now_v7().to_string();
                new.push(signals::NewSignal {
                    id: id.clone(),
                    key,
                    signal,
                    last_day,
                });
                if new.len() == signals::REGISTER_ROWS {
                    signals::register_many(&mut *tx, source, new, now).await?;
                    new.clear();
                }
                ("register_planned", id)
            }
            Action::Update => {
                let Some(id) = signals::live_id(&mut *tx, source, &key).await? else {
                    return Ok(None);
                };
                signals::update(&mut *tx, source, &id, &signal, last_day, now).await?;
                w.applied.updated += 1;
                ("update_planned", id)
            }
            Action::Renew { end_date } => {
                let Some(id) = signals::live_id(&mut *tx, source, &key).await? else {
                    return Ok(None);
                };
                signals::renew(&mut *tx, source, &id, end_date, now).await?;
                w.applied.renewed += 1;
                ("renew_planned", id)
            }
            Action::Withdraw(_) => return Ok(None),
        }))
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
        files::insert(&mut tx, taken, "rejected", Some(&message), &at).await?;
        Chain::append_one(
            &mut tx,
            &at,
            "file_rejected",
            None,
            Some(&taken.source),
            serde_json::json!({ "file": taken.name, "sha256": taken.sha256 }),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
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

/// What the steps of one file's transaction write with: the transaction, the
/// audit chain, the counts, and who and when.
struct Writes<'t> {
    tx: &'t mut sqlx::Transaction<'static, sqlx::Sqlite>,
    chain: &'t mut Chain,
    applied: &'t mut Applied,
    source: &'t str,
    at: &'t str,
    now: chrono::DateTime<chrono::Utc>,
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
