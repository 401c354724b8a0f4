//! `visync mapping init EXPORT`: drafts a mapping from a sample export
//! (`onboard`), checks the draft the way `check` would (it loads, and its
//! tests pass), writes it to `--out` (never over a file without `--force`)
//! or stdout, and prints the summary on stderr.

use std::path::{Path, PathBuf};

use super::{exit, CliError};
use crate::clock::Clock;
use crate::onboard::{self, InitError, Kind};

#[derive(clap::Args, Debug)]
pub struct MappingArgs {
    #[command(subcommand)]
    pub command: MappingCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum MappingCommand {
    /// Draft a mapping from a sample export: columns proposed by evidence,
    /// commented, with made-up tests. Nothing of the export's content is
    /// written.
    Init(InitArgs),
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// A sample export, CSV or XML; its first 5,000 records are read.
    pub export: PathBuf,
    /// The export's kind (default: XML when it starts with `<`, else CSV).
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// XML: the element path of one record (default: the repeating element
    /// with the most values below it).
    #[arg(long, value_name = "PATH")]
    pub record: Option<String>,
    /// Write the draft here instead of to stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite --out if it exists.
    #[arg(long, requires = "out")]
    pub force: bool,
}

pub fn run(args: MappingArgs, clock: Clock) -> Result<u8, CliError> {
    let MappingCommand::Init(args) = args.command;
    if let Some(out) = &args.out {
        if out.exists() && !args.force {
            return Err(InitError::Exists { path: out.clone() }.into());
        }
    }
    let opts = onboard::Options {
        export: args.export.clone(),
        kind: args.kind,
        record: args.record.clone(),
        today: clock.today(),
    };
    let draft = onboard::init(&opts)?;
    let verdict = match &args.out {
        Some(out) => {
            write(out, &draft.text, args.force)?;
            self_check(out, clock)
        }
        None => {
            // Checked from a temporary file; the text goes to stdout.
            let tmp = tempfile::Builder::new()
                .suffix(".toml")
                .tempfile()
                .map_err(|source| InitError::Write {
                    path: std::env::temp_dir(),
                    source,
                })?;
            std::fs::write(tmp.path(), &draft.text).map_err(|source| InitError::Write {
                path: tmp.path().to_path_buf(),
                source,
            })?;
            print!("{}", draft.text);
            self_check(tmp.path(), clock).replace(&tmp.path().display().to_string(), "the draft")
        }
    };
    eprint!("{}", draft.summary);
    eprintln!("  {verdict}");
    if let Some(out) = &args.out {
        eprintln!("wrote the draft to {}", out.display());
    }
    Ok(exit::OK)
}

/// What `check` would say of the draft: that it loads and its tests pass, or
/// the loader's own message (a field left TODO).
fn self_check(path: &Path, clock: Clock) -> String {
    match crate::mapping::load(path) {
        Ok(m) => {
            let never = |_: &crate::domain::Bsn| false;
            let ctx = crate::mapping::Context {
                today: clock.today(),
                rules: crate::domain::Rules::default(),
                objected: &never,
                reveal: false,
            };
            let failures = crate::mapping::run_tests(&m, &ctx);
            if failures.is_empty() {
                format!("the draft loads and its {} tests pass", m.tests.len())
            } else {
                let names: Vec<&str> = failures.iter().map(|f| f.test.as_str()).collect();
                format!(
                    "the draft loads, but tests fail ({}): fix the draft or the tests",
                    names.join("; ")
                )
            }
        }
        Err(e) => format!("the draft does not load yet; check will say: {e}"),
    }
}

/// Writes the draft beside its final name and renames it there; without
/// `--force` it refuses to replace a file that appeared meanwhile.
fn write(out: &Path, text: &str, force: bool) -> Result<(), InitError> {
    let err = |source| InitError::Write {
        path: out.to_path_buf(),
        source,
    };
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    if force {
        tmp.persist(out).map_err(|e| err(e.error))?;
    } else {
        tmp.persist_noclobber(out).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                InitError::Exists {
                    path: out.to_path_buf(),
                }
            } else {
                err(e.error)
            }
        })?;
    }
    Ok(())
}
