//! Concatenated messages: parts in, one gateway message out.

use std::collections::HashSet;
use std::time::Duration;

use rusmpp::tlvs::MessageSubmissionRequestTlvValue as Tlv;
use rusmpp::values::{DataCoding, EsmClass};
use smpp_codec::command::SUBMIT_SM_RESP;
use smpp_codec::status::ESME_ROK;

use crate::client::*;
use crate::support::*;

const PARTS: [&str; 3] = [
    "This is the first part, ",
    "then comes the second part, ",
    "and finally the third part.",
];

/// A concatenation header: IEI 0x00 with an 8-bit reference or IEI 0x08 with a 16-bit one.
fn udh(sixteen_bit: bool, reference: u16, total: u8, sequence: u8) -> Vec<u8> {
    if sixteen_bit {
        let [hi, lo] = reference.to_be_bytes();
        vec![6, 0x08, 4, hi, lo, total, sequence]
    } else {
        vec![5, 0x00, 3, reference as u8, total, sequence]
    }
}

/// Sends the parts in `order` (1-based), checks each is answered with an id of its own, and
/// returns the ids indexed by part number - 1 (empty for parts not sent).
async fn send_parts(
    esme: &mut Client,
    order: &[u8],
    part: impl Fn(u8) -> rusmpp::pdus::SubmitSm,
) -> Vec<String> {
    let mut ids = vec![String::new(); usize::from(*order.iter().max().unwrap_or(&0))];
    for &sequence in order {
        let resp = esme.call(part(sequence)).await;
        assert_eq!(
            (resp.command_id, resp.status),
            (SUBMIT_SM_RESP, ESME_ROK),
            "part {sequence}: {resp:?}"
        );
        ids[usize::from(sequence) - 1] = resp.message_id();
    }
    let sent: Vec<&String> = ids.iter().filter(|id| !id.is_empty()).collect();
    let distinct: HashSet<&&String> = sent.iter().collect();
    assert_eq!(
        sent.len(),
        order.len(),
        "a part was answered with no id: {ids:?}"
    );
    assert_eq!(
        distinct.len(),
        sent.len(),
        "part ids are not distinct: {ids:?}"
    );
    ids
}

async fn udh_concatenation(sixteen_bit: bool) {
    let h = Setup::new().step_delay("30s").start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let reference = if sixteen_bit { 0xBEEF } else { 0x42 };
    let ids = send_parts(&mut esme, &[2, 3, 1], |sequence| {
        let mut short_message = udh(sixteen_bit, reference, 3, sequence);
        short_message.extend_from_slice(PARTS[usize::from(sequence) - 1].as_bytes());
        submit_sm("491701234567")
            .esm_class(EsmClass::from(0x40u8))
            .short_message(octets(&short_message))
            .build()
    })
    .await;

    let messages = h.sim_messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(
        messages[0]["request"]["textMessage"]["text"],
        PARTS.concat().as_str()
    );
    let resp = esme.call(query_sm(&ids[1])).await;
    assert_eq!(resp.status, ESME_ROK, "query_sm by part id: {resp:?}");
    assert_eq!(resp.query_resp().message_id, ids[1]);
}

#[tokio::test]
async fn udh_8bit_reference_parts_out_of_order_make_one_message() {
    udh_concatenation(false).await;
}

#[tokio::test]
async fn udh_16bit_reference_parts_out_of_order_make_one_message() {
    udh_concatenation(true).await;
}

#[tokio::test]
async fn sar_tlv_parts_out_of_order_make_one_message() {
    let h = Setup::new().step_delay("30s").start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let ids = send_parts(&mut esme, &[3, 1, 2], |sequence| {
        submit_sm("491701234567")
            .short_message(octets(PARTS[usize::from(sequence) - 1].as_bytes()))
            .push_tlv(Tlv::SarMsgRefNum(0x1234))
            .push_tlv(Tlv::SarTotalSegments(3))
            .push_tlv(Tlv::SarSegmentSeqnum(sequence))
            .build()
    })
    .await;
    let messages = h.sim_messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(
        messages[0]["request"]["textMessage"]["text"],
        PARTS.concat().as_str()
    );
    let resp = esme.call(query_sm(&ids[0])).await;
    assert_eq!(resp.status, ESME_ROK, "query_sm by part id: {resp:?}");
}

#[tokio::test]
async fn a_surrogate_pair_split_across_ucs2_parts_is_joined() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let text = "ab😀cd";
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    // The high surrogate ends part 1, the low surrogate starts part 2.
    let (first, second) = utf16.split_at(6);
    assert_eq!(&first[4..], &[0xD8, 0x3D]);
    send_parts(&mut esme, &[2, 1], |sequence| {
        let mut short_message = udh(false, 7, 2, sequence);
        short_message.extend_from_slice(if sequence == 1 { first } else { second });
        submit_sm("491701234567")
            .esm_class(EsmClass::from(0x40u8))
            .data_coding(DataCoding::from(8u8))
            .short_message(octets(&short_message))
            .build()
    })
    .await;
    let messages = h.sim_messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0]["request"]["textMessage"]["text"], text);
}

#[tokio::test]
async fn an_incomplete_message_is_sent_with_the_parts_that_came_after_the_timeout() {
    let h = Setup::new().env("SMPP__CONCAT_TIMEOUT", "1s").start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    send_parts(&mut esme, &[1, 3], |sequence| {
        let mut short_message = udh(false, 9, 3, sequence);
        short_message.extend_from_slice(PARTS[usize::from(sequence) - 1].as_bytes());
        submit_sm("491701234567")
            .esm_class(EsmClass::from(0x40u8))
            .short_message(octets(&short_message))
            .build()
    })
    .await;
    assert!(h.sim_messages().await.is_empty(), "sent before the timeout");
    let messages = h.wait_for_messages(1, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(
        messages[0]["request"]["textMessage"]["text"],
        [PARTS[0], PARTS[2]].concat().as_str()
    );
}

#[tokio::test]
async fn a_gsm7_escape_split_across_parts_is_joined() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    // "price 5€!": the escape ends part 1, the euro code starts part 2.
    let first: &[u8] = b"price 5\x1B";
    let second: &[u8] = b"\x65!";
    send_parts(&mut esme, &[1, 2], |sequence| {
        let mut short_message = udh(false, 11, 2, sequence);
        short_message.extend_from_slice(if sequence == 1 { first } else { second });
        submit_sm("491701234567")
            .esm_class(EsmClass::from(0x40u8))
            .short_message(octets(&short_message))
            .build()
    })
    .await;
    let messages = h.sim_messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0]["request"]["textMessage"]["text"], "price 5€!");
}

const BINARY_PARTS: [&[u8]; 2] = [&[0x01, 0x02, 0x00, 0xFF], &[0x80, 0x7F, 0x03]];

fn joined_binary() -> serde_json::Value {
    use base64::Engine;
    serde_json::json!({
        "data": base64::engine::general_purpose::STANDARD.encode(BINARY_PARTS.concat()),
        "port": 9200,
    })
}

#[tokio::test]
async fn binary_parts_with_a_port_tlv_make_one_data_message() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    send_parts(&mut esme, &[1, 2], |sequence| {
        let mut short_message = udh(false, 21, 2, sequence);
        short_message.extend_from_slice(BINARY_PARTS[usize::from(sequence) - 1]);
        submit_sm("491701234567")
            .esm_class(EsmClass::from(0x40u8))
            .data_coding(DataCoding::from(4u8))
            .short_message(octets(&short_message))
            .push_tlv(Tlv::DestPort(9200))
            .build()
    })
    .await;
    let messages = h.sim_messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0]["request"]["dataMessage"], joined_binary());
}

#[tokio::test]
async fn binary_parts_with_a_udh_port_make_one_data_message() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    send_parts(&mut esme, &[1, 2], |sequence| {
        // Application port IE (0x05: destination 9200, source 0) next to the concatenation IE.
        let mut short_message = vec![11, 0x05, 4, 0x23, 0xF0, 0x00, 0x00, 0x00, 3, 22, 2];
        short_message.push(sequence);
        short_message.extend_from_slice(BINARY_PARTS[usize::from(sequence) - 1]);
        submit_sm("491701234567")
            .esm_class(EsmClass::from(0x40u8))
            .data_coding(DataCoding::from(4u8))
            .short_message(octets(&short_message))
            .build()
    })
    .await;
    let messages = h.sim_messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0]["request"]["dataMessage"], joined_binary());
}
