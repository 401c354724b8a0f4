//! `check --html FILE`: the dry-run report as one self-contained HTML page,
//! for a functional administrator to read and to mail to a privacy officer
//! before going live. It is rendered from the same `Report` as `--json`, so
//! the counts cannot differ; it carries no scripts and no external assets
//! (styles inline, the chart an inline SVG), and every text in it is escaped.
//!
//! It adds no data of its own: the messages are the report's, already masked
//! by `redact.rs` unless `--reveal` was given, and the page says at the top
//! which of the two it is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::report::{RejectionReport, Report};

/// How many rejected records the page lists; `--json` lists all.
const LISTED: usize = 100;

/// What the page says besides the report: where it came from.
pub struct Page<'a> {
    pub config: &'a Path,
    /// Each source's name and its mapping file, in the report's order.
    pub mappings: Vec<(String, PathBuf)>,
    pub reveal: bool,
    pub today: chrono::NaiveDate,
    pub made: chrono::DateTime<chrono::Utc>,
}

/// Escapes text for an element's content or a quoted attribute value.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters have no business in a report (and are not
            // allowed in XHTML, which the page also is).
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Styles, inline: the page must open anywhere, offline, as one file.
const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:62em;padding:0 1em;color:#1d2327;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ccd;padding-bottom:.2em}h3{font-size:1.05em;margin-bottom:.3em}
.banner{padding:.8em 1em;border-radius:6px;font-size:1.05em}.private{background:#e7f5ea;border:1px solid #7cb88a}.revealed{background:#fde8e8;border:2px solid #c0392b}
.meta{color:#555}table{border-collapse:collapse;margin:.4em 0 1em}th,td{border:1px solid #d5d8de;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f4f7}td.n{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#a32020}.none{color:#666;font-style:italic}
code{background:#f3f4f7;padding:0 .25em;border-radius:3px}svg text{font-family:inherit;font-size:13px}";

/// The whole page.
pub fn render(report: &Report, page: &Page<'_>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n");
    out.push_str("<title>visync check: dry-run report</title>\n<style>\n");
    out.push_str(STYLE);
    out.push_str("\n</style>\n</head>\n<body>\n");
    banner(&mut out, page.reveal);
    let _ = write!(
        out,
        "<h1>visync check: dry-run report</h1>\n<p class=\"meta\">Made {} by visync {} for the date {}. A dry run: nothing was sent, stored or moved.</p>\n",
        esc(&page.made.format("%Y-%m-%d %H:%M UTC").to_string()),
        esc(env!("CARGO_PKG_VERSION")),
        page.today
    );
    overview(&mut out, report);
    plan(&mut out, report);
    for s in &report.sources {
        source_section(&mut out, report, &s.name);
    }
    files(&mut out, report);
    inputs(&mut out, page);
    out.push_str("<p class=\"meta\">Exit status of this check: ");
    let _ = write!(
        out,
        "<span data-count=\"exit\">{}</span> ",
        report.exit_code()
    );
    out.push_str("(0: every record accepted; 1: some records rejected; 2: a file could not be read).</p>\n</body>\n</html>\n");
    out
}

fn banner(out: &mut String, reveal: bool) {
    if reveal {
        out.push_str("<p class=\"banner revealed\" id=\"privacy\"><strong>This report contains personal data.</strong> It was made with <code>--reveal</code>: BSNs and values from the export are shown in clear. Do not mail or store it; delete it once the mapping is fixed, and make the report to share without <code>--reveal</code>.</p>\n");
    } else {
        out.push_str("<p class=\"banner private\" id=\"privacy\"><strong>This report carries no personal data.</strong> BSNs are masked to their last four digits (<code>*****1234</code>) and other values are shown by their shape only (<code>99-99-9999</code>), so it can be shared with a privacy officer.</p>\n");
    }
}

fn overview(out: &mut String, report: &Report) {
    out.push_str("<h2 id=\"sources\">Sources</h2>\n<table>\n<thead><tr><th>source</th><th>files</th><th>records</th><th>accepted</th><th>rejected</th><th>skipped</th></tr></thead>\n<tbody>\n");
    for s in &report.sources {
        let _ = write!(
            out,
            "<tr data-source=\"{}\"><th>{}</th>",
            esc(&s.name),
            esc(&s.name)
        );
        for (key, n) in [
            ("files", s.files.len() as u64),
            ("records", s.records),
            ("accepted", s.accepted),
            ("rejected", s.rejected),
            ("skipped", s.skipped),
        ] {
            let _ = write!(out, "<td class=\"n\" data-count=\"{key}\">{n}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    if report.sources.is_empty() {
        out.push_str("<p class=\"none\">No source was checked.</p>\n");
    }
}

fn plan(out: &mut String, report: &Report) {
    let p = &report.plan;
    out.push_str("<h2 id=\"plan\">Plan</h2>\n<p>What a real run would do with the index, against the state it would find:</p>\n<table>\n<thead><tr><th>register</th><th>update</th><th>withdraw</th><th>renew</th><th>unchanged</th><th>held</th></tr></thead>\n<tbody><tr data-source=\"\">");
    for (key, n) in [
        ("register", p.register),
        ("update", p.update),
        ("withdraw", p.withdraw),
        ("renew", p.renew),
        ("unchanged", p.unchanged),
        ("held", p.held),
    ] {
        let _ = write!(out, "<td class=\"n\" data-count=\"plan.{key}\">{n}</td>");
    }
    out.push_str("</tr></tbody>\n</table>\n");
    if p.held > 0 {
        out.push_str("<p class=\"bad\">Held: these withdrawals exceed <code>[policy] max_withdraw_fraction</code> and would wait for <code>visync release</code> (they are also counted in withdraw).</p>\n");
    }
}

/// Counts by key, largest first, then by name.
fn tally<'a>(items: impl Iterator<Item = &'a str>) -> Vec<(&'a str, u64)> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for i in items {
        *counts.entry(i).or_default() += 1;
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

fn source_section(out: &mut String, report: &Report, name: &str) {
    let rejections: Vec<&RejectionReport> = report
        .rejections
        .iter()
        .filter(|r| r.source == name)
        .collect();
    let _ = writeln!(out, "<h2>Source {}</h2>", esc(name));
    if rejections.is_empty() {
        out.push_str("<p class=\"none\">No record of this source was rejected.</p>\n");
        return;
    }
    out.push_str("<h3>Rejections by code</h3>\n");
    out.push_str(&bar_chart(&tally(rejections.iter().map(|r| r.code))));
    out.push_str("<h3>Rejections by field</h3>\n<table>\n<thead><tr><th>field</th><th>rejections</th></tr></thead>\n<tbody>\n");
    for (field, n) in tally(rejections.iter().map(|r| r.field.unwrap_or("-"))) {
        let _ = writeln!(
            out,
            "<tr data-source=\"{}\"><th>{}</th><td class=\"n\" data-count=\"field.{}\">{n}</td></tr>",
            esc(name),
            esc(field),
            esc(field)
        );
    }
    out.push_str("</tbody>\n</table>\n");
    let _ = writeln!(
        out,
        "<h3>Rejected records{}</h3>",
        if rejections.len() > LISTED {
            format!(
                " (the first {LISTED} of {}; <code>--json</code> lists all)",
                rejections.len()
            )
        } else {
            String::new()
        }
    );
    out.push_str("<table class=\"rejections\">\n<thead><tr><th>file</th><th>where</th><th>code</th><th>field</th><th>message</th></tr></thead>\n<tbody>\n");
    for r in rejections.iter().take(LISTED) {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&r.file),
            esc(&r.location),
            esc(r.code),
            esc(r.field.unwrap_or("-")),
            esc(&r.message)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// A horizontal bar chart as inline SVG: one bar per code, its count beside it.
fn bar_chart(rows: &[(&str, u64)]) -> String {
    const LABEL: u32 = 190;
    const BAR: u32 = 360;
    const ROW: u32 = 26;
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1);
    let height = ROW * rows.len() as u32 + 6;
    let width = LABEL + BAR + 60;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"rejections by code\">\n<title>Rejections by code</title>\n"
    );
    for (i, (code, n)) in rows.iter().enumerate() {
        let y = ROW * i as u32 + 3;
        // At least a sliver, so that a count of one still shows a bar.
        let w = ((*n as f64 / max as f64) * f64::from(BAR)).round().max(2.0) as u32;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{LABEL}\" y=\"{y}\" width=\"{w}\" height=\"{}\" rx=\"3\" fill=\"#c0504d\" data-code=\"{}\" data-count=\"{n}\" /><text x=\"{}\" y=\"{}\">{n}</text>",
            LABEL - 8,
            y + 15,
            esc(code),
            ROW - 8,
            esc(code),
            LABEL + w + 6,
            y + 15,
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn files(out: &mut String, report: &Report) {
    out.push_str("<h2 id=\"files\">Files read</h2>\n");
    let mut any = false;
    out.push_str("<ul>\n");
    for s in &report.sources {
        for f in &s.files {
            any = true;
            let _ = writeln!(out, "<li>{}: {}</li>", esc(&s.name), esc(f));
        }
    }
    out.push_str("</ul>\n");
    if !any {
        out.push_str("<p class=\"none\">No file was waiting.</p>\n");
    }
    out.push_str("<h3 id=\"file-errors\">Files that could not be read</h3>\n");
    if report.file_errors.is_empty() {
        out.push_str("<p class=\"none\">None: every file was read (<span data-count=\"file_errors\">0</span> errors).</p>\n");
        return;
    }
    let _ = writeln!(
        out,
        "<p class=\"bad\"><span data-count=\"file_errors\">{}</span> file(s): nothing in them is used.</p>",
        report.file_errors.len()
    );
    out.push_str(
        "<table>\n<thead><tr><th>source</th><th>file</th><th>why</th></tr></thead>\n<tbody>\n",
    );
    for e in &report.file_errors {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.source),
            esc(&e.file),
            esc(&e.message)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn inputs(out: &mut String, page: &Page<'_>) {
    out.push_str("<h2 id=\"inputs\">Config and mappings used</h2>\n<table>\n<tbody>\n");
    let _ = writeln!(
        out,
        "<tr><th>config</th><td><code>{}</code></td></tr>",
        esc(&page.config.display().to_string())
    );
    for (name, path) in &page.mappings {
        let _ = writeln!(
            out,
            "<tr><th>mapping of {}</th><td><code>{}</code></td></tr>",
            esc(name),
            esc(&path.display().to_string())
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// Writes the page next to its final name and renames it into place, so
/// that a half-written report is never left where a browser would open it.
pub fn write(path: &Path, html: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, html.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(esc("a\u{1}b"), "a\u{FFFD}b");
    }

    #[test]
    fn a_bar_per_code_largest_first() {
        let rows = tally(["b", "a", "b"].into_iter());
        assert_eq!(rows, vec![("b", 2), ("a", 1)]);
        let svg = bar_chart(&rows);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.find("data-code=\"b\"") < svg.find("data-code=\"a\""));
    }
}
