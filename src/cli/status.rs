//! `visync status`: what is waiting, held, stuck, and when things run next.
//! Read-only: it opens the store without creating one.

use std::fmt::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::{exit, load_config, runtime, CliError};
use crate::app::schedule::Cron;
use crate::config;
use crate::store::files::SourceTotals;
use crate::store::{FileRecord, Hold, InstanceRow, NoticeCounts, Quarantined, QueueCounts, Store};

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[arg(short = 'c', long = "config", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Print as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Default)]
struct Status {
    queue: QueueCounts,
    /// Per source: files and records so far, and the last success.
    sources: Vec<SourceTotals>,
    signals: std::collections::BTreeMap<String, i64>,
    last_files: Vec<LastFile>,
    /// API sources: the last poll, and how old the bookmark is.
    polls: Vec<Poll>,
    held: Vec<Hold>,
    quarantined: Vec<Quarantined>,
    notices: NoticeCounts,
    /// Per source: notices waiting, and the last delivery error.
    notices_waiting: Vec<NoticesWaiting>,
    /// On a shared store (PostgreSQL): the instances, what each leads and
    /// holds, and whether it still beats.
    instances: Vec<Instance>,
    next: Next,
}

#[derive(Serialize)]
struct Instance {
    #[serde(flatten)]
    row: InstanceRow,
    /// Seconds since its last heartbeat.
    seen_secs_ago: i64,
    /// Beat within the last lease: what it holds is its own.
    alive: bool,
}

#[derive(Serialize)]
struct NoticesWaiting {
    source: String,
    notices: u64,
    error: Option<String>,
}

#[derive(Serialize)]
struct Poll {
    #[serde(flatten)]
    last: crate::store::polls::PollStatus,
    /// Seconds since a delta source's bookmark last advanced.
    bookmark_age_secs: Option<i64>,
}

#[derive(Serialize)]
struct LastFile {
    source: String,
    file: String,
    outcome: String,
    taken_at: String,
}

#[derive(Serialize, Default)]
struct Next {
    notices: Option<String>,
    reconcile: Option<String>,
}

pub fn run(args: StatusArgs, clock: crate::clock::Clock) -> Result<u8, CliError> {
    let cfg = load_config(&args.config)?;
    // Local time, through the one clock: an operator reads "02:30 CET".
    let now = clock.now();
    let next = Next {
        notices: Cron::new(cfg.schedule.notices.clone()).next_local(now),
        reconcile: Cron::new(cfg.schedule.reconcile.clone()).next_local(now),
    };
    runtime().block_on(async {
        let store = Store::open_read_only(&cfg.state, cfg.state_key_file.as_deref()).await?;
        let status = match &store {
            None => Status {
                next,
                ..Status::default()
            },
            Some(store) => collect(store, next, now).await?,
        };
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&status).expect("status serialises")
            );
        } else {
            print!("{}", text(&status, store.is_none()));
        }
        Ok(exit::OK)
    })
}

async fn collect(
    store: &Store,
    next: Next,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Status, crate::store::StoreError> {
    // A store from before API sources has no polls table until the daemon
    // (which migrates) has run once: no polls to show.
    let polls = store
        .polls()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|last| Poll {
            bookmark_age_secs: last
                .bookmark_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| (now - t.with_timezone(&chrono::Utc)).num_seconds()),
            last,
        })
        .collect();
    Ok(Status {
        polls,
        queue: store.queue_counts().await?,
        sources: store.source_totals().await?,
        signals: store.signal_counts().await?,
        last_files: store
            .last_files()
            .await?
            .into_iter()
            .map(
                |(
                    source,
                    FileRecord {
                        name,
                        outcome,
                        taken_at,
                    },
                )| LastFile {
                    source,
                    file: name,
                    outcome: outcome.to_string(),
                    taken_at,
                },
            )
            .collect(),
        held: store.holds().await?,
        quarantined: store.quarantined(100).await?,
        notices: store.notice_counts().await?,
        notices_waiting: store
            .notice_trouble()
            .await?
            .into_iter()
            .map(|(source, notices, error)| NoticesWaiting {
                source,
                notices,
                error,
            })
            .collect(),
        instances: instances(store, now).await?,
        next,
    })
}

async fn instances(
    store: &Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Instance>, crate::store::StoreError> {
    let lease = store.instance().lease;
    Ok(store
        .instances()
        .await?
        .into_iter()
        .map(|row| {
            let seen = chrono::DateTime::parse_from_rfc3339(&row.seen_at)
                .map_or(now, |t| t.with_timezone(&chrono::Utc));
            Instance {
                seen_secs_ago: (now - seen).num_seconds(),
                alive: now - seen < lease,
                row,
            }
        })
        .collect())
}

fn text(s: &Status, empty: bool) -> String {
    let mut out = String::new();
    if empty {
        out.push_str("no state yet: nothing has run with this config\n");
    }
    text_queue(&mut out, s);
    text_sources(&mut out, s);
    text_held(&mut out, s);
    text_notices(&mut out, s);
    text_instances(&mut out, s);
    if let Some(n) = &s.next.notices {
        let _ = writeln!(out, "next notices poll: {n}");
    }
    if let Some(n) = &s.next.reconcile {
        let _ = writeln!(out, "next reconciliation: {n}");
    }
    out
}

/// The queue and the signals by state.
fn text_queue(out: &mut String, s: &Status) {
    let q = &s.queue;
    let _ = writeln!(
        out,
        "queue: {} waiting, {} held, {} quarantined",
        q.ready, q.held, q.quarantined
    );
    let signals: Vec<String> = s.signals.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let _ = writeln!(
        out,
        "signals: {}",
        if signals.is_empty() {
            "none".into()
        } else {
            signals.join(", ")
        }
    );
}

/// Per source: its totals, its last file and its last poll.
fn text_sources(out: &mut String, s: &Status) {
    for t in &s.sources {
        let _ = writeln!(
            out,
            "source {}: {} files processed, {} rejected; records {} accepted, {} rejected, {} skipped; last success {}",
            t.source,
            t.files_processed,
            t.files_rejected,
            t.records_accepted,
            t.records_rejected,
            t.records_skipped,
            t.last_success.as_deref().unwrap_or("never")
        );
    }
    for f in &s.last_files {
        let _ = writeln!(
            out,
            "last file of {}: {} ({}, {})",
            f.source, f.file, f.outcome, f.taken_at
        );
    }
    for p in &s.polls {
        let l = &p.last;
        let _ = writeln!(
            out,
            "last poll of {}: {} ({} records{}); last complete {}{}",
            l.source,
            l.last_poll_at,
            l.records,
            match &l.error {
                Some(e) => format!(", INCOMPLETE: {e}"),
                None => String::new(),
            },
            l.last_complete_at.as_deref().unwrap_or("never"),
            p.bookmark_age_secs
                .map(|s| format!("; bookmark {} min old", s / 60))
                .unwrap_or_default()
        );
    }
}

/// What waits for an operator: held withdrawals, quarantined rows.
fn text_held(out: &mut String, s: &Status) {
    for h in &s.held {
        let _ = writeln!(
            out,
            "HELD {}: {} withdrawals of {} active signals from {} since {}; `visync release --source {}` lets them go",
            h.source, h.withdrawals, h.active, h.file, h.held_at, h.source
        );
    }
    for r in &s.quarantined {
        let _ = writeln!(
            out,
            "QUARANTINED {} {} of {} after {} attempts: {}",
            r.source,
            r.action,
            r.signal_id,
            r.attempts,
            r.error.as_deref().unwrap_or("-")
        );
    }
}

/// The notices, and those that cannot be delivered.
fn text_notices(out: &mut String, s: &Status) {
    let n = &s.notices;
    let _ = writeln!(
        out,
        "notices: {} waiting, {} delivered, {} for signals this installation does not know, {} quarantined",
        n.pending, n.delivered, n.unroutable, n.quarantined
    );
    if n.quarantined > 0 {
        let _ = writeln!(
            out,
            "QUARANTINED NOTICES: {}: the CMS refused them {} times; fix its endpoint, then `visync release --source NAME`",
            n.quarantined,
            crate::store::notices::NOTICE_ATTEMPTS
        );
    }
    for w in &s.notices_waiting {
        let _ = writeln!(
            out,
            "NOTICES WAITING {}: {} ({})",
            w.source,
            w.notices,
            w.error.as_deref().unwrap_or("not delivered yet")
        );
    }
}

/// The instances on a shared store: who leads which job, who holds what.
fn text_instances(out: &mut String, s: &Status) {
    for i in &s.instances {
        let r = &i.row;
        let _ = write!(
            out,
            "instance {} (host {}, pid {}): started {}, ",
            r.id, r.host, r.pid, r.started_at
        );
        if !i.alive {
            let _ = writeln!(
                out,
                "NOT SEEN for {} s: stopped or cut off; the others take over what it held",
                i.seen_secs_ago
            );
            continue;
        }
        let leads = if r.leases.is_empty() {
            "standing by".to_string()
        } else {
            format!("leads {}", r.leases.join(", "))
        };
        let _ = writeln!(
            out,
            "seen {} s ago; {leads}; sending {} outbox rows, reading {} files",
            i.seen_secs_ago, r.outbox_claims, r.file_claims
        );
    }
}
