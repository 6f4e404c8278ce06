//! Broken PDUs: a bad body costs one error answer and the link survives; a bad command_length
//! loses the framing and the link; nothing crashes the server.

use std::time::Duration;

use smpp_codec::command::{
    ENQUIRE_LINK, ENQUIRE_LINK_RESP, GENERIC_NACK, SUBMIT_SM, SUBMIT_SM_RESP,
};
use smpp_codec::pdu::tag;
use smpp_codec::status::{
    CommandStatus, ESME_RINVCMDID, ESME_RINVCMDLEN, ESME_RINVMSGLEN, ESME_RINVPARLEN, ESME_ROK,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::client::*;
use crate::support::*;

/// Sends one malformed PDU on a bound link, checks the answer, then that the link still works.
async fn answered_and_kept(command_id: u32, body: &[u8], expected: (u32, CommandStatus)) {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let sequence = esme.send_raw(command_id, body).await;
    let resp = esme.response(sequence).await;
    resp.expect(expected.0, expected.1, sequence);
    assert!(resp.body.is_empty(), "{resp:?}");
    esme.assert_alive().await;
    assert!(h.sim_messages().await.is_empty());
}

#[tokio::test]
async fn a_truncated_c_string_is_a_command_length_error() {
    answered_and_kept(
        SUBMIT_SM,
        b"no terminating NUL anywhere",
        (SUBMIT_SM_RESP, ESME_RINVCMDLEN),
    )
    .await;
}

#[tokio::test]
async fn an_enquire_link_with_a_body_is_a_command_length_error() {
    answered_and_kept(
        ENQUIRE_LINK,
        &[0, 0, 0, 0],
        (ENQUIRE_LINK_RESP, ESME_RINVCMDLEN),
    )
    .await;
}

#[tokio::test]
async fn an_unknown_command_gets_generic_nack() {
    answered_and_kept(0x0000_00AB, b"", (GENERIC_NACK, ESME_RINVCMDID)).await;
}

#[tokio::test]
async fn sm_length_beyond_the_body_is_a_message_length_error() {
    let body = Body::submit_sm_head("491701234567").u8(200).raw(b"short");
    answered_and_kept(SUBMIT_SM, &body.0, (SUBMIT_SM_RESP, ESME_RINVMSGLEN)).await;
}

#[tokio::test]
async fn a_tlv_overrunning_the_pdu_is_a_parameter_length_error() {
    let body = Body::submit_sm_head("491701234567")
        .u8(2)
        .raw(b"hi")
        .raw(&tag::MESSAGE_PAYLOAD.to_be_bytes())
        .raw(&100u16.to_be_bytes())
        .raw(b"abc");
    answered_and_kept(SUBMIT_SM, &body.0, (SUBMIT_SM_RESP, ESME_RINVPARLEN)).await;
}

#[tokio::test]
async fn a_command_length_below_the_header_closes_the_link() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    esme.write(&header(8, ENQUIRE_LINK, 77)).await;
    let nack = esme.read().await;
    nack.expect(GENERIC_NACK, ESME_RINVCMDLEN, 77);
    assert!(nack.body.is_empty());
    esme.expect_closed(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_command_length_above_the_maximum_closes_the_link() {
    let h = Setup::new()
        .env("SMPP__MAX_COMMAND_LENGTH", "2048")
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    // Only the header is sent: the server must not wait for a body it will never accept.
    esme.write(&header(4096, SUBMIT_SM, 78)).await;
    let nack = esme.read().await;
    nack.expect(GENERIC_NACK, ESME_RINVCMDLEN, 78);
    esme.expect_closed(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_pdu_at_the_maximum_length_is_accepted() {
    let h = Setup::new()
        .env("SMPP__MAX_COMMAND_LENGTH", "2048")
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let head = Body::submit_sm_head("491701234567").u8(0);
    let payload_len = 2048 - 16 - head.0.len() - 4;
    let text = "x".repeat(payload_len);
    let body = head.tlv(tag::MESSAGE_PAYLOAD, text.as_bytes());
    assert_eq!(body.0.len() + 16, 2048);
    let resp = esme.call_raw(SUBMIT_SM, &body.0).await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
    let id = resp.message_id();
    assert_eq!(
        h.sim_message(&id).await["request"]["textMessage"]["text"],
        text.as_str()
    );
}

/// xorshift64: reproducible garbage without a dependency.
struct Garbage(u64);

impl Garbage {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 >> 24) as u8
            })
            .collect()
    }
}

#[tokio::test]
async fn garbage_does_not_crash_the_server() {
    let mut h = Setup::new().start().await;
    let mut garbage = Garbage(0x9E37_79B9_7F4A_7C15);
    for round in 0..16 {
        let mut stream = TcpStream::connect(h.smpp).await.expect("connect");
        let mut bytes = garbage.bytes(512 + round * 97);
        if round % 2 == 1 {
            // A plausible command_length, so the junk reaches the body decoder.
            let len = u32::try_from(bytes.len()).unwrap();
            bytes[..4].copy_from_slice(&len.to_be_bytes());
        }
        // The server may close the link half-way; that is one of the allowed reactions.
        let _ = stream.write_all(&bytes).await;
        drop(stream);
    }
    let mut bound = h.bound(BindKind::Transmitter).await;
    let resp = bound
        .call(
            submit_sm("491701234567")
                .short_message(octets(b"still here"))
                .build(),
        )
        .await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
    assert!(h.server_alive());
}

#[tokio::test]
async fn garbage_after_a_bind_does_not_crash_the_server() {
    let mut h = Setup::new().start().await;
    let mut garbage = Garbage(0xDEAD_BEEF_CAFE_F00D);
    let mut esme = h.bound(BindKind::Transceiver).await;
    for _ in 0..16 {
        // A submit_sm whose command_length is honest but whose body is noise.
        let noise = garbage.bytes(300);
        let garbage_sequence = esme.next_sequence();
        esme.write(&pdu_bytes(SUBMIT_SM, garbage_sequence, &noise))
            .await;
        let probe = esme.send(rusmpp::Pdu::EnquireLink).await;
        let mut answers = Vec::new();
        loop {
            let frame = esme.read().await;
            if frame.sequence == probe {
                frame.expect(ENQUIRE_LINK_RESP, ESME_ROK, probe);
                break;
            }
            answers.push(frame);
        }
        // Answers may overtake each other, so the noise's answer may come after the probe's.
        if answers.is_empty() {
            answers.push(esme.read().await);
        }
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert_eq!(
            (answers[0].command_id, answers[0].sequence),
            (SUBMIT_SM_RESP, garbage_sequence),
            "{answers:?}"
        );
        assert_ne!(answers[0].status, ESME_ROK, "{answers:?}");
    }
    assert!(h.server_alive());
}
