//! The `--families` file: `bsn,family_id` lines standing in for the population
//! register's family ties. Pure parsing; the caller reads the file.
//!
//! A child may appear in several families (one per parent). Blank lines,
//! `#` comments and a `bsn,family_id` header are skipped. A bad line fails the
//! whole file: a family file is test set-up, and a silently dropped tie would
//! make a family match silently vanish.

use crate::bsn::Bsn;

/// A line that is not `bsn,family_id`. Never carries the number itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct FamilyLineError {
    pub line: usize,
    pub message: String,
}

/// Every (child, family) tie in the text, in order.
pub fn parse(text: &str) -> Result<Vec<(Bsn, String)>, FamilyLineError> {
    let mut out = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || (line == 1 && l == "bsn,family_id") {
            continue;
        }
        let fail = |message: String| FamilyLineError { line, message };
        let Some((bsn, family)) = l.split_once(',') else {
            return Err(fail("expected `bsn,family_id`".into()));
        };
        let bsn = Bsn::parse(bsn.trim()).map_err(|e| fail(format!("the BSN {e}")))?;
        let family = family.trim();
        if family.is_empty() || family.contains(',') {
            return Err(fail("expected one non-empty family_id".into()));
        }
        out.push((bsn, family.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ties_and_skips_the_rest() {
        let t =
            "\u{feff}bsn,family_id\n# siblings\n999990019,F1\n\n999990020 , F1\r\n999990019,F2\n";
        let ties = parse(t).unwrap();
        let got: Vec<(&str, &str)> = ties.iter().map(|(b, f)| (b.as_str(), f.as_str())).collect();
        assert_eq!(
            got,
            [
                ("999990019", "F1"),
                ("999990020", "F1"),
                ("999990019", "F2")
            ]
        );
    }

    #[test]
    fn a_bad_line_names_its_number_not_its_bsn() {
        let e = parse("999990019,F1\n123456783,F1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(!e.to_string().contains("123456783"));
        assert_eq!(parse("999990019\n").unwrap_err().line, 1);
        assert_eq!(parse("999990019,\n").unwrap_err().line, 1);
    }
}
