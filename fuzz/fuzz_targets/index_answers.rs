//! The index client's reading of answers: the bodies it parses with serde
//! (a batch's results, a notices page, an item's error) and the
//! classification of a non-200 answer (`visync::index::classify`: status,
//! `Retry-After`, error body). The index is another system; whatever it
//! answers must become a result or a classified error, never a panic.
//!
//! Input: a first line `STATUS [RETRY-AFTER]` (`429 7`), then the body.
//! Without a status on the first line only the body parsers run. Seeds: the
//! answers of index-api.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::StatusCode;
use visync::index::{classify, ApiError, CallError, ItemResult, NoticePage};

/// The batch answer, as `HttpIndex::submit` reads it.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Results {
    results: Vec<ItemResult>,
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let _ = serde_json::from_slice::<Results>(body);
    let _ = serde_json::from_slice::<NoticePage>(body);
    let _ = serde_json::from_slice::<ItemResult>(body);
    let _ = serde_json::from_slice::<ApiError>(body);

    let head = String::from_utf8_lossy(head);
    let mut words = head.splitn(2, ' ');
    let Some(status) = words
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
    else {
        return;
    };
    let mut headers = HeaderMap::new();
    if let Some(v) = words.next().and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(RETRY_AFTER, v);
    }
    let err = classify(status, &headers, body);
    let _ = err.to_string();
    if let CallError::Transient {
        retry_after: Some(wait),
        ..
    } = err
    {
        // The sender keeps a row waiting until now + the wait (sender.rs
        // `call_status`, outbox.rs `record`): that instant must exist.
        if let Ok(wait) = chrono::Duration::from_std(wait) {
            assert!(
                chrono::Utc::now().checked_add_signed(wait).is_some(),
                "Retry-After {wait} cannot be added to now"
            );
        }
    }
});
