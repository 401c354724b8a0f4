//! A reader adaptor that keeps hostile or broken input bounded: it refuses NUL
//! bytes (binary files), UTF-16, and runs of more than `max_run` bytes without a
//! delimiter, so that no parser buffer can grow with the file.

use std::io::{self, Read};

use super::ReadError;

pub struct Guard<R> {
    inner: R,
    /// The bytes that end a run: `\n` for CSV, `<` and `>` for XML.
    delims: (u8, u8),
    what: &'static str,
    max_run: usize,
    run: usize,
    offset: u64,
    first: bool,
}

/// Carried inside an `io::Error` so that the reader above can tell a guard's
/// refusal from a real IO error.
#[derive(Debug)]
pub struct Refused(pub ReadErrorKind);

#[derive(Debug, Clone, Copy)]
pub enum ReadErrorKind {
    Binary {
        offset: u64,
    },
    Utf16,
    RunTooLong {
        limit: usize,
        what: &'static str,
        offset: u64,
    },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", ReadError::from(self.0))
    }
}

impl std::error::Error for Refused {}

impl From<ReadErrorKind> for ReadError {
    fn from(k: ReadErrorKind) -> ReadError {
        match k {
            ReadErrorKind::Binary { offset } => ReadError::Binary { offset },
            ReadErrorKind::Utf16 => ReadError::Utf16,
            ReadErrorKind::RunTooLong {
                limit,
                what,
                offset,
            } => ReadError::RunTooLong {
                limit,
                what,
                offset,
            },
        }
    }
}

/// Turns an IO error back into the guard's refusal where it was one.
pub fn classify(e: io::Error) -> ReadError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Refused>())
    {
        Some(Refused(kind)) => ReadError::from(*kind),
        None => ReadError::Io(e),
    }
}

impl<R: Read> Guard<R> {
    pub fn new(inner: R, delims: (u8, u8), what: &'static str, max_run: usize) -> Self {
        Guard {
            inner,
            delims,
            what,
            max_run,
            run: 0,
            offset: 0,
            first: true,
        }
    }
}

fn refuse(kind: ReadErrorKind) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Refused(kind))
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        if self.first && n > 0 {
            self.first = false;
            if chunk.starts_with(&[0xFF, 0xFE]) || chunk.starts_with(&[0xFE, 0xFF]) {
                return Err(refuse(ReadErrorKind::Utf16));
            }
        }
        if let Some(i) = memchr::memchr(0, chunk) {
            return Err(refuse(ReadErrorKind::Binary {
                offset: self.offset + i as u64,
            }));
        }
        match memchr::memrchr2(self.delims.0, self.delims.1, chunk) {
            Some(last) => self.run = n - last - 1,
            None => self.run += n,
        }
        self.offset += n as u64;
        if self.run > self.max_run {
            return Err(refuse(ReadErrorKind::RunTooLong {
                limit: self.max_run,
                what: self.what,
                offset: self.offset,
            }));
        }
        Ok(n)
    }
}
