//! What a column's values say about it, as counts: 11-proof hits, date
//! formats that parse, a gender or yes/no vocabulary, e-mail and phone
//! shapes, letters, distinct values. The guesser decides from these; nothing
//! here keeps a value beyond the sample.

use std::collections::HashSet;

use chrono::NaiveDate;

use crate::domain::Bsn;

/// The date formats tried, dates first, then each with a time after it.
pub const DATE_FORMATS: [&str; 4] = ["%d-%m-%Y", "%Y-%m-%d", "%d/%m/%Y", "%Y%m%d"];
pub const TIME_SUFFIXES: [&str; 4] = ["", " %H:%M", " %H:%M:%S", "T%H:%M:%S"];

/// Gender codes a CMS writes, each with the signal's value. Only these ever
/// appear in a draft's map; any other value of the column is counted, never
/// quoted.
pub const GENDER_CODES: &[(&str, &str)] = &[
    ("m", "male"),
    ("man", "male"),
    ("mannelijk", "male"),
    ("jongen", "male"),
    ("male", "male"),
    ("v", "female"),
    ("f", "female"),
    ("vrouw", "female"),
    ("vrouwelijk", "female"),
    ("meisje", "female"),
    ("female", "female"),
    ("x", "other"),
    ("anders", "other"),
    ("other", "other"),
    ("o", "unknown"),
    ("u", "unknown"),
    ("onbekend", "unknown"),
    ("unknown", "unknown"),
];

/// ISO 5218 codes: read as gender only under a gender-like header.
pub const GENDER_NUMERIC: &[(&str, &str)] = &[
    ("0", "unknown"),
    ("1", "male"),
    ("2", "female"),
    ("9", "other"),
];

/// Two-valued decisions, as (yes, no).
pub const YES_NO: &[(&str, &str)] = &[
    ("j", "n"),
    ("ja", "nee"),
    ("y", "n"),
    ("yes", "no"),
    ("true", "false"),
    ("waar", "onwaar"),
    ("1", "0"),
];

/// Every candidate format: a date, optionally followed by a time.
pub fn candidate_formats() -> impl Iterator<Item = String> {
    TIME_SUFFIXES
        .iter()
        .flat_map(|t| DATE_FORMATS.iter().map(move |d| format!("{d}{t}")))
}

/// Parses as the mapping loader does: the whole value, a whole date.
pub fn parse_date(value: &str, format: &str) -> Option<NaiveDate> {
    if format == "%Y%m%d" {
        // Eight digits exactly; chrono alone would read a longer year.
        if value.len() != 8 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return NaiveDate::parse_from_str(value, "%Y%m%d").ok();
    }
    let mut parsed = chrono::format::Parsed::new();
    chrono::format::parse(
        &mut parsed,
        value,
        chrono::format::StrftimeItems::new(format),
    )
    .ok()?;
    parsed.to_naive_date().ok()
}

pub fn parse_any_date(value: &str) -> bool {
    candidate_formats().any(|f| parse_date(value, &f).is_some())
}

/// Lower-cased, for the vocabularies.
fn folded(v: &str) -> String {
    v.trim().to_lowercase()
}

/// One column's evidence.
#[derive(Debug, Default, Clone)]
pub struct Profile {
    pub rows: usize,
    pub non_empty: usize,
    pub distinct: usize,
    pub bsn_hits: usize,
    /// 8-digit numbers among the hits (padded with a leading zero).
    pub bsn_padded: usize,
    /// The formats chosen for the column and how many values they read.
    pub date_formats: Vec<String>,
    pub date_hits: usize,
    pub dates: Vec<Option<NaiveDate>>,
    pub gender_hits: usize,
    pub gender_numeric: usize,
    pub yes_no: Option<usize>,
    pub email: usize,
    pub phone: usize,
    /// Values of letters, spaces, dots, hyphens and apostrophes only.
    pub letters: usize,
    pub with_digit: usize,
    pub with_space: usize,
}

impl Profile {
    pub fn rate(&self, n: usize) -> f64 {
        if self.non_empty == 0 {
            0.0
        } else {
            n as f64 / self.non_empty as f64
        }
    }

    pub fn filled(&self) -> f64 {
        if self.rows == 0 {
            0.0
        } else {
            self.non_empty as f64 / self.rows as f64
        }
    }
}

/// Profiles column `col` of the rows.
pub fn profile(rows: &[Vec<String>], col: usize) -> Profile {
    let values = || rows.iter().map(move |r| r[col].as_str());
    let mut p = Profile {
        rows: rows.len(),
        ..Profile::default()
    };
    let mut seen: HashSet<&str> = HashSet::new();
    for v in values().filter(|v| !v.is_empty()) {
        p.non_empty += 1;
        seen.insert(v);
        if Bsn::parse(v).is_ok() {
            p.bsn_hits += 1;
            if v.chars().filter(char::is_ascii_digit).count() == 8 {
                p.bsn_padded += 1;
            }
        }
        let f = folded(v);
        p.gender_hits += usize::from(GENDER_CODES.iter().any(|(c, _)| *c == f));
        p.gender_numeric += usize::from(GENDER_NUMERIC.iter().any(|(c, _)| *c == f));
        p.email += usize::from(is_email(v));
        p.phone += usize::from(is_phone(v));
        p.letters += usize::from(
            v.chars()
                .all(|c| c.is_alphabetic() || matches!(c, ' ' | '.' | '-' | '\'')),
        );
        p.with_digit += usize::from(v.chars().any(|c| c.is_ascii_digit()));
        p.with_space += usize::from(v.contains(' '));
    }
    p.distinct = seen.len();
    p.yes_no = yes_no(seen.iter().copied());
    dates(&mut p, rows, col);
    p
}

/// The index of the `YES_NO` pair the column's values all belong to, when
/// it has one or two distinct values.
fn yes_no<'a>(values: impl Iterator<Item = &'a str>) -> Option<usize> {
    let set: Vec<String> = values.map(folded).collect();
    if set.is_empty() || set.len() > 2 {
        return None;
    }
    YES_NO
        .iter()
        .position(|(y, n)| set.iter().all(|v| v == y || v == n) && set.iter().any(|v| v == y))
}

/// Picks the formats that read the column, most-reading first, each adding
/// values the earlier ones did not read (three at most).
fn dates(p: &mut Profile, rows: &[Vec<String>], col: usize) {
    let mut parsed: Vec<Option<NaiveDate>> = vec![None; rows.len()];
    let mut chosen = Vec::new();
    for _ in 0..3 {
        let best = candidate_formats()
            .map(|f| {
                let gain = rows
                    .iter()
                    .zip(&parsed)
                    .filter(|(r, d)| d.is_none() && parse_date(&r[col], &f).is_some())
                    .count();
                (gain, f)
            })
            .max_by_key(|(gain, _)| *gain);
        match best {
            Some((gain, f)) if gain > 0 => {
                for (r, d) in rows.iter().zip(parsed.iter_mut()) {
                    if d.is_none() {
                        *d = parse_date(&r[col], &f);
                    }
                }
                chosen.push(f);
            }
            _ => break,
        }
    }
    p.date_hits = parsed.iter().filter(|d| d.is_some()).count();
    p.date_formats = chosen;
    p.dates = parsed;
}

pub fn is_email(v: &str) -> bool {
    match v.split_once('@') {
        Some((user, host)) => {
            !user.is_empty() && host.contains('.') && !v.contains(char::is_whitespace)
        }
        None => false,
    }
}

pub fn is_phone(v: &str) -> bool {
    let digits = v.chars().filter(char::is_ascii_digit).count();
    (9..=15).contains(&digits)
        && v.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '+' | '(' | ')'))
        && (v.starts_with('0') || v.starts_with('+'))
}

/// The header's words, lower-cased and squeezed: `Last name` → `lastname`,
/// `Client/Naam/@achternaam` → [`client`, `naam`, `achternaam`].
pub fn words(column: &str) -> Vec<String> {
    column
        .split(['/', '@', ':'])
        .map(|s| {
            s.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(values: &[&str]) -> Profile {
        let rows: Vec<Vec<String>> = values.iter().map(|v| vec![v.to_string()]).collect();
        profile(&rows, 0)
    }

    #[test]
    fn dates_by_the_formats_that_read_them() {
        let p = col(&["04-03-2012", "2012-03-05", "17-08-2015", ""]);
        assert_eq!(p.date_formats, vec!["%d-%m-%Y", "%Y-%m-%d"]);
        assert_eq!(p.date_hits, 3);
        let p = col(&["2026-11-01 10:00", "2026-11-02 09:30"]);
        assert_eq!(p.date_formats, vec!["%Y-%m-%d %H:%M"]);
        let p = col(&["20120304", "99990003"]);
        assert_eq!((p.date_hits, p.date_formats.len()), (1, 1));
    }

    #[test]
    fn bsns_gender_and_decisions() {
        let p = col(&["999990019", "99990003", "9999.900.32", "123"]);
        assert_eq!((p.bsn_hits, p.bsn_padded), (3, 1));
        assert_eq!(col(&["M", "V", "X", "v"]).gender_hits, 4);
        assert_eq!(col(&["J", "N", "J"]).yes_no, Some(0));
        assert_eq!(col(&["N"]).yes_no, None);
        assert_eq!(col(&["ja", "nee", "misschien"]).yes_no, None);
    }

    #[test]
    fn header_words() {
        assert_eq!(words("Last name"), vec!["lastname"]);
        assert_eq!(
            words("Client/Naam/@achternaam"),
            vec!["client", "naam", "achternaam"]
        );
    }
}
