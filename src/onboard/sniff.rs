//! The first look at a sample: its head (read through the CSV guard, which
//! refuses binary files, UTF-16 and endless lines), whether it is CSV or XML,
//! and a CSV file's dialect: encoding, delimiter by consistency, header.

use std::io::Read;
use std::path::Path;

use super::{Dialect, InitError, Kind, MAX_COLUMNS};
use crate::source::ReadError;

/// The head a dialect is judged on.
const HEAD: usize = 256 * 1024;
/// Lines of the head judged for the delimiter.
const LINES: usize = 500;
/// The delimiters a CSV export may use, in the order ties are broken.
const DELIMITERS: [u8; 4] = [b';', b',', b'\t', b'|'];

const BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

fn unreadable(path: &Path, source: ReadError) -> InitError {
    InitError::Unreadable {
        path: path.to_path_buf(),
        source,
    }
}

/// Up to `HEAD` bytes, through the guard every CSV read goes through. An XML
/// file on one long line is no CSV line, so a run too long for a line is
/// judged by the XML reader later instead.
pub fn head(path: &Path) -> Result<Vec<u8>, InitError> {
    let file = std::fs::File::open(path).map_err(|e| unreadable(path, ReadError::Io(e)))?;
    let mut guarded = crate::source::guarded_lines(file).take(HEAD as u64);
    let mut head = Vec::with_capacity(64 * 1024);
    match guarded.read_to_end(&mut head) {
        Ok(_) => {}
        Err(e) => match ReadError::from_io(e) {
            ReadError::RunTooLong { .. } => {}
            other => return Err(unreadable(path, other)),
        },
    }
    if head.iter().all(u8::is_ascii_whitespace) || head == BOM {
        return Err(unreadable(path, ReadError::Empty));
    }
    Ok(head)
}

/// JSON is no export a file source reads: an API's pages are mapped as an
/// `http-json` source instead (docs/mapping.md).
pub fn refuse_json(path: &Path, head: &[u8]) -> Result<(), InitError> {
    let body = head.strip_prefix(BOM).unwrap_or(head);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => Err(InitError::NotAnExport {
            path: path.to_path_buf(),
            why: "it looks like JSON; an API that serves JSON is an http-json source, written by hand (docs/mapping.md)".into(),
        }),
        _ => Ok(()),
    }
}

/// XML when the first thing after a byte-order mark and white space is `<`.
pub fn kind_of(head: &[u8]) -> Kind {
    let body = head.strip_prefix(BOM).unwrap_or(head);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => Kind::Xml,
        _ => Kind::Csv,
    }
}

/// The encoding a head is in: a BOM decides; else valid UTF-8 (a character
/// cut at the head's end is fine); else Windows-1252, the only other one a
/// mapping knows (ISO-8859-1 is read as it).
pub fn encoding_of(head: &[u8]) -> (&'static encoding_rs::Encoding, &'static str) {
    if head.starts_with(BOM) {
        return (encoding_rs::UTF_8, "a UTF-8 byte-order mark");
    }
    match std::str::from_utf8(head) {
        Ok(s) if s.is_ascii() => (encoding_rs::UTF_8, "plain ASCII so far, read as UTF-8"),
        Ok(_) => (encoding_rs::UTF_8, "valid UTF-8"),
        Err(e) if e.error_len().is_none() => (encoding_rs::UTF_8, "valid UTF-8"),
        Err(_) => (encoding_rs::WINDOWS_1252, "not valid UTF-8"),
    }
}

pub struct CsvDialect {
    pub columns: Vec<String>,
    pub dialect: Dialect,
}

/// How well one delimiter splits the head: lines with the header's number
/// of fields, lines, and that number.
fn consistency(body: &[u8], delimiter: u8, cut: bool) -> (usize, usize, usize) {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut lens = Vec::new();
    let mut rec = csv::ByteRecord::new();
    while lens.len() < LINES {
        match reader.read_byte_record(&mut rec) {
            Ok(true) => {
                if !(rec.len() == 1 && rec[0].iter().all(u8::is_ascii_whitespace)) {
                    lens.push(rec.len());
                }
            }
            _ => break,
        }
    }
    // The head may end inside a line: that line says nothing.
    if cut && lens.len() > 2 {
        lens.pop();
    }
    let Some(&width) = lens.first() else {
        return (0, 0, 0);
    };
    let same = lens.iter().filter(|&&l| l == width).count();
    (same, lens.len(), width)
}

pub fn csv_dialect(path: &Path, head: &[u8]) -> Result<CsvDialect, InitError> {
    let (encoding, encoding_why) = encoding_of(head);
    let body = head.strip_prefix(BOM).unwrap_or(head);
    let cut = head.len() >= HEAD;
    let best = DELIMITERS
        .iter()
        .map(|&d| (d, consistency(body, d, cut)))
        .filter(|(_, (same, lines, width))| *width >= 2 && *same * 10 >= *lines * 9)
        .max_by(|a, b| {
            let ((_, (sa, la, wa)), (_, (sb, lb, wb))) = (a, b);
            // The most consistent, then the most columns; earlier wins a tie.
            (sa * lb)
                .cmp(&(sb * la))
                .then(wa.cmp(wb))
                .then(std::cmp::Ordering::Greater)
        });
    let Some((delimiter, (same, lines, _))) = best else {
        return Err(InitError::NotAnExport {
            path: path.to_path_buf(),
            why: "none of the delimiters ; , tab | splits its lines into the same number of columns (two or more); for an XML export, pass --kind xml".into(),
        });
    };
    if lines < 2 {
        return Err(InitError::NoRecords {
            path: path.to_path_buf(),
        });
    }
    let columns = header(path, body, delimiter, encoding)?;
    Ok(CsvDialect {
        columns,
        dialect: Dialect::Csv {
            delimiter,
            encoding,
            encoding_why,
            consistent: (same, lines),
            quoted: body.contains(&b'"'),
        },
    })
}

/// The header's names, trimmed, without empty or repeated ones (a reader
/// finds a name's first column), refused when line 1 looks like a record: a
/// child's row must not become column names in a draft.
fn header(
    path: &Path,
    body: &[u8],
    delimiter: u8,
    encoding: &'static encoding_rs::Encoding,
) -> Result<Vec<String>, InitError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut rec = csv::ByteRecord::new();
    let _ = reader.read_byte_record(&mut rec);
    let mut names: Vec<String> = Vec::new();
    for raw in rec.iter() {
        let (text, _) = encoding.decode_without_bom_handling(raw);
        let name = text.trim().to_string();
        if looks_like_data(&name) {
            return Err(InitError::NoHeader {
                path: path.to_path_buf(),
            });
        }
        if !name.is_empty() && !names.contains(&name) && names.len() < MAX_COLUMNS {
            names.push(name);
        }
    }
    Ok(names)
}

/// A cell no header would have: four digits or more, an e-mail address, or
/// a date.
pub fn looks_like_data(cell: &str) -> bool {
    cell.chars().filter(char::is_ascii_digit).count() >= 4
        || (cell.contains('@') && cell.contains('.'))
        || super::profile::parse_any_date(cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_the_consistent_one() {
        let body = b"a;b,c;d\n1;2,3;4\n5;6,7;8\n";
        assert_eq!(consistency(body, b';', false), (3, 3, 3));
        // Commas split these lines too, but one has a quoted comma.
        let body = b"a,b;c\n\"x,y\",1;2\n3,4;5\n";
        let (same, lines, _) = consistency(body, b',', false);
        assert_eq!((same, lines), (3, 3));
    }

    #[test]
    fn encodings() {
        assert_eq!(encoding_of(b"\xEF\xBB\xBFa").0, encoding_rs::UTF_8);
        assert_eq!(encoding_of("Jönsson".as_bytes()).0, encoding_rs::UTF_8);
        assert_eq!(encoding_of(b"J\xf6nsson").0, encoding_rs::WINDOWS_1252);
        // A character cut at the end of the head is still UTF-8.
        assert_eq!(encoding_of(&"ö".as_bytes()[..1]).0, encoding_rs::UTF_8);
    }

    #[test]
    fn a_row_is_no_header() {
        assert!(looks_like_data("999990019"));
        assert!(looks_like_data("04-03-2012"));
        assert!(looks_like_data("a@b.nl"));
        assert!(!looks_like_data("Geboortedatum"));
        assert!(!looks_like_data("Adres 2"));
    }
}
