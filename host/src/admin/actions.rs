//! What an operator may change from the console or the API: disconnect a session, reload the
//! plugins, retry or drop an account's dead letters. Each action is logged with who asked (the
//! admin client's address) and what it did, at info, so the log is the audit trail.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use tracing::info;

use super::{Admin, failure};

/// Dead letters listed at most per account; retry and drop take them all.
const LISTED: usize = 100;

/// The outcome of an action, for the JSON answer and the console's notice.
pub struct Done {
    pub status: StatusCode,
    pub body: serde_json::Value,
    /// One sentence for the console.
    pub notice: String,
}

impl IntoResponse for Done {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl Admin {
    pub fn disconnect(&self, id: u64, by: SocketAddr) -> Done {
        match self.board.disconnect(id) {
            Some(entry) => {
                info!(
                    action = "disconnect",
                    %by,
                    session = id,
                    system_id = %entry.account.name,
                    peer = %entry.peer,
                    "admin action: the session is sent unbind"
                );
                Done {
                    status: StatusCode::ACCEPTED,
                    body: json!({ "session": id, "state": "unbinding" }),
                    notice: format!(
                        "Session {id} ({}, {}) is being unbound.",
                        entry.account.name, entry.peer
                    ),
                }
            }
            None => not_found(format!("no bound session has id {id}")),
        }
    }

    /// Loading compiles the plugins, seconds of CPU; it runs off the async workers.
    pub async fn reload_plugins(&self, by: SocketAddr) -> Done {
        let plugins = std::sync::Arc::clone(&self.plugins);
        let reloaded = tokio::task::spawn_blocking(move || plugins.reload())
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the reload stopped: {e}")));
        match reloaded {
            Ok(()) => {
                let names = self.plugins.names();
                info!(action = "reload_plugins", %by, plugins = ?names, "admin action: plugins reloaded");
                Done {
                    status: StatusCode::OK,
                    notice: format!("Plugins reloaded: {} loaded.", names.len()),
                    body: json!({ "plugins": names }),
                }
            }
            Err(e) => {
                let reason = format!("{e:#}");
                info!(action = "reload_plugins", %by, %reason, "admin action: reload refused, the loaded plugins stay");
                Done {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    notice: format!("Reload refused, the loaded plugins stay: {reason}"),
                    body: json!({ "error": reason }),
                }
            }
        }
    }

    pub async fn retry_dead_letters(&self, account: &str, by: SocketAddr) -> Done {
        match self.delivery.retry_dead_letters(account).await {
            Ok(moved) => {
                info!(action = "retry_dead_letters", %by, account, moved, "admin action: dead letters queued again");
                Done {
                    status: StatusCode::OK,
                    notice: format!("{moved} dead letters of {account} queued again."),
                    body: json!({ "account": account, "moved": moved }),
                }
            }
            Err(e) => store_failure(e),
        }
    }

    pub async fn drop_dead_letters(&self, account: &str, by: SocketAddr) -> Done {
        match self.delivery.drop_dead_letters(account).await {
            Ok(dropped) => {
                info!(action = "drop_dead_letters", %by, account, dropped, "admin action: dead letters dropped");
                Done {
                    status: StatusCode::OK,
                    notice: format!("{dropped} dead letters of {account} dropped."),
                    body: json!({ "account": account, "dropped": dropped }),
                }
            }
            Err(e) => store_failure(e),
        }
    }
}

fn not_found(reason: String) -> Done {
    Done {
        status: StatusCode::NOT_FOUND,
        notice: reason.clone(),
        body: json!({ "error": reason }),
    }
}

fn store_failure(e: delivery_store::QueueError) -> Done {
    let reason = e.to_string();
    Done {
        status: StatusCode::SERVICE_UNAVAILABLE,
        notice: format!("The delivery store failed: {reason}"),
        body: json!({ "error": reason }),
    }
}

#[derive(Serialize)]
struct DeadLetter {
    seq: u64,
    event_id: String,
    status: String,
    reason: String,
    dead_lettered_at: chrono::DateTime<chrono::Utc>,
    attempts: u32,
    bytes: usize,
}

pub async fn list_dead_letters(
    State(admin): State<Admin>,
    Path(account): Path<String>,
) -> Response {
    match admin.delivery.dead_letters(&account, LISTED).await {
        Ok(letters) => {
            let letters: Vec<_> = letters
                .into_iter()
                .map(|letter| DeadLetter {
                    seq: letter.seq,
                    event_id: letter.event_id,
                    status: smpp_codec::status::CommandStatus(letter.status)
                        .name()
                        .to_owned(),
                    reason: letter.reason,
                    dead_lettered_at: letter.dead_lettered_at.into(),
                    attempts: letter.attempts,
                    bytes: letter.payload_len,
                })
                .collect();
            Json(json!({ "account": account, "dead_letters": letters })).into_response()
        }
        Err(e) => failure(e.to_string()),
    }
}

pub async fn disconnect(
    State(admin): State<Admin>,
    ConnectInfo(by): ConnectInfo<SocketAddr>,
    Path(id): Path<u64>,
) -> Done {
    admin.disconnect(id, by)
}

pub async fn reload_plugins(
    State(admin): State<Admin>,
    ConnectInfo(by): ConnectInfo<SocketAddr>,
) -> Done {
    admin.reload_plugins(by).await
}

pub async fn retry_dead_letters(
    State(admin): State<Admin>,
    ConnectInfo(by): ConnectInfo<SocketAddr>,
    Path(account): Path<String>,
) -> Done {
    admin.retry_dead_letters(&account, by).await
}

pub async fn drop_dead_letters(
    State(admin): State<Admin>,
    ConnectInfo(by): ConnectInfo<SocketAddr>,
    Path(account): Path<String>,
) -> Done {
    admin.drop_dead_letters(&account, by).await
}
