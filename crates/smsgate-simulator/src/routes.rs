//! The HTTP side: the cloud's 3rd-party API under `/3rdparty/v1` (or the phone's at the root,
//! see `local.rs`) and the inspection API under `/simulator/v1`. Every cloud error answers
//! `{"message": "..."}` like the real gateway, including the ones axum would otherwise answer
//! in plain text.

mod local;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::events::{self, Incoming, Received};
use super::state::{
    Content, DeliveryAttempt, Duplicate, Ending, Lifecycle, Message, MessageState, NotPending,
    ProcessingState, Schedule, Webhook, WebhookEvent, new_id, rfc3339,
};
use super::{Outcome, Personality, Shared};

/// Limits of the real API's request validation.
const MAX_ID_LEN: usize = 36;
const MAX_DEVICE_ID_LEN: usize = 21;
const MAX_TEXT_LEN: usize = 65535;
const MAX_RECIPIENTS: usize = 100;
const MAX_PHONE_LEN: usize = 128;
const MIN_TTL_SECONDS: i64 = 5;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    let api = match shared.personality {
        Personality::Cloud => Router::new()
            .nest(Personality::Cloud.api_prefix(), cloud_api(&shared))
            .fallback(not_found),
        Personality::Local => local::api(&shared),
    };
    let inspection = Router::new()
        .route("/messages", get(inspect_messages))
        .route("/requests", get(inspect_requests))
        .route("/webhook-deliveries", get(inspect_webhook_deliveries))
        .route("/inbox", post(receive_sms))
        .route("/reset", post(reset))
        .method_not_allowed_fallback(method_not_allowed);
    api.layer(middleware::from_fn_with_state(
        Arc::clone(&shared),
        count_requests,
    ))
    // Added after the counting layer: looking at the counters must not change them.
    .nest("/simulator/v1", inspection)
    .with_state(shared)
}

fn cloud_api(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/devices", get(list_devices))
        .route("/messages", get(list_messages).post(send_message))
        .route("/messages/{id}", get(get_message).delete(cancel_message))
        .route("/webhooks", get(list_webhooks).post(add_webhook))
        .route("/webhooks/{id}", delete(delete_webhook))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(shared),
            authenticate,
        ))
        // Added after the auth layer: health checks carry no credentials.
        .route("/health", get(health))
        .method_not_allowed_fallback(method_not_allowed)
}

/// The authenticated account, as an index into `Shared::accounts`.
#[derive(Clone, Copy)]
struct AccountId(usize);

struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "message": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"SMSGate simulator\""),
            );
        }
        response
    }
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;
type Body = Result<Json<Value>, JsonRejection>;

/// Query parameters with an empty value count as absent, like the real server's parser.
fn params(params: Params) -> Result<HashMap<String, String>, ApiError> {
    let Query(mut params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    params.retain(|_, value| !value.is_empty());
    Ok(params)
}

/// Malformed JSON and a wrong content type are client errors (400), not axum's 415/422.
fn body(body: Body) -> Result<Value, ApiError> {
    match body {
        Ok(Json(value)) => Ok(value),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::new(e.status(), e.body_text()))
        }
        Err(e) => Err(ApiError::bad_request(e.body_text())),
    }
}

/// Unknown fields are ignored, as Go's JSON decoder does.
fn parse<T: DeserializeOwned>(value: &Value) -> Result<T, ApiError> {
    T::deserialize(value).map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

fn path(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// The spellings Go's `strconv.ParseBool` accepts.
fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{name}: {value:?} is not a boolean"
        ))),
    }
}

fn parse_number<T: FromStr>(name: &str, value: &str) -> Result<T, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{name}: {value:?} is not a valid number")))
}

fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.to_utc())
        .map_err(|e| {
            ApiError::bad_request(format!("{name}: {value:?} is not an RFC 3339 time ({e})"))
        })
}

async fn authenticate(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    match shared.authenticate(request.headers()) {
        Some(account) => {
            request.extensions_mut().insert(AccountId(account));
            next.run(request).await
        }
        None => match shared.personality {
            Personality::Cloud => ApiError::unauthorized().into_response(),
            Personality::Local => local::unauthorized(),
        },
    }
}

/// Counts "METHOD /path STATUS" with the route's template as path (`/messages/{id}`), relative
/// to the API base, so tests can assert how often the server called each endpoint.
async fn count_requests(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| request.uri().path(), MatchedPath::as_str);
    let path = path
        .strip_prefix(shared.personality.api_prefix())
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(path);
    let endpoint = format!("{} {path}", request.method());
    let response = next.run(request).await;
    shared
        .store()
        .count_request(format!("{endpoint} {}", response.status().as_u16()));
    response
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("Cannot {method} {}", uri.path()),
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// The simulator's own version in the shape of the real health answers; a server tells the
/// cloud from a phone by the names of the checks.
fn health_answer(checks: Value) -> Json<Value> {
    Json(json!({
        "status": "pass",
        "version": env!("CARGO_PKG_VERSION"),
        "releaseId": RELEASE_ID,
        "checks": checks,
    }))
}

/// The build number that goes with the version, as both APIs report one.
const RELEASE_ID: u32 = 1;

async fn health() -> Json<Value> {
    health_answer(json!({
        "db:ping": {
            "description": "Failed sequential pings count",
            "observedValue": 0,
            "status": "pass",
        },
    }))
}

async fn list_devices(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
) -> Json<Value> {
    let device = &shared.accounts[account].device;
    let created_at = rfc3339(device.created_at);
    // The simulated phone is always online.
    Json(json!([{
        "id": device.id,
        "name": "Simulator",
        "createdAt": created_at,
        "updatedAt": created_at,
        "lastSeen": rfc3339(Utc::now()),
    }]))
}

/// `POST /messages` as the real API declares it. Strings default to empty and empty means
/// absent, as with Go's `omitempty`; numbers are read wide so that range errors get a clear
/// message instead of a decoding error.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendRequest {
    id: Option<String>,
    device_id: Option<String>,
    message: Option<String>,
    text_message: Option<TextRequest>,
    data_message: Option<DataRequest>,
    phone_numbers: Option<Vec<String>>,
    is_encrypted: Option<bool>,
    sim_number: Option<i64>,
    with_delivery_report: Option<bool>,
    priority: Option<i64>,
    ttl: Option<i64>,
    valid_until: Option<DateTime<FixedOffset>>,
    schedule_at: Option<DateTime<FixedOffset>>,
}

#[derive(Deserialize)]
struct TextRequest {
    text: Option<String>,
}

#[derive(Deserialize)]
struct DataRequest {
    data: Option<String>,
    port: Option<i64>,
}

/// A request that passed validation.
struct Submission {
    id: Option<String>,
    device_id: Option<String>,
    content: Content,
    phone_numbers: Vec<String>,
    sim_number: Option<u8>,
    is_encrypted: bool,
    with_delivery_report: bool,
    expires_at: Option<DateTime<Utc>>,
    schedule_at: Option<DateTime<Utc>>,
}

impl SendRequest {
    fn validate(self, now: DateTime<Utc>) -> Result<Submission, ApiError> {
        let id = self.id.filter(|id| !id.is_empty());
        if id
            .as_ref()
            .is_some_and(|id| id.chars().count() > MAX_ID_LEN)
        {
            return Err(ApiError::bad_request(format!(
                "id: must be at most {MAX_ID_LEN} characters"
            )));
        }
        let device_id = self.device_id.filter(|id| !id.is_empty());
        if device_id
            .as_ref()
            .is_some_and(|id| id.chars().count() > MAX_DEVICE_ID_LEN)
        {
            return Err(ApiError::bad_request(format!(
                "deviceId: must be at most {MAX_DEVICE_ID_LEN} characters"
            )));
        }
        let legacy_text = self.message.filter(|text| !text.is_empty());
        let content = match (legacy_text, self.text_message, self.data_message) {
            (Some(text), None, None) => Content::Text(check_text("message", text)?),
            (None, Some(text), None) => Content::Text(check_text(
                "textMessage.text",
                text.text.unwrap_or_default(),
            )?),
            (None, None, Some(data)) => check_data(data)?,
            _ => {
                return Err(ApiError::bad_request(
                    "must specify exactly one of: textMessage or dataMessage",
                ));
            }
        };
        let phone_numbers = self.phone_numbers.unwrap_or_default();
        if !(1..=MAX_RECIPIENTS).contains(&phone_numbers.len()) {
            return Err(ApiError::bad_request(format!(
                "phoneNumbers: must hold 1 to {MAX_RECIPIENTS} numbers"
            )));
        }
        if phone_numbers
            .iter()
            .any(|n| n.is_empty() || n.chars().count() > MAX_PHONE_LEN)
        {
            return Err(ApiError::bad_request(format!(
                "phoneNumbers: each must be 1 to {MAX_PHONE_LEN} characters"
            )));
        }
        check_unique(&phone_numbers)?;
        let sim_number = self.sim_number.map(sim_slot).transpose()?;
        check_priority(self.priority)?;
        let valid_until = self.valid_until.map(|t| t.to_utc());
        let expires_at = match (self.ttl, valid_until) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "conflicting fields: ttl and validUntil",
                ));
            }
            (Some(ttl), None) if ttl < MIN_TTL_SECONDS => {
                return Err(ApiError::bad_request(format!(
                    "ttl: must be at least {MIN_TTL_SECONDS} seconds"
                )));
            }
            // A TTL too large to represent never runs out.
            (Some(ttl), None) => {
                TimeDelta::try_seconds(ttl).and_then(|ttl| now.checked_add_signed(ttl))
            }
            (None, valid_until) => valid_until,
        };
        let schedule_at = self.schedule_at.map(|t| t.to_utc());
        if let Some(schedule_at) = schedule_at {
            if schedule_at <= now {
                return Err(ApiError::bad_request("scheduleAt must be in the future"));
            }
            if valid_until.is_some_and(|valid_until| schedule_at > valid_until) {
                return Err(ApiError::bad_request(
                    "scheduleAt must not be after validUntil",
                ));
            }
        }
        Ok(Submission {
            id,
            device_id,
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

/// The cloud refuses a number given twice; the phone keys its recipients by number and cannot
/// store one twice either.
fn check_unique(phone_numbers: &[String]) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    if phone_numbers.iter().all(|n| seen.insert(n)) {
        Ok(())
    } else {
        Err(ApiError::bad_request("phone numbers must be unique"))
    }
}

fn check_priority(priority: Option<i64>) -> Result<(), ApiError> {
    if priority.is_some_and(|p| !(-128..=127).contains(&p)) {
        return Err(ApiError::bad_request(
            "priority: must be between -128 and 127",
        ));
    }
    Ok(())
}

fn sim_slot(number: i64) -> Result<u8, ApiError> {
    u8::try_from(number)
        .ok()
        .filter(|n| (1..=3).contains(n))
        .ok_or_else(|| ApiError::bad_request("simNumber: must be between 1 and 3"))
}

fn check_text(field: &str, text: String) -> Result<String, ApiError> {
    if text.is_empty() || text.chars().count() > MAX_TEXT_LEN {
        return Err(ApiError::bad_request(format!(
            "{field}: must be 1 to {MAX_TEXT_LEN} characters"
        )));
    }
    Ok(text)
}

fn check_data(request: DataRequest) -> Result<Content, ApiError> {
    let data = request.data.unwrap_or_default();
    let decoded_len = STANDARD.decode(&data).map_or(0, |bytes| bytes.len());
    if decoded_len == 0 || data.len() > MAX_TEXT_LEN {
        return Err(ApiError::bad_request(format!(
            "dataMessage.data: must be base64 of 1 to {MAX_TEXT_LEN} characters"
        )));
    }
    let port = request
        .port
        .and_then(|port| u16::try_from(port).ok())
        .filter(|port| *port != 0)
        .ok_or_else(|| ApiError::bad_request("dataMessage.port: must be between 1 and 65535"))?;
    Ok(Content::Data { data, port })
}

/// The real gateway reads numbers without a country code as Russian ones; the simulator
/// demands E.164 instead so that such numbers show up in tests rather than in production.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

async fn send_message(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
    query: Params,
    request: Body,
) -> Result<Response, ApiError> {
    let query = params(query)?;
    let skip_phone_validation = skip_phone_validation(&query)?;
    // Only checked: the simulated device is always active.
    if let Some(hours) = query.get("deviceActiveWithin") {
        parse_number::<u32>("deviceActiveWithin", hours)?;
    }
    let request = body(request)?;
    let now = Utc::now();
    let submission = parse::<SendRequest>(&request)?.validate(now)?;
    if submission
        .device_id
        .as_ref()
        .is_some_and(|id| *id != shared.accounts[account].device.id)
    {
        return Err(ApiError::bad_request(
            "failed to select device: record not found",
        ));
    }
    let state = accept(
        &shared,
        account,
        submission,
        skip_phone_validation,
        request,
        now,
    )
    .await?;
    let location = HeaderValue::try_from(format!(
        "{}/messages/{}",
        Personality::Cloud.api_prefix(),
        encode_path_segment(&state.id)
    ))
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to handle request",
        )
    })?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(state),
    )
        .into_response())
}

fn skip_phone_validation(query: &HashMap<String, String>) -> Result<bool, ApiError> {
    query
        .get("skipPhoneValidation")
        .map(|value| parse_bool("skipPhoneValidation", value))
        .transpose()
        .map(|skip| skip.unwrap_or(false))
}

/// What both personalities do with a valid request: the E.164 check, the outcome rules, storing
/// the message (`request` is its body as received) and holding the answer back for a stall.
async fn accept(
    shared: &Arc<Shared>,
    account: usize,
    submission: Submission,
    skip_phone_validation: bool,
    request: Value,
    now: DateTime<Utc>,
) -> Result<MessageState, ApiError> {
    // Encrypted numbers cannot be read, so the real gateway does not check them either.
    let check_phones = !skip_phone_validation && !submission.is_encrypted;
    if check_phones && submission.phone_numbers.iter().any(|n| !is_e164(n)) {
        return Err(ApiError::bad_request("invalid phone number"));
    }

    let outcome = shared.outcome_for(&submission.phone_numbers);
    let ending = match outcome {
        Some(Outcome::Reject { status, message }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            tracing::debug!(%status, "simulator rejects a message by rule");
            return Err(ApiError::new(status, message.clone()));
        }
        Some(Outcome::Fail { reason }) => Ending::Failed(reason.clone()),
        _ if submission.with_delivery_report => Ending::Delivered,
        _ => Ending::Sent,
    };
    let stall = match outcome {
        Some(Outcome::Stall { delay }) => Some(*delay),
        _ => None,
    };

    let (state, earlier) = {
        let mut store = shared.store();
        let id = match submission.id {
            Some(id) => id,
            None => loop {
                let id = new_id();
                if !store.contains(account, &id) {
                    break id;
                }
            },
        };
        let message = Message {
            account,
            id,
            device_id: shared.accounts[account].device.id.clone(),
            phone_numbers: submission.phone_numbers,
            content: submission.content,
            sim_number: submission.sim_number,
            is_encrypted: submission.is_encrypted,
            request,
            lifecycle: Lifecycle::new(Schedule {
                received_at: now,
                start_at: submission.schedule_at.unwrap_or(now),
                expires_at: submission.expires_at,
                step: shared.step,
                ending,
            }),
        };
        let next_due = store.next_due();
        let message = store.insert(message).map_err(|Duplicate| {
            let message = match shared.personality {
                Personality::Cloud => "message with the same ID already exists",
                Personality::Local => local::DUPLICATE_ID,
            };
            ApiError::new(StatusCode::CONFLICT, message)
        })?;
        let state = message.to_state(message.lifecycle.snapshot(now), false, shared.personality);
        // The webhook task sleeps until the earliest transition; waking it for every message
        // would cost a wake-up per submit under load, so only when the earliest one changed.
        (state, store.next_due() != next_due)
    };
    if earlier {
        shared.timeline_changed.notify_one();
    }
    tracing::debug!(id = %state.id, "simulator accepted a message");

    if let Some(delay) = stall {
        let mut closing = shared.closing.subscribe();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = closing.wait_for(|closing| *closing) => {}
        }
    }
    Ok(state)
}

/// Client-chosen ids may hold any character; everything outside RFC 3986's unreserved set is
/// percent-encoded, which also keeps the header value plain ASCII.
fn encode_path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

async fn list_messages(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
    query: Params,
) -> Result<Response, ApiError> {
    let mut limit = 50_usize;
    let mut offset = 0_usize;
    let mut state = None;
    let mut device_id = None;
    let mut from = None;
    let mut to = None;
    let mut include_content = false;
    let mut newest_first = true;
    for (name, value) in params(query)? {
        match name.as_str() {
            "limit" => {
                limit = parse_number(&name, &value)?;
                if !(1..=100).contains(&limit) {
                    return Err(ApiError::bad_request("limit: must be between 1 and 100"));
                }
            }
            "offset" => offset = parse_number(&name, &value)?,
            "state" => {
                state = Some(ProcessingState::parse(&value).ok_or_else(|| {
                    ApiError::bad_request(format!("state: {value:?} is not a message state"))
                })?);
            }
            "deviceId" => device_id = Some(value),
            "from" => from = Some(parse_time(&name, &value)?),
            "to" => to = Some(parse_time(&name, &value)?),
            "includeContent" => include_content = parse_bool(&name, &value)?,
            "sort" => {
                newest_first = match value.as_str() {
                    "-created_at" => true,
                    "created_at" => false,
                    _ => {
                        return Err(ApiError::bad_request(
                            "sort: must be created_at or -created_at",
                        ));
                    }
                };
            }
            // Like the real server: parameters it does not know are ignored.
            _ => {}
        }
    }

    let now = Utc::now();
    let store = shared.store();
    let mut matching: Vec<&Message> = store
        .messages()
        .filter(|m| m.account == account)
        .filter(|m| device_id.as_ref().is_none_or(|id| *id == m.device_id))
        .filter(|m| from.is_none_or(|from| m.lifecycle.received_at() >= from))
        .filter(|m| to.is_none_or(|to| m.lifecycle.received_at() < to))
        .filter(|m| state.is_none_or(|state| m.lifecycle.snapshot(now).state == state))
        .collect();
    if newest_first {
        matching.reverse();
    }
    let total = matching.len();
    let page: Vec<MessageState> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|m| {
            m.to_state(
                m.lifecycle.snapshot(now),
                include_content,
                shared.personality,
            )
        })
        .collect();
    Ok((
        [(HeaderName::from_static("x-total-count"), total.to_string())],
        Json(page),
    )
        .into_response())
}

fn message_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "message not found")
}

async fn get_message(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<MessageState>, ApiError> {
    let id = path(id)?;
    let store = shared.store();
    let message = store.get(account, &id).ok_or_else(message_not_found)?;
    Ok(Json(message.to_state(
        message.lifecycle.snapshot(Utc::now()),
        false,
        shared.personality,
    )))
}

async fn cancel_message(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<MessageState>, ApiError> {
    let id = path(id)?;
    let now = Utc::now();
    let (state, cancelled) = {
        let mut store = shared.store();
        let message = store.get_mut(account, &id).ok_or_else(message_not_found)?;
        let snapshot = message
            .lifecycle
            .cancel(now)
            .map_err(|NotPending| ApiError::new(StatusCode::CONFLICT, "message is not pending"))?;
        // The phone confirms at once (see `Lifecycle::cancel`), so the event is due now.
        (
            message.to_state(snapshot, false, shared.personality),
            events::transition_events(message, ProcessingState::Cancelled, now),
        )
    };
    for event in cancelled {
        events::dispatch(&shared, event);
    }
    Ok(Json(state))
}

async fn list_webhooks(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
) -> Json<Vec<Webhook>> {
    Json(shared.store().webhooks(account).to_vec())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookRequest {
    id: Option<String>,
    device_id: Option<String>,
    url: Option<String>,
    event: Option<String>,
}

/// Whether `url` is https, and its authority (host and port), when it is an http or https URL
/// a phone could call at all.
fn webhook_target(url: &str) -> Option<(bool, &str)> {
    if url.chars().any(char::is_whitespace) {
        return None;
    }
    let (https, rest) = match url.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, url.strip_prefix("http://")?),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    (!authority.is_empty()).then_some((https, authority))
}

/// Phones deliver webhooks only over TLS, so the real API refuses anything but https; plain
/// http is let through only when the configuration allows it.
fn is_webhook_url(url: &str, allow_http: bool) -> bool {
    webhook_target(url).is_some_and(|(https, _)| https || allow_http)
}

async fn add_webhook(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
    request: Body,
) -> Result<Response, ApiError> {
    let request: WebhookRequest = parse(&body(request)?)?;
    let id = request.id.filter(|id| !id.is_empty());
    if id
        .as_ref()
        .is_some_and(|id| id.chars().count() > MAX_ID_LEN)
    {
        return Err(ApiError::bad_request(format!(
            "id: must be at most {MAX_ID_LEN} characters"
        )));
    }
    let device_id = request.device_id.filter(|id| !id.is_empty());
    if device_id
        .as_ref()
        .is_some_and(|id| *id != shared.accounts[account].device.id)
    {
        return Err(ApiError::bad_request("deviceId: device not found"));
    }
    let url = request.url.unwrap_or_default();
    if !is_webhook_url(&url, shared.allow_http_webhooks) {
        let schemes = if shared.allow_http_webhooks {
            "an http:// or https://"
        } else {
            "an https://"
        };
        return Err(ApiError::bad_request(format!("url: must be {schemes} URL")));
    }
    let event = request.event.unwrap_or_default();
    let event = WebhookEvent::parse(&event).ok_or_else(|| {
        let known: Vec<_> = WebhookEvent::ALL.iter().map(|e| e.as_str()).collect();
        ApiError::bad_request(format!(
            "event: {event:?} is not one of {}",
            known.join(", ")
        ))
    })?;
    let webhook = Webhook {
        id: id.unwrap_or_else(new_id),
        device_id,
        url,
        event,
    };
    shared.store().upsert_webhook(account, webhook.clone());
    Ok((StatusCode::CREATED, Json(webhook)).into_response())
}

async fn delete_webhook(
    State(shared): State<Arc<Shared>>,
    Extension(AccountId(account)): Extension<AccountId>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = path(id)?;
    if shared.store().remove_webhook(account, &id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "webhook not found"))
    }
}

async fn inspect_messages(State(shared): State<Arc<Shared>>) -> Json<Vec<Value>> {
    let now = Utc::now();
    let store = shared.store();
    Json(
        store
            .messages()
            .map(|m| {
                let state = m.to_state(m.lifecycle.snapshot(now), false, shared.personality);
                json!({
                    "id": m.id,
                    "account": shared.accounts[m.account].username,
                    "receivedAt": rfc3339(m.lifecycle.received_at()),
                    "state": state.state,
                    "messageState": state,
                    "request": m.request,
                })
            })
            .collect(),
    )
}

async fn inspect_requests(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!(shared.store().requests()))
}

async fn inspect_webhook_deliveries(
    State(shared): State<Arc<Shared>>,
) -> Json<Vec<DeliveryAttempt>> {
    Json(shared.store().deliveries().cloned().collect())
}

/// An SMS for the simulated phone to receive.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InboxRequest {
    account: Option<String>,
    from: Option<String>,
    to: Option<String>,
    text: Option<String>,
    /// Base64.
    data: Option<String>,
    sim_number: Option<i64>,
}

/// `POST /simulator/v1/inbox`: the account's phone receives an SMS and fires `sms:received`
/// (text) or `sms:data-received` (data) at the account's webhooks. The account is named in the
/// body or given by HTTP Basic credentials, which are checked when present.
async fn receive_sms(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    let request: InboxRequest = parse(&body(request)?)?;
    let named = request.account.filter(|name| !name.is_empty());
    let account = if headers.contains_key(header::AUTHORIZATION) {
        let account = shared
            .authenticate(&headers)
            .ok_or_else(ApiError::unauthorized)?;
        if named
            .as_ref()
            .is_some_and(|name| *name != shared.accounts[account].username)
        {
            return Err(ApiError::bad_request(
                "account: does not match the credentials",
            ));
        }
        account
    } else {
        let name = named.ok_or_else(|| {
            ApiError::bad_request("account: required (or HTTP Basic credentials)")
        })?;
        shared
            .accounts
            .iter()
            .position(|account| account.username == name)
            .ok_or_else(|| {
                ApiError::bad_request(format!("account: {name:?} is not a simulator account"))
            })?
    };
    let sender = request.from.unwrap_or_default();
    if sender.is_empty() || sender.chars().count() > MAX_PHONE_LEN {
        return Err(ApiError::bad_request(format!(
            "from: must be 1 to {MAX_PHONE_LEN} characters"
        )));
    }
    let content = match (
        request.text.filter(|text| !text.is_empty()),
        request.data.filter(|data| !data.is_empty()),
    ) {
        (Some(text), None) => Incoming::Text(check_text("text", text)?),
        (None, Some(data)) => {
            if data.len() > MAX_TEXT_LEN || STANDARD.decode(&data).is_err() {
                return Err(ApiError::bad_request(format!(
                    "data: must be base64 of 1 to {MAX_TEXT_LEN} characters"
                )));
            }
            Incoming::Data(data)
        }
        _ => {
            return Err(ApiError::bad_request(
                "must specify exactly one of: text or data",
            ));
        }
    };
    let sim_number = request.sim_number.map(sim_slot).transpose()?.unwrap_or(1);
    let event = events::received_event(Received {
        account,
        sender,
        recipient: request.to.filter(|to| !to.is_empty()),
        sim_number,
        content,
        at: Utc::now(),
    });
    let (id, kind, message_id) = (
        event.id.clone(),
        event.kind,
        event.payload["messageId"].clone(),
    );
    let webhooks = events::dispatch(&shared, event);
    let answer = json!({ "id": id, "event": kind, "messageId": message_id, "webhooks": webhooks });
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.store().reset();
    StatusCode::NO_CONTENT
}
