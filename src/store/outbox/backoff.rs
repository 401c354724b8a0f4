//! How long a row that failed waits before it is tried again.

/// Exponential backoff with jitter: from `unit` (250 ms) doubling, at most
/// five minutes, a random point in the upper half.
pub fn backoff(attempts: i64) -> chrono::Duration {
    let mut jitter = JITTER
        .get_or_init(|| std::sync::Mutex::new(Jitter::from_env()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    jitter.backoff(attempts)
}

/// The backoff's randomness and unit. Random and 250 ms in production; a
/// test sets `VISYNCTEST_JITTER_SEED` (the same seed gives the same waits)
/// and `VISYNCTEST_BACKOFF_UNIT_MS` (0: every retry is due at once), so that
/// a failure reproduces and no test waits on a real backoff.
#[derive(Debug)]
pub struct Jitter {
    rng: fastrand::Rng,
    unit_ms: i64,
}

static JITTER: std::sync::OnceLock<std::sync::Mutex<Jitter>> = std::sync::OnceLock::new();

impl Jitter {
    pub fn new(seed: u64, unit_ms: i64) -> Jitter {
        Jitter {
            rng: fastrand::Rng::with_seed(seed),
            unit_ms,
        }
    }

    fn from_env() -> Jitter {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        Jitter::new(
            var("VISYNCTEST_JITTER_SEED").unwrap_or_else(|| fastrand::u64(..)),
            var("VISYNCTEST_BACKOFF_UNIT_MS").map_or(250, |u| u.min(60_000) as i64),
        )
    }

    pub fn backoff(&mut self, attempts: i64) -> chrono::Duration {
        let cap = self
            .unit_ms
            .saturating_mul(1 << attempts.clamp(0, 20))
            .min(300_000);
        chrono::Duration::milliseconds(self.rng.i64(cap / 2..=cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 10): the jitter came from an unseeded global source,
    /// so a test that failed on a backoff could not be run again alike.
    #[test]
    fn backoff_jitter_is_injectable() {
        let waits = |seed| {
            let mut j = Jitter::new(seed, 250);
            (1..=6).map(|a| j.backoff(a)).collect::<Vec<_>>()
        };
        assert_eq!(waits(7), waits(7));
        assert_ne!(waits(7), waits(8));
        for (a, w) in (1..=6).zip(waits(7)) {
            let cap = 250 * (1 << a);
            assert!((cap / 2..=cap).contains(&w.num_milliseconds()), "{a}: {w}");
        }
        assert_eq!(Jitter::new(1, 0).backoff(5), chrono::Duration::zero());
        assert!(Jitter::new(1, 250).backoff(40).num_milliseconds() <= 300_000);
    }
}
