//! `[source]` of an API source (`http-json`, `fhir`): the poll's settings,
//! checked at load; and the default fields and filter of a `fhir` mapping
//! (api-sources.md), as mapping rules like any other.

use std::path::Path;
use std::time::Duration;

use super::raw::{RawAuth, RawMapping, RawSource};
use super::MappingError;
use crate::source::api::{ApiKind, ApiSpec, Auth, Bookmark, Next};

/// Which kind of API a mapping reads: its source expressions differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiTag {
    Json,
    Fhir,
}

type Err<'a> = &'a dyn Fn(&str, String) -> MappingError;

pub fn spec(
    src: &RawSource,
    tag: ApiTag,
    dir: &Path,
    err: Err<'_>,
) -> Result<ApiSpec, MappingError> {
    if src.record.is_some() || src.delimiter.is_some() {
        return Err(err(
            "[source] record",
            "record and delimiter are for files; an API source's records are at `records` (http-json) or are its episodes (fhir)".into(),
        ));
    }
    let kind = match tag {
        ApiTag::Json => json_kind(src, err)?,
        ApiTag::Fhir => fhir_kind(src, err)?,
    };
    if let Some(s) = &src.schedule {
        s.parse::<cron::Schedule>().map_err(|_| {
            err("[source] schedule", format!("\"{s}\" is not a cron schedule (six fields, seconds first: \"0 */15 * * * *\")"))
        })?;
    }
    Ok(ApiSpec {
        kind,
        auth: src.auth.as_ref().map(|a| auth(a, dir, err)).transpose()?,
        ca: src.ca.as_ref().map(|c| dir.join(c)),
        max_page_bytes: src.max_page_bytes.unwrap_or(16 * 1024 * 1024).max(1024),
        timeout: Duration::from_secs(src.timeout_secs.unwrap_or(30).clamp(1, 600)),
        attempts: src.attempts.unwrap_or(5).clamp(1, 20),
        schedule: src.schedule.clone(),
    })
}

/// The URL a source polls, at `key`: present, a URL, and a transport the
/// config allows.
fn api_url(key: &str, v: Option<&String>, err: Err<'_>) -> Result<url::Url, MappingError> {
    let v = v.ok_or_else(|| {
        err(
            key,
            "is missing: an API source needs the URL it polls".into(),
        )
    })?;
    let u = url::Url::parse(v).map_err(|_| err(key, format!("\"{v}\" is not a URL")))?;
    crate::config::check_transport(&u).map_err(|m| err(key, m))?;
    Ok(u)
}

/// An `http-json` source: its URL, where its records are, its paging and
/// its bookmark.
fn json_kind(src: &RawSource, err: Err<'_>) -> Result<ApiKind, MappingError> {
    if src.base_url.is_some() || src.search.is_some() {
        return Err(err(
            "[source] base_url",
            "base_url and search are for fhir sources; http-json has url".into(),
        ));
    }
    let records = src.records.clone().unwrap_or_default();
    if !records.is_empty() && !records.starts_with('/') {
        return Err(err("[source] records", format!("\"{records}\" is not a JSON pointer: write it as \"/data\" (\"\" for a page that is the array)")));
    }
    let bookmark = src.bookmark.as_ref().map(|b| Bookmark {
        param: b.param.clone(),
        from: b.from.clone(),
    });
    if let Some(b) = &bookmark {
        if !b.from.starts_with('/') {
            return Err(err(
                "[source] bookmark",
                format!("from = \"{}\" is not a JSON pointer", b.from),
            ));
        }
    }
    if bookmark.is_none() && src.mode.as_deref() == Some("delta") {
        return Err(err("[source] bookmark", "a delta http-json source needs bookmark = { param = ..., from = ... }: without it every poll would read everything as new".into()));
    }
    Ok(ApiKind::Json {
        url: api_url("[source] url", src.url.as_ref(), err)?,
        records,
        next: next(src, err)?,
        bookmark,
    })
}

/// A `fhir` source: its base URL, extra search parameters and page size
/// (paging and bookmarks are FHIR's own).
fn fhir_kind(src: &RawSource, err: Err<'_>) -> Result<ApiKind, MappingError> {
    if src.url.is_some() || src.records.is_some() || src.next.is_some() || src.bookmark.is_some() {
        return Err(err("[source] url", "url, records, next and bookmark are for http-json; a fhir source has base_url (paging and bookmarks are FHIR's)".into()));
    }
    Ok(ApiKind::Fhir {
        base_url: api_url("[source] base_url", src.base_url.as_ref(), err)?,
        search: src
            .search
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        count: src.page_size.unwrap_or(500).clamp(1, 5000),
    })
}

fn next(src: &RawSource, err: Err<'_>) -> Result<Next, MappingError> {
    let Some(n) = &src.next else {
        return Ok(Next::None);
    };
    let key = "[source] next";
    Ok(match (&n.link_header, &n.pointer, &n.cursor, &n.param) {
        (Some(rel), None, None, None) => Next::LinkHeader(rel.clone()),
        (None, Some(p), None, None) if p.starts_with('/') => Next::Pointer(p.clone()),
        (None, None, Some(c), Some(param)) if c.starts_with('/') => Next::Cursor { pointer: c.clone(), param: param.clone() },
        _ => return Err(err(key, "give one of { link_header = \"next\" }, { pointer = \"/links/next\" } or { cursor = \"/meta/next_cursor\", param = \"cursor\" } (pointers start with /)".into())),
    })
}

fn auth(a: &RawAuth, dir: &Path, err: Err<'_>) -> Result<Auth, MappingError> {
    let key = "[source.auth]";
    match (a.kind.as_str(), &a.token_file, &a.user, &a.password_file) {
        ("bearer", Some(t), None, None) => Ok(Auth::Bearer {
            token_file: dir.join(t),
        }),
        ("basic", None, Some(u), Some(p)) => Ok(Auth::Basic {
            user: u.clone(),
            password_file: dir.join(p),
        }),
        ("bearer", ..) => Err(err(
            key,
            "kind = \"bearer\" takes token_file (a file holding the token; never the token itself)"
                .into(),
        )),
        ("basic", ..) => Err(err(
            key,
            "kind = \"basic\" takes user and password_file (a file holding the password)".into(),
        )),
        (other, ..) => Err(err(
            key,
            format!("kind = \"{other}\" is not an auth kind: use \"bearer\" or \"basic\""),
        )),
    }
}

/// The default `[fields]` of a `fhir` mapping (api-sources.md's table).
const FHIR_FIELDS: &str = r#"
bsn = "patient.identifier[system=http://fhir.nl/fhir/NamingSystem/bsn].value"
family_name = "patient.name:family"
name_prefix = { from = "patient.name:prefix", optional = true }
initials = { from = "patient.name:initials", optional = true }
given_names = { from = "patient.name:given", optional = true }
birth_date = { from = "patient.birthDate", date = "fhir" }
gender = { from = "patient.gender", default = "unknown" }
professional_id = "manager:id"
professional_name = "manager:name"
professional_phone = { from = "manager:phone", optional = true }
professional_email = { from = "manager:email", optional = true }
case_ref = "episode:reference"
start_date = { from = "episode.period.start", date = "fhir" }
end_date = { from = "episode.period.end", date = "fhir", optional = true }
withdraw_reason = { from = "episode.status", map = { finished = "risk_ended", cancelled = "unjustified", entered-in-error = "unjustified" } }
"#;

/// Fills the fields a `fhir` mapping leaves out with the defaults, and adds
/// the status filter: planned and waitlisted episodes are not involvements
/// yet.
pub fn fhir_defaults(raw: &mut RawMapping) {
    type Fields = std::collections::BTreeMap<String, toml::Spanned<super::raw::RawField>>;
    let defaults: Fields = toml::from_str(FHIR_FIELDS).expect("the default fields parse");
    for (name, rule) in defaults {
        raw.fields.entry(name).or_insert(rule);
    }
    raw.filter.skip.push(super::raw::RawCondition {
        from: crate::source::api::FHIR_STATUS.to_string(),
        values: vec!["planned".into(), "waitlist".into()],
    });
}

/// Whether a source expression can be read by this kind of API source.
pub fn valid_key(tag: ApiTag, expr: &str) -> Result<(), String> {
    match tag {
        ApiTag::Json if expr.starts_with('/') => Ok(()),
        ApiTag::Json => Err(format!("\"{expr}\" is not a JSON pointer: an http-json source reads fields as \"/client/bsn\"")),
        ApiTag::Fhir if crate::source::api::is_fhir_key(expr) => Ok(()),
        ApiTag::Fhir => Err(format!("\"{expr}\" is not a FHIR path: start with episode., patient., manager. or practitioner., e.g. patient.identifier[system=URI].value")),
    }
}
