//! Quoting input in messages: the one place that decides what of an export
//! may appear in a message, a report, a log line, an error file or a stored
//! error (ARCHITECTURE.md, invariant 16).
//!
//! An export is children's data, and a broken export is no exception: a file
//! that lost its header line makes a child's row the "header", and a parser's
//! error can embed any snippet of the file. So a message never quotes what it
//! read. It may name what the *mapping* declares (header names, element paths:
//! configuration, written by the organisation), positions, counts, lengths,
//! and the shape of a value (`99-99-9999`), which says why a date failed
//! without saying whose it is. A value in clear only with `check --reveal`,
//! which the user asks for on purpose.

use std::fmt::Write as _;

/// The longest shape shown; a longer value is cut with its length given.
const MAX_SHAPE: usize = 24;

/// The shape of a value: ASCII digits as `9`, letters as `A` or `a`, spaces
/// and ASCII punctuation kept, anything else as `?`. `"31-02-2014"` becomes
/// `99-99-9999`, `"Jansen"` becomes `Aaaaaa`: enough to see a wrong format
/// or a wrong column, never enough to read the value back.
pub fn shape(value: &str) -> String {
    let mut out = String::with_capacity(MAX_SHAPE + 16);
    let mut count = 0;
    for c in value.chars() {
        count += 1;
        if count > MAX_SHAPE {
            continue;
        }
        out.push(match c {
            '0'..='9' => '9',
            c if c.is_alphabetic() && c.is_uppercase() => 'A',
            c if c.is_alphabetic() => 'a',
            ' ' => ' ',
            c if c.is_ascii_punctuation() => c,
            _ => '?',
        });
    }
    if count > MAX_SHAPE {
        let _ = write!(out, "… ({count} characters)");
    }
    out
}

/// A value as a message shows it: in quotes when the user asked to see values
/// (`check --reveal`), otherwise as `a value shaped 99-99-9999`.
pub fn value(value: &str, reveal: bool) -> String {
    if reveal {
        format!("\"{value}\"")
    } else {
        format!("a value shaped {}", shape(value))
    }
}

/// An identifier that may be a BSN: its last four characters when it looks
/// like a number (`*****0083`, as `Bsn` masks itself), its shape otherwise
/// (a name in the BSN column must not show its last four letters).
pub fn identifier(raw: &str, reveal: bool) -> String {
    if reveal {
        return raw.to_string();
    }
    let numeric = raw
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | '-'));
    if numeric {
        crate::domain::mask(raw)
    } else {
        format!("a value shaped {}", shape(raw))
    }
}

/// A name read from a file (a header cell, an element), quoted only when the
/// mapping declares it: then it is configuration, not data.
pub fn known_name<'a>(name: &str, declared: impl IntoIterator<Item = &'a str>) -> Option<String> {
    declared
        .into_iter()
        .any(|d| d == name)
        .then(|| format!("\"{name}\""))
}

/// What a header holds, told without its cells: how many columns, which of
/// them the mapping names, and which it names in another case (`BSN` for
/// `bsn`: then the cell is the mapping's own word). A header that is really
/// a child's row shows none of that row.
pub fn header_summary<'a>(
    cells: &[String],
    declared: impl IntoIterator<Item = &'a str> + Clone,
) -> String {
    let mut known = Vec::new();
    let mut other_case = Vec::new();
    for c in cells {
        if let Some(q) = known_name(c, declared.clone()) {
            known.push(q);
        } else if declared
            .clone()
            .into_iter()
            .any(|d| d.eq_ignore_ascii_case(c))
        {
            other_case.push(format!("\"{c}\""));
        }
    }
    let n = cells.len();
    let columns = if n == 1 { "column" } else { "columns" };
    let mut said = if known.is_empty() {
        format!("the header has {n} {columns}, none of them a column the mapping names")
    } else {
        format!(
            "the header has {n} {columns}; of those the mapping names, it has {}",
            known.join(", ")
        )
    };
    if !other_case.is_empty() {
        said.push_str(&format!(
            "; in another case it has {} (names are case-sensitive)",
            other_case.join(", ")
        ));
    }
    said
}

/// Text another system wrote (an index's or a CMS's error message), made fit
/// to keep and log: any run of seven or more digits is masked to its last
/// four (a BSN echoed back), control characters go, and it is cut at 200
/// characters. It cannot catch a name; a well-behaved peer sends none.
pub fn foreign(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(256));
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 7 {
            out.push_str(&crate::domain::mask(digits));
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars().take(200) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        flush(&mut digits, &mut out);
        out.push(if c.is_control() { ' ' } else { c });
    }
    flush(&mut digits, &mut out);
    if text.chars().nth(200).is_some() {
        out.push('…');
    }
    out
}

/// `foreign`, for a field of another system's JSON answer.
pub fn deserialize_foreign<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = <String as serde::Deserialize>::deserialize(d)?;
    Ok(foreign(&raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_keeps_the_format_and_loses_the_value() {
        assert_eq!(shape("31-02-2014"), "99-99-9999");
        assert_eq!(shape("Jansen"), "Aaaaaa");
        assert_eq!(shape("van der Berg"), "aaa aaa Aaaa");
        assert_eq!(shape("Öz€"), "Aa?");
        let long = shape("Hulpvraag: ernstige zorgen over de thuissituatie");
        assert!(long.ends_with("(48 characters)"), "{long}");
        assert!(!long.contains("zorgen"));
    }

    #[test]
    fn foreign_text_loses_what_could_be_a_bsn() {
        assert_eq!(
            foreign("subject.bsn 999990083 fails the 11-proof"),
            "subject.bsn *****0083 fails the 11-proof"
        );
        assert_eq!(foreign("12345678"), "*****5678");
        assert_eq!(foreign("retry in 120 s\n"), "retry in 120 s ");
        assert_eq!(foreign(&"x".repeat(300)).chars().count(), 201);
    }

    #[test]
    fn an_identifier_is_masked_or_shaped() {
        assert_eq!(identifier("999990083", false), "*****0083");
        assert_eq!(identifier("Jansen", false), "a value shaped Aaaaaa");
        assert_eq!(identifier("999990083", true), "999990083");
    }

    #[test]
    fn a_header_of_data_shows_none_of_it() {
        let row: Vec<String> = ["999990083", "Jansen", "Zorgen thuis"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let said = header_summary(&row, ["BSN", "Achternaam"]);
        assert_eq!(
            said,
            "the header has 3 columns, none of them a column the mapping names"
        );
        let header: Vec<String> = ["BSN", "Naam"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            header_summary(&header, ["BSN", "Achternaam"]),
            "the header has 2 columns; of those the mapping names, it has \"BSN\""
        );
    }
}
