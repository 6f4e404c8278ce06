//! The HTTP side under misuse: slow and idle connections are closed, a flood of them leaves
//! SMPP binding, operator endpoints live on the admin listener behind the token, and webhook
//! calls are bounded in size.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::BindKind;
use crate::support::*;

/// Generous: these wait for an outcome on a loaded machine, they do not time it.
const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "e2e-admin-token-0123456789";

/// Reads until the server closes the connection; false if it is still open after [`WAIT`].
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await,
        Ok(Ok(_)) | Ok(Err(_))
    )
}

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

const GET_HEALTH: &str = "GET /health HTTP/1.1\r\nHost: smsgate\r\n\r\n";

async fn get(h: &Harness, address: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut request = h.http().get(format!("http://{address}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.text().await.unwrap_or_default();
    if status == 401 {
        assert!(
            challenge.is_some_and(|c| c.starts_with("Bearer")),
            "401 without a Bearer challenge"
        );
    }
    (status, body)
}

#[tokio::test]
async fn a_half_sent_header_is_cut_off_after_the_header_timeout() {
    let h = Setup::new().env("HTTP__HEADER_TIMEOUT", "1s").start().await;
    let mut slow = TcpStream::connect(h.web).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: sms")
        .await
        .unwrap();
    assert!(
        closed_by_server(&mut slow).await,
        "a half-sent header still holds its connection after {WAIT:?}"
    );
    let mut fresh = TcpStream::connect(h.web).await.unwrap();
    assert!(
        exchange(&mut fresh, GET_HEALTH)
            .await
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let h = Setup::new().env("HTTP__IDLE_TIMEOUT", "1s").start().await;
    let mut client = TcpStream::connect(h.web).await.unwrap();
    assert!(
        exchange(&mut client, GET_HEALTH)
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        closed_by_server(&mut client).await,
        "an idle connection is still open after {WAIT:?}"
    );
}

#[tokio::test]
async fn smpp_binds_while_every_http_connection_is_taken() {
    const CAP: usize = 4;
    // Held connections sit on a half-sent header, which has a minute; anything else that is
    // idle (the harness's own client) makes room within a second.
    let h = Setup::new()
        .env("HTTP__MAX_CONNECTIONS", &CAP.to_string())
        .env("HTTP__HEADER_TIMEOUT", "60s")
        .env("HTTP__IDLE_TIMEOUT", "1s")
        .start()
        .await;
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut client = TcpStream::connect(h.web).await.unwrap();
        // Answered, so the server has taken it and counts it.
        assert!(
            exchange(&mut client, GET_HEALTH)
                .await
                .starts_with("HTTP/1.1 200")
        );
        client.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
        held.push(client);
    }

    let mut esme = h.bound(BindKind::Transceiver).await;
    esme.assert_alive().await;

    let web = h.web;
    let probe = tokio::spawn(async move {
        let mut client = TcpStream::connect(web).await.unwrap();
        exchange(&mut client, GET_HEALTH).await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !probe.is_finished(),
        "answered with all {CAP} connections taken"
    );
    drop(held.pop());
    let answer = tokio::time::timeout(WAIT, probe)
        .await
        .expect("a freed connection slot goes to the waiting client")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        h.server_log().contains("connection limit reached"),
        "{}",
        h.server_log()
    );
}

#[tokio::test]
async fn queue_stats_and_metrics_need_the_admin_token_and_the_queue_is_not_public() {
    let h = Setup::new()
        .env("ADMIN__TOKEN", TOKEN)
        .env("ADMIN__METRICS_REQUIRE_TOKEN", "true")
        .start()
        .await;
    let queue = "/api/smpp/v1/queue";
    assert_eq!(get(&h, h.web, queue, Some(TOKEN)).await.0, 404);
    assert_eq!(get(&h, h.admin, queue, None).await.0, 401);
    assert_eq!(get(&h, h.admin, queue, Some("not-the-token")).await.0, 401);
    let (status, body) = get(&h, h.admin, queue, Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(answer["accounts"].is_array(), "{answer}");

    assert_eq!(get(&h, h.web, "/metrics", None).await.0, 401);
    for address in [h.web, h.admin] {
        let (status, body) = get(&h, address, "/metrics", Some(TOKEN)).await;
        assert_eq!(status, 200, "{address}: {body}");
        assert!(body.contains("smpp_submit_sm_duration_seconds"), "{body}");
    }
    assert_eq!(get(&h, h.web, "/health/ready", None).await.0, 200);

    // `queue stats` asks the running server, with the token of the configuration.
    let mut cmd = command();
    cmd.args(["queue", "stats"]).envs(h.server_env());
    let (status, stdout, stderr) = run_to_exit(cmd, WAIT);
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");
    assert!(stdout.contains("delivery queue is empty"), "{stdout}");
    let mut cmd = command();
    cmd.args(["queue", "stats"])
        .envs(h.server_env())
        .env_remove("ADMIN__TOKEN");
    let (status, _, stderr) = run_to_exit(cmd, WAIT);
    assert!(!status.success(), "queue stats answered without the token");
    assert!(stderr.contains("admin.token"), "{stderr}");
    assert!(!h.server_log().contains(TOKEN), "the token was logged");
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
    let (status, answer) = post(received_event(&"x".repeat(129), "Within bounds")).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "id is longer than 128 bytes");
    rx.expect_no_deliver_sm(Duration::from_secs(2)).await;
    assert_eq!(h.queued_items(DEMO_USER).await, 0);

    // The same event with an id at the bound is taken.
    let (status, answer) = post(received_event(&"x".repeat(128), "Within bounds")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "queued", "{answer}");
    rx.receive().await;
}
