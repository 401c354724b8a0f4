//! Crash points for tests: a fault that no real part can produce on demand
//! (the process dying between two steps). `VISYNCTEST_CRASH_AT=NAME` aborts
//! the process when it reaches the point called NAME. Unset, a point costs
//! one environment lookup.

pub fn point(name: &str) {
    if std::env::var("VISYNCTEST_CRASH_AT").is_ok_and(|v| v == name) {
        eprintln!("VISYNCTEST_CRASH_AT={name}: aborting here on purpose");
        std::process::abort();
    }
}
