//! `visync check`: the dry run. Reads what is waiting (or the files given),
//! maps, validates and plans, and changes nothing anywhere: no state file is
//! created, no file is moved, nothing is sent.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::report::{FileError, Report, SourceReport};
use super::{exit, load_config, runtime, CliError, Sources};
use crate::clock::Clock;
use crate::config::{self, Config, SourceConfig};
use crate::domain::{SubjectHasher, SubjectKey};
use crate::mapping::{self, Context, Mapping};
use crate::pipeline;
use crate::plan::{Action, Desired, InvolvementKey, Plan, Stored};

/// The stored state of one source, as the dry run plans against it.
type StoredState = HashMap<InvolvementKey, Stored>;
use crate::source::{waiting_files, FileReader};
use crate::store::Store;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The daemon's config file.
    #[arg(short = 'c', long = "config", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Only this source (its mapping's [source] name).
    #[arg(long)]
    pub source: Option<String>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Show BSNs in clear in the report (they are masked otherwise).
    #[arg(long)]
    pub reveal: bool,
    /// Run the [[tests]] of every mapping instead.
    #[arg(long)]
    pub mapping_tests: bool,
    /// Also write the report as one self-contained HTML page to FILE (no
    /// personal data unless --reveal), to read or to share.
    #[arg(long, value_name = "FILE", conflicts_with = "mapping_tests")]
    pub html: Option<PathBuf>,
    /// Check these files instead of what waits in the drop folders.
    pub files: Vec<PathBuf>,
}

pub fn run(args: CheckArgs, clock: Clock) -> Result<u8, CliError> {
    let cfg = load_config(&args.config)?;
    let sources = Sources::load(&cfg, args.source.as_deref())?.list;
    // The dry run plans against the real state, read-only; without one yet,
    // against an empty state (and it creates none).
    let state = runtime().block_on(load_state(&cfg, &sources))?;
    // With nobody on the list (a new installation, or no state yet) no
    // record needs its keyed hash for this; the planning thread makes it.
    let objected = |b: &crate::domain::Bsn| {
        !state.objections.is_empty() && state.objections.contains(&state.hasher.key(b))
    };
    let ctx = Context {
        today: clock.today(),
        rules: cfg.rules,
        objected: &objected,
        reveal: args.reveal,
    };
    if args.mapping_tests {
        return Ok(mapping_tests(&sources, &ctx));
    }
    let work = assign_files(&sources, &args.files)?;
    let mut report = Report::default();
    let progress = super::progress::spinner();
    // API sources are polled (GET only) on this runtime's threads.
    let rt = runtime();
    for (i, files) in work.iter().enumerate() {
        let (_, mapping) = &sources[i];
        if files.is_empty() && args.source.is_none() && !args.files.is_empty() {
            continue;
        }
        let inputs: Vec<Input> = match mapping.api() {
            Some(spec) => vec![Input::Poll(
                rt.handle().clone(),
                spec.clone(),
                state.bookmarks.get(&mapping.name).cloned(),
            )],
            None => files.iter().map(|f| Input::File(f.clone())).collect(),
        };
        check_source(
            mapping,
            inputs,
            &ctx,
            &state,
            &cfg,
            &mut report,
            progress.as_ref(),
        );
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    report.print(args.json);
    if let Some(path) = &args.html {
        write_html(&report, &args, &sources, &clock, path)?;
    }
    Ok(report.exit_code())
}

/// `--html FILE`: the same report as a page, with the files it came from.
fn write_html(
    report: &Report,
    args: &CheckArgs,
    sources: &[(SourceConfig, Mapping)],
    clock: &Clock,
    path: &Path,
) -> Result<(), CliError> {
    let page = super::html::Page {
        config: &args.config,
        mappings: sources
            .iter()
            .map(|(_, m)| (m.name.clone(), m.path.clone()))
            .collect(),
        reveal: args.reveal,
        today: clock.today(),
        made: clock.wall(),
    };
    super::html::write(path, &super::html::render(report, &page)).map_err(|source| {
        CliError::WriteReport {
            path: path.to_path_buf(),
            source,
        }
    })?;
    eprintln!("wrote the HTML report to {}", path.display());
    Ok(())
}

/// Decides which files each source reads: the files given (each to the source
/// whose drop folder holds it, or the only or chosen source), or what waits.
fn assign_files(
    sources: &[(SourceConfig, Mapping)],
    files: &[PathBuf],
) -> Result<Vec<Vec<PathBuf>>, CliError> {
    let mut work = vec![Vec::new(); sources.len()];
    if files.is_empty() {
        for (i, (s, m)) in sources.iter().enumerate() {
            if let Some(dir) = &s.watch {
                work[i] = waiting_files(dir).map_err(|source| CliError::DropFolder {
                    source_name: m.name.clone(),
                    dir: dir.clone(),
                    source,
                })?;
            }
        }
        return Ok(work);
    }
    for f in files {
        let i = if sources.len() == 1 {
            0
        } else {
            let dir = f.parent().map(absolute).unwrap_or_default();
            sources
                .iter()
                .position(|(s, _)| {
                    s.watch.as_deref().map(absolute).as_deref() == Some(dir.as_path())
                })
                .ok_or_else(|| CliError::NotInDropFolder(f.clone()))?
        };
        work[i].push(f.clone());
    }
    Ok(work)
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// What the dry run reads: a file, or one poll of an API source.
enum Input {
    File(PathBuf),
    /// The runtime that fetches the pages, the source, its bookmark.
    Poll(
        tokio::runtime::Handle,
        std::sync::Arc<crate::source::api::ApiSpec>,
        Option<String>,
    ),
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::File(path) => path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            Input::Poll(_, spec, _) => spec.shown_url(),
        }
    }

    /// The outcome, and why a poll did not read every page (it then
    /// withdraws nothing). `Err`: the input cannot be read at all.
    fn read(
        &self,
        mapping: &Mapping,
        ctx: &Context<'_>,
        hasher: &SubjectHasher,
    ) -> Result<(pipeline::FileOutcome, Option<String>), String> {
        match self {
            Input::File(path) => FileReader::open(path, &mapping.reader)
                .and_then(|reader| pipeline::read_file(mapping, reader, ctx, hasher))
                .map(|o| (o, None))
                .map_err(|e| format!("{} {e}", path.display())),
            Input::Poll(handle, spec, bookmark) => {
                use crate::source::api;
                let delta = mapping.mode == mapping::Mode::Delta;
                let start = api::start_url(spec, delta, bookmark.as_deref());
                let state = std::sync::Arc::new(std::sync::Mutex::new(api::PollState::default()));
                let reader = api::PollReader::new(
                    handle.clone(),
                    spec.clone(),
                    mapping.reader.keys.clone(),
                    start,
                    state.clone(),
                    None,
                )
                .map_err(|e| e.to_string())?;
                let outcome =
                    pipeline::read_file(mapping, FileReader::Poll(Box::new(reader)), ctx, hasher)
                        .map_err(|e| e.to_string())?;
                let st = state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                Ok((outcome, st.failure.as_ref().map(ToString::to_string)))
            }
        }
    }
}

fn check_source(
    mapping: &Mapping,
    inputs: Vec<Input>,
    ctx: &Context<'_>,
    stored: &State,
    cfg: &Config,
    report: &mut Report,
    progress: Option<&indicatif::ProgressBar>,
) {
    let hasher = &stored.hasher;
    let baseline = stored
        .baselines
        .get(&mapping.name)
        .cloned()
        .unwrap_or_default();
    let mut source = SourceReport::new(&mapping.name);
    // The state as it would be after each file, so that successive snapshots
    // plan as the real run would take them.
    let mut state = baseline;
    let count = inputs.len();
    for (i, input) in inputs.iter().enumerate() {
        let name = input.name();
        if let Some(bar) = progress {
            bar.set_message(format!(
                "checking {} {name} ({} of {})",
                mapping.name,
                i + 1,
                count
            ));
        }
        source.files.push(name.clone());
        let (mut outcome, incomplete) = match input.read(mapping, ctx, hasher) {
            Ok(o) => o,
            Err(message) => {
                report.file_errors.push(FileError {
                    source: mapping.name.clone(),
                    file: name,
                    message,
                });
                continue;
            }
        };
        source.add_counts(&outcome);
        report.add_rejections(&mapping.name, &name, &outcome.rejections);
        let mut plan = outcome
            .desired
            .plan(&state, ctx.today, &ctx.rules, &cfg.policy);
        if let Some(why) = incomplete {
            // As the real run: an incomplete poll withdraws nothing.
            plan.without_withdrawals();
            report.file_errors.push(FileError {
                source: mapping.name.clone(),
                file: name.clone(),
                message: format!("the poll is incomplete (nothing would be withdrawn): {why}"),
            });
        }
        report.plan.add(&plan.counts);
        if i + 1 == count {
            // Nothing reads the state after the last file.
            continue;
        }
        take_plan(&mut state, &outcome.desired, &plan);
    }
    report.sources.push(source);
}

/// The state as the real run would leave it after a file's plan: what it
/// registers, updates and renews, and (unless they are held) what it
/// withdraws.
fn take_plan(state: &mut StoredState, desired: &Desired, plan: &Plan) {
    for (key, action, wanted) in desired.decided() {
        match action {
            Action::Register | Action::Update => {
                state.insert(
                    key,
                    Stored {
                        content: wanted.content,
                        active: true,
                        end_date: wanted.end_date,
                        renewed: false,
                    },
                );
            }
            Action::Renew { end_date } => {
                if let Some(s) = state.get_mut(&key) {
                    s.end_date = end_date;
                    s.renewed = true;
                }
            }
            Action::Withdraw(_) => {}
        }
    }
    if !plan.withdrawals_held {
        for (key, _) in &plan.withdrawals {
            if let Some(s) = state.get_mut(key) {
                s.active = false;
            }
        }
    }
}

/// What the dry run reads from the state store.
struct State {
    hasher: SubjectHasher,
    objections: HashSet<SubjectKey>,
    baselines: HashMap<String, StoredState>,
    /// Delta API sources: where the next poll starts.
    bookmarks: HashMap<String, String>,
}

async fn load_state(
    cfg: &Config,
    sources: &[(SourceConfig, Mapping)],
) -> Result<State, crate::store::StoreError> {
    let Some(store) = Store::open_read_only(&cfg.state, cfg.state_key_file.as_deref()).await?
    else {
        // No state yet: the hashes never leave this process, so any key will do.
        return Ok(State {
            hasher: SubjectHasher::new(b"visync-check"),
            objections: HashSet::new(),
            baselines: HashMap::new(),
            bookmarks: HashMap::new(),
        });
    };
    let mut baselines = HashMap::new();
    let mut bookmarks = HashMap::new();
    for (_, m) in sources {
        baselines.insert(m.name.clone(), store.baseline(&m.name).await?);
        if m.api().is_some() {
            // A store from before API sources (not migrated: the dry run
            // opens it read-only) has no bookmarks yet.
            if let Ok(Some(b)) = store.bookmark(&m.name).await {
                bookmarks.insert(m.name.clone(), b);
            }
        }
    }
    let state = State {
        hasher: store.hasher().clone(),
        objections: store.objections().await?,
        baselines,
        bookmarks,
    };
    store.close().await;
    Ok(state)
}

fn mapping_tests(sources: &[(SourceConfig, Mapping)], ctx: &Context<'_>) -> u8 {
    let mut failed = 0;
    let mut total = 0;
    for (_, m) in sources {
        let failures = mapping::run_tests(m, ctx);
        let failing: std::collections::HashSet<&str> =
            failures.iter().map(|f| f.test.as_str()).collect();
        total += m.tests.len();
        failed += failing.len();
        for f in &failures {
            println!("FAIL {} [{}]: {}", m.path.display(), f.test, f.message);
        }
        println!(
            "{}: {} tests, {} failed",
            m.name,
            m.tests.len(),
            failing.len()
        );
    }
    println!("{} passed, {} failed", total.saturating_sub(failed), failed);
    if failed > 0 {
        exit::PARTIAL
    } else {
        exit::OK
    }
}
