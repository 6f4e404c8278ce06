//! Webhook events the way the phone sends them: built from message transitions, cancellations
//! and incoming SMS, addressed to every webhook of the account registered for the event, signed
//! when the account has a signing key, and retried with a doubling back-off like the app's
//! WorkManager jobs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Shared;
use super::state::{
    DeliveryAttempt, Message, ProcessingState, Webhook, WebhookEvent, new_id, phone_time, rfc3339,
};

/// The app's User-Agent product, so a receiver that looks at it takes the simulator for a phone.
const USER_AGENT: &str = concat!("me.capcom.smsgateway/simulator-", env!("CARGO_PKG_VERSION"));

/// The app connects within 5 s even though a whole request may take longer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The announcer re-reads the wall clock at least this often: transitions are planned in
/// wall-clock time but tokio sleeps on the monotonic clock, and the two drift apart when the
/// system time is adjusted.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// One event as the phone would emit it, before it is addressed to a webhook.
pub(super) struct Event {
    /// Unique per event: what receivers deduplicate retries by.
    pub id: String,
    pub account: usize,
    pub kind: WebhookEvent,
    pub payload: Value,
}

/// The body of a webhook call.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    device_id: &'a str,
    event: WebhookEvent,
    id: &'a str,
    payload: &'a Value,
    webhook_id: &'a str,
}

/// The events a message's move to `state` fires: one per recipient, as the phone reports each
/// recipient on its own, and none for the states it does not announce.
pub(super) fn transition_events(
    message: &Message,
    state: ProcessingState,
    at: DateTime<Utc>,
) -> Vec<Event> {
    let at = phone_time(at);
    let (kind, details) = match state {
        ProcessingState::Sent => (
            WebhookEvent::SmsSent,
            json!({ "partsCount": message.content.parts(), "sentAt": at }),
        ),
        ProcessingState::Delivered => (WebhookEvent::SmsDelivered, json!({ "deliveredAt": at })),
        ProcessingState::Failed => (
            WebhookEvent::SmsFailed,
            json!({ "failedAt": at, "reason": message.lifecycle.error() }),
        ),
        ProcessingState::Cancelled => (WebhookEvent::SmsCancelled, json!({ "cancelledAt": at })),
        ProcessingState::Pending | ProcessingState::Cancelling | ProcessingState::Processed => {
            return Vec::new();
        }
    };
    message
        .phone_numbers
        .iter()
        .map(|number| {
            let mut payload = json!({
                "messageId": message.id,
                "phoneNumber": number,
                "recipient": number,
                "sender": null,
                // Without a request for a slot the phone uses its default SIM, the first.
                "simNumber": message.sim_number.unwrap_or(1),
            });
            merge(&mut payload, &details);
            Event {
                id: new_id(),
                account: message.account,
                kind,
                payload,
            }
        })
        .collect()
}

fn merge(payload: &mut Value, details: &Value) {
    if let (Value::Object(payload), Value::Object(details)) = (payload, details) {
        payload.extend(details.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// What an incoming SMS carries.
pub(super) enum Incoming {
    Text(String),
    /// Base64, as the payload carries it.
    Data(String),
}

/// An SMS arriving at the account's phone.
pub(super) struct Received {
    pub account: usize,
    pub sender: String,
    /// The phone's own number, when known.
    pub recipient: Option<String>,
    pub sim_number: u8,
    pub content: Incoming,
    pub at: DateTime<Utc>,
}

/// `sms:received` for text, `sms:data-received` for binary content.
pub(super) fn received_event(received: Received) -> Event {
    let (kind, field, content) = match received.content {
        Incoming::Text(text) => (WebhookEvent::SmsReceived, "message", text),
        Incoming::Data(data) => (WebhookEvent::SmsDataReceived, "data", data),
    };
    let message_id = content_id(&received.sender, received.at, &content);
    let mut payload = json!({
        "messageId": message_id,
        "sender": received.sender,
        "recipient": received.recipient,
        "phoneNumber": received.sender,
        "simNumber": received.sim_number,
        "receivedAt": phone_time(received.at),
    });
    payload[field] = Value::String(content);
    Event {
        id: new_id(),
        account: received.account,
        kind,
        payload,
    }
}

/// Incoming messages get an id derived from what they are, not a random one, so the same SMS
/// announced again (the app's inbox refresh) keeps its id.
fn content_id(sender: &str, at: DateTime<Utc>, content: &str) -> String {
    let digest = Sha256::new()
        .chain_update(sender)
        .chain_update([0])
        .chain_update(at.timestamp_millis().to_be_bytes())
        .chain_update(content)
        .finalize();
    hex::encode(&digest[..8])
}

/// The simulator's HTTP client (webhook calls, `inject-mo`); installs the crypto provider its
/// TLS needs first.
pub(super) fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(CONNECT_TIMEOUT))
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", describe(&e)))
}

/// Announces each transition of each message once, when its time comes, until `serve` closes.
pub(super) async fn announce_transitions(shared: Arc<Shared>) {
    let mut closing = shared.closing.subscribe();
    loop {
        let now = Utc::now();
        let (events, next) = {
            let mut store = shared.store();
            let mut events = Vec::new();
            while let Some((seq, state, at)) = store.pop_due(now) {
                // Forgotten messages have nobody to tell; cancelled ones never got that far.
                if let Some(message) = store.by_seq(seq)
                    && !message.lifecycle.is_cancelled()
                {
                    events.extend(transition_events(message, state, at));
                }
            }
            (events, store.next_due())
        };
        for event in events {
            dispatch(&shared, event);
        }
        let wait = next.map_or(MAX_WAIT, |at| {
            (at - now).to_std().unwrap_or_default().min(MAX_WAIT)
        });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.timeline_changed.notified() => {}
            _ = closing.wait_for(|closing| *closing) => return,
        }
    }
}

/// Sends `event` to every webhook of its account registered for it, each call on a task of
/// its own; returns how many webhooks that is.
pub(super) fn dispatch(shared: &Arc<Shared>, event: Event) -> usize {
    let (webhooks, generation) = {
        let store = shared.store();
        let webhooks: Vec<Webhook> = store
            .webhooks(event.account)
            .iter()
            .filter(|w| w.event == event.kind)
            .cloned()
            .collect();
        (webhooks, store.generation())
    };
    let account = &shared.accounts[event.account];
    let message_id = event.payload["messageId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for webhook in &webhooks {
        let envelope = Envelope {
            device_id: &account.device.id,
            event: event.kind,
            id: &event.id,
            payload: &event.payload,
            webhook_id: &webhook.id,
        };
        let body = serde_json::to_vec(&envelope).expect("JSON values always serialize");
        tokio::spawn(deliver(
            Arc::clone(shared),
            Call {
                generation,
                event_id: event.id.clone(),
                kind: event.kind,
                message_id: message_id.clone(),
                webhook: webhook.clone(),
                signing_key: account.signing_key.clone(),
                body: Bytes::from(body),
            },
        ));
    }
    webhooks.len()
}

/// One event addressed to one webhook.
struct Call {
    /// The store's generation when the event happened.
    generation: u64,
    event_id: String,
    kind: WebhookEvent,
    message_id: String,
    webhook: Webhook,
    signing_key: Option<String>,
    body: Bytes,
}

async fn deliver(shared: Arc<Shared>, call: Call) {
    let settings = &shared.webhooks;
    let mut closing = shared.closing.subscribe();
    let attempts = settings.retries.saturating_add(1);
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::select! {
                () = tokio::time::sleep(backoff(settings.backoff, attempt - 2)) => {}
                _ = closing.wait_for(|closing| *closing) => return,
            }
        }
        // A reset forgets the events in flight along with everything else.
        if *closing.borrow() || shared.store().generation() != call.generation {
            return;
        }
        let outcome = tokio::select! {
            outcome = async {
                let _slot = shared.webhook_calls.acquire().await;
                post(&shared, &call).await
            } => outcome,
            _ = closing.wait_for(|closing| *closing) => return,
        };
        let delivered = outcome.as_ref().is_ok_and(StatusCode::is_success);
        let (status, error) = match outcome {
            Ok(status) => (Some(status.as_u16()), None),
            Err(error) => (None, Some(error)),
        };
        tracing::debug!(
            event = call.kind.as_str(),
            id = %call.event_id,
            url = %call.webhook.url,
            attempt,
            ?status,
            ?error,
            "simulator webhook call"
        );
        shared.store().record_delivery(
            call.generation,
            DeliveryAttempt {
                event_id: call.event_id.clone(),
                event: call.kind,
                message_id: call.message_id.clone(),
                webhook_id: call.webhook.id.clone(),
                url: call.webhook.url.clone(),
                attempt,
                at: rfc3339(Utc::now()),
                status,
                error,
            },
        );
        if delivered {
            return;
        }
    }
    tracing::warn!(
        event = call.kind.as_str(),
        id = %call.event_id,
        url = %call.webhook.url,
        "simulator gave up on a webhook after {attempts} attempts"
    );
}

/// `first`, doubled for each retry before this one, saturating rather than overflowing.
fn backoff(first: Duration, retries_before: u32) -> Duration {
    first.saturating_mul(2_u32.saturating_pow(retries_before))
}

/// The receiver's status, or why there was none.
async fn post(shared: &Shared, call: &Call) -> Result<StatusCode, String> {
    let client = shared.http.as_ref().map_err(Clone::clone)?;
    let mut request = client
        .post(&call.webhook.url)
        .header(CONTENT_TYPE, "application/json")
        .body(call.body.clone());
    if let Some(key) = &call.signing_key {
        let timestamp = Utc::now().timestamp().to_string();
        request = request
            .header(
                "X-Signature",
                webhook_events::sign(key.as_bytes(), &call.body, &timestamp),
            )
            .header("X-Timestamp", timestamp);
    }
    request
        .send()
        .await
        .map(|response| response.status())
        .map_err(|e| describe(&e))
}

/// reqwest's own message names only the URL; the cause (refused, timed out, TLS) is in the
/// chain of sources.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
