//! VI-API v1 on the wire (index-api.md), as serde types: what the client
//! sends (a signal, a batch, a withdrawal, a renewal) and what it reads (a
//! batch's results, a page of notices or signals, an error). No JSON is
//! assembled by hand or edited as text anywhere in the connector; the
//! reference index (`crates/index-sim`) keeps its own types on purpose, so
//! that a misreading of the protocol here shows in an end-to-end test.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::store::NoticeKind;

/// A signal as the index receives it: identity and contact data only.
/// Stored as its JSON in the outbox until the index confirms it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal<'a> {
    /// Made here; the index's idempotency key.
    #[serde(borrow)]
    pub signal_id: Cow<'a, str>,
    #[serde(borrow)]
    pub subject: Subject<'a>,
    #[serde(borrow)]
    pub professional: Professional<'a>,
    #[serde(borrow)]
    pub start_date: Cow<'a, str>,
    #[serde(borrow)]
    pub end_date: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject<'a> {
    #[serde(borrow)]
    pub bsn: Cow<'a, str>,
    #[serde(borrow)]
    pub family_name: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub name_prefix: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub initials: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub given_names: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub birth_date: Cow<'a, str>,
    #[serde(borrow)]
    pub gender: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Professional<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Cow<'a, str>>,
}

impl Signal<'_> {
    /// The JSON the outbox stores and the batch sends.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings serialises")
    }
}

/// A signal as the outbox stores it: its JSON, checked to be a `Signal`
/// where it is read from the store (`Payload::check`), and sent as it is
/// (not encoded again), so that what was queued is what the index gets.
#[derive(Debug, Clone)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// The stored JSON, if it is a signal's; else why not (the parser's
    /// words, numbers that could be a BSN masked).
    pub fn check(json: String) -> Result<Payload, String> {
        let why = |e: serde_json::Error| crate::redact::foreign(&e.to_string());
        let raw = RawValue::from_string(json).map_err(why)?;
        serde_json::from_str::<Signal>(raw.get()).map_err(why)?;
        Ok(Payload(raw))
    }

    /// A signal's payload (`Signal::to_json`).
    pub fn of(signal: &Signal) -> Payload {
        Payload::check(signal.to_json()).expect("a signal's JSON is a signal")
    }

    /// The signal it holds.
    pub fn signal(&self) -> Signal<'_> {
        serde_json::from_str(self.0.get()).expect("checked to be a signal")
    }

    /// The JSON as stored.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

/// `POST /v1/signals:batch`: the signals as stored in the outbox, sent as
/// they are (not parsed and encoded again).
#[derive(Debug, Serialize)]
pub struct Batch<'a> {
    pub signals: Vec<&'a RawValue>,
}

impl<'a> Batch<'a> {
    pub fn of(payloads: &[&'a Payload]) -> Batch<'a> {
        Batch {
            signals: payloads.iter().map(|p| &*p.0).collect(),
        }
    }
}

/// The answer to a batch: one result per item, in order.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchResult {
    pub results: Vec<ItemResult>,
}

/// The index's answer for one item of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ItemResult {
    pub signal_id: String,
    pub status: ItemStatus,
    #[serde(default)]
    pub error: Option<ApiError>,
    #[serde(default)]
    pub existing_signal_id: Option<String>,
}

/// What the index did with one item.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum ItemStatus {
    Created,
    Updated,
    Unchanged,
    /// The involvement is held under another id (`existing_signal_id`).
    Conflict,
    /// Refused for good, with an item error.
    Rejected,
    /// Not a status of the protocol: the index's text, kept to be reported.
    Unknown(String),
}

impl From<String> for ItemStatus {
    fn from(s: String) -> ItemStatus {
        match s.as_str() {
            "created" => ItemStatus::Created,
            "updated" => ItemStatus::Updated,
            "unchanged" => ItemStatus::Unchanged,
            "conflict" => ItemStatus::Conflict,
            "rejected" => ItemStatus::Rejected,
            _ => ItemStatus::Unknown(s),
        }
    }
}

/// An error: an item's in a batch result, or a whole call's (`ErrorBody`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    #[serde(deserialize_with = "crate::redact::deserialize_foreign")]
    pub code: String,
    /// The index's own words, kept and logged: numbers in it that could be a
    /// BSN are masked on arrival, whatever the index echoes (redact.rs).
    #[serde(default, deserialize_with = "crate::redact::deserialize_foreign")]
    pub message: String,
}

/// The body of an answer other than 200: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// `POST /v1/signals/{id}/withdraw`.
#[derive(Debug, Serialize)]
pub struct Withdraw<'a> {
    pub reason: &'a str,
}

/// `POST /v1/signals/{id}/renew`.
#[derive(Debug, Serialize)]
pub struct Renew<'a> {
    pub end_date: &'a str,
}

/// One page of the notices feed.
#[derive(Debug, Clone, Deserialize)]
pub struct NoticePage {
    pub notices: Vec<Notice>,
    pub next_cursor: Option<String>,
}

/// A notice as the index sends it. Its kind is one of the protocol's
/// (`match`, `family_match`, `match_ended`): any other text makes the page
/// malformed, so that nothing is stored that the store could not read back.
#[derive(Debug, Clone, Deserialize)]
pub struct Notice {
    pub notice_id: String,
    pub kind: NoticeKind,
    pub signal_id: String,
    pub created_at: String,
    #[serde(default)]
    pub counterparts: Vec<Counterpart>,
}

/// Another professional involved with the same child, as the index names
/// them; every part may be missing.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Counterpart {
    #[serde(default)]
    pub organisation: Organisation,
    #[serde(default)]
    pub professional: CounterpartProfessional,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Organisation {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CounterpartProfessional {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// One page of `GET /v1/signals`: ids, professionals and dates, never a BSN
/// or a name.
#[derive(Debug, Clone, Deserialize)]
pub struct SignalPage {
    pub signals: Vec<ListedSignal>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// A signal as the index lists it. Its state is one the protocol names:
/// any other text makes the page malformed, naming the signal, so that
/// reconciliation never guesses what the index holds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawListed")]
pub struct ListedSignal {
    pub signal_id: String,
    pub professional_id: String,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub state: ListedState,
}

/// Where the index says one of our signals stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListedState {
    Active,
    /// The concern is over, or its end date passed: not active.
    Archived,
    Withdrawn,
    Expired,
}

impl ListedState {
    pub const ALL: [ListedState; 4] = [
        ListedState::Active,
        ListedState::Archived,
        ListedState::Withdrawn,
        ListedState::Expired,
    ];

    /// The protocol's text.
    pub fn as_str(self) -> &'static str {
        match self {
            ListedState::Active => "active",
            ListedState::Archived => "archived",
            ListedState::Withdrawn => "withdrawn",
            ListedState::Expired => "expired",
        }
    }

    /// The state for the protocol's text; `None` for anything else.
    pub fn parse(text: &str) -> Option<ListedState> {
        ListedState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A listed signal as it arrives, before its state is checked.
#[derive(Deserialize)]
struct RawListed {
    signal_id: String,
    professional_id: String,
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    end_date: Option<String>,
    state: String,
}

impl TryFrom<RawListed> for ListedSignal {
    type Error = String;

    fn try_from(r: RawListed) -> Result<ListedSignal, String> {
        let Some(state) = ListedState::parse(&r.state) else {
            let known: Vec<&str> = ListedState::ALL.iter().map(|s| s.as_str()).collect();
            return Err(format!(
                "signal {}: state {:?} is not one of the protocol's ({})",
                crate::redact::foreign(&r.signal_id),
                crate::redact::foreign(&r.state),
                known.join(", ")
            ));
        };
        Ok(ListedSignal {
            signal_id: r.signal_id,
            professional_id: r.professional_id,
            start_date: r.start_date,
            end_date: r.end_date,
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored form of a signal: field order and optional fields left
    /// out, as before the wire types (payloads queued then are sent as
    /// they are).
    #[test]
    fn a_signal_serialises_as_the_protocol_shows_it() {
        let s = Signal {
            signal_id: "s-1".into(),
            subject: Subject {
                bsn: "111222333".into(),
                family_name: "Jansen".into(),
                name_prefix: None,
                initials: Some("A.".into()),
                given_names: None,
                birth_date: "2015-02-03".into(),
                gender: "F".into(),
            },
            professional: Professional {
                id: "E1".into(),
                name: "P. de Vries".into(),
                phone: None,
                email: Some("p@example.org".into()),
            },
            start_date: "2026-11-01".into(),
            end_date: "2028-11-01".into(),
        };
        let json = s.to_json();
        assert_eq!(
            json,
            r#"{"signal_id":"s-1","subject":{"bsn":"111222333","family_name":"Jansen","initials":"A.","birth_date":"2015-02-03","gender":"F"},"professional":{"id":"E1","name":"P. de Vries","email":"p@example.org"},"start_date":"2026-11-01","end_date":"2028-11-01"}"#
        );
        let back: Signal = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn answers_read_as_the_protocol_writes_them() {
        let r: BatchResult = serde_json::from_str(
            r#"{"results": [
                {"signal_id": "a", "status": "created"},
                {"signal_id": "b", "status": "rejected", "error": {"code": "bsn_invalid", "message": "no"}},
                {"signal_id": "c", "status": "conflict", "existing_signal_id": "x"},
                {"signal_id": "d", "status": "teleported"}]}"#,
        )
        .unwrap();
        let st: Vec<_> = r.results.iter().map(|i| i.status.clone()).collect();
        assert_eq!(
            st,
            [
                ItemStatus::Created,
                ItemStatus::Rejected,
                ItemStatus::Conflict,
                ItemStatus::Unknown("teleported".into())
            ]
        );
        assert_eq!(r.results[2].existing_signal_id.as_deref(), Some("x"));
        let page: NoticePage = serde_json::from_str(
            r#"{"notices": [{"notice_id": "n", "cursor": "4", "kind": "family_match", "signal_id": "a",
                "created_at": "2026-11-02T03:04:05Z",
                "counterparts": [{"organisation": {"code": "X"}, "professional": {"name": "Q"}}]}],
                "next_cursor": "4"}"#,
        )
        .unwrap();
        assert_eq!(page.notices[0].kind, NoticeKind::FamilyMatch);
        assert_eq!(
            page.notices[0].counterparts[0].organisation.code.as_deref(),
            Some("X")
        );
        let bad = r#"{"notices": [{"notice_id": "n", "kind": "gossip", "signal_id": "a", "created_at": "t"}]}"#;
        assert!(serde_json::from_str::<NoticePage>(bad).is_err());
    }

    /// Regression (issue 13): a listed state was any text, and anything
    /// but `active` read as "not active"; now an unknown state makes the
    /// page malformed, naming the signal.
    #[test]
    fn a_listed_state_is_read_strictly_naming_the_signal() {
        let page: SignalPage = serde_json::from_str(
            r#"{"signals": [{"signal_id": "s-1", "professional_id": "E1", "state": "active"},
                {"signal_id": "s-2", "professional_id": "E1", "end_date": "2028-01-01", "state": "archived"}]}"#,
        )
        .unwrap();
        assert_eq!(page.signals[0].state, ListedState::Active);
        assert_eq!(page.signals[1].state, ListedState::Archived);
        for s in ListedState::ALL {
            assert_eq!(ListedState::parse(s.as_str()), Some(s));
        }
        let bad =
            r#"{"signals": [{"signal_id": "s-7", "professional_id": "E1", "state": "Active"}]}"#;
        let err = serde_json::from_str::<SignalPage>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("signal s-7"), "{err}");
        assert!(err.contains("\"Active\""), "{err}");
    }

    /// A batch sends the stored payloads as they are.
    #[test]
    fn a_batch_carries_the_stored_signals_verbatim() {
        let a = r#"{"signal_id":"a", "subject": {"bsn":"111222333","family_name":"J","birth_date":"2015-02-03","gender":"F"},
            "professional":{"id":"E1","name":"P"},"start_date":"2026-11-01","end_date":"2027-11-01"}"#;
        let p = Payload::check(a.into()).unwrap();
        assert_eq!(p.signal().signal_id, "a");
        let body = serde_json::to_string(&Batch::of(&[&p])).unwrap();
        assert_eq!(body, format!(r#"{{"signals":[{a}]}}"#));
    }

    /// A stored payload that is not a signal is refused where it is read,
    /// without quoting it.
    #[test]
    fn a_payload_is_checked_to_be_a_signal() {
        assert!(Payload::check("{}".into()).is_err());
        assert!(Payload::check("not json".into()).is_err());
        let err = Payload::check(r#"{"signal_id":"a","subject":123456782}"#.into()).unwrap_err();
        assert!(!err.contains("123456782"), "{err}");
    }
}
