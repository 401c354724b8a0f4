//! What the bare passes check, by hand and as tightly as it goes (no
//! chrono, no allocation): the floor `check` and a poll are measured
//! against. Shared by `check.rs` (`%d-%m-%Y`) and `poll.rs` (FHIR's
//! `YYYY-MM-DD`).

use std::ops::Range;

/// Where a date's parts are in its ten bytes, and its two dashes.
pub struct Layout {
    pub day: Range<usize>,
    pub month: Range<usize>,
    pub year: Range<usize>,
    pub dashes: [usize; 2],
}

/// A date of that layout that exists (leap years included).
pub fn date_exists(b: &[u8], l: &Layout) -> bool {
    let num = |r: Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() != 10 || l.dashes.iter().any(|&i| b[i] != b'-') {
        return false;
    }
    let (Some(d), Some(m), Some(y)) = (
        num(l.day.clone()),
        num(l.month.clone()),
        num(l.year.clone()),
    ) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}
