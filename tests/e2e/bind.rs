//! Binding and the bind state machine as an ESME sees it.

use std::time::Duration;

use rusmpp::Pdu;
use smpp_codec::command::{
    BIND_TRANSMITTER, BIND_TRANSMITTER_RESP, QUERY_SM_RESP, RESPONSE_BIT, SUBMIT_SM_RESP,
    UNBIND_RESP,
};
use smpp_codec::pdu::tag;
use smpp_codec::status::{
    CommandStatus, ESME_RALYBND, ESME_RBINDFAIL, ESME_RINVBNDSTS, ESME_RINVPASWD, ESME_RINVSYSID,
    ESME_ROK, ESME_RSYSERR,
};

use crate::client::*;
use crate::support::*;

#[tokio::test]
async fn every_bind_kind_is_answered_with_its_own_response() {
    let h = Setup::new().start().await;
    for kind in [
        BindKind::Transmitter,
        BindKind::Receiver,
        BindKind::Transceiver,
    ] {
        let mut esme = h.connect().await;
        let resp = esme.bind(kind, DEMO_USER, DEMO_PASSWORD).await;
        resp.expect(kind.command_id() | RESPONSE_BIT, ESME_ROK, 1);
        let (system_id, tlvs) = resp.bind_resp();
        assert_eq!(system_id, "SMSGATE", "{kind:?}");
        assert_eq!(
            tlvs,
            vec![(
                tag::SC_INTERFACE_VERSION,
                bytes::Bytes::from_static(&[0x34])
            )],
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_the_link_closed() {
    let h = Setup::new().start().await;
    let mut esme = h.connect().await;
    let refused = esme
        .bind(BindKind::Transmitter, DEMO_USER, "wrong123")
        .await;
    refused.expect(BIND_TRANSMITTER_RESP, ESME_RINVPASWD, 1);
    assert!(
        refused.body.is_empty(),
        "error responses have no body: {refused:?}"
    );
    esme.expect_closed(Duration::from_secs(5)).await;
    let mut esme = h.connect().await;
    let accepted = esme
        .bind(BindKind::Transmitter, DEMO_USER, DEMO_PASSWORD)
        .await;
    accepted.expect(BIND_TRANSMITTER_RESP, ESME_ROK, 1);
}

#[tokio::test]
async fn smsgate_length_passwords_bind() {
    let h = Setup::new().start().await;
    assert_eq!(LONG_PASSWORD.len(), 20);
    for kind in [BindKind::Transmitter, BindKind::Transceiver] {
        let mut esme = h.connect().await;
        let resp = esme.bind(kind, LONG_USER, LONG_PASSWORD).await;
        resp.expect(kind.command_id() | RESPONSE_BIT, ESME_ROK, 1);
        let id = submit_one(&mut esme, "491701234567").await;
        assert_eq!(h.sim_message(&id).await["account"], LONG_USER);
    }
}

async fn submit_one(esme: &mut Client, destination: &str) -> String {
    let resp = esme
        .call(
            submit_sm(destination)
                .short_message(octets(b"long password"))
                .build(),
        )
        .await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
    resp.message_id()
}

/// A password longer than SMPP allows is a malformed PDU, not a guess: answered, and the link
/// stays for a bind that is well formed.
#[tokio::test]
async fn a_huge_password_is_refused_without_losing_the_link() {
    let h = Setup::new().start().await;
    let mut esme = h.connect().await;
    let body = Body::bind(DEMO_USER, &[b'p'; 2000]);
    let resp = esme.call_raw(BIND_TRANSMITTER, &body.0).await;
    resp.expect(BIND_TRANSMITTER_RESP, ESME_RINVPASWD, 1);
    esme.assert_alive().await;
    let resp = esme
        .bind(BindKind::Transmitter, LONG_USER, LONG_PASSWORD)
        .await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
}

#[tokio::test]
async fn a_second_bind_on_a_bound_session_is_already_bound() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transceiver).await;
    let again = esme
        .bind(BindKind::Transmitter, DEMO_USER, DEMO_PASSWORD)
        .await;
    again.expect(BIND_TRANSMITTER_RESP, ESME_RALYBND, 2);
    esme.assert_alive().await;
}

#[tokio::test]
async fn transmitter_requests_need_a_transmitter_bind() {
    let h = Setup::new().start().await;

    let mut open = h.connect().await;
    let resp = open
        .call(
            submit_sm("491701234567")
                .short_message(octets(b"hi"))
                .build(),
        )
        .await;
    resp.expect(SUBMIT_SM_RESP, ESME_RINVBNDSTS, 1);
    assert!(
        resp.body.is_empty(),
        "error responses have no body: {resp:?}"
    );
    let resp = open.call(query_sm("whatever")).await;
    resp.expect(QUERY_SM_RESP, ESME_RINVBNDSTS, 2);
    open.assert_alive().await;

    let mut receiver = h.bound(BindKind::Receiver).await;
    let resp = receiver
        .call(
            submit_sm("491701234567")
                .short_message(octets(b"hi"))
                .build(),
        )
        .await;
    resp.expect(SUBMIT_SM_RESP, ESME_RINVBNDSTS, 2);
    receiver.assert_alive().await;

    assert_eq!(h.sim_request_count("POST /messages 202").await, 0);
}

#[tokio::test]
async fn unbind_before_bind_is_refused_and_harms_nothing() {
    let mut h = Setup::new().start().await;
    let mut esme = h.connect().await;
    let sequence = esme.send(Pdu::Unbind).await;
    esme.response(sequence)
        .await
        .expect(UNBIND_RESP, ESME_RINVBNDSTS, sequence);
    esme.assert_alive().await;
    let _other = h.bound(BindKind::Transmitter).await;
    assert!(h.server_alive());
}

#[tokio::test]
async fn enquire_link_is_answered_open_and_bound_and_unbind_closes() {
    let h = Setup::new().start().await;
    let mut esme = h.connect().await;
    esme.assert_alive().await;
    let resp = esme
        .bind(BindKind::Transceiver, DEMO_USER, DEMO_PASSWORD)
        .await;
    assert_eq!(resp.status, ESME_ROK);
    esme.assert_alive().await;

    let sequence = esme.send(Pdu::Unbind).await;
    let resp = esme.response(sequence).await;
    resp.expect(UNBIND_RESP, ESME_ROK, sequence);
    assert!(resp.body.is_empty());
    esme.expect_closed(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_successful_bind_check_is_reused() {
    let h = Setup::new().start().await;
    for _ in 0..2 {
        let _esme = h.bound(BindKind::Transmitter).await;
    }
    assert_eq!(h.sim_request_count(&h.bind_check(200)).await, 1);
}

#[tokio::test]
async fn a_refused_password_is_answered_from_memory_and_the_right_one_works_at_once() {
    let h = Setup::new().start().await;
    for _ in 0..2 {
        let mut esme = h.connect().await;
        let resp = esme
            .bind(BindKind::Transmitter, DEMO_USER, "wrong123")
            .await;
        assert_eq!(resp.status, ESME_RINVPASWD);
    }
    assert_eq!(h.sim_request_count(&h.bind_check(401)).await, 1);
    let _esme = h.bound(BindKind::Transmitter).await;
    assert_eq!(h.sim_request_count(&h.bind_check(200)).await, 1);
}

#[tokio::test]
async fn a_cached_bind_does_not_let_a_wrong_password_in() {
    let h = Setup::new().start().await;
    let _esme = h.bound(BindKind::Transmitter).await;
    let mut intruder = h.connect().await;
    let resp = intruder
        .bind(BindKind::Transmitter, DEMO_USER, "demo123")
        .await;
    resp.expect(BIND_TRANSMITTER_RESP, ESME_RINVPASWD, 1);
    intruder.expect_closed(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn empty_credentials_are_refused() {
    let h = Setup::new().start().await;
    let resp = h
        .connect()
        .await
        .bind(BindKind::Transmitter, "", DEMO_PASSWORD)
        .await;
    resp.expect(BIND_TRANSMITTER_RESP, ESME_RINVSYSID, 1);
    let resp = h
        .connect()
        .await
        .bind(BindKind::Transmitter, DEMO_USER, "")
        .await;
    resp.expect(BIND_TRANSMITTER_RESP, ESME_RINVPASWD, 1);
    assert_eq!(h.sim_request_count(&h.bind_check(401)).await, 0);
}

/// The demo account's customer, binding from 127.0.0.2.
async fn bind_from_elsewhere(h: &Harness) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.2:0".parse().unwrap())
        .expect("bind to 127.0.0.2");
    let mut esme = Client::new(socket.connect(h.smpp).await.expect("connect"));
    let resp = esme
        .bind(BindKind::Transmitter, DEMO_USER, DEMO_PASSWORD)
        .await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
}

/// A bind from 127.0.0.1 with `password`; the link is closed after the answer.
async fn guess(h: &Harness, password: &str) -> CommandStatus {
    let mut esme = h.connect().await;
    let resp = esme.bind(BindKind::Transmitter, DEMO_USER, password).await;
    esme.expect_closed(Duration::from_secs(5)).await;
    resp.status
}

/// An attacker at 127.0.0.1 guesses the demo account's password while its customer binds from
/// 127.0.0.2: the guesses are slowed, repeated ones and those after the lockout never reach the
/// gateway, and the customer keeps binding.
#[tokio::test]
async fn password_guessing_is_locked_out_while_the_customer_keeps_binding() {
    let h = Setup::new()
        .env("SMPP__BIND_FAILURE_DELAY", "100ms")
        .env("SMPP__BIND_LOCKOUT_AFTER", "4")
        .start()
        .await;
    bind_from_elsewhere(&h).await;

    // Three distinct guesses and one repeated: all refused, the repeat without a gateway call.
    for password in ["guess1", "guess2", "guess3", "guess3"] {
        assert_eq!(guess(&h, password).await, ESME_RINVPASWD, "{password}");
    }
    assert_eq!(h.sim_request_count(&h.bind_check(401)).await, 3);
    // The fourth failure locked the address out: even the right password is refused now, and
    // no further guess reaches the gateway.
    for password in ["guess4", DEMO_PASSWORD] {
        assert_eq!(guess(&h, password).await, ESME_RBINDFAIL, "{password}");
    }
    assert_eq!(h.sim_request_count(&h.bind_check(401)).await, 3);

    bind_from_elsewhere(&h).await;
    let metrics = h.metrics().await;
    for line in [
        "smpp_binds_refused_total{reason=\"credentials\"} 3",
        "smpp_binds_refused_total{reason=\"recently_refused\"} 1",
        "smpp_binds_refused_total{reason=\"address_locked_out\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}

#[tokio::test]
async fn an_unreachable_gateway_fails_the_bind_with_a_system_error() {
    let mut h = Setup::new().env("GATEWAY__RETRIES", "0").start().await;
    h.stop_simulator();
    let mut esme = h.connect().await;
    let resp = esme
        .bind(BindKind::Transmitter, DEMO_USER, DEMO_PASSWORD)
        .await;
    resp.expect(BIND_TRANSMITTER_RESP, ESME_RSYSERR, 1);
    // Every refused bind ends the link; the ESME reconnects, as it would after any failure.
    esme.expect_closed(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed() {
    let h = Setup::new().env("SMPP__MAX_CONNECTIONS", "2").start().await;
    let mut first = h.bound(BindKind::Transmitter).await;
    let second = h.bound(BindKind::Transmitter).await;
    let mut third = h.connect().await;
    third.expect_closed(Duration::from_secs(5)).await;
    first.assert_alive().await;

    drop(second);
    // The slot is free once the server has noticed the close; until then it closes at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut next = loop {
        let mut next = h.connect().await;
        match next.try_read(Duration::from_millis(300)).await {
            Err(ReadError::Timeout) => break next,
            other => assert!(
                std::time::Instant::now() < deadline,
                "no connection kept after one closed: {other:?}"
            ),
        }
    };
    let resp = next
        .bind(BindKind::Transmitter, DEMO_USER, DEMO_PASSWORD)
        .await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
}
