//! The endpoint the phone posts SMSGate webhook events to, and the queue statistics beside it.
//!
//! The phone retries every non-2xx answer for about two days, so the answers are chosen for
//! that: 2xx only once the event is on disk (or needs nothing), 503 when it should come back
//! later, 4xx with the reason when retrying cannot help.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::delivery::{Delivery, Refused, Taken};
use crate::metrics;
use delivery_store::QueueError;

pub fn router(delivery: Arc<Delivery>) -> Router {
    Router::new()
        .route("/api/smpp/v1/webhooks/{token}", post(take))
        .route("/api/smpp/v1/queue", get(queue_stats))
        .with_state(delivery)
}

async fn take(
    State(delivery): State<Arc<Delivery>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (timestamp, signature) = (header_text("x-timestamp"), header_text("x-signature"));
    let result = delivery
        .take_webhook(&token, &timestamp, &signature, &body)
        .await;
    let outcome = match &result {
        Ok(Taken::Queued(_)) => "queued",
        Ok(Taken::Duplicate) => "duplicate",
        Ok(Taken::Ignored(_)) => "ignored",
        Err(Refused::UnknownToken) => "unknown_token",
        Err(Refused::Signature(_)) => "bad_signature",
        Err(Refused::KeyUnknown) | Err(Refused::Queue(QueueError::Full)) => "retry_later",
        Err(Refused::Malformed(_)) => "malformed",
        Err(Refused::Queue(_)) => "error",
    };
    metrics::get().webhooks.with_label_values(&[outcome]).inc();
    match result {
        Ok(taken) => accepted(taken),
        Err(refused) => refusal(refused),
    }
}

fn accepted(taken: Taken) -> Response {
    let body = match taken {
        Taken::Queued(items) => {
            debug!(items, "webhook event queued");
            json!({ "status": "queued", "items": items })
        }
        Taken::Duplicate => json!({ "status": "duplicate" }),
        Taken::Ignored(reason) => {
            debug!(reason, "webhook event needs no deliver_sm");
            json!({ "status": "ignored", "reason": reason })
        }
    };
    (StatusCode::OK, Json(body)).into_response()
}

fn refusal(refused: Refused) -> Response {
    let reason = refused.to_string();
    let status = match &refused {
        Refused::UnknownToken => StatusCode::NOT_FOUND,
        Refused::Signature(_) => StatusCode::UNAUTHORIZED,
        Refused::Malformed(_) => StatusCode::BAD_REQUEST,
        Refused::KeyUnknown | Refused::Queue(QueueError::Full) => StatusCode::SERVICE_UNAVAILABLE,
        Refused::Queue(QueueError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        Refused::Queue(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status.is_server_error() {
        warn!(status = status.as_u16(), %reason, "webhook event not taken");
    } else {
        info!(status = status.as_u16(), %reason, "webhook call refused");
    }
    let mut response = (status, Json(json!({ "error": reason }))).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    }
    response
}

async fn queue_stats(State(delivery): State<Arc<Delivery>>) -> Response {
    match delivery.stats().await {
        Ok(stats) => {
            let accounts: Vec<_> = stats
                .iter()
                .map(|s| {
                    json!({
                        "account": s.account,
                        "items": s.items,
                        "bytes": s.bytes,
                        "oldest_seconds": s.oldest.as_secs(),
                        "dead_letters": s.dead_letters,
                    })
                })
                .collect();
            Json(json!({ "accounts": accounts })).into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}
