//! `visync::config::load` on an arbitrary config file: a `Config` or a
//! `ConfigError`, never a panic (TOML, the environment layer, URLs, cron
//! schedules, listen addresses, rules, policy). Run it without `VISYNC_*`
//! variables in the environment: they would be layered over every input.
//! Seeds: the sample and packaged configs and variations of them.
#![no_main]

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| common::scratch("config").join("visync.toml"))
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    std::fs::write(path, data).expect("the scratch file");
    if let Err(e) = visync::config::load(path) {
        let _ = e.to_string();
    }
});
