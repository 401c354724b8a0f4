//! Domain types and rules: pure, no IO. Everything that a signal is and may be.

mod bsn;
mod rules;
mod signal;
mod subject_key;

pub use bsn::{mask, Bsn, BsnError};
pub use rules::{add_years, age_on, Audience, Rules};
pub use signal::{ContentHash, Gender, Professional, Signal, Subject, WithdrawReason};
pub use subject_key::{SubjectHasher, SubjectKey};
