//! The summary `mapping init` prints on stderr: what it read, which column
//! went where and how sure it is (counts and rates), what it could not find,
//! and what a person must check. Column names and counts only.

use std::fmt::Write as _;

use super::draft::contact_complete;
use super::guess::Guesses;
use super::{Dialect, Options, Sample, MAX_RECORDS};
use crate::mapping::Target;

pub fn summary(opts: &Options, sample: &Sample, g: &Guesses, missing: &[Target]) -> String {
    let mut s = String::new();
    read(&mut s, opts, sample);
    fields(&mut s, sample, g);
    gaps(&mut s, sample, g, missing);
    checks(&mut s, g);
    s
}

/// What was read: the file, its kind and how much, and its dialect.
fn read(s: &mut String, opts: &Options, sample: &Sample) {
    let file = opts.export.file_name().map_or_else(
        || opts.export.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let kind = match sample.dialect {
        Dialect::Csv { .. } => "CSV",
        Dialect::Xml { .. } => "XML",
    };
    let _ = writeln!(
        s,
        "visync mapping init: {file} ({kind}), {} records read{}",
        sample.rows.len(),
        if sample.truncated {
            format!(" (the first {MAX_RECORDS}; the rest is not read)")
        } else {
            String::new()
        }
    );
    match &sample.dialect {
        Dialect::Csv {
            delimiter,
            encoding,
            encoding_why,
            quoted,
            ..
        } => {
            let d = if *delimiter == b'\t' {
                "tab".to_string()
            } else {
                (*delimiter as char).to_string()
            };
            let _ = writeln!(
                s,
                "  encoding {} ({encoding_why}); delimiter \"{d}\"; {} columns; quoted fields: {}",
                encoding.name(),
                sample.columns.len(),
                if *quoted { "yes" } else { "no" }
            );
        }
        Dialect::Xml {
            record,
            encoding,
            occurrences,
            ..
        } => {
            let _ = writeln!(
                s,
                "  encoding {}; record element {} ({occurrences} in the part read); {} value paths in it",
                encoding.name(),
                record.join("/"),
                sample.columns.len()
            );
        }
    }
}

/// Which column went to which field, with the evidence.
fn fields(s: &mut String, sample: &Sample, g: &Guesses) {
    s.push_str("  fields:\n");
    for f in &g.fields {
        let _ = writeln!(
            s,
            "    {:<18} <- \"{}\": {}",
            f.target.name(),
            sample.columns[f.column],
            f.evidence
        );
    }
    if let Some(d) = &g.decision {
        let _ = writeln!(
            s,
            "    {:<18} <- \"{}\": {} (proposed in [filter], commented out)",
            "decision", sample.columns[d.column], d.evidence
        );
    }
}

/// What was not found (a TODO in the draft) and which columns are not used.
fn gaps(s: &mut String, sample: &Sample, g: &Guesses, missing: &[Target]) {
    let mut not_found: Vec<&str> = missing.iter().map(|t| t.name()).collect();
    if g.get(Target::Gender).is_none() {
        not_found.push("gender (a constant \"unknown\" for now)");
    }
    if !contact_complete(g) {
        not_found.push("the professional's contact data (name, and phone or e-mail)");
    }
    if g.decision.is_none() {
        not_found.push("the decision to register ([filter])");
    }
    if !not_found.is_empty() {
        let _ = writeln!(
            s,
            "  not found (TODO in the draft): {}",
            not_found.join("; ")
        );
    }
    let unused: Vec<String> = (0..sample.columns.len())
        .filter(|&c| !g.uses(c))
        .map(|c| format!("\"{}\"", sample.columns[c]))
        .collect();
    if !unused.is_empty() {
        let _ = writeln!(
            s,
            "  not used ({}; they never leave the export): {}",
            unused.len(),
            unused.join(", ")
        );
    }
}

/// What a person must check.
fn checks(s: &mut String, g: &Guesses) {
    s.push_str("  check by hand:\n");
    s.push_str("    - [source] name and mode (snapshot or delta)\n");
    s.push_str("    - that each field above got the right column, and the date formats\n");
    if g.decision.is_some() {
        s.push_str(
            "    - the [filter]: uncomment it if that column is the professional's decision\n",
        );
    }
    for c in &g.checks {
        let _ = writeln!(s, "    - {c}");
    }
}
