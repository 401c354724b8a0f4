//! Sources: where records come from. This module owns reading export files
//! (streamed, one record at a time) and finding the files waiting in a drop
//! folder. It knows nothing of mappings or signals: a reader is told which keys
//! (CSV headers, XML paths) to extract and extracts only those, so nothing else
//! in an export ever reaches the rest of the program.
//!
//! A reader never fails for one bad record; it fails as a whole (`ReadError`)
//! only when the file cannot be read as the kind of export it claims to be.

pub mod api;
mod csv;
mod folder;
mod guard;
mod xml;

use std::fmt;
use std::io::Read;
use std::path::Path;

pub use folder::{is_ignored_name, waiting_files};

/// Where a record stands in its file, as the report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// The physical line a CSV record starts on (the header is line 1).
    Line(u64),
    /// The 1-based number of an XML or API record.
    Record(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Record(n) => write!(f, "record {n}"),
        }
    }
}

/// One record: the values of the requested keys, by slot. An empty string is an
/// absent value. The buffer is reused from record to record.
#[derive(Debug, Default, Clone)]
pub struct RawRecord {
    pub location: Option<Location>,
    /// The resource a record is, where the source names one
    /// (`EpisodeOfCare/ID`): the location a report shows for it.
    pub resource: Option<String>,
    pub values: Vec<String>,
}

/// The file formats a reader understands.
#[derive(Debug, Clone)]
pub enum Format {
    Csv {
        delimiter: u8,
    },
    /// `record`: the element path of one record from the root, by local names.
    Xml {
        record: Vec<String>,
    },
    /// An API source: its records come from a poll (`api`).
    Api(std::sync::Arc<api::ApiSpec>),
}

/// What to read and which keys to extract.
#[derive(Debug, Clone)]
pub struct ReaderSpec {
    pub format: Format,
    pub encoding: &'static encoding_rs::Encoding,
    pub keys: Vec<Key>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// A CSV header, or an XML path relative to the record (`Client/BSN`, `@id`).
    pub expr: String,
    /// A CSV file whose header lacks this column is rejected as a whole: every
    /// record would fail on it, which is a mapping or export problem.
    pub required: bool,
}

/// Why a whole file cannot be read. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    /// An API source whose HTTP client cannot be made (its `ca`): before
    /// any request.
    #[error("cannot poll: {0}")]
    Client(#[from] api::ClientError),
    #[error("is empty: there is no header line")]
    Empty,
    #[error("looks binary (it contains a NUL byte near byte {offset}): is this really an export?")]
    Binary { offset: u64 },
    #[error("starts with a UTF-16 byte-order mark: export as UTF-8 or Windows-1252")]
    Utf16,
    #[error("has more than {limit} bytes without a {what} near byte {offset}: the file is corrupt or not an export of this kind")]
    RunTooLong {
        limit: usize,
        what: &'static str,
        offset: u64,
    },
    #[error("{location} is not valid UTF-8: if the export is Windows-1252, set encoding = \"windows-1252\" in the mapping")]
    Encoding { location: Location },
    /// `found` says what the header holds without quoting it (`redact`).
    #[error("has no column {columns} (required by the mapping) in its header on line 1; {found}: is the header line missing, or is the delimiter not the mapping's?")]
    MissingColumn { columns: String, found: String },
    /// `message` is visync's own words, never the csv crate's text.
    #[error("{location}: {message}")]
    Csv {
        location: Location,
        message: &'static str,
    },
    #[error(
        "has a DOCTYPE declaration: visync never processes DTDs or entities; export without one"
    )]
    Doctype,
    /// `message` is visync's own words: a parser's text can embed names and
    /// snippets of the file.
    #[error("is not well-formed XML near byte {offset} (after record {after}): {message}")]
    Xml {
        offset: u64,
        after: u64,
        message: &'static str,
    },
    /// `element` is `<Name>` when the mapping names it, else a description.
    #[error("ends inside {element} after record {after}: the file is truncated")]
    Truncated { element: String, after: u64 },
    #[error("has a root element other than <{expected}>, where the mapping's record path starts: is this the export the mapping is for?")]
    WrongRoot { expected: String },
    #[error("uses an entity of {length} characters that is not one of XML's five in record {record}: only the five XML entities and character references are allowed")]
    Entity { length: usize, record: u64 },
    #[error("nests elements deeper than {0} levels: not an export this mapping can read")]
    TooDeep(usize),
    #[error("{location} has a value of more than {limit} bytes for \"{key}\": the file is corrupt or the mapping points at the wrong element")]
    ValueTooLong {
        location: Location,
        key: String,
        limit: usize,
    },
}

/// The longest value a record may carry for one key. Real values are names and
/// dates; anything longer means the file or the mapping is wrong.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// A streaming reader over one export file, or one poll of an API source
/// (and that poll's spool, for the second pass).
pub enum FileReader {
    Csv(Box<csv::CsvRecords>),
    Xml(Box<xml::XmlRecords>),
    Poll(Box<api::PollReader>),
    Spool(Box<api::SpoolReader>),
}

impl FileReader {
    pub fn open(path: &Path, spec: &ReaderSpec) -> Result<FileReader, ReadError> {
        let file = std::fs::File::open(path)?;
        FileReader::from_reader(Box::new(file), spec)
    }

    pub fn from_reader(
        input: Box<dyn Read + Send>,
        spec: &ReaderSpec,
    ) -> Result<FileReader, ReadError> {
        Ok(match &spec.format {
            Format::Csv { delimiter } => FileReader::Csv(Box::new(csv::CsvRecords::new(
                input,
                *delimiter,
                spec.encoding,
                &spec.keys,
            )?)),
            Format::Xml { record } => FileReader::Xml(Box::new(xml::XmlRecords::new(
                input,
                record.clone(),
                spec.encoding,
                &spec.keys,
            ))),
            Format::Api(_) => {
                return Err(ReadError::Io(std::io::Error::other(
                    "an API source is polled, not read from a file",
                )))
            }
        })
    }

    /// Fills `rec` with the next record; `Ok(false)` at the end of the file.
    pub fn next_record(&mut self, rec: &mut RawRecord) -> Result<bool, ReadError> {
        match self {
            FileReader::Csv(r) => r.next_record(rec),
            FileReader::Xml(r) => r.next_record(rec),
            FileReader::Poll(r) => r.next_record(rec),
            FileReader::Spool(r) => r.next_record(rec),
        }
    }
}

impl ReadError {
    /// An IO error from a guarded reader: the guard's refusal (binary, UTF-16,
    /// an overlong line) as itself, anything else as an IO error.
    pub fn from_io(e: std::io::Error) -> ReadError {
        guard::classify(e)
    }
}

/// A CSV file that is not an export (the professionals lookup table) read
/// through the same guard as an export: NUL bytes, UTF-16 and overlong lines
/// refuse it, and nothing of it is held whole.
pub fn guarded_lines(file: std::fs::File) -> impl Read {
    guard::Guard::new(file, (b'\n', b'\n'), "line break", 1024 * 1024)
}

/// Decodes one field strictly (no replacement characters): `None` when the
/// bytes are not valid in `encoding`.
pub fn decode_strict(bytes: &[u8], encoding: &'static encoding_rs::Encoding) -> Option<String> {
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|c| c.into_owned())
}

/// Decodes one value in the file's encoding into `out` (cleared first).
/// `Err(())` means the bytes are not valid UTF-8 where UTF-8 was declared.
fn decode_into(
    bytes: &[u8],
    encoding: &'static encoding_rs::Encoding,
    out: &mut String,
) -> Result<(), ()> {
    out.clear();
    if encoding == encoding_rs::UTF_8 {
        out.push_str(std::str::from_utf8(bytes).map_err(|_| ())?);
    } else {
        let (text, _) = encoding.decode_without_bom_handling(bytes);
        out.push_str(&text);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn drain(bytes: Vec<u8>, format: Format) {
        let spec = ReaderSpec {
            format,
            encoding: encoding_rs::WINDOWS_1252,
            keys: ["a", "b/c", "@d", "b/@e"]
                .iter()
                .map(|k| Key {
                    expr: k.to_string(),
                    required: false,
                })
                .collect(),
        };
        if let Ok(mut r) = FileReader::from_reader(Box::new(std::io::Cursor::new(bytes)), &spec) {
            let mut rec = RawRecord::default();
            while let Ok(true) = r.next_record(&mut rec) {}
        }
    }

    proptest! {
        // Whatever arrives in a drop folder, a reader returns records or an
        // error; it never panics.
        #[test]
        fn csv_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            drain(bytes, Format::Csv { delimiter: b';' });
        }

        #[test]
        fn xml_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            drain(bytes, Format::Xml { record: vec!["r".into(), "x".into()] });
        }

        #[test]
        fn xml_like_input_never_panics(parts in proptest::collection::vec(
            prop_oneof![
                Just("<r>"), Just("</r>"), Just("<x d='1'>"), Just("</x>"), Just("<b e=\"&amp;\">"),
                Just("</b>"), Just("<c>"), Just("</c>"), Just("&#65;"), Just("&bad;"), Just("<![CDATA[z]]>"),
                Just("text"), Just("<a/>"), Just("<!-- c -->"), Just("<?pi x?>"), Just("&#xFFFFFFF;"),
            ],
            0..60,
        )) {
            drain(parts.concat().into_bytes(), Format::Xml { record: vec!["r".into(), "x".into()] });
        }
    }
}
