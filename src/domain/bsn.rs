//! The citizen service number (BSN). A `Bsn` can only hold a well-formed number:
//! nine ASCII digits, not all zeros, passing the 11-proof. It never prints in
//! clear by accident: `Debug` and `Display` mask it; `as_str` is the one way out.

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bsn([u8; 9]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BsnError {
    #[error("contains a character that is not an ASCII digit")]
    NotDigits,
    #[error("has {0} digits; a BSN has 9 (or 8, padded with a leading zero)")]
    Length(usize),
    #[error("is all zeros")]
    Zeros,
    #[error("fails the 11-proof")]
    Checksum,
}

impl Bsn {
    /// Parses a BSN as a source writes it: spaces, dots and dashes are stripped,
    /// an 8-digit number is padded with a leading zero.
    pub fn parse(raw: &str) -> Result<Bsn, BsnError> {
        let mut digits = [0u8; 9];
        let mut n = 0usize;
        for c in raw.chars() {
            match c {
                ' ' | '.' | '-' => continue,
                // `is_ascii_digit`, not `is_numeric`: full-width and other
                // scripts' digits must not pass.
                c if c.is_ascii_digit() => {
                    if n < 9 {
                        digits[n] = c as u8;
                    }
                    n += 1;
                }
                _ => return Err(BsnError::NotDigits),
            }
        }
        match n {
            9 => {}
            8 => {
                digits.copy_within(0..8, 1);
                digits[0] = b'0';
            }
            other => return Err(BsnError::Length(other)),
        }
        if digits.iter().all(|&d| d == b'0') {
            return Err(BsnError::Zeros);
        }
        let sum: i32 = digits
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let weight = if i == 8 { -1 } else { 9 - i as i32 };
                weight * i32::from(d - b'0')
            })
            .sum();
        if sum % 11 != 0 {
            return Err(BsnError::Checksum);
        }
        Ok(Bsn(digits))
    }

    /// The number in clear: only for the index payload and `--reveal`.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("?????????")
    }

    pub fn as_bytes(&self) -> &[u8; 9] {
        &self.0
    }

    /// `*****6782`: the form for logs and reports.
    pub fn masked(&self) -> String {
        mask(self.as_str())
    }
}

/// Masks any identifier-like text to its last four characters.
pub fn mask(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("*****{tail}")
}

impl fmt::Debug for Bsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bsn({})", self.masked())
    }
}

impl fmt::Display for Bsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_spec_example_passes() {
        assert_eq!(Bsn::parse("123456782").unwrap().as_str(), "123456782");
    }

    #[test]
    fn separators_are_stripped_and_eight_digits_padded() {
        assert_eq!(Bsn::parse(" 1234.567-82 ").unwrap().as_str(), "123456782");
        // The leading zero weighs 9·0, so the 11-proof is unchanged.
        assert_eq!(Bsn::parse("12345672").unwrap().as_str(), "012345672");
    }

    #[test]
    fn bad_numbers_say_why() {
        assert_eq!(Bsn::parse("123456783"), Err(BsnError::Checksum));
        assert_eq!(Bsn::parse("000000000"), Err(BsnError::Zeros));
        assert_eq!(Bsn::parse("1234567"), Err(BsnError::Length(7)));
        assert_eq!(Bsn::parse("1234567820"), Err(BsnError::Length(10)));
        assert_eq!(Bsn::parse(""), Err(BsnError::Length(0)));
        assert_eq!(Bsn::parse("12345678a"), Err(BsnError::NotDigits));
        // Full-width digits pass a naive is_numeric check.
        assert_eq!(Bsn::parse("１２３４５６７８２"), Err(BsnError::NotDigits));
    }

    #[test]
    fn never_prints_in_clear() {
        let b = Bsn::parse("123456782").unwrap();
        assert_eq!(format!("{b}"), "*****6782");
        assert_eq!(format!("{b:?}"), "Bsn(*****6782)");
    }

    fn valid_bsn() -> impl Strategy<Value = String> {
        // Eight free digits, then the check digit that satisfies the 11-proof
        // (skipping prefixes whose remainder would need a check digit of 10).
        proptest::collection::vec(0u32..10, 8).prop_filter_map("check digit 10", |d| {
            let s: u32 = d.iter().enumerate().map(|(i, x)| (9 - i as u32) * x).sum();
            let check = s % 11;
            if check == 10 || (d.iter().all(|&x| x == 0) && check == 0) {
                return None;
            }
            let mut out: String = d.iter().map(|x| char::from(b'0' + *x as u8)).collect();
            out.push(char::from(b'0' + check as u8));
            Some(out)
        })
    }

    proptest! {
        #[test]
        fn every_valid_number_passes(s in valid_bsn()) {
            prop_assert_eq!(Bsn::parse(&s).unwrap().as_str().to_string(), s);
        }

        #[test]
        fn every_padded_valid_number_passes(s in valid_bsn().prop_filter("leading zero", |s| s.starts_with('0'))) {
            prop_assert_eq!(Bsn::parse(&s[1..]).unwrap().as_str().to_string(), s);
        }

        #[test]
        fn every_single_digit_change_fails(s in valid_bsn(), pos in 0usize..9, delta in 1u8..10) {
            let mut b = s.into_bytes();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).unwrap();
            prop_assert!(Bsn::parse(&changed).is_err());
        }

        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = Bsn::parse(&s);
        }
    }
}
