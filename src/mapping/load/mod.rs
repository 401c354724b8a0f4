//! Loading a mapping file: TOML in, a validated `Mapping` out, or an error that
//! names the file, the line where it can, the key and what to do.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::api::{self, ApiTag};
pub(super) use super::date::date_format;
use super::raw::{OneOrMany, RawField, RawMapping, RawSource, RawTest};
use super::{Code, Condition, DateFormat, FieldRule, Filter, Mapping, MappingTest, Mode, Target};
use crate::domain::{Gender, WithdrawReason};
use crate::located::{line_of, FileKind, LocatedError};
use crate::source::{Format, Key, ReaderSpec};

/// What is wrong with a mapping file, where, and what to do: the error type
/// shared with the config.
pub type MappingError = LocatedError;

struct Loader<'a> {
    path: &'a Path,
    text: &'a str,
    keys: Vec<Key>,
    /// The kind of API an API source reads: its expressions are checked.
    api: Option<ApiTag>,
}

impl Loader<'_> {
    fn err(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> MappingError {
        MappingError {
            line: span.map(|s| line_of(self.text, s)),
            ..LocatedError::at_key(FileKind::Mapping, self.path, key, message)
        }
    }

    /// The reader slot for a source expression, added on first use.
    fn slot(&mut self, expr: &str, required: bool) -> usize {
        if let Some(i) = self.keys.iter().position(|k| k.expr == expr) {
            self.keys[i].required |= required;
            return i;
        }
        self.keys.push(Key {
            expr: expr.to_string(),
            required,
        });
        self.keys.len() - 1
    }
}

/// Loads and validates the mapping at `path`.
pub fn load(path: &Path) -> Result<Mapping, MappingError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LocatedError::unreadable(FileKind::Mapping, path, &e, ""))?;
    let mut raw: RawMapping = toml::from_str(&text)
        .map_err(|e| LocatedError::from_toml(FileKind::Mapping, path, &text, &e))?;
    let api = match raw.source.kind.as_str() {
        "http-json" => Some(ApiTag::Json),
        "fhir" => Some(ApiTag::Fhir),
        _ => None,
    };
    if api == Some(ApiTag::Fhir) {
        api::fhir_defaults(&mut raw);
    }
    let mut l = Loader {
        path,
        text: &text,
        keys: Vec::new(),
        api,
    };
    let (mode, encoding, format) = source_section(&l, &raw.source)?;
    let fields = fields(&mut l, &raw)?;
    if let (Format::Api(spec), Mode::Delta) = (&format, mode) {
        // The bookmark's value is read from every record, as a key.
        if let Some(k) = crate::source::api::bookmark_key(spec, true) {
            l.slot(k, false);
        }
    }
    let professionals = match &raw.professionals {
        Some(p) => Some(load_professionals(&l, p, encoding)?),
        None => None,
    };
    let filter = filter(&mut l, &raw)?;
    let mut tests = Vec::new();
    for (i, t) in raw.tests.iter().enumerate() {
        tests.push(test_case(&l, i, t)?);
    }
    Ok(Mapping {
        path: path.to_path_buf(),
        name: raw.source.name.clone(),
        mode,
        reader: ReaderSpec {
            format,
            encoding,
            keys: l.keys,
        },
        fields,
        professionals,
        filter,
        tests,
    })
}

/// `[source]`: the name, the mode, and how its files are read. Checked first:
/// the fields' source expressions mean something only for a known format.
fn source_section(
    l: &Loader<'_>,
    src: &RawSource,
) -> Result<(Mode, &'static encoding_rs::Encoding, Format), MappingError> {
    if src.name.trim().is_empty() || src.name.contains(['/', '\\']) {
        return Err(l.err(
            None,
            "[source] name",
            "must be a non-empty name without slashes",
        ));
    }
    let mode = match src.mode.as_deref().unwrap_or("snapshot") {
        "snapshot" => Mode::Snapshot,
        "delta" => Mode::Delta,
        other => {
            return Err(l.err(
                None,
                "[source] mode",
                format!("\"{other}\" is not a mode: use \"snapshot\" or \"delta\""),
            ))
        }
    };
    let encoding = parse_encoding(src.encoding.as_deref()).ok_or_else(|| {
        l.err(
            None,
            "[source] encoding",
            "use \"utf-8\", \"windows-1252\" or \"iso-8859-1\"",
        )
    })?;
    Ok((mode, encoding, source_format(l, src)?))
}

/// The reader's format: CSV with its delimiter, or XML with its record path;
/// the keys of the other format are refused rather than ignored.
fn source_format(l: &Loader<'_>, src: &RawSource) -> Result<Format, MappingError> {
    if l.api.is_none()
        && (src.url.is_some()
            || src.base_url.is_some()
            || src.schedule.is_some()
            || src.auth.is_some())
    {
        return Err(l.err(None, "[source] url", "url, base_url, schedule and auth are for API sources (kind = \"http-json\" or \"fhir\"); a file source is read from its drop folder"));
    }
    Ok(match src.kind.as_str() {
        "csv" => {
            if src.record.is_some() {
                return Err(l.err(
                    None,
                    "[source] record",
                    "is for XML sources; a CSV record is a line",
                ));
            }
            Format::Csv {
                delimiter: parse_delimiter(src.delimiter.as_deref().unwrap_or(",")).ok_or_else(
                    || {
                        l.err(
                            None,
                            "[source] delimiter",
                            "must be one ASCII character, or \"tab\"",
                        )
                    },
                )?,
            }
        }
        "xml" => {
            let record = src.record.as_deref().unwrap_or("").trim_matches('/');
            if record.is_empty() {
                return Err(l.err(None, "[source] record", "an XML source needs the element path of one record, e.g. \"Export/Dossiers/Dossier\""));
            }
            if src.delimiter.is_some() {
                return Err(l.err(None, "[source] delimiter", "is for CSV sources"));
            }
            Format::Xml {
                record: record
                    .split('/')
                    .map(|s| s.rsplit(':').next().unwrap_or(s).to_string())
                    .collect(),
            }
        }
        "http-json" | "fhir" => {
            let tag = if src.kind == "fhir" {
                ApiTag::Fhir
            } else {
                ApiTag::Json
            };
            let dir = l.path.parent().unwrap_or(Path::new("."));
            let err = |key: &str, m: String| l.err(None, key, m);
            Format::Api(Arc::new(api::spec(src, tag, dir, &err)?))
        }
        other => {
            return Err(l.err(
                None,
                "[source] kind",
                format!(
                "\"{other}\" is not a source kind: use \"csv\", \"xml\", \"http-json\" or \"fhir\""
            ),
            ))
        }
    })
}

/// `[fields]`: a rule for each signal field the mapping fills; every
/// essential field (and the gender) must be filled, since the index needs it.
fn fields(l: &mut Loader<'_>, raw: &RawMapping) -> Result<Vec<Option<FieldRule>>, MappingError> {
    let mut fields: Vec<Option<FieldRule>> = vec![None; Target::ALL.len()];
    for (name, spanned) in &raw.fields {
        let span = Some(spanned.span());
        let key = format!("[fields] {name}");
        let Some(target) = Target::from_name(name) else {
            let all: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
            return Err(l.err(
                span,
                &key,
                format!(
                    "is not a signal field; a mapping can fill only: {}",
                    all.join(" ")
                ),
            ));
        };
        let rule = field_rule(l, target, spanned.get_ref(), span.clone(), &key)?;
        fields[target as usize] = Some(rule);
    }
    for t in Target::ALL {
        if (t.is_essential() || t == Target::Gender) && fields[t as usize].is_none() {
            let hint = if t == Target::Gender {
                " (use gender = { default = \"unknown\" } if the export has none)"
            } else {
                ""
            };
            return Err(l.err(
                None,
                &format!("[fields] {}", t.name()),
                format!("is missing: every mapping must fill it{hint}"),
            ));
        }
    }
    Ok(fields)
}

/// `[filter]`: the conditions a record must meet (`only`) or must not
/// (`skip`); their columns become required keys of the reader.
fn filter(l: &mut Loader<'_>, raw: &RawMapping) -> Result<Filter, MappingError> {
    let mut filter = Filter::default();
    for (list, raws) in [
        (&mut filter.only, &raw.filter.only),
        (&mut filter.skip, &raw.filter.skip),
    ] {
        for c in raws {
            if let Some(tag) = l.api {
                api::valid_key(tag, &c.from).map_err(|m| l.err(None, "[filter]", m))?;
            }
            list.push(Condition {
                slot: l.slot(&c.from, true),
                from: c.from.clone(),
                values: c.values.iter().map(|v| v.trim().to_string()).collect(),
            });
        }
    }
    Ok(filter)
}

fn field_rule(
    l: &mut Loader<'_>,
    target: Target,
    raw: &RawField,
    span: Option<std::ops::Range<usize>>,
    key: &str,
) -> Result<FieldRule, MappingError> {
    let (from, optional, date, map, default) = match raw {
        RawField::Column(c) => (Some(c.clone()), false, None, None, None),
        RawField::Rule(r) => (
            r.from.clone(),
            r.optional,
            r.date.as_ref(),
            r.map.clone(),
            r.default.clone(),
        ),
    };
    if from.as_deref().is_some_and(|f| f.trim().is_empty()) {
        return Err(l.err(span, key, "names an empty source expression"));
    }
    if let (Some(tag), Some(f)) = (l.api, from.as_deref()) {
        api::valid_key(tag, f).map_err(|m| l.err(span.clone(), key, m))?;
    }
    if from.is_none() && default.is_none() {
        return Err(l.err(
            span,
            key,
            "needs `from` (the source column or path), or a constant `default`",
        ));
    }
    if optional && target.is_essential() {
        return Err(l.err(span, key, "cannot be optional: the index requires it"));
    }
    if date.is_some() && !target.is_date() {
        return Err(l.err(span, key, "has `date`, but is not a date field"));
    }
    let formats = date_formats(l, target, date, &span, key)?;
    // The values a mapping produces for enumerated fields must be valid ones.
    for v in map.iter().flat_map(|m| m.values()).chain(default.iter()) {
        check_value(l, target, v, &span, key)?;
    }
    let required_column = !optional && default.is_none();
    let slot = from.as_deref().map(|f| l.slot(f, required_column));
    Ok(FieldRule {
        slot,
        from,
        optional,
        formats,
        map: map.map(|m| {
            m.into_iter()
                .map(|(k, v)| (k.trim().to_string(), v))
                .collect::<HashMap<_, _>>()
        }),
        default,
    })
}

/// A date field's formats: those the mapping names, or FHIR's or ISO's.
fn date_formats(
    l: &Loader<'_>,
    target: Target,
    date: Option<&OneOrMany>,
    span: &Option<std::ops::Range<usize>>,
    key: &str,
) -> Result<Vec<DateFormat>, MappingError> {
    let patterns: Vec<String> = match date {
        Some(OneOrMany::One(p)) => vec![p.clone()],
        Some(OneOrMany::Many(ps)) => ps.clone(),
        None if target.is_date() && l.api == Some(ApiTag::Fhir) => vec!["fhir".to_string()],
        None if target.is_date() => vec!["%Y-%m-%d".to_string()],
        None => vec![],
    };
    let mut formats = Vec::new();
    for p in patterns {
        formats.push(date_format(&p).ok_or_else(|| l.err(span.clone(), key, format!(
            "date format \"{p}\" is not a full date format (use strftime codes such as \"%d-%m-%Y\", or \"fhir\" for FHIR dates and dateTimes)"
        )))?);
    }
    Ok(formats)
}

/// A value the mapping produces (a `map` value or a `default`) for an
/// enumerated field must be one of the field's values.
fn check_value(
    l: &Loader<'_>,
    target: Target,
    v: &str,
    span: &Option<std::ops::Range<usize>>,
    key: &str,
) -> Result<(), MappingError> {
    match target {
        Target::Gender if Gender::parse(v).is_none() => Err(l.err(
            span.clone(),
            key,
            format!("maps to \"{v}\", which is not a gender: use male, female, other or unknown"),
        )),
        Target::WithdrawReason if WithdrawReason::parse_from_source(v).is_none() => Err(l.err(
            span.clone(),
            key,
            format!(
                "maps to \"{v}\", which is not a reason: use risk_ended, unjustified or deceased"
            ),
        )),
        _ => Ok(()),
    }
}

mod professionals;

use self::professionals::load_professionals;

fn parse_encoding(label: Option<&str>) -> Option<&'static encoding_rs::Encoding> {
    match label.unwrap_or("utf-8").to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" => Some(encoding_rs::UTF_8),
        // encoding_rs follows WHATWG: ISO-8859-1 is decoded as its superset
        // Windows-1252, which is what such exports really contain.
        "windows-1252" | "cp1252" | "iso-8859-1" | "latin1" => Some(encoding_rs::WINDOWS_1252),
        _ => None,
    }
}

fn parse_delimiter(s: &str) -> Option<u8> {
    match s {
        "tab" | "\t" => Some(b'\t'),
        s if s.len() == 1 && s.is_ascii() && s != "\"" && s != "\n" => Some(s.as_bytes()[0]),
        _ => None,
    }
}

/// A test's input as text by source expression. For `http-json` it is one
/// JSON record, read by the mapping's pointers as a poll would read it.
fn test_input(
    l: &Loader<'_>,
    key: &str,
    t: &RawTest,
) -> Result<Vec<(String, String)>, MappingError> {
    if l.api == Some(ApiTag::Json) {
        let record = serde_json::to_value(&t.input)
            .map_err(|_| l.err(None, key, "input is not a JSON record"))?;
        let values = crate::source::api::json_values(&record, &l.keys);
        return Ok(l
            .keys
            .iter()
            .zip(values)
            .map(|(k, v)| (k.expr.clone(), v))
            .collect());
    }
    t.input
        .iter()
        .map(|(k, v)| match v {
            toml::Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(l.err(None, key, format!("input {k} must be text (quote it)"))),
        })
        .collect()
}

fn test_case(l: &Loader<'_>, i: usize, t: &RawTest) -> Result<MappingTest, MappingError> {
    let key = format!("[[tests]] #{} \"{}\"", i + 1, t.name);
    let mut expect = Vec::new();
    for (k, v) in &t.expect {
        let target = Target::from_name(k).ok_or_else(|| {
            l.err(
                None,
                &key,
                format!("expect names \"{k}\", which is not a signal field"),
            )
        })?;
        expect.push((target, v.clone()));
    }
    let expect_rejection = match &t.expect_rejection {
        Some(c) => {
            let code = Code::parse(c).ok_or_else(|| {
                l.err(
                    None,
                    &key,
                    format!("expect_rejection \"{c}\" is not a rejection code"),
                )
            })?;
            let field = match &t.expect_field {
                Some(f) => Some(Target::from_name(f).ok_or_else(|| {
                    l.err(
                        None,
                        &key,
                        format!("expect_field \"{f}\" is not a signal field"),
                    )
                })?),
                None => None,
            };
            Some((code, field))
        }
        None => None,
    };
    if expect_rejection.is_some() as u8 + t.expect_skipped as u8 + (!expect.is_empty()) as u8 > 1 {
        return Err(l.err(
            None,
            &key,
            "give one of expect, expect_rejection or expect_skipped",
        ));
    }
    Ok(MappingTest {
        name: t.name.clone(),
        input: test_input(l, &key, t)?,
        expect,
        expect_rejection,
        expect_skipped: t.expect_skipped,
    })
}
