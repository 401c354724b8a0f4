//! The content hash of a signal: how a correction is told from a re-send.

use chrono::Datelike;

use super::SignalRef;

/// A hash of a signal's content, to tell a correction from a re-send. It covers
/// what the index holds and the local case reference; the end date is compared
/// on its own (renewals move it). 64 bits, eight bytes a step (`Fold`): cheap
/// on the hot path of `check`, and a collision (a correction missed) is a
/// 2⁻⁶⁴ event. It is stored, so it must stay stable across versions: a change
/// would make every stored signal look corrected once (`stable_value` pins it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub u64);

/// A 64-bit hash fed eight bytes at a time: xor, multiply by an odd constant
/// and rotate (each step a bijection of the state), then a final avalanche.
/// Each field is preceded by its length, so ("ab", "c") ≠ ("a", "bc").
#[derive(Default)]
struct Fold(u64);

impl Fold {
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.word(b.len() as u64);
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            self.word(tail(rest));
        }
    }

    /// The finaliser of SplitMix64: every input bit reaches every output bit.
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// 1 to 7 bytes as a little-endian word, zero-padded: what copying them into
/// `[0; 8]` gives, without the call to `memcpy` that a copy of unknown length
/// compiles to (most fields are shorter than a word, so it was most of the
/// hash's time). Two loads that may overlap; an overlapping byte is OR-ed
/// onto itself.
fn tail(rest: &[u8]) -> u64 {
    let n = rest.len();
    let byte = |i: usize| u64::from(rest[i]) << (8 * i);
    if n >= 4 {
        let low = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let high = u32::from_le_bytes([rest[n - 4], rest[n - 3], rest[n - 2], rest[n - 1]]);
        u64::from(low) | u64::from(high) << (8 * (n - 4))
    } else {
        byte(0) | byte(n / 2) | byte(n - 1)
    }
}

impl SignalRef<'_> {
    pub fn content_hash(&self) -> ContentHash {
        let s = &self.subject;
        let p = &self.professional;
        let mut h = Fold::default();
        // Dates as their day numbers: no string to build on the hot path.
        h.word(self.start_date.num_days_from_ce() as u64);
        h.word(s.birth_date.num_days_from_ce() as u64);
        for part in [
            s.bsn.as_str(),
            s.family_name,
            s.name_prefix.unwrap_or(""),
            s.initials.unwrap_or(""),
            s.given_names.unwrap_or(""),
            s.gender.as_str(),
            p.id,
            p.name,
            p.phone.unwrap_or(""),
            p.email.unwrap_or(""),
            self.case_ref,
        ] {
            h.bytes(part.as_bytes());
        }
        ContentHash(h.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Bsn, Gender, Professional, Signal, Subject};
    use chrono::NaiveDate;

    fn sample() -> Signal {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        Signal {
            subject: Subject {
                bsn: Bsn::parse("999990019").unwrap(),
                family_name: "Jansen".into(),
                name_prefix: Some("van".into()),
                initials: Some("P.J.".into()),
                given_names: None,
                birth_date: d("2012-03-04"),
                gender: Gender::Male,
            },
            professional: Professional {
                id: "EMP-0042".into(),
                name: "A. de Vries".into(),
                phone: Some("+31 30 123 4567".into()),
                email: None,
            },
            case_ref: "D-1".into(),
            start_date: d("2026-11-01"),
            end_date: d("2028-11-01"),
            end_from_source: false,
            ended: None,
        }
    }

    /// The hash is stored: a new version must compute the same value, or
    /// every stored signal would look corrected.
    #[test]
    fn stable_value() {
        assert_eq!(sample().content_hash(), ContentHash(0x237e_2e1e_9086_2d77));
    }

    #[test]
    fn tail_is_the_zero_padded_word() {
        let bytes = *b"abcdefg";
        for n in 1..8 {
            let mut padded = [0u8; 8];
            padded[..n].copy_from_slice(&bytes[..n]);
            assert_eq!(tail(&bytes[..n]), u64::from_le_bytes(padded), "{n} bytes");
        }
    }

    /// The view and the owned signal are the same signal.
    #[test]
    fn view_round_trip() {
        assert_eq!(sample().as_ref().to_signal(), sample());
    }

    #[test]
    fn every_field_and_every_boundary_counts() {
        let base = sample().content_hash();
        let changes: Vec<fn(&mut Signal)> = vec![
            |s| s.subject.family_name.push('s'),
            |s| s.subject.name_prefix = None,
            |s| s.subject.initials = Some("P.".into()),
            |s| s.subject.given_names = Some("Pieter".into()),
            |s| s.subject.gender = Gender::Other,
            |s| s.subject.birth_date = s.subject.birth_date.succ_opt().unwrap(),
            |s| s.subject.bsn = Bsn::parse("999990020").unwrap(),
            |s| s.professional.id = "EMP-0043".into(),
            |s| s.professional.name = "A. de Vries-Smit".into(),
            |s| s.professional.phone = None,
            |s| s.professional.email = Some("a@x.example".into()),
            |s| s.case_ref = "D-2".into(),
            |s| s.start_date = s.start_date.succ_opt().unwrap(),
            // Moving a byte across a field boundary.
            |s| {
                s.subject.family_name = "Janse".into();
                s.subject.name_prefix = Some("nvan".into());
            },
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut s = sample();
            change(&mut s);
            assert_ne!(s.content_hash(), base, "change {i} went unnoticed");
        }
        // The end date is compared on its own: renewals move it.
        let mut s = sample();
        s.end_date = s.end_date.succ_opt().unwrap();
        assert_eq!(s.content_hash(), base);
    }
}
