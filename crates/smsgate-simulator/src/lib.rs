//! An in-process stand-in for the SMSGate REST API, so the server runs without an SMSGate
//! account or phone and tests can provoke every gateway outcome.
//!
//! Two personalities, chosen with `mode` (see [`Personality`]), answer like the two APIs a
//! server can face (same status codes, bodies and validation):
//! - Cloud (Cloud and Private server): `/3rdparty/v1/...` with `GET /devices`,
//!   `POST|GET /messages`, `GET|DELETE /messages/{id}`, `GET|POST /webhooks` and
//!   `DELETE /webhooks/{id}` behind HTTP Basic auth, and `GET /health`.
//! - Local (the Android app's own server on the LAN, see `routes/local.rs`): the phone's routes
//!   at the root with its messages and quirks: `GET /device`, `POST /messages`,
//!   `GET /messages/{id}`, `GET|POST /webhooks` and `DELETE /webhooks/{id}` (each also under
//!   its legacy singular path) behind HTTP Basic auth, and `GET /health` with the phone's
//!   checks. Messages can be neither listed nor cancelled there, as on the phone.
//!
//! Either way each account stands for one phone. Configurable rules decide per phone number
//! whether a message is delivered, fails, is rejected with an HTTP error, or is answered late.
//! Deliberately stricter than the real gateway: phone numbers must be E.164.
//!
//! Registered webhooks are called the way the phone calls them: `sms:sent`, `sms:delivered`,
//! `sms:failed` and `sms:cancelled` as messages move on, `sms:received` and `sms:data-received`
//! for incoming SMS, signed with the account's `signing_key` and retried with a doubling
//! back-off (see `events.rs`).
//!
//! `/simulator/v1/...` (no auth, the same in both personalities) shows what the simulator
//! received, for tests and for people trying the server out: `GET /messages` (every accepted
//! request with its current state), `GET /requests` (counts per "METHOD /path STATUS", the path
//! relative to the API base), `GET /webhook-deliveries` (every webhook attempt and its result)
//! and `POST /reset`; `POST /inbox` makes the phone receive an SMS.
//!
//! A message's state is not driven by timers: it is a pure function of the time elapsed since it
//! was accepted (see `Lifecycle` in `state.rs`), so thousands of messages cost no tasks. One task per
//! simulator announces the transitions as their times come.

mod events;
mod inject;
mod routes;
mod state;
#[cfg(test)]
mod tests;

pub use inject::{InjectMo, inject_mo};

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};

use state::Store;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Which API the simulator answers as: `"cloud"` (the default: the Cloud or Private
    /// server's, under `/3rdparty/v1`) or `"local"` (the one the phone serves itself in the
    /// app's Local mode, at the root).
    pub mode: Personality,
    /// Where `serve --simulate` serves the simulator (on a free port of the same address when
    /// this one is taken), and `simulator` without `--listen`.
    pub listen: SocketAddr,
    /// Credentials accepted as HTTP Basic auth; each account has one device and sees only its
    /// own messages and webhooks.
    pub accounts: Vec<SimAccount>,
    /// Time a message spends in each of Pending, Processed and Sent before moving on.
    #[serde(with = "humantime_serde")]
    pub step_delay: Duration,
    /// Checked in order against the recipients of each new message; the first rule whose
    /// pattern matches any recipient decides the outcome. No match means delivered.
    pub rules: Vec<OutcomeRule>,
    /// Accept plain `http://` webhook URLs besides `https://`. The real API refuses them as
    /// phones deliver only over TLS, but the simulator runs next to a server without a
    /// certificate; `false` restores the real check.
    pub allow_http_webhooks: bool,
    pub webhooks: WebhookDeliveryConfig,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            mode: Personality::default(),
            listen: ([127, 0, 0, 1], 3100).into(),
            accounts: vec![SimAccount {
                username: "demo".into(),
                password: "demo1234".into(),
                signing_key: None,
            }],
            step_delay: Duration::from_secs(1),
            rules: Vec::new(),
            allow_http_webhooks: true,
            webhooks: WebhookDeliveryConfig::default(),
        }
    }
}

/// The SMSGate API a simulator stands in for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Personality {
    /// The Cloud (or Private) server's 3rd-party API, which relays to phones.
    #[default]
    Cloud,
    /// The API the Android app serves itself in Local mode at `http://<phone-ip>:8080/`.
    Local,
}

impl Personality {
    /// Where the personality's API starts below the simulator's address: a gateway base URL is
    /// `http://{addr}{api_prefix}`.
    pub fn api_prefix(self) -> &'static str {
        match self {
            Self::Cloud => "/3rdparty/v1",
            Self::Local => "",
        }
    }

    /// Times in API answers: the cloud's Go encoder writes every fraction digit, the phone's
    /// Gson milliseconds and an offset.
    fn format_time(self, at: DateTime<Utc>) -> String {
        match self {
            Self::Cloud => state::rfc3339(at),
            Self::Local => state::phone_time(at),
        }
    }
}

/// As the configuration spells it.
impl fmt::Display for Personality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cloud => "cloud",
            Self::Local => "local",
        })
    }
}

#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimAccount {
    pub username: String,
    pub password: String,
    /// Key of the `X-Signature` HMAC on this account's webhook calls, like the app's
    /// Settings → Webhooks → Signing Key; without one the calls are unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
}

/// Configurations get logged; the password and signing key must not end up in logs.
impl fmt::Debug for SimAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimAccount")
            .field("username", &self.username)
            .field("password", &"********")
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "********"),
            )
            .finish()
    }
}

/// How webhook calls are retried. The app retries for about two days (10 s doubling, 14
/// retries); the defaults here give up within a minute, which suits local runs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookDeliveryConfig {
    /// Extra attempts after a failed one (non-2xx answer, connection error or timeout).
    pub retries: u32,
    /// Wait before the first retry; each further retry waits twice as long as the one before.
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    /// Time one attempt may take; the app allows 30 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for WebhookDeliveryConfig {
    fn default() -> Self {
        Self {
            retries: 5,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRule {
    /// Regular expression searched (not anchored) in the E.164 phone number, e.g. `^\+1555`.
    pub pattern: String,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// Pending → Processed → Sent → Delivered; a request with `withDeliveryReport: false`
    /// stays Sent, as the phone never learns more.
    Deliver,
    /// Pending → Processed → Sent → Failed, with `reason` as each recipient's error.
    Fail { reason: String },
    /// `POST /messages` answers `status` with `{"message": message}` and stores nothing.
    Reject { status: u16, message: String },
    /// The message is accepted at once but the answer comes only after `delay`: the ambiguous
    /// case where a client times out although the gateway has the message.
    Stall {
        #[serde(with = "humantime_serde")]
        delay: Duration,
    },
}

impl SimulatorConfig {
    /// Checks what serde cannot; the error names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.accounts.is_empty() {
            return Err("simulator.accounts: at least one account is required".into());
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, account) in self.accounts.iter().enumerate() {
            let key = format!("simulator.accounts[{i}]");
            if account.username.is_empty() {
                return Err(format!("{key}.username: must not be empty"));
            }
            // HTTP Basic auth splits "username:password" at the first colon.
            if account.username.contains(':') {
                return Err(format!("{key}.username: must not contain ':'"));
            }
            if account.password.is_empty() {
                return Err(format!("{key}.password: must not be empty"));
            }
            if account.signing_key.as_ref().is_some_and(String::is_empty) {
                return Err(format!(
                    "{key}.signing_key: must not be empty (leave it out for unsigned webhooks)"
                ));
            }
            if let Some(first) = seen.insert(&account.username, i) {
                return Err(format!(
                    "{key}.username: {:?} is already used by simulator.accounts[{first}]",
                    account.username
                ));
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let key = format!("simulator.rules[{i}]");
            if let Err(e) = Regex::new(&rule.pattern) {
                return Err(format!("{key}.pattern: {e}"));
            }
            if let Outcome::Reject { status, .. } = rule.outcome
                && !(400..=599).contains(&status)
            {
                return Err(format!(
                    "{key}.outcome.status: {status} is not an HTTP error status (400..=599)"
                ));
            }
        }
        if self.webhooks.timeout.is_zero() {
            return Err("simulator.webhooks.timeout: must be longer than 0s".into());
        }
        Ok(())
    }
}

/// The simulator's state, shared by every connection; cloning shares it too.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

impl Simulator {
    /// Expects a configuration that passed [`SimulatorConfig::validate`]; a rule whose pattern
    /// does not compile anyway is logged and never matches.
    pub fn new(config: SimulatorConfig) -> Self {
        let now = Utc::now();
        let accounts = config
            .accounts
            .into_iter()
            .map(|account| Account {
                username: account.username,
                password: account.password,
                signing_key: account.signing_key,
                device: Device::new(config.mode, now),
            })
            .collect::<Vec<_>>();
        let rules = config
            .rules
            .into_iter()
            .enumerate()
            .filter_map(|(i, rule)| match Regex::new(&rule.pattern) {
                Ok(regex) => Some((regex, rule.outcome)),
                Err(e) => {
                    tracing::error!("simulator.rules[{i}].pattern: {e}; the rule is ignored");
                    None
                }
            })
            .collect();
        let (closing, _) = watch::channel(false);
        Self {
            shared: Arc::new(Shared {
                personality: config.mode,
                store: Mutex::new(Store::new(accounts.len())),
                accounts,
                step: TimeDelta::from_std(config.step_delay).unwrap_or(TimeDelta::MAX),
                rules,
                allow_http_webhooks: config.allow_http_webhooks,
                http: events::http_client(config.webhooks.timeout),
                webhooks: config.webhooks,
                timeline_changed: Notify::new(),
                webhook_calls: Semaphore::new(WEBHOOK_CONCURRENCY),
                closing,
            }),
        }
    }

    /// The whole API: the personality's (under [`Personality::api_prefix`]) and
    /// `/simulator/v1/...`. Status webhooks fire only while [`Simulator::serve`] runs.
    pub fn router(&self) -> Router {
        routes::router(Arc::clone(&self.shared))
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish. Requests held
    /// back by a stall rule are answered at once then, so a long stall cannot block shutdown;
    /// webhook calls still waiting for an answer or a retry are dropped.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let announcer = tokio::spawn(events::announce_transitions(Arc::clone(&self.shared)));
        let shared = Arc::clone(&self.shared);
        let served = axum::serve(listener, self.router())
            .with_graceful_shutdown(async move {
                shutdown.await;
                shared.closing.send_replace(true);
            })
            .await;
        // Also when serving failed before any shutdown: the announcer must not outlive it.
        self.shared.closing.send_replace(true);
        let _ = announcer.await;
        served
    }
}

/// See `Shared::webhook_calls`.
const WEBHOOK_CONCURRENCY: usize = 32;

struct Shared {
    personality: Personality,
    accounts: Vec<Account>,
    step: TimeDelta,
    rules: Vec<(Regex, Outcome)>,
    store: Mutex<Store>,
    allow_http_webhooks: bool,
    webhooks: WebhookDeliveryConfig,
    /// One connection pool for every webhook call. A client that could not be built is kept as
    /// its error, reported with each attempt rather than failing the whole simulator.
    http: Result<reqwest::Client, String>,
    /// Webhook calls in progress at once. A phone posts from a small worker pool; without a
    /// bound, thousands of messages a second would open as many connections.
    webhook_calls: Semaphore,
    /// Woken when a message joins the timeline, which may move the next transition earlier.
    timeline_changed: Notify,
    /// Turns true when `serve` is shutting down; releases stalled requests and ends webhook
    /// delivery.
    closing: watch::Sender<bool>,
}

struct Account {
    username: String,
    password: String,
    signing_key: Option<String>,
    device: Device,
}

struct Device {
    id: String,
    created_at: DateTime<Utc>,
}

impl Device {
    fn new(personality: Personality, now: DateTime<Utc>) -> Self {
        match personality {
            Personality::Cloud => Self {
                id: state::new_id(),
                created_at: now,
            },
            // The phone's id encodes its install time to the millisecond, which it also reports
            // as the creation time.
            Personality::Local => {
                let installed_at =
                    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
                Self {
                    id: state::new_phone_id(installed_at),
                    created_at: installed_at,
                }
            }
        }
    }
}

impl Shared {
    /// The lock is never held across an await and the store has no invariant that a panic
    /// half-way could break badly, so a poisoned lock is used as is.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The index of the account whose HTTP Basic credentials the request carries.
    fn authenticate(&self, headers: &HeaderMap) -> Option<usize> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let (scheme, encoded) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = STANDARD.decode(encoded.trim()).ok()?;
        let (username, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        let index = self
            .accounts
            .iter()
            .position(|account| account.username == username)?;
        constant_time_eq(
            self.accounts[index].password.as_bytes(),
            password.as_bytes(),
        )
        .then_some(index)
    }

    /// The outcome of the first rule matching any of the numbers; `None` means deliver.
    fn outcome_for(&self, phone_numbers: &[String]) -> Option<&Outcome> {
        self.rules
            .iter()
            .find(|(regex, _)| phone_numbers.iter().any(|n| regex.is_match(n)))
            .map(|(_, outcome)| outcome)
    }
}

/// Compares without an early exit so the time taken does not reveal how much of a guessed
/// password was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}
