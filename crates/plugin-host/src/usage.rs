//! What each plugin's hooks have cost since the plugin was loaded: calls, failures, time and the
//! distribution of call times, counted on every call with relaxed atomics (a few nanoseconds
//! beside a call of microseconds) and read by the server's `/metrics` and status console. A reload starts the new set from zero, as a restarted
//! process would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use latency_histogram::{Histogram, Snapshot};

use super::Hook;

/// The counters of one plugin, one set per hook.
#[derive(Default)]
pub(crate) struct Usage([HookCounters; Hook::ALL.len()]);

#[derive(Default)]
struct HookCounters {
    calls: AtomicU64,
    failures: AtomicU64,
    nanos: AtomicU64,
    latencies: Histogram,
}

impl Usage {
    pub(crate) fn succeeded(&self, hook: Hook, elapsed: Duration) {
        let counters = &self.0[hook as usize];
        counters.calls.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        counters.nanos.fetch_add(nanos, Ordering::Relaxed);
        counters.latencies.record(elapsed);
    }

    /// A call that trapped, ran out of time, fuel or memory, or could not be instantiated.
    pub(crate) fn failed(&self, hook: Hook) {
        let counters = &self.0[hook as usize];
        counters.calls.fetch_add(1, Ordering::Relaxed);
        counters.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn of(&self, hook: Hook) -> (u64, u64, Duration, Snapshot) {
        let counters = &self.0[hook as usize];
        (
            counters.calls.load(Ordering::Relaxed),
            counters.failures.load(Ordering::Relaxed),
            Duration::from_nanos(counters.nanos.load(Ordering::Relaxed)),
            counters.latencies.snapshot(),
        )
    }
}

/// One hook of one loaded plugin, as `Plugins::usage` reports it.
#[derive(Clone, Debug)]
pub struct HookUsage {
    /// The plugin's file name (`NAME` of NAME.wasm).
    pub plugin: String,
    /// The hook's WIT name, such as "transform-submit".
    pub hook: &'static str,
    /// Calls, failed ones included.
    pub calls: u64,
    /// Calls that failed; their failure policy decided instead of the plugin.
    pub failures: u64,
    /// Time spent in the calls that returned.
    pub time: Duration,
    /// How long the calls that returned took, for quantiles such as the median.
    pub latencies: Snapshot,
}
