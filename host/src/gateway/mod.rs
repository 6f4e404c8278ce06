//! The SMSGate REST client: one pooled HTTP client for every session, the few calls an SMPP
//! front needs, and retries that can never send a message twice (the server picks the message
//! id, so a retry after a timeout is recognised by the gateway as the same message).

mod mode;
mod status_map;
mod transport;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};
use url::Url;

use crate::metrics;
use transport::{Failure, Target, Transport};

pub use mode::{Api, Decision, GatewayMode};
pub use status_map::{bind_status, cancel_status, query_status, submit_status};

/// Whose SMSGate account a call is made for. Debug never shows the secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// A JWT access token.
    Bearer {
        token: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Bearer { .. } => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Credentials {
    /// The `Authorization` header, marked sensitive so that nothing prints it.
    /// Built per call (credentials may come from a routing plugin per message), so written
    /// straight into its buffer rather than through `format!`.
    fn authorization(&self) -> HeaderValue {
        let value = match self {
            Credentials::Basic { username, password } => {
                let mut pair = String::with_capacity(username.len() + 1 + password.len());
                pair.push_str(username);
                pair.push(':');
                pair.push_str(password);
                let mut value = String::with_capacity(6 + pair.len().div_ceil(3) * 4);
                value.push_str("Basic ");
                base64::engine::general_purpose::STANDARD.encode_string(pair, &mut value);
                value
            }
            Credentials::Bearer { token } => ["Bearer ", token].concat(),
        };
        // A token with a line break cannot be sent; the gateway then answers 401 as it would to
        // any other wrong credentials.
        let mut header = HeaderValue::try_from(value).unwrap_or(HeaderValue::from_static(""));
        header.set_sensitive(true);
        header
    }
}

/// Body of `POST /messages`, field names as SMSGate spells them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingMessage {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_message: Option<TextMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_message: Option<DataMessage>,
    pub phone_numbers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim_number: Option<u8>,
    pub with_delivery_report: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i8>,
    /// Seconds the message may wait for the phone; conflicts with `valid_until`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "with_milliseconds"
    )]
    pub valid_until: Option<DateTime<Utc>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "with_milliseconds"
    )]
    pub schedule_at: Option<DateTime<Utc>>,
}

/// Times as `2026-12-05T06:21:54.000Z`: the phone (Local mode) reads dates with Gson's pattern
/// `yyyy-MM-dd'T'HH:mm:ss.SSSXXX`, which wants the milliseconds; SMSGate servers read any
/// RFC 3339 time, this one included.
fn with_milliseconds<S: serde::Serializer>(
    time: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => {
            serializer.serialize_str(&time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
        None => serializer.serialize_none(),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextMessage {
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataMessage {
    /// base64 of the binary payload.
    pub data: String,
    pub port: u16,
}

impl DataMessage {
    pub fn new(bytes: &[u8], port: u16) -> Self {
        DataMessage {
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
            port,
        }
    }
}

/// What a submit needs of the gateway's view of a message (`MessageState`): which recipients
/// it already failed. The rest of the answer is skipped, not decoded, on every submit.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageState {
    #[serde(default)]
    pub recipients: Vec<RecipientState>,
}

/// What query_sm needs of the gateway's view of a message: its state and when it got there.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageHistory {
    pub state: String,
    /// When each state was reached.
    #[serde(default)]
    pub states: std::collections::HashMap<String, DateTime<Utc>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientState {
    pub phone_number: String,
    pub state: String,
}

/// A webhook registration (`smsgateway.Webhook`): the phone posts `event` to `url`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Chosen by the client for an idempotent registration (the same id replaces), else by
    /// the gateway; at most 36 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Always sent, `null` included: client-go has no `omitempty` here, and `null` means every
    /// device of the account.
    #[serde(default)]
    pub device_id: Option<String>,
    pub url: String,
    pub event: String,
}

/// Why a gateway call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("gateway answered {status}{}", explained(.message))]
    Http { status: StatusCode, message: String },
    #[error("gateway did not answer within {0:?}")]
    Timeout(Duration),
    #[error("gateway unreachable: {0}")]
    Network(String),
    #[error("gateway answer could not be read: {0}")]
    Decode(String),
    /// The gateway's API has no such operation (the phone's cannot cancel); nothing was sent.
    #[error("{0}")]
    Unsupported(&'static str),
}

impl GatewayError {
    /// Failures after which the same request may be sent again without harm.
    fn is_transient(&self) -> bool {
        matches!(self, GatewayError::Timeout(_) | GatewayError::Network(_))
    }

    /// Failures that leave open whether the gateway acted on the request: the answer was lost
    /// or unreadable, or a server error came from somewhere between us and the gateway.
    fn is_ambiguous(&self) -> bool {
        match self {
            GatewayError::Http { status, .. } => status.is_server_error(),
            GatewayError::Timeout(_) | GatewayError::Network(_) | GatewayError::Decode(_) => true,
            GatewayError::Unsupported(_) => false,
        }
    }
}

/// SMSGate answers in a few hundred bytes, a long device list in a few KiB. A gateway that sends
/// more is broken or hostile, and reading on would only cost memory (an endless body once took
/// the process from 16 MB to 797 MB).
const MAX_ANSWER_BYTES: usize = 1 << 20;

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
}

#[derive(Clone)]
pub struct Gateway {
    http: Transport,
    base: Url,
    /// `{base}/messages`, the URL of every submit, taken apart once.
    messages: Target,
    timeout: Duration,
    retries: u32,
    mode: GatewayMode,
    /// This base URL's API once known; a cell per client so that the hot path reads it
    /// without a lock.
    api: Arc<tokio::sync::OnceCell<Api>>,
    decided: mode::Decided,
}

impl Gateway {
    pub fn new(api_base_url: &str, timeout: Duration, retries: u32) -> anyhow::Result<Self> {
        let base = Url::parse(api_base_url)?;
        let http = Transport::new(timeout.min(Duration::from_secs(10)))?;
        Ok(Gateway {
            http,
            messages: Target::new(&join(&base, &["messages"]))?,
            base,
            timeout,
            retries,
            mode: GatewayMode::Auto,
            api: Arc::default(),
            decided: mode::Decided::default(),
        })
    }

    /// `gateway.mode`: which API to speak, or `Auto` to tell from the gateway's answers.
    pub fn with_mode(self, mode: GatewayMode) -> Self {
        Gateway { mode, ..self }
    }

    /// The same client (and connection pool) for another gateway, for tenants whose accounts
    /// live on a private server or on a phone of their own (Local mode).
    pub fn with_base_url(&self, api_base_url: &str) -> anyhow::Result<Self> {
        let base = Url::parse(api_base_url)?;
        let api = tokio::sync::OnceCell::new_with(self.decided.get(&base));
        Ok(Gateway {
            messages: Target::new(&join(&base, &["messages"]))?,
            base,
            api: Arc::new(api),
            ..self.clone()
        })
    }

    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// The API this gateway serves: as `gateway.mode` says, or told from its answers the
    /// first time (a failed look is tried again at the next call).
    pub async fn api(&self) -> Result<Api, GatewayError> {
        match self.mode {
            GatewayMode::Cloud => Ok(Api::Cloud),
            GatewayMode::Local => Ok(Api::Local),
            GatewayMode::Auto => self
                .api
                .get_or_try_init(|| async {
                    if let Some(api) = self.decided.get(&self.base) {
                        return Ok(api);
                    }
                    let decision = self.decide().await?;
                    info!(api = %self.base, mode = %decision.api, reason = %decision.reason, "gateway mode");
                    self.decided.insert(&self.base, decision.api);
                    Ok(decision.api)
                })
                .await
                .copied(),
        }
    }

    /// Tells an SMSGate server from a phone by the base URL's path, or else by the checks its
    /// health answer (which needs no credentials) lists.
    pub async fn decide(&self) -> Result<Decision, GatewayError> {
        if let Some(decision) = mode::from_url(&self.base) {
            return Ok(decision);
        }
        let url = self.target(&["health"]);
        let answer = self.exchange(Method::GET, &url, None, None).await?;
        mode::from_health(&answer.body).ok_or_else(|| {
            GatewayError::Decode(format!(
                "{url} answered {} without the health checks that tell an SMSGate server from a phone; set gateway.mode",
                answer.status
            ))
        })
    }

    /// The bind check: the cheapest call that needs valid credentials, the device list
    /// (`GET /devices` on a server, `GET /device` on the phone).
    pub async fn check_credentials(&self, creds: &Credentials) -> Result<(), GatewayError> {
        let devices = match self.api().await? {
            Api::Cloud => "devices",
            Api::Local => "device",
        };
        self.call(
            "ping",
            creds,
            Method::GET,
            &self.target(&[devices]),
            None::<&()>,
        )
        .await
        .map(|_| ())
    }

    /// `POST /messages`. Retried on timeouts and connection errors with the same id; a 409
    /// "already exists" therefore means an earlier attempt got through.
    pub async fn send_message(
        &self,
        creds: &Credentials,
        message: &OutgoingMessage,
    ) -> Result<Option<MessageState>, GatewayError> {
        let result = self
            .call_idempotent(
                metrics::SUBMIT_SMS,
                creds,
                Method::POST,
                &self.messages,
                Some(message),
            )
            .await;
        let result = result.and_then(|body| {
            serde_json::from_slice(&body).map_err(|e| GatewayError::Decode(e.to_string()))
        });
        match result {
            Ok(state) => Ok(Some(state)),
            Err(GatewayError::Http { status, .. }) if status == StatusCode::CONFLICT => {
                debug!(id = %message.id, "gateway already has this message id");
                Ok(None)
            }
            // Rare, and as large as the call itself: on the heap when it happens.
            Err(e) if e.is_ambiguous() => Box::pin(self.confirm_sent(creds, message, e)).await,
            Err(e) => Err(e),
        }
    }

    /// The answer to `POST /messages` was lost, but the request may have got through. The id
    /// is ours, so the gateway can say whether it has the message: when it does, the ESME must
    /// hear ESME_ROK, since an error would invite it to send again what the phone sends anyway.
    async fn confirm_sent(
        &self,
        creds: &Credentials,
        message: &OutgoingMessage,
        lost: GatewayError,
    ) -> Result<Option<MessageState>, GatewayError> {
        let id = message.id.as_str();
        match self
            .call(
                "confirm_sms",
                creds,
                Method::GET,
                &self.target(&["messages", id]),
                None::<&()>,
            )
            .await
        {
            Ok(body) => {
                info!(%id, error = %lost, "the gateway's answer was lost, but it has the message");
                Ok(serde_json::from_slice(&body).ok())
            }
            Err(e) => {
                debug!(%id, error = %e, "the gateway does not confirm the message");
                Err(lost)
            }
        }
    }

    pub async fn get_message(
        &self,
        creds: &Credentials,
        id: &str,
    ) -> Result<MessageHistory, GatewayError> {
        let body = self
            .call(
                "query_sms",
                creds,
                Method::GET,
                &self.target(&["messages", id]),
                None::<&()>,
            )
            .await?;
        serde_json::from_slice(&body).map_err(|e| GatewayError::Decode(e.to_string()))
    }

    /// `DELETE /messages/{id}`; the phone's API has no such route.
    pub async fn cancel_message(&self, creds: &Credentials, id: &str) -> Result<(), GatewayError> {
        if self.api().await? == Api::Local {
            return Err(GatewayError::Unsupported(
                "the phone's API (SMSGate Local mode) cannot cancel messages",
            ));
        }
        self.call(
            "cancel_sms",
            creds,
            Method::DELETE,
            &self.target(&["messages", id]),
            None::<&()>,
        )
        .await
        .map(|_| ())
    }

    /// `GET /webhooks`: every registration of the account.
    pub async fn list_webhooks(&self, creds: &Credentials) -> Result<Vec<Webhook>, GatewayError> {
        let body = self
            .call_idempotent(
                "list_webhooks",
                creds,
                Method::GET,
                &self.target(&["webhooks"]),
                None::<&()>,
            )
            .await?;
        serde_json::from_slice(&body).map_err(|e| GatewayError::Decode(e.to_string()))
    }

    /// `POST /webhooks`. With an id the call replaces any registration of that id, so it is
    /// retried like a read; without one a retry could register twice, so it is sent once.
    pub async fn register_webhook(
        &self,
        creds: &Credentials,
        webhook: &Webhook,
    ) -> Result<Webhook, GatewayError> {
        let url = self.target(&["webhooks"]);
        let body = if webhook.id.is_some() {
            self.call_idempotent("register_webhook", creds, Method::POST, &url, Some(webhook))
                .await?
        } else {
            self.call("register_webhook", creds, Method::POST, &url, Some(webhook))
                .await?
        };
        // Under our own id the registration is what was sent, whatever the answer says (the
        // phone adds `source`; older apps answer nothing); the gateway's answer is needed only
        // for the id it picked.
        if webhook.id.is_some() || body.iter().all(u8::is_ascii_whitespace) {
            return Ok(webhook.clone());
        }
        serde_json::from_slice(&body).map_err(|e| GatewayError::Decode(e.to_string()))
    }

    /// `DELETE /webhooks/{id}`. A registration that is not there (404) is what the caller
    /// wants, so that counts as success: deletions can then be repeated after any failure.
    pub async fn delete_webhook(&self, creds: &Credentials, id: &str) -> Result<(), GatewayError> {
        let result = self
            .call_idempotent(
                "delete_webhook",
                creds,
                Method::DELETE,
                &self.target(&["webhooks", id]),
                None::<&()>,
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(GatewayError::Http { status, .. }) if status == StatusCode::NOT_FOUND => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// [`Gateway::call`] for requests whose repetition does no harm (a message under the same
    /// id included): retried on timeouts and connection errors.
    async fn call_idempotent<B: Serialize + ?Sized>(
        &self,
        operation: &str,
        creds: &Credentials,
        method: Method,
        url: &Target,
        body: Option<&B>,
    ) -> Result<bytes::Bytes, GatewayError> {
        let mut attempt = 0;
        loop {
            match self.call(operation, creds, method.clone(), url, body).await {
                Err(e) if e.is_transient() && attempt < self.retries => {
                    attempt += 1;
                    warn!(operation, attempt, error = %e, "retrying gateway call");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                result => return result,
            }
        }
    }

    /// One HTTP call, counted and timed under `operation`.
    async fn call<B: Serialize + ?Sized>(
        &self,
        operation: &str,
        creds: &Credentials,
        method: Method,
        url: &Target,
        body: Option<&B>,
    ) -> Result<bytes::Bytes, GatewayError> {
        let started = Instant::now();
        let result = self.request(creds, method, url, body).await;
        let outcome = match &result {
            Ok(_) => metrics::SUCCESS,
            Err(GatewayError::Http { status, .. }) => status.as_str(),
            Err(GatewayError::Timeout(_)) => "timeout",
            Err(GatewayError::Network(_)) => "network_error",
            Err(GatewayError::Decode(_)) => "decode_error",
            Err(GatewayError::Unsupported(_)) => "unsupported",
        };
        let took = started.elapsed();
        metrics::get().gateway_call(operation, outcome, took);
        crate::activity::get().gateway_call(operation, outcome, took);
        result
    }

    async fn request<B: Serialize + ?Sized>(
        &self,
        creds: &Credentials,
        method: Method,
        url: &Target,
        body: Option<&B>,
    ) -> Result<bytes::Bytes, GatewayError> {
        let json = match body {
            Some(body) => {
                // A message's body is a few hundred bytes: written without growing the buffer.
                let mut json = Vec::with_capacity(512);
                serde_json::to_writer(&mut json, body)
                    .map_err(|e| GatewayError::Decode(e.to_string()))?;
                Some(json.into())
            }
            None => None,
        };
        let answer = self
            .exchange(method, url, Some(creds.authorization()), json)
            .await?;
        if answer.status.is_success() {
            Ok(answer.body)
        } else {
            let body = answer.body;
            let message = serde_json::from_slice::<ErrorBody>(&body)
                .map(|b| b.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(200).collect());
            Err(GatewayError::Http {
                status: answer.status,
                message,
            })
        }
    }

    /// One request and its whole answer, within the gateway timeout; answers longer than
    /// `MAX_ANSWER_BYTES` are refused rather than buffered whole.
    async fn exchange(
        &self,
        method: Method,
        url: &Target,
        authorization: Option<HeaderValue>,
        json: Option<bytes::Bytes>,
    ) -> Result<transport::Answer, GatewayError> {
        // On the heap: every async fn from the session's task down to here would otherwise
        // hold, and copy as it is started, the 3 KB of a request in progress.
        let sent = Box::pin(
            self.http
                .send(method, url, authorization, json, MAX_ANSWER_BYTES),
        );
        match tokio::time::timeout(self.timeout, sent).await {
            Err(_) => Err(GatewayError::Timeout(self.timeout)),
            Ok(Ok(answer)) => Ok(answer),
            // The error text never includes credentials: headers are never printed.
            Ok(Err(Failure::Network(reason))) => Err(GatewayError::Network(reason)),
            Ok(Err(Failure::TooLong)) => Err(GatewayError::Decode(format!(
                "the answer is longer than {} KiB",
                MAX_ANSWER_BYTES >> 10
            ))),
        }
    }

    /// Ids come from ESMEs (query_sm, cancel_sm): each segment is percent-encoded so it stays
    /// one path segment whatever it contains.
    fn endpoint(&self, segments: &[&str]) -> Url {
        join(&self.base, segments)
    }

    /// [`Gateway::endpoint`], ready to send to: the origin is the one of every other call.
    fn target(&self, segments: &[&str]) -> Target {
        self.messages
            .at(&self.endpoint(segments))
            .expect("a path under the base URL, which Gateway::new checked, is a valid target")
    }
}

/// `base` with `segments` appended, each percent-encoded as one path segment.
fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// The gateway's reason after a colon; the phone answers some errors without one.
pub(crate) fn explained(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// An error with its causes, as one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let basic = Credentials::Basic {
            username: "alice".into(),
            password: "s3cret-password".into(),
        };
        let bearer = Credentials::Bearer {
            token: "tok-123".into(),
        };
        let shown = format!("{basic:?} {bearer:?}");
        assert!(shown.contains("alice"));
        assert!(
            !shown.contains("s3cret") && !shown.contains("tok-123"),
            "{shown}"
        );
    }

    #[test]
    fn message_ids_stay_in_one_segment() {
        let g = Gateway::new("http://127.0.0.1:1/3rdparty/v1", Duration::from_secs(1), 0).unwrap();
        assert_eq!(
            g.endpoint(&["messages", "../x y"]).as_str(),
            "http://127.0.0.1:1/3rdparty/v1/messages/..%2Fx%20y"
        );
        assert_eq!(
            g.endpoint(&["devices"]).as_str(),
            "http://127.0.0.1:1/3rdparty/v1/devices"
        );
        assert_eq!(
            g.messages.to_string(),
            "http://127.0.0.1:1/3rdparty/v1/messages"
        );
        assert_eq!(
            g.target(&["messages", "../x y"]).to_string(),
            "http://127.0.0.1:1/3rdparty/v1/messages/..%2Fx%20y"
        );
        let phone = g.with_base_url("http://192.168.1.20:8080").unwrap();
        assert_eq!(
            phone.messages.to_string(),
            "http://192.168.1.20:8080/messages"
        );
        let cloud = g
            .with_base_url("https://api.sms-gate.app/3rdparty/v1/")
            .unwrap();
        assert_eq!(
            cloud.messages.to_string(),
            "https://api.sms-gate.app/3rdparty/v1/messages"
        );
    }

    /// Whatever an ESME puts in a message id, the request line can carry it.
    #[test]
    fn any_message_id_makes_a_request_target() {
        let g = Gateway::new("http://127.0.0.1:1/3rdparty/v1", Duration::from_secs(1), 0).unwrap();
        let every_char: String = (1..=0x7f_u8)
            .map(char::from)
            .chain(['é', '€', '😀'])
            .collect();
        for id in every_char
            .chars()
            .map(String::from)
            .chain([every_char.clone()])
        {
            let url = g.endpoint(&["messages", &id]);
            assert!(g.messages.at(&url).is_ok(), "{id:?} gives {url}");
        }
    }

    #[test]
    fn webhook_always_sends_device_id() {
        let hook = Webhook {
            id: None,
            device_id: None,
            url: "https://example.com/hook".into(),
            event: "sms:received".into(),
        };
        assert_eq!(
            serde_json::to_value(&hook).unwrap(),
            serde_json::json!({
                "deviceId": null,
                "url": "https://example.com/hook",
                "event": "sms:received"
            })
        );
    }

    /// A simulator on a loopback port and a gateway client for its default account.
    async fn simulator() -> (Gateway, Credentials) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let simulator = smsgate_simulator::Simulator::new(Default::default());
        tokio::spawn(simulator.serve(listener, std::future::pending()));
        let gateway = Gateway::new(
            &format!("http://{addr}/3rdparty/v1"),
            Duration::from_secs(5),
            0,
        )
        .unwrap();
        let creds = Credentials::Basic {
            username: "demo".into(),
            password: "demo1234".into(),
        };
        (gateway, creds)
    }

    /// A gateway that answers 200 with an 8 MiB body, sent in chunks without a length: the
    /// client stops reading at the limit instead of buffering it all.
    #[tokio::test]
    async fn an_overlong_answer_is_refused_at_the_limit() {
        use axum::body::Body;
        use futures::stream;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let overlong = axum::Router::new().fallback(|| async {
            let chunk = bytes::Bytes::from_static(&[b' '; 64 << 10]);
            let chunks = std::iter::repeat_n(chunk, 128).map(Ok::<_, std::convert::Infallible>);
            Body::from_stream(stream::iter(chunks))
        });
        tokio::spawn(async move { axum::serve(listener, overlong).await });
        let gateway = Gateway::new(
            &format!("http://{addr}/3rdparty/v1"),
            Duration::from_secs(30),
            0,
        )
        .unwrap();
        let creds = Credentials::Bearer { token: "t".into() };
        match gateway.list_webhooks(&creds).await {
            Err(GatewayError::Decode(reason)) => {
                assert!(reason.contains("1024 KiB"), "{reason}")
            }
            other => panic!("expected the answer to be refused as too long, got {other:?}"),
        }
    }

    fn hook(id: Option<&str>, url: &str, event: &str) -> Webhook {
        Webhook {
            id: id.map(str::to_owned),
            device_id: None,
            url: url.into(),
            event: event.into(),
        }
    }

    #[tokio::test]
    async fn webhooks_are_listed_registered_replaced_and_deleted() {
        let (gateway, creds) = simulator().await;
        assert!(gateway.list_webhooks(&creds).await.unwrap().is_empty());

        let mine = hook(Some("smpp-1"), "http://127.0.0.1:9/a", "sms:received");
        assert_eq!(gateway.register_webhook(&creds, &mine).await.unwrap(), mine);
        let theirs = gateway
            .register_webhook(&creds, &hook(None, "http://127.0.0.1:9/b", "sms:sent"))
            .await
            .unwrap();
        let their_id = theirs.id.clone().expect("the gateway picks an id");
        assert_eq!(theirs.url, "http://127.0.0.1:9/b");

        let replaced = hook(Some("smpp-1"), "http://127.0.0.1:9/c", "sms:failed");
        gateway.register_webhook(&creds, &replaced).await.unwrap();
        let mut listed = gateway.list_webhooks(&creds).await.unwrap();
        listed.sort_by(|a, b| a.url.cmp(&b.url));
        assert_eq!(listed, vec![theirs.clone(), replaced]);

        gateway.delete_webhook(&creds, "smpp-1").await.unwrap();
        // Already gone is what a deletion wants.
        gateway.delete_webhook(&creds, "smpp-1").await.unwrap();
        assert_eq!(gateway.list_webhooks(&creds).await.unwrap(), vec![theirs]);
        gateway.delete_webhook(&creds, &their_id).await.unwrap();
        assert!(gateway.list_webhooks(&creds).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn webhook_calls_report_gateway_refusals() {
        let (gateway, _) = simulator().await;
        let wrong = Credentials::Basic {
            username: "demo".into(),
            password: "wrong-password".into(),
        };
        for result in [
            gateway.list_webhooks(&wrong).await.map(|_| ()),
            gateway.delete_webhook(&wrong, "x").await,
        ] {
            assert!(
                matches!(result, Err(GatewayError::Http { status, .. }) if status == StatusCode::UNAUTHORIZED),
                "{result:?}"
            );
        }
        let (gateway, creds) = simulator().await;
        let bad_event = hook(Some("x"), "http://127.0.0.1:9/a", "sms:nonsense");
        let result = gateway.register_webhook(&creds, &bad_event).await;
        assert!(
            matches!(&result, Err(GatewayError::Http { status, .. }) if *status == StatusCode::BAD_REQUEST),
            "{result:?}"
        );
    }

    #[test]
    fn outgoing_message_uses_smsgate_field_names() {
        let msg = OutgoingMessage {
            id: "id1".into(),
            text_message: Some(TextMessage { text: "hi".into() }),
            phone_numbers: vec!["+491701234567".into()],
            with_delivery_report: true,
            sim_number: Some(2),
            valid_until: DateTime::from_timestamp(1_796_000_000, 0),
            ..Default::default()
        };
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "id1",
                "textMessage": {"text": "hi"},
                "phoneNumbers": ["+491701234567"],
                "simNumber": 2,
                "withDeliveryReport": true,
                "validUntil": "2026-11-30T00:53:20.000Z"
            })
        );
    }
}
