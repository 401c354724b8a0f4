//! What every handler, and the link task, shares: the store, the tokens, the
//! index's clock, its rules and tier, and the link's status.
//!
//! A leaf above the store: it imports no handler, no router and no task.
//! `AppState` used to live in `http.rs`, which imports the handlers (`v1`,
//! `national`), the chaos layer and the link task (`upstream`) to route to
//! them, while each of those imported `AppState` back: a circle through the
//! whole crate. Now they all take it from here, and `http.rs` is only the
//! router.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::clock::Clock;
use crate::link::LinkStatus;
use crate::rules::Rules;
use crate::store::{Ctx, Store};
use crate::tier::Role;

pub struct AppState {
    pub store: Store,
    /// Bearer token → organisation code (on a national index: region code).
    pub tokens: HashMap<String, String>,
    /// The sim's clock: the system date unless `--clock` or `/sim/clock` fixed
    /// it.
    pub clock: Mutex<Clock>,
    pub rules: Rules,
    pub role: Role,
    /// A regional index's link to its national index (`--upstream`).
    pub link: Option<Arc<LinkStatus>>,
}

impl AppState {
    pub fn ctx(&self) -> Ctx {
        let clock = *self.clock.lock().unwrap_or_else(|p| p.into_inner());
        Ctx {
            today: clock.today(),
            now: clock.now(),
            rules: self.rules,
            role: self.role,
        }
    }

    /// Call after a change was committed: wakes the link to the national
    /// index, if any, so that it forwards now rather than at its next look.
    pub fn changed(&self) {
        if let Some(link) = &self.link {
            link.kick.notify_one();
        }
    }
}
