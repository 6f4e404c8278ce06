//! submit_sm: what the gateway receives for what the ESME sends.

use base64::Engine;
use chrono::{DateTime, Duration as TimeDelta, SubsecRound, Utc};
use rusmpp::Pdu;
use rusmpp::tlvs::MessageSubmissionRequestTlvValue as Tlv;
use rusmpp::types::AnyOctetString;
use rusmpp::values::{DataCoding, MessagePayload, PriorityFlag, RegisteredDelivery, Ton};
use serde_json::{Value, json};
use smpp_codec::command::SUBMIT_SM_RESP;
use smpp_codec::status::{
    ESME_RINVDSTADR, ESME_RINVEXPIRY, ESME_RINVMSGLEN, ESME_RINVSCHED, ESME_ROK, ESME_RSUBMITFAIL,
    ESME_RSYSERR,
};

use crate::client::*;
use crate::support::*;

/// Submits `pdu`, expects ESME_ROK and returns the request body the gateway got for it.
pub async fn accepted(h: &Harness, esme: &mut Client, pdu: impl Into<Pdu>) -> Value {
    let resp = esme.call(pdu).await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
    let id = resp.message_id();
    assert!(!id.is_empty(), "{resp:?}");
    h.sim_message(&id).await["request"].clone()
}

async fn text_of(dc: u8, short_message: &[u8]) -> String {
    text_through(Setup::new(), dc, short_message).await
}

/// The text the gateway gets for `short_message` in data_coding `dc`, on a server set up so.
async fn text_through(setup: Setup, dc: u8, short_message: &[u8]) -> String {
    let h = setup.start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let request = accepted(
        &h,
        &mut esme,
        submit_sm("491701234567")
            .data_coding(DataCoding::from(dc))
            .short_message(octets(short_message))
            .build(),
    )
    .await;
    assert!(request.get("dataMessage").is_none(), "{request}");
    request["textMessage"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no textMessage.text: {request}"))
        .to_string()
}

#[tokio::test]
async fn gsm7_with_escapes_reaches_the_gateway_exactly() {
    // a { b } € [ ~ ], unpacked septets with the 0x1B escapes.
    let septets = [
        0x61, 0x1B, 0x28, 0x62, 0x1B, 0x29, 0x1B, 0x65, 0x1B, 0x3C, 0x1B, 0x3D, 0x1B, 0x3E,
    ];
    assert_eq!(text_of(0, &septets).await, "a{b}€[~]");
}

#[tokio::test]
async fn latin1_text_reaches_the_gateway_exactly() {
    assert_eq!(text_of(3, b"caf\xE9").await, "café");
}

#[tokio::test]
async fn ucs2_with_a_surrogate_pair_reaches_the_gateway_exactly() {
    let utf16: Vec<u8> = "hi 😀".encode_utf16().flat_map(u16::to_be_bytes).collect();
    assert_eq!(utf16.len(), 10);
    assert_eq!(text_of(8, &utf16).await, "hi 😀");
}

#[tokio::test]
async fn ia5_text_reaches_the_gateway_exactly() {
    assert_eq!(
        text_of(1, b"Plain ASCII, IA5 text.").await,
        "Plain ASCII, IA5 text."
    );
}

/// node-smpp sends GSM 7-bit text as data_coding 1: '@' is septet 0x00, 'ä' 0x7B and '€' the
/// escape 0x1B 0x65, where ASCII has a NUL, '{' and ESC 'e'.
#[tokio::test]
async fn ia5_is_read_as_gsm7_when_configured_and_as_ascii_by_default() {
    let septets = b"\x00Anna: K\x7Bse 5\x1B\x65";
    let gsm7 = Setup::new().env("SMPP__IA5_ALPHABET", "gsm7");
    let (as_gsm7, as_ascii) = tokio::join!(
        text_through(gsm7, 1, septets),
        text_through(Setup::new(), 1, septets)
    );
    assert_eq!(as_gsm7, "@Anna: Käse 5€");
    assert_eq!(as_ascii, "\0Anna: K{se 5\u{1B}e");
}

#[tokio::test]
async fn message_payload_carries_a_long_text() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let text: String = (0..300)
        .map(|i| char::from(b"abcdefghij0123456789 ,.XYZ"[i % 26]))
        .collect();
    let request = accepted(
        &h,
        &mut esme,
        submit_sm("491701234567")
            .short_message(octets(b""))
            .push_tlv(Tlv::MessagePayload(MessagePayload::new(
                AnyOctetString::from_slice(text.as_bytes()),
            )))
            .build(),
    )
    .await;
    assert_eq!(request["textMessage"]["text"], text.as_str());
}

#[tokio::test]
async fn message_fields_map_onto_the_gateway_request() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;

    let plain = accepted(
        &h,
        &mut esme,
        submit_sm("491701234567")
            .short_message(octets(b"fields"))
            .build(),
    )
    .await;
    assert_eq!(plain["phoneNumbers"], json!(["+491701234567"]), "{plain}");
    assert_eq!(plain["withDeliveryReport"], false, "{plain}");
    for absent in ["ttl", "validUntil", "scheduleAt", "priority", "dataMessage"] {
        assert!(plain.get(absent).is_none(), "{absent} in {plain}");
    }

    let receipt = accepted(
        &h,
        &mut esme,
        submit_sm("491701234567")
            .registered_delivery(RegisteredDelivery::from(1u8))
            .short_message(octets(b"receipt"))
            .build(),
    )
    .await;
    assert_eq!(receipt["withDeliveryReport"], true, "{receipt}");

    let relative = accepted(
        &h,
        &mut esme,
        submit_sm("491701234567")
            .validity_period(field("000001000000000R"))
            .short_message(octets(b"one day"))
            .build(),
    )
    .await;
    assert_eq!(relative["ttl"], 86_400, "{relative}");

    let urgent = accepted(
        &h,
        &mut esme,
        submit_sm("491701234567")
            .priority_flag(PriorityFlag::from(3u8))
            .short_message(octets(b"urgent"))
            .build(),
    )
    .await;
    assert_eq!(urgent["priority"], 100, "{urgent}");
}

#[tokio::test]
async fn a_future_schedule_becomes_schedule_at() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let at = (Utc::now() + TimeDelta::hours(2)).trunc_subsecs(0);
    let smpp_time = at.format("%y%m%d%H%M%S000+").to_string();
    let request = accepted(
        &h,
        &mut esme,
        submit_sm("491701234567")
            .schedule_delivery_time(field(&smpp_time))
            .short_message(octets(b"later"))
            .build(),
    )
    .await;
    let schedule_at = request["scheduleAt"]
        .as_str()
        .unwrap_or_else(|| panic!("no scheduleAt: {request}"));
    assert_eq!(
        DateTime::parse_from_rfc3339(schedule_at).expect("RFC 3339"),
        at,
        "{request}"
    );
}

#[tokio::test]
async fn bad_times_are_refused_with_their_own_status() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let resp = esme
        .call(
            submit_sm("491701234567")
                .validity_period(field("000001000000000X"))
                .short_message(octets(b"x"))
                .build(),
        )
        .await;
    resp.expect(SUBMIT_SM_RESP, ESME_RINVEXPIRY, 2);
    let resp = esme
        .call(
            submit_sm("491701234567")
                .schedule_delivery_time(field("251399120000000+"))
                .short_message(octets(b"x"))
                .build(),
        )
        .await;
    resp.expect(SUBMIT_SM_RESP, ESME_RINVSCHED, 3);
    assert!(h.sim_messages().await.is_empty());
}

#[tokio::test]
async fn eight_bit_data_with_a_port_becomes_a_data_message() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let data = [0x00, 0x01, 0xFE, 0xFF, 0x7F, 0x80];
    let request = accepted(
        &h,
        &mut esme,
        submit_sm("491701234567")
            .data_coding(DataCoding::from(4u8))
            .short_message(octets(&data))
            .push_tlv(Tlv::DestPort(9200))
            .build(),
    )
    .await;
    assert!(request.get("textMessage").is_none(), "{request}");
    assert_eq!(
        request["dataMessage"],
        json!({
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "port": 9200,
        })
    );
}

#[tokio::test]
async fn eight_bit_data_without_a_port_is_refused() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let resp = esme
        .call(
            submit_sm("491701234567")
                .data_coding(DataCoding::from(4u8))
                .short_message(octets(&[1, 2, 3]))
                .build(),
        )
        .await;
    resp.expect(SUBMIT_SM_RESP, ESME_RSUBMITFAIL, 2);
    assert!(h.sim_messages().await.is_empty());
}

#[tokio::test]
async fn undecodable_ucs2_is_refused_before_the_gateway() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let resp = esme
        .call(
            submit_sm("491701234567")
                .data_coding(DataCoding::from(8u8))
                .short_message(octets(&[0x00, 0x68, 0x00]))
                .build(),
        )
        .await;
    resp.expect(SUBMIT_SM_RESP, ESME_RINVMSGLEN, 2);
    assert!(h.sim_messages().await.is_empty());
    assert_eq!(gateway_posts(&h).await, 0);
}

/// `POST /messages` calls the gateway got, whatever it answered.
async fn gateway_posts(h: &Harness) -> u64 {
    h.sim_requests_starting("POST /messages").await
}

#[tokio::test]
async fn an_empty_message_is_refused_before_the_gateway() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let resp = esme
        .call(submit_sm("491701234567").short_message(octets(b"")).build())
        .await;
    resp.expect(SUBMIT_SM_RESP, ESME_RINVMSGLEN, 2);
    esme.assert_alive().await;
    assert_eq!(gateway_posts(&h).await, 0);
}

#[tokio::test]
async fn an_unprefixed_national_number_is_an_invalid_destination() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let resp = esme
        .call(
            submit_sm("01701234567")
                .dest_addr_ton(Ton::from(0u8))
                .short_message(octets(b"national"))
                .build(),
        )
        .await;
    resp.expect(SUBMIT_SM_RESP, ESME_RINVDSTADR, 2);
    assert_eq!(h.sim_request_count("POST /messages 400").await, 1);
}

#[tokio::test]
async fn absolute_validity_becomes_valid_until_and_a_past_schedule_means_now() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let until = (Utc::now() + TimeDelta::hours(3)).trunc_subsecs(0);
    let past = Utc::now() - TimeDelta::hours(1);
    let request = accepted(
        &h,
        &mut esme,
        submit_sm("491701234567")
            // The same instant written in UTC+01:00 (4 quarter hours).
            .validity_period(field(
                &(until + TimeDelta::hours(1))
                    .format("%y%m%d%H%M%S004+")
                    .to_string(),
            ))
            .schedule_delivery_time(field(&past.format("%y%m%d%H%M%S000+").to_string()))
            .short_message(octets(b"bounded"))
            .build(),
    )
    .await;
    let valid_until = request["validUntil"]
        .as_str()
        .unwrap_or_else(|| panic!("no validUntil: {request}"));
    assert_eq!(
        DateTime::parse_from_rfc3339(valid_until).expect("RFC 3339"),
        until,
        "{request}"
    );
    assert!(request.get("ttl").is_none(), "{request}");
    assert!(request.get("scheduleAt").is_none(), "{request}");
}

#[tokio::test]
async fn the_default_alphabet_is_configurable() {
    let h = Setup::new()
        .env("SMPP__DEFAULT_ALPHABET", "latin1")
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let request = accepted(
        &h,
        &mut esme,
        submit_sm("491701234567")
            .short_message(octets(b"caf\xE9 {ok}"))
            .build(),
    )
    .await;
    assert_eq!(request["textMessage"]["text"], "café {ok}");
}

#[tokio::test]
async fn text_that_is_not_gsm7_is_refused() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let resp = esme
        .call(
            submit_sm("491701234567")
                .short_message(octets(b"caf\xE9"))
                .build(),
        )
        .await;
    resp.expect(SUBMIT_SM_RESP, ESME_RINVMSGLEN, 2);
    assert!(h.sim_messages().await.is_empty());
}

#[tokio::test]
async fn short_message_and_message_payload_together_are_refused() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let resp = esme
        .call(
            submit_sm("491701234567")
                .short_message(octets(b"one"))
                .push_tlv(Tlv::MessagePayload(MessagePayload::new(
                    AnyOctetString::from_slice(b"two"),
                )))
                .build(),
        )
        .await;
    resp.expect(SUBMIT_SM_RESP, ESME_RINVMSGLEN, 2);
    assert!(h.sim_messages().await.is_empty());
}

#[tokio::test]
async fn an_unreachable_gateway_fails_a_submit_with_a_system_error() {
    let mut h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    h.stop_simulator();
    let resp = esme
        .call(
            submit_sm("491701234567")
                .short_message(octets(b"nobody listens"))
                .build(),
        )
        .await;
    resp.expect(SUBMIT_SM_RESP, ESME_RSYSERR, 2);
    esme.assert_alive().await;
}

#[tokio::test]
async fn metrics_count_what_the_esme_saw() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    accepted(
        &h,
        &mut esme,
        submit_sm("491701234567")
            .short_message(octets(b"hello"))
            .build(),
    )
    .await;
    let odd_ucs2 = esme
        .call(
            submit_sm("491701234567")
                .data_coding(DataCoding::from(8))
                .short_message(octets(&[0x00, 0x41, 0x00]))
                .build(),
        )
        .await;
    assert_eq!(odd_ucs2.status, ESME_RINVMSGLEN, "{odd_ucs2:?}");
    let text = h.metrics().await;
    for line in [
        "smpp_sessions_active{state=\"bound_tx\"} 1",
        "smpp_bind_attempts_total{status=\"success\",type=\"tx\"} 1",
        "smpp_submit_sm_total{status=\"ESME_ROK\"} 1",
        "smpp_submit_sm_total{status=\"ESME_RINVMSGLEN\"} 1",
        "smpp_errors_total{code=\"0x00000001\"} 1",
        "smsgate_requests_total{operation=\"submit_sms\",status=\"success\"} 1",
        "smsgate_requests_total{operation=\"ping\",status=\"success\"} 1",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}
