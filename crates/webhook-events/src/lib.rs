//! SMSGate webhook events and their signatures.
//!
//! A crate of its own, with nothing of the server in it, so that the parser facing the network
//! can be fuzzed without building the rest, and the simulator signs exactly as it is checked.
//!
//! The phone itself, not the SMSGate cloud, posts these events, and it retries any non-2xx
//! answer for days; parse errors therefore name exactly what is wrong, so a 400 can be
//! diagnosed from the phone's side without guessing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, FixedOffset};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

/// One webhook delivery, e.g.
/// `{"deviceId":"…","event":"sms:received","id":"…","payload":{…},"webhookId":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique per event and unchanged across the phone's retries, so it is the key for
    /// dropping duplicates.
    pub id: String,
    pub event: EventKind,
    pub device_id: String,
    /// The registration that produced the event; absent from hand-made requests.
    pub webhook_id: Option<String>,
    pub payload: Payload,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// `sms:received`: a mobile originated text, already reassembled by the phone.
    SmsReceived,
    /// `sms:data-received`: a binary SMS to the phone's data port.
    SmsDataReceived,
    /// `sms:sent`: handed to the mobile network.
    SmsSent,
    /// `sms:delivered`: one delivery report, sent once per part of a long message.
    SmsDelivered,
    /// `sms:failed`: sent once when any part fails.
    SmsFailed,
    /// Any other event name (`system:ping`, `mms:received`, batch events, …). Such events are
    /// acknowledged and ignored, so their payload is not read.
    Other(String),
}

impl EventKind {
    fn from_name(name: &str) -> Self {
        match name {
            "sms:received" => Self::SmsReceived,
            "sms:data-received" => Self::SmsDataReceived,
            "sms:sent" => Self::SmsSent,
            "sms:delivered" => Self::SmsDelivered,
            "sms:failed" => Self::SmsFailed,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The event name as SMSGate spells it.
    pub fn name(&self) -> &str {
        match self {
            Self::SmsReceived => "sms:received",
            Self::SmsDataReceived => "sms:data-received",
            Self::SmsSent => "sms:sent",
            Self::SmsDelivered => "sms:delivered",
            Self::SmsFailed => "sms:failed",
            Self::Other(name) => name,
        }
    }

    /// Inbound events carry the remote party in `sender`, outbound ones in `recipient`.
    fn is_inbound(&self) -> bool {
        matches!(self, Self::SmsReceived | Self::SmsDataReceived)
    }
}

/// The union of the message events' payload fields.
///
/// [`parse`] guarantees that the fields an event kind needs are present: `messageId` for
/// every `sms:*` event; `message`, `sender` and `receivedAt` for `sms:received`; `data`,
/// `sender` and `receivedAt` for `sms:data-received`; `sentAt`, `deliveredAt` or `failedAt`
/// for the outbound events. [`EventKind::Other`] events get an empty payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payload {
    /// For outbound events the REST message id; for received messages a hash of the content,
    /// not unique.
    pub message_id: Option<String>,
    pub message: Option<String>,
    /// Decoded from the base64 `data` field.
    pub data: Option<Vec<u8>>,
    /// Filled from `phoneNumber` for inbound events when absent: app versions before the
    /// field existed send only `phoneNumber`.
    pub sender: Option<String>,
    /// Filled from `phoneNumber` for outbound events when absent, as for `sender`.
    pub recipient: Option<String>,
    /// Deprecated by SMSGate in favour of `sender` and `recipient`; kept as sent.
    pub phone_number: Option<String>,
    /// 1-based SIM slot; the phone sends null when Android does not report it.
    pub sim_number: Option<u8>,
    pub parts_count: Option<u32>,
    /// Timestamps are the phone's local time with its offset.
    pub sent_at: Option<DateTime<FixedOffset>>,
    pub delivered_at: Option<DateTime<FixedOffset>>,
    pub failed_at: Option<DateTime<FixedOffset>>,
    pub received_at: Option<DateTime<FixedOffset>>,
    /// Why an `sms:failed` message failed, in the phone's words.
    pub reason: Option<String>,
}

impl Event {
    /// When the event happened on the phone: the timestamp that belongs to its kind.
    pub fn occurred_at(&self) -> Option<DateTime<FixedOffset>> {
        let p = &self.payload;
        match self.event {
            EventKind::SmsReceived | EventKind::SmsDataReceived => p.received_at,
            EventKind::SmsSent => p.sent_at,
            EventKind::SmsDelivered => p.delivered_at,
            EventKind::SmsFailed => p.failed_at,
            EventKind::Other(_) => None,
        }
    }
}

/// The longest event id taken. The app's ids are a few dozen characters; the id becomes a key
/// of the durable queue, so a caller must not choose its size.
pub const MAX_EVENT_ID: usize = 128;

/// Parses a webhook body. The error is a one-line reason fit for a 400 answer.
pub fn parse(body: &[u8]) -> Result<Event, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON: {e}"))?;
    let Value::Object(top) = value else {
        return Err("body is not a JSON object".into());
    };
    let top = Fields {
        map: &top,
        prefix: "",
    };
    let id = top.required_string("id")?;
    if id.is_empty() {
        return Err("id is empty".into());
    }
    if id.len() > MAX_EVENT_ID {
        return Err(format!("id is longer than {MAX_EVENT_ID} bytes"));
    }
    let event = EventKind::from_name(&top.required_string("event")?);
    let device_id = top.required_string("deviceId")?;
    let webhook_id = top.string("webhookId")?;
    let payload = match event {
        EventKind::Other(_) => Payload::default(),
        ref kind => {
            let Some(value) = top.present("payload") else {
                return Err(format!("payload is missing for {}", kind.name()));
            };
            let Value::Object(map) = value else {
                return Err("payload is not a JSON object".into());
            };
            let fields = Fields {
                map,
                prefix: "payload.",
            };
            let payload = payload(&fields, kind)?;
            check_required(&payload, kind)?;
            payload
        }
    };
    Ok(Event {
        id,
        event,
        device_id,
        webhook_id,
        payload,
    })
}

fn payload(fields: &Fields<'_>, kind: &EventKind) -> Result<Payload, String> {
    let phone_number = fields.string("phoneNumber")?;
    let mut sender = fields.string("sender")?;
    let mut recipient = fields.string("recipient")?;
    if kind.is_inbound() {
        sender = sender.or_else(|| phone_number.clone());
    } else {
        recipient = recipient.or_else(|| phone_number.clone());
    }
    Ok(Payload {
        message_id: fields.string("messageId")?,
        message: fields.string("message")?,
        data: fields.base64("data")?,
        sender,
        recipient,
        phone_number,
        sim_number: fields.number("simNumber")?,
        parts_count: fields.number("partsCount")?,
        sent_at: fields.time("sentAt")?,
        delivered_at: fields.time("deliveredAt")?,
        failed_at: fields.time("failedAt")?,
        received_at: fields.time("receivedAt")?,
        reason: fields.string("reason")?,
    })
}

fn check_required(p: &Payload, kind: &EventKind) -> Result<(), String> {
    let specific = match kind {
        EventKind::SmsReceived => vec![
            ("message", p.message.is_some()),
            ("sender (or phoneNumber)", p.sender.is_some()),
            ("receivedAt", p.received_at.is_some()),
        ],
        EventKind::SmsDataReceived => vec![
            ("data", p.data.is_some()),
            ("sender (or phoneNumber)", p.sender.is_some()),
            ("receivedAt", p.received_at.is_some()),
        ],
        EventKind::SmsSent => vec![("sentAt", p.sent_at.is_some())],
        EventKind::SmsDelivered => vec![("deliveredAt", p.delivered_at.is_some())],
        EventKind::SmsFailed => vec![("failedAt", p.failed_at.is_some())],
        EventKind::Other(_) => Vec::new(),
    };
    match std::iter::once(("messageId", p.message_id.is_some()))
        .chain(specific)
        .find(|&(_, present)| !present)
    {
        Some((field, _)) => Err(format!("payload.{field} is missing for {}", kind.name())),
        None => Ok(()),
    }
}

/// Typed access to one JSON object's members; `prefix` places them in error messages.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: &'static str,
}

impl Fields<'_> {
    /// The member, treating JSON null like absence as SMSGate does for nullable fields.
    fn present(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Value) -> String {
        let got = match got {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        format!("{}{name} must be {expected}, not {got}", self.prefix)
    }

    fn string(&self, name: &str) -> Result<Option<String>, String> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong_type(name, "a string", other)),
        }
    }

    fn required_string(&self, name: &str) -> Result<String, String> {
        self.string(name)?
            .ok_or_else(|| format!("{}{name} is missing", self.prefix))
    }

    fn number<T: TryFrom<u64>>(&self, name: &str) -> Result<Option<T>, String> {
        let Some(value) = self.present(name) else {
            return Ok(None);
        };
        value
            .as_u64()
            .and_then(|n| T::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| match value {
                Value::Number(n) => format!("{}{name} is out of range: {n}", self.prefix),
                other => self.wrong_type(name, "a number", other),
            })
    }

    fn time(&self, name: &str) -> Result<Option<DateTime<FixedOffset>>, String> {
        let Some(text) = self.string(name)? else {
            return Ok(None);
        };
        DateTime::parse_from_rfc3339(&text).map(Some).map_err(|e| {
            format!(
                "{}{name} {text:?} is not an RFC 3339 timestamp with offset: {e}",
                self.prefix
            )
        })
    }

    fn base64(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(text) = self.string(name)? else {
            return Ok(None);
        };
        // Android's default base64 flavour wraps lines; the line breaks carry no data.
        let compact: String = text.split_ascii_whitespace().collect();
        BASE64
            .decode(compact)
            .map(Some)
            .map_err(|e| format!("{}{name} is not valid base64: {e}", self.prefix))
    }
}

type HmacSha256 = Hmac<Sha256>;

/// How far `X-Timestamp` may be from the server clock either way, as SMSGate recommends; it
/// bounds how long a captured request can be replayed.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("X-Signature is missing")]
    MissingSignature,
    #[error("X-Timestamp is missing")]
    MissingTimestamp,
    #[error("X-Timestamp {0:?} is not a Unix time in seconds")]
    BadTimestamp(String),
    /// `age` is positive for a timestamp in the past.
    #[error(
        "X-Timestamp is stale: {age} s from the server clock, more than {MAX_CLOCK_SKEW_SECS} s"
    )]
    Stale { age: i64 },
    #[error("X-Signature is not 64 hexadecimal digits")]
    BadSignatureFormat,
    #[error("X-Signature does not match the body")]
    BadSignature,
}

/// Checks SMSGate's `X-Signature`: hex HMAC-SHA256 under `key` of the raw body followed by
/// the `X-Timestamp` text. An absent header is passed as an empty string.
pub fn verify_signature(
    key: &[u8],
    body: &[u8],
    timestamp: &str,
    signature_hex: &str,
    now_unix: i64,
) -> Result<(), SignatureError> {
    if signature_hex.is_empty() {
        return Err(SignatureError::MissingSignature);
    }
    if timestamp.is_empty() {
        return Err(SignatureError::MissingTimestamp);
    }
    let sent_at: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::BadTimestamp(timestamp.to_owned()))?;
    if now_unix.abs_diff(sent_at) > MAX_CLOCK_SKEW_SECS {
        return Err(SignatureError::Stale {
            age: now_unix.saturating_sub(sent_at),
        });
    }
    // The phone sends lowercase; `hex` takes either case, as hex digits conventionally are.
    let mut signature = [0; 32];
    hex::decode_to_slice(signature_hex, &mut signature)
        .map_err(|_| SignatureError::BadSignatureFormat)?;
    // verify_slice compares in constant time, so response timing reveals nothing about how
    // much of a forged signature was right.
    mac(key, body, timestamp)
        .verify_slice(&signature)
        .map_err(|_| SignatureError::BadSignature)
}

/// The `X-Signature` value the phone sends for `body` with the `X-Timestamp` text `timestamp`
/// (lowercase hex).
pub fn sign(key: &[u8], body: &[u8], timestamp: &str) -> String {
    hex::encode(mac(key, body, timestamp).finalize().into_bytes())
}

fn mac(key: &[u8], body: &[u8], timestamp: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.update(timestamp.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from SMSGate's webhook documentation.
    const RECEIVED: &str = r#"{
        "deviceId": "ffffffffceb0b1db0000018e937c815b",
        "event": "sms:received",
        "id": "Ey6ECgOkVVFjz3CL48B8C",
        "payload": {
            "messageId": "abc123",
            "message": "Android is always a sweet treat!",
            "sender": "6505551212",
            "recipient": "+1234567890",
            "phoneNumber": "6505551212",
            "simNumber": 1,
            "receivedAt": "2024-06-22T15:46:11.000+07:00"
        },
        "webhookId": "LreFUt-Z3sSq0JufY9uWB"
    }"#;

    fn event(kind: &str, payload: &str) -> String {
        format!(r#"{{"deviceId":"dev","event":"{kind}","id":"ev-1","payload":{payload}}}"#)
    }

    fn parse_str(body: &str) -> Result<Event, String> {
        parse(body.as_bytes())
    }

    fn time(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn parses_the_documented_sms_received() {
        let event = parse_str(RECEIVED).unwrap();
        assert_eq!(
            event,
            Event {
                id: "Ey6ECgOkVVFjz3CL48B8C".into(),
                event: EventKind::SmsReceived,
                device_id: "ffffffffceb0b1db0000018e937c815b".into(),
                webhook_id: Some("LreFUt-Z3sSq0JufY9uWB".into()),
                payload: Payload {
                    message_id: Some("abc123".into()),
                    message: Some("Android is always a sweet treat!".into()),
                    sender: Some("6505551212".into()),
                    recipient: Some("+1234567890".into()),
                    phone_number: Some("6505551212".into()),
                    sim_number: Some(1),
                    received_at: Some(time("2024-06-22T15:46:11+07:00")),
                    ..Payload::default()
                },
            }
        );
        assert_eq!(
            event.occurred_at().unwrap().to_rfc3339(),
            "2024-06-22T15:46:11+07:00"
        );
    }

    #[test]
    fn parses_outbound_events() {
        let sent = parse_str(&event(
            "sms:sent",
            r#"{"messageId":"m1","recipient":"+4477","simNumber":null,"partsCount":2,
                "sentAt":"2024-06-22T15:46:11.000+07:00"}"#,
        ))
        .unwrap();
        assert_eq!(sent.event, EventKind::SmsSent);
        assert_eq!(sent.webhook_id, None);
        assert_eq!(sent.payload.parts_count, Some(2));
        assert_eq!(sent.payload.sim_number, None);
        assert_eq!(sent.occurred_at(), Some(time("2024-06-22T08:46:11Z")));

        let delivered = parse_str(&event(
            "sms:delivered",
            r#"{"messageId":"m1","phoneNumber":"+4477","deliveredAt":"2024-06-22T09:00:00Z"}"#,
        ))
        .unwrap();
        assert_eq!(delivered.event, EventKind::SmsDelivered);
        // Older apps name the recipient only in phoneNumber.
        assert_eq!(delivered.payload.recipient.as_deref(), Some("+4477"));
        assert_eq!(delivered.payload.sender, None);

        let failed = parse_str(&event(
            "sms:failed",
            r#"{"messageId":"m1","failedAt":"2024-06-22T09:00:00-03:30","reason":"RESULT_ERROR_NO_SERVICE"}"#,
        ))
        .unwrap();
        assert_eq!(failed.event, EventKind::SmsFailed);
        assert_eq!(
            failed.payload.reason.as_deref(),
            Some("RESULT_ERROR_NO_SERVICE")
        );
        assert_eq!(failed.occurred_at(), Some(time("2024-06-22T12:30:00Z")));
    }

    #[test]
    fn parses_binary_messages() {
        let data = parse_str(&event(
            "sms:data-received",
            r#"{"messageId":"d1","data":"AAEC\n/w==","phoneNumber":"+4477",
                "receivedAt":"2024-06-22T09:00:00Z"}"#,
        ))
        .unwrap();
        assert_eq!(data.event, EventKind::SmsDataReceived);
        assert_eq!(data.payload.data, Some(vec![0, 1, 2, 0xFF]));
        assert_eq!(data.payload.sender.as_deref(), Some("+4477"));
        assert_eq!(data.payload.recipient, None);
    }

    #[test]
    fn unknown_events_are_kept_without_their_payload() {
        let ping = parse_str(&event("system:ping", r#"{"health":{"status":"pass"}}"#)).unwrap();
        assert_eq!(ping.event, EventKind::Other("system:ping".into()));
        assert_eq!(ping.event.name(), "system:ping");
        assert_eq!(ping.payload, Payload::default());
        assert_eq!(ping.occurred_at(), None);
        // Even a payload that would be invalid for an sms event, or none at all.
        let body = r#"{"deviceId":"d","event":"sms:cancelled","id":"e"}"#;
        assert!(parse_str(body).is_ok());
        assert!(parse_str(&event("mms:received", r#"{"receivedAt":"yesterday"}"#)).is_ok());
    }

    #[test]
    fn event_names_round_trip() {
        for name in [
            "sms:received",
            "sms:data-received",
            "sms:sent",
            "sms:delivered",
            "sms:failed",
            "app:started",
        ] {
            assert_eq!(EventKind::from_name(name).name(), name);
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let received = |payload: &str| parse_str(&event("sms:received", payload)).unwrap_err();
        let cases = [
            (parse_str("{\"id\":").unwrap_err(), "body is not valid JSON"),
            (parse_str("[1]").unwrap_err(), "body is not a JSON object"),
            (
                parse_str(r#"{"id":"e","event":"sms:sent","payload":{}}"#).unwrap_err(),
                "deviceId is missing",
            ),
            (
                parse_str(r#"{"id":7,"event":"sms:sent","deviceId":"d"}"#).unwrap_err(),
                "id must be a string, not a number",
            ),
            (
                parse_str(r#"{"id":"","event":"sms:sent","deviceId":"d"}"#).unwrap_err(),
                "id is empty",
            ),
            (
                parse_str(&format!(
                    r#"{{"id":"{}","event":"sms:sent","deviceId":"d"}}"#,
                    "a".repeat(MAX_EVENT_ID + 1)
                ))
                .unwrap_err(),
                "id is longer than 128 bytes",
            ),
            (
                parse_str(r#"{"id":"e","event":"sms:sent","deviceId":"d"}"#).unwrap_err(),
                "payload is missing for sms:sent",
            ),
            (
                parse_str(&event("sms:sent", "[]")).unwrap_err(),
                "payload is not a JSON object",
            ),
            (
                received(r#"{"messageId":"m","sender":"1","receivedAt":"2024-06-22T09:00:00Z"}"#),
                "payload.message is missing for sms:received",
            ),
            (
                received(r#"{"messageId":"m","message":"hi","receivedAt":"2024-06-22T09:00:00Z"}"#),
                "payload.sender (or phoneNumber) is missing for sms:received",
            ),
            (
                received(r#"{"message":"hi","sender":"1","receivedAt":"2024-06-22T09:00:00Z"}"#),
                "payload.messageId is missing for sms:received",
            ),
            (
                received(r#"{"messageId":"m","message":"hi","sender":"1"}"#),
                "payload.receivedAt is missing for sms:received",
            ),
            (
                received(
                    r#"{"messageId":"m","message":"hi","sender":"1","receivedAt":"2024-06-22 09:00"}"#,
                ),
                "payload.receivedAt \"2024-06-22 09:00\" is not an RFC 3339 timestamp",
            ),
            (
                received(
                    r#"{"messageId":"m","message":"hi","sender":"1","receivedAt":"2024-06-22T09:00:00"}"#,
                ),
                "is not an RFC 3339 timestamp with offset",
            ),
            (
                received(r#"{"messageId":"m","message":5}"#),
                "payload.message must be a string, not a number",
            ),
            (
                received(r#"{"messageId":"m","simNumber":"1"}"#),
                "payload.simNumber must be a number, not a string",
            ),
            (
                received(r#"{"messageId":"m","simNumber":300}"#),
                "payload.simNumber is out of range: 300",
            ),
            (
                received(r#"{"messageId":"m","simNumber":-1}"#),
                "payload.simNumber is out of range: -1",
            ),
            (
                parse_str(&event("sms:data-received", r#"{"data":"@@"}"#)).unwrap_err(),
                "payload.data is not valid base64",
            ),
        ];
        for (err, want) in cases {
            assert!(
                err.starts_with(want) || err.contains(want),
                "{err:?} vs {want:?}"
            );
        }
    }

    const KEY: &[u8] = b"s3cret-signing-key";
    const BODY: &[u8] = br#"{"event":"sms:received"}"#;
    const NOW: i64 = 1_719_046_000;

    #[test]
    fn sign_matches_an_independent_hmac() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"s3cret-signing-key",
        //   b"{\"event\":\"sms:received\"}1719046000", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(KEY, BODY, &NOW.to_string()),
            "4cd1d9427dc5db08c0498cc4f91b04344e617233548496101e549b6624f9a182"
        );
    }

    #[test]
    fn sign_is_hmac_sha256_of_body_then_timestamp() {
        // RFC 4231 test case 2, with the message split between body and timestamp.
        assert_eq!(
            sign(b"Jefe", b"what do ya want ", "for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verifies_within_the_window() {
        for sent in [NOW - 300, NOW, NOW + 300] {
            let signature = sign(KEY, BODY, &sent.to_string());
            assert_eq!(
                verify_signature(KEY, BODY, &sent.to_string(), &signature, NOW),
                Ok(())
            );
            let upper = signature.to_uppercase();
            assert_eq!(
                verify_signature(KEY, BODY, &sent.to_string(), &upper, NOW),
                Ok(())
            );
        }
    }

    #[test]
    fn signature_errors() {
        let ts = NOW.to_string();
        let good = sign(KEY, BODY, &ts);
        let verify = |key: &[u8], body: &[u8], ts: &str, sig: &str| {
            verify_signature(key, body, ts, sig, NOW)
        };
        assert_eq!(
            verify(KEY, BODY, &ts, ""),
            Err(SignatureError::MissingSignature)
        );
        assert_eq!(
            verify(KEY, BODY, "", &good),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(KEY, BODY, "17e8", &good),
            Err(SignatureError::BadTimestamp("17e8".into()))
        );
        assert_eq!(
            verify(
                KEY,
                BODY,
                &(NOW - 301).to_string(),
                &sign(KEY, BODY, &(NOW - 301).to_string())
            ),
            Err(SignatureError::Stale { age: 301 })
        );
        assert_eq!(
            verify(
                KEY,
                BODY,
                &(NOW + 301).to_string(),
                &sign(KEY, BODY, &(NOW + 301).to_string())
            ),
            Err(SignatureError::Stale { age: -301 })
        );
        assert_eq!(
            verify(KEY, BODY, &i64::MIN.to_string(), &good),
            Err(SignatureError::Stale {
                age: NOW.saturating_sub(i64::MIN)
            })
        );
        assert_eq!(
            verify(KEY, BODY, &ts, &good[..62]),
            Err(SignatureError::BadSignatureFormat)
        );
        let not_hex = format!("{}zz", &good[..62]);
        assert_eq!(
            verify(KEY, BODY, &ts, &not_hex),
            Err(SignatureError::BadSignatureFormat)
        );
        let signed = format!("+{}", &good[1..]);
        assert_eq!(
            verify(KEY, BODY, &ts, &signed),
            Err(SignatureError::BadSignatureFormat)
        );
        // Tampered body, timestamp (still in the window) or key.
        assert_eq!(
            verify(KEY, br#"{"event":"sms:sent"}"#, &ts, &good),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(KEY, BODY, &(NOW + 1).to_string(), &good),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(b"other", BODY, &ts, &good),
            Err(SignatureError::BadSignature)
        );
        let err = SignatureError::Stale { age: 400 }.to_string();
        assert!(err.contains("stale") && err.contains("400 s"), "{err}");
    }
}
