//! Onboarding a source: `visync mapping init` drafts a mapping from a sample
//! export. It reads the first records only (`MAX_RECORDS`), through the same
//! guarded readers a real run uses (`source::FileReader`), and proposes each
//! signal field from evidence: the BSN column by its 11-proof hit rate, dates
//! by parse rate per format, birth/start/end by their order, gender by its
//! value set, the professional by cardinality, the case by uniqueness, names
//! by header hints (`guess`).
//!
//! What it must not do: put anything of the export's content in the draft or
//! the summary. The draft names columns (the export's schema) and, for the
//! gender map and the decision filter, only codes from a fixed vocabulary
//! (`profile::GENDER_CODES`, `profile::YES_NO`); its `[[tests]]` use made-up
//! values. What it read stays in memory and is dropped.

mod draft;
mod guess;
mod guess_dates;
mod guess_people;
mod profile;
mod sniff;
mod summary;
mod xmlscan;

use std::path::{Path, PathBuf};

use crate::source::{FileReader, Format, Key, RawRecord, ReadError, ReaderSpec};

pub use draft::Draft;

/// How many records of a sample are read: enough for hit rates, bounded
/// whatever the file's size.
pub const MAX_RECORDS: usize = 5_000;
/// Values are kept up to this many characters: longer ones are text, never
/// a BSN, a date or a code, and the cut bounds memory.
const MAX_KEPT: usize = 64;
/// Columns (or XML paths) profiled at most.
const MAX_COLUMNS: usize = 256;

/// Why no draft was written. Each names the export and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The guarded readers' own refusal (empty, binary, UTF-16, DOCTYPE, ...).
    #[error("{} {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: ReadError,
    },
    #[error("{} is not a CSV or XML export: {why}", .path.display())]
    NotAnExport { path: PathBuf, why: String },
    #[error("{} has a header line but no records: a draft is guessed from the values, so give a sample with records (a few hundred or more is best)", .path.display())]
    NoRecords { path: PathBuf },
    #[error("{} line 1 looks like a record, not a header (it has a date, a number or an e-mail address where a column name belongs): export with a header line", .path.display())]
    NoHeader { path: PathBuf },
    #[error("{} (XML): {why}", .path.display())]
    Xml { path: PathBuf, why: String },
    #[error("{} exists: pass --force to overwrite it, or choose another --out", .path.display())]
    Exists { path: PathBuf },
    #[error("cannot write the draft {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// CSV or XML: what the export is, as given or as sniffed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Csv,
    Xml,
}

/// What `mapping init` was asked.
pub struct Options {
    pub export: PathBuf,
    pub kind: Option<Kind>,
    /// XML: the record's element path, instead of the guessed one.
    pub record: Option<String>,
    pub today: chrono::NaiveDate,
}

/// The sample as the guesser sees it: column names (CSV headers or XML paths
/// relative to the record) and the first records' values, cut to `MAX_KEPT`.
pub struct Sample {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// How the file is read: goes into `[source]`.
    pub dialect: Dialect,
    /// Whether more records followed the ones read.
    pub truncated: bool,
}

#[derive(Debug, Clone)]
pub enum Dialect {
    Csv {
        delimiter: u8,
        encoding: &'static encoding_rs::Encoding,
        /// Why this encoding: "a UTF-8 byte-order mark", "valid UTF-8", ...
        encoding_why: &'static str,
        /// Lines of the head with the header's number of fields, of all.
        consistent: (usize, usize),
        quoted: bool,
    },
    Xml {
        record: Vec<String>,
        encoding: &'static encoding_rs::Encoding,
        /// How many times the record element occurred in the scan.
        occurrences: u64,
        namespaced: bool,
    },
}

/// Drafts a mapping for the export: the draft's text and its summary.
pub fn init(opts: &Options) -> Result<Draft, InitError> {
    let sample = read_sample(opts)?;
    let guesses = guess::guess(&sample, opts.today);
    Ok(draft::write(opts, &sample, &guesses))
}

fn read_sample(opts: &Options) -> Result<Sample, InitError> {
    let path = &opts.export;
    let head = sniff::head(path)?;
    sniff::refuse_json(path, &head)?;
    let kind = opts.kind.unwrap_or_else(|| sniff::kind_of(&head));
    match kind {
        Kind::Csv => {
            let d = sniff::csv_dialect(path, &head)?;
            read_values(path, d.columns, d.dialect)
        }
        Kind::Xml => {
            let scan = xmlscan::scan(path, &head, opts.record.as_deref())?;
            read_values(path, scan.columns, scan.dialect)
        }
    }
}

/// Reads the first `MAX_RECORDS` records' values of every column through the
/// real reader. A CSV sample that turns out not to be UTF-8 past its head is
/// read again as Windows-1252.
fn read_values(path: &Path, columns: Vec<String>, dialect: Dialect) -> Result<Sample, InitError> {
    let unreadable = |source| InitError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let (rows, truncated, dialect) = match read_with(path, &columns, &dialect) {
        Ok((rows, truncated)) => (rows, truncated, dialect),
        Err(ReadError::Encoding { .. }) => {
            let again = as_windows_1252(dialect);
            let (rows, truncated) = read_with(path, &columns, &again).map_err(unreadable)?;
            (rows, truncated, again)
        }
        Err(source) => return Err(unreadable(source)),
    };
    if rows.is_empty() {
        return Err(InitError::NoRecords {
            path: path.to_path_buf(),
        });
    }
    Ok(Sample {
        columns,
        rows,
        dialect,
        truncated,
    })
}

/// The same CSV dialect read as Windows-1252 (only CSV decodes per value,
/// so only CSV meets an encoding error).
fn as_windows_1252(dialect: Dialect) -> Dialect {
    match dialect {
        Dialect::Csv {
            delimiter,
            consistent,
            quoted,
            ..
        } => Dialect::Csv {
            delimiter,
            encoding: encoding_rs::WINDOWS_1252,
            encoding_why: "not valid UTF-8 further on",
            consistent,
            quoted,
        },
        xml => xml,
    }
}

type Rows = (Vec<Vec<String>>, bool);

fn read_with(path: &Path, columns: &[String], dialect: &Dialect) -> Result<Rows, ReadError> {
    let (format, encoding) = match dialect {
        Dialect::Csv {
            delimiter,
            encoding,
            ..
        } => (
            Format::Csv {
                delimiter: *delimiter,
            },
            *encoding,
        ),
        Dialect::Xml {
            record, encoding, ..
        } => (
            Format::Xml {
                record: record.clone(),
            },
            *encoding,
        ),
    };
    let spec = ReaderSpec {
        format,
        encoding,
        keys: columns
            .iter()
            .map(|c| Key {
                expr: c.clone(),
                required: false,
            })
            .collect(),
    };
    let mut reader = FileReader::open(path, &spec)?;
    let mut rec = RawRecord::default();
    let mut rows = Vec::new();
    while reader.next_record(&mut rec)? {
        if rows.len() == MAX_RECORDS {
            return Ok((rows, true));
        }
        rows.push(rec.values.iter().map(|v| cut(v.trim())).collect());
    }
    Ok((rows, false))
}

/// A value cut to `MAX_KEPT` characters.
fn cut(v: &str) -> String {
    match v.char_indices().nth(MAX_KEPT) {
        Some((i, _)) => v[..i].to_string(),
        None => v.to_string(),
    }
}
