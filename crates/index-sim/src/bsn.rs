//! The index's own BSN check: "valid BSN (11-proof)" (index-api.md), the
//! number's form as domain.md gives it. Nine ASCII digits after spaces, dots
//! and dashes are stripped (eight get a leading zero, which weighs 9·0 and
//! leaves the 11-proof as it was), not all zeros, and 9·d1 + 8·d2 + … + 2·d8
//! − d9 divisible by 11.
//!
//! Written apart from the connector's `domain::Bsn` on purpose, and shares no
//! code with it: the index is what the connector is tested against, so a bug
//! in the connector's check must meet a refusal here, not be repeated.
//!
//! A passing number is only well formed. It never prints in clear by
//! accident (`Debug` masks it); `as_str` is the way out, for the store.

use std::fmt;

/// A number that passed the check: always nine ASCII digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bsn(String);

/// Why a number is not a BSN. The messages never repeat the number: they go
/// back to the client, and into the family file's errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BsnError {
    #[error("holds something other than the digits 0-9 (spaces, dots and dashes aside)")]
    NotDigits,
    #[error("is not 9 digits (or 8, which get a leading zero)")]
    Length,
    #[error("is all zeros")]
    AllZeros,
    #[error("fails the 11-proof")]
    ElevenProof,
}

/// The weights of the first eight digits; the ninth counts −1.
const WEIGHTS: [u32; 8] = [9, 8, 7, 6, 5, 4, 3, 2];

impl Bsn {
    pub fn parse(raw: &str) -> Result<Bsn, BsnError> {
        let kept: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-'))
            .collect();
        // Bytes, not chars: a full-width or Arabic-Indic digit is several
        // bytes, none of them an ASCII digit, so it cannot pass as one.
        if !kept.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BsnError::NotDigits);
        }
        let nine = match kept.len() {
            9 => kept,
            8 => format!("0{kept}"),
            _ => return Err(BsnError::Length),
        };
        if nine.bytes().all(|b| b == b'0') {
            return Err(BsnError::AllZeros);
        }
        let digits: Vec<u32> = nine.bytes().map(|b| u32::from(b - b'0')).collect();
        let weighted: u32 = WEIGHTS.iter().zip(&digits).map(|(w, d)| w * d).sum();
        // weighted − d9 ≡ 0 (mod 11) ⇔ weighted mod 11 = d9, as d9 < 11.
        if weighted % 11 != digits[8] {
            return Err(BsnError::ElevenProof);
        }
        Ok(Bsn(nine))
    }

    /// The nine digits, for the store and the tier link.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Bsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bsn(*****{})", &self.0[5..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_passes() {
        // 9·1 + 8·2 + 7·3 + 6·4 + 5·5 + 4·6 + 3·7 + 2·8 − 2 = 154 = 14·11.
        assert_eq!(Bsn::parse("123456782").unwrap().as_str(), "123456782");
        assert_eq!(Bsn::parse("999990019").unwrap().as_str(), "999990019");
    }

    #[test]
    fn eight_digits_get_a_leading_zero() {
        assert_eq!(Bsn::parse("12345672").unwrap().as_str(), "012345672");
        // Eight digits that fail stay failing once padded.
        assert_eq!(Bsn::parse("12345673"), Err(BsnError::ElevenProof));
    }

    #[test]
    fn spaces_dots_and_dashes_are_stripped() {
        assert_eq!(Bsn::parse(" 1234.567-82 ").unwrap().as_str(), "123456782");
    }

    #[test]
    fn all_zeros_is_refused_though_it_passes_the_sum() {
        assert_eq!(Bsn::parse("000000000"), Err(BsnError::AllZeros));
        assert_eq!(Bsn::parse("00000000"), Err(BsnError::AllZeros));
    }

    #[test]
    fn full_width_and_other_digits_are_refused() {
        assert_eq!(Bsn::parse("１２３４５６７８２"), Err(BsnError::NotDigits));
        assert_eq!(Bsn::parse("١٢٣٤٥٦٧٨٢"), Err(BsnError::NotDigits));
        assert_eq!(Bsn::parse("12345678a"), Err(BsnError::NotDigits));
        assert_eq!(Bsn::parse("+123456782"), Err(BsnError::NotDigits));
    }

    #[test]
    fn other_lengths_are_refused() {
        assert_eq!(Bsn::parse(""), Err(BsnError::Length));
        assert_eq!(Bsn::parse("1234567"), Err(BsnError::Length));
        assert_eq!(Bsn::parse("1234567820"), Err(BsnError::Length));
    }

    #[test]
    fn every_single_digit_change_fails_the_proof() {
        // The 11-proof catches any one wrong digit of a valid number.
        for valid in ["123456782", "999990019", "012345672"] {
            for pos in 0..9 {
                for delta in 1..10u8 {
                    let mut b = valid.as_bytes().to_vec();
                    b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
                    let changed = String::from_utf8(b).unwrap();
                    assert!(Bsn::parse(&changed).is_err(), "{changed}");
                }
            }
        }
    }

    #[test]
    fn never_shows_the_number() {
        let b = Bsn::parse("123456782").unwrap();
        assert_eq!(format!("{b:?}"), "Bsn(*****6782)");
    }
}
