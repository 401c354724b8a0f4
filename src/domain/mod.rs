//! Domain types and rules: pure, no IO. Everything that a signal is and may be.

mod bsn;
mod content_hash;
mod rules;
mod signal;
mod subject_key;

pub use bsn::{mask, Bsn, BsnError};
pub use content_hash::ContentHash;
pub use rules::{add_years, age_on, Audience, Rules};
pub use signal::{
    Gender, Professional, ProfessionalRef, Signal, SignalRef, Subject, SubjectRef, WithdrawReason,
};
pub use subject_key::{SubjectHasher, SubjectKey};
