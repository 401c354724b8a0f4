//! Taking a source's records into the store: read (twice: once to plan,
//! once to write what the plan needs, so that no file or poll is ever held
//! in memory), plan against the stored state, and apply the plan in one
//! transaction together with what marks the input as taken.
//!
//! The two kinds of input differ only at their ends (`Input`, `Commit`):
//! - a file (`file.rs`): settled, recognised by hash, and after the commit
//!   moved to `processed/`; its hash in the ledger is its mark;
//! - a poll of an API source (`poll.rs`): read page by page, spooled for
//!   the second pass; the poll's row and bookmark are its mark.
//!
//! A crash at any point is safe: before the commit nothing happened; after
//! it, the mark is in the store and the next pass does not take it again.

mod file;
mod poll;

pub use poll::PollSummary;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::app::events::{Event, Events};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{Bsn, Signal, SubjectHasher, SubjectKey};
use crate::mapping::{Context, Mapping, OutcomeRef};
use crate::pipeline::{self, involvement_key};
use crate::plan::{Action, Desired, InvolvementKey, Plan};
use crate::source::{FileReader, ReadError};
use crate::store::files::TakenFile;
use crate::store::{polls, signals, ts, Applied, Audit, LedgerOutcome, Store, StoreError, Tx};

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
    /// API sources: polls run, and those that did not read every page.
    pub polls: u64,
    pub polls_incomplete: u64,
}

impl IngestSummary {
    /// A poll's counts as an intake's.
    pub fn of_poll(p: &PollSummary) -> IngestSummary {
        IngestSummary {
            records: p.records,
            accepted: p.accepted,
            rejected: p.rejected,
            skipped: p.skipped,
            applied: p.applied,
            polls: 1,
            polls_incomplete: u64::from(!p.complete),
            ..IngestSummary::default()
        }
    }
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

    /// Plans the desired state against the stored one: a snapshot against
    /// the whole source, a delta against its children only. With the
    /// count of active signals a snapshot's hold reports.
    async fn plan(&self, desired: &mut Desired) -> Result<(Plan, usize), IngestError> {
        let source = self.mapping.name.as_str();
        let baseline = match self.mapping.mode {
            crate::mapping::Mode::Snapshot => self.store.baseline(source).await?,
            crate::mapping::Mode::Delta => {
                self.store.baseline_of(source, desired.subjects()).await?
            }
        };
        let today = self.clock.today();
        let plan = desired.plan(&baseline, today, &self.cfg.rules, &self.cfg.policy);
        Ok((plan, baseline.len()))
    }

    /// Runs `f` over the input on a blocking thread, with a fresh mapping context.
    async fn read<T: Send + 'static>(
        &self,
        input: Input,
        objections: Arc<HashSet<SubjectKey>>,
        f: impl FnOnce(&Mapping, FileReader, &Context<'_>, &SubjectHasher) -> Result<T, ReadError>
            + Send
            + 'static,
    ) -> Result<T, ReadError> {
        let mapping = self.mapping.clone();
        let hasher = self.store.hasher().clone();
        let rules = self.cfg.rules;
        let today = self.clock.today();
        tokio::task::spawn_blocking(move || {
            let objected = |b: &Bsn| objections.contains(&hasher.key(b));
            let ctx = Context {
                today,
                rules,
                objected: &objected,
                reveal: false,
            };
            let reader = input.open(&mapping)?;
            f(&mapping, reader, &ctx, &hasher)
        })
        .await
        .expect("reading does not panic")
    }

    /// Applies a plan in one transaction: withdrawals (or their hold), then
    /// pass 2's writes, then the input's mark and the commit. The inner
    /// `Err` is an input that could not be read again (a file changed
    /// under us).
    async fn apply(
        &self,
        again: Input,
        commit: Commit<'_>,
        plan: Plan,
        desired: Desired,
        active: usize,
        objections: Arc<HashSet<SubjectKey>>,
    ) -> Result<Result<Applied, ReadError>, IngestError> {
        let source = self.mapping.name.as_str();
        let now = self.clock.now();
        let at = ts(now);
        let mut applied = Applied::default();
        let mut tx = self.store.begin().await?;
        tx.hold_lease(&crate::app::jobs::intake_job(source)).await?;
        if self.mapping.mode == crate::mapping::Mode::Snapshot {
            // A new snapshot supersedes a held one: its own plan decides again.
            tx.drop_holds(source).await?;
        }
        let missing = tx.has_missing(source).await?;
        let mut w = Writes {
            tx: &mut tx,
            applied: &mut applied,
            source,
            at: &at,
            now,
            missing,
        };
        self.withdraw(&mut w, &plan, commit.label(), active).await?;
        let c = &plan.counts;
        if c.register + c.update + c.renew > 0 {
            if let Err(e) = self.pass_two(&mut w, again, desired, objections).await? {
                return Ok(Err(e));
            }
        }
        match commit {
            Commit::File(taken) => {
                tx.record_file(taken, LedgerOutcome::Processed, None, &at)
                    .await?;
                let event = Audit::FileTaken {
                    file: &taken.name,
                    sha256: &taken.sha256,
                    records: taken.records,
                    accepted: taken.accepted,
                    rejected: taken.rejected,
                    skipped: taken.skipped,
                };
                tx.audit(&at, None, Some(source), &event).await?;
            }
            Commit::Poll(poll, _) => {
                tx.record_poll(source, poll, &at).await?;
                let event = Audit::PollTaken {
                    complete: poll.complete,
                    pages: poll.pages,
                    records: poll.records,
                    bookmark_advanced: poll.bookmark.is_some(),
                };
                tx.audit(&at, None, Some(source), &event).await?;
            }
        }
        crate::fault::point("ingest-before-commit");
        tx.commit().await?;
        crate::fault::point("ingest-after-commit");
        let a = &applied;
        if a.registered + a.updated + a.withdrawn + a.renewed >= STATISTICS_AFTER {
            self.store.refresh_statistics().await?;
        }
        Ok(Ok(applied))
    }

    /// The plan's withdrawals: done, or held for an operator when the
    /// snapshot would withdraw too much (`max_withdraw_fraction`).
    async fn withdraw(
        &self,
        w: &mut Writes<'_>,
        plan: &Plan,
        label: &str,
        active: usize,
    ) -> Result<(), StoreError> {
        let (source, now, at) = (w.source, w.now, w.at);
        let (tx, applied) = (&mut *w.tx, &mut *w.applied);
        for (key, reason) in &plan.withdrawals {
            if let Some(id) = tx.live_id(source, key).await? {
                tx.withdraw(source, &id, *reason, plan.withdrawals_held, now)
                    .await?;
                let reason = *reason;
                let event = if plan.withdrawals_held {
                    Audit::WithdrawHeld { reason }
                } else {
                    Audit::WithdrawPlanned {
                        reason,
                        decommission: false,
                    }
                };
                tx.audit(at, Some(&id), Some(source), &event).await?;
                if plan.withdrawals_held {
                    applied.held += 1;
                } else {
                    applied.withdrawn += 1;
                }
            }
        }
        if plan.withdrawals_held {
            tx.hold(source, label, applied.held, active as u64, at)
                .await?;
            tracing::warn!(
                source, file = label, withdrawals = applied.held, active,
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
        again: Input,
        mut desired: Desired,
        objections: Arc<HashSet<SubjectKey>>,
    ) -> Result<Result<(), ReadError>, StoreError> {
        let (send, mut recv) =
            tokio::sync::mpsc::channel::<(Action, InvolvementKey, Box<Signal>)>(256);
        let reading = self.read(again, objections, move |mapping, reader, ctx, hasher| {
            pipeline::for_each_outcome(mapping, reader, ctx, |_, outcome, _| {
                if let OutcomeRef::Signal(signal) = outcome {
                    let key = involvement_key(hasher, &signal);
                    // The first occurrence is the one planned; identical repeats are one.
                    if let Some((action, _)) = desired.take(&key) {
                        let _ = send.blocking_send((action, key, Box::new(signal.to_signal())));
                    }
                }
            })
        });
        let writing = async {
            let mut new = Vec::with_capacity(signals::REGISTER_ROWS);
            while let Some((action, key, signal)) = recv.recv().await {
                let Some((event, id)) =
                    self.write_planned(w, &mut new, action, key, signal).await?
                else {
                    continue;
                };
                w.tx.audit(w.at, Some(&id), Some(w.source), &event).await?;
            }
            w.tx.register_many(w.source, &new, w.now).await?;
            Ok::<(), StoreError>(())
        };
        let (read, written) = tokio::join!(reading, writing);
        written?;
        Ok(read)
    }

    /// One signal the plan needs, written: a registration joins the next
    /// multi-row insert; an update or renewal goes to the live row, if there
    /// still is one. The audit event and the signal's id, or `None`.
    async fn write_planned(
        &self,
        w: &mut Writes<'_>,
        new: &mut Vec<signals::NewSignal>,
        action: Action,
        key: InvolvementKey,
        signal: Box<Signal>,
    ) -> Result<Option<(Audit<'static>, String)>, StoreError> {
        let (source, now, tx) = (w.source, w.now, &mut *w.tx);
        let last_day = self.cfg.rules.last_day(signal.subject.birth_date);
        Ok(Some(match action {
            Action::Register => {
                w.applied.registered += 1;
                // Time-ordered (v7, as the protocol's example): new
                // signals append to the end of the signal_id index
                // rather than land at random pages of it.
                let old = if w.missing {
                    tx.missing_id(source, &key).await?
                } else {
                    None
                };
                let id = old.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
                new.push(signals::NewSignal {
                    id: id.clone(),
                    key,
                    signal,
                    last_day,
                });
                if new.len() == signals::REGISTER_ROWS {
                    tx.register_many(source, new, now).await?;
                    new.clear();
                }
                (Audit::RegisterPlanned, id)
            }
            Action::Update => {
                let Some(id) = tx.live_id(source, &key).await? else {
                    return Ok(None);
                };
                tx.update(source, &id, &signal, last_day, now).await?;
                w.applied.updated += 1;
                (Audit::UpdatePlanned, id)
            }
            Action::Renew { end_date } => {
                let Some(id) = tx.live_id(source, &key).await? else {
                    return Ok(None);
                };
                tx.renew(source, &id, end_date, now).await?;
                w.applied.renewed += 1;
                // The date is in the signal's row; a file's renewal
                // never recorded it in the trail.
                (Audit::RenewPlanned { end_date: None }, id)
            }
            Action::Withdraw(_) => return Ok(None),
        }))
    }
}

/// What a pass reads: a file, a poll, or a poll's spool.
enum Input {
    File(PathBuf),
    Poll(Box<poll::Start>),
    Spool(std::fs::File),
}

impl Input {
    fn open(self, mapping: &Mapping) -> Result<FileReader, ReadError> {
        match self {
            Input::File(path) => FileReader::open(&path, &mapping.reader),
            Input::Poll(start) => start.open(mapping),
            Input::Spool(file) => Ok(FileReader::Spool(Box::new(
                crate::source::api::SpoolReader::new(file),
            ))),
        }
    }
}

/// What marks an input as taken, in the plan's transaction.
/// A unit of work that queued at least this many rows refreshes the
/// database's statistics (`Store::refresh_statistics`).
const STATISTICS_AFTER: u64 = 1_000;

enum Commit<'a> {
    File(&'a TakenFile),
    /// The poll, and the source's URL as reports show it.
    Poll(&'a polls::PollRecord, &'a str),
}

impl Commit<'_> {
    /// The input as a log line or a hold names it.
    fn label(&self) -> &str {
        match self {
            Commit::File(t) => &t.name,
            Commit::Poll(_, url) => url,
        }
    }
}

/// What the steps of one file's transaction write with: the unit of work
/// (its audit chain inside), the counts, and who and when.
struct Writes<'t> {
    tx: &'t mut Tx,
    applied: &'t mut Applied,
    source: &'t str,
    at: &'t str,
    now: chrono::DateTime<chrono::Utc>,
    /// The source has `missing` signals, which a registration takes back.
    missing: bool,
}
