//! Gateway answers, provoked through simulator rules, and the command_status each becomes.

use smpp_codec::command::SUBMIT_SM_RESP;
use smpp_codec::status::{
    CommandStatus, ESME_RINVDSTADR, ESME_RMSGQFUL, ESME_ROK, ESME_RSUBMITFAIL, ESME_RSYSERR,
    ESME_RTHROTTLED,
};

use crate::client::*;
use crate::support::*;

async fn submit_to(esme: &mut Client, destination: &str) -> Frame {
    esme.call(
        submit_sm(destination)
            .short_message(octets(b"status mapping"))
            .build(),
    )
    .await
}

#[tokio::test]
async fn gateway_refusals_map_to_smpp_statuses() {
    let cases: [(&str, u16, &str, CommandStatus); 7] = [
        ("4915550001", 400, "invalid phone number", ESME_RINVDSTADR),
        ("4915550002", 400, "text is too long", ESME_RSUBMITFAIL),
        ("4915550003", 401, "Unauthorized", ESME_RSUBMITFAIL),
        ("4915550004", 429, "Too Many Requests", ESME_RTHROTTLED),
        (
            "4915550005",
            503,
            "failed to enqueue message: queue limits exceeded",
            ESME_RMSGQFUL,
        ),
        ("4915550006", 500, "failed to handle request", ESME_RSYSERR),
        // The gateway already has a message with this id: an earlier attempt got through.
        (
            "4915550007",
            409,
            "message with the same ID already exists",
            ESME_ROK,
        ),
    ];
    let mut setup = Setup::new();
    for (number, status, message, _) in cases {
        setup = setup.rule(
            &format!("^\\+{number}$"),
            Outcome::Reject { status, message },
        );
    }
    let h = setup.start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    for (number, status, message, expected) in cases {
        let resp = submit_to(&mut esme, number).await;
        assert_eq!(
            (resp.command_id, resp.status),
            (SUBMIT_SM_RESP, expected),
            "gateway {status} {message:?} → {resp:?}"
        );
        if expected == ESME_ROK {
            assert!(!resp.message_id().is_empty(), "{resp:?}");
        } else {
            assert!(resp.body.is_empty(), "{resp:?}");
        }
    }
    let requests = h.sim_requests().await;
    for (key, count) in [
        ("POST /messages 400", 2),
        ("POST /messages 401", 1),
        ("POST /messages 429", 1),
        ("POST /messages 503", 1),
        ("POST /messages 500", 1),
        ("POST /messages 409", 1),
    ] {
        assert_eq!(requests.get(key), Some(&count), "{key}: {requests:?}");
    }
}

#[tokio::test]
async fn a_failing_delivery_is_still_accepted() {
    let h = Setup::new()
        .rule(
            "^\\+4915550008$",
            Outcome::Fail("RESULT_ERROR_GENERIC_FAILURE"),
        )
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let resp = submit_to(&mut esme, "4915550008").await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
    h.sim_message(&resp.message_id()).await;
}

/// The gateway took the message, but its answer came too late: asked, it confirms the id, so
/// the ESME is told the message is accepted instead of being invited to send it again.
#[tokio::test]
async fn a_message_whose_answer_was_lost_is_confirmed_with_the_gateway() {
    let h = Setup::new()
        .rule("^\\+4915550009$", Outcome::Stall("5s"))
        .env("GATEWAY__TIMEOUT", "1s")
        .env("GATEWAY__RETRIES", "0")
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let resp = submit_to(&mut esme, "4915550009").await;
    resp.expect(SUBMIT_SM_RESP, ESME_ROK, 2);
    let messages = h.sim_messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0]["id"], resp.message_id().as_str());
    assert_eq!(h.sim_request_count("GET /messages/{id} 200").await, 1);
}

/// Without an answer and without the message on the gateway, the outcome is a system error:
/// the ESME may send again, and nothing was sent yet.
#[tokio::test]
async fn an_unreachable_gateway_is_a_system_error() {
    let mut h = Setup::new()
        .env("GATEWAY__TIMEOUT", "1s")
        .env("GATEWAY__RETRIES", "0")
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    h.stop_simulator();
    let resp = submit_to(&mut esme, "4915550011").await;
    resp.expect(SUBMIT_SM_RESP, ESME_RSYSERR, 2);
}

#[tokio::test]
async fn a_retry_after_a_timeout_never_sends_the_message_twice() {
    let h = Setup::new()
        .rule("^\\+4915550010$", Outcome::Stall("3s"))
        .env("GATEWAY__TIMEOUT", "1s")
        .env("GATEWAY__RETRIES", "1")
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let resp = submit_to(&mut esme, "4915550010").await;
    // The first attempt reached the gateway; the retry with the same id is told so (409).
    resp.expect(SUBMIT_SM_RESP, ESME_ROK, 2);
    let id = resp.message_id();
    let messages = h.sim_messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0]["id"], id.as_str());
    assert_eq!(h.sim_request_count("POST /messages 409").await, 1);
}
