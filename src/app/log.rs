//! Log lines for changes of state that several jobs may observe over and
//! over (a folder missing, the index refusing our credentials): said once
//! when the state changes, not on every job.

use std::collections::HashMap;
use std::sync::Mutex;

use super::events::{Event, FolderRole, Sink};

#[derive(Default)]
pub struct LogSink {
    /// Last known presence of each folder, and whether the index refused us.
    folders: Mutex<HashMap<(String, FolderRole), bool>>,
    auth_refused: Mutex<bool>,
}

impl Sink for LogSink {
    fn emit(&self, event: &Event) {
        match event {
            Event::Folder {
                source,
                role,
                present,
            } => {
                let mut folders = self.folders.lock().unwrap_or_else(|e| e.into_inner());
                let before = folders.insert((source.clone(), *role), *present);
                let what = match role {
                    FolderRole::Drop => "drop folder",
                    FolderRole::Return => "return folder",
                };
                match (before, *present) {
                    (Some(true) | None, false) => tracing::error!(
                        source,
                        "the {what} is missing: create it (owned by the service's user) or fix the config; visync looks again at every rescan"
                    ),
                    (Some(false), true) => tracing::info!(source, "the {what} is back"),
                    _ => {}
                }
            }
            Event::IndexAuth { refused } => {
                let mut was = self.auth_refused.lock().unwrap_or_else(|e| e.into_inner());
                if *was != *refused {
                    if *refused {
                        tracing::error!("the index refuses our credentials or certificate: check [index] token_file, client_cert, client_key and ca; the queue is kept");
                    } else {
                        tracing::info!("the index accepts our credentials again");
                    }
                    *was = *refused;
                }
            }
            _ => {}
        }
    }
}
