//! The admin listener's status console and JSON API: what it shows of a bound ESME, the actions
//! an operator takes from it (each of which must really happen: the ESME is unbound, the dead
//! letters come back), and who may use it.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use smpp_codec::command::{UNBIND, UNBIND_RESP};
use smpp_codec::status::ESME_RINVDSTADR;

use crate::client::*;
use crate::support::*;

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "console-test-token-0123456789";

async fn post(h: &Harness, path: &str) -> (StatusCode, Value) {
    request(h, reqwest::Method::POST, path).await
}

async fn request(h: &Harness, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
    let url = format!("http://{}{path}", h.admin);
    let resp = h
        .http()
        .request(method, &url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(json!(body)))
}

/// A form of the console posted as a browser posts it, from a page of `origin`; the answer is
/// not followed.
async fn console_form(h: &Harness, path: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("http://{}{path}", h.admin))
        .header("origin", origin)
        .send()
        .await
        .unwrap()
}

/// The bound session of the API whose peer is `esme`'s own address.
fn session_of(status: &Value, esme: SocketAddr) -> Option<&Value> {
    status["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("no sessions in {status}"))
        .iter()
        .find(|s| s["peer"] == esme.to_string())
}

#[tokio::test]
async fn the_console_shows_a_bound_esme_and_disconnect_unbinds_it() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transceiver).await;
    let mine = esme.local_addr();
    let idle = h.bound(BindKind::Transmitter).await;
    for _ in 0..3 {
        submit_with_receipt(&mut esme, "+491701234567").await;
    }

    let status = h.server_json("/api/smpp/v1/status").await;
    let session = session_of(&status, mine).unwrap_or_else(|| panic!("{mine} missing: {status}"));
    assert_eq!(session["system_id"], DEMO_USER, "{session}");
    assert_eq!(session["bind"], "transceiver", "{session}");
    assert_eq!(session["tls"], false, "{session}");
    assert_eq!(session["submitted"], 3, "{session}");
    assert!(
        session["smsgate_account"]
            .as_str()
            .is_some_and(|a| a.ends_with(&format!("|{DEMO_USER}"))),
        "{session}"
    );
    let demo = status["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["system_id"] == DEMO_USER)
        .unwrap_or_else(|| panic!("no demo account: {status}"));
    assert_eq!(demo["binds"], 2, "{demo}");
    let submits = status["gateway"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operation"] == "submit_sms")
        .unwrap_or_else(|| panic!("no submit_sms figures: {status}"));
    assert_eq!(submits["calls"], 3, "{submits}");
    assert!(
        submits["p50_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{submits}"
    );

    let page = h
        .http()
        .get(format!("http://{}/", h.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    for part in [
        "<meta http-equiv=refresh",
        &mine.to_string(),
        "transceiver",
        &format!("/console/sessions/{}/disconnect", session["id"]),
    ] {
        assert!(page.contains(part), "{part:?} missing in the page:\n{page}");
    }

    let id = session["id"].as_u64().unwrap();
    // The console's button, posted by a page of another site in the operator's browser.
    let forged = console_form(
        &h,
        &format!("/console/sessions/{id}/disconnect"),
        "https://evil.example",
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    esme.assert_alive().await;

    let (code, answer) = post(&h, &format!("/api/smpp/v1/sessions/{id}/disconnect")).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{answer}");
    let unbind = esme.read().await;
    assert_eq!(unbind.command_id, UNBIND, "{unbind:?}");
    esme.write(&pdu_bytes(UNBIND_RESP, unbind.sequence, &[]))
        .await;
    esme.expect_closed(Duration::from_secs(10)).await;

    let deadline = Instant::now() + WAIT;
    loop {
        let status = h.server_json("/api/smpp/v1/status").await;
        if session_of(&status, mine).is_none() {
            assert!(
                session_of(&status, idle.local_addr()).is_some(),
                "the other session stays: {status}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "still listed: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, answer) = post(&h, &format!("/api/smpp/v1/sessions/{id}/disconnect")).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{answer}");
    // The console's own button sends the browser back to the page, which says what happened.
    let own = format!("http://{}", h.admin);
    let back = console_form(&h, &format!("/console/sessions/{id}/disconnect"), &own).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let location = back.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/?notice=") && location.contains("no%20bound%20session"),
        "{location}"
    );
    let log = h.server_log();
    assert!(
        log.lines().any(|l| l.contains("admin action")
            && l.contains("disconnect")
            && l.contains(&mine.to_string())),
        "no audit line in\n{log}"
    );
}

#[tokio::test]
async fn dead_letters_are_listed_retried_and_dropped_from_the_admin_api() {
    let h = Setup::new()
        .webhooks()
        .env("DELIVERY__RETRY_INITIAL", "200ms")
        .env("DELIVERY__DEAD_LETTER_AFTER", "1")
        .start()
        .await;
    let mut rx = h.bound(BindKind::Receiver).await;
    h.wait_for_registrations(WAIT).await;
    // No "to", and no delivery.mo_destination: the deliver_sm has no destination_addr.
    h.inject_mo(json!({ "from": "+491709876543", "text": "Nobody's number" }))
        .await;
    let refused = rx.expect_deliver_sm().await;
    rx.answer_deliver_sm(&refused, ESME_RINVDSTADR).await;

    let path = format!("/api/smpp/v1/queue/{DEMO_USER}/dead-letters");
    let letters = wait_for_dead_letters(&h, &path, 1).await;
    assert_eq!(letters[0]["status"], "ESME_RINVDSTADR", "{letters:?}");
    assert!(
        letters[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("destination_addr is empty")),
        "{letters:?}"
    );

    let (code, answer) = post(&h, &format!("{path}/retry")).await;
    assert_eq!(
        (code, &answer["moved"]),
        (StatusCode::OK, &json!(1)),
        "{answer}"
    );
    let again = rx.expect_deliver_sm().await;
    assert_eq!(again.content(), refused.content());
    rx.answer_deliver_sm(&again, ESME_RINVDSTADR).await;
    wait_for_dead_letters(&h, &path, 1).await;

    let (code, answer) = request(&h, reqwest::Method::DELETE, &path).await;
    assert_eq!(
        (code, &answer["dropped"]),
        (StatusCode::OK, &json!(1)),
        "{answer}"
    );
    wait_for_dead_letters(&h, &path, 0).await;
    rx.expect_no_deliver_sm(Duration::from_secs(1)).await;
    let log = h.server_log();
    for action in ["retry_dead_letters", "drop_dead_letters"] {
        assert!(
            log.lines()
                .any(|l| l.contains("admin action") && l.contains(action)),
            "no audit line for {action} in\n{log}"
        );
    }
}

async fn wait_for_dead_letters(h: &Harness, path: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = h.server_json(path).await;
        let letters = listed["dead_letters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if letters.len() == count {
            return letters;
        }
        assert!(Instant::now() < deadline, "{path}: {listed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// This host's address on its network, if it has one: what another host's request comes from,
/// as far as the server can tell.
fn network_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    // Connecting a UDP socket sends nothing; it only picks the route and the source address.
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn the_admin_listener_serves_other_hosts_only_with_the_token() {
    let Some(ip) = network_address() else {
        eprintln!("SKIPPED: this host has no non-loopback address to ask from");
        return;
    };
    let port = free_port();
    let open = Setup::new()
        .env("ADMIN__ADDRESS", &format!("0.0.0.0:{port}"))
        .start()
        .await;
    let client = reqwest::Client::new();
    let get = |host: String| {
        let client = client.clone();
        async move {
            client
                .get(format!("http://{host}/api/smpp/v1/status"))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        get(format!("127.0.0.1:{port}")).await.status(),
        StatusCode::OK
    );
    let refused = get(format!("{ip}:{port}")).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "from {ip}");
    assert!(
        refused.text().await.unwrap().contains("admin.token"),
        "the answer names the setting"
    );
    drop(open);

    let port = free_port();
    let _guarded = Setup::new()
        .env("ADMIN__ADDRESS", &format!("0.0.0.0:{port}"))
        .env("ADMIN__TOKEN", TOKEN)
        .start()
        .await;
    let url = format!("http://{ip}:{port}/api/smpp/v1/status");
    let without = client.get(&url).send().await.unwrap();
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
    let with = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(with.status(), StatusCode::OK);
    let browser = client
        .get(format!("http://{ip}:{port}/"))
        .basic_auth("ops", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), StatusCode::OK);
}
