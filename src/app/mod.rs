//! The application layer, between the CLI and the stages (conventions.md;
//! Vector's topology, mini-redis's injected shutdown).
//!
//! - **Jobs** (`jobs.rs`): intake of one source, send, notices, and later
//!   reconcile. Each is a function of a `Context` returning a typed report.
//!   `run --once` runs each once, in order; the daemon runs them as their
//!   triggers fire; `check` is intake without side effects.
//! - **Triggers** (`daemon.rs`): file events, rescans, cron schedules, "work
//!   was queued", "a backoff ended", shutdown. One place decides what runs
//!   next; two runs of the same job never overlap.
//! - **Events** (`events.rs`): what the jobs did, consumed by metrics, health,
//!   logs and sd_notify, so that no job knows about any of them.

pub mod daemon;
pub mod events;
pub mod health;
pub mod http;
pub mod jobs;
pub mod lock;
mod log;
pub mod metrics;
mod observed;
pub mod schedule;
pub(crate) mod sd;
pub mod snapshot;
pub mod watch;

pub use observed::ObservedIndex;
