//! An in-process stand-in for the SMSGate 3rd-party REST API, so the server runs without an
//! SMSGate account and tests can provoke every gateway outcome.
//!
//! `/3rdparty/v1/...` answers like the real API (same status codes, bodies and validation):
//! `GET /devices`, `POST|GET /messages`, `GET|DELETE /messages/{id}`, `GET|POST /webhooks`,
//! `DELETE /webhooks/{id}` behind HTTP Basic auth, and `GET /health`. Configurable rules decide
//! per phone number whether a message is delivered, fails, is rejected with an HTTP error, or is
//! answered late. Deliberately stricter than the real gateway: phone numbers must be E.164.
//!
//! `/simulator/v1/...` (no auth) shows what the simulator received, for tests and for people
//! trying the server out: `GET /messages` (every accepted request with its current state),
//! `GET /requests` (counts per "METHOD /path STATUS") and `POST /reset`.
//!
//! A message's state is not driven by timers: it is a pure function of the time elapsed since it
//! was accepted (see [`state::Lifecycle`]), so thousands of messages cost no tasks.

mod routes;
mod state;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
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
use tokio::sync::watch;

use state::Store;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Credentials accepted as HTTP Basic auth; each account has one device and sees only its
    /// own messages and webhooks.
    pub accounts: Vec<SimAccount>,
    /// Time a message spends in each of Pending, Processed and Sent before moving on.
    #[serde(with = "duration_text")]
    pub step_delay: Duration,
    /// Checked in order against the recipients of each new message; the first rule whose
    /// pattern matches any recipient decides the outcome. No match means delivered.
    pub rules: Vec<OutcomeRule>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            accounts: vec![SimAccount {
                username: "demo".into(),
                password: "demo1234".into(),
            }],
            step_delay: Duration::from_secs(1),
            rules: Vec::new(),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimAccount {
    pub username: String,
    pub password: String,
}

/// Configurations get logged; the password must not end up in logs.
impl fmt::Debug for SimAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimAccount")
            .field("username", &self.username)
            .field("password", &"********")
            .finish()
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
        #[serde(with = "duration_text")]
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
                device: Device {
                    id: state::new_id(),
                    created_at: now,
                },
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
                store: Mutex::new(Store::new(accounts.len())),
                accounts,
                step: TimeDelta::from_std(config.step_delay).unwrap_or(TimeDelta::MAX),
                rules,
                closing,
            }),
        }
    }

    /// The whole API: `/3rdparty/v1/...` and `/simulator/v1/...`.
    pub fn router(&self) -> Router {
        routes::router(Arc::clone(&self.shared))
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish. Requests held
    /// back by a stall rule are answered at once then, so a long stall cannot block shutdown.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shared = Arc::clone(&self.shared);
        axum::serve(listener, self.router())
            .with_graceful_shutdown(async move {
                shutdown.await;
                shared.closing.send_replace(true);
            })
            .await
    }
}

struct Shared {
    accounts: Vec<Account>,
    step: TimeDelta,
    rules: Vec<(Regex, Outcome)>,
    store: Mutex<Store>,
    /// Turns true when `serve` is shutting down; releases stalled requests.
    closing: watch::Sender<bool>,
}

struct Account {
    username: String,
    password: String,
    device: Device,
}

struct Device {
    id: String,
    created_at: DateTime<Utc>,
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

/// Durations as humantime text ("500ms", "2s"); a bare integer counts as seconds, which is
/// what an environment variable like `SIMULATOR__STEP_DELAY=2` arrives as.
mod duration_text {
    use std::time::Duration;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(Duration::from_secs(s)),
            Raw::Text(s) => humantime::parse_duration(s.trim()).map_err(|e| {
                D::Error::custom(format!("{s:?} is not a duration like \"500ms\" ({e})"))
            }),
        }
    }

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*value).to_string())
    }
}
