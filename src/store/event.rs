//! The audit trail's events, typed: one variant per kind, with its fields,
//! and `Audit::kind`/`Audit::detail` the one place that turns them into
//! the trail's `kind` and `detail` text. The trail is chained by hash over
//! that text, so it must never change for a kind that exists: an old trail
//! would no longer verify. `tests::the_serialised_form_is_pinned` holds
//! every kind to the exact bytes the earlier, hand-built JSON wrote.
//!
//! Events carry ids, codes, counts and dates, never a BSN or a name.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::json;

use super::states::OutboxAction;
use crate::domain::WithdrawReason;

/// One event of the audit trail. The signal and source it is about are
/// given beside it (`Chain::append`).
#[derive(Debug, Clone, PartialEq)]
pub enum Audit<'a> {
    /// A file was taken and its plan committed.
    FileTaken {
        file: &'a str,
        sha256: &'a str,
        records: u64,
        accepted: u64,
        rejected: u64,
        skipped: u64,
    },
    /// A file was refused as a whole; nothing in it was used.
    FileRejected {
        file: &'a str,
        sha256: &'a str,
    },
    /// An API source's poll was taken and its plan committed.
    PollTaken {
        complete: bool,
        pages: u64,
        records: u64,
        bookmark_advanced: bool,
    },
    RegisterPlanned,
    UpdatePlanned,
    /// A renewal queued: by a file's plan (no date recorded) or by the
    /// nightly renewal (to `end_date`).
    RenewPlanned {
        end_date: Option<NaiveDate>,
    },
    /// A withdrawal queued; `decommission`: by `visync decommission`.
    WithdrawPlanned {
        reason: WithdrawReason,
        decommission: bool,
    },
    /// A withdrawal held for an operator (`max_withdraw_fraction`).
    WithdrawHeld {
        reason: WithdrawReason,
    },
    /// A registration never sent, dropped (a child's objection).
    RegisterDropped {
        reason: WithdrawReason,
    },
    /// The index confirmed an outbox row.
    Confirmed {
        action: OutboxAction,
    },
    /// The index refused an outbox row for good, with its item error.
    Refused {
        action: OutboxAction,
        code: &'a str,
    },
    /// The index holds the involvement under another id, adopted; the
    /// event is about the adopted id, `ours` the id we had made.
    ConflictAdopted {
        ours: &'a str,
    },
    /// An outbox row failed `MAX_ATTEMPTS` times.
    Quarantined {
        action: OutboxAction,
        error: &'a str,
    },
    /// `visync release`: a source's held withdrawals go ahead.
    Released {
        withdrawals: u64,
    },
    ObjectionRecorded {
        signals: u64,
    },
    ObjectionUndone,
    /// Ended by the law's clock: past its end date, or the age limit.
    Expired {
        age_limit: bool,
    },
    /// A `renewal_due` notice made for the case.
    RenewalDue {
        due_date: NaiveDate,
        age_limit: bool,
    },
    /// Active here, not at the index (reconciliation).
    SignalMissing,
    /// The index's end date taken over ours (reconciliation).
    EndDateTaken {
        from: &'a str,
        to: &'a str,
    },
    /// Purged by a retention rule.
    SignalPurged {
        rule: &'a str,
    },
    /// The trail's events before `before` purged (`audit_years`).
    AuditPurged {
        events: u64,
        before: &'a str,
    },
    /// `visync decommission`: all that is left of the store.
    Decommissioned {
        withdrawn: u64,
        queued: u64,
        per_source: &'a BTreeMap<String, u64>,
    },
}

impl Audit<'_> {
    /// The trail's `kind` column.
    pub fn kind(&self) -> String {
        let fixed = match self {
            Audit::FileTaken { .. } => "file_taken",
            Audit::FileRejected { .. } => "file_rejected",
            Audit::PollTaken { .. } => "poll_taken",
            Audit::RegisterPlanned => "register_planned",
            Audit::UpdatePlanned => "update_planned",
            Audit::RenewPlanned { .. } => "renew_planned",
            Audit::WithdrawPlanned { .. } => "withdraw_planned",
            Audit::WithdrawHeld { .. } => "withdraw_held",
            Audit::RegisterDropped { .. } => "register_dropped",
            Audit::Confirmed { action } => return format!("{action}_confirmed"),
            Audit::Refused { action, .. } => return format!("{action}_refused"),
            Audit::ConflictAdopted { .. } => "conflict_adopted",
            Audit::Quarantined { .. } => "quarantined",
            Audit::Released { .. } => "released",
            Audit::ObjectionRecorded { .. } => "objection_recorded",
            Audit::ObjectionUndone => "objection_undone",
            Audit::Expired { .. } => "expired",
            Audit::RenewalDue { .. } => "renewal_due",
            Audit::SignalMissing => "signal_missing",
            Audit::EndDateTaken { .. } => "end_date_taken",
            Audit::SignalPurged { .. } => "signal_purged",
            Audit::AuditPurged { .. } => "audit_purged",
            Audit::Decommissioned { .. } => super::decommission::DECOMMISSIONED,
        };
        fixed.to_owned()
    }

    /// The trail's `detail` column: compact JSON, keys in sorted order
    /// (serde_json's map), exactly as the hand-built JSON wrote it.
    pub fn detail(&self) -> String {
        let v = match self {
            Audit::FileTaken {
                file,
                sha256,
                records,
                accepted,
                rejected,
                skipped,
            } => json!({
                "file": file, "sha256": sha256, "records": records,
                "accepted": accepted, "rejected": rejected, "skipped": skipped,
            }),
            Audit::FileRejected { file, sha256 } => json!({ "file": file, "sha256": sha256 }),
            Audit::PollTaken {
                complete,
                pages,
                records,
                bookmark_advanced,
            } => json!({
                "complete": complete, "pages": pages, "records": records,
                "bookmark_advanced": bookmark_advanced,
            }),
            Audit::RenewPlanned {
                end_date: Some(end),
            } => json!({ "end_date": end.to_string() }),
            Audit::WithdrawPlanned {
                reason,
                decommission: true,
            } => json!({ "reason": reason.as_str(), "decommission": true }),
            Audit::WithdrawPlanned { reason, .. }
            | Audit::WithdrawHeld { reason }
            | Audit::RegisterDropped { reason } => json!({ "reason": reason.as_str() }),
            Audit::Refused { code, .. } => json!({ "code": code }),
            Audit::ConflictAdopted { ours } => json!({ "ours": ours }),
            Audit::Quarantined { action, error } => {
                json!({ "action": action.as_str(), "error": error })
            }
            Audit::Released { withdrawals } => json!({ "withdrawals": withdrawals }),
            Audit::ObjectionRecorded { signals } => json!({ "signals": signals }),
            Audit::Expired { age_limit } => {
                json!({ "reason": if *age_limit { "age_limit" } else { "end_date" } })
            }
            Audit::RenewalDue {
                due_date,
                age_limit,
            } => json!({ "due_date": due_date.to_string(), "age_limit": age_limit }),
            Audit::EndDateTaken { from, to } => json!({ "from": from, "to": to }),
            Audit::SignalPurged { rule } => json!({ "rule": rule }),
            Audit::AuditPurged { events, before } => json!({ "events": events, "before": before }),
            Audit::Decommissioned {
                withdrawn,
                queued,
                per_source,
            } => json!({ "withdrawn": withdrawn, "queued": queued, "per_source": per_source }),
            Audit::RegisterPlanned
            | Audit::UpdatePlanned
            | Audit::RenewPlanned { end_date: None }
            | Audit::Confirmed { .. }
            | Audit::SignalMissing
            | Audit::ObjectionUndone => json!({}),
        };
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// The trail is hash-chained over `kind` and `detail`: each kind's text
    /// is pinned to what the hand-built JSON before issue 13 wrote, so that
    /// old trails still verify.
    fn pinned(cases: Vec<(Audit<'_>, &str, &str)>) {
        for (event, kind, detail) in cases {
            assert_eq!(event.kind(), kind, "{event:?}");
            assert_eq!(event.detail(), detail, "{event:?}");
        }
    }

    /// Files and polls taken.
    #[test]
    fn files_and_polls_are_pinned() {
        pinned(vec![
            (
                Audit::FileTaken {
                    file: "export.csv",
                    sha256: "ab12",
                    records: 5,
                    accepted: 3,
                    rejected: 1,
                    skipped: 1,
                },
                "file_taken",
                r#"{"accepted":3,"file":"export.csv","records":5,"rejected":1,"sha256":"ab12","skipped":1}"#,
            ),
            (
                Audit::FileRejected {
                    file: "x.csv",
                    sha256: "ff",
                },
                "file_rejected",
                r#"{"file":"x.csv","sha256":"ff"}"#,
            ),
            (
                Audit::PollTaken {
                    complete: true,
                    pages: 2,
                    records: 40,
                    bookmark_advanced: false,
                },
                "poll_taken",
                r#"{"bookmark_advanced":false,"complete":true,"pages":2,"records":40}"#,
            ),
        ]);
    }

    /// What a plan decides.
    #[test]
    fn plans_are_pinned() {
        pinned(vec![
            (Audit::RegisterPlanned, "register_planned", "{}"),
            (Audit::UpdatePlanned, "update_planned", "{}"),
            (
                Audit::RenewPlanned { end_date: None },
                "renew_planned",
                "{}",
            ),
            (
                Audit::RenewPlanned {
                    end_date: Some(day("2028-03-01")),
                },
                "renew_planned",
                r#"{"end_date":"2028-03-01"}"#,
            ),
            (
                Audit::WithdrawPlanned {
                    reason: WithdrawReason::RiskEnded,
                    decommission: false,
                },
                "withdraw_planned",
                r#"{"reason":"risk_ended"}"#,
            ),
            (
                Audit::WithdrawPlanned {
                    reason: WithdrawReason::RiskEnded,
                    decommission: true,
                },
                "withdraw_planned",
                r#"{"decommission":true,"reason":"risk_ended"}"#,
            ),
            (
                Audit::WithdrawPlanned {
                    reason: WithdrawReason::Objection,
                    decommission: false,
                },
                "withdraw_planned",
                r#"{"reason":"objection"}"#,
            ),
            (
                Audit::WithdrawHeld {
                    reason: WithdrawReason::RiskEnded,
                },
                "withdraw_held",
                r#"{"reason":"risk_ended"}"#,
            ),
            (
                Audit::RegisterDropped {
                    reason: WithdrawReason::Objection,
                },
                "register_dropped",
                r#"{"reason":"objection"}"#,
            ),
        ]);
    }

    /// The index's answers, operators' and families' acts.
    #[test]
    fn answers_and_acts_are_pinned() {
        pinned(vec![
            (
                Audit::Confirmed {
                    action: OutboxAction::Register,
                },
                "register_confirmed",
                "{}",
            ),
            (
                Audit::Confirmed {
                    action: OutboxAction::Withdraw,
                },
                "withdraw_confirmed",
                "{}",
            ),
            (
                Audit::Refused {
                    action: OutboxAction::Update,
                    code: "withdrawn",
                },
                "update_refused",
                r#"{"code":"withdrawn"}"#,
            ),
            (
                Audit::ConflictAdopted { ours: "s-1" },
                "conflict_adopted",
                r#"{"ours":"s-1"}"#,
            ),
            (
                Audit::Quarantined {
                    action: OutboxAction::Renew,
                    error: "malformed answer: \"x\"",
                },
                "quarantined",
                r#"{"action":"renew","error":"malformed answer: \"x\""}"#,
            ),
            (
                Audit::Released { withdrawals: 7 },
                "released",
                r#"{"withdrawals":7}"#,
            ),
            (
                Audit::ObjectionRecorded { signals: 2 },
                "objection_recorded",
                r#"{"signals":2}"#,
            ),
            (Audit::ObjectionUndone, "objection_undone", "{}"),
        ]);
    }

    /// Expiry, renewal, reconciliation, retention and decommission.
    #[test]
    fn lifecycle_events_are_pinned() {
        let per_source: BTreeMap<String, u64> = [("b".to_string(), 2), ("a".to_string(), 1)].into();
        pinned(vec![
            (
                Audit::Expired { age_limit: false },
                "expired",
                r#"{"reason":"end_date"}"#,
            ),
            (
                Audit::Expired { age_limit: true },
                "expired",
                r#"{"reason":"age_limit"}"#,
            ),
            (
                Audit::RenewalDue {
                    due_date: day("2027-01-31"),
                    age_limit: true,
                },
                "renewal_due",
                r#"{"age_limit":true,"due_date":"2027-01-31"}"#,
            ),
            (Audit::SignalMissing, "signal_missing", "{}"),
            (
                Audit::EndDateTaken {
                    from: "2027-01-01",
                    to: "2026-12-01",
                },
                "end_date_taken",
                r#"{"from":"2027-01-01","to":"2026-12-01"}"#,
            ),
            (
                Audit::SignalPurged { rule: "archive" },
                "signal_purged",
                r#"{"rule":"archive"}"#,
            ),
            (
                Audit::AuditPurged {
                    events: 1200,
                    before: "2020-01-01",
                },
                "audit_purged",
                r#"{"before":"2020-01-01","events":1200}"#,
            ),
            (
                Audit::Decommissioned {
                    withdrawn: 3,
                    queued: 3,
                    per_source: &per_source,
                },
                "decommissioned",
                r#"{"per_source":{"a":1,"b":2},"queued":3,"withdrawn":3}"#,
            ),
        ]);
    }
}
