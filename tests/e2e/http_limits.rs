//! The HTTP side under misuse: webhook calls are bounded in size.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::BindKind;
use crate::support::*;

/// Generous: these wait for an outcome on a loaded machine, they do not time it.
const WAIT: Duration = Duration::from_secs(30);

/// Sends a request on a kept-alive connection and reads its answer (every answer of these
/// endpoints is a JSON object, so it ends with `}`).
async fn exchange(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"}") {
        let mut chunk = [0; 4096];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no answer within {WAIT:?} to {request:?}"))
            .unwrap();
        assert!(n > 0, "closed before answering {request:?}");
        answer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(answer).unwrap()
}

fn received_event(event_id: &str) -> Value {
    json!({
        "deviceId": "e2e-device",
        "event": "sms:received",
        "id": event_id,
        "payload": {
            "messageId": "e2e-mo",
            "message": "Within bounds",
            "sender": "+4915112345678",
            "recipient": "+4930999999",
            "simNumber": 1,
            "receivedAt": Utc::now().to_rfc3339(),
        },
        "webhookId": "e2e-webhook",
    })
}

#[tokio::test]
async fn oversized_webhook_bodies_and_event_ids_are_refused_and_nothing_is_queued() {
    let h = Setup::new().webhooks().start().await;
    let mut rx = h.bound(BindKind::Receiver).await;
    let url = h.wait_for_registrations(WAIT).await;
    let path = url
        .strip_prefix(&format!("http://{}", h.web))
        .unwrap_or_else(|| panic!("{url} is not on {}", h.web));

    // Refused on the declared length, before the body is sent at all.
    let mut client = TcpStream::connect(h.web).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: smsgate\r\nContent-Type: application/json\r\n\
         Content-Length: 1048576\r\n\r\n"
    );
    let answer = exchange(&mut client, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("larger than 65536 bytes"), "{answer}");

    let post = |event: Value| {
        let request = h.http().post(&url).json(&event);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, answer) = post(received_event(&"x".repeat(129))).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "id is longer than 128 bytes");
    rx.expect_no_deliver_sm(Duration::from_secs(2)).await;
    assert_eq!(h.queued_items(DEMO_USER).await, 0);

    // The same event with an id at the bound is taken.
    let (status, answer) = post(received_event(&"x".repeat(128))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "queued", "{answer}");
    rx.receive().await;
}
