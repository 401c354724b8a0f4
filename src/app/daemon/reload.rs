//! SIGHUP: the config and mappings loaded anew as one snapshot and
//! swapped in whole for the next jobs, or refused whole (the old snapshot
//! keeps running). What cannot change while running (the state, the kind
//! of index) refuses the reload; what only a restart applies is said.

use std::sync::Arc;

use super::Daemon;
use crate::app::events::{Event, FolderRole, JobKind};
use crate::app::snapshot::{connect_index, Snapshot, SnapshotError};
use crate::app::ObservedIndex;
use crate::config::IndexUrl;

impl Daemon {
    /// The new config and, for a remote index, a client made from it. What
    /// cannot change while running is refused here, whole.
    async fn load_new(&self) -> Result<(Snapshot, Option<crate::index::HttpIndex>), SnapshotError> {
        let new = Snapshot::load(&self.config_path)?;
        let old = &self.ctx.snapshot.cfg;
        let config = self.config_path.clone();
        if new.cfg.state != old.state {
            return Err(SnapshotError::StateChanged { config });
        }
        let embedded = |u: &IndexUrl| matches!(u, IndexUrl::Embedded);
        if embedded(&new.cfg.index.url) != embedded(&old.index.url) {
            return Err(SnapshotError::IndexKindChanged { config });
        }
        if embedded(&new.cfg.index.url) {
            return Ok((new, None));
        }
        // A token file that cannot be read refuses the reload, not the sending.
        let conn = connect_index(&new.cfg).await?;
        Ok((new, Some(conn.api)))
    }

    /// Sources the new config no longer has: their folders are no longer
    /// anyone's concern (metrics, health), and their timers and hints go.
    fn forget_removed(&mut self, before: &[String]) {
        let now = self.sources();
        for gone in before.iter().filter(|s| !now.contains(s)) {
            for role in [FolderRole::Drop, FolderRole::Return] {
                self.ctx.events.emit(Event::Folder {
                    source: gone.clone(),
                    role,
                    present: true,
                });
            }
            self.settle.remove(gone);
            self.fresh.remove(gone);
            self.wanted.remove(&JobKind::Intake(gone.clone()));
        }
        self.ctx.events.emit(Event::Sources { names: now });
    }

    /// Settings that only a restart applies: said, not silently dropped.
    fn warn_restart_only(&self, new: &crate::config::Config) {
        let old = &self.ctx.snapshot.cfg;
        if new.http_listen != old.http_listen {
            tracing::warn!("[http] listen changed: it takes effect at the next restart");
        }
        if new.log_format != old.log_format || new.log_level != old.log_level {
            tracing::warn!("[log] changed: it takes effect at the next restart");
        }
    }

    /// SIGHUP: a new snapshot for the next jobs, or the old one keeps running.
    pub(super) async fn reload(&mut self) {
        match self.load_new().await {
            Ok((new, index)) => {
                let before = self.sources();
                if let Some(api) = index {
                    // A rotated token or certificate takes effect now.
                    self.ctx.index = Arc::new(ObservedIndex::new(api, self.ctx.events.clone()));
                }
                self.warn_restart_only(&new.cfg);
                self.reschedule(&new.cfg);
                self.unhealthy_after
                    .send_replace(new.cfg.daemon.unhealthy_after);
                self.ctx.snapshot = Arc::new(new);
                self.sync_watches();
                self.forget_removed(&before);
                for s in self.sources() {
                    self.wanted.insert(JobKind::Intake(s));
                }
                self.ctx.events.emit(Event::ConfigReload { ok: true });
                self.totals.reload = Some("config reloaded");
                tracing::info!(
                    config = %self.config_path.display(),
                    sources = self.ctx.snapshot.sources.list.len(),
                    "config reloaded: the next jobs use it"
                );
            }
            Err(message) => {
                self.ctx.events.emit(Event::ConfigReload { ok: false });
                self.totals.reload = Some("config reload refused: see the log");
                tracing::error!("the new config is refused, the old one keeps running: {message}");
            }
        }
        self.tell_status().await;
    }
}
