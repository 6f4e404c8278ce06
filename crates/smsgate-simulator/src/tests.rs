//! The simulator is tested the way the server uses it: over HTTP on a loopback port.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

mod local;

const STEP: Duration = Duration::from_millis(20);
/// Long enough that a message stays Pending for the whole test.
const FOREVER: Duration = Duration::from_secs(600);

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {:?}", self.body))
            .to_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
struct Client {
    addr: SocketAddr,
    auth: Option<(String, String)>,
    /// The personality's API base path.
    api: &'static str,
}

impl Client {
    fn with_auth(&self, username: &str, password: &str) -> Self {
        Self {
            auth: Some((username.into(), password.into())),
            ..self.clone()
        }
    }

    fn anonymous(&self) -> Self {
        Self {
            auth: None,
            ..self.clone()
        }
    }

    /// Plain HTTP/1.1 with `Connection: close`, so the whole answer is whatever arrives before
    /// the server closes.
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some((username, password)) = &self.auth {
            let token = STANDARD.encode(format!("{username}:{password}"));
            head.push_str(&format!("Authorization: Basic {token}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(": ").unwrap();
                (name.to_owned(), value.to_owned())
            })
            .collect();
        let reply = Reply {
            status,
            headers,
            body: body.to_owned(),
        };
        assert_eq!(
            reply.header("transfer-encoding"),
            None,
            "chunked answers are not parsed"
        );
        reply
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], b"").await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, &[], b"").await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        let body = serde_json::to_vec(body).unwrap();
        self.send("POST", path, &[("Content-Type", "application/json")], &body)
            .await
    }

    async fn submit(&self, body: &Value) -> Reply {
        self.post(&format!("{}/messages", self.api), body).await
    }

    async fn message(&self, id: &str) -> Reply {
        self.get(&format!("{}/messages/{id}", self.api)).await
    }

    /// Polls until the message reaches `state`, then returns its MessageState.
    async fn wait_for(&self, id: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let reply = self.message(id).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let message = reply.json();
            if message["state"] == state {
                return message;
            }
            assert!(
                Instant::now() < deadline,
                "{id} is still {} instead of {state}",
                message["state"]
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn start(config: SimulatorConfig) -> Client {
    let api = config.mode.api_prefix();
    let simulator = Simulator::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(simulator.serve(listener, std::future::pending()));
    Client {
        addr,
        auth: Some(("demo".into(), "demo1234".into())),
        api,
    }
}

fn config(step_delay: Duration, rules: Vec<OutcomeRule>) -> SimulatorConfig {
    SimulatorConfig {
        step_delay,
        rules,
        ..SimulatorConfig::default()
    }
}

fn rule(pattern: &str, outcome: Outcome) -> OutcomeRule {
    OutcomeRule {
        pattern: pattern.into(),
        outcome,
    }
}

fn text_to(phone_numbers: &[&str]) -> Value {
    json!({ "textMessage": { "text": "Hello" }, "phoneNumbers": phone_numbers })
}

/// Checks that `states` holds exactly `expected`, reached in that order. JSON objects carry no
/// order (the real gateway's Go encoder sorts the keys), so the order comes from the times.
fn assert_history(message: &Value, expected: &[&str]) {
    let mut names: Vec<_> = message["states"].as_object().unwrap().keys().collect();
    names.sort();
    let mut wanted = expected.to_vec();
    wanted.sort_unstable();
    assert_eq!(names, wanted, "{message}");
    let times: Vec<_> = expected.iter().map(|s| state_time(message, s)).collect();
    assert!(times.is_sorted(), "{message}");
}

fn state_time(message: &Value, state: &str) -> DateTime<Utc> {
    let text = message["states"][state].as_str().unwrap();
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn is_generated_id(id: &str) -> bool {
    id.len() == 21
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[tokio::test]
async fn requests_without_valid_credentials_get_401() {
    let client = start(SimulatorConfig::default()).await;
    for reply in [
        client.anonymous().get("/3rdparty/v1/devices").await,
        client
            .with_auth("demo", "wrong")
            .get("/3rdparty/v1/devices")
            .await,
        client
            .with_auth("demo", "demo12345")
            .get("/3rdparty/v1/devices")
            .await,
        client
            .with_auth("nobody", "demo1234")
            .get("/3rdparty/v1/devices")
            .await,
        client.anonymous().submit(&text_to(&["+15550001111"])).await,
    ] {
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert_eq!(reply.message(), "Unauthorized");
        assert!(
            reply
                .header("www-authenticate")
                .unwrap()
                .starts_with("Basic")
        );
    }
    for header in ["Bearer abc", "Basic !!!", "Basic ZGVtbw=="] {
        let reply = client
            .anonymous()
            .send(
                "GET",
                "/3rdparty/v1/devices",
                &[("Authorization", header)],
                b"",
            )
            .await;
        assert_eq!(reply.status, 401, "{header}");
    }
}

#[tokio::test]
async fn each_account_has_one_device() {
    let client = start(SimulatorConfig {
        accounts: vec![
            SimAccount {
                username: "demo".into(),
                password: "demo1234".into(),
                signing_key: None,
            },
            SimAccount {
                username: "other".into(),
                password: "secret:with:colons".into(),
                signing_key: None,
            },
        ],
        ..SimulatorConfig::default()
    })
    .await;
    let other = client.with_auth("other", "secret:with:colons");
    let mine = client.get("/3rdparty/v1/devices").await;
    let theirs = other.get("/3rdparty/v1/devices").await;
    assert_eq!(mine.status, 200);
    assert_eq!(theirs.status, 200);
    let (mine, theirs) = (mine.json(), theirs.json());
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let device = &mine[0];
    assert!(is_generated_id(device["id"].as_str().unwrap()));
    assert_eq!(device["name"], "Simulator");
    for field in ["createdAt", "updatedAt", "lastSeen"] {
        DateTime::parse_from_rfc3339(device[field].as_str().unwrap()).unwrap();
    }
    assert_ne!(device["id"], theirs[0]["id"]);

    let mut body = text_to(&["+15550001111"]);
    body["deviceId"] = device["id"].clone();
    assert_eq!(client.submit(&body).await.status, 202);
    let reply = other.submit(&body).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.message(), "failed to select device: record not found");
}

#[tokio::test]
async fn text_message_progresses_to_delivered() {
    let client = start(config(STEP, vec![])).await;
    let reply = client
        .submit(&text_to(&["+15550001111", "+15550002222"]))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let accepted = reply.json();
    let id = accepted["id"].as_str().unwrap();
    assert!(is_generated_id(id), "{id}");
    assert_eq!(
        reply.header("location"),
        Some(format!("/3rdparty/v1/messages/{id}").as_str())
    );
    assert_eq!(accepted["state"], "Pending");
    assert_eq!(accepted["isHashed"], false);
    assert_eq!(accepted["isEncrypted"], false);
    assert!(accepted.get("textMessage").is_none());
    assert_eq!(
        accepted["recipients"],
        json!([
            { "phoneNumber": "+15550001111", "state": "Pending", "error": null },
            { "phoneNumber": "+15550002222", "state": "Pending", "error": null },
        ])
    );
    assert_history(&accepted, &["Pending"]);
    assert_eq!(accepted["deviceId"].as_str().unwrap().len(), 21);

    let delivered = client.wait_for(id, "Delivered").await;
    assert_history(&delivered, &["Pending", "Processed", "Sent", "Delivered"]);
    let times: Vec<_> = ["Pending", "Processed", "Sent", "Delivered"]
        .iter()
        .map(|s| state_time(&delivered, s))
        .collect();
    for pair in times.windows(2) {
        assert_eq!((pair[1] - pair[0]).to_std().unwrap(), STEP);
    }
    assert_eq!(delivered["recipients"][1]["state"], "Delivered");
    assert_eq!(delivered["recipients"][1]["error"], Value::Null);
}

/// The demo account and another one, `other` / `other1234`.
pub(super) fn two_accounts() -> Vec<SimAccount> {
    ["demo", "other"]
        .into_iter()
        .map(|username| SimAccount {
            username: username.into(),
            password: format!("{username}1234"),
            signing_key: None,
        })
        .collect()
}

#[tokio::test]
async fn message_ids_are_unique_per_account() {
    let client = start(SimulatorConfig {
        accounts: two_accounts(),
        step_delay: FOREVER,
        ..SimulatorConfig::default()
    })
    .await;
    let other = client.with_auth("other", "other1234");
    let mut body = text_to(&["+15550001111"]);
    body["id"] = json!("order-17");
    let first = client.submit(&body).await;
    assert_eq!(first.status, 202);
    assert_eq!(first.json()["id"], "order-17");
    let again = client.submit(&body).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.message(), "message with the same ID already exists");
    // Accounts are separate: the same id is free elsewhere and invisible across.
    assert_eq!(other.submit(&body).await.status, 202);
    assert_eq!(
        other.delete("/3rdparty/v1/messages/order-17").await.status,
        200
    );
    assert_eq!(client.message("order-17").await.json()["state"], "Pending");
}

#[tokio::test]
async fn client_ids_are_percent_encoded_in_location() {
    let client = start(SimulatorConfig::default()).await;
    let mut body = text_to(&["+15550001111"]);
    body["id"] = json!("a b/ü");
    let reply = client.submit(&body).await;
    assert_eq!(reply.status, 202);
    let location = reply.header("location").unwrap();
    assert_eq!(location, "/3rdparty/v1/messages/a%20b%2F%C3%BC");
    let fetched = client.get(location).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.json()["id"], "a b/ü");
}

#[tokio::test]
async fn phone_numbers_are_validated() {
    let client = start(SimulatorConfig::default()).await;
    let reply = client
        .submit(&text_to(&["+15550001111", "+15550001111"]))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.message(), "phone numbers must be unique");

    for number in [
        "79990001234",
        "+1234567",
        "+1234567890123456",
        "+1555000111a",
        "+",
    ] {
        let reply = client.submit(&text_to(&[number])).await;
        assert_eq!(reply.status, 400, "{number}");
        assert_eq!(reply.message(), "invalid phone number", "{number}");
    }
    assert_eq!(client.submit(&text_to(&["+12345678"])).await.status, 202);
    assert_eq!(
        client.submit(&text_to(&["+123456789012345"])).await.status,
        202
    );

    let skipped = client
        .post(
            "/3rdparty/v1/messages?skipPhoneValidation=true",
            &text_to(&["79990001234"]),
        )
        .await;
    assert_eq!(skipped.status, 202, "{}", skipped.body);
    assert_eq!(
        skipped.json()["recipients"][0]["phoneNumber"],
        "79990001234"
    );
    let mut encrypted = text_to(&["base64-ciphertext"]);
    encrypted["isEncrypted"] = json!(true);
    let reply = client.submit(&encrypted).await;
    assert_eq!(reply.status, 202);
    assert_eq!(reply.json()["isEncrypted"], true);

    let bad_flag = client
        .post(
            "/3rdparty/v1/messages?skipPhoneValidation=yes",
            &text_to(&["79990001234"]),
        )
        .await;
    assert_eq!(bad_flag.status, 400);
}

#[tokio::test]
async fn invalid_requests_get_400() {
    let client = start(SimulatorConfig::default()).await;
    let future = (Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let later = (Utc::now() + chrono::TimeDelta::hours(2)).to_rfc3339();
    let past = (Utc::now() - chrono::TimeDelta::hours(1)).to_rfc3339();
    let phones = json!(["+15550001111"]);
    let cases = [
        json!({ "id": "x".repeat(37), "textMessage": { "text": "a" }, "phoneNumbers": phones }),
        json!({ "deviceId": "x".repeat(22), "textMessage": { "text": "a" }, "phoneNumbers": phones }),
        json!({ "deviceId": "unknown", "textMessage": { "text": "a" }, "phoneNumbers": phones }),
        json!({ "phoneNumbers": phones }),
        json!({ "message": "a", "textMessage": { "text": "a" }, "phoneNumbers": phones }),
        json!({ "textMessage": { "text": "a" }, "dataMessage": { "data": "AA==", "port": 1 }, "phoneNumbers": phones }),
        json!({ "textMessage": { "text": "" }, "phoneNumbers": phones }),
        json!({ "textMessage": {}, "phoneNumbers": phones }),
        json!({ "textMessage": { "text": "a".repeat(65536) }, "phoneNumbers": phones }),
        json!({ "textMessage": { "text": "a" } }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": [] }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": [""] }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": (0..101).map(|i| format!("+1555000{i:04}")).collect::<Vec<_>>() }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": "+15550001111" }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": phones, "simNumber": 0 }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": phones, "simNumber": 4 }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": phones, "priority": 128 }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": phones, "priority": -129 }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": phones, "ttl": 4 }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": phones, "ttl": 60, "validUntil": future }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": phones, "validUntil": "tomorrow" }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": phones, "scheduleAt": past }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": phones, "scheduleAt": later, "validUntil": future }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": phones, "withDeliveryReport": "yes" }),
        json!(null),
        json!([]),
    ];
    for body in &cases {
        let reply = client.submit(body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(!reply.message().is_empty());
    }

    let accepted = [
        json!({ "message": "legacy", "phoneNumbers": phones }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": phones, "unknownField": { "x": 1 },
                "simNumber": 3, "priority": -128, "ttl": 5, "withDeliveryReport": false, "id": "" }),
        json!({ "textMessage": { "text": "a" }, "phoneNumbers": phones, "validUntil": later, "scheduleAt": future }),
    ];
    for body in &accepted {
        let reply = client.submit(body).await;
        assert_eq!(reply.status, 202, "{body}: {}", reply.body);
    }
    let reply = client
        .post(
            "/3rdparty/v1/messages?deviceActiveWithin=-1",
            &text_to(&["+15550001111"]),
        )
        .await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn malformed_bodies_get_400_json() {
    let client = start(SimulatorConfig::default()).await;
    let path = "/3rdparty/v1/messages";
    let json_type = [("Content-Type", "application/json")];
    let broken = client
        .send("POST", path, &json_type, b"{\"phoneNumbers\": [")
        .await;
    assert_eq!(broken.status, 400);
    assert!(!broken.message().is_empty());
    let body = serde_json::to_vec(&text_to(&["+15550001111"])).unwrap();
    let text_type = [("Content-Type", "text/plain")];
    let wrong_type = client.send("POST", path, &text_type, &body).await;
    assert_eq!(wrong_type.status, 400);
    assert!(!wrong_type.message().is_empty());
    let no_type = client.send("POST", path, &[], &body).await;
    assert_eq!(no_type.status, 400);
    let webhook = client
        .send("POST", "/3rdparty/v1/webhooks", &json_type, b"not json")
        .await;
    assert_eq!(webhook.status, 400);
    assert!(!webhook.message().is_empty());
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let client = start(SimulatorConfig::default()).await;
    let reply = client.get("/3rdparty/v1/nope").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.message(), "Cannot GET /3rdparty/v1/nope");
    let reply = client.send("PUT", "/3rdparty/v1/devices", &[], b"").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.message(), "Method Not Allowed");
}

#[tokio::test]
async fn data_message_is_accepted() {
    let client = start(config(Duration::ZERO, vec![])).await;
    let body = json!({
        "dataMessage": { "data": "SGVsbG8=", "port": 53739 },
        "phoneNumbers": ["+15550001111"],
    });
    let reply = client.submit(&body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    // With no delay the whole lifecycle has already happened.
    assert_eq!(reply.json()["state"], "Delivered");
    let list = client
        .get("/3rdparty/v1/messages?includeContent=true")
        .await;
    assert_eq!(
        list.json()[0]["dataMessage"],
        json!({ "data": "SGVsbG8=", "port": 53739 })
    );
    for data in [
        json!({ "data": "not base64!", "port": 53739 }),
        json!({ "data": "SGVsbG8", "port": 53739 }),
        json!({ "data": "", "port": 53739 }),
        json!({ "data": "SGVsbG8=", "port": 0 }),
        json!({ "data": "SGVsbG8=", "port": 65536 }),
        json!({ "data": "SGVsbG8=" }),
    ] {
        let reply = client
            .submit(&json!({ "dataMessage": data, "phoneNumbers": ["+15550001111"] }))
            .await;
        assert_eq!(reply.status, 400, "{data}");
    }
}

#[tokio::test]
async fn reject_rules_answer_their_status_and_store_nothing() {
    let reject = |status: u16, message: &str| Outcome::Reject {
        status,
        message: message.into(),
    };
    let client = start(config(
        STEP,
        vec![
            rule(r"^\+1555429", reject(429, "too many requests")),
            rule(
                r"^\+1555503",
                reject(503, "failed to enqueue message: queue limits exceeded"),
            ),
            rule(r"^\+1555500", reject(500, "failed to handle request")),
            rule(r"^\+1555", Outcome::Deliver),
            rule(r".", reject(500, "never reached for +1555 numbers")),
        ],
    ))
    .await;
    for (number, status, message) in [
        ("+15554290000", 429, "too many requests"),
        (
            "+15555030000",
            503,
            "failed to enqueue message: queue limits exceeded",
        ),
        ("+15555000000", 500, "failed to handle request"),
    ] {
        let reply = client.submit(&text_to(&[number])).await;
        assert_eq!(reply.status, status);
        assert_eq!(reply.message(), message);
    }
    // The first rule matching any recipient decides for the whole message.
    let mixed = client
        .submit(&text_to(&["+15550001111", "+15554290000"]))
        .await;
    assert_eq!(mixed.status, 429);
    assert_eq!(client.submit(&text_to(&["+15550001111"])).await.status, 202);
    assert_eq!(
        client.submit(&text_to(&["+4915550001111"])).await.status,
        500
    );

    let stored = client.get("/simulator/v1/messages").await.json();
    assert_eq!(stored.as_array().unwrap().len(), 1);
    let counts = client.get("/simulator/v1/requests").await.json();
    assert_eq!(counts["POST /messages 429"], 2);
    assert_eq!(counts["POST /messages 503"], 1);
    assert_eq!(counts["POST /messages 500"], 2);
    assert_eq!(counts["POST /messages 202"], 1);
}

#[tokio::test]
async fn fail_rule_ends_in_failed_with_the_reason() {
    let client = start(config(
        STEP,
        vec![rule(
            r"0000$",
            Outcome::Fail {
                reason: "RESULT_ERROR_GENERIC_FAILURE".into(),
            },
        )],
    ))
    .await;
    let id = client.submit(&text_to(&["+15550000000"])).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = client.wait_for(&id, "Sent").await;
    assert_eq!(sent["recipients"][0]["error"], Value::Null);
    let failed = client.wait_for(&id, "Failed").await;
    assert_history(&failed, &["Pending", "Processed", "Sent", "Failed"]);
    assert_eq!(failed["recipients"][0]["state"], "Failed");
    assert_eq!(
        failed["recipients"][0]["error"],
        "RESULT_ERROR_GENERIC_FAILURE"
    );
}

#[tokio::test]
async fn without_delivery_report_a_message_stays_sent() {
    let client = start(config(STEP, vec![])).await;
    let mut body = text_to(&["+15550001111"]);
    body["withDeliveryReport"] = json!(false);
    let id = client.submit(&body).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    client.wait_for(&id, "Sent").await;
    tokio::time::sleep(STEP * 4).await;
    let later = client.message(&id).await.json();
    assert_eq!(later["state"], "Sent");
    assert_history(&later, &["Pending", "Processed", "Sent"]);
}

#[tokio::test]
async fn scheduled_message_waits_for_its_time() {
    let client = start(config(STEP, vec![])).await;
    let schedule_at = Utc::now() + chrono::TimeDelta::milliseconds(500);
    let mut body = text_to(&["+15550001111"]);
    body["scheduleAt"] = json!(schedule_at.to_rfc3339());
    let reply = client.submit(&body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(client.message(&id).await.json()["state"], "Pending");
    let delivered = client.wait_for(&id, "Delivered").await;
    assert!(state_time(&delivered, "Processed") >= schedule_at);
}

#[tokio::test]
async fn message_expires_when_its_validity_ends_first() {
    let client = start(config(FOREVER, vec![])).await;
    let mut body = text_to(&["+15550001111"]);
    body["validUntil"] = json!((Utc::now() + chrono::TimeDelta::milliseconds(200)).to_rfc3339());
    let id = client.submit(&body).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = client.wait_for(&id, "Failed").await;
    assert_history(&failed, &["Pending", "Failed"]);
    assert_eq!(failed["recipients"][0]["error"], "message expired");
}

#[tokio::test]
async fn stall_rule_accepts_at_once_and_answers_late() {
    const STALL: Duration = Duration::from_millis(700);
    let client = start(config(
        STEP,
        vec![rule(r"^\+1555999", Outcome::Stall { delay: STALL })],
    ))
    .await;
    let mut body = text_to(&["+15559990000"]);
    body["id"] = json!("slow-1");
    let started = Instant::now();
    let stalled = tokio::spawn({
        let client = client.clone();
        let body = body.clone();
        async move { client.submit(&body).await }
    });
    // The gateway has the message while the client is still waiting for the answer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.get("/simulator/v1/messages").await.json()[0]["id"] != "slow-1" {
        assert!(
            Instant::now() < deadline,
            "the stalled message was not stored"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!stalled.is_finished());
    // A client that gave up and retries with the same id learns it is already there.
    let retry = client.submit(&body).await;
    assert_eq!(retry.status, 409);
    let reply = stalled.await.unwrap();
    assert!(started.elapsed() >= STALL);
    assert_eq!(reply.status, 202);
    assert_eq!(reply.json()["id"], "slow-1");

    let quick = Instant::now();
    assert_eq!(client.submit(&text_to(&["+15550001111"])).await.status, 202);
    assert!(quick.elapsed() < STALL);
}

#[tokio::test]
async fn shutdown_releases_stalled_requests() {
    let simulator = Simulator::new(config(
        STEP,
        vec![rule(".", Outcome::Stall { delay: FOREVER })],
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(simulator.serve(listener, async {
        let _ = stopped.await;
    }));
    let client = Client {
        addr,
        auth: Some(("demo".into(), "demo1234".into())),
        api: Personality::Cloud.api_prefix(),
    };
    let stalled = tokio::spawn({
        let client = client.clone();
        async move { client.submit(&text_to(&["+15550001111"])).await }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.get("/simulator/v1/messages").await.json() == json!([]) {
        assert!(
            Instant::now() < deadline,
            "the stalled message was not stored"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(()).unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), stalled)
        .await
        .expect("the stalled request was answered")
        .unwrap();
    assert_eq!(reply.status, 202);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stopped")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn unknown_message_is_404() {
    let client = start(SimulatorConfig::default()).await;
    for reply in [
        client.message("missing").await,
        client.delete("/3rdparty/v1/messages/missing").await,
    ] {
        assert_eq!(reply.status, 404);
        assert_eq!(reply.message(), "message not found");
    }
}

#[tokio::test]
async fn only_pending_messages_can_be_cancelled() {
    let client = start(config(FOREVER, vec![])).await;
    let id = client.submit(&text_to(&["+15550001111"])).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/3rdparty/v1/messages/{id}");
    let cancelling = client.delete(&path).await;
    assert_eq!(cancelling.status, 200, "{}", cancelling.body);
    let cancelling = cancelling.json();
    assert_eq!(cancelling["state"], "Cancelling");
    assert_eq!(cancelling["recipients"][0]["state"], "Cancelling");
    assert_history(&cancelling, &["Pending", "Cancelling"]);
    let cancelled = client.message(&id).await.json();
    assert_eq!(cancelled["state"], "Cancelled");
    assert_history(&cancelled, &["Pending", "Cancelling", "Cancelled"]);
    let again = client.delete(&path).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.message(), "message is not pending");

    let client = start(config(STEP, vec![])).await;
    let id = client.submit(&text_to(&["+15550001111"])).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    client.wait_for(&id, "Sent").await;
    let late = client.delete(&format!("/3rdparty/v1/messages/{id}")).await;
    assert_eq!(late.status, 409);
    assert_eq!(late.message(), "message is not pending");
}

#[tokio::test]
async fn messages_are_listed_newest_first_with_a_total() {
    let client = start(config(FOREVER, vec![])).await;
    for id in ["m1", "m2", "m3"] {
        let mut body = text_to(&["+15550001111"]);
        body["id"] = json!(id);
        assert_eq!(client.submit(&body).await.status, 202);
    }
    client.delete("/3rdparty/v1/messages/m2").await;
    let ids = |reply: &Reply| -> Vec<String> {
        reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let page = client.get("/3rdparty/v1/messages?limit=2").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("x-total-count"), Some("3"));
    assert_eq!(ids(&page), ["m3", "m2"]);
    let rest = client.get("/3rdparty/v1/messages?limit=2&offset=2").await;
    assert_eq!(ids(&rest), ["m1"]);
    let oldest_first = client.get("/3rdparty/v1/messages?sort=created_at").await;
    assert_eq!(ids(&oldest_first), ["m1", "m2", "m3"]);
    let cancelled = client.get("/3rdparty/v1/messages?state=Cancelled").await;
    assert_eq!(cancelled.header("x-total-count"), Some("1"));
    assert_eq!(ids(&cancelled), ["m2"]);
    let content = client
        .get("/3rdparty/v1/messages?includeContent=true&limit=1")
        .await;
    assert_eq!(content.json()[0]["textMessage"], json!({ "text": "Hello" }));
    let future = (Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let none = client
        .get(&format!(
            "/3rdparty/v1/messages?from={}",
            future.replace('+', "%2B")
        ))
        .await;
    assert_eq!(none.header("x-total-count"), Some("0"));
    for query in [
        "limit=0",
        "limit=101",
        "offset=-1",
        "state=Lost",
        "sort=id",
        "from=yesterday",
    ] {
        let reply = client.get(&format!("/3rdparty/v1/messages?{query}")).await;
        assert_eq!(reply.status, 400, "{query}");
    }
}

#[tokio::test]
async fn webhooks_are_stored_per_account() {
    let client = start(SimulatorConfig {
        accounts: vec![
            SimAccount {
                username: "demo".into(),
                password: "demo1234".into(),
                signing_key: None,
            },
            SimAccount {
                username: "other".into(),
                password: "other1234".into(),
                signing_key: None,
            },
        ],
        allow_http_webhooks: false,
        ..SimulatorConfig::default()
    })
    .await;
    let path = "/3rdparty/v1/webhooks";
    assert_eq!(client.get(path).await.json(), json!([]));

    for body in [
        // Plain http is for local use only; this simulator checks like the real API.
        json!({ "url": "http://example.com/hook", "event": "sms:received" }),
        json!({ "url": "https://", "event": "sms:received" }),
        json!({ "url": "ftp://example.com", "event": "sms:received" }),
        json!({ "event": "sms:received" }),
        json!({ "url": "https://example.com/hook", "event": "sms:delivery" }),
        json!({ "url": "https://example.com/hook" }),
        json!({ "url": "https://example.com/hook", "event": "sms:sent", "deviceId": "unknown" }),
        json!({ "id": "x".repeat(37), "url": "https://example.com/hook", "event": "sms:sent" }),
    ] {
        let reply = client.post(path, &body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert!(!reply.message().is_empty());
    }

    let created = client
        .post(
            path,
            &json!({ "deviceId": null, "url": "https://example.com/a?session=1", "event": "sms:received" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    let generated = created["id"].as_str().unwrap().to_owned();
    assert!(is_generated_id(&generated));
    assert_eq!(created["deviceId"], Value::Null);
    assert_eq!(created["event"], "sms:received");

    let device_id = client.get("/3rdparty/v1/devices").await.json()[0]["id"].clone();
    let named = json!({ "id": "wh1", "deviceId": device_id, "url": "https://example.com/b", "event": "sms:delivered" });
    assert_eq!(client.post(path, &named).await.status, 201);
    let replacement = json!({ "id": "wh1", "url": "https://example.com/c", "event": "sms:failed" });
    let replaced = client.post(path, &replacement).await;
    assert_eq!(replaced.status, 201);
    assert_eq!(
        replaced.json(),
        json!({ "id": "wh1", "deviceId": null, "url": "https://example.com/c", "event": "sms:failed" })
    );
    let list = client.get(path).await.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["id"], generated.as_str());
    assert_eq!(list[1]["url"], "https://example.com/c");

    let other = client.with_auth("other", "other1234");
    assert_eq!(other.get(path).await.json(), json!([]));
    assert_eq!(other.delete(&format!("{path}/wh1")).await.status, 404);

    let deleted = client.delete(&format!("{path}/wh1")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, "");
    let missing = client.delete(&format!("{path}/wh1")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.message(), "webhook not found");
    assert_eq!(client.get(path).await.json().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn inspection_shows_messages_and_request_counts() {
    let client = start(config(STEP, vec![])).await;
    client.get("/3rdparty/v1/devices").await;
    client.get("/3rdparty/v1/devices").await;
    client.anonymous().get("/3rdparty/v1/devices").await;
    client.message("missing").await;
    let body = json!({
        "id": "seen-1",
        "textMessage": { "text": "Hi" },
        "phoneNumbers": ["+15550001111"],
        "somethingNew": true,
    });
    assert_eq!(client.submit(&body).await.status, 202);
    client.wait_for("seen-1", "Delivered").await;

    let messages = client.anonymous().get("/simulator/v1/messages").await;
    assert_eq!(messages.status, 200);
    let messages = messages.json();
    assert_eq!(messages.as_array().unwrap().len(), 1);
    let message = &messages[0];
    assert_eq!(message["id"], "seen-1");
    assert_eq!(message["account"], "demo");
    assert_eq!(message["request"], body);
    assert_eq!(message["state"], "Delivered");
    assert_eq!(
        message["messageState"]["recipients"][0]["state"],
        "Delivered"
    );
    DateTime::parse_from_rfc3339(message["receivedAt"].as_str().unwrap()).unwrap();

    let counts = client
        .anonymous()
        .get("/simulator/v1/requests")
        .await
        .json();
    assert_eq!(counts["GET /devices 200"], 2);
    assert_eq!(counts["GET /devices 401"], 1);
    assert_eq!(counts["GET /messages/{id} 404"], 1);
    assert_eq!(counts["POST /messages 202"], 1);
    assert!(counts["GET /messages/{id} 200"].as_u64().unwrap() >= 1);
    assert!(
        counts
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.contains("/simulator/")),
        "{counts}"
    );

    client
        .post(
            "/3rdparty/v1/webhooks",
            &json!({ "url": "https://example.com", "event": "sms:sent" }),
        )
        .await;
    let reset = client
        .anonymous()
        .send("POST", "/simulator/v1/reset", &[], b"")
        .await;
    assert_eq!(reset.status, 204);
    assert_eq!(client.get("/simulator/v1/messages").await.json(), json!([]));
    assert_eq!(client.get("/simulator/v1/requests").await.json(), json!({}));
    assert_eq!(client.message("seen-1").await.status, 404);
    assert_eq!(client.get("/3rdparty/v1/webhooks").await.json(), json!([]));
    // The devices survive a reset, so a server that cached a device id keeps working.
    assert_eq!(client.submit(&body).await.status, 202);
}

#[test]
fn config_reads_durations_and_outcomes() {
    let config: SimulatorConfig = serde_json::from_value(json!({
        "accounts": [{ "username": "alice", "password": "correct horse" }],
        "step_delay": "500ms",
        "rules": [
            { "pattern": "^\\+1555", "outcome": { "kind": "deliver" } },
            { "pattern": "0$", "outcome": { "kind": "fail", "reason": "no signal" } },
            { "pattern": "9$", "outcome": { "kind": "reject", "status": 503, "message": "queue full" } },
            { "pattern": "8$", "outcome": { "kind": "stall", "delay": "1m 30s" } },
            { "pattern": "7$", "outcome": { "kind": "stall", "delay": "2s" } },
        ],
    }))
    .unwrap();
    assert_eq!(config.step_delay, Duration::from_millis(500));
    assert_eq!(config.accounts[0].username, "alice");
    assert_eq!(
        config.rules.iter().map(|r| &r.outcome).collect::<Vec<_>>(),
        [
            &Outcome::Deliver,
            &Outcome::Fail {
                reason: "no signal".into()
            },
            &Outcome::Reject {
                status: 503,
                message: "queue full".into()
            },
            &Outcome::Stall {
                delay: Duration::from_secs(90)
            },
            &Outcome::Stall {
                delay: Duration::from_secs(2)
            },
        ]
    );
    config.validate().unwrap();

    let shown = serde_json::to_value(&config).unwrap();
    assert_eq!(shown["step_delay"], "500ms");
    assert_eq!(
        shown["rules"][3]["outcome"],
        json!({ "kind": "stall", "delay": "1m 30s" })
    );
    let back: SimulatorConfig = serde_json::from_value(shown).unwrap();
    assert_eq!(back, config);

    let defaults: SimulatorConfig = serde_json::from_value(json!({})).unwrap();
    assert_eq!(defaults, SimulatorConfig::default());
    assert_eq!(defaults.step_delay, Duration::from_secs(1));
    assert_eq!(defaults.accounts[0].username, "demo");
    assert_eq!(defaults.accounts[0].password, "demo1234");
    assert!(defaults.rules.is_empty());
    defaults.validate().unwrap();

    for bad in [
        json!({ "step": "1s" }),
        json!({ "step_delay": "soon" }),
        // Like every duration of the server's configuration, a delay needs its unit.
        json!({ "step_delay": 3 }),
        json!({ "accounts": [{ "username": "a" }] }),
        json!({ "accounts": [{ "username": "a", "password": "b", "admin": true }] }),
        json!({ "rules": [{ "pattern": "x", "outcome": { "kind": "explode" } }] }),
        json!({ "rules": [{ "pattern": "x", "outcome": { "kind": "fail" } }] }),
        json!({ "rules": [{ "pattern": "x" }] }),
    ] {
        assert!(
            serde_json::from_value::<SimulatorConfig>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn account_debug_hides_the_password() {
    let shown = format!("{:?}", SimulatorConfig::default());
    assert!(shown.contains("demo"));
    assert!(!shown.contains("demo1234"), "{shown}");
}

#[test]
fn validate_names_the_offending_key() {
    let account = |username: &str, password: &str| SimAccount {
        username: username.into(),
        password: password.into(),
        signing_key: None,
    };
    let with_accounts = |accounts| SimulatorConfig {
        accounts,
        ..SimulatorConfig::default()
    };
    let with_rules = |rules| SimulatorConfig {
        rules,
        ..SimulatorConfig::default()
    };
    let cases = [
        (with_accounts(vec![]), "simulator.accounts: "),
        (
            with_accounts(vec![
                account("a", "x"),
                account("b", "y"),
                account("a", "z"),
            ]),
            "simulator.accounts[2].username: \"a\" is already used by simulator.accounts[0]",
        ),
        (
            with_accounts(vec![account("", "x")]),
            "simulator.accounts[0].username: ",
        ),
        (
            with_accounts(vec![account("a:b", "x")]),
            "simulator.accounts[0].username: ",
        ),
        (
            with_accounts(vec![account("a", "")]),
            "simulator.accounts[0].password: ",
        ),
        (
            with_rules(vec![
                rule("^ok$", Outcome::Deliver),
                rule("(", Outcome::Deliver),
            ]),
            "simulator.rules[1].pattern: ",
        ),
        (
            with_rules(vec![rule(
                ".",
                Outcome::Reject {
                    status: 200,
                    message: "ok".into(),
                },
            )]),
            "simulator.rules[0].outcome.status: ",
        ),
    ];
    for (config, expected) in cases {
        let error = config.validate().unwrap_err();
        assert!(
            error.starts_with(expected),
            "{error:?} should start with {expected:?}"
        );
    }
}

#[test]
fn password_comparison_checks_every_byte() {
    assert!(constant_time_eq(b"demo1234", b"demo1234"));
    assert!(constant_time_eq(b"", b""));
    assert!(!constant_time_eq(b"demo1234", b"demo1235"));
    assert!(!constant_time_eq(b"demo1234", b"demo123"));
    assert!(!constant_time_eq(b"demo", b"demo\0"));
}

/// Also used by the Local personality's tests.
mod webhooks {
    use std::collections::{HashSet, VecDeque};
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    use super::*;

    const KEY: &str = "correct horse battery staple";
    const BACKOFF: Duration = Duration::from_millis(40);

    /// A webhook endpoint that records every request and answers with the next status of its
    /// script, 200 once the script is used up.
    #[derive(Clone)]
    pub(super) struct Receiver {
        addr: SocketAddr,
        calls: Arc<Mutex<Vec<Call>>>,
        script: Arc<Mutex<VecDeque<u16>>>,
    }

    #[derive(Clone)]
    pub(super) struct Call {
        pub(super) path: String,
        headers: HeaderMap,
        body: Bytes,
        at: Instant,
    }

    impl Call {
        pub(super) fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap()
        }

        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(|v| v.to_str().unwrap())
        }
    }

    async fn record(
        State(receiver): State<Receiver>,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        receiver.calls.lock().unwrap().push(Call {
            path: uri.path().to_owned(),
            headers,
            body,
            at: Instant::now(),
        });
        let status = receiver.script.lock().unwrap().pop_front().unwrap_or(200);
        StatusCode::from_u16(status).unwrap()
    }

    impl Receiver {
        pub(super) async fn start(script: &[u16]) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let receiver = Self {
                addr: listener.local_addr().unwrap(),
                calls: Arc::default(),
                script: Arc::new(Mutex::new(script.iter().copied().collect())),
            };
            let app = Router::new().fallback(record).with_state(receiver.clone());
            tokio::spawn(async move { axum::serve(listener, app).await });
            receiver
        }

        pub(super) fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        fn calls(&self) -> Vec<Call> {
            self.calls.lock().unwrap().clone()
        }

        async fn wait_for(&self, count: usize) {
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.calls().len() < count {
                assert!(
                    Instant::now() < deadline,
                    "{} of {count} webhook calls arrived",
                    self.calls().len()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }

        /// Waits for `count` calls, then checks that no more follow for a while.
        pub(super) async fn expect(&self, count: usize) -> Vec<Call> {
            self.wait_for(count).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let calls = self.calls();
            assert_eq!(calls.len(), count, "more webhook calls than expected");
            calls
        }
    }

    fn account(username: &str, password: &str, signing_key: Option<&str>) -> SimAccount {
        SimAccount {
            username: username.into(),
            password: password.into(),
            signing_key: signing_key.map(Into::into),
        }
    }

    /// "demo" signs its webhooks, "other" does not.
    pub(super) fn webhook_config(rules: Vec<OutcomeRule>) -> SimulatorConfig {
        SimulatorConfig {
            accounts: vec![
                account("demo", "demo1234", Some(KEY)),
                account("other", "other1234", None),
            ],
            step_delay: STEP,
            rules,
            webhooks: WebhookDeliveryConfig {
                retries: 3,
                backoff: BACKOFF,
                timeout: Duration::from_secs(2),
            },
            ..SimulatorConfig::default()
        }
    }

    impl Client {
        pub(super) async fn register(&self, event: &str, url: &str) -> String {
            let reply = self
                .post(
                    &format!("{}/webhooks", self.api),
                    &json!({ "url": url, "event": event }),
                )
                .await;
            assert_eq!(reply.status, 201, "{}", reply.body);
            reply.json()["id"].as_str().unwrap().to_owned()
        }

        async fn device_id(&self) -> String {
            self.get("/3rdparty/v1/devices").await.json()[0]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }

        async fn deliveries(&self) -> Vec<Value> {
            let reply = self
                .anonymous()
                .get("/simulator/v1/webhook-deliveries")
                .await;
            assert_eq!(reply.status, 200);
            reply.json().as_array().unwrap().clone()
        }
    }

    /// Checks the signature the way a receiver would, independently of the simulator's code.
    pub(super) fn assert_signed(call: &Call) {
        let timestamp = call.header("x-timestamp").expect("X-Timestamp");
        let seconds: i64 = timestamp.parse().unwrap();
        assert!((Utc::now().timestamp() - seconds).abs() < 60, "{timestamp}");
        let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
        mac.update(&call.body);
        mac.update(timestamp.as_bytes());
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(call.header("x-signature"), Some(expected.as_str()));
    }

    /// Event times carry milliseconds, the API's states the full precision.
    fn assert_same_instant(event_time: DateTime<Utc>, state_time: DateTime<Utc>) {
        let apart = (state_time - event_time).abs();
        assert!(
            apart < chrono::TimeDelta::milliseconds(1),
            "{event_time} vs {state_time}"
        );
    }

    fn assert_phone_time(value: &Value) -> DateTime<Utc> {
        let text = value.as_str().unwrap();
        let shape = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$").unwrap();
        assert!(shape.is_match(text), "{text}");
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    /// The envelope around every payload.
    fn assert_envelope(call: &Call, event: &str, device_id: &str, webhook_id: &str) -> Value {
        assert_eq!(call.header("content-type"), Some("application/json"));
        assert!(
            call.header("user-agent")
                .unwrap()
                .starts_with("me.capcom.smsgateway/"),
            "{:?}",
            call.header("user-agent")
        );
        let body = call.json();
        let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["deviceId", "event", "id", "payload", "webhookId"]);
        assert_eq!(body["event"], event);
        assert_eq!(body["deviceId"], device_id);
        assert_eq!(body["webhookId"], webhook_id);
        assert!(is_generated_id(body["id"].as_str().unwrap()), "{body}");
        body
    }

    #[tokio::test]
    async fn sent_and_delivered_reach_the_webhooks_signed_and_once() {
        let receiver = Receiver::start(&[]).await;
        let client = start(webhook_config(vec![])).await;
        let other = client.with_auth("other", "other1234");
        let sent_hook = client.register("sms:sent", &receiver.url("/sent")).await;
        let delivered_hook = client
            .register("sms:delivered", &receiver.url("/delivered"))
            .await;
        client
            .register("sms:failed", &receiver.url("/failed"))
            .await;
        other.register("sms:sent", &receiver.url("/other")).await;
        let device_id = client.device_id().await;

        let recipients = ["+15550001111", "+15550002222"];
        let mut body = text_to(&recipients);
        // 200 GSM characters need two parts.
        body["textMessage"]["text"] = json!("a".repeat(200));
        body["simNumber"] = json!(2);
        let reply = client.submit(&body).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        let id = reply.json()["id"].as_str().unwrap().to_owned();
        let message = client.wait_for(&id, "Delivered").await;

        let calls = receiver.expect(4).await;
        let mut event_ids = HashSet::new();
        let mut seen = Vec::new();
        for call in &calls {
            assert_signed(call);
            let (event, hook) = match call.path.as_str() {
                "/sent" => ("sms:sent", &sent_hook),
                "/delivered" => ("sms:delivered", &delivered_hook),
                other => panic!("unexpected call to {other}"),
            };
            let body = assert_envelope(call, event, &device_id, hook);
            assert!(event_ids.insert(body["id"].clone()), "event ids repeat");
            let payload = &body["payload"];
            assert_eq!(payload["messageId"], id.as_str());
            assert_eq!(payload["recipient"], payload["phoneNumber"]);
            assert_eq!(payload["sender"], Value::Null);
            assert_eq!(payload["simNumber"], 2);
            let number = payload["phoneNumber"].as_str().unwrap().to_owned();
            if event == "sms:sent" {
                assert_eq!(payload["partsCount"], 2);
                let sent_at = assert_phone_time(&payload["sentAt"]);
                assert_same_instant(sent_at, state_time(&message, "Sent"));
            } else {
                let delivered_at = assert_phone_time(&payload["deliveredAt"]);
                assert_same_instant(delivered_at, state_time(&message, "Delivered"));
            }
            seen.push((event, number));
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                ("sms:delivered", recipients[0].to_owned()),
                ("sms:delivered", recipients[1].to_owned()),
                ("sms:sent", recipients[0].to_owned()),
                ("sms:sent", recipients[1].to_owned()),
            ]
        );

        let deliveries = client.deliveries().await;
        assert_eq!(deliveries.len(), 4, "{deliveries:?}");
        for delivery in &deliveries {
            assert_eq!(delivery["messageId"], id.as_str());
            assert_eq!(delivery["attempt"], 1);
            assert_eq!(delivery["status"], 200);
            assert_eq!(delivery["error"], Value::Null);
            assert!(event_ids.contains(&delivery["eventId"]));
            assert!(delivery["url"].as_str().unwrap().starts_with("http://"));
        }
    }

    #[tokio::test]
    async fn failed_and_cancelled_messages_fire_their_events_unsigned_without_a_key() {
        let receiver = Receiver::start(&[]).await;
        let client = start(webhook_config(vec![rule(
            r"0000$",
            Outcome::Fail {
                reason: "RESULT_ERROR_GENERIC_FAILURE".into(),
            },
        )]))
        .await;
        let other = client.with_auth("other", "other1234");
        let failed_hook = other.register("sms:failed", &receiver.url("/failed")).await;
        let cancelled_hook = other
            .register("sms:cancelled", &receiver.url("/cancelled"))
            .await;
        let device_id = other.device_id().await;

        let failing = other.submit(&text_to(&["+15550000000"])).await.json();
        let failing_id = failing["id"].as_str().unwrap();
        let mut later = text_to(&["+15550001111"]);
        later["scheduleAt"] = json!((Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339());
        let pending = other.submit(&later).await.json();
        let pending_id = pending["id"].as_str().unwrap();
        let cancel = other
            .delete(&format!("/3rdparty/v1/messages/{pending_id}"))
            .await;
        assert_eq!(cancel.status, 200);

        let calls = receiver.expect(2).await;
        for call in &calls {
            assert_eq!(call.header("x-signature"), None);
            assert_eq!(call.header("x-timestamp"), None);
        }
        let cancelled = calls.iter().find(|c| c.path == "/cancelled").unwrap();
        let body = assert_envelope(cancelled, "sms:cancelled", &device_id, &cancelled_hook);
        assert_eq!(body["payload"]["messageId"], pending_id);
        assert_eq!(body["payload"]["phoneNumber"], "+15550001111");
        assert_phone_time(&body["payload"]["cancelledAt"]);

        let failed = calls.iter().find(|c| c.path == "/failed").unwrap();
        let body = assert_envelope(failed, "sms:failed", &device_id, &failed_hook);
        let payload = &body["payload"];
        assert_eq!(payload["messageId"], failing_id);
        assert_eq!(payload["phoneNumber"], "+15550000000");
        assert_eq!(payload["recipient"], "+15550000000");
        assert_eq!(payload["simNumber"], 1);
        assert_eq!(payload["reason"], "RESULT_ERROR_GENERIC_FAILURE");
        let failed_at = assert_phone_time(&payload["failedAt"]);
        let message = other.wait_for(failing_id, "Failed").await;
        assert_same_instant(failed_at, state_time(&message, "Failed"));
    }

    #[tokio::test]
    async fn failed_calls_are_retried_with_a_doubling_backoff() {
        let receiver = Receiver::start(&[500, 500]).await;
        let client = start(webhook_config(vec![])).await;
        client.register("sms:received", &receiver.url("/mo")).await;
        // A port nobody listens on any more: every attempt is a connection error.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let unreachable = format!("http://{}/gone", closed.local_addr().unwrap());
        drop(closed);
        client.register("sms:received", &unreachable).await;

        let reply = client
            .anonymous()
            .post(
                "/simulator/v1/inbox",
                &json!({ "account": "demo", "from": "+4915550001111", "text": "retry me" }),
            )
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        assert_eq!(reply.json()["webhooks"], 2);
        let event_id = reply.json()["id"].clone();

        let calls = receiver.expect(3).await;
        assert!(calls.iter().all(|c| c.body == calls[0].body));
        assert_eq!(calls[0].json()["id"], event_id);
        assert!(calls[1].at - calls[0].at >= BACKOFF);
        assert!(calls[2].at - calls[1].at >= BACKOFF * 2);

        let deadline = Instant::now() + Duration::from_secs(5);
        let deliveries = loop {
            let deliveries = client.deliveries().await;
            if deliveries.len() == 7 {
                break deliveries;
            }
            assert!(Instant::now() < deadline, "{deliveries:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let to =
            |url: &str| -> Vec<&Value> { deliveries.iter().filter(|d| d["url"] == url).collect() };
        let answered = to(&receiver.url("/mo"));
        let outcomes: Vec<_> = answered
            .iter()
            .map(|d| {
                (
                    d["attempt"].as_u64().unwrap(),
                    d["status"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(outcomes, [(1, 500), (2, 500), (3, 200)]);
        assert!(answered.iter().all(|d| d["eventId"] == event_id));
        assert!(answered.iter().all(|d| d["event"] == "sms:received"));
        let refused = to(&unreachable);
        // Three retries after the first attempt, then the simulator gives up.
        assert_eq!(
            refused
                .iter()
                .map(|d| d["attempt"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        for delivery in refused {
            assert_eq!(delivery["status"], Value::Null);
            assert!(!delivery["error"].as_str().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn reset_drops_deliveries_still_retrying() {
        let receiver = Receiver::start(&[503; 20]).await;
        // Retries far enough apart that the reset surely lands between two of them.
        const BACKOFF: Duration = Duration::from_millis(300);
        let mut config = webhook_config(vec![]);
        config.webhooks.retries = 20;
        config.webhooks.backoff = BACKOFF;
        let client = start(config).await;
        client.register("sms:received", &receiver.url("/mo")).await;
        let reply = client
            .post(
                "/simulator/v1/inbox",
                &json!({ "from": "+4915550001111", "text": "x" }),
            )
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        receiver.wait_for(1).await;
        let reset = client
            .anonymous()
            .send("POST", "/simulator/v1/reset", &[], b"")
            .await;
        assert_eq!(reset.status, 204);
        tokio::time::sleep(BACKOFF * 3).await;
        assert_eq!(receiver.calls().len(), 1);
        assert!(client.deliveries().await.is_empty());
    }

    #[tokio::test]
    async fn injected_sms_fire_received_and_data_received() {
        let receiver = Receiver::start(&[]).await;
        let client = start(webhook_config(vec![])).await;
        let text_hook = client
            .register("sms:received", &receiver.url("/text"))
            .await;
        let data_hook = client
            .register("sms:data-received", &receiver.url("/data"))
            .await;
        let device_id = client.device_id().await;
        let inbox = |body: Value| {
            let client = client.anonymous();
            async move { client.post("/simulator/v1/inbox", &body).await }
        };

        let before = Utc::now();
        let reply = inbox(json!({
            "account": "demo",
            "from": "+4917612345678",
            "to": "+4915112345678",
            "text": "Grüße aus Berlin",
            "simNumber": 2,
        }))
        .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        let answer = reply.json();
        assert_eq!(answer["event"], "sms:received");
        assert_eq!(answer["webhooks"], 1);
        let calls = receiver.expect(1).await;
        assert_signed(&calls[0]);
        let body = assert_envelope(&calls[0], "sms:received", &device_id, &text_hook);
        assert_eq!(body["id"], answer["id"]);
        let payload = &body["payload"];
        assert_eq!(payload["message"], "Grüße aus Berlin");
        assert_eq!(payload["sender"], "+4917612345678");
        assert_eq!(payload["phoneNumber"], "+4917612345678");
        assert_eq!(payload["recipient"], "+4915112345678");
        assert_eq!(payload["simNumber"], 2);
        assert_eq!(payload["messageId"], answer["messageId"]);
        let message_id = payload["messageId"].as_str().unwrap();
        assert!(message_id.len() == 16 && message_id.bytes().all(|b| b.is_ascii_hexdigit()));
        let received_at = assert_phone_time(&payload["receivedAt"]);
        assert!(received_at >= before - chrono::TimeDelta::milliseconds(1));
        assert!(payload.get("data").is_none());

        // Credentials instead of an account name; no recipient known.
        let reply = client
            .post(
                "/simulator/v1/inbox",
                &json!({ "from": "Bank", "data": "SGVsbG8=" }),
            )
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        assert_eq!(reply.json()["event"], "sms:data-received");
        let calls = receiver.expect(2).await;
        let body = assert_envelope(&calls[1], "sms:data-received", &device_id, &data_hook);
        let payload = &body["payload"];
        assert_eq!(payload["data"], "SGVsbG8=");
        assert_eq!(payload["sender"], "Bank");
        assert_eq!(payload["recipient"], Value::Null);
        assert_eq!(payload["simNumber"], 1);
        assert!(payload.get("message").is_none());

        // No webhook of the other account listens.
        let reply =
            inbox(json!({ "account": "other", "from": "+4917612345678", "text": "hi" })).await;
        assert_eq!(reply.status, 202);
        assert_eq!(reply.json()["webhooks"], 0);

        for body in [
            json!({ "from": "+4917612345678", "text": "hi" }),
            json!({ "account": "nobody", "from": "+4917612345678", "text": "hi" }),
            json!({ "account": "demo", "text": "hi" }),
            json!({ "account": "demo", "from": "+4917612345678" }),
            json!({ "account": "demo", "from": "+4917612345678", "text": "hi", "data": "SGk=" }),
            json!({ "account": "demo", "from": "+4917612345678", "data": "not base64!" }),
            json!({ "account": "demo", "from": "+4917612345678", "text": "hi", "simNumber": 4 }),
            json!({ "account": "demo", "from": "+4917612345678", "text": "hi", "simNumber": 0 }),
        ] {
            let reply = inbox(body.clone()).await;
            assert_eq!(reply.status, 400, "{body}: {}", reply.body);
            assert!(!reply.message().is_empty());
        }
        let mismatch = client
            .post(
                "/simulator/v1/inbox",
                &json!({ "account": "other", "from": "+4917612345678", "text": "hi" }),
            )
            .await;
        assert_eq!(mismatch.status, 400);
        let wrong = client
            .with_auth("demo", "wrong")
            .post(
                "/simulator/v1/inbox",
                &json!({ "from": "+4917612345678", "text": "hi" }),
            )
            .await;
        assert_eq!(wrong.status, 401);
        assert!(wrong.header("www-authenticate").is_some());
        receiver.expect(2).await;
    }

    #[tokio::test]
    async fn inject_mo_hands_the_simulator_an_incoming_sms() {
        let receiver = Receiver::start(&[]).await;
        let client = start(webhook_config(vec![])).await;
        client
            .register("sms:received", &receiver.url("/text"))
            .await;
        client
            .register("sms:data-received", &receiver.url("/data"))
            .await;
        let args = InjectMo {
            // The API base the server is configured with works as well as the bare address.
            api: format!("http://{}/3rdparty/v1/", client.addr),
            user: "demo".into(),
            password: Some("demo1234".into()),
            from: "+4917612345678".into(),
            to: None,
            text: Some("from the terminal".into()),
            data: None,
            sim: 3,
        };
        let injected = inject_mo(&args).await.unwrap();
        assert_eq!(injected.event, "sms:received");
        assert_eq!(injected.webhooks, 1);
        assert!(injected.to_string().contains(&injected.id));
        let calls = receiver.expect(1).await;
        let body = calls[0].json();
        assert_eq!(body["id"], injected.id.as_str());
        assert_eq!(body["payload"]["message"], "from the terminal");
        assert_eq!(body["payload"]["simNumber"], 3);

        let data = InjectMo {
            api: format!("http://{}", client.addr),
            password: None,
            text: None,
            data: Some("48 65 6c 6C 6f".into()),
            ..args.clone()
        };
        let injected = inject_mo(&data).await.unwrap();
        assert_eq!(injected.event, "sms:data-received");
        let calls = receiver.expect(2).await;
        assert_eq!(calls[1].json()["payload"]["data"], "SGVsbG8=");

        for (bad, expected) in [
            (
                InjectMo {
                    password: Some("wrong".into()),
                    ..args.clone()
                },
                "401",
            ),
            (
                InjectMo {
                    user: "nobody".into(),
                    password: None,
                    ..args.clone()
                },
                "is not a simulator account",
            ),
            (
                InjectMo {
                    data: Some("4g".into()),
                    ..data.clone()
                },
                "--data",
            ),
            (
                InjectMo {
                    data: Some("486".into()),
                    ..data.clone()
                },
                "--data",
            ),
        ] {
            let error = inject_mo(&bad).await.unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error:?} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn config_reads_webhook_settings() {
        let config: SimulatorConfig = serde_json::from_value(json!({
            "accounts": [{ "username": "alice", "password": "pw", "signing_key": "s3cret" }],
            "allow_http_webhooks": false,
            "webhooks": { "retries": 14, "backoff": "10s", "timeout": "30s" },
        }))
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.accounts[0].signing_key.as_deref(), Some("s3cret"));
        assert!(!config.allow_http_webhooks);
        assert_eq!(
            config.webhooks,
            WebhookDeliveryConfig {
                retries: 14,
                backoff: Duration::from_secs(10),
                timeout: Duration::from_secs(30),
            }
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let back: SimulatorConfig =
            serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
        assert_eq!(back, config);

        let defaults = SimulatorConfig::default();
        assert!(defaults.allow_http_webhooks);
        assert_eq!(defaults.accounts[0].signing_key, None);
        assert_eq!(defaults.webhooks.timeout, Duration::from_secs(30));
        let unsigned = serde_json::to_value(&defaults).unwrap();
        assert!(unsigned["accounts"][0].get("signing_key").is_none());

        let partial: SimulatorConfig =
            serde_json::from_value(json!({ "webhooks": { "retries": 0 } })).unwrap();
        assert_eq!(partial.webhooks.backoff, Duration::from_secs(1));

        assert!(
            serde_json::from_value::<SimulatorConfig>(json!({ "webhooks": { "retry": 1 } }))
                .is_err()
        );
        let empty_key = SimulatorConfig {
            accounts: vec![account("a", "b", Some(""))],
            ..SimulatorConfig::default()
        };
        assert!(
            empty_key
                .validate()
                .unwrap_err()
                .starts_with("simulator.accounts[0].signing_key: ")
        );
        let no_time = SimulatorConfig {
            webhooks: WebhookDeliveryConfig {
                timeout: Duration::ZERO,
                ..WebhookDeliveryConfig::default()
            },
            ..SimulatorConfig::default()
        };
        assert!(
            no_time
                .validate()
                .unwrap_err()
                .starts_with("simulator.webhooks.timeout: ")
        );
    }
}
