//! CSV exports: streamed with the `csv` crate over raw bytes. Delimiters,
//! quotes and line breaks are ASCII in every supported encoding, so records are
//! split first and only the requested fields are decoded.

use std::io::Read;

use super::guard::{classify, Guard};
use super::{decode_into, Key, Location, RawRecord, ReadError, MAX_VALUE_BYTES};

/// A record (quoted line breaks included) longer than this is corrupt input.
const MAX_LINE: usize = 1024 * 1024;

pub struct CsvRecords {
    reader: csv::Reader<Box<dyn Read + Send>>,
    record: csv::ByteRecord,
    /// For each requested key, its column in this file (`None`: not in the header).
    columns: Vec<Option<usize>>,
    encoding: &'static encoding_rs::Encoding,
}

impl CsvRecords {
    pub fn new(
        input: Box<dyn Read + Send>,
        delimiter: u8,
        encoding: &'static encoding_rs::Encoding,
        keys: &[Key],
    ) -> Result<CsvRecords, ReadError> {
        let mut guard = Guard::new(input, (b'\n', b'\n'), "line break", MAX_LINE);
        // A UTF-8 byte-order mark decides the encoding, whatever the mapping
        // says: Excel writes one, and it cannot start Windows-1252 text. (The
        // csv crate would drop it silently, so look before it does.)
        let mut head = [0u8; 3];
        let mut got = 0;
        while got < 3 {
            match guard.read(&mut head[got..]).map_err(classify)? {
                0 => break,
                n => got += n,
            }
        }
        let mut encoding = encoding;
        let head = if head[..got] == [0xEF, 0xBB, 0xBF] {
            encoding = encoding_rs::UTF_8;
            &head[..0]
        } else {
            &head[..got]
        };
        let input: Box<dyn Read + Send> =
            Box::new(std::io::Cursor::new(head.to_vec()).chain(guard));
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            // Records end at LF only, so that a record's position is its
            // physical line; a CR before it is trimmed with the value.
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(64 * 1024)
            .from_reader(input);
        let mut header = csv::ByteRecord::new();
        if !reader.read_byte_record(&mut header).map_err(csv_error)? {
            return Err(ReadError::Empty);
        }
        let mut names = Vec::with_capacity(header.len());
        for raw in header.iter() {
            let mut name = String::new();
            decode_into(raw, encoding, &mut name).map_err(|_| ReadError::Encoding {
                location: Location::Line(1),
            })?;
            names.push(name.trim().to_string());
        }
        let columns: Vec<Option<usize>> = keys
            .iter()
            .map(|k| names.iter().position(|n| *n == k.expr))
            .collect();
        let mut missing = keys
            .iter()
            .zip(&columns)
            .filter(|(k, c)| k.required && c.is_none())
            .map(|(k, _)| &k.expr)
            .peekable();
        if missing.peek().is_some() {
            // The mapping's names may be quoted; the header's cells may not:
            // a file without its header line has a child's row there.
            return Err(ReadError::MissingColumn {
                columns: missing
                    .map(|k| format!("\"{k}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                found: crate::redact::header_summary(&names, keys.iter().map(|k| k.expr.as_str())),
            });
        }
        Ok(CsvRecords {
            reader,
            record: csv::ByteRecord::new(),
            columns,
            encoding,
        })
    }

    pub fn next_record(&mut self, rec: &mut RawRecord) -> Result<bool, ReadError> {
        loop {
            if !self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(csv_error)?
            {
                return Ok(false);
            }
            // A line with nothing on it is not a record.
            if self.record.len() == 1 && self.record[0].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            break;
        }
        let line = self.record.position().map_or(0, |p| p.line());
        let location = Location::Line(line);
        rec.location = Some(location);
        rec.values.resize(self.columns.len(), String::new());
        let last = self.record.len() - 1;
        for (slot, col) in self.columns.iter().enumerate() {
            let out = &mut rec.values[slot];
            // The CR of a CRLF line end stays on the last field (see `new`).
            let field = col.and_then(|c| {
                let f = self.record.get(c)?;
                Some(if c == last {
                    f.strip_suffix(b"\r").unwrap_or(f)
                } else {
                    f
                })
            });
            match field {
                Some(bytes) if bytes.len() > MAX_VALUE_BYTES => {
                    return Err(ReadError::ValueTooLong {
                        location,
                        key: format!("column {}", col.unwrap_or(0) + 1),
                        limit: MAX_VALUE_BYTES,
                    })
                }
                Some(bytes) => decode_into(bytes, self.encoding, out)
                    .map_err(|_| ReadError::Encoding { location })?,
                None => out.clear(),
            }
        }
        Ok(true)
    }
}

fn csv_error(e: csv::Error) -> ReadError {
    let location = e.position().map(|p| Location::Line(p.line()));
    match e.into_kind() {
        csv::ErrorKind::Io(io) => classify(io),
        // The csv crate's own texts are not quoted (redact.rs); with byte
        // records and flexible rows, the rest cannot happen, but is named.
        csv::ErrorKind::UnequalLengths { .. } => ReadError::Csv {
            location: location.unwrap_or(Location::Line(0)),
            message: "has a different number of fields than the header",
        },
        _ => ReadError::Csv {
            location: location.unwrap_or(Location::Line(0)),
            message: "cannot be split into fields",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<Key> {
        names
            .iter()
            .map(|n| Key {
                expr: n.to_string(),
                required: true,
            })
            .collect()
    }

    fn read_all(
        bytes: &[u8],
        enc: &'static encoding_rs::Encoding,
        k: &[&str],
    ) -> Result<Vec<(Location, Vec<String>)>, ReadError> {
        let mut r = CsvRecords::new(
            Box::new(std::io::Cursor::new(bytes.to_vec())),
            b';',
            enc,
            &keys(k),
        )?;
        let mut rec = RawRecord::default();
        let mut out = Vec::new();
        while r.next_record(&mut rec)? {
            out.push((rec.location.unwrap(), rec.values.clone()));
        }
        Ok(out)
    }

    #[test]
    fn windows_1252_with_crlf_and_quotes() {
        let data = b"Naam;BSN\r\n\"Bj\xf6rk; de\";123\r\n\r\nM\xfcller;\"4\"\"5\"\r\n";
        let rows = read_all(data, encoding_rs::WINDOWS_1252, &["BSN", "Naam"]).unwrap();
        assert_eq!(
            rows[0],
            (Location::Line(2), vec!["123".into(), "Björk; de".into()])
        );
        assert_eq!(
            rows[1],
            (Location::Line(4), vec!["4\"5".into(), "Müller".into()])
        );
    }

    #[test]
    fn a_bom_means_utf8_whatever_the_mapping_says() {
        let data = "\u{feff}BSN;Naam\n1;Jönsson\n".as_bytes();
        let rows = read_all(data, encoding_rs::WINDOWS_1252, &["BSN", "Naam"]).unwrap();
        assert_eq!(rows[0].1, vec!["1".to_string(), "Jönsson".to_string()]);
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = read_all(b"BSN\n1\n\xf6\n", encoding_rs::UTF_8, &["BSN"]).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::Encoding {
                    location: Location::Line(3)
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_missing_column_names_what_is_there_without_quoting_the_file() {
        let err = read_all(b"Naam;BSN2\n", encoding_rs::UTF_8, &["BSN", "Naam"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "has no column \"BSN\" (required by the mapping) in its header on line 1; the header has 2 columns; of those the mapping names, it has \"Naam\": is the header line missing, or is the delimiter not the mapping's?"
        );
        // An export that lost its header line: a child's row is the header.
        let err = read_all(b"999990083;Jansen;zorgen\n", encoding_rs::UTF_8, &["BSN"])
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("99999") && !err.contains("Jansen") && !err.contains("zorgen"),
            "{err}"
        );
    }

    #[test]
    fn short_rows_give_empty_values_and_physical_lines_count_quoted_breaks() {
        let data = b"A;B\n\"x\ny\";1\nz\n";
        let rows = read_all(data, encoding_rs::UTF_8, &["A", "B"]).unwrap();
        assert_eq!(
            rows[0],
            (Location::Line(2), vec!["x\ny".into(), "1".into()])
        );
        assert_eq!(rows[1], (Location::Line(4), vec!["z".into(), "".into()]));
    }

    #[test]
    fn binary_and_empty_files_are_refused() {
        assert!(matches!(
            read_all(b"", encoding_rs::UTF_8, &["A"]),
            Err(ReadError::Empty)
        ));
        assert!(matches!(
            read_all(b"A\n\x00\x01", encoding_rs::UTF_8, &["A"]),
            Err(ReadError::Binary { .. })
        ));
        assert!(matches!(
            read_all(b"\xff\xfeA\x00", encoding_rs::UTF_8, &["A"]),
            Err(ReadError::Utf16)
        ));
        let long = vec![b'a'; MAX_LINE + 10];
        assert!(matches!(
            read_all(&long, encoding_rs::UTF_8, &["A"]),
            Err(ReadError::RunTooLong { .. })
        ));
    }
}
