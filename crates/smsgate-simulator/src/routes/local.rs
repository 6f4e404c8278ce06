//! The phone's own API, which the Android app serves at `http://<phone-ip>:8080/` in Local mode,
//! for servers that talk to a phone directly. Only what the phone does differently lives here:
//! its routes (legacy singular paths, no listing, no cancelling), Ktor's bare 401, 404 and 405,
//! its checks in its order and words, its dates, and webhooks without a device. Sending,
//! storing and calling the webhooks are shared with the cloud.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::{
    AccountId, ApiError, Body, DataRequest, Params, SendRequest, Submission, WebhookRequest,
    accept, authenticate, body, check_priority, check_unique, health_answer, params, parse, path,
    sim_slot, skip_phone_validation, webhook_target,
};
use crate::state::{Content, Webhook, WebhookEvent, new_id, phone_time};
use crate::{Personality, Shared};

/// The phone's answer (409) to an `id` it already has; the cloud words it in lower case.
pub(super) const DUPLICATE_ID: &str = "Message with the same ID already exists";

/// Ktor's Basic challenge with the realm the app configures.
const CHALLENGE: &str = "Basic realm=\"Access to SMS Gateway\", charset=UTF-8";

pub(super) fn api(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/device", get(list_devices))
        .route("/messages", post(send_message))
        .route("/message", post(send_message))
        .route("/messages/{id}", get(get_message))
        .route("/message/{id}", get(get_message))
        .route("/webhooks", get(list_webhooks).post(add_webhook))
        .route("/webhook", get(list_webhooks).post(add_webhook))
        .route("/webhooks/{id}", delete(delete_webhook))
        .route("/webhook/{id}", delete(delete_webhook))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(shared),
            authenticate,
        ))
        // Added after the auth layer: health checks carry no credentials.
        .route("/health", get(health))
        // Ktor resolves the route before authenticating, and answers a miss with a bare status.
        .method_not_allowed_fallback(|| async { StatusCode::METHOD_NOT_ALLOWED })
        .fallback(|| async { StatusCode::NOT_FOUND })
}

/// Ktor's answer to missing or wrong credentials: the challenge and no body.
pub(super) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(CHALLENGE),
        )],
    )
        .into_response()
}

/// A healthy phone, with the values of the app's documented example.
async fn health() -> Json<Value> {
    let check = |description: &str, unit: &str, value: u32| {
        json!({
            "description": description,
            "observedUnit": unit,
            "observedValue": value,
            "status": "pass",
        })
    };
    health_answer(json!({
        "messages:failed": check("Failed messages for last hour", "messages", 0),
        "connection:status": check("Internet connection status", "boolean", 1),
        "connection:transport": check("Network transport type", "flags", 4),
        "connection:cellular": check("Cellular network type", "index", 0),
        "battery:level": check("Battery level in percent", "percent", 94),
        "battery:charging": check("Is the phone charging?", "flags", 4),
    }))
}

async fn list_devices(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
) -> Json<Value> {
    let device = &shared.accounts[account].device;
    // The phone has no record of its updates: it reports the time of asking for both.
    let now = phone_time(Utc::now());
    Json(json!([{
        "id": device.id,
        "name": "Simulator",
        "createdAt": phone_time(device.created_at),
        "updatedAt": now,
        "lastSeen": now,
    }]))
}

/// `POST /messages` and the legacy `POST /message`.
async fn send_message(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
    query: Params,
    request: Body,
) -> Result<Response, ApiError> {
    let skip_phone_validation = skip_phone_validation(&params(query)?)?;
    let request = body(request)?;
    let now = Utc::now();
    let own_id = &shared.accounts[account].device.id;
    let submission = parse::<SendRequest>(&request)?.validate_on_phone(now, own_id)?;
    let state = accept(
        &shared,
        account,
        submission,
        skip_phone_validation,
        request,
        now,
    )
    .await?;
    // Unlike the cloud, the phone gives no Location.
    Ok((StatusCode::ACCEPTED, Json(state)).into_response())
}

const EXPIRED: &str = "message already expired";

impl SendRequest {
    /// The phone's checks in its order and words, with the simulator's own limits where the
    /// phone states none (three SIMs, numbers given once, a priority that fits the phone's
    /// byte, data that is base64). Gson reads an empty legacy `message` as given.
    fn validate_on_phone(self, now: DateTime<Utc>, own_id: &str) -> Result<Submission, ApiError> {
        if self.device_id.as_ref().is_some_and(|id| id != own_id) {
            return Err(ApiError::bad_request("Invalid device ID"));
        }
        let content = match (self.message, self.text_message, self.data_message) {
            (Some(text), None, None) => Content::Text(text),
            (None, Some(text), None) => Content::Text(text.text.unwrap_or_default()),
            (None, None, Some(data)) => data_on_phone(data)?,
            (None, None, None) => {
                return Err(ApiError::bad_request(
                    "Must specify exactly one of: textMessage, dataMessage, mmsMessage, or message",
                ));
            }
            _ => {
                return Err(ApiError::bad_request(
                    "Cannot specify multiple message types simultaneously",
                ));
            }
        };
        if matches!(&content, Content::Text(text) if text.is_empty()) {
            return Err(ApiError::bad_request("Text message is empty"));
        }
        let phone_numbers = self.phone_numbers.unwrap_or_default();
        if phone_numbers.is_empty() {
            return Err(ApiError::bad_request("phoneNumbers is empty"));
        }
        let sim_number = match self.sim_number {
            Some(number) if number < 1 => {
                return Err(ApiError::bad_request("simNumber must be >= 1"));
            }
            number => number.map(sim_slot).transpose()?,
        };
        check_unique(&phone_numbers)?;
        check_priority(self.priority)?;
        // Counted from now, with no minimum; a TTL too large to represent never runs out.
        let expires_at = match (self.ttl, self.valid_until) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request("fields conflict: ttl and validUntil"));
            }
            (Some(ttl), None) if ttl < 0 => return Err(ApiError::bad_request(EXPIRED)),
            (Some(ttl), None) => {
                TimeDelta::try_seconds(ttl).and_then(|ttl| now.checked_add_signed(ttl))
            }
            (None, valid_until) => valid_until.map(|t| t.to_utc()),
        };
        if expires_at.is_some_and(|expires_at| expires_at < now) {
            return Err(ApiError::bad_request(EXPIRED));
        }
        let schedule_at = self.schedule_at.map(|t| t.to_utc());
        if schedule_at.is_some_and(|schedule_at| schedule_at <= now) {
            return Err(ApiError::bad_request("scheduleAt must be in the future"));
        }
        Ok(Submission {
            id: self.id.filter(|id| !id.is_empty()),
            device_id: self.device_id,
            content,
            phone_numbers,
            sim_number,
            is_encrypted: self.is_encrypted.unwrap_or(false),
            with_delivery_report: self.with_delivery_report.unwrap_or(true),
            expires_at,
            schedule_at,
        })
    }
}

/// Gson leaves an absent port at 0, which the phone takes. The phone decodes the data only when
/// sending and fails the message if it is not base64; the simulator refuses such data up front.
fn data_on_phone(request: DataRequest) -> Result<Content, ApiError> {
    let port = u16::try_from(request.port.unwrap_or(0))
        .map_err(|_| ApiError::bad_request("Port must be between 0 and 65535"))?;
    let data = request.data.unwrap_or_default();
    if data.is_empty() {
        return Err(ApiError::bad_request("Data message cannot be empty"));
    }
    if STANDARD.decode(&data).is_err() {
        return Err(ApiError::bad_request("dataMessage.data: must be base64"));
    }
    Ok(Content::Data { data, port })
}

/// `GET /messages/{id}` and the legacy `GET /message/{id}`.
async fn get_message(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path(id)?;
    let store = shared.store();
    let Some(message) = store.get(account, &id) else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let snapshot = message.lifecycle.snapshot(Utc::now());
    Ok(Json(message.to_state(snapshot, false, Personality::Local)).into_response())
}

/// The phone's webhooks carry no device and say which of its APIs registered them.
fn webhook_json(webhook: &Webhook) -> Value {
    json!({
        "id": webhook.id,
        "url": webhook.url,
        "event": webhook.event,
        "source": "Local",
    })
}

async fn list_webhooks(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
) -> Json<Vec<Value>> {
    Json(
        shared
            .store()
            .webhooks(account)
            .iter()
            .map(webhook_json)
            .collect(),
    )
}

/// The app takes https, and plain http only to a receiver on the phone itself; like its
/// insecure builds, `allow_http_webhooks` lets any http through.
fn is_phone_webhook_url(url: &str, allow_http: bool) -> bool {
    webhook_target(url).is_some_and(|(https, authority)| {
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let host = host.rsplit_once(':').map_or(host, |(host, _)| host);
        https || allow_http || host == "127.0.0.1"
    })
}

/// Creates or, for a known id, replaces. A `deviceId` in the request is ignored: the phone
/// registers every webhook for itself.
async fn add_webhook(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
    request: Body,
) -> Result<Response, ApiError> {
    let request: WebhookRequest = parse(&body(request)?)?;
    let url = request.url.unwrap_or_default();
    if !is_phone_webhook_url(&url, shared.allow_http_webhooks) {
        return Err(ApiError::bad_request(
            "url must start with https:// or http://127.0.0.1",
        ));
    }
    let event = request
        .event
        .as_deref()
        .and_then(WebhookEvent::parse)
        .ok_or_else(|| ApiError::bad_request("Unsupported event"))?;
    let webhook = Webhook {
        id: request
            .id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(new_id),
        device_id: None,
        url,
        event,
    };
    let answer = webhook_json(&webhook);
    shared.store().upsert_webhook(account, webhook);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// The phone deletes without looking first, so an unknown id is no error.
async fn delete_webhook(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = path(id)?;
    shared.store().remove_webhook(account, &id);
    Ok(StatusCode::NO_CONTENT)
}
