//! Fetching one page: auth from files, bounded size, bounded retries, and
//! links and redirects only to the source's own origin.

use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, LINK, RETRY_AFTER};
use reqwest::StatusCode;

use super::{ApiSpec, Auth};

/// Why a page could not be used. Every message names the page by number
/// and never quotes the page (it may hold personal data) or the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("page {page}: the API refused the credentials ({status}): check [source.auth] and its file; the poll stopped")]
    Auth { page: u64, status: u16 },
    #[error("page {page}: {message} after {attempts} attempts; the poll is incomplete and will be tried again at the next poll")]
    Unavailable {
        page: u64,
        attempts: u32,
        message: String,
    },
    #[error("page {page}: the API answered {status}{outcome}; the poll is incomplete")]
    Refused {
        page: u64,
        status: u16,
        /// `: ` and an OperationOutcome's diagnostics, when it sent one.
        outcome: String,
    },
    #[error("page {page} is larger than max_page_bytes ({limit} bytes): refused; raise max_page_bytes or ask for smaller pages (_count)")]
    TooLarge { page: u64, limit: u64 },
    #[error("page {page} is not usable: {message}")]
    Malformed { page: u64, message: String },
    #[error("page {page}: the next link goes to another scheme, host or port than the source's URL: refused, so that the credentials never leave for another server")]
    ForeignLink { page: u64 },
    #[error("page {page}: the next link points to a page already read: refused (the API's paging loops)")]
    Loop { page: u64 },
}

/// Why a source's HTTP client cannot be made: its settings, before any
/// request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read [source] ca {}: {source}", path.display())]
    CaRead {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("[source] ca {} is not a PEM certificate: give the CA's certificate in PEM form", path.display())]
    CaPem { path: std::path::PathBuf },
    #[error("cannot make the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// A page as fetched: its headers and body.
pub struct Page {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub page: u64,
}

#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    origin: url::Origin,
}

/// The longest `Retry-After` honoured within a poll; a longer one ends the
/// poll as incomplete (the next poll tries again).
const MAX_WAIT: Duration = Duration::from_secs(60);

impl Fetcher {
    pub fn new(spec: &ApiSpec, start: &url::Url) -> Result<Fetcher, ClientError> {
        crate::tls::install_provider();
        let origin = start.origin();
        let allowed = origin.clone();
        // A redirect is a link like any other: only to the same origin.
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > 5 || attempt.url().origin() != allowed {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(spec.timeout)
            .redirect(policy)
            .user_agent(concat!("visync/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &spec.ca {
            let pem = std::fs::read(ca).map_err(|source| ClientError::CaRead {
                path: ca.clone(),
                source,
            })?;
            // `from_pem` takes a file without a certificate in it as an
            // empty list, which would trust nothing and fail only at the
            // first request: at least one certificate, or refused here.
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| ClientError::CaPem { path: ca.clone() })?;
            for cert in certs {
                b = b.add_root_certificate(cert);
            }
        }
        let client = b.build().map_err(ClientError::Build)?;
        Ok(Fetcher { client, origin })
    }

    /// A `next` link resolved against the page it came from, if it stays
    /// on the source's origin.
    pub fn checked_next(
        &self,
        page_url: &url::Url,
        next: &str,
        page: u64,
    ) -> Result<url::Url, PageError> {
        let url = page_url.join(next).map_err(|_| PageError::Malformed {
            page,
            message: "its next link is not a URL".into(),
        })?;
        if url.origin() != self.origin {
            return Err(PageError::ForeignLink { page });
        }
        Ok(url)
    }

    /// GETs one page, retrying 5xx, 429 and network errors a bounded
    /// number of times with backoff.
    pub async fn get(&self, url: &url::Url, page: u64, spec: &ApiSpec) -> Result<Page, PageError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (message, wait) = match self.once(url, page, spec).await? {
                Ok(p) => return Ok(p),
                Err(retry) => retry,
            };
            if attempt >= spec.attempts.max(1) {
                return Err(PageError::Unavailable {
                    page,
                    attempts: attempt,
                    message,
                });
            }
            let backoff = crate::store::backoff(i64::from(attempt))
                .to_std()
                .unwrap_or_default();
            let wait = wait.unwrap_or(backoff);
            if wait > MAX_WAIT {
                return Err(PageError::Unavailable {
                    page,
                    attempts: attempt,
                    message: format!("{message} (asked to wait {} s)", wait.as_secs()),
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt: the page, a final error, or a retryable failure with
    /// the wait the server asked for.
    async fn once(
        &self,
        url: &url::Url,
        page: u64,
        spec: &ApiSpec,
    ) -> Result<Result<Page, (String, Option<Duration>)>, PageError> {
        let accept = if spec.is_fhir() {
            "application/fhir+json, application/json"
        } else {
            "application/json"
        };
        let mut req = self.client.get(url.clone()).header(ACCEPT, accept);
        match &spec.auth {
            Some(Auth::Bearer { token_file }) => {
                let token = secret(token_file, page)?;
                req = req.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            Some(Auth::Basic {
                user,
                password_file,
            }) => {
                req = req.basic_auth(user, Some(secret(password_file, page)?));
            }
            None => {}
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Ok(Err((network(&e), None))),
        };
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(PageError::Auth {
                page,
                status: status.as_u16(),
            });
        }
        if status.is_redirection() {
            // Only a redirect the policy refused stays one.
            return Err(PageError::ForeignLink { page });
        }
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if (body.len() + c.len()) as u64 > spec.max_page_bytes {
                        return Err(PageError::TooLarge {
                            page,
                            limit: spec.max_page_bytes,
                        });
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) => return Ok(Err((network(&e), None))),
            }
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let wait = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Ok(Err((format!("the API answered {}", status.as_u16()), wait)));
        }
        if !status.is_success() {
            return Err(PageError::Refused {
                page,
                status: status.as_u16(),
                outcome: super::fhir::outcome(&body)
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default(),
            });
        }
        Ok(Ok(Page {
            headers,
            body,
            page,
        }))
    }
}

/// A secret from its file, trimmed. The error names the file, never its
/// content.
fn secret(path: &std::path::Path, page: u64) -> Result<String, PageError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| PageError::Malformed {
            page,
            message: format!(
                "cannot read the credential file {}: {}",
                path.display(),
                e.kind()
            ),
        })
}

/// A network failure in a few words, without the URL (it may carry a
/// cursor) or anything the server sent.
fn network(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        "the connection failed".into()
    }
}

/// The target of the RFC 8288 `Link` header's relation `rel`.
pub fn link_header(headers: &HeaderMap, rel: &str) -> Option<String> {
    for value in headers.get_all(LINK) {
        let Ok(text) = value.to_str() else { continue };
        for part in split_links(text) {
            let part = part.trim();
            let Some(end) = part.find('>') else { continue };
            let Some(target) = part[..end].trim().strip_prefix('<') else {
                continue;
            };
            let named = part[end + 1..].split(';').any(|p| {
                let p = p.trim();
                p.strip_prefix("rel=").is_some_and(|r| {
                    r.trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case(rel))
                })
            });
            if named {
                return Some(target.to_string());
            }
        }
    }
    None
}

/// Splits a Link header at the commas between links (not those inside `<>`).
fn split_links(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}
