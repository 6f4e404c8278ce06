//! The server's state as the console and the JSON API show it: one snapshot, built on each
//! request from the session board, the delivery queue, the plugins and the activity samples.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Admin, failure};
use crate::activity::{self, GatewayFigures, Point};
use crate::recent_errors::{self, Logged};
use crate::session::board::Entry;
use delivery_store::AccountStats;

#[derive(Serialize)]
pub struct Status {
    pub server: Server,
    pub sessions: Vec<Session>,
    pub accounts: Vec<Account>,
    pub plugins: Vec<Plugin>,
    pub gateway: Gateway,
    pub throughput: Throughput,
    /// The last warnings and errors logged, newest first.
    pub errors: Vec<Logged>,
}

#[derive(Serialize)]
pub struct Server {
    pub version: &'static str,
    pub started_at: DateTime<Utc>,
    pub uptime_seconds: i64,
}

#[derive(Serialize)]
pub struct Session {
    pub id: u64,
    pub system_id: String,
    /// The SMSGate account it sends through: gateway URL and user (a token only by digest).
    pub smsgate_account: String,
    pub bind: &'static str,
    pub peer: String,
    pub tls: bool,
    pub since: DateTime<Utc>,
    pub in_flight: usize,
    pub awaiting_deliver_sm_resp: usize,
    pub submitted: u64,
    pub refused: u64,
    pub receipts: u64,
    pub incoming: u64,
}

/// An SMPP user that is bound or has deliveries waiting.
#[derive(Serialize)]
pub struct Account {
    pub system_id: String,
    pub smsgate_account: Option<String>,
    pub binds: usize,
    pub max_binds: Option<u32>,
    pub messages_per_second: Option<u32>,
    pub sim_number: Option<u8>,
    pub device_id: Option<String>,
    pub queue: Queue,
}

#[derive(Serialize, Default)]
pub struct Queue {
    pub items: usize,
    pub bytes: u64,
    pub oldest_seconds: u64,
    pub dead_letters: usize,
}

#[derive(Serialize)]
pub struct Plugin {
    pub file: String,
    pub name: String,
    pub version: String,
    pub contract: &'static str,
    pub order: i64,
    pub hooks: Vec<Hook>,
}

#[derive(Serialize)]
pub struct Hook {
    pub hook: &'static str,
    pub calls: u64,
    pub failures: u64,
    pub median_us: Option<f64>,
}

#[derive(Serialize)]
pub struct Gateway {
    /// The figures cover this many seconds up to now (five minutes once the server has run
    /// that long).
    pub window_seconds: u64,
    pub operations: Vec<GatewayFigures>,
}

#[derive(Serialize)]
pub struct Throughput {
    pub interval_seconds: u64,
    /// Oldest first.
    pub points: Vec<Point>,
}

impl Admin {
    pub async fn status(&self) -> Result<Status, String> {
        let queue = self.delivery.stats().await.map_err(|e| e.to_string())?;
        let entries = self.board.list();
        let (window, operations) = activity::get().gateway();
        Ok(Status {
            server: Server {
                version: env!("CARGO_PKG_VERSION"),
                started_at: self.started,
                uptime_seconds: (Utc::now() - self.started).num_seconds(),
            },
            accounts: accounts(&entries, queue),
            sessions: entries.iter().map(|entry| session(entry)).collect(),
            plugins: self.plugins(),
            gateway: Gateway {
                window_seconds: window.as_secs(),
                operations,
            },
            throughput: Throughput {
                interval_seconds: activity::SAMPLE_EVERY.as_secs(),
                points: activity::get().throughput(),
            },
            errors: recent_errors::recent(),
        })
    }

    pub fn sessions(&self) -> Vec<Session> {
        self.board
            .list()
            .iter()
            .map(|entry| session(entry))
            .collect()
    }

    pub fn plugins(&self) -> Vec<Plugin> {
        let usage = self.plugins.usage();
        self.plugins
            .loaded()
            .into_iter()
            .map(|loaded| Plugin {
                hooks: usage
                    .iter()
                    .filter(|u| u.plugin == loaded.file)
                    .map(|u| Hook {
                        hook: u.hook,
                        calls: u.calls,
                        failures: u.failures,
                        median_us: u
                            .latencies
                            .quantile(0.5)
                            .map(|d| d.as_nanos() as f64 / 1000.0),
                    })
                    .collect(),
                file: loaded.file,
                name: loaded.name,
                version: loaded.version,
                contract: loaded.contract,
                order: loaded.order,
            })
            .collect()
    }
}

fn session(entry: &Entry) -> Session {
    let counts = entry.counts();
    Session {
        id: entry.id,
        system_id: entry.account.name.clone(),
        smsgate_account: entry.account.smsgate_account(),
        bind: entry.kind.as_str(),
        peer: entry.peer.to_string(),
        tls: entry.tls,
        since: entry.since,
        in_flight: entry.in_flight(),
        awaiting_deliver_sm_resp: entry.awaiting_deliver_sm_resp(),
        submitted: counts.submitted,
        refused: counts.refused,
        receipts: counts.receipts,
        incoming: counts.incoming,
    }
}

/// Bound users with their limits (the newest bind's, as the server applies them), and users
/// with a queue, bound or not.
fn accounts(entries: &[Arc<Entry>], queue: Vec<AccountStats>) -> Vec<Account> {
    let mut accounts: BTreeMap<String, Account> = BTreeMap::new();
    fn row<'a>(accounts: &'a mut BTreeMap<String, Account>, name: &str) -> &'a mut Account {
        accounts.entry(name.to_owned()).or_insert_with(|| Account {
            system_id: name.to_owned(),
            smsgate_account: None,
            binds: 0,
            max_binds: None,
            messages_per_second: None,
            sim_number: None,
            device_id: None,
            queue: Queue::default(),
        })
    }
    for entry in entries {
        let account = &entry.account;
        let row = row(&mut accounts, &account.name);
        row.binds += 1;
        row.smsgate_account = Some(account.smsgate_account());
        row.max_binds = account.max_binds;
        row.messages_per_second = account.messages_per_second;
        row.sim_number = account.sim_number;
        row.device_id = account.device_id.clone();
    }
    for stats in queue {
        row(&mut accounts, &stats.account).queue = Queue {
            items: stats.items,
            bytes: stats.bytes,
            oldest_seconds: stats.oldest.as_secs(),
            dead_letters: stats.dead_letters,
        };
    }
    accounts.into_values().collect()
}
pub async fn status(State(admin): State<Admin>) -> Response {
    match admin.status().await {
        Ok(status) => Json(status).into_response(),
        Err(reason) => failure(reason),
    }
}

pub async fn sessions(State(admin): State<Admin>) -> Response {
    Json(serde_json::json!({ "sessions": admin.sessions() })).into_response()
}

pub async fn plugins(State(admin): State<Admin>) -> Response {
    Json(serde_json::json!({ "plugins": admin.plugins() })).into_response()
}
