//! The dry-run report: JSON (the schema in the connector spec, plus
//! `file_errors` for files that could not be read at all) or readable text.

use serde::Serialize;

use super::exit;
use crate::pipeline::{FileOutcome, RecordRejection};
use crate::plan::Counts;

/// How many rejections the readable report lists; `--json` lists all.
const SHOWN: usize = 20;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub sources: Vec<SourceReport>,
    pub rejections: Vec<RejectionReport>,
    pub plan: Counts,
    pub file_errors: Vec<FileError>,
}

#[derive(Debug, Serialize)]
pub struct SourceReport {
    pub name: String,
    pub files: Vec<String>,
    pub records: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub skipped: u64,
}

#[derive(Debug, Serialize)]
pub struct RejectionReport {
    pub source: String,
    pub file: String,
    pub location: String,
    pub field: Option<&'static str>,
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct FileError {
    pub source: String,
    pub file: String,
    pub message: String,
}

impl SourceReport {
    pub fn new(name: &str) -> Self {
        SourceReport {
            name: name.to_string(),
            files: Vec::new(),
            records: 0,
            accepted: 0,
            rejected: 0,
            skipped: 0,
        }
    }

    pub fn add_counts(&mut self, o: &FileOutcome) {
        self.records += o.records;
        self.accepted += o.accepted;
        self.rejected += o.rejected;
        self.skipped += o.skipped;
    }
}

impl Report {
    pub fn add_rejections(&mut self, source: &str, file: &str, rejections: &[RecordRejection]) {
        self.rejections.extend(rejections.iter().map(|r| {
            RejectionReport {
                source: source.to_string(),
                file: file.to_string(),
                location: r
                    .resource
                    .as_deref()
                    .map_or_else(|| r.location.to_string(), str::to_string),
                field: r.field.map(|f| f.name()),
                code: r.code.as_str(),
                message: r.message.clone(),
            }
        }));
    }

    /// 2 when a file could not be read, 1 when records were rejected, else 0.
    pub fn exit_code(&self) -> u8 {
        if !self.file_errors.is_empty() {
            exit::CONFIG
        } else if !self.rejections.is_empty() {
            exit::PARTIAL
        } else {
            exit::OK
        }
    }

    pub fn print(&self, json: bool) {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(self).expect("a report serialises")
            );
        } else {
            print!("{}", self.text());
        }
    }

    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out =
            String::from("visync check: a dry run; nothing was sent, stored or moved.\n\n");
        for s in &self.sources {
            let _ = writeln!(
                out,
                "{}: {} file(s), {} records: {} accepted, {} rejected, {} skipped",
                s.name,
                s.files.len(),
                s.records,
                s.accepted,
                s.rejected,
                s.skipped
            );
        }
        if !self.file_errors.is_empty() {
            out.push_str("\nfiles that could not be read (nothing in them is used):\n");
            for e in &self.file_errors {
                let _ = writeln!(out, "  {}: {}", e.source, e.message);
            }
        }
        if !self.rejections.is_empty() {
            let _ = writeln!(
                out,
                "\nrejected records ({}{}):",
                self.rejections.len(),
                if self.rejections.len() > SHOWN {
                    format!("; the first {SHOWN}, --json lists all")
                } else {
                    String::new()
                }
            );
            for r in self.rejections.iter().take(SHOWN) {
                let _ = writeln!(
                    out,
                    "  {} {} {}: {} [{}] {}",
                    r.source,
                    r.file,
                    r.location,
                    r.code,
                    r.field.unwrap_or("-"),
                    r.message
                );
            }
        }
        let p = &self.plan;
        let _ = writeln!(
            out,
            "\nplan: {} register, {} update, {} withdraw, {} renew, {} unchanged",
            p.register, p.update, p.withdraw, p.renew, p.unchanged
        );
        if p.held > 0 {
            let _ = writeln!(
                out,
                "held: {} withdrawals exceed [policy] max_withdraw_fraction and would wait for `visync release`",
                p.held
            );
        }
        out
    }
}
