//! visync: connects youth-care case-management systems to the Dutch
//! Verwijsindex. See ARCHITECTURE.md for the map of this crate. The
//! reference index it is tested against is another crate of the workspace,
//! `visync_index_sim` (crates/index-sim), linked for `visync index-sim` and
//! `[index] url = "embedded"`.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod fault;
pub mod index;
pub mod ingest;
pub mod located;
pub mod mapping;
pub mod onboard;
pub mod pipeline;
pub mod plan;
pub mod reconcile;
pub mod redact;
pub mod returns;
pub mod source;
pub mod store;
pub mod tls;
