//! The records of one poll, kept for the intake's second pass. A file is
//! read twice (once to plan, once to write what the plan needs); an API
//! cannot be asked twice for the same answer, so the first pass writes
//! each record's extracted keys here and the second reads them back.
//!
//! The spool is an unnamed file (`O_TMPFILE`) in the state folder: it
//! holds only the mapping's keys (what a signal is made of, as a drop
//! folder's export would), no name ever points to it, and it is gone when
//! the intake drops it, or when the process dies.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::source::{Location, RawRecord, ReadError};

/// The writing end, handed to the first pass's reader.
pub struct Spool {
    out: Option<BufWriter<File>>,
    done: Arc<Mutex<Option<File>>>,
}

/// The reading end, for the second pass, once the first is done.
pub struct SpoolReader {
    input: BufReader<File>,
}

impl Spool {
    /// A spool in `dir`, and the slot its finished file lands in.
    pub fn create(dir: &Path) -> std::io::Result<(Spool, Arc<Mutex<Option<File>>>)> {
        let file = tempfile::tempfile_in(dir)?;
        let done = Arc::new(Mutex::new(None));
        Ok((
            Spool {
                out: Some(BufWriter::new(file)),
                done: done.clone(),
            },
            done,
        ))
    }

    pub fn write(&mut self, rec: &RawRecord) -> std::io::Result<()> {
        let Some(out) = &mut self.out else {
            return Ok(());
        };
        let n = match rec.location {
            Some(Location::Record(n)) | Some(Location::Line(n)) => n,
            None => 0,
        };
        out.write_all(&n.to_le_bytes())?;
        put(out, rec.resource.as_deref().unwrap_or(""))?;
        out.write_all(&(rec.values.len() as u32).to_le_bytes())?;
        for v in &rec.values {
            put(out, v)?;
        }
        Ok(())
    }

    /// Flushes and hands the file over for the second pass.
    pub fn finish(&mut self) -> std::io::Result<()> {
        if let Some(out) = self.out.take() {
            let mut file = out.into_inner().map_err(|e| e.into_error())?;
            file.seek(SeekFrom::Start(0))?;
            *self
                .done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(file);
        }
        Ok(())
    }
}

fn put(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    out.write_all(&(s.len() as u32).to_le_bytes())?;
    out.write_all(s.as_bytes())
}

impl SpoolReader {
    pub fn new(file: File) -> SpoolReader {
        SpoolReader {
            input: BufReader::new(file),
        }
    }

    pub fn next_record(&mut self, rec: &mut RawRecord) -> Result<bool, ReadError> {
        let mut n = [0u8; 8];
        match self.input.read_exact(&mut n) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(ReadError::Io(e)),
        }
        rec.location = Some(Location::Record(u64::from_le_bytes(n)));
        let resource = self.get()?;
        rec.resource = (!resource.is_empty()).then_some(resource);
        let count = self.u32()? as usize;
        rec.values.clear();
        for _ in 0..count {
            let v = self.get()?;
            rec.values.push(v);
        }
        Ok(true)
    }

    fn u32(&mut self) -> Result<u32, ReadError> {
        let mut b = [0u8; 4];
        self.input.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn get(&mut self) -> Result<String, ReadError> {
        let len = self.u32()? as usize;
        let mut b = vec![0u8; len];
        self.input.read_exact(&mut b)?;
        String::from_utf8(b).map_err(|e| ReadError::Io(std::io::Error::other(e)))
    }
}
