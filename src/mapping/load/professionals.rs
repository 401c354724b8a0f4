//! The professionals lookup table of a mapping (`[professionals] file`):
//! a CSV of id, name, phone and email, streamed through the same input
//! guard as an export, so that a contact can be looked up by the id a
//! record carries.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::super::raw::RawProfessionals;
use super::super::Contact;
use super::{parse_delimiter, parse_encoding, Loader, MappingError};

/// The lookup table's key in the mapping, for its errors.
const PROFESSIONALS: &str = "[professionals] file";

pub(super) fn load_professionals(
    l: &Loader<'_>,
    raw: &RawProfessionals,
    default_encoding: &'static encoding_rs::Encoding,
) -> Result<HashMap<String, Contact>, MappingError> {
    let dir = l.path.parent().unwrap_or(Path::new("."));
    let (encoding, delimiter) = professionals_dialect(l, raw, default_encoding)?;
    let t = Table {
        l,
        file: dir.join(&raw.file),
        encoding,
    };
    // Streamed through the exports' guard, a record at a time: the table is
    // held (it must be, to look professionals up), the file is not.
    let opened = std::fs::File::open(&t.file).map_err(|e| {
        let message = format!("cannot read {}: {e}", t.file.display());
        l.err(None, PROFESSIONALS, message)
    })?;
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .from_reader(crate::source::guarded_lines(opened));
    let mut record = csv::ByteRecord::new();
    let [id, name, phone, email] = t.header(&mut rdr, &mut record)?;
    let mut table = HashMap::new();
    while rdr.read_byte_record(&mut record).map_err(|e| t.fail(e))? {
        let get = |c: Option<usize>| t.value(&record, c);
        if let Some(id) = get(id)? {
            let contact = Contact {
                name: get(name)?,
                phone: get(phone)?,
                email: get(email)?,
            };
            table.insert(id.to_string(), contact);
        }
    }
    Ok(table)
}

/// The lookup table's encoding (the mapping's unless it says otherwise)
/// and delimiter (`;` unless it says otherwise).
fn professionals_dialect(
    l: &Loader<'_>,
    raw: &RawProfessionals,
    default_encoding: &'static encoding_rs::Encoding,
) -> Result<(&'static encoding_rs::Encoding, u8), MappingError> {
    let encoding = match raw.encoding.as_deref() {
        Some(e) => parse_encoding(Some(e)).ok_or_else(|| {
            l.err(
                None,
                "[professionals] encoding",
                "use \"utf-8\", \"windows-1252\" or \"iso-8859-1\"",
            )
        })?,
        None => default_encoding,
    };
    let delimiter = parse_delimiter(raw.delimiter.as_deref().unwrap_or(";")).ok_or_else(|| {
        l.err(
            None,
            "[professionals] delimiter",
            "must be one ASCII character, or \"tab\"",
        )
    })?;
    Ok((encoding, delimiter))
}

/// The professionals lookup file being read, for its errors and values.
struct Table<'a, 'b> {
    l: &'a Loader<'b>,
    file: std::path::PathBuf,
    encoding: &'static encoding_rs::Encoding,
}

impl Table<'_, '_> {
    fn fail(&self, e: csv::Error) -> MappingError {
        let why = match e.into_kind() {
            csv::ErrorKind::Io(io) => crate::source::ReadError::from_io(io).to_string(),
            _ => "cannot be split into fields".to_string(),
        };
        let message = format!("{} {why}", self.file.display());
        self.l.err(None, PROFESSIONALS, message)
    }

    fn field(&self, bytes: &[u8]) -> Result<String, MappingError> {
        crate::source::decode_strict(bytes, self.encoding).ok_or_else(|| {
            let message = format!(
                "{} is not valid {}",
                self.file.display(),
                self.encoding.name()
            );
            self.l.err(None, PROFESSIONALS, message)
        })
    }

    /// A column's value in a record, trimmed; `None` when empty or absent.
    fn value(
        &self,
        record: &csv::ByteRecord,
        c: Option<usize>,
    ) -> Result<Option<Arc<str>>, MappingError> {
        let Some(bytes) = c.and_then(|c| record.get(c)) else {
            return Ok(None);
        };
        let v = self.field(bytes)?;
        let v = v.trim();
        Ok((!v.is_empty()).then(|| Arc::from(v)))
    }

    /// The header's columns: id, name (both required), phone and email.
    fn header<R: std::io::Read>(
        &self,
        rdr: &mut csv::Reader<R>,
        record: &mut csv::ByteRecord,
    ) -> Result<[Option<usize>; 4], MappingError> {
        let file = self.file.display();
        if !rdr.read_byte_record(record).map_err(|e| self.fail(e))? {
            return Err(self.l.err(None, PROFESSIONALS, format!("{file} is empty")));
        }
        let mut header = Vec::with_capacity(record.len());
        for (i, h) in record.iter().enumerate() {
            // A UTF-8 byte-order mark before the first name is not part of it.
            let h = if i == 0 {
                h.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(h)
            } else {
                h
            };
            header.push(self.field(h)?.trim().to_ascii_lowercase());
        }
        let col = |name: &str| header.iter().position(|h| h == name);
        let (Some(id), Some(name)) = (col("id"), col("name")) else {
            let message =
                format!("{file} needs a header with the columns id, name, phone and email");
            return Err(self.l.err(None, PROFESSIONALS, message));
        };
        Ok([Some(id), Some(name), col("phone"), col("email")])
    }
}
