//! An XML sample's shape: which element is a record (the repeating element
//! with the most values below it), and the paths of its values (child
//! elements with text, attributes), by local names. The scan is bounded
//! (`SCAN_BYTES`, `SCAN_ELEMENTS`); a DOCTYPE refuses the file as the real
//! reader would; any other fault is put in the real reader's words.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read};
use std::path::Path;

use quick_xml::events::{BytesStart, Event};

use super::{Dialect, InitError, MAX_COLUMNS};
use crate::source::{FileReader, Format, RawRecord, ReadError, ReaderSpec};

const SCAN_BYTES: u64 = 32 * 1024 * 1024;
const SCAN_ELEMENTS: u64 = 500_000;
const MAX_DEPTH: usize = 64;

pub struct Scan {
    pub columns: Vec<String>,
    pub dialect: Dialect,
}

/// What the scan saw: element paths from the root and how often, and the
/// paths that carry a value, in the order first seen.
#[derive(Default)]
struct Shape {
    counts: HashMap<String, u64>,
    values: Vec<String>,
    seen: HashSet<String>,
    namespaced: bool,
    root: Option<String>,
}

impl Shape {
    fn value(&mut self, path: String) {
        if self.seen.insert(path.clone()) {
            self.values.push(path);
        }
    }

    fn open(&mut self, stack: &mut Vec<String>, e: &BytesStart<'_>) {
        let name = e.local_name().as_ref().to_string();
        self.namespaced |= e.name().as_ref().contains(':');
        if self.root.is_none() {
            self.root = Some(name.clone());
        }
        stack.push(name);
        let path = stack.join("/");
        *self.counts.entry(path.clone()).or_default() += 1;
        for attr in e.attributes().flatten() {
            let full = attr.key.as_ref();
            if full == "xmlns" || full.starts_with("xmlns:") {
                continue;
            }
            self.value(format!("{path}/@{}", attr.key.local_name().as_ref()));
        }
    }
}

fn encoding(path: &Path, head: &[u8]) -> Result<&'static encoding_rs::Encoding, InitError> {
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Ok(encoding_rs::UTF_8);
    }
    let decl = head.get(..head.len().min(256)).unwrap_or(head);
    let decl = String::from_utf8_lossy(decl).to_lowercase();
    if let Some(i) = decl.find("encoding=") {
        let rest = decl[i + 9..].trim_start_matches(['"', '\'']);
        let name: String = rest
            .chars()
            .take_while(|c| !matches!(c, '"' | '\''))
            .collect();
        return match name.as_str() {
            "utf-8" | "utf8" => Ok(encoding_rs::UTF_8),
            "windows-1252" | "iso-8859-1" | "iso-8859-15" | "latin1" | "cp1252" => {
                Ok(encoding_rs::WINDOWS_1252)
            }
            _ => Err(InitError::Xml {
                path: path.to_path_buf(),
                why: "declares an encoding visync does not read: export as UTF-8 or Windows-1252"
                    .into(),
            }),
        };
    }
    Ok(super::sniff::encoding_of(head).0)
}

pub fn scan(path: &Path, head: &[u8], record: Option<&str>) -> Result<Scan, InitError> {
    let encoding = encoding(path, head)?;
    let shape = walk(path, encoding)?;
    let Some(root) = shape.root.clone() else {
        return Err(InitError::NotAnExport {
            path: path.to_path_buf(),
            why: "it has no XML element; for a CSV export, pass --kind csv".into(),
        });
    };
    let record: Vec<String> = match record {
        Some(r) => r
            .trim_matches('/')
            .split('/')
            .map(|s| s.rsplit(':').next().unwrap_or(s).to_string())
            .collect(),
        None => record_path(&shape).ok_or_else(|| InitError::Xml {
            path: path.to_path_buf(),
            why: "no repeating element with values below the root: name the record's element path with --record (e.g. Export/Dossiers/Dossier)".into(),
        })?,
    };
    if record.first() != Some(&root) {
        return Err(InitError::Xml {
            path: path.to_path_buf(),
            why: "--record must start at the root element".into(),
        });
    }
    let prefix = format!("{}/", record.join("/"));
    let columns: Vec<String> = shape
        .values
        .iter()
        .filter_map(|v| v.strip_prefix(&prefix))
        .take(MAX_COLUMNS)
        .map(str::to_string)
        .collect();
    if columns.is_empty() {
        return Err(InitError::Xml {
            path: path.to_path_buf(),
            why: "the record element has no values below it: check --record".into(),
        });
    }
    let occurrences = shape.counts.get(&record.join("/")).copied().unwrap_or(0);
    Ok(Scan {
        columns,
        dialect: Dialect::Xml {
            record,
            encoding,
            occurrences,
            namespaced: shape.namespaced,
        },
    })
}

/// The repeating element (below the root) with the most value paths below
/// it; the shallowest on a tie. A single record repeats once.
fn record_path(shape: &Shape) -> Option<Vec<String>> {
    let below = |p: &str| {
        let prefix = format!("{p}/");
        shape
            .values
            .iter()
            .filter(|v| v.starts_with(&prefix))
            .count()
    };
    let candidates = |min: u64| {
        shape
            .counts
            .iter()
            .filter(move |(p, n)| p.contains('/') && **n >= min)
            .map(|(p, _)| (below(p), p.matches('/').count(), p.clone()))
            .filter(|(n, _, _)| *n > 0)
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)))
    };
    let (_, _, p) = candidates(2).or_else(|| candidates(1))?;
    Some(p.split('/').map(str::to_string).collect())
}

/// Reads the head of the file as XML and notes its shape.
fn walk(path: &Path, encoding: &'static encoding_rs::Encoding) -> Result<Shape, InitError> {
    let file = std::fs::File::open(path).map_err(|e| InitError::Unreadable {
        path: path.to_path_buf(),
        source: ReadError::Io(e),
    })?;
    let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding))
        .bom_override(true)
        .strip_bom(true)
        .utf8_passthru(true)
        .build(file.take(SCAN_BYTES));
    let mut reader = quick_xml::Reader::from_reader(BufReader::with_capacity(64 * 1024, decoded));
    reader.config_mut().check_end_names = true;
    let mut buf = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut shape = Shape::default();
    let mut elements = 0u64;
    loop {
        buf.clear();
        let event = match reader.read_event_into(&mut buf) {
            Ok(e) => e,
            // The scan's own cut may end inside an element: what it saw is
            // enough. Anything earlier is a fault of the file.
            Err(_) if reader.buffer_position() + 4096 >= SCAN_BYTES => break,
            Err(_) => return Err(fault(path, encoding, shape.root.as_deref())),
        };
        match event {
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(fault(path, encoding, shape.root.as_deref()));
                }
                shape.open(&mut stack, &e);
                elements += 1;
            }
            Event::Empty(e) => {
                shape.open(&mut stack, &e);
                stack.pop();
                elements += 1;
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) if !stack.is_empty() && !t.xml10_content().trim().is_empty() => {
                shape.value(stack.join("/"));
            }
            Event::CData(_) | Event::GeneralRef(_) if !stack.is_empty() => {
                shape.value(stack.join("/"));
            }
            Event::DocType(_) => {
                return Err(InitError::Unreadable {
                    path: path.to_path_buf(),
                    source: ReadError::Doctype,
                })
            }
            Event::Eof => break,
            _ => {}
        }
        if elements >= SCAN_ELEMENTS {
            break;
        }
    }
    Ok(shape)
}

/// What is wrong with a file the scan could not read, in the real reader's
/// words (they never quote the file).
fn fault(path: &Path, encoding: &'static encoding_rs::Encoding, root: Option<&str>) -> InitError {
    let spec = ReaderSpec {
        format: Format::Xml {
            record: vec![root.unwrap_or("_").to_string(), "_".to_string()],
        },
        encoding,
        keys: Vec::new(),
    };
    let mut rec = RawRecord::default();
    let source = match FileReader::open(path, &spec) {
        Ok(mut r) => loop {
            match r.next_record(&mut rec) {
                Ok(true) => continue,
                Ok(false) => {
                    break ReadError::TooDeep(MAX_DEPTH);
                }
                Err(e) => break e,
            }
        },
        Err(e) => e,
    };
    InitError::Unreadable {
        path: path.to_path_buf(),
        source,
    }
}
