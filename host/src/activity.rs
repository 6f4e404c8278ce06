//! What the status console shows of the last minutes: messages per second over time (the
//! throughput chart) and the gateway's latency quantiles and answers by status. Prometheus keeps
//! the long history; this keeps only what a console needs now, in memory: counters bumped per
//! message, and a sample of them every `SAMPLE_EVERY`, for `HISTORY` samples.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use latency_histogram::{Histogram, Snapshot};
use serde::Serialize;

use crate::shutdown::Shutdown;

pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Ten minutes of samples.
const HISTORY: usize = 60;
/// The gateway's figures cover the last five minutes.
const GATEWAY_WINDOW: usize = 30;

#[derive(Default)]
pub struct Activity {
    submitted: AtomicU64,
    refused: AtomicU64,
    delivered: AtomicU64,
    /// By operation (submit_sms, ping, …): a lock per gateway request, beside a network call.
    gateway: Mutex<BTreeMap<String, GatewayCalls>>,
    samples: Mutex<VecDeque<Sample>>,
}

#[derive(Default)]
struct GatewayCalls {
    latencies: Histogram,
    /// By HTTP status or error kind, as `smsgate_requests_total` labels them.
    outcomes: BTreeMap<String, u64>,
}

struct Sample {
    at: DateTime<Utc>,
    submitted: u64,
    refused: u64,
    delivered: u64,
    gateway: BTreeMap<String, (Snapshot, BTreeMap<String, u64>)>,
}

/// Messages per second over one sampling interval.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// The end of the interval.
    pub at: DateTime<Utc>,
    /// submit_sm, data_sm and submit_multi answered ESME_ROK.
    pub submitted: f64,
    /// Those answered with an error.
    pub refused: f64,
    /// deliver_sm (receipts, incoming SMS) the ESMEs accepted.
    pub delivered: f64,
}

/// One gateway operation over the window.
#[derive(Clone, Debug, Serialize)]
pub struct GatewayFigures {
    pub operation: String,
    pub calls: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Calls by HTTP status or error kind (`timeout`, `connect`, …).
    pub outcomes: BTreeMap<String, u64>,
}

static ACTIVITY: LazyLock<Activity> = LazyLock::new(Activity::default);

pub fn get() -> &'static Activity {
    &ACTIVITY
}

impl Activity {
    pub fn submit_answered(&self, ok: bool) {
        let counter = if ok { &self.submitted } else { &self.refused };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn deliver_sm_accepted(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn gateway_call(&self, operation: &str, outcome: &str, took: Duration) {
        let mut gateway = lock(&self.gateway);
        let calls = match gateway.get_mut(operation) {
            Some(calls) => calls,
            None => gateway.entry(operation.to_owned()).or_default(),
        };
        calls.latencies.record(took);
        match calls.outcomes.get_mut(outcome) {
            Some(count) => *count += 1,
            None => {
                calls.outcomes.insert(outcome.to_owned(), 1);
            }
        }
    }

    /// Takes a sample now, dropping the oldest beyond the history.
    fn sample(&self) {
        let gateway = lock(&self.gateway)
            .iter()
            .map(|(operation, calls)| {
                (
                    operation.clone(),
                    (calls.latencies.snapshot(), calls.outcomes.clone()),
                )
            })
            .collect();
        let sample = Sample {
            at: Utc::now(),
            submitted: self.submitted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            gateway,
        };
        let mut samples = lock(&self.samples);
        if samples.len() > HISTORY {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Messages per second in each sampled interval, oldest first.
    pub fn throughput(&self) -> Vec<Point> {
        let samples = lock(&self.samples);
        samples
            .iter()
            .zip(samples.iter().skip(1))
            .map(|(before, after)| {
                let seconds = (after.at - before.at).as_seconds_f64().max(0.001);
                let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / seconds;
                Point {
                    at: after.at,
                    submitted: rate(after.submitted, before.submitted),
                    refused: rate(after.refused, before.refused),
                    delivered: rate(after.delivered, before.delivered),
                }
            })
            .collect()
    }

    /// Each gateway operation since the sample five minutes back (or the oldest kept), up to now.
    pub fn gateway(&self) -> (Duration, Vec<GatewayFigures>) {
        let (since, baseline) = {
            let samples = lock(&self.samples);
            let start = samples.len().saturating_sub(GATEWAY_WINDOW + 1);
            match samples.get(start) {
                Some(sample) => (Some(sample.at), sample.gateway.clone()),
                None => (None, BTreeMap::new()),
            }
        };
        let window = since.map_or(Duration::ZERO, |since| {
            (Utc::now() - since).to_std().unwrap_or_default()
        });
        let gateway = lock(&self.gateway);
        let figures = gateway
            .iter()
            .map(|(operation, calls)| {
                let empty = (Snapshot::default(), BTreeMap::new());
                let (earlier, earlier_outcomes) = baseline.get(operation).unwrap_or(&empty);
                let latencies = calls.latencies.snapshot().since(earlier);
                let millis = |q| {
                    latencies
                        .quantile(q)
                        .map(|d: Duration| d.as_secs_f64() * 1000.0)
                };
                let outcomes: BTreeMap<String, u64> = calls
                    .outcomes
                    .iter()
                    .filter_map(|(outcome, &count)| {
                        let before = earlier_outcomes.get(outcome).copied().unwrap_or(0);
                        let count = count.saturating_sub(before);
                        (count > 0).then(|| (outcome.clone(), count))
                    })
                    .collect();
                GatewayFigures {
                    operation: operation.clone(),
                    calls: latencies.count(),
                    p50_ms: millis(0.5),
                    p99_ms: millis(0.99),
                    outcomes,
                }
            })
            .filter(|figures| figures.calls > 0 || !figures.outcomes.is_empty())
            .collect();
        (window, figures)
    }
}

/// Samples every `SAMPLE_EVERY` until shutdown; the first sample is the baseline.
pub async fn sample(shutdown: Shutdown) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => get().sample(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_gateway_figures_come_from_the_samples() {
        let activity = Activity::default();
        activity.sample();
        for _ in 0..30 {
            activity.submit_answered(true);
        }
        activity.submit_answered(false);
        activity.deliver_sm_accepted();
        for _ in 0..9 {
            activity.gateway_call("submit_sms", "success", Duration::from_millis(40));
        }
        activity.gateway_call("submit_sms", "timeout", Duration::from_secs(5));
        activity.sample();

        let points = activity.throughput();
        assert_eq!(points.len(), 1);
        let seconds = (points[0].submitted / 30.0).recip();
        assert!(seconds > 0.0);
        assert!((points[0].refused * seconds - 1.0).abs() < 1e-6);
        assert!((points[0].delivered * seconds - 1.0).abs() < 1e-6);

        let (_, figures) = activity.gateway();
        let [submit] = figures.as_slice() else {
            panic!("{figures:?}")
        };
        assert_eq!(submit.calls, 10);
        let p50 = submit.p50_ms.unwrap();
        assert!((35.0..=45.0).contains(&p50), "{p50}");
        assert!(submit.p99_ms.unwrap() > 4000.0);
        assert_eq!(submit.outcomes["success"], 9);
        assert_eq!(submit.outcomes["timeout"], 1);
    }

    #[test]
    fn the_history_is_bounded() {
        let activity = Activity::default();
        for _ in 0..HISTORY + 20 {
            activity.sample();
        }
        assert_eq!(activity.throughput().len(), HISTORY);
    }
}
