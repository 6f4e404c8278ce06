//! The Local personality, asked the way a server asks a phone on the LAN.

use super::webhooks::{Receiver, assert_signed, webhook_config};
use super::*;

fn local(config: SimulatorConfig) -> SimulatorConfig {
    SimulatorConfig {
        mode: Personality::Local,
        ..config
    }
}

fn two_phones() -> SimulatorConfig {
    local(SimulatorConfig {
        accounts: super::two_accounts(),
        step_delay: FOREVER,
        ..SimulatorConfig::default()
    })
}

fn is_phone_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Gson's `yyyy-MM-dd'T'HH:mm:ss.SSSXXX`: always milliseconds, always an offset.
fn assert_gson_time(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is no time"));
    let shape =
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$").unwrap();
    assert!(shape.is_match(text), "{text}");
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// Ktor answers these with the status alone.
fn assert_bare(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body, "");
}

async fn device_id(client: &Client) -> String {
    let reply = client.get("/device").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()[0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn health_names_the_personalitys_checks() {
    let phone = start(local(SimulatorConfig::default())).await;
    let reply = phone.anonymous().get("/health").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let health = reply.json();
    assert_eq!(health["status"], "pass");
    assert!(health["version"].is_string());
    assert!(health["releaseId"].is_u64());
    let checks = health["checks"].as_object().unwrap();
    let mut names: Vec<_> = checks.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "battery:charging",
            "battery:level",
            "connection:cellular",
            "connection:status",
            "connection:transport",
            "messages:failed",
        ]
    );
    for check in checks.values() {
        let mut keys: Vec<_> = check.as_object().unwrap().keys().collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["description", "observedUnit", "observedValue", "status"]
        );
        assert_eq!(check["status"], "pass");
    }
    assert_eq!(
        phone.anonymous().get("/3rdparty/v1/health").await.status,
        404
    );

    let cloud = start(SimulatorConfig::default()).await;
    let reply = cloud.anonymous().get("/3rdparty/v1/health").await;
    assert_eq!(reply.status, 200);
    let health = reply.json();
    assert_eq!(health["status"], "pass");
    assert!(health["version"].is_string());
    assert!(health["releaseId"].is_u64());
    assert_eq!(
        health["checks"],
        json!({ "db:ping": {
            "description": "Failed sequential pings count",
            "observedValue": 0,
            "status": "pass",
        } })
    );
}

#[tokio::test]
async fn requests_without_valid_credentials_get_an_empty_401() {
    let client = start(local(SimulatorConfig::default())).await;
    for reply in [
        client.anonymous().get("/device").await,
        client.with_auth("demo", "wrong").get("/device").await,
        client.with_auth("sms", "demo1234").get("/device").await,
        client.anonymous().submit(&text_to(&["+15550001111"])).await,
        client.anonymous().get("/webhooks").await,
    ] {
        assert_bare(&reply, 401);
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Basic realm=\"Access to SMS Gateway\", charset=UTF-8")
        );
    }
}

#[tokio::test]
async fn each_phone_serves_device_with_a_32_hex_id() {
    let client = start(two_phones()).await;
    let before = Utc::now();
    let reply = client.get("/device").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let devices = reply.json();
    assert_eq!(devices.as_array().unwrap().len(), 1);
    let device = &devices[0];
    let mut keys: Vec<_> = device.as_object().unwrap().keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["createdAt", "id", "lastSeen", "name", "updatedAt"]);
    let id = device["id"].as_str().unwrap();
    assert!(is_phone_id(id), "{id}");
    // The id ends in the install time in milliseconds, which the phone reports as createdAt.
    let created_at = assert_gson_time(&device["createdAt"]);
    assert_eq!(
        i64::from_str_radix(&id[16..], 16).unwrap(),
        created_at.timestamp_millis()
    );
    let last_seen = assert_gson_time(&device["lastSeen"]);
    assert!(last_seen >= before - chrono::TimeDelta::milliseconds(1));
    assert_gson_time(&device["updatedAt"]);

    let theirs = device_id(&client.with_auth("other", "other1234")).await;
    assert!(is_phone_id(&theirs));
    assert_ne!(theirs, id);

    // Only newer apps also serve /devices; a client must not count on it.
    assert_bare(&client.get("/devices").await, 404);
    assert_bare(&client.get("/3rdparty/v1/devices").await, 404);
}

#[tokio::test]
async fn messages_are_accepted_like_the_phone_and_reach_a_local_webhook() {
    let receiver = Receiver::start(&[]).await;
    // The receiver runs next to the phone: the one plain http target the app's own rule takes.
    assert!(receiver.url("/").starts_with("http://127.0.0.1:"));
    let client = start(local(SimulatorConfig {
        allow_http_webhooks: false,
        ..webhook_config(vec![])
    }))
    .await;
    let hook = client
        .register("sms:delivered", &receiver.url("/delivered"))
        .await;
    let device_id = device_id(&client).await;

    let reply = client
        .submit(&text_to(&["+15550001111", "+15550002222"]))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.header("location"), None);
    let accepted = reply.json();
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert!(is_generated_id(&id), "{id}");
    let pending_at = assert_gson_time(&accepted["states"]["Pending"]);
    assert_eq!(
        accepted,
        json!({
            "id": id,
            "deviceId": device_id,
            "state": "Pending",
            "isHashed": false,
            "isEncrypted": false,
            "recipients": [
                { "phoneNumber": "+15550001111", "state": "Pending", "error": null },
                { "phoneNumber": "+15550002222", "state": "Pending", "error": null },
            ],
            "states": { "Pending": accepted["states"]["Pending"] },
        })
    );

    let delivered = client.wait_for(&id, "Delivered").await;
    assert_history(&delivered, &["Pending", "Processed", "Sent", "Delivered"]);
    for state in ["Pending", "Processed", "Sent", "Delivered"] {
        assert_gson_time(&delivered["states"][state]);
    }
    assert_eq!(
        assert_gson_time(&delivered["states"]["Pending"]),
        pending_at
    );
    assert_eq!(delivered["deviceId"], device_id.as_str());
    assert_eq!(delivered["recipients"][1]["state"], "Delivered");

    let calls = receiver.expect(2).await;
    for call in &calls {
        assert_signed(call);
        assert_eq!(call.path, "/delivered");
        let body = call.json();
        assert_eq!(body["event"], "sms:delivered");
        assert_eq!(body["deviceId"], device_id.as_str());
        assert_eq!(body["webhookId"], hook.as_str());
        assert_eq!(body["payload"]["messageId"], id.as_str());
        assert_gson_time(&body["payload"]["deliveredAt"]);
    }

    // The legacy route takes the legacy field and answers the same way.
    let mut legacy = json!({ "message": "Hi", "phoneNumbers": ["+15550003333"] });
    legacy["id"] = json!("legacy-1");
    let reply = client.post("/message", &legacy).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.header("location"), None);
    assert_eq!(reply.json()["id"], "legacy-1");
    let fetched = client.get("/message/legacy-1").await;
    assert_eq!(fetched.status, 200, "{}", fetched.body);
    assert_eq!(
        fetched.json()["recipients"][0]["phoneNumber"],
        "+15550003333"
    );
}

#[tokio::test]
async fn a_repeated_id_is_409_and_stores_nothing() {
    let client = start(two_phones()).await;
    let mut body = text_to(&["+15550001111"]);
    body["id"] = json!("order-17");
    assert_eq!(client.submit(&body).await.status, 202);
    let mut again = text_to(&["+15550002222"]);
    again["id"] = json!("order-17");
    for reply in [
        client.submit(&again).await,
        client.post("/message", &again).await,
    ] {
        assert_eq!(reply.status, 409, "{}", reply.body);
        assert_eq!(
            reply.json(),
            json!({ "message": "Message with the same ID already exists" })
        );
    }
    let stored = client.get("/simulator/v1/messages").await.json();
    assert_eq!(stored.as_array().unwrap().len(), 1);
    assert_eq!(stored[0]["request"]["phoneNumbers"][0], "+15550001111");
    // Each account is a phone of its own.
    let other = client.with_auth("other", "other1234");
    assert_eq!(other.submit(&again).await.status, 202);
}

#[tokio::test]
async fn invalid_requests_get_the_phones_messages() {
    let client = start(local(config(FOREVER, vec![]))).await;
    let own_id = device_id(&client).await;
    let phones = json!(["+15550001111"]);
    let text = json!({ "text": "a" });
    let future = (Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let past = (Utc::now() - chrono::TimeDelta::seconds(1)).to_rfc3339();
    let cases = [
        (
            json!({ "deviceId": "ffffffffceb0b1db0000018e937c815b", "textMessage": text, "phoneNumbers": phones }),
            "Invalid device ID",
        ),
        (
            json!({ "deviceId": "", "textMessage": text, "phoneNumbers": phones }),
            "Invalid device ID",
        ),
        (
            json!({ "phoneNumbers": phones }),
            "Must specify exactly one of: textMessage, dataMessage, mmsMessage, or message",
        ),
        (
            json!({ "message": "a", "textMessage": text, "phoneNumbers": phones }),
            "Cannot specify multiple message types simultaneously",
        ),
        (
            json!({ "message": "", "phoneNumbers": phones }),
            "Text message is empty",
        ),
        (
            json!({ "textMessage": { "text": "" }, "phoneNumbers": phones }),
            "Text message is empty",
        ),
        (
            json!({ "dataMessage": { "data": "", "port": 53739 }, "phoneNumbers": phones }),
            "Data message cannot be empty",
        ),
        (
            json!({ "dataMessage": { "data": "SGk=", "port": 65536 }, "phoneNumbers": phones }),
            "Port must be between 0 and 65535",
        ),
        (
            json!({ "dataMessage": { "data": "SGk=", "port": -1 }, "phoneNumbers": phones }),
            "Port must be between 0 and 65535",
        ),
        (
            json!({ "textMessage": text, "phoneNumbers": [] }),
            "phoneNumbers is empty",
        ),
        (json!({ "textMessage": text }), "phoneNumbers is empty"),
        (
            json!({ "textMessage": text, "phoneNumbers": phones, "simNumber": 0 }),
            "simNumber must be >= 1",
        ),
        (
            json!({ "textMessage": text, "phoneNumbers": phones, "simNumber": 4 }),
            "simNumber: must be between 1 and 3",
        ),
        (
            json!({ "textMessage": text, "phoneNumbers": phones, "ttl": 60, "validUntil": future }),
            "fields conflict: ttl and validUntil",
        ),
        (
            json!({ "textMessage": text, "phoneNumbers": phones, "ttl": -1 }),
            "message already expired",
        ),
        (
            json!({ "textMessage": text, "phoneNumbers": phones, "validUntil": past }),
            "message already expired",
        ),
        (
            json!({ "textMessage": text, "phoneNumbers": phones, "scheduleAt": past }),
            "scheduleAt must be in the future",
        ),
        (
            json!({ "textMessage": text, "phoneNumbers": ["79990001234"] }),
            "invalid phone number",
        ),
    ];
    for (body, message) in &cases {
        let reply = client.submit(body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.json(), json!({ "message": message }), "{body}");
    }
    assert_eq!(client.get("/simulator/v1/messages").await.json(), json!([]));

    let later = (Utc::now() + chrono::TimeDelta::hours(2)).to_rfc3339();
    let accepted = [
        // The phone's own 32-character id, longer than the cloud's 21.
        json!({ "deviceId": own_id, "textMessage": text, "phoneNumbers": phones }),
        // No minimum TTL on the phone.
        json!({ "textMessage": text, "phoneNumbers": phones, "ttl": 1 }),
        // Gson reads an absent port as 0, which the phone takes.
        json!({ "dataMessage": { "data": "SGk=" }, "phoneNumbers": phones }),
        json!({ "textMessage": text, "phoneNumbers": phones, "validUntil": later,
                "scheduleAt": future, "unknownField": [1], "withDeliveryReport": false }),
        json!({ "textMessage": text, "phoneNumbers": ["79990001234"], "isEncrypted": true }),
    ];
    for body in &accepted {
        let reply = client.submit(body).await;
        assert_eq!(reply.status, 202, "{body}: {}", reply.body);
    }
    let skipped = client
        .post(
            "/messages?skipPhoneValidation=true",
            &json!({ "textMessage": text, "phoneNumbers": ["79990001234"] }),
        )
        .await;
    assert_eq!(skipped.status, 202, "{}", skipped.body);
}

#[tokio::test]
async fn unknown_messages_and_routes_get_bare_statuses() {
    let client = start(local(config(FOREVER, vec![]))).await;
    assert_bare(&client.message("missing").await, 404);
    assert_bare(&client.get("/message/missing").await, 404);
    assert_bare(&client.get("/nope").await, 404);
    assert_bare(&client.get("/3rdparty/v1/messages/missing").await, 404);

    let id = client.submit(&text_to(&["+15550001111"])).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The phone cannot cancel: the path is known, the method is not.
    assert_bare(&client.delete(&format!("/messages/{id}")).await, 405);
    assert_bare(&client.send("PUT", "/device", &[], b"").await, 405);
    assert_eq!(client.message(&id).await.json()["state"], "Pending");
}

#[tokio::test]
async fn webhooks_follow_the_phones_url_rule() {
    let client = start(local(SimulatorConfig {
        allow_http_webhooks: false,
        ..SimulatorConfig::default()
    }))
    .await;
    for (body, message) in [
        (
            json!({ "url": "http://192.168.1.10/x", "event": "sms:received" }),
            "url must start with https:// or http://127.0.0.1",
        ),
        (
            json!({ "url": "http://127.0.0.1.example.com/x", "event": "sms:received" }),
            "url must start with https:// or http://127.0.0.1",
        ),
        (
            json!({ "event": "sms:received" }),
            "url must start with https:// or http://127.0.0.1",
        ),
        (
            json!({ "url": "https://example.com/x", "event": "sms:delivery" }),
            "Unsupported event",
        ),
        (
            json!({ "url": "https://example.com/x" }),
            "Unsupported event",
        ),
    ] {
        let reply = client.post("/webhooks", &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.json(), json!({ "message": message }), "{body}");
    }

    let local_hook = client
        .post(
            "/webhooks",
            &json!({ "url": "http://127.0.0.1:9/x", "event": "sms:received", "deviceId": "whatever" }),
        )
        .await;
    assert_eq!(local_hook.status, 201, "{}", local_hook.body);
    let local_hook = local_hook.json();
    assert!(is_generated_id(local_hook["id"].as_str().unwrap()));
    assert_eq!(
        local_hook,
        json!({ "id": local_hook["id"], "url": "http://127.0.0.1:9/x", "event": "sms:received", "source": "Local" })
    );
    let named = json!({ "id": "wh1", "url": "https://example.com/a", "event": "sms:sent" });
    assert_eq!(client.post("/webhook", &named).await.status, 201);
    let replacement = json!({ "id": "wh1", "url": "https://example.com/b", "event": "sms:failed" });
    let replaced = client.post("/webhooks", &replacement).await;
    assert_eq!(replaced.status, 201);
    assert_eq!(
        replaced.json(),
        json!({ "id": "wh1", "url": "https://example.com/b", "event": "sms:failed", "source": "Local" })
    );
    for path in ["/webhooks", "/webhook"] {
        let list = client.get(path).await;
        assert_eq!(list.status, 200);
        assert_eq!(list.json(), json!([local_hook, replaced.json()]));
    }

    assert_bare(&client.delete("/webhooks/wh1").await, 204);
    assert_bare(&client.delete("/webhooks/wh1").await, 204);
    assert_bare(&client.delete("/webhook/never-was").await, 204);
    assert_eq!(client.get("/webhooks").await.json(), json!([local_hook]));

    // Like the app's insecure builds.
    let lenient = start(local(SimulatorConfig::default())).await;
    let reply = lenient
        .post(
            "/webhooks",
            &json!({ "url": "http://192.168.1.10/x", "event": "sms:received" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[tokio::test]
async fn request_counters_use_the_same_keys_as_the_cloud() {
    let client = start(local(config(STEP, vec![]))).await;
    client.get("/device").await;
    client.anonymous().get("/device").await;
    client.get("/health").await;
    let mut body = text_to(&["+15550001111"]);
    body["id"] = json!("counted");
    assert_eq!(client.submit(&body).await.status, 202);
    client.wait_for("counted", "Delivered").await;
    client.message("missing").await;
    client
        .post(
            "/message",
            &json!({ "message": "Hi", "phoneNumbers": ["+15550001111"] }),
        )
        .await;
    client.get("/message/counted").await;
    client.delete("/messages/counted").await;
    client.get("/devices").await;

    let counts = client.get("/simulator/v1/requests").await.json();
    assert_eq!(counts["GET /device 200"], 1);
    assert_eq!(counts["GET /device 401"], 1);
    assert_eq!(counts["GET /health 200"], 1);
    assert_eq!(counts["POST /messages 202"], 1);
    assert!(counts["GET /messages/{id} 200"].as_u64().unwrap() >= 1);
    assert_eq!(counts["GET /messages/{id} 404"], 1);
    assert_eq!(counts["POST /message 202"], 1);
    assert_eq!(counts["GET /message/{id} 200"], 1);
    assert_eq!(counts["DELETE /messages/{id} 405"], 1);
    assert_eq!(counts["GET /devices 404"], 1);
    assert!(
        counts
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.contains("/simulator/")),
        "{counts}"
    );
}

#[tokio::test]
async fn inject_mo_reaches_a_local_simulator() {
    let receiver = Receiver::start(&[]).await;
    let client = start(local(webhook_config(vec![]))).await;
    client.register("sms:received", &receiver.url("/mo")).await;
    let device_id = device_id(&client).await;
    let injected = inject_mo(&InjectMo {
        // The gateway base of a Local server is the bare address.
        api: format!("http://{}", client.addr),
        user: "demo".into(),
        password: Some("demo1234".into()),
        from: "+4917612345678".into(),
        to: None,
        text: Some("to the phone".into()),
        data: None,
        sim: 1,
    })
    .await
    .unwrap();
    assert_eq!(injected.webhooks, 1);
    let calls = receiver.expect(1).await;
    let body = calls[0].json();
    assert_eq!(body["deviceId"], device_id.as_str());
    assert_eq!(body["payload"]["message"], "to the phone");
}

#[test]
fn config_reads_the_personality() {
    let config: SimulatorConfig = serde_json::from_value(json!({ "mode": "local" })).unwrap();
    assert_eq!(config.mode, Personality::Local);
    config.validate().unwrap();
    assert_eq!(serde_json::to_value(&config).unwrap()["mode"], "local");
    let defaults: SimulatorConfig = serde_json::from_value(json!({})).unwrap();
    assert_eq!(defaults.mode, Personality::Cloud);
    assert_eq!(SimulatorConfig::default().mode, Personality::Cloud);

    let error = serde_json::from_value::<SimulatorConfig>(json!({ "mode": "phone" }))
        .unwrap_err()
        .to_string();
    assert!(error.contains("phone"), "{error}");
    assert!(serde_json::from_value::<SimulatorConfig>(json!({ "mode": "Local" })).is_err());

    assert_eq!(Personality::Cloud.api_prefix(), "/3rdparty/v1");
    assert_eq!(Personality::Local.api_prefix(), "");
    assert_eq!(Personality::Cloud.to_string(), "cloud");
    assert_eq!(Personality::Local.to_string(), "local");
}
