//! `visync subject --bsn BSN`: everything this installation holds and sent
//! about one child, for a right-of-access request. It opens the store
//! read-only. The BSN is shown masked; the only clear data in the answer is
//! what is still waiting in the outbox (and so is what the store holds).

use std::path::PathBuf;

use super::{exit, load_config, parse_bsn, runtime, CliError};
use crate::config;
use crate::domain::Bsn;
use crate::store::{Store, SubjectRecord};

#[derive(clap::Args, Debug)]
pub struct SubjectArgs {
    #[arg(short = 'c', long = "config", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The child's BSN (9 digits, or 8 with the leading zero left off).
    #[arg(long)]
    pub bsn: String,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SubjectArgs) -> Result<u8, CliError> {
    let cfg = load_config(&args.config)?;
    let bsn = parse_bsn(&args.bsn)?;
    runtime().block_on(async {
        let Some(store) = Store::open_read_only(&cfg.state, cfg.state_key_file.as_deref()).await?
        else {
            println!("nothing is held about {bsn}: there is no state store yet");
            return Ok(exit::PARTIAL);
        };
        let key = store.hasher().key(&bsn);
        let record = store.subject(&key).await;
        store.close().await;
        let record = record?;
        if args.json {
            let mut v = serde_json::to_value(&record).expect("a record serialises");
            v["subject"] = serde_json::Value::from(bsn.masked());
            println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        } else {
            print_text(&bsn, &record);
        }
        Ok(if record.signals.is_empty() && record.objection.is_none() {
            exit::PARTIAL
        } else {
            exit::OK
        })
    })
}

fn print_text(bsn: &Bsn, r: &SubjectRecord) {
    println!("subject {bsn}: {} signal(s) held", r.signals.len());
    match &r.objection {
        Some(at) => println!("objection recorded {at}: never registered again"),
        None => println!("no objection recorded"),
    }
    for held in &r.signals {
        let s = &held.signal;
        println!(
            "\nsignal {} ({}): source {}, professional {}, case {}, {} to {}",
            s.signal_id, s.state, s.source, s.professional_id, s.case_ref, s.start_date, s.end_date
        );
        if let Some(reason) = &s.withdraw_reason {
            println!("  withdrawn: {}", reason.as_str());
        }
        if let Some(error) = &s.error {
            println!("  the index said: {error}");
        }
        for q in &held.outbox {
            println!(
                "  waiting to be sent: {} ({}, since {})",
                q.action, q.state, q.created_at
            );
            if let Some(p) = &q.payload {
                println!("    as it will be sent: {p}");
            }
        }
        for n in &held.notices {
            println!(
                "  notice {} {} ({}), {}",
                n.kind, n.notice_id, n.state, n.created_at
            );
            if let Some(c) = &n.counterparts {
                println!("    naming: {c}");
            }
        }
        for e in &held.audit {
            println!("  {} {}", e.at, e.kind);
        }
    }
}
