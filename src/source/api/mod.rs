//! API sources: a case-management system's API read as pages of records
//! (`http-json`: plain JSON; `fhir`: FHIR R4 searchset Bundles). A poll is
//! a reader like a file's: it yields the mapping's keys record by record,
//! one page in memory at a time, and nothing else of a page leaves it.
//!
//! What a poll must never do (api-sources.md): follow a link to another
//! origin (the token would go with it), read a page without bound, or
//! count as complete when it did not read every page. A page that fails
//! ends the poll as *incomplete*: what was read may still register and
//! correct, but nothing is withdrawn and no bookmark advances.

mod ahead;
mod fhir;
mod json;
mod spool;
mod tape;
mod transport;

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use fhir::{is_valid_key as is_fhir_key, LAST_UPDATED, STATUS as FHIR_STATUS};
pub use fhir::{FhirKeys, FhirRecords};
pub use json::STRUCTURED;
pub use spool::{Spool, SpoolReader};
pub use transport::{ClientError, Page, PageError};

use self::ahead::{Ahead, Chain, Parsed, Parser};
use super::{Key, RawRecord, ReadError};

/// How a source is polled, as its mapping's `[source]` says.
#[derive(Debug, Clone)]
pub struct ApiSpec {
    pub kind: ApiKind,
    pub auth: Option<Auth>,
    /// A private CA to trust for the CMS's certificate.
    pub ca: Option<PathBuf>,
    pub max_page_bytes: u64,
    pub timeout: Duration,
    /// Attempts per page for 5xx, 429 and network errors.
    pub attempts: u32,
    /// When the daemon polls (cron, Europe/Amsterdam).
    pub schedule: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ApiKind {
    Json {
        url: url::Url,
        /// JSON pointer to the array of records in a page.
        records: String,
        next: Next,
        bookmark: Option<Bookmark>,
    },
    Fhir {
        base_url: url::Url,
        /// Extra search parameters (the professional's decision).
        search: Vec<(String, String)>,
        count: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// One page only.
    None,
    /// RFC 8288 `Link` header with this `rel`.
    LinkHeader(String),
    /// A URL (absolute or relative) at this JSON pointer in the page.
    Pointer(String),
    /// A cursor at this pointer, sent back as this query parameter.
    Cursor { pointer: String, param: String },
}

/// Delta mode: the query parameter a poll starts from, and the pointer in
/// each record whose greatest value is the next poll's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bookmark {
    pub param: String,
    pub from: String,
}

/// Credentials, read from files at each poll (so they can rotate), never
/// logged and never shown.
#[derive(Clone)]
pub enum Auth {
    Bearer {
        token_file: PathBuf,
    },
    Basic {
        user: String,
        password_file: PathBuf,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer { token_file } => write!(f, "Bearer(file {})", token_file.display()),
            Auth::Basic { password_file, .. } => {
                write!(f, "Basic(password file {})", password_file.display())
            }
        }
    }
}

impl ApiSpec {
    /// The URL shown for the source in reports and logs: without its query
    /// string, which may carry a cursor or a search on a name.
    pub fn shown_url(&self) -> String {
        let mut u = match &self.kind {
            ApiKind::Json { url, .. } => url.clone(),
            ApiKind::Fhir { base_url, .. } => base_url.clone(),
        };
        u.set_query(None);
        u.set_fragment(None);
        let _ = u.set_password(None);
        let _ = u.set_username("");
        u.to_string()
    }

    pub fn is_fhir(&self) -> bool {
        matches!(self.kind, ApiKind::Fhir { .. })
    }
}

/// How a poll ended, shared between the reader (on its blocking thread)
/// and the intake that committed its plan.
#[derive(Debug, Default, Clone)]
pub struct PollState {
    pub pages: u64,
    pub records: u64,
    /// `None` while reading or when every page was read; else why not.
    pub failure: Option<PageError>,
    /// Every page read to the end.
    pub complete: bool,
    /// Delta: the greatest bookmark value among the records read.
    pub bookmark: Option<String>,
}

impl PollState {
    /// A failure that says the configuration is wrong (401/403), not a
    /// passing outage.
    pub fn auth_failed(&self) -> bool {
        matches!(self.failure, Some(PageError::Auth { .. }))
    }
}

/// One poll as a record reader. Runs on a blocking thread; each page is
/// fetched on the async runtime through `handle`.
pub struct PollReader {
    handle: tokio::runtime::Handle,
    spec: Arc<ApiSpec>,
    keys: Vec<Key>,
    next_url: Option<url::Url>,
    visited: HashSet<String>,
    queue: VecDeque<RawRecord>,
    fhir: FhirRecords,
    state: Arc<Mutex<PollState>>,
    spool: Option<Spool>,
    /// The slot of the bookmark key, in delta mode.
    bookmark_slot: Option<usize>,
    /// How pages are fetched and read (ahead of this reader).
    chain: Chain,
    /// The next page, already on its way while this one is read: the
    /// API's time and ours overlap.
    ahead: Option<Ahead>,
}

impl Drop for PollReader {
    fn drop(&mut self) {
        // Pages ahead are cancelled; none starts after this.
        self.chain.close();
        self.ahead = None;
    }
}

impl PollReader {
    /// A poll from `start` (the first page's URL, bookmark included).
    /// `spool`: where the records go for the second pass (none for `check`).
    pub fn new(
        handle: tokio::runtime::Handle,
        spec: Arc<ApiSpec>,
        keys: Vec<Key>,
        start: url::Url,
        state: Arc<Mutex<PollState>>,
        spool: Option<Spool>,
    ) -> Result<PollReader, ReadError> {
        let fetcher = transport::Fetcher::new(&spec, &start)?;
        let bookmark_slot = match &spec.kind {
            ApiKind::Json {
                bookmark: Some(b), ..
            } => keys.iter().position(|k| k.expr == b.from),
            ApiKind::Fhir { .. } => keys.iter().position(|k| k.expr == fhir::LAST_UPDATED),
            _ => None,
        };
        let fhir_keys = FhirKeys::new(&keys);
        let parser = match spec.kind {
            ApiKind::Json { .. } => Parser::Json,
            ApiKind::Fhir { .. } => Parser::Fhir(fhir_keys.clone()),
        };
        Ok(PollReader {
            chain: Chain::new(handle.clone(), fetcher, spec.clone(), parser),
            handle,
            keys,
            next_url: Some(start),
            visited: HashSet::new(),
            queue: VecDeque::new(),
            fhir: FhirRecords::new(fhir_keys),
            state,
            spool,
            bookmark_slot,
            spec,
            ahead: None,
        })
    }

    /// Fills `rec` with the next record; `Ok(false)` when the poll ended,
    /// complete or not (`PollState` says which).
    pub fn next_record(&mut self, rec: &mut RawRecord) -> Result<bool, ReadError> {
        loop {
            match self.fhir.next_into(rec) {
                Ok(true) => {
                    self.note(rec)?;
                    return Ok(true);
                }
                Ok(false) => {}
                // A record that cannot be handed on ends the poll there.
                Err(e) => {
                    self.lock().failure = Some(e);
                    self.next_url = None;
                }
            }
            if let Some(next) = self.queue.pop_front() {
                *rec = next;
                self.note(rec)?;
                return Ok(true);
            }
            let failed = self.lock().failure.is_some();
            let url = match self.next_url.take() {
                Some(url) if !failed => url,
                _ => {
                    self.lock().complete = !failed;
                    if let Some(s) = &mut self.spool {
                        s.finish().map_err(ReadError::Io)?;
                    }
                    return Ok(false);
                }
            };
            // A page that fails ends the poll, after the records it did
            // yield (a refused next link comes after its page's records).
            if let Err(e) = self.page(url) {
                self.lock().failure = Some(e);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PollState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A record handed on: counted, its bookmark value noted, spooled.
    fn note(&mut self, rec: &RawRecord) -> Result<(), ReadError> {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        st.records += 1;
        if let Some(v) = self
            .bookmark_slot
            .and_then(|s| rec.values.get(s))
            .filter(|v| !v.is_empty())
        {
            if st.bookmark.as_deref().is_none_or(|b| later(v, b)) {
                st.bookmark = Some(v.clone());
            }
        }
        drop(st);
        if let Some(s) = &mut self.spool {
            s.write(rec).map_err(ReadError::Io)?;
        }
        Ok(())
    }

    /// One page: fetched, parsed into records, its next link checked.
    fn page(&mut self, url: url::Url) -> Result<(), PageError> {
        let number = self.lock().pages + 1;
        if !self.visited.insert(url.as_str().to_string()) {
            return Err(PageError::Loop { page: number });
        }
        let fetched = match self.ahead.take() {
            Some(ahead) if ahead.url == url => self.handle.block_on(ahead.join(number))?,
            // The first page (or, never, another than was started).
            _ => self
                .handle
                .block_on(self.chain.clone().fetch(url.clone(), number))?,
        };
        self.lock().pages = number;
        // A refused link ends the poll after this page's records.
        let checked = fetched.next.transpose();
        if let Ok(Some(next)) = &checked {
            // A link back to a page read before is refused when it comes
            // up (`Loop`); nothing more is fetched ahead of it.
            if !self.visited.contains(next.as_str()) {
                self.ahead = fetched.ahead;
            }
            self.next_url = Some(next.clone());
        }
        let first = self.lock().records;
        match (&self.spec.kind, fetched.parsed) {
            (ApiKind::Json { records, .. }, Parsed::Json(value)) => {
                json::records(&value, number, records, &self.keys, first, &mut self.queue)?
            }
            (_, Parsed::Fhir(read)) => self.fhir.take(read, number, first),
            // The parser is chosen by the kind: this pair never occurs.
            (ApiKind::Fhir { .. }, Parsed::Json(_)) => {}
        }
        checked.map(|_| ())
    }
}

/// Bookmark order: timestamps and numbers compare as such where both
/// parse, else as text (ISO 8601 text orders as time).
fn later(a: &str, b: &str) -> bool {
    if let (Ok(x), Ok(y)) = (
        chrono::DateTime::parse_from_rfc3339(a),
        chrono::DateTime::parse_from_rfc3339(b),
    ) {
        return x > y;
    }
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x > y,
        _ => a > b,
    }
}

/// How far back a poll starts from a timestamp bookmark: a change written
/// while the last poll ran, with a timestamp a little before its end, is
/// read again rather than skipped (re-reading plans as unchanged).
pub const OVERLAP: chrono::Duration = chrono::Duration::minutes(5);

/// The first page's URL of a poll: the source's URL with its search (FHIR)
/// and, in delta mode, the bookmark minus the overlap.
pub fn start_url(spec: &ApiSpec, delta: bool, bookmark: Option<&str>) -> url::Url {
    let from = bookmark.map(|b| match chrono::DateTime::parse_from_rfc3339(b) {
        Ok(t) => (t - OVERLAP).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        Err(_) => b.to_string(),
    });
    match &spec.kind {
        ApiKind::Json { url, bookmark, .. } => {
            let mut u = url.clone();
            if let (Some(b), Some(from)) = (bookmark, from) {
                u.query_pairs_mut().append_pair(&b.param, &from);
            }
            u
        }
        ApiKind::Fhir {
            base_url,
            search,
            count,
        } => {
            let mut u = base_url.clone();
            if !u.path().ends_with('/') {
                let p = format!("{}/", u.path());
                u.set_path(&p);
            }
            let mut u = u.join("EpisodeOfCare").expect("a relative path joins");
            {
                let mut q = u.query_pairs_mut();
                q.append_pair("_include", "EpisodeOfCare:patient");
                q.append_pair("_include", "EpisodeOfCare:care-manager");
                for (k, v) in search {
                    q.append_pair(k, v);
                }
                q.append_pair("_count", &count.to_string());
                if delta {
                    if let Some(from) = from {
                        q.append_pair("_lastUpdated", &format!("gt{from}"));
                    }
                } else {
                    q.append_pair("status", "active,onhold");
                }
            }
            u
        }
    }
}

/// The keys a poll extracts beyond the mapping's: the bookmark's.
pub fn bookmark_key(spec: &ApiSpec, delta: bool) -> Option<&str> {
    if !delta {
        return None;
    }
    match &spec.kind {
        ApiKind::Json {
            bookmark: Some(b), ..
        } => Some(&b.from),
        ApiKind::Fhir { .. } => Some(fhir::LAST_UPDATED),
        _ => None,
    }
}

/// One page's body through the page parsers, as a poll takes it: the
/// records of an `http-json` page (records at `pointer`) or of a FHIR
/// Bundle, or why the page is refused. Public for the fuzz target
/// `api_pages` (docs/fuzzing.md): a page is another system's input.
pub fn read_page(
    fhir: bool,
    body: &[u8],
    pointer: &str,
    keys: &[Key],
) -> Result<Vec<RawRecord>, PageError> {
    let mut out = VecDeque::new();
    if fhir {
        let fhir_keys = FhirKeys::new(keys);
        let read = fhir::read(body, 1, &fhir_keys)?;
        let mut records = FhirRecords::new(fhir_keys);
        records.take(read, 1, 0);
        let mut rec = RawRecord::default();
        while records.next_into(&mut rec)? {
            out.push_back(rec.clone());
        }
    } else {
        let value = json::parse(body, 1)?;
        json::records(&value, 1, pointer, keys, 0, &mut out)?;
    }
    Ok(out.into())
}

/// Records from one JSON value (a `[[tests]]` input, or a page's record):
/// the keys' values by JSON pointer.
pub fn json_values(record: &serde_json::Value, keys: &[Key]) -> Vec<String> {
    keys.iter()
        .map(|k| json::value_at(record, &k.expr).unwrap_or_default())
        .collect()
}

#[cfg(test)]
mod tests;
