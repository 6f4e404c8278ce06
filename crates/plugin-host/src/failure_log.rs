//! A plugin that fails on every call would otherwise write a log line per message, drowning
//! everything else at the rate of the traffic. Its failures are logged at most once per
//! interval, each line saying how many were left out since the last one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// At most one failure line per plugin in this time.
pub const INTERVAL: Duration = Duration::from_secs(10);

pub struct FailureLog {
    origin: Instant,
    /// Milliseconds since `origin` before which the next line is not written.
    quiet_until: AtomicU64,
    left_out: AtomicU64,
}

impl FailureLog {
    pub fn new() -> Self {
        FailureLog {
            origin: Instant::now(),
            quiet_until: AtomicU64::new(0),
            left_out: AtomicU64::new(0),
        }
    }

    /// Whether this failure gets a line, with how many were left out before it.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let now = now.saturating_duration_since(self.origin).as_millis() as u64;
        let quiet_until = self.quiet_until.load(Ordering::Relaxed);
        let next = now + INTERVAL.as_millis() as u64;
        if now >= quiet_until
            && self
                .quiet_until
                .compare_exchange(quiet_until, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.left_out.swap(0, Ordering::Relaxed))
        } else {
            self.left_out.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_counting_what_was_left_out() {
        let log = FailureLog::new();
        let start = log.origin;
        assert_eq!(log.admit_at(start), Some(0));
        for i in 1..1000 {
            assert_eq!(log.admit_at(start + Duration::from_millis(i)), None);
        }
        assert_eq!(log.admit_at(start + INTERVAL), Some(999));
        assert_eq!(
            log.admit_at(start + INTERVAL + Duration::from_secs(1)),
            None
        );
        assert_eq!(log.admit_at(start + INTERVAL * 3), Some(1));
        assert_eq!(log.admit_at(start + INTERVAL * 5), Some(0));
    }
}
