//! The binary's edge: every command returns `Result<u8, CliError>` (its exit
//! status, or why it could not do its work), and `cli::main` is the one place
//! that prints an error and turns its kind into an exit status.

use std::path::PathBuf;

use super::exit;
use crate::app::daemon::StartError;
use crate::app::lock::LockError;
use crate::app::snapshot::SnapshotError;
use crate::config::ConfigError;
use crate::store::StoreError;

/// Why a command could not do its work. Each variant wraps a library error;
/// `status` maps it to the exit status the command table documents.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The mappings, the sources, or the index they lead to.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A `--bsn` that is not one, shown masked: never repeated in clear.
    #[error("--bsn: {masked} {source}")]
    Bsn {
        masked: String,
        #[source]
        source: crate::domain::BsnError,
    },
    /// Another process holds the state.
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Daemon(#[from] StartError),
    /// `check FILE` with a file that no source's drop folder holds.
    #[error(
        "{} is not in a source's drop folder: say which source reads it with --source NAME",
        .0.display()
    )]
    NotInDropFolder(PathBuf),
    #[error("source \"{source_name}\": cannot list the drop folder {}: {source}", .dir.display())]
    DropFolder {
        source_name: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The reference index could not start, or its one line could not be
    /// written.
    #[error(transparent)]
    IndexSim(#[from] visync_index_sim::SimError),
    /// A command that only reads found no state store to read.
    #[error(
        "the state store {} does not exist yet: nothing has been registered, so there is nothing to reconcile (a dry run creates nothing)",
        .0.display()
    )]
    NoState(PathBuf),
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] std::io::Error),
    /// `mapping init`: the sample cannot be drafted from, or the draft not written.
    #[error(transparent)]
    Onboard(#[from] crate::onboard::InitError),
    /// `check --html FILE` could not write its page.
    #[error("cannot write the HTML report {}: {source}: is its folder there and writable?", .path.display())]
    WriteReport {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The reference index did not stop cleanly: it ran, so not a config error.
    #[error("the index did not stop cleanly: {0}")]
    IndexSimStop(#[source] visync_index_sim::SimError),
}

impl CliError {
    /// The exit status for this error (connector.md's command table): 2 for
    /// what an operator must fix in a file or an argument (config, mapping,
    /// unreadable input, a state store that cannot be opened or read), 1 for
    /// work that could not be done now (the state held by another process).
    pub fn status(&self) -> u8 {
        match self {
            CliError::Lock(_) | CliError::IndexSimStop(_) => exit::PARTIAL,
            CliError::Config(_)
            | CliError::Snapshot(_)
            | CliError::Bsn { .. }
            | CliError::Store(_)
            | CliError::Daemon(_)
            | CliError::NotInDropFolder(_)
            | CliError::DropFolder { .. }
            | CliError::Runtime(_)
            | CliError::IndexSim(_)
            | CliError::Stdout(_)
            | CliError::NoState(_)
            | CliError::WriteReport { .. }
            | CliError::Onboard(_) => exit::CONFIG,
        }
    }
}

/// `error: MESSAGE`, followed by each cause in the chain of sources that the
/// message does not already say (library errors mostly name their cause in
/// their own words; a bare wrapped one would otherwise be lost).
pub fn render(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = format!("error: {e}");
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_cause_is_shown_once() {
        let io = || std::io::Error::other("disk on fire");
        assert_eq!(render(&Outer(io())), "error: outer: disk on fire");
        let said = StoreError::Folder {
            path: "/x/state.db".into(),
            source: io(),
        };
        assert_eq!(
            render(&said),
            "error: the state store /x/state.db: cannot create its folder: disk on fire"
        );
    }
}
