//! The closed sets the store keeps as text (a signal's state, an outbox
//! row's action and state, a notice's kind and state, a file's outcome):
//! one enum each, and this file the one place that maps each value to its
//! text and back. Reading is strict: a value the store never writes is a
//! damaged row, reported with its table, row and column
//! (`StoreError::Corrupt`), never read as some default.
//!
//! The SQL names none of these values in quotes: it binds them (each enum
//! binds as its text), so that this file is their only spelling;
//! `the_stores_sql_spells_no_stored_value` checks that none is left. The
//! one exception is rendered from the enum too (`literal_in`): the live
//! states where the partial index `signals_live` must serve, which SQLite
//! uses only for literals.
//! The domain's withdraw reasons and audiences are stored as text too,
//! read through the same trait (`Stored`).

use std::fmt;

use super::StoreError;
use crate::domain::{Audience, WithdrawReason};

/// A closed set stored as text.
pub trait Stored: Sized + Copy + 'static {
    /// Every value, in the order the enum declares them.
    const ALL: &'static [Self];
    /// The text the store writes.
    fn as_str(self) -> &'static str;

    /// The value for a text the store wrote; `None` for anything else.
    fn from_text(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == text)
    }

    /// Reads `column` of `table`'s row `row`: a text the store never
    /// writes is an error naming all three.
    fn read(
        table: &str,
        row: impl fmt::Display,
        column: &str,
        text: &str,
    ) -> Result<Self, StoreError> {
        Self::from_text(text).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
            StoreError::Corrupt(format!(
                "{table} row {row}: {column} {text:?} is not one visync writes ({}); restore the state from a backup",
                known.join(", ")
            ))
        })
    }
}

/// `?, ?, …`: a placeholder for each of `n` values bound in turn, for a
/// `state IN (...)` whose list a transition decides (`transition.rs`).
pub(crate) fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// `column IN ('a', 'b')`: values of a stored set as SQL text, rendered
/// from the enum. Only where a partial index must stay usable: SQLite uses
/// one only when the query's own literals imply the index's predicate,
/// never from bound parameters (`signals_live`, `state IN ('pending',
/// 'active')`: the planner's baselines and the live-id lookup). The text
/// comes from `as_str`, never from input.
pub(crate) fn literal_in<T: Stored>(column: &str, values: &[T]) -> String {
    let texts: Vec<String> = values.iter().map(|v| format!("'{}'", v.as_str())).collect();
    format!("{column} IN ({})", texts.join(", "))
}

/// `state IN ('pending', 'active')`, as `signals_live` is declared.
pub(crate) fn live_states() -> String {
    literal_in("state", &SignalState::LIVE)
}

/// Declares a stored enum: its variants and their texts, nowhere else.
macro_rules! stored {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $var:ident = $text:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $var,)+ }

        impl Stored for $name {
            const ALL: &'static [$name] = &[$($name::$var,)+];
            fn as_str(self) -> &'static str {
                match self { $($name::$var => $text,)+ }
            }
        }

        impl $name {
            /// The text the store writes (`Stored::as_str`).
            pub fn as_str(self) -> &'static str {
                <$name as Stored>::as_str(self)
            }
        }

        /// Bound as its text: the SQL names no value of its own.
        impl sqlx::Type<sqlx::Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <str as sqlx::Type<sqlx::Any>>::type_info()
            }
        }

        impl sqlx::Encode<'_, sqlx::Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<'_, sqlx::Any>>::encode(self.as_str().to_owned(), buf)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        /// Strict, as reading the store: a text not in the set is an error.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
                <$name as Stored>::from_text(&text).ok_or_else(|| {
                    let known: Vec<&str> = <$name as Stored>::ALL.iter().map(|v| v.as_str()).collect();
                    serde::de::Error::custom(format_args!(
                        "unknown {} {:?} (one of {})",
                        stringify!($name),
                        crate::redact::foreign(&text),
                        known.join(", ")
                    ))
                })
            }
        }
    };
}

stored! {
    /// Where a signal of ours stands (`signals.state`).
    pub enum SignalState {
        /// Planned, not yet confirmed by the index.
        Pending = "pending",
        /// Confirmed by the index.
        Active = "active",
        /// A withdrawal is queued.
        Withdrawing = "withdrawing",
        Withdrawn = "withdrawn",
        /// Past its end date or the age limit (or refused a renewal).
        Expired = "expired",
        /// The index refused its registration.
        Rejected = "rejected",
        /// Active here, not at the index (reconcile.md): registered again
        /// under its own id when a source lists it.
        Missing = "missing",
    }
}

impl SignalState {
    /// Pending or active: the one live row per involvement (`signals_live`).
    pub const LIVE: [SignalState; 2] = [SignalState::Pending, SignalState::Active];
}

stored! {
    /// What an outbox row asks of the index (`outbox.action`).
    pub enum OutboxAction {
        Register = "register",
        Update = "update",
        Withdraw = "withdraw",
        Renew = "renew",
    }
}

stored! {
    /// Where an outbox row stands (`outbox.state`).
    pub enum OutboxState {
        /// Due from its `not_before` on.
        Ready = "ready",
        /// A snapshot's withdrawal waiting for `visync release`.
        Held = "held",
        /// Failed `MAX_ATTEMPTS` times: waiting for an operator.
        Quarantined = "quarantined",
    }
}

stored! {
    /// What a notice is about (`notices.kind`): the index's three kinds,
    /// and the tasks visync makes itself.
    pub enum NoticeKind {
        Match = "match",
        FamilyMatch = "family_match",
        MatchEnded = "match_ended",
        /// The signal's end is near (reconcile.md).
        RenewalDue = "renewal_due",
        /// The index confirmed a renewal.
        Renewed = "renewed",
        /// Tell the child and/or the parents of a registration (Jeugdwet).
        NotifySubject = "notify_subject",
    }
}

stored! {
    /// Where a notice stands (`notices.state`).
    pub enum NoticeState {
        Pending = "pending",
        Delivered = "delivered",
        /// For a signal this installation does not know: kept, reported.
        Unroutable = "unroutable",
        /// Refused by the CMS `NOTICE_ATTEMPTS` times.
        Quarantined = "quarantined",
    }
}

stored! {
    /// Why, where a notice's kind alone does not say (`notices.reason`).
    pub enum NoticeReason {
        /// A `renewal_due` that cannot be renewed any further: the day
        /// before the age limit is reached.
        AgeLimit = "age_limit",
    }
}

stored! {
    /// What became of a file taken from a drop folder (`files.outcome`).
    pub enum LedgerOutcome {
        Processed = "processed",
        Rejected = "rejected",
    }
}

/// Why a signal was withdrawn (`signals.withdraw_reason`, `outbox.reason`):
/// the domain's reasons, stored as the text the protocol gives them.
impl Stored for WithdrawReason {
    const ALL: &'static [WithdrawReason] = &[
        WithdrawReason::RiskEnded,
        WithdrawReason::Unjustified,
        WithdrawReason::Objection,
        WithdrawReason::Deceased,
    ];
    fn as_str(self) -> &'static str {
        WithdrawReason::as_str(self)
    }
}

/// Who must be told of a registration (`signals.audience`,
/// `notices.audience`).
impl Stored for Audience {
    const ALL: &'static [Audience] = &[
        Audience::Parents,
        Audience::ParentsAndYouth,
        Audience::Youth,
    ];
    fn as_str(self) -> &'static str {
        Audience::as_str(self)
    }
}

/// Reads a nullable column of a stored set: NULL is `None`, an unknown
/// text an error naming table, row and column.
pub fn read_opt<T: Stored>(
    table: &str,
    row: impl fmt::Display,
    column: &str,
    text: Option<&str>,
) -> Result<Option<T>, StoreError> {
    text.map(|t| T::read(table, row, column, t)).transpose()
}

/// Serialises a stored value of the domain as its text (`serialize_with`).
pub fn serialize_text<T: Stored, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(v.as_str()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_as_itself() {
        fn round<T: Stored + PartialEq + fmt::Debug>() {
            for v in T::ALL {
                assert_eq!(T::read("t", 1, "c", v.as_str()).unwrap(), *v);
            }
        }
        round::<SignalState>();
        round::<OutboxAction>();
        round::<OutboxState>();
        round::<NoticeKind>();
        round::<NoticeState>();
        round::<LedgerOutcome>();
        round::<NoticeReason>();
        round::<WithdrawReason>();
        round::<Audience>();
    }

    /// Regression (issue 13): `OutboxAction::parse` read any unknown text as
    /// `Renew`, so a damaged row would have renewed a signal.
    #[test]
    fn an_unknown_text_is_an_error_naming_table_row_and_column() {
        let err = OutboxAction::read("outbox", 17, "action", "renw").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("outbox row 17"), "{msg}");
        assert!(msg.contains("action \"renw\""), "{msg}");
        assert!(OutboxAction::from_text("").is_none());
        assert!(SignalState::from_text("Active").is_none(), "case matters");
    }

    /// The words the store's SQL names in quotes, outside of its tests:
    /// only the few that are no stored value (`'[]'`, the id prefixes of
    /// notices made here). A state, action, kind or reason written in the
    /// SQL instead of bound from its enum fails here.
    #[test]
    fn the_stores_sql_spells_no_stored_value() {
        let allowed = ["[]", "renewal_due-", "renewed-", "-", "notify-"];
        let mut seen = 0;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".rs") || name.ends_with("tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Tests put made-up rows in with SQL of their own.
            let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            // SQL lives in Rust string literals; its own literals are the
            // single-quoted words inside them.
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                if line.contains("b'") || line.contains("'static") || line.contains("<'") {
                    continue;
                }
                let mut parts = line.split('\'');
                parts.next();
                while let Some(word) = parts.next() {
                    parts.next();
                    let plain = word.chars().all(|c| {
                        c.is_ascii_lowercase() || c == '_' || c == '-' || c == '[' || c == ']'
                    });
                    if !plain || word.is_empty() {
                        continue;
                    }
                    seen += 1;
                    assert!(
                        allowed.contains(&word),
                        "{}: SQL spells {word:?}: bind it from its enum",
                        path.display()
                    );
                }
            }
        }
        assert!(seen > 0, "the scan found the SQL's constants");
    }
}
