//! Prometheus metrics under the Go server's names, so its dashboards and alert rules keep
//! working. Label values are SMPP's own names (`submit_sm`, `ESME_RTHROTTLED`) where the Go
//! server used its library's type names.

use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use prometheus::{
    CounterVec, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use smsgate_plugin_host::Plugins;

use smpp_codec::command;
use smpp_codec::status::{CommandStatus, ESME_ROK};

/// The gateway operation and outcome of a relayed message (see `Relayed`).
pub const SUBMIT_SMS: &str = "submit_sms";
pub const SUCCESS: &str = "success";

pub struct Metrics {
    registry: Registry,
    /// `state`: open, bound_tx, bound_rx, bound_trx.
    pub sessions: IntGaugeVec,
    pdus_received: IntCounterVec,
    pdus_sent: IntCounterVec,
    /// `type`: tx, rx, trx; `status`: success, failure.
    pub bind_attempts: IntCounterVec,
    /// `reason`: credentials (refused by a plugin or the gateway), recently_refused,
    /// address_locked_out, account_under_attack.
    pub binds_refused: IntCounterVec,
    submit_sm: IntCounterVec,
    pub submit_sm_duration: Histogram,
    pub query_sm: IntCounterVec,
    pub query_sm_duration: Histogram,
    /// Every non-zero command_status sent, `code` as 0x%08X.
    pub errors: IntCounterVec,
    /// `operation`: ping, submit_sms, query_sms, confirm_sms, cancel_sms, list_webhooks, register_webhook,
    /// delete_webhook; `status`: HTTP code or error kind.
    gateway_requests: IntCounterVec,
    gateway_duration: HistogramVec,
    /// Webhook calls by `outcome`: queued, duplicate, ignored, unknown_token, bad_signature,
    /// retry_later, malformed, too_large, error.
    pub webhooks: IntCounterVec,
    /// deliver_sm moved to the dead letters, by the `status` of the ESME's last refusal.
    dead_lettered_total: IntCounterVec,
    /// Dead letters kept now.
    dead_letters: IntGauge,
    /// deliver_sm waiting for an ESME now, every account together.
    queued: IntGauge,
    plugin_usage: PluginUsage,
    relayed: Relayed,
}

/// The series every relayed submit_sm bumps, looked up once and kept: a lookup hashes the
/// label values and takes the vector's lock, five times per message. Made on first use, so
/// `/metrics` shows them only once there was such a message, as it does every series.
#[derive(Default)]
struct Relayed {
    received: OnceLock<IntCounter>,
    answered: OnceLock<IntCounter>,
    accepted: OnceLock<IntCounter>,
    gateway_accepted: OnceLock<IntCounter>,
    gateway_duration: OnceLock<Histogram>,
}

/// Plugin hook calls by `plugin` and `hook`. The plugin host counts them on every call; each
/// scrape copies its counters here, under the lock so that two scrapes do not interleave.
struct PluginUsage {
    plugins: Mutex<Option<Arc<Plugins>>>,
    calls: IntCounterVec,
    failures: IntCounterVec,
    seconds: CounterVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help)).expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let sessions = IntGaugeVec::new(
            Opts::new("smpp_sessions_active", "SMPP sessions by bind state"),
            &["state"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(sessions.clone()))
            .expect("unique metric");
        let gateway_duration = HistogramVec::new(
            HistogramOpts::new(
                "smsgate_request_duration_seconds",
                "SMSGate API call duration",
            ),
            &["operation"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(gateway_duration.clone()))
            .expect("unique metric");
        let dead_letters = IntGauge::new(
            "smpp_delivery_dead_letters",
            "deliver_sm the ESMEs refused for good, kept as dead letters",
        )
        .expect("valid metric");
        registry
            .register(Box::new(dead_letters.clone()))
            .expect("unique metric");
        let queued = IntGauge::new(
            "smpp_delivery_queue_items",
            "deliver_sm (receipts, incoming SMS) waiting for an ESME, every account together",
        )
        .expect("valid metric");
        registry
            .register(Box::new(queued.clone()))
            .expect("unique metric");
        let labels = ["plugin", "hook"];
        let seconds = CounterVec::new(
            Opts::new(
                "smpp_plugin_call_seconds_total",
                "Time spent in plugin hook calls that returned",
            ),
            &labels,
        )
        .expect("valid metric");
        registry
            .register(Box::new(seconds.clone()))
            .expect("unique metric");
        let plugin_usage = PluginUsage {
            plugins: Mutex::new(None),
            calls: counter(
                "smpp_plugin_calls_total",
                "Plugin hook calls, failed ones included",
                &labels,
            ),
            failures: counter(
                "smpp_plugin_failures_total",
                "Plugin hook calls that failed (trap, deadline, fuel, memory); the failure policy decided",
                &labels,
            ),
            seconds,
        };
        // process_resident_memory_bytes, process_cpu_seconds_total, open fds… as every
        // Prometheus client exports them, for the memory alerts.
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique metric");
        Metrics {
            sessions,
            pdus_received: counter("smpp_pdus_received_total", "PDUs received", &["command"]),
            pdus_sent: counter("smpp_pdus_sent_total", "PDUs sent", &["command"]),
            bind_attempts: counter(
                "smpp_bind_attempts_total",
                "Bind attempts",
                &["type", "status"],
            ),
            binds_refused: counter(
                "smpp_binds_refused_total",
                "Binds refused for their credentials or by the guessing guard",
                &["reason"],
            ),
            submit_sm: counter(
                "smpp_submit_sm_total",
                "submit_sm by response status",
                &["status"],
            ),
            submit_sm_duration: histogram(
                "smpp_submit_sm_duration_seconds",
                "submit_sm processing time",
            ),
            query_sm: counter(
                "smpp_query_sm_total",
                "query_sm by response status",
                &["status"],
            ),
            query_sm_duration: histogram(
                "smpp_query_sm_duration_seconds",
                "query_sm processing time",
            ),
            errors: counter(
                "smpp_errors_total",
                "Non-zero command_status sent",
                &["code"],
            ),
            gateway_requests: counter(
                "smsgate_requests_total",
                "SMSGate API calls",
                &["operation", "status"],
            ),
            gateway_duration,
            webhooks: counter(
                "smpp_webhooks_total",
                "SMSGate webhook calls by outcome",
                &["outcome"],
            ),
            dead_lettered_total: counter(
                "smpp_deliveries_dead_lettered_total",
                "deliver_sm moved to the dead letters, by the ESME's last status",
                &["status"],
            ),
            dead_letters,
            queued,
            plugin_usage,
            registry,
            relayed: Relayed::default(),
        }
    }

    /// Counts a PDU the server read.
    pub fn received(&self, command_id: u32) {
        let kept = (command_id == command::SUBMIT_SM).then_some(&self.relayed.received);
        bump(
            &self.pdus_received,
            &[command::command_name(command_id)],
            kept,
        );
    }

    /// Counts a submit_sm answered with `status`.
    pub fn submit_answered(&self, status: CommandStatus) {
        let kept = (status == ESME_ROK).then_some(&self.relayed.accepted);
        bump(&self.submit_sm, &[status.name()], kept);
    }

    /// The plugin set whose hook calls `/metrics` reports from now on.
    pub fn watch_plugins(&self, plugins: Arc<Plugins>) {
        *self.plugin_usage.lock() = Some(plugins);
    }

    /// Counts a PDU the server wrote.
    pub fn sent(&self, command_id: u32, command_status: CommandStatus) {
        let kept = (command_id == command::SUBMIT_SM_RESP).then_some(&self.relayed.answered);
        bump(&self.pdus_sent, &[command::command_name(command_id)], kept);
        if !command_status.is_ok() {
            self.errors
                .with_label_values(&[format!("0x{:08X}", command_status.0).as_str()])
                .inc();
        }
    }

    /// Counts a deliver_sm moved to the dead letters. Only statuses classified permanent get
    /// here, a short fixed list, so the label stays bounded; the one without an SMPP 3.4 name
    /// is labelled with its code.
    pub fn dead_lettered(&self, status: CommandStatus) {
        let label = status
            .known_name()
            .map_or_else(|| format!("0x{:08X}", status.0), str::to_owned);
        self.dead_lettered_total.with_label_values(&[&label]).inc();
    }

    pub fn set_queued(&self, count: u64) {
        self.queued.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn set_dead_letters(&self, count: u64) {
        self.dead_letters
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn gateway_call(&self, operation: &str, outcome: &str, took: Duration) {
        let relayed = operation == SUBMIT_SMS;
        let kept = (relayed && outcome == SUCCESS).then_some(&self.relayed.gateway_accepted);
        bump(&self.gateway_requests, &[operation, outcome], kept);
        let duration = || self.gateway_duration.with_label_values(&[operation]);
        let seconds = took.as_secs_f64();
        if relayed {
            let kept = self.relayed.gateway_duration.get_or_init(duration);
            kept.observe(seconds);
        } else {
            duration().observe(seconds);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let families = {
            let plugins = self.plugin_usage.lock();
            if let Some(plugins) = plugins.as_ref() {
                self.plugin_usage.copy_from(plugins);
            }
            self.registry.gather()
        };
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&families, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Bumps the series of `labels`; from `kept` when given, looked up into it the first time.
fn bump(vec: &IntCounterVec, labels: &[&str], kept: Option<&OnceLock<IntCounter>>) {
    let series = || vec.with_label_values(labels);
    match kept {
        Some(kept) => kept.get_or_init(series).inc(),
        None => series().inc(),
    }
}

impl PluginUsage {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Plugins>>> {
        self.plugins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A reload replaces the set and starts its counters from zero, which Prometheus reads as
    /// a counter reset; plugins no longer loaded drop out.
    fn copy_from(&self, plugins: &Plugins) {
        self.calls.reset();
        self.failures.reset();
        self.seconds.reset();
        for hook in plugins.usage() {
            let labels = [hook.plugin.as_str(), hook.hook];
            self.calls.with_label_values(&labels).inc_by(hook.calls);
            self.failures
                .with_label_values(&labels)
                .inc_by(hook.failures);
            self.seconds
                .with_label_values(&labels)
                .inc_by(hook.time.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_go_server_names() {
        let m = Metrics::new();
        m.sessions.with_label_values(&["open"]).inc();
        m.sent(command::SUBMIT_SM_RESP, smpp_codec::status::ESME_RTHROTTLED);
        m.gateway_call("submit_sms", "202", Duration::from_millis(5));
        m.submit_sm.with_label_values(&["ESME_ROK"]).inc();
        m.submit_sm_duration.observe(0.01);
        m.dead_lettered(smpp_codec::status::ESME_RINVDSTADR);
        m.dead_lettered(CommandStatus(0x104));
        m.set_dead_letters(2);
        m.set_queued(7);
        let text = m.render();
        for name in [
            "smpp_sessions_active{state=\"open\"} 1",
            "smpp_pdus_sent_total{command=\"submit_sm_resp\"} 1",
            "smpp_errors_total{code=\"0x00000058\"} 1",
            "smsgate_requests_total{operation=\"submit_sms\",status=\"202\"} 1",
            "smsgate_request_duration_seconds_count{operation=\"submit_sms\"} 1",
            "smpp_submit_sm_total{status=\"ESME_ROK\"} 1",
            "smpp_submit_sm_duration_seconds_count 1",
            "smpp_deliveries_dead_lettered_total{status=\"ESME_RINVDSTADR\"} 1",
            "smpp_deliveries_dead_lettered_total{status=\"0x00000104\"} 1",
            "smpp_delivery_dead_letters 2",
            "smpp_delivery_queue_items 7",
            #[cfg(target_os = "linux")]
            "process_resident_memory_bytes ",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }

    /// The series kept for relayed messages count with the others of their metric.
    #[test]
    fn relayed_messages_count_in_the_same_series() {
        use smpp_codec::status::ESME_RTHROTTLED;
        let m = Metrics::new();
        assert!(!m.render().contains("smpp_pdus_received_total"));
        for _ in 0..3 {
            m.received(command::SUBMIT_SM);
            m.sent(command::SUBMIT_SM_RESP, ESME_ROK);
            m.submit_answered(ESME_ROK);
            m.gateway_call(SUBMIT_SMS, SUCCESS, Duration::from_millis(5));
        }
        m.received(command::ENQUIRE_LINK);
        m.sent(command::SUBMIT_SM_RESP, ESME_RTHROTTLED);
        m.submit_answered(ESME_RTHROTTLED);
        m.gateway_call(SUBMIT_SMS, "timeout", Duration::from_secs(5));
        m.gateway_call("query_sms", SUCCESS, Duration::from_millis(5));
        let text = m.render();
        for line in [
            "smpp_pdus_received_total{command=\"submit_sm\"} 3",
            "smpp_pdus_received_total{command=\"enquire_link\"} 1",
            "smpp_pdus_sent_total{command=\"submit_sm_resp\"} 4",
            "smpp_submit_sm_total{status=\"ESME_ROK\"} 3",
            "smpp_submit_sm_total{status=\"ESME_RTHROTTLED\"} 1",
            "smsgate_requests_total{operation=\"submit_sms\",status=\"success\"} 3",
            "smsgate_requests_total{operation=\"submit_sms\",status=\"timeout\"} 1",
            "smsgate_requests_total{operation=\"query_sms\",status=\"success\"} 1",
            "smsgate_request_duration_seconds_count{operation=\"submit_sms\"} 4",
            "smsgate_request_duration_seconds_count{operation=\"query_sms\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
