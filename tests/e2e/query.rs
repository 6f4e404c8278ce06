//! query_sm, cancel_sm and replace_sm against messages the simulator holds.

use std::time::{Duration, Instant};

use rusmpp::pdus::{CancelSm, ReplaceSm};
use rusmpp::values::{Npi, RegisteredDelivery, ServiceType, Ton};
use smpp_codec::command::{CANCEL_SM_RESP, QUERY_SM_RESP, REPLACE_SM_RESP};
use smpp_codec::status::{ESME_RCANCELFAIL, ESME_ROK, ESME_RQUERYFAIL, ESME_RREPLACEFAIL};

use crate::client::*;
use crate::support::*;

const ENROUTE: u8 = 1;
const DELIVERED: u8 = 2;
const DELETED: u8 = 4;
const UNDELIVERABLE: u8 = 5;

async fn submit(esme: &mut Client, registered_delivery: u8) -> String {
    let resp = esme
        .call(
            submit_sm("491701234567")
                .registered_delivery(RegisteredDelivery::from(registered_delivery))
                .short_message(octets(b"track me"))
                .build(),
        )
        .await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
    resp.message_id()
}

fn cancel_sm(message_id: &str) -> CancelSm {
    CancelSm::builder()
        .service_type(ServiceType::default())
        .message_id(field(message_id))
        .source_addr_ton(Ton::from(1u8))
        .source_addr_npi(Npi::from(1u8))
        .source_addr(field("4930123456"))
        .dest_addr_ton(Ton::from(1u8))
        .dest_addr_npi(Npi::from(1u8))
        .destination_addr(field("491701234567"))
        .build()
}

async fn query(esme: &mut Client, message_id: &str) -> QueryResp {
    let resp = esme.call(query_sm(message_id)).await;
    assert_eq!(
        (resp.command_id, resp.status),
        (QUERY_SM_RESP, ESME_ROK),
        "{resp:?}"
    );
    resp.query_resp()
}

/// Polls until the message reaches `state`.
async fn query_until(esme: &mut Client, message_id: &str, state: u8) -> QueryResp {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = query(esme, message_id).await;
        if resp.message_state == state {
            return resp;
        }
        assert!(
            Instant::now() < deadline,
            "message never reached state {state}: {resp:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_message_id_is_the_gateway_id_and_a_pending_message_is_enroute() {
    let h = Setup::new().step_delay("30s").start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let id = submit(&mut esme, 1).await;
    let stored = h.sim_message(&id).await;
    assert_eq!(stored["request"]["id"], id.as_str(), "{stored}");

    let resp = query(&mut esme, &id).await;
    assert_eq!(
        resp,
        QueryResp {
            message_id: id,
            final_date: String::new(),
            message_state: ENROUTE,
            error_code: 0,
        }
    );
}

#[tokio::test]
async fn a_delivered_message_has_a_final_date() {
    let h = Setup::new().step_delay("50ms").start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let id = submit(&mut esme, 1).await;
    let resp = query_until(&mut esme, &id, DELIVERED).await;
    assert_eq!(resp.message_id, id);
    assert_eq!(resp.final_date.len(), 16, "{resp:?}");
    assert!(
        resp.final_date[..12].bytes().all(|b| b.is_ascii_digit()),
        "{resp:?}"
    );
    assert_eq!(resp.error_code, 0);
}

#[tokio::test]
async fn a_failed_message_is_undeliverable_with_a_final_date() {
    let h = Setup::new()
        .step_delay("50ms")
        .rule(
            "^\\+491701234567$",
            Outcome::Fail("RESULT_ERROR_NO_SERVICE"),
        )
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let id = submit(&mut esme, 1).await;
    let resp = query_until(&mut esme, &id, UNDELIVERABLE).await;
    assert_eq!(resp.final_date.len(), 16, "{resp:?}");
}

#[tokio::test]
async fn querying_an_unknown_id_fails() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let resp = esme.call(query_sm("NoSuchMessage000000000")).await;
    resp.expect(QUERY_SM_RESP, ESME_RQUERYFAIL, 2);
    assert!(resp.body.is_empty(), "{resp:?}");
}

#[tokio::test]
async fn a_pending_message_can_be_cancelled_unless_the_phone_serves_the_api() {
    let h = Setup::new().step_delay("30s").start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let id = submit(&mut esme, 1).await;
    let resp = esme.call(cancel_sm(&id)).await;
    if h.personality == Personality::Local {
        // The phone's own API has no cancel: SMPP's "cancel failed", without a gateway call.
        resp.expect(CANCEL_SM_RESP, ESME_RCANCELFAIL, 3);
        assert_eq!(h.sim_requests_starting("DELETE ").await, 0);
        assert_eq!(h.sim_message(&id).await["state"], "Pending");
        assert_eq!(query(&mut esme, &id).await.message_state, ENROUTE);
        return;
    }
    resp.expect(CANCEL_SM_RESP, ESME_ROK, 3);
    assert!(resp.body.is_empty(), "{resp:?}");
    assert_eq!(h.sim_message(&id).await["state"], "Cancelled");
    let resp = query(&mut esme, &id).await;
    assert_eq!(resp.message_state, DELETED, "{resp:?}");
    assert_eq!(resp.final_date.len(), 16, "{resp:?}");
}

#[tokio::test]
async fn a_delivered_message_cannot_be_cancelled() {
    let h = Setup::new().step_delay("50ms").start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let id = submit(&mut esme, 1).await;
    query_until(&mut esme, &id, DELIVERED).await;
    let sequence = esme.send(cancel_sm(&id)).await;
    esme.response(sequence)
        .await
        .expect(CANCEL_SM_RESP, ESME_RCANCELFAIL, sequence);
    assert_eq!(h.sim_message(&id).await["state"], "Delivered");
}

#[tokio::test]
async fn replace_sm_is_refused() {
    let h = Setup::new().step_delay("30s").start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let id = submit(&mut esme, 0).await;
    let replace = ReplaceSm::builder()
        .message_id(field(&id))
        .source_addr_ton(Ton::from(1u8))
        .source_addr_npi(Npi::from(1u8))
        .source_addr(field("4930123456"))
        .schedule_delivery_time(field(""))
        .validity_period(field(""))
        .registered_delivery(RegisteredDelivery::from(0u8))
        .sm_default_msg_id(0)
        .short_message(octets(b"new text"))
        .build();
    let resp = esme.call(replace).await;
    resp.expect(REPLACE_SM_RESP, ESME_RREPLACEFAIL, 3);
    assert!(resp.body.is_empty(), "{resp:?}");
}

#[tokio::test]
async fn another_account_cannot_see_or_cancel_a_message() {
    let h = Setup::new().step_delay("30s").start().await;
    let mut owner = h.connect().await;
    let resp = owner
        .bind(BindKind::Transmitter, LONG_USER, LONG_PASSWORD)
        .await;
    assert_eq!(resp.status, ESME_ROK);
    let id = submit(&mut owner, 1).await;

    let mut other = h.bound(BindKind::Transmitter).await;
    let resp = other.call(query_sm(&id)).await;
    resp.expect(QUERY_SM_RESP, ESME_RQUERYFAIL, 2);
    let resp = other.call(cancel_sm(&id)).await;
    resp.expect(CANCEL_SM_RESP, ESME_RCANCELFAIL, 3);
    assert_eq!(h.sim_message(&id).await["state"], "Pending");
    assert_eq!(query(&mut owner, &id).await.message_state, ENROUTE);
}
