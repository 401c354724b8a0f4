//! Delivery to a CMS endpoint: one POST of a JSON batch; any 2xx is the
//! acknowledgement. The client is the index's transport (rustls, timeouts,
//! optional CA and mutual TLS), made once per delivery run, not per call.
//!
//! Failures are classified as for the index (ARCHITECTURE.md, invariant 12):
//! network trouble, timeouts, 408, 429 and 5xx are transient and retried with
//! backoff for as long as it takes; any other answer is the CMS refusing the
//! batch, which retrying may not fix, so after a bounded number of attempts
//! the notices are quarantined until `visync release`.

use crate::config::ReturnFormat;
use crate::store::Notice;

/// Why a POST did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The CMS refused the batch (a 4xx other than 408/429): counts toward
    /// quarantine.
    pub refused: bool,
    pub message: String,
}

pub async fn post(
    client: &reqwest::Client,
    url: &url::Url,
    notices: &[Notice],
) -> Result<String, Failure> {
    let host = url.host_str().unwrap_or("the CMS");
    let body = super::render(ReturnFormat::Json, b',', notices);
    let resp = client
        .post(url.clone())
        .header("content-type", "application/json")
        .header("x-request-id", uuid::Uuid::new_v4().to_string())
        .body(body)
        .send()
        .await
        .map_err(|e| Failure {
            refused: false,
            message: format!(
                "cannot reach {host}: {}",
                if e.is_timeout() {
                    "timed out"
                } else {
                    "connection failed"
                }
            ),
        })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(url.to_string());
    }
    let transient = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
    Err(Failure {
        refused: !transient,
        message: format!("{host} answered {status}"),
    })
}
