//! What a regional index shares with its link task (`upstream.rs`): the
//! national index's address, the last failure, the wake-up and the count of
//! rounds.
//!
//! A leaf, apart from the task: the index's state (`state.rs`) holds it and
//! the task takes the state, so if it lived in `upstream.rs` the two would
//! import each other.

use std::sync::Mutex;

use tokio::sync::{watch, Notify};
use url::Url;

#[derive(Debug)]
pub struct LinkStatus {
    pub upstream: Url,
    /// Why the last round failed (`None` after a good one), for `/sim/tier`.
    pub last_error: Mutex<Option<String>>,
    /// Woken after every change, so that forwarding does not wait for the
    /// link's next look.
    pub kick: Notify,
    /// Rounds ended so far (good or failed): `/sim/tier?after_round=N`
    /// waits on it, so that a test can wait for the link's next round
    /// instead of polling.
    pub rounds: watch::Sender<u64>,
}

impl LinkStatus {
    pub fn new(upstream: Url) -> LinkStatus {
        LinkStatus {
            upstream,
            last_error: Mutex::new(None),
            kick: Notify::new(),
            rounds: watch::Sender::new(0),
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }
}
