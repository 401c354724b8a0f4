//! Pages fetched and read ahead of the reader, on the runtime's threads.
//!
//! A poll is a chain: a page's address is in the page before it. A FHIR
//! page's `next` link is scanned from its bytes first (a scan that keeps
//! nothing, several times cheaper than reading the page), so that the page
//! after it is already on its way while this one is read: two pages are
//! read at once, one per core. An `http-json` page's next is known only
//! once it is parsed (a header, a body URL or a cursor), so its successor
//! starts then.
//!
//! Bounds: each page in flight or waiting for the reader holds one of
//! `AHEAD` slots until the reader has taken its records, so at most that
//! many pages are in memory beyond the one being read, however fast the
//! API. A next link is checked (same origin) before anything is sent to
//! it. When the reader stops, the slots close and every page ahead is
//! cancelled (`Ahead` aborts its task when dropped).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::transport::{Fetcher, Page, PageError};
use super::{fhir, json, ApiKind, ApiSpec, FhirKeys};

/// Pages fetched or read ahead of the reader, at most.
const AHEAD: usize = 2;

/// How a page is parsed, on the thread that fetched it.
#[derive(Clone)]
pub enum Parser {
    Json,
    /// FHIR pages are read there too, leaving only records' values and
    /// includes (`fhir::read`).
    Fhir(Arc<FhirKeys>),
}

/// A page parsed: a JSON tree, or a FHIR page already read.
pub enum Parsed {
    Json(serde_json::Value),
    Fhir(fhir::FhirPage),
}

/// A page as the reader takes it.
pub struct Fetched {
    pub parsed: Parsed,
    /// Its next link: none, refused (another origin, not a URL), or checked.
    pub next: Option<Result<url::Url, PageError>>,
    /// The next page, already started.
    pub ahead: Option<Ahead>,
    /// Held until the reader has taken the page's records.
    _slot: OwnedSemaphorePermit,
}

/// A page on its way; cancelled when dropped unless taken.
pub struct Ahead {
    pub url: url::Url,
    task: tokio::task::JoinHandle<Result<Fetched, PageError>>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Ahead {
    /// Waits for the page (on the runtime).
    pub async fn join(mut self, number: u64) -> Result<Fetched, PageError> {
        (&mut self.task).await.map_err(|_| cancelled(number))?
    }
}

/// What every page of one poll is fetched and read with.
#[derive(Clone)]
pub struct Chain {
    handle: tokio::runtime::Handle,
    fetcher: Fetcher,
    spec: Arc<ApiSpec>,
    parser: Parser,
    slots: Arc<Semaphore>,
}

impl Chain {
    pub fn new(
        handle: tokio::runtime::Handle,
        fetcher: Fetcher,
        spec: Arc<ApiSpec>,
        parser: Parser,
    ) -> Chain {
        Chain {
            handle,
            fetcher,
            spec,
            parser,
            slots: Arc::new(Semaphore::new(AHEAD)),
        }
    }

    /// Starts page `number` at `url` on the runtime.
    pub fn start(&self, url: url::Url, number: u64) -> Ahead {
        let task = self.handle.spawn(self.clone().fetch(url.clone(), number));
        Ahead { url, task }
    }

    /// No more pages: whatever waits for a slot gives up.
    pub fn close(&self) {
        self.slots.close();
    }

    /// Fetches and reads page `number`, starting the page after it as soon
    /// as its address is known.
    pub async fn fetch(self, url: url::Url, number: u64) -> Result<Fetched, PageError> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| cancelled(number))?;
        let mut page = self.fetcher.get(&url, number, &self.spec).await?;
        // FHIR: the link scanned from the bytes, unless its shape is odd
        // (then the read page says).
        let early = match self.parser {
            Parser::Fhir(_) => fhir::scan_next(&page.body).ok(),
            Parser::Json => None,
        };
        let mut next = early
            .clone()
            .flatten()
            .map(|n| self.check(&url, &n, number));
        let mut ahead = self.ahead_of(&next, number);
        // Reading a page is a millisecond or more of CPU: not on the
        // runtime's workers, where it would hold up the next page's fetch
        // (a task spawned from a worker waits for that worker: tokio's
        // LIFO slot is not stolen). The body is dropped there too.
        let (body, parser) = (std::mem::take(&mut page.body), self.parser.clone());
        let parsed = tokio::task::spawn_blocking(move || parse(&body, number, &parser))
            .await
            .map_err(|_| cancelled(number))??;
        if early.is_none() {
            next = self
                .late_next(&page, &parsed, &url)
                .map(|n| self.check(&url, &n, number));
            ahead = self.ahead_of(&next, number);
        }
        Ok(Fetched {
            parsed,
            next,
            ahead,
            _slot: slot,
        })
    }

    fn check(&self, url: &url::Url, next: &str, number: u64) -> Result<url::Url, PageError> {
        self.fetcher.checked_next(url, next, number)
    }

    fn ahead_of(&self, next: &Option<Result<url::Url, PageError>>, number: u64) -> Option<Ahead> {
        match next {
            Some(Ok(u)) => Some(self.start(u.clone(), number + 1)),
            _ => None,
        }
    }

    /// The next page's address from the parsed page.
    fn late_next(&self, page: &Page, parsed: &Parsed, url: &url::Url) -> Option<String> {
        match (&self.spec.kind, parsed) {
            (ApiKind::Json { next, .. }, Parsed::Json(value)) => json::next(page, value, next, url),
            (_, Parsed::Fhir(read)) => read.next.clone(),
            // The parser is chosen by the kind: this pair never occurs.
            (ApiKind::Fhir { .. }, Parsed::Json(_)) => None,
        }
    }
}

pub fn parse(body: &[u8], page: u64, parser: &Parser) -> Result<Parsed, PageError> {
    Ok(match parser {
        Parser::Json => Parsed::Json(json::parse(body, page)?),
        Parser::Fhir(keys) => Parsed::Fhir(fhir::read(body, page, keys)?),
    })
}

fn cancelled(page: u64) -> PageError {
    PageError::Unavailable {
        page,
        attempts: 1,
        message: "the fetch was cancelled".into(),
    }
}
