//! `http-json` pages: the records at a JSON pointer, each record's keys by
//! JSON pointer, and the next page by Link header, body URL or cursor.

use std::collections::VecDeque;

use serde_json::Value;

use super::transport::{link_header, Page, PageError};
use super::Next;
use crate::source::{Key, Location, RawRecord, MAX_VALUE_BYTES};

/// What a record's value is when the pointer reaches an object or array:
/// the mapping rejects it (`mapping::apply`), naming the field; it is never
/// read as text.
pub const STRUCTURED: &str = "\u{0}structured";

/// The value at `pointer` as text: strings as they are, numbers and
/// booleans as written, `null` and absence as `None`, objects and arrays as
/// `STRUCTURED`.
pub fn value_at(record: &Value, pointer: &str) -> Option<String> {
    match record.pointer(pointer)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(_) | Value::Object(_) => Some(STRUCTURED.to_string()),
    }
}

/// An `http-json` page's body as JSON, or why it is not.
pub fn parse(body: &[u8], page: u64) -> Result<Value, PageError> {
    serde_json::from_slice(body).map_err(|e| malformed(&e, page))
}

/// What a page that is not JSON is refused as.
pub fn malformed(e: &serde_json::Error, page: u64) -> PageError {
    PageError::Malformed {
        page,
        message: match e.classify() {
            serde_json::error::Category::Eof => "the JSON ends early (truncated)".into(),
            _ => format!(
                "not JSON (line {}, column {}): is it an error page?",
                e.line(),
                e.column()
            ),
        },
    }
}

/// The page's records, numbered on from `before`, into `out`.
pub fn records(
    value: &Value,
    page: u64,
    pointer: &str,
    keys: &[Key],
    before: u64,
    out: &mut VecDeque<RawRecord>,
) -> Result<(), PageError> {
    let Some(Value::Array(items)) = value.pointer(pointer) else {
        return Err(PageError::Malformed {
            page,
            message: format!("has no array of records at \"{pointer}\" ([source] records)"),
        });
    };
    for (i, item) in items.iter().enumerate() {
        let number = before + i as u64 + 1;
        let mut values = Vec::with_capacity(keys.len());
        for k in keys {
            let v = value_at(item, &k.expr).unwrap_or_default();
            if v.len() > MAX_VALUE_BYTES {
                return Err(PageError::Malformed {
                    page,
                    message: format!(
                        "record {number} has a value of more than {MAX_VALUE_BYTES} bytes for \"{}\"",
                        k.expr
                    ),
                });
            }
            values.push(v);
        }
        out.push_back(RawRecord {
            location: Some(Location::Record(number)),
            resource: None,
            values,
        });
    }
    Ok(())
}

/// The next page's URL (or cursor URL), if the page names one.
pub fn next(page: &Page, value: &Value, next: &Next, url: &url::Url) -> Option<String> {
    match next {
        Next::None => None,
        Next::LinkHeader(rel) => link_header(&page.headers, rel),
        Next::Pointer(p) => match value.pointer(p) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        },
        Next::Cursor { pointer, param } => {
            let cursor = match value.pointer(pointer) {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return None,
            };
            let mut u = url.clone();
            let kept: Vec<(String, String)> = u
                .query_pairs()
                .filter(|(k, _)| k != param)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            u.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair(param, &cursor);
            Some(u.to_string())
        }
    }
}
