//! Date formats: strftime patterns compiled once at load, with a fast path
//! for all-numeric ones, and `"fhir"` for FHIR dates and dateTimes.

use chrono::format::{Item, StrftimeItems};
use chrono::NaiveDate;

use super::{DateFormat, Piece};

/// Compiles a strftime pattern, and checks that it yields a whole date.
pub(super) fn date_format(pattern: &str) -> Option<DateFormat> {
    if pattern == "fhir" {
        return Some(DateFormat {
            pattern: pattern.to_string(),
            items: Vec::new(),
            fixed: None,
            fhir: true,
        });
    }
    let items: Vec<Item<'static>> = StrftimeItems::new(pattern).parse_to_owned().ok()?;
    let probe = NaiveDate::from_ymd_opt(2012, 3, 4)?;
    // A date-time probe, so that time items may follow the date; a format
    // that needs more (an offset) fails here rather than panicking later.
    let mut text = String::new();
    use std::fmt::Write;
    write!(
        text,
        "{}",
        probe.and_hms_opt(0, 0, 0)?.format_with_items(items.iter())
    )
    .ok()?;
    let f = DateFormat {
        pattern: pattern.to_string(),
        fixed: fixed_layout(&items),
        items,
        fhir: false,
    };
    (f.parse(&text) == Some(probe)).then_some(f)
}

/// The byte layout of a purely numeric, zero-padded pattern (`%d-%m-%Y`,
/// `%Y%m%d`, ...), for the fast path of `DateFormat::parse`; `None` for
/// anything else (names, spaces, times), which only chrono parses.
fn fixed_layout(items: &[Item<'static>]) -> Option<Vec<Piece>> {
    use chrono::format::{Numeric, Pad};
    let mut out = Vec::new();
    for item in items {
        match item {
            Item::Numeric(Numeric::Year, Pad::Zero) => out.push(Piece::Year),
            Item::Numeric(Numeric::Month, Pad::Zero) => out.push(Piece::Month),
            Item::Numeric(Numeric::Day, Pad::Zero) => out.push(Piece::Day),
            Item::Literal(l) if l.is_ascii() && !l.contains(char::is_whitespace) => {
                out.extend(l.bytes().map(Piece::Lit));
            }
            Item::OwnedLiteral(l) if l.is_ascii() && !l.contains(char::is_whitespace) => {
                out.extend(l.bytes().map(Piece::Lit));
            }
            _ => return None,
        }
    }
    Some(out)
}

impl DateFormat {
    pub fn parse(&self, s: &str) -> Option<NaiveDate> {
        if self.fhir {
            return fhir_date(s);
        }
        if let Some(d) = self.fixed.as_deref().and_then(|f| parse_fixed(f, s)) {
            return Some(d);
        }
        let mut parsed = chrono::format::Parsed::new();
        chrono::format::parse(&mut parsed, s, self.items.iter()).ok()?;
        parsed.to_naive_date().ok()
    }
}

/// A FHIR `date` (whole: a partial date such as `2012-03` is not one) or
/// `dateTime`, whose calendar date is read in Europe/Amsterdam: an episode
/// that starts at 23:30 UTC on 31 October starts on 1 November here.
fn fhir_date(s: &str) -> Option<NaiveDate> {
    if s.len() == 10 {
        return NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    }
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(t.with_timezone(&chrono_tz::Europe::Amsterdam).date_naive())
}

/// The fast path: a value of exactly the pattern's full width (four-digit
/// year, two-digit day and month). It reads what chrono would read from such
/// a value; anything else (a shorter day, a sign, a bad date) goes to chrono,
/// which decides.
fn parse_fixed(layout: &[Piece], s: &str) -> Option<NaiveDate> {
    let mut b = s.as_bytes();
    let (mut y, mut m, mut d) = (None, None, None);
    let digits = |b: &mut &[u8], n: usize| -> Option<u32> {
        let (head, rest) = b.split_at_checked(n)?;
        *b = rest;
        head.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    for piece in layout {
        match piece {
            Piece::Year => y = Some(digits(&mut b, 4)?),
            Piece::Month => m = Some(digits(&mut b, 2)?),
            Piece::Day => d = Some(digits(&mut b, 2)?),
            Piece::Lit(c) => {
                let (&first, rest) = b.split_first()?;
                if first != *c {
                    return None;
                }
                b = rest;
            }
        }
    }
    if !b.is_empty() {
        return None;
    }
    NaiveDate::from_ymd_opt(y? as i32, m?, d?)
}
