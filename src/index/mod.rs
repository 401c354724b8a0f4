//! The index client: the VI-API v1 protocol behind one trait (`IndexApi`), so
//! that another regional dialect is one more module, and the sender that
//! drains the outbox through it. Errors are classified once, here:
//! transient (retry with backoff), authentication (stop, keep the queue),
//! refused (an item's final answer) or failed (bounded attempts).

mod http;
mod notices;
mod sender;
pub mod wire;

pub use http::{transport, ClientError, HttpIndex};
// For the fuzz target `index_answers` only (docs/fuzzing.md).
#[doc(hidden)]
pub use http::classify;
pub use notices::{pull_notices, PullSummary};
pub use sender::{drain, SendSummary};
pub use wire::{
    ApiError, ItemResult, ItemStatus, ListedSignal, ListedState, NoticePage, Payload, SignalPage,
};

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// 5xx, 429, timeouts, refused or reset connections: try again later.
    Transient {
        retry_after: Option<Duration>,
        message: String,
    },
    /// 401/403: the token or certificate is wrong. Nothing is sent until an
    /// operator fixes it; the queue is kept.
    Auth { status: u16, message: String },
    /// The TLS handshake failed on a certificate (ours refused, or the
    /// index's not trusted): like `Auth`, retrying cannot fix it.
    Tls(String),
    /// Any other 4xx: the index refused this call.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// An answer that does not follow the protocol.
    Malformed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transient { message, .. } => write!(f, "transient: {message}"),
            CallError::Auth { status, message } => {
                write!(f, "authentication failed ({status}): {message}")
            }
            CallError::Refused {
                status,
                code,
                message,
            } => write!(f, "refused ({status} {code}): {message}"),
            CallError::Malformed(m) => write!(f, "malformed answer: {m}"),
            CallError::Tls(m) => f.write_str(m),
        }
    }
}

/// One regional index's protocol.
#[allow(async_fn_in_trait)]
pub trait IndexApi {
    /// Registers or corrects signals, each as the outbox stores it
    /// (checked to be a `wire::Signal` when read from the store).
    async fn submit(&self, payloads: &[&wire::Payload]) -> Result<Vec<ItemResult>, CallError>;
    async fn withdraw(&self, signal_id: &str, reason: &str) -> Result<(), CallError>;
    async fn renew(&self, signal_id: &str, end_date: &str) -> Result<(), CallError>;
    /// This organisation's notices after `after`, oldest first.
    async fn notices(&self, after: Option<&str>, limit: u32) -> Result<NoticePage, CallError>;
    /// One page of this organisation's own signals, in every state the index
    /// returns (`GET /v1/signals`): what reconciliation compares with.
    async fn signals(
        &self,
        page_token: Option<&str>,
        page_size: u32,
    ) -> Result<SignalPage, CallError>;
}
