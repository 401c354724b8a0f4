//! One poll of an API source: read page by page (pass 1, spooled), planned,
//! applied from the spool (pass 2) with the poll's row and bookmark in the
//! same transaction. A poll that did not read every page withdraws nothing
//! and advances no bookmark.

use std::sync::{Arc, Mutex};

use super::{Commit, IngestError, Input, Intake};
use crate::app::events::Event;
use crate::mapping::{Mapping, Mode};
use crate::pipeline;
use crate::source::api::{self, PollReader, PollState, Spool};
use crate::source::{FileReader, ReadError};
use crate::store::polls::PollRecord;
use crate::store::Applied;

/// What one poll did.
#[derive(Debug, Default, Clone)]
pub struct PollSummary {
    pub complete: bool,
    /// Why not, in visync's words (no content, no token).
    pub failure: Option<String>,
    /// The credentials were refused: a configuration problem.
    pub auth_failed: bool,
    pub pages: u64,
    pub records: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub skipped: u64,
    pub applied: Applied,
}

/// Everything the first pass's reader needs, built on the async side and
/// opened on the blocking thread (where the reader blocks on each page).
pub struct Start {
    handle: tokio::runtime::Handle,
    spec: Arc<api::ApiSpec>,
    url: url::Url,
    state: Arc<Mutex<PollState>>,
    spool: Option<Spool>,
}

impl Start {
    pub fn new(
        spec: Arc<api::ApiSpec>,
        url: url::Url,
        state: Arc<Mutex<PollState>>,
        spool: Option<Spool>,
    ) -> Start {
        Start {
            handle: tokio::runtime::Handle::current(),
            spec,
            url,
            state,
            spool,
        }
    }

    pub fn open(self, mapping: &Mapping) -> Result<FileReader, ReadError> {
        Ok(FileReader::Poll(Box::new(PollReader::new(
            self.handle,
            self.spec,
            mapping.reader.keys.clone(),
            self.url,
            self.state,
            self.spool,
        )?)))
    }
}

impl Intake<'_> {
    /// Polls the source once and takes what it read: read every page
    /// (pass 1, spooled), plan, apply from the spool (pass 2, with the poll's
    /// row and bookmark), tell.
    pub async fn poll(&self) -> Result<PollSummary, IngestError> {
        let Some(spec) = self.mapping.api().cloned() else {
            return Ok(PollSummary::default());
        };
        let shown = spec.shown_url();
        let dir = self.spool_dir();
        let (spool, spooled) = Spool::create(&dir).map_err(super::io(&dir))?;
        let objections = Arc::new(self.store.objections().await?);
        let (mut outcome, st) = self.read_pages(spec, spool, objections.clone()).await?;
        self.tell_rejections(&shown, &outcome.rejections);
        let poll = self.poll_record(&st, &shown);
        let (mut plan, active) = self.plan(&mut outcome.desired).await?;
        if !poll.complete {
            plan.without_withdrawals();
        }

        // Pass 2 from the spool, and the commit.
        let file = spooled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| {
                super::io(&dir)(std::io::Error::other("the poll's spool was not finished"))
            })?;
        let applied = match self
            .apply(
                Input::Spool(file),
                Commit::Poll(&poll, &shown),
                plan,
                outcome.desired,
                active,
                objections,
            )
            .await?
        {
            Ok(a) => a,
            Err(e) => return Err(super::io(&dir)(std::io::Error::other(e.to_string()))),
        };
        let summary = PollSummary {
            complete: poll.complete,
            failure: poll.error,
            auth_failed: st.auth_failed(),
            pages: st.pages,
            records: outcome.records,
            accepted: outcome.accepted,
            rejected: outcome.rejected,
            skipped: outcome.skipped,
            applied,
        };
        self.events.emit(Event::SourceAuth {
            source: self.mapping.name.clone(),
            refused: summary.auth_failed,
        });
        self.tell_polled(&shown, &summary);
        Ok(summary)
    }

    /// Pass 1: every page from where the bookmark says (a delta source) or
    /// from the start, mapped and planned as one file, the records spooled
    /// for pass 2. Returns the outcome and how the reading went.
    async fn read_pages(
        &self,
        spec: Arc<api::ApiSpec>,
        spool: Spool,
        objections: Arc<std::collections::HashSet<crate::domain::SubjectKey>>,
    ) -> Result<(pipeline::FileOutcome, PollState), IngestError> {
        let delta = self.mapping.mode == Mode::Delta;
        let bookmark = if delta {
            self.store.bookmark(&self.mapping.name).await?
        } else {
            None
        };
        let start = api::start_url(&spec, delta, bookmark.as_deref());
        let state = Arc::new(Mutex::new(PollState::default()));
        let first = Start::new(spec, start, state.clone(), Some(spool));
        let read = self
            .read(
                Input::Poll(Box::new(first)),
                objections,
                pipeline::read_file,
            )
            .await;
        let st = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match read {
            Ok(o) => Ok((o, st)),
            // Only the spool can fail this way (the pages' faults end the
            // poll as incomplete): a local disk problem, tried again later.
            Err(e) => {
                let dir = self.spool_dir();
                let e = super::io(&dir)(std::io::Error::other(e.to_string()));
                Err(e)
            }
        }
    }

    /// The poll's row: complete or why not, and the bookmark a complete
    /// poll of a delta source leaves. An incomplete poll is logged here.
    fn poll_record(&self, st: &PollState, shown: &str) -> PollRecord {
        let complete = st.complete && st.failure.is_none();
        let failure = st.failure.as_ref().map(ToString::to_string);
        if let Some(f) = &failure {
            tracing::error!(
                source = self.mapping.name.as_str(),
                url = shown,
                pages = st.pages,
                "the poll is incomplete, nothing is withdrawn: {f}"
            );
        }
        let delta = self.mapping.mode == Mode::Delta;
        PollRecord {
            complete,
            pages: st.pages,
            records: st.records,
            error: failure,
            bookmark: if complete && delta {
                st.bookmark.clone()
            } else {
                None
            },
        }
    }

    /// Where a poll's spool lives: beside the state, whose disk the
    /// operator already protects.
    fn spool_dir(&self) -> std::path::PathBuf {
        match &self.cfg.state {
            crate::config::StateUrl::Sqlite(p) => p
                .parent()
                .map_or_else(std::env::temp_dir, std::path::Path::to_path_buf),
            crate::config::StateUrl::Postgres(_) => std::env::temp_dir(),
        }
    }

    fn tell_polled(&self, url: &str, s: &PollSummary) {
        let source = self.mapping.name.as_str();
        self.events.emit(Event::Records {
            source: source.to_string(),
            accepted: s.accepted,
            rejected: s.rejected,
            skipped: s.skipped,
        });
        let a = &s.applied;
        tracing::info!(
            source,
            url,
            complete = s.complete,
            pages = s.pages,
            records = s.records,
            accepted = s.accepted,
            rejected = s.rejected,
            skipped = s.skipped,
            registered = a.registered,
            updated = a.updated,
            withdrawn = a.withdrawn,
            renewed = a.renewed,
            held = a.held,
            "poll taken"
        );
    }
}
