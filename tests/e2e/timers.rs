//! The server's own timers and its shutdown, watched from the ESME side.

use std::time::{Duration, Instant};

use smpp_codec::command::{ENQUIRE_LINK, ENQUIRE_LINK_RESP, SUBMIT_SM_RESP, UNBIND, UNBIND_RESP};
use smpp_codec::status::ESME_ROK;

use crate::client::*;
use crate::support::*;

/// Timers are checked on a tick, so an action may come this much earlier than its nominal time.
const TICK_SLACK: Duration = Duration::from_millis(300);

#[tokio::test]
async fn silence_brings_an_enquire_link_and_no_answer_closes_the_link() {
    let h = Setup::new()
        .env("SMPP__ENQUIRE_LINK_INTERVAL", "1s")
        .env("SMPP__RESPONSE_TIMEOUT", "1s")
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transceiver).await;

    let probe = esme.read().await;
    assert_eq!(
        (probe.command_id, probe.status),
        (ENQUIRE_LINK, ESME_ROK),
        "{probe:?}"
    );
    assert!(probe.body.is_empty());
    let sent = Instant::now();
    esme.expect_closed(Duration::from_secs(4)).await;
    assert!(
        sent.elapsed() >= Duration::from_secs(1) - TICK_SLACK,
        "closed {:?} after the enquire_link, before the response timeout",
        sent.elapsed()
    );
}

#[tokio::test]
async fn an_answered_enquire_link_keeps_the_link() {
    let h = Setup::new()
        .env("SMPP__ENQUIRE_LINK_INTERVAL", "1s")
        .env("SMPP__RESPONSE_TIMEOUT", "1s")
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transceiver).await;
    for _ in 0..2 {
        let probe = esme.read().await;
        assert_eq!(probe.command_id, ENQUIRE_LINK, "{probe:?}");
        esme.write(&pdu_bytes(ENQUIRE_LINK_RESP, probe.sequence, &[]))
            .await;
    }
    esme.assert_alive().await;
}

#[tokio::test]
async fn a_connection_that_never_binds_is_closed() {
    let h = Setup::new().env("SMPP__BIND_TIMEOUT", "1s").start().await;
    let opened = Instant::now();
    let mut idle = h.connect().await;
    let mut bound = h.bound(BindKind::Transmitter).await;
    idle.expect_closed(Duration::from_secs(4)).await;
    assert!(
        opened.elapsed() >= Duration::from_secs(1) - TICK_SLACK,
        "closed after {:?}",
        opened.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    bound.assert_alive().await;
}

#[tokio::test]
async fn sigterm_unbinds_bound_esmes_and_exits_cleanly() {
    let mut h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transceiver).await;
    h.sigterm();

    let unbind = esme.read().await;
    assert_eq!(
        (unbind.command_id, unbind.status),
        (UNBIND, ESME_ROK),
        "{unbind:?}"
    );
    assert!(unbind.body.is_empty());
    esme.write(&pdu_bytes(UNBIND_RESP, unbind.sequence, &[]))
        .await;
    esme.expect_closed(Duration::from_secs(5)).await;

    let status = h.server_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "server exited with {status}");
}

#[tokio::test]
async fn unbind_is_answered_after_the_requests_in_flight() {
    let h = Setup::new()
        .rule("^\\+491701234567$", Outcome::Stall("500ms"))
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let submit = esme
        .send(
            submit_sm("491701234567")
                .short_message(octets(b"in flight"))
                .build(),
        )
        .await;
    let unbind = esme.send(rusmpp::Pdu::Unbind).await;
    esme.read().await.expect(SUBMIT_SM_RESP, ESME_ROK, submit);
    esme.read().await.expect(UNBIND_RESP, ESME_ROK, unbind);
    esme.expect_closed(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn shutdown_sends_waiting_parts_and_closes_unbound_links() {
    let mut h = Setup::new().start().await;
    let mut open = h.connect().await;
    open.assert_alive().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    for sequence in [1u8, 3] {
        let mut short_message = vec![5, 0x00, 3, 0x51, 3, sequence];
        short_message.extend_from_slice(format!("part {sequence}. ").as_bytes());
        let resp = esme
            .call(
                submit_sm("491701234567")
                    .esm_class(rusmpp::values::EsmClass::from(0x40u8))
                    .short_message(octets(&short_message))
                    .build(),
            )
            .await;
        assert_eq!(resp.status, ESME_ROK, "{resp:?}");
    }
    assert!(h.sim_messages().await.is_empty());

    h.sigterm();
    open.expect_closed(Duration::from_secs(5)).await;
    let unbind = esme.read().await;
    assert_eq!(unbind.command_id, UNBIND, "{unbind:?}");
    esme.write(&pdu_bytes(UNBIND_RESP, unbind.sequence, &[]))
        .await;
    let status = h.server_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "server exited with {status}");

    let messages = h.sim_messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(
        messages[0]["request"]["textMessage"]["text"],
        "part 1. part 3. "
    );
}

#[tokio::test]
async fn shutdown_gives_up_on_an_esme_that_never_answers_unbind() {
    let mut h = Setup::new()
        .env("SMPP__RESPONSE_TIMEOUT", "1s")
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transceiver).await;
    h.sigterm();
    let unbind = esme.read().await;
    assert_eq!(unbind.command_id, UNBIND, "{unbind:?}");
    esme.expect_closed(Duration::from_secs(5)).await;
    let status = h.server_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "server exited with {status}");
}

#[tokio::test]
async fn shutdown_still_answers_requests_in_flight() {
    let mut h = Setup::new()
        .rule("^\\+491701234567$", Outcome::Stall("1s"))
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let submit = esme
        .send(
            submit_sm("491701234567")
                .short_message(octets(b"accepted before the signal"))
                .build(),
        )
        .await;
    // Give the request time to reach the gateway before the signal.
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.sigterm();
    let unbind = esme.read().await;
    assert_eq!(unbind.command_id, UNBIND, "{unbind:?}");
    esme.write(&pdu_bytes(UNBIND_RESP, unbind.sequence, &[]))
        .await;
    let resp = esme.read().await;
    resp.expect(SUBMIT_SM_RESP, ESME_ROK, submit);
    let id = resp.message_id();
    esme.expect_closed(Duration::from_secs(5)).await;
    let status = h.server_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "server exited with {status}");
    h.sim_message(&id).await;
}
