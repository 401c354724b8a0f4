//! The report of one reconciliation: the JSON shape of reconcile.md (on
//! stdout with `--json`), or a few lines of text (stderr). It names
//! signals by id and professional only, never a child.

use chrono::NaiveDate;

use super::Compared;
use crate::store::{Purged, Unknown};

#[derive(Debug, Clone)]
pub struct Report {
    pub as_of: NaiveDate,
    pub dry_run: bool,
    pub compared: Compared,
    pub renewal_due: u64,
    pub renewed: u64,
    pub expired: u64,
    pub purged: Purged,
}

/// reconcile.md's shape, exactly.
#[derive(serde::Serialize)]
struct Json<'a> {
    as_of: String,
    compared: u64,
    missing: u64,
    unknown: u64,
    end_date_taken: u64,
    renewal_due: u64,
    renewed: u64,
    expired: u64,
    purged: Purged,
    unknown_signals: &'a [Unknown],
}

impl Report {
    /// The comparison could not be finished: the run is not complete.
    pub fn complete(&self) -> bool {
        self.compared.failed.is_none()
    }

    pub fn json(&self) -> serde_json::Value {
        let c = &self.compared;
        serde_json::to_value(Json {
            as_of: self.as_of.to_string(),
            compared: c.listed,
            missing: c.missing,
            unknown: c.unknown.len() as u64,
            end_date_taken: c.end_date_taken,
            renewal_due: self.renewal_due,
            renewed: self.renewed,
            expired: self.expired,
            purged: self.purged,
            unknown_signals: &c.unknown,
        })
        .expect("numbers and strings serialise")
    }

    /// For a person at a terminal or reading the journal.
    pub fn text(&self) -> String {
        let c = &self.compared;
        let p = &self.purged;
        let would = if self.dry_run {
            " (dry run: would)"
        } else {
            ""
        };
        let mut out = format!("reconciliation as of {}{would}\n", self.as_of);
        match &c.failed {
            Some(e) => out.push_str(&format!(
                "index: NOT COMPARED, the listing broke off after {} signals ({e}); the next run compares again\n",
                c.listed
            )),
            None => out.push_str(&format!(
                "index: {} signals compared, {} missing, {} unknown, {} end dates taken\n",
                c.listed,
                c.missing,
                c.unknown.len(),
                c.end_date_taken
            )),
        }
        out.push_str(&format!(
            "renewals: {} renewal_due, {} renewed; expired: {}\n\
             purged: {} signals, {} notices, {} audit events",
            self.renewal_due, self.renewed, self.expired, p.signals, p.notices, p.audit_events
        ));
        for u in &c.unknown {
            out.push_str(&format!(
                "\nunknown at the index: signal {} of professional {} (left alone)",
                u.signal_id, u.professional_id
            ));
        }
        out
    }
}
