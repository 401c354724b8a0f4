//! What a CMS receives, in CSV, XML or JSON: the columns of the connector
//! spec, plus `audience` for `notify_subject` tasks (who must be told) and
//! `reason` (`age_limit` on a `renewal_due` that cannot be renewed).

use crate::config::ReturnFormat;
use crate::store::{Counterpart, Notice};

pub const COLUMNS: [&str; 12] = [
    "notice_id",
    "kind",
    "case_ref",
    "professional_id",
    "created_at",
    "counterpart_organisation",
    "counterpart_name",
    "counterpart_phone",
    "counterpart_email",
    "due_date",
    "audience",
    "reason",
];

/// A cell that a spreadsheet would take for a formula is prefixed with `'`.
pub fn csv_escape(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@']) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// One row per counterpart (a notice without counterparts is one row).
fn rows(n: &Notice) -> Vec<[String; 12]> {
    let none = [Counterpart::default()];
    let cps: &[Counterpart] = if n.counterparts.is_empty() {
        &none
    } else {
        &n.counterparts
    };
    cps.iter()
        .map(|c| {
            [
                n.notice_id.clone(),
                n.kind.to_string(),
                n.case_ref.clone(),
                n.professional_id.clone(),
                n.created_at.clone(),
                c.organisation.clone(),
                c.name.clone(),
                c.phone.clone().unwrap_or_default(),
                c.email.clone().unwrap_or_default(),
                n.due_date.clone().unwrap_or_default(),
                n.audience
                    .map(|a| a.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                n.reason.map(|r| r.as_str()).unwrap_or_default().to_owned(),
            ]
        })
        .collect()
}

/// Renders a delivery. CSV is UTF-8 with a byte-order mark, so that Excel
/// reads the accents right.
pub fn render(format: ReturnFormat, delimiter: u8, notices: &[Notice]) -> Vec<u8> {
    match format {
        ReturnFormat::Csv => {
            let mut w = csv::WriterBuilder::new()
                .delimiter(delimiter)
                .terminator(csv::Terminator::CRLF)
                .from_writer(vec![0xEF, 0xBB, 0xBF]);
            let _ = w.write_record(COLUMNS);
            for n in notices {
                for row in rows(n) {
                    let _ = w.write_record(row.iter().map(|c| csv_escape(c).into_owned()));
                }
            }
            w.into_inner().unwrap_or_default()
        }
        ReturnFormat::Json => serde_json::to_vec_pretty(
            &serde_json::json!({ "notices": notices.iter().map(json).collect::<Vec<_>>() }),
        )
        .unwrap_or_default(),
        ReturnFormat::Xml => xml(notices).into_bytes(),
    }
}

fn json(n: &Notice) -> serde_json::Value {
    serde_json::json!({
        "notice_id": n.notice_id,
        "kind": n.kind,
        "case_ref": n.case_ref,
        "professional_id": n.professional_id,
        "created_at": n.created_at,
        "counterparts": n.counterparts,
        "due_date": n.due_date,
        "audience": n.audience.map(|a| a.as_str()),
        "reason": n.reason,
    })
}

fn xml(notices: &[Notice]) -> String {
    use std::fmt::Write;
    let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Notices xmlns=\"urn:visync:notices:1\">\n",
    );
    for n in notices {
        let _ = writeln!(
            out,
            "  <Notice id=\"{}\" kind=\"{}\">",
            esc(&n.notice_id),
            esc(n.kind.as_str())
        );
        for (tag, v) in [
            ("CaseRef", Some(n.case_ref.as_str())),
            ("ProfessionalId", Some(n.professional_id.as_str())),
            ("CreatedAt", Some(n.created_at.as_str())),
            ("DueDate", n.due_date.as_deref()),
            ("Audience", n.audience.map(|a| a.as_str())),
            ("Reason", n.reason.map(|r| r.as_str())),
        ] {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                let _ = writeln!(out, "    <{tag}>{}</{tag}>", esc(v));
            }
        }
        for c in &n.counterparts {
            let _ = writeln!(out, "    <Counterpart>");
            for (tag, v) in [
                ("Organisation", Some(&c.organisation)),
                ("Name", Some(&c.name)),
                ("Phone", c.phone.as_ref()),
                ("Email", c.email.as_ref()),
            ] {
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    let _ = writeln!(out, "      <{tag}>{}</{tag}>", esc(v));
                }
            }
            let _ = writeln!(out, "    </Counterpart>");
        }
        out.push_str("  </Notice>\n");
    }
    out.push_str("</Notices>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            notice_id: "n1".into(),
            kind: crate::store::NoticeKind::Match,
            case_ref: "=HYPERLINK(\"x\")".into(),
            professional_id: "E1".into(),
            created_at: "2026-11-28T02:00:00Z".into(),
            counterparts: vec![
                Counterpart {
                    organisation: "Org B".into(),
                    name: "B. Bos".into(),
                    phone: Some("+31 6 1".into()),
                    email: None,
                },
                Counterpart {
                    organisation: "Org C".into(),
                    name: "C <&> D".into(),
                    phone: None,
                    email: Some("c@x.example".into()),
                },
            ],
            due_date: None,
            audience: None,
            reason: None,
        }
    }

    #[test]
    fn csv_has_a_bom_a_header_a_row_per_counterpart_and_no_formulas() {
        let out = String::from_utf8(render(ReturnFormat::Csv, b';', &[notice()])).unwrap();
        let mut lines = out.lines();
        assert_eq!(
            lines.next().unwrap(),
            format!("\u{feff}{}", COLUMNS.join(";"))
        );
        let row = lines.next().unwrap();
        assert!(
            row.starts_with("n1;match;\"'=HYPERLINK(\"\"x\"\")\";E1;"),
            "{row}"
        );
        assert!(row.contains(";Org B;B. Bos;'+31 6 1;;"), "{row}");
        assert!(lines
            .next()
            .unwrap()
            .contains(";Org C;C <&> D;;c@x.example;"));
    }

    /// `renewal_due` (with its reason) and `renewed` reach a CMS in every
    /// format, with their due dates (issue 12).
    #[test]
    fn renewal_notices_go_out_in_every_format() {
        let due = Notice {
            notice_id: "renewal_due-s1-2029-03-03".into(),
            kind: crate::store::NoticeKind::RenewalDue,
            counterparts: vec![],
            due_date: Some("2029-03-03".into()),
            reason: Some(crate::store::NoticeReason::AgeLimit),
            ..notice()
        };
        let renewed = Notice {
            notice_id: "renewed-s2-2030-10-15".into(),
            kind: crate::store::NoticeKind::Renewed,
            counterparts: vec![],
            due_date: Some("2030-10-15".into()),
            ..notice()
        };
        let both = [due, renewed];
        let csv = String::from_utf8(render(ReturnFormat::Csv, b';', &both)).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(
            lines[0].ends_with(";due_date;audience;reason"),
            "{}",
            lines[0]
        );
        assert!(lines[1].starts_with("renewal_due-s1-2029-03-03;renewal_due;"));
        assert!(lines[1].ends_with(";2029-03-03;;age_limit"), "{}", lines[1]);
        assert!(lines[2].ends_with(";2030-10-15;;"), "{}", lines[2]);
        let xml = String::from_utf8(render(ReturnFormat::Xml, b';', &both)).unwrap();
        assert!(xml.contains("kind=\"renewal_due\""), "{xml}");
        assert!(xml.contains("<DueDate>2029-03-03</DueDate>"), "{xml}");
        assert!(xml.contains("<Reason>age_limit</Reason>"), "{xml}");
        assert!(xml.contains("kind=\"renewed\""), "{xml}");
        let json: serde_json::Value =
            serde_json::from_slice(&render(ReturnFormat::Json, b';', &both)).unwrap();
        assert_eq!(json["notices"][0]["reason"], "age_limit");
        assert_eq!(json["notices"][1]["kind"], "renewed");
        assert_eq!(json["notices"][1]["due_date"], "2030-10-15");
    }

    #[test]
    fn xml_is_escaped_and_json_carries_every_field() {
        let x = String::from_utf8(render(ReturnFormat::Xml, b';', &[notice()])).unwrap();
        assert!(x.contains("<Name>C &lt;&amp;&gt; D</Name>"), "{x}");
        let j: serde_json::Value =
            serde_json::from_slice(&render(ReturnFormat::Json, b';', &[notice()])).unwrap();
        assert_eq!(j["notices"][0]["counterparts"][1]["email"], "c@x.example");
        assert_eq!(j["notices"][0]["kind"], "match");
    }
}
