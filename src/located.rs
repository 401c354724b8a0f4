//! Errors about a file an operator wrote (the config, a mapping): one type for
//! both, that names the file, the line where it can, the key, and says what to
//! do; and the one place that turns a byte offset of a TOML error into a line
//! and a key. A message quotes only what the operator wrote in that file,
//! never an export (ARCHITECTURE.md, invariant 16).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Which of an operator's files an error is about: it opens the message
/// ("config /etc/visync/visync.toml, line 5, ...").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Config,
    Mapping,
}

impl FileKind {
    fn as_str(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Mapping => "mapping",
        }
    }
}

/// A config or mapping file that cannot be used as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedError {
    pub kind: FileKind,
    pub path: PathBuf,
    /// 1-based; `None` when the value did not come from a line of the file
    /// (a default, an environment override) or the file could not be read.
    pub line: Option<usize>,
    /// `[section] key` as the operator would look for it; empty when the
    /// error is about the file as a whole.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for LocatedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ", {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for LocatedError {}

impl LocatedError {
    /// An error about `key`, with no line to point at.
    pub fn at_key(
        kind: FileKind,
        path: &Path,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> LocatedError {
        LocatedError {
            kind,
            path: path.to_path_buf(),
            line: None,
            key: key.into(),
            message: message.into(),
        }
    }

    /// The file could not be read at all.
    pub fn unreadable(kind: FileKind, path: &Path, e: &std::io::Error, hint: &str) -> LocatedError {
        LocatedError::at_key(kind, path, "", format!("cannot read the file: {e}{hint}"))
    }

    /// The file is not valid TOML for its kind (a syntax error, an unknown
    /// key, a value of the wrong type or not one of a closed set): the line
    /// and the key come from where the parser stopped.
    pub fn from_toml(kind: FileKind, path: &Path, text: &str, e: &toml::de::Error) -> LocatedError {
        let (line, key) = match e.span() {
            Some(span) => (Some(line_of(text, span.clone())), key_at(text, span.start)),
            None => (None, String::new()),
        };
        LocatedError {
            kind,
            path: path.to_path_buf(),
            line,
            key,
            message: e.message().trim_end().to_string(),
        }
    }
}

/// The 1-based line on which `span` starts in `text`: the one span-to-line
/// calculation for TOML errors and `toml::Spanned` values.
pub fn line_of(text: &str, span: Range<usize>) -> usize {
    let start = span.start.min(text.len());
    text.as_bytes()[..start]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The key the byte at `offset` belongs to, as `[section] key`: the last table
/// header before it and the key of its line. Best effort, for messages only: a
/// line without `key =` (inside a multi-line array) names the section alone.
pub fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = &text[line_start..line_end];
    let header = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| match l.find('#') {
            Some(i) => l[..i].trim_end(),
            None => l,
        });
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && !k.starts_with(['[', '#']));
    match (line.trim_start().starts_with('['), header, key) {
        // The error is on a header line: that header is the key.
        (true, _, _) => line.trim().to_string(),
        (false, Some(h), Some(k)) => format!("{h} {k}"),
        (false, None, Some(k)) => k.to_string(),
        (false, Some(h), None) => h.to_string(),
        (false, None, None) => String::new(),
    }
}

/// The line of a key written as `[section] key` (or `[[array]] #N key`, or a
/// top-level `key`) in a TOML text: where an operator finds the value a
/// message is about. `None` when the file does not write it (a default).
/// Best effort, for messages only: dotted keys and inline tables are not
/// followed.
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let (table, nth, name) = match key.rsplit_once(' ') {
        None => ("", 1, key),
        Some((head, name)) => match head.rsplit_once(" #") {
            Some((table, n)) => (table, n.parse().ok()?, name),
            None => (head, 1, name),
        },
    };
    let mut current = "";
    let mut seen = 0;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            current = line.split('#').next().unwrap_or(line).trim();
            if current == table {
                seen += 1;
            }
            continue;
        }
        let in_table = current == table && (table.is_empty() || seen == nth);
        let this_key = line
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"'));
        if in_table && this_key == Some(name) {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_from_one() {
        let text = "a = 1\nb = 2\nc = 3\n";
        assert_eq!(line_of(text, 0..1), 1);
        assert_eq!(line_of(text, 6..7), 2);
        assert_eq!(line_of(text, 12..13), 3);
        assert_eq!(line_of(text, 999..1000), 4);
    }

    #[test]
    fn the_key_is_the_section_and_the_key_of_the_line() {
        let text = "top = 1\n[index] # the index\nurl = \"x\"\n[returns.crm]\nkind = \"ftp\"\n";
        assert_eq!(key_at(text, 2), "top");
        assert_eq!(key_at(text, text.find("\"x\"").unwrap()), "[index] url");
        assert_eq!(
            key_at(text, text.find("ftp").unwrap()),
            "[returns.crm] kind"
        );
        assert_eq!(
            key_at(text, text.find("[returns").unwrap()),
            "[returns.crm]"
        );
    }
}
