//! VI-API v1 over HTTPS (mutual TLS and/or a bearer token) with reqwest and
//! rustls. Plain http is refused by config validation except to loopback.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Client, StatusCode};

use super::{wire, ApiError, CallError, IndexApi, ItemResult};

#[derive(Clone)]
pub struct HttpIndex {
    client: Client,
    base: url::Url,
    /// Never logged.
    token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read {path}: {message}")]
    File { path: String, message: String },
    #[error("{path} holds no PEM certificate: give the CA's certificate in PEM form")]
    NotPem { path: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// The HTTPS client visync speaks with, to the index and to a CMS's return
/// endpoint alike: rustls, bounded connect and call times, an optional
/// client certificate (mutual TLS) and an optional CA to trust.
pub fn transport(
    identity: Option<(&Path, &Path)>,
    ca: Option<&Path>,
) -> Result<Client, ClientError> {
    crate::tls::install_provider();
    let mut b = Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("visync/", env!("CARGO_PKG_VERSION")));
    if let Some((cert, key)) = identity {
        let mut pem = read(cert)?;
        pem.extend(read(key)?);
        b = b.identity(
            reqwest::Identity::from_pem(&pem).map_err(|e| ClientError::Build(e.to_string()))?,
        );
    }
    if let Some(ca) = ca {
        // `from_pem` takes a file without a certificate as an empty list,
        // which would trust nothing and fail only at the first call.
        let certs = reqwest::Certificate::from_pem_bundle(&read(ca)?)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ClientError::NotPem {
                path: ca.display().to_string(),
            })?;
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().map_err(|e| ClientError::Build(e.to_string()))
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| ClientError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

impl HttpIndex {
    pub fn new(
        base: url::Url,
        token: Option<String>,
        identity: Option<(&Path, &Path)>,
        ca: Option<&Path>,
    ) -> Result<HttpIndex, ClientError> {
        Ok(HttpIndex {
            client: transport(identity, ca)?,
            base,
            token,
        })
    }

    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), CallError> {
        self.send(self.client.get(self.url(path)).query(query))
            .await
    }

    fn url(&self, path: &str) -> url::Url {
        let mut u = self.base.clone();
        let joined = format!("{}{}", u.path().trim_end_matches('/'), path);
        u.set_path(&joined);
        u
    }

    async fn post(
        &self,
        path: &str,
        body: String,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), CallError> {
        let req = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        self.send(req).await
    }

    /// Sends with a request id and the token; any failure to get an answer
    /// is transient.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), CallError> {
        let mut req = req.header("x-request-id", uuid::Uuid::new_v4().to_string());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| match certificate_problem(&e) {
                Some(message) => CallError::Tls(message),
                None => CallError::Transient {
                    retry_after: None,
                    message: without_url(&e),
                },
            })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| CallError::Transient {
            retry_after: None,
            message: format!("reading the answer: {}", without_url(&e)),
        })?;
        Ok((status, headers, body.to_vec()))
    }
}

/// A TLS failure that retrying cannot fix (a certificate one side does not
/// accept), with what to check; `None` for anything else.
fn certificate_problem(e: &reqwest::Error) -> Option<String> {
    use rustls::{AlertDescription as Alert, Error as Tls};
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        match err.downcast_ref::<Tls>() {
            Some(Tls::InvalidCertificate(why)) => {
                return Some(format!(
                    "TLS: the index's certificate is not trusted ({why:?}): check [index] ca and the index's address in [index] url"
                ))
            }
            Some(Tls::AlertReceived(
                alert @ (Alert::CertificateRequired
                | Alert::BadCertificate
                | Alert::UnknownCA
                | Alert::CertificateUnknown
                | Alert::CertificateExpired
                | Alert::CertificateRevoked
                | Alert::UnsupportedCertificate
                | Alert::AccessDenied),
            )) => {
                return Some(format!(
                    "TLS: the index refused our client certificate ({alert:?}): check [index] client_cert and client_key"
                ))
            }
            _ => {}
        }
        // An io::Error's `source` skips the error it wraps (rustls' arrives
        // inside one or two of them), so step into that instead.
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// reqwest's errors name the URL; keep them short and free of ids.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "broken answer"
    } else {
        "request failed"
    };
    let source = std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_default();
    format!("{kind} {source}").trim().to_string()
}

/// The longest `Retry-After` believed; a longer one waits this long. The
/// sender keeps a row until now + the wait, and a wait of a million years
/// has no such instant: it made the sender panic (found by the fuzz target
/// `index_answers`). A day honours any real maintenance window.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A request's body, from its wire type.
fn to_body(body: &impl serde::Serialize) -> Result<String, CallError> {
    serde_json::to_string(body)
        .map_err(|e| CallError::Malformed(format!("cannot encode the request: {e}")))
}

/// Classifies a non-200 answer. Public only for the fuzz target
/// `index_answers` (fuzz/, docs/fuzzing.md): an answer is another system's
/// input and must be classified, whatever it holds.
#[doc(hidden)]
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> CallError {
    let err: Option<ApiError> = serde_json::from_slice::<wire::ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let (code, message) = err.map_or_else(
        || (status.as_u16().to_string(), String::new()),
        |e| (e.code, e.message),
    );
    match status.as_u16() {
        401 | 403 => CallError::Auth {
            status: status.as_u16(),
            message,
        },
        429 => CallError::Transient {
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER)),
            message: format!("429 rate limited {message}").trim().to_string(),
        },
        s if s >= 500 => CallError::Transient {
            retry_after: None,
            message: format!("{s} {message}").trim().to_string(),
        },
        s => CallError::Refused {
            status: s,
            code,
            message,
        },
    }
}

impl IndexApi for HttpIndex {
    async fn notices(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<super::NoticePage, CallError> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(a) = after {
            query.push(("after", a.to_string()));
        }
        let (status, headers, bytes) = self.get("/v1/notices", &query).await?;
        if status != StatusCode::OK {
            return Err(classify(status, &headers, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| CallError::Malformed(e.to_string()))
    }

    async fn signals(
        &self,
        page_token: Option<&str>,
        page_size: u32,
    ) -> Result<super::SignalPage, CallError> {
        let mut query = vec![("page_size", page_size.to_string())];
        if let Some(t) = page_token {
            query.push(("page_token", t.to_string()));
        }
        let (status, headers, bytes) = self.get("/v1/signals", &query).await?;
        if status != StatusCode::OK {
            return Err(classify(status, &headers, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| CallError::Malformed(e.to_string()))
    }

    async fn submit(&self, payloads: &[&wire::Payload]) -> Result<Vec<ItemResult>, CallError> {
        // Checked when read from the store: sent as stored, not re-encoded.
        let body = to_body(&wire::Batch::of(payloads))?;
        let (status, headers, bytes) = self.post("/v1/signals:batch", body).await?;
        if status != StatusCode::OK {
            return Err(classify(status, &headers, &bytes));
        }
        let r: wire::BatchResult =
            serde_json::from_slice(&bytes).map_err(|e| CallError::Malformed(e.to_string()))?;
        if r.results.len() != payloads.len() {
            return Err(CallError::Malformed(format!(
                "{} results for {} signals",
                r.results.len(),
                payloads.len()
            )));
        }
        Ok(r.results)
    }

    async fn withdraw(&self, signal_id: &str, reason: &str) -> Result<(), CallError> {
        let body = to_body(&wire::Withdraw { reason })?;
        let (status, headers, bytes) = self
            .post(&format!("/v1/signals/{signal_id}/withdraw"), body)
            .await?;
        match status {
            StatusCode::OK => Ok(()),
            _ => Err(classify(status, &headers, &bytes)),
        }
    }

    async fn renew(&self, signal_id: &str, end_date: &str) -> Result<(), CallError> {
        let body = to_body(&wire::Renew { end_date })?;
        let (status, headers, bytes) = self
            .post(&format!("/v1/signals/{signal_id}/renew"), body)
            .await?;
        match status {
            StatusCode::OK => Ok(()),
            _ => Err(classify(status, &headers, &bytes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_a_certificate_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let e = transport(None, Some(&ca)).unwrap_err().to_string();
        assert!(e.contains("ca.pem holds no PEM certificate"), "{e}");
    }

    #[test]
    fn answers_are_classified() {
        let h = HeaderMap::new();
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, &h, b""),
            CallError::Auth { status: 401, .. }
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, &h, b""),
            CallError::Transient { .. }
        ));
        let mut ra = HeaderMap::new();
        ra.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &ra, b""),
            CallError::Transient {
                retry_after: Some(Duration::from_secs(7)),
                message: "429 rate limited".into()
            }
        );
        let body = br#"{"error":{"code":"not_found","message":"unknown signal"}}"#;
        assert_eq!(
            classify(StatusCode::NOT_FOUND, &h, body),
            CallError::Refused {
                status: 404,
                code: "not_found".into(),
                message: "unknown signal".into()
            }
        );
    }

    /// Regression (fuzz target `index_answers`): `429` with `Retry-After:
    /// 33333333366664` (a million years) was passed on whole, and the
    /// sender's "now + the wait" overflowed chrono and panicked.
    #[test]
    fn an_absurd_retry_after_is_capped() {
        let mut ra = HeaderMap::new();
        ra.insert(RETRY_AFTER, "33333333366664".parse().unwrap());
        let CallError::Transient {
            retry_after: Some(wait),
            ..
        } = classify(StatusCode::TOO_MANY_REQUESTS, &ra, b"")
        else {
            panic!("a 429 is transient, with its wait");
        };
        assert_eq!(wait, MAX_RETRY_AFTER);
        let wait = chrono::Duration::from_std(wait).unwrap();
        assert!(chrono::Utc::now().checked_add_signed(wait).is_some());
        // A real wait is kept as it is.
        ra.insert(RETRY_AFTER, "7200".parse().unwrap());
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, &ra, b""),
            CallError::Transient { retry_after: Some(w), .. } if w == Duration::from_secs(7200)
        ));
    }
}
