//! The mapping file as written: serde types with unknown keys refused.
//! `load` validates them into a `Mapping`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    pub source: RawSource,
    /// A `fhir` mapping may leave `[fields]` out: the defaults fill it.
    #[serde(default)]
    pub fields: BTreeMap<String, Spanned<RawField>>,
    pub professionals: Option<RawProfessionals>,
    #[serde(default)]
    pub filter: RawFilter,
    #[serde(default)]
    pub tests: Vec<RawTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub name: String,
    pub kind: String,
    pub mode: Option<String>,
    pub encoding: Option<String>,
    pub delimiter: Option<String>,
    pub record: Option<String>,
    // API sources (api-sources.md).
    pub url: Option<String>,
    pub records: Option<String>,
    pub base_url: Option<String>,
    pub schedule: Option<String>,
    pub next: Option<RawNext>,
    pub bookmark: Option<RawBookmark>,
    pub auth: Option<RawAuth>,
    pub search: Option<BTreeMap<String, String>>,
    pub ca: Option<String>,
    pub max_page_bytes: Option<u64>,
    pub page_size: Option<u32>,
    pub timeout_secs: Option<u64>,
    pub attempts: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNext {
    pub link_header: Option<String>,
    pub pointer: Option<String>,
    pub cursor: Option<String>,
    pub param: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBookmark {
    pub param: String,
    pub from: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub kind: String,
    pub token_file: Option<String>,
    pub user: Option<String>,
    pub password_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfessionals {
    pub file: String,
    pub delimiter: Option<String>,
    pub encoding: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    #[serde(default)]
    pub only: Vec<RawCondition>,
    #[serde(default)]
    pub skip: Vec<RawCondition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    pub from: String,
    #[serde(rename = "in")]
    pub values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    pub name: String,
    /// Text by source expression; for `http-json`, one JSON record.
    pub input: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub expect: BTreeMap<String, String>,
    pub expect_rejection: Option<String>,
    pub expect_field: Option<String>,
    #[serde(default)]
    pub expect_skipped: bool,
}

/// A field is either a source expression (`bsn = "BSN"`) or a rule table.
pub enum RawField {
    Column(String),
    Rule(RawRule),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub from: Option<String>,
    #[serde(default)]
    pub optional: bool,
    pub date: Option<OneOrMany>,
    pub map: Option<BTreeMap<String, String>>,
    pub default: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for RawField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a source expression (\"Header\") or a table { from = ..., ... }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawField, E> {
                Ok(RawField::Column(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawField, A::Error> {
                RawRule::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawField::Rule)
            }
        }
        d.deserialize_any(V)
    }
}
