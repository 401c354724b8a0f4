//! Delivery to a CMS endpoint: one POST of a JSON batch; any 2xx is the
//! acknowledgement. Failures leave the notices pending, retried with backoff.

use std::time::Duration;

use crate::config::ReturnFormat;
use crate::store::Notice;

pub async fn post(url: &url::Url, notices: &[Notice]) -> Result<String, String> {
    crate::tls::install_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let body = super::render(ReturnFormat::Json, b',', notices);
    let resp = client
        .post(url.clone())
        .header("content-type", "application/json")
        .header("x-request-id", uuid::Uuid::new_v4().to_string())
        .body(body)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot reach {}: {}",
                url.host_str().unwrap_or("the CMS"),
                if e.is_timeout() {
                    "timed out"
                } else {
                    "connection failed"
                }
            )
        })?;
    if resp.status().is_success() {
        Ok(url.to_string())
    } else {
        Err(format!(
            "{} answered {}",
            url.host_str().unwrap_or("the CMS"),
            resp.status()
        ))
    }
}
