//! The delivery path: what the phone reports through webhooks (receipts, incoming SMS) reaches
//! the ESME as deliver_sm, and the webhook endpoint answers the phone so that it retries only
//! what was not taken.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use regex::Regex;
use rusmpp::values::{EsmClass, RegisteredDelivery};
use serde_json::{Value, json};
use sha2::Sha256;
use smpp_codec::command::SUBMIT_SM_RESP;
use smpp_codec::pdu::tag;
use smpp_codec::status::{
    ESME_RINVDSTADR, ESME_ROK, ESME_RSYSERR, ESME_RTHROTTLED, ESME_RX_T_APPN,
};

use crate::client::*;
use crate::support::*;

/// Generous: webhook calls, fsyncs and retries on a loaded two-core machine.
const WAIT: Duration = Duration::from_secs(30);
/// How long "nothing more comes" is watched for, once everything that could cause a deliver_sm
/// has been answered by the server.
const QUIET: Duration = Duration::from_secs(2);

/// The submit_sm helper's source address, where receipts go back to.
const ESME_ADDR: &str = "4930123456";
const PHONE: &str = "491701234567";
const FAILING_PHONE: &str = "491700012345";
const KEY: &str = "e2e-webhook-signing-key";

fn setup() -> Setup {
    Setup::new()
        .webhooks()
        .env("DELIVERY__RETRY_INITIAL", "200ms")
}

/// A bound session whose account's webhooks are in place, so events reach the server.
async fn receiver(h: &Harness, kind: BindKind) -> Client {
    let client = h.bound(kind).await;
    h.wait_for_registrations(WAIT).await;
    client
}

async fn submit(
    esme: &mut Client,
    destination: &str,
    registered_delivery: u8,
    text: &str,
) -> String {
    let resp = esme
        .call(
            submit_sm(destination)
                .registered_delivery(RegisteredDelivery::from(registered_delivery))
                .short_message(octets(text.as_bytes()))
                .build(),
        )
        .await;
    assert_eq!(
        (resp.command_id, resp.status),
        (SUBMIT_SM_RESP, ESME_ROK),
        "{resp:?}"
    );
    resp.message_id()
}

/// The fields of a receipt's short_message.
#[derive(Debug)]
struct ReceiptText {
    id: String,
    sub: String,
    dlvrd: String,
    stat: String,
    err: String,
    text: String,
}

fn receipt_text(deliver: &DeliverSm) -> ReceiptText {
    let pattern = Regex::new(
        r"^id:(\S+) sub:(\d{3}) dlvrd:(\d{3}) submit date:\d{10} done date:\d{10} stat:([A-Z]{7}) err:(\d{3}) text:(.*)$",
    )
    .unwrap();
    let text = deliver.text();
    let c = pattern
        .captures(&text)
        .unwrap_or_else(|| panic!("not a receipt text: {deliver:?}"));
    ReceiptText {
        id: c[1].to_string(),
        sub: c[2].to_string(),
        dlvrd: c[3].to_string(),
        stat: c[4].to_string(),
        err: c[5].to_string(),
        text: c[6].to_string(),
    }
}

/// What a receipt must say about message `id`, sent from the submit_sm helper's source to
/// `destination` with text starting with `text`.
struct Expected<'a> {
    id: &'a str,
    destination: &'a str,
    stat: &'a str,
    message_state: u8,
    /// The GSM code of a failure; `None` for DELIVRD and ENROUTE.
    error: Option<u16>,
    text: &'a str,
}

#[track_caller]
fn assert_receipt(deliver: &DeliverSm, expected: &Expected<'_>) {
    let context = format!("{deliver:?}");
    assert_eq!(deliver.esm_class, 0x04, "{context}");
    assert_eq!(deliver.data_coding, 0, "{context}");
    assert_eq!(deliver.service_type, "", "{context}");
    // The receipt travels back: the submit's destination is its source.
    assert_eq!(
        (
            deliver.source_ton,
            deliver.source_npi,
            deliver.source_addr.as_str()
        ),
        (1, 1, expected.destination),
        "{context}"
    );
    assert_eq!(
        (
            deliver.dest_ton,
            deliver.dest_npi,
            deliver.dest_addr.as_str()
        ),
        (1, 1, ESME_ADDR),
        "{context}"
    );
    assert_eq!(
        (
            deliver.protocol_id,
            deliver.priority_flag,
            deliver.schedule_delivery_time.as_str(),
            deliver.validity_period.as_str(),
            deliver.registered_delivery,
            deliver.replace_if_present,
            deliver.sm_default_msg_id,
        ),
        (0, 0, "", "", 0, 0, 0),
        "{context}"
    );
    let text = receipt_text(deliver);
    assert_eq!(text.id, expected.id, "{context}");
    assert_eq!(text.sub, "001", "{context}");
    let dlvrd = if expected.stat == "DELIVRD" {
        "001"
    } else {
        "000"
    };
    assert_eq!(text.dlvrd, dlvrd, "{context}");
    assert_eq!(text.stat, expected.stat, "{context}");
    assert_eq!(
        text.err,
        format!("{:03}", expected.error.unwrap_or(0)),
        "{context}"
    );
    let quoted: String = expected.text.chars().take(20).collect();
    assert_eq!(text.text, quoted, "{context}");

    let mut id = expected.id.as_bytes().to_vec();
    id.push(0);
    assert_eq!(
        deliver.tlv(tag::RECEIPTED_MESSAGE_ID).map(|v| &v[..]),
        Some(&id[..]),
        "{context}"
    );
    assert_eq!(
        deliver.tlv(tag::MESSAGE_STATE).map(|v| &v[..]),
        Some(&[expected.message_state][..]),
        "{context}"
    );
    let network_error = expected.error.map(|code| {
        let [hi, lo] = code.to_be_bytes();
        vec![0x03, hi, lo]
    });
    assert_eq!(
        deliver.tlv(tag::NETWORK_ERROR_CODE).map(|v| v.to_vec()),
        network_error,
        "{context}"
    );
}

fn delivered<'a>(id: &'a str, text: &'a str) -> Expected<'a> {
    Expected {
        id,
        destination: PHONE,
        stat: "DELIVRD",
        message_state: 2,
        error: None,
        text,
    }
}

/// Nothing is left to send: the queue is empty and no further deliver_sm comes.
async fn assert_all_delivered(h: &Harness, esme: &mut Client) {
    h.wait_for_queued(DEMO_USER, 0, WAIT).await;
    esme.expect_no_deliver_sm(QUIET).await;
}

#[tokio::test]
async fn a_delivered_message_gets_one_receipt_with_its_id() {
    // Signed, as a phone with a signing key sends them: the happy path includes the check.
    let h = setup().signing_key(KEY).start().await;
    let mut esme = receiver(&h, BindKind::Transceiver).await;
    let text = "Receipt for this one, please";
    let id = submit(&mut esme, PHONE, 1, text).await;

    let receipt = esme.receive().await;
    assert_receipt(&receipt, &delivered(&id, text));
    h.wait_for_webhook_call("sms:delivered", &id, 200, WAIT)
        .await;
    assert_all_delivered(&h, &mut esme).await;
}

#[tokio::test]
async fn a_failed_message_gets_undeliv_with_the_network_error_code() {
    let h = setup()
        .rule(r"^\+4917000", Outcome::Fail("RESULT_ERROR_NO_SERVICE"))
        .start()
        .await;
    let mut esme = receiver(&h, BindKind::Transceiver).await;
    let text = "This one will fail";
    let id = submit(&mut esme, FAILING_PHONE, 1, text).await;

    let receipt = esme.receive().await;
    assert_receipt(
        &receipt,
        &Expected {
            id: &id,
            destination: FAILING_PHONE,
            stat: "UNDELIV",
            message_state: 5,
            error: Some(4),
            text,
        },
    );
    h.wait_for_webhook_call("sms:failed", &id, 200, WAIT).await;
    assert_all_delivered(&h, &mut esme).await;
}

#[tokio::test]
async fn failure_only_receipts_skip_the_delivered_message() {
    let h = setup()
        .rule(r"^\+4917000", Outcome::Fail("RESULT_ERROR_NO_SERVICE"))
        .start()
        .await;
    let mut esme = receiver(&h, BindKind::Transceiver).await;
    let ok = submit(&mut esme, PHONE, 2, "Delivered, no receipt").await;
    let unwanted = submit(&mut esme, FAILING_PHONE, 0, "Failed, none asked").await;
    let failed = submit(&mut esme, FAILING_PHONE, 2, "Failed, receipt").await;

    // The failing message shows the receiver works; the others must not show up.
    let receipt = esme.receive().await;
    assert_eq!(receipt_text(&receipt).id, failed, "{receipt:?}");
    assert_eq!(receipt_text(&receipt).stat, "UNDELIV", "{receipt:?}");
    // Once the server has answered an event, any receipt for it would be queued already.
    h.wait_for_webhook_call("sms:delivered", &ok, 200, WAIT)
        .await;
    h.wait_for_webhook_call("sms:failed", &unwanted, 200, WAIT)
        .await;
    assert_all_delivered(&h, &mut esme).await;
    let metrics = h.metrics().await;
    assert!(
        counter(&metrics, r#"smpp_webhooks_total{outcome="ignored"}"#) >= 1,
        "{metrics}"
    );
}

#[tokio::test]
async fn intermediate_notification_comes_before_the_final_receipt() {
    // Spaced-out steps keep sms:sent and sms:delivered from racing each other to the server.
    let h = setup().step_delay("1s").start().await;
    let mut esme = receiver(&h, BindKind::Transceiver).await;
    let text = "Tell me about progress";
    let id = submit(&mut esme, PHONE, 0x11, text).await;

    let enroute = esme.receive().await;
    assert_receipt(
        &enroute,
        &Expected {
            stat: "ENROUTE",
            message_state: 1,
            ..delivered(&id, text)
        },
    );
    let done = esme.receive().await;
    assert_receipt(&done, &delivered(&id, text));
    h.wait_for_webhook_call("sms:delivered", &id, 200, WAIT)
        .await;
    assert_all_delivered(&h, &mut esme).await;
}

const PARTS: [&str; 3] = [
    "This is the first part, ",
    "then comes the second part, ",
    "and finally the third part.",
];

/// Submits the three parts (UDH, 8-bit reference) in `order`, each asking for a receipt, and
/// returns their ids by part number - 1.
async fn submit_parts(esme: &mut Client, order: [u8; 3]) -> Vec<String> {
    submit_parts_asking(esme, order, [1, 1, 1]).await
}

/// Like [`submit_parts`], part n with registered_delivery `asking[n - 1]`.
async fn submit_parts_asking(esme: &mut Client, order: [u8; 3], asking: [u8; 3]) -> Vec<String> {
    let mut ids = vec![String::new(); 3];
    for sequence in order {
        let mut short_message = vec![5, 0x00, 3, 0x5A, 3, sequence];
        short_message.extend_from_slice(PARTS[usize::from(sequence) - 1].as_bytes());
        let resp = esme
            .call(
                submit_sm(PHONE)
                    .esm_class(EsmClass::from(0x40u8))
                    .registered_delivery(RegisteredDelivery::from(
                        asking[usize::from(sequence) - 1],
                    ))
                    .short_message(octets(&short_message))
                    .build(),
            )
            .await;
        assert_eq!(resp.status, ESME_ROK, "part {sequence}: {resp:?}");
        ids[usize::from(sequence) - 1] = resp.message_id();
    }
    let whole: HashSet<&str> = ids.iter().map(|id| id.split('.').next().unwrap()).collect();
    assert_eq!(whole.len(), 1, "parts of one message: {ids:?}");
    for (n, id) in ids.iter().enumerate() {
        assert!(id.ends_with(&format!(".{}", n + 1)), "{ids:?}");
    }
    ids
}

#[tokio::test]
async fn each_part_of_a_long_message_gets_its_receipt() {
    let h = setup().start().await;
    let mut esme = receiver(&h, BindKind::Transceiver).await;
    let ids = submit_parts(&mut esme, [2, 3, 1]).await;

    let mut receipted = Vec::new();
    for _ in 0..3 {
        let receipt = esme.receive().await;
        let id = receipt_text(&receipt).id;
        assert_receipt(&receipt, &delivered(&id, &PARTS.concat()));
        receipted.push(id);
    }
    receipted.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(receipted, expected);
    assert_all_delivered(&h, &mut esme).await;
}

#[tokio::test]
async fn part_receipts_last_sends_one_receipt_for_the_last_part() {
    let h = setup().env("DELIVERY__PART_RECEIPTS", "last").start().await;
    let mut esme = receiver(&h, BindKind::Transceiver).await;
    let ids = submit_parts(&mut esme, [2, 3, 1]).await;

    let receipt = esme.receive().await;
    assert_receipt(&receipt, &delivered(&ids[2], &PARTS.concat()));
    let messages = h.sim_messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let gateway_id = messages[0]["id"].as_str().unwrap();
    h.wait_for_webhook_call("sms:delivered", gateway_id, 200, WAIT)
        .await;
    assert_all_delivered(&h, &mut esme).await;
}

/// Kannel asks for a receipt on the first part only, and can match a receipt only to the id it
/// got for that part: it gets exactly that one, with either `part_receipts`.
#[tokio::test]
async fn a_long_message_asking_on_its_first_part_only_gets_one_receipt_for_that_part() {
    for part_receipts in ["each", "last"] {
        let h = setup()
            .env("DELIVERY__PART_RECEIPTS", part_receipts)
            .start()
            .await;
        let mut esme = receiver(&h, BindKind::Transceiver).await;
        let ids = submit_parts_asking(&mut esme, [2, 1, 3], [1, 0, 0]).await;

        let receipt = esme.receive().await;
        assert_receipt(&receipt, &delivered(&ids[0], &PARTS.concat()));
        let messages = h.sim_messages().await;
        assert_eq!(messages.len(), 1, "{messages:#?}");
        assert_eq!(messages[0]["request"]["withDeliveryReport"], true);
        let gateway_id = messages[0]["id"].as_str().unwrap();
        h.wait_for_webhook_call("sms:delivered", gateway_id, 200, WAIT)
            .await;
        assert_all_delivered(&h, &mut esme).await;
    }
}

/// An incoming SMS as the demo account's phone reports it; returns the deliver_sm that came.
async fn incoming(h: &Harness, esme: &mut Client, content: Value) -> DeliverSm {
    let mut sms = json!({ "from": MO_SENDER, "to": MO_RECIPIENT });
    for (key, value) in content.as_object().unwrap() {
        sms[key] = value.clone();
    }
    let answer = h.inject_mo(sms).await;
    assert_eq!(answer["webhooks"], 1, "{answer}");
    esme.receive().await
}

#[track_caller]
fn assert_mo_addresses(deliver: &DeliverSm) {
    assert_eq!(
        (
            deliver.source_ton,
            deliver.source_npi,
            deliver.source_addr.as_str()
        ),
        (1, 1, "4915112345678"),
        "{deliver:?}"
    );
    assert_eq!(
        (
            deliver.dest_ton,
            deliver.dest_npi,
            deliver.dest_addr.as_str()
        ),
        (1, 1, "4930999999"),
        "{deliver:?}"
    );
    assert_eq!(deliver.registered_delivery, 0, "{deliver:?}");
}

/// The event names no recipient: destination_addr is the number configured for the SIM the SMS
/// came in on, else `delivery.mo_destination`; never empty when either is set.
#[tokio::test]
async fn an_incoming_sms_without_the_phones_number_goes_to_the_sims_configured_number() {
    let h = setup()
        .env("DELIVERY__SIM_NUMBERS__2", "+4930222222")
        .env("DELIVERY__MO_DESTINATION", "+4930000000")
        .start()
        .await;
    let mut esme = receiver(&h, BindKind::Receiver).await;
    for (sim, number) in [(2, "4930222222"), (1, "4930000000")] {
        let answer = h
            .inject_mo(json!({ "from": MO_SENDER, "text": "No recipient", "simNumber": sim }))
            .await;
        assert_eq!(answer["webhooks"], 1, "{answer}");
        let deliver = esme.receive().await;
        assert_eq!(
            (deliver.dest_ton, deliver.dest_addr.as_str()),
            (1, number),
            "SIM {sim}: {deliver:?}"
        );
    }
    assert_all_delivered(&h, &mut esme).await;
}

#[tokio::test]
async fn incoming_gsm_text_arrives_in_the_default_alphabet() {
    let h = setup().start().await;
    let mut esme = receiver(&h, BindKind::Receiver).await;
    let deliver = incoming(&h, &mut esme, json!({ "text": "Hi @ {x} 5€ ü!" })).await;
    assert_mo_addresses(&deliver);
    assert_eq!(
        (deliver.esm_class, deliver.data_coding),
        (0x00, 0),
        "{deliver:?}"
    );
    // Unpacked septets: '@' is 0x00, braces and the euro sign are escapes, 'ü' is 0x7E.
    let septets = [
        0x48, 0x69, 0x20, 0x00, 0x20, 0x1B, 0x28, 0x78, 0x1B, 0x29, 0x20, 0x35, 0x1B, 0x65, 0x20,
        0x7E, 0x21,
    ];
    assert_eq!(&deliver.short_message[..], &septets[..], "{deliver:?}");
    assert!(deliver.tlvs.is_empty(), "{deliver:?}");
    assert_all_delivered(&h, &mut esme).await;
}

#[tokio::test]
async fn incoming_unicode_text_arrives_as_ucs2() {
    let h = setup().start().await;
    let mut esme = receiver(&h, BindKind::Receiver).await;
    let text = "Привет, мир 😀";
    let deliver = incoming(&h, &mut esme, json!({ "text": text })).await;
    assert_mo_addresses(&deliver);
    assert_eq!(
        (deliver.esm_class, deliver.data_coding),
        (0x00, 8),
        "{deliver:?}"
    );
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    assert_eq!(&deliver.short_message[..], &utf16[..], "{deliver:?}");
    assert_all_delivered(&h, &mut esme).await;
}

fn long_text() -> String {
    (0..200)
        .map(|i| char::from(b"abcdefghijklmnopqrstuvwxyz 0123456789.,"[i % 39]))
        .collect()
}

#[tokio::test]
async fn incoming_long_text_arrives_as_udh_parts() {
    let h = setup().start().await;
    let mut esme = receiver(&h, BindKind::Receiver).await;
    let text = long_text();
    let first = incoming(&h, &mut esme, json!({ "text": text })).await;
    let second = esme.receive().await;

    let mut joined = Vec::new();
    let mut references = HashSet::new();
    for (n, part) in [&first, &second].into_iter().enumerate() {
        assert_mo_addresses(part);
        assert_eq!((part.esm_class, part.data_coding), (0x40, 0), "{part:?}");
        let header = &part.short_message[..6];
        assert_eq!(
            [header[0], header[1], header[2], header[4], header[5]],
            [5, 0x00, 3, 2, u8::try_from(n + 1).unwrap()],
            "{part:?}"
        );
        references.insert(header[3]);
        joined.extend_from_slice(&part.short_message[6..]);
    }
    assert_eq!(
        references.len(),
        1,
        "parts of one message: {first:?} {second:?}"
    );
    assert_eq!(first.short_message.len() - 6, 153, "{first:?}");
    assert_eq!(joined, text.as_bytes());
    assert_all_delivered(&h, &mut esme).await;
}

#[tokio::test]
async fn incoming_long_text_arrives_whole_in_message_payload() {
    let h = setup()
        .env("DELIVERY__LONG_MESSAGES", "payload")
        .start()
        .await;
    let mut esme = receiver(&h, BindKind::Receiver).await;
    let text = long_text();
    let deliver = incoming(&h, &mut esme, json!({ "text": text })).await;
    assert_mo_addresses(&deliver);
    assert_eq!(
        (deliver.esm_class, deliver.data_coding),
        (0x00, 0),
        "{deliver:?}"
    );
    assert!(deliver.short_message.is_empty(), "{deliver:?}");
    assert_eq!(
        deliver.tlv(tag::MESSAGE_PAYLOAD).map(|v| &v[..]),
        Some(text.as_bytes()),
        "{deliver:?}"
    );
    assert_all_delivered(&h, &mut esme).await;
}

#[tokio::test]
async fn incoming_binary_arrives_as_8bit_data_with_a_port_header() {
    let h = setup().start().await;
    let mut esme = receiver(&h, BindKind::Receiver).await;
    let data = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF];
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let deliver = incoming(&h, &mut esme, json!({ "data": encoded })).await;
    assert_mo_addresses(&deliver);
    assert_eq!(
        (deliver.esm_class, deliver.data_coding),
        (0x40, 4),
        "{deliver:?}"
    );
    // 16-bit application ports: destination 53739 (0xD1EB), source 0.
    let mut expected = vec![6, 0x05, 4, 0xD1, 0xEB, 0, 0];
    expected.extend_from_slice(&data);
    assert_eq!(&deliver.short_message[..], &expected[..], "{deliver:?}");
    assert_all_delivered(&h, &mut esme).await;
}

/// A column of the account's line in `smsgate-smpp queue stats`, run with the server's
/// configuration, with the whole output.
fn queue_stats_column(h: &Harness, account: &str, column: QueueColumn) -> (String, Option<u64>) {
    let mut cmd = command();
    cmd.args(["queue", "stats"]).envs(h.server_env());
    let (status, stdout, stderr) = run_to_exit(cmd, WAIT);
    assert!(
        status.success(),
        "queue stats: {status}\n{stdout}\n{stderr}"
    );
    let value = stdout.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        (words.first() == Some(&account)).then(|| {
            let word = match column {
                QueueColumn::Items => words.get(1),
                QueueColumn::DeadLetters => words.last(),
            };
            word.and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no {column:?} count in {line:?}"))
        })
    });
    (stdout, value)
}

#[derive(Clone, Copy, Debug)]
enum QueueColumn {
    Items,
    DeadLetters,
}

/// A receiver binds so the webhooks get registered, then leaves; the account's receipt for a
/// new message is then taken (200) with nobody to send it to. Returns its message id.
async fn receipt_waiting_without_receiver(h: &Harness, text: &str) -> String {
    let mut rx = receiver(h, BindKind::Receiver).await;
    rx.unbind().await;
    drop(rx);
    let mut tx = h.bound(BindKind::Transmitter).await;
    let id = submit(&mut tx, PHONE, 1, text).await;
    h.wait_for_webhook_call("sms:delivered", &id, 200, WAIT)
        .await;
    // The 200 came after the event was stored, so it is counted already.
    assert_eq!(h.queued_items(DEMO_USER).await, 1, "{}", h.queue().await);
    id
}

#[tokio::test]
async fn a_receipt_without_receiver_waits_in_the_queue_until_one_binds() {
    let h = setup().start().await;
    let text = "Nobody is listening yet";
    let id = receipt_waiting_without_receiver(&h, text).await;

    // The server holds the queue file, so the command asks the server.
    let (stdout, items) = queue_stats_column(&h, DEMO_USER, QueueColumn::Items);
    assert_eq!(items, Some(1), "{stdout}");

    let mut rx = h.bound(BindKind::Receiver).await;
    let receipt = rx.receive().await;
    assert_receipt(&receipt, &delivered(&id, text));
    assert_all_delivered(&h, &mut rx).await;
}

#[tokio::test]
async fn a_receipt_taken_before_a_sigkill_is_delivered_after_the_restart() {
    let mut h = setup().start().await;
    let text = "Survives a crash";
    let id = receipt_waiting_without_receiver(&h, text).await;

    h.kill_server();
    // Nobody holds the file now: the command reads it directly.
    let (stdout, items) = queue_stats_column(&h, DEMO_USER, QueueColumn::Items);
    assert_eq!(items, Some(1), "{stdout}");

    h.restart_server().await;
    let mut rx = h.bound(BindKind::Receiver).await;
    let receipt = rx.receive().await;
    assert_receipt(&receipt, &delivered(&id, text));
    assert_all_delivered(&h, &mut rx).await;
}

/// A hand-made sms:delivered about `message_id`, as the phone would post it.
fn delivered_event(event_id: &str, message_id: &str) -> Vec<u8> {
    let body = json!({
        "deviceId": "e2e-device",
        "event": "sms:delivered",
        "id": event_id,
        "payload": {
            "messageId": message_id,
            "phoneNumber": format!("+{PHONE}"),
            "recipient": format!("+{PHONE}"),
            "sender": null,
            "simNumber": 1,
            "deliveredAt": Utc::now().to_rfc3339(),
        },
        "webhookId": "e2e-webhook",
    });
    serde_json::to_vec(&body).unwrap()
}

fn sign(key: &str, body: &[u8], timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    mac.update(timestamp.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// X-Signature and X-Timestamp for `body` signed with `key` at `timestamp`.
fn signed_at(key: &str, body: &[u8], timestamp: i64) -> Vec<(&'static str, String)> {
    let timestamp = timestamp.to_string();
    vec![
        ("X-Signature", sign(key, body, &timestamp)),
        ("X-Timestamp", timestamp),
    ]
}

fn signed(key: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    signed_at(key, body, Utc::now().timestamp())
}

/// POSTs `body` to `url`; returns the status and the JSON answer.
async fn post_webhook(
    h: &Harness,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> (u16, Value) {
    let mut request = h
        .http()
        .post(url)
        .header("Content-Type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let resp = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("POST {url} answered {status} {text:?}: {e}"));
    (status, value)
}

fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

/// A signed setup where the simulator stays silent (its steps take an hour), so every event
/// the server sees is one the test posted. Returns the harness, a transceiver, the webhook URL
/// and a message that asked for a receipt.
async fn hand_made_events() -> (Harness, Client, String, String) {
    let h = setup().signing_key(KEY).step_delay("1h").start().await;
    let mut esme = h.bound(BindKind::Transceiver).await;
    let url = h.wait_for_registrations(WAIT).await;
    let id = submit(&mut esme, PHONE, 1, "Hand-made events").await;
    (h, esme, url, id)
}

#[tokio::test]
async fn forged_signatures_and_stale_timestamps_are_refused_and_nothing_is_delivered() {
    let (h, mut esme, url, id) = hand_made_events().await;
    let body = delivered_event("evt-forged", &id);
    let now = Utc::now().timestamp();
    let refused = [
        ("another key", signed("not-the-key", &body)),
        ("a stale timestamp", signed_at(KEY, &body, now - 600)),
        ("a future timestamp", signed_at(KEY, &body, now + 600)),
        ("no signature", Vec::new()),
        (
            "the body changed after signing",
            signed(KEY, &delivered_event("evt-other", &id)),
        ),
    ];
    for (what, headers) in &refused {
        let (status, answer) = post_webhook(&h, &url, body.clone(), headers).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {answer}"
        );
    }
    assert_eq!(h.queued_items(DEMO_USER).await, 0, "{}", h.queue().await);
    esme.expect_no_deliver_sm(QUIET).await;
    let metrics = h.metrics().await;
    assert_eq!(
        counter(&metrics, r#"smpp_webhooks_total{outcome="bad_signature"}"#),
        refused.len() as u64,
        "{metrics}"
    );

    // The same event properly signed is taken: the refusals were about the signature alone.
    let (status, answer) = post_webhook(&h, &url, body.clone(), &signed(KEY, &body)).await;
    assert_eq!(
        (status, &answer),
        (200, &json!({"status": "queued", "items": 1}))
    );
    let receipt = esme.receive().await;
    assert_receipt(&receipt, &delivered(&id, "Hand-made events"));
    assert_all_delivered(&h, &mut esme).await;
}

#[tokio::test]
async fn the_same_event_twice_is_delivered_once() {
    let (h, mut esme, url, id) = hand_made_events().await;
    let body = delivered_event("evt-twice", &id);
    let (status, answer) = post_webhook(&h, &url, body.clone(), &signed(KEY, &body)).await;
    assert_eq!(
        (status, &answer),
        (200, &json!({"status": "queued", "items": 1}))
    );
    // The phone's retry of an event it did not see answered.
    let (status, answer) = post_webhook(&h, &url, body.clone(), &signed(KEY, &body)).await;
    assert_eq!((status, &answer), (200, &json!({"status": "duplicate"})));
    // A second report of the same outcome under a new event id, as a phone sends one per part.
    let again = delivered_event("evt-second-report", &id);
    let (status, answer) = post_webhook(&h, &url, again.clone(), &signed(KEY, &again)).await;
    assert_eq!((status, &answer), (200, &json!({"status": "duplicate"})));

    let receipt = esme.receive().await;
    assert_receipt(&receipt, &delivered(&id, "Hand-made events"));
    assert_all_delivered(&h, &mut esme).await;
}

#[tokio::test]
async fn malformed_bodies_and_unknown_tokens_are_refused_with_reasons() {
    let (h, mut esme, url, id) = hand_made_events().await;
    let cases: [(&[u8], &str); 3] = [
        (b"{not json", "body is not valid JSON"),
        (
            br#"{"id":"evt-1","event":"sms:delivered","deviceId":"d","payload":{"messageId":"m"}}"#,
            "payload.deliveredAt is missing",
        ),
        (
            br#"{"event":"sms:delivered","deviceId":"d","payload":{}}"#,
            "id is missing",
        ),
    ];
    for (body, reason) in cases {
        let (status, answer) = post_webhook(&h, &url, body.to_vec(), &signed(KEY, body)).await;
        let shown = String::from_utf8_lossy(body);
        assert_eq!(status, 400, "{shown}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{shown}: {answer}");
    }

    let token = url.rsplit('/').next().unwrap();
    assert_eq!(token.len(), 32, "{url}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{url}");
    let unknown = url.replace(token, &"0".repeat(32));
    assert_ne!(unknown, url);
    let body = delivered_event("evt-unknown", &id);
    let (status, answer) = post_webhook(&h, &unknown, body.clone(), &signed(KEY, &body)).await;
    assert_eq!(status, 404, "{answer}");

    assert_eq!(h.queued_items(DEMO_USER).await, 0, "{}", h.queue().await);
    esme.expect_no_deliver_sm(QUIET).await;
    let metrics = h.metrics().await;
    assert_eq!(
        counter(&metrics, r#"smpp_webhooks_total{outcome="malformed"}"#),
        3,
        "{metrics}"
    );
    assert_eq!(
        counter(&metrics, r#"smpp_webhooks_total{outcome="unknown_token"}"#),
        1,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_deliver_sm_refused_by_the_esme_comes_again_until_accepted() {
    let h = setup().start().await;
    let mut esme = receiver(&h, BindKind::Transceiver).await;
    let text = "Try again later";
    let id = submit(&mut esme, PHONE, 1, text).await;

    let first = esme.expect_deliver_sm().await;
    assert_receipt(&first, &delivered(&id, text));
    esme.answer_deliver_sm(&first, ESME_RSYSERR).await;
    let second = esme.expect_deliver_sm().await;
    assert_eq!(second.content(), first.content());
    assert_ne!(
        second.sequence, first.sequence,
        "a new PDU needs a new sequence number"
    );
    esme.answer_deliver_sm(&second, ESME_ROK).await;
    assert_all_delivered(&h, &mut esme).await;
}

#[tokio::test]
async fn an_unanswered_deliver_sm_comes_again_after_the_response_timeout() {
    let h = setup().env("SMPP__RESPONSE_TIMEOUT", "1s").start().await;
    let mut esme = receiver(&h, BindKind::Transceiver).await;
    let text = "Are you there?";
    let id = submit(&mut esme, PHONE, 1, text).await;

    let first = esme.expect_deliver_sm().await;
    assert_receipt(&first, &delivered(&id, text));
    let second = esme.expect_deliver_sm().await;
    assert_eq!(second.content(), first.content());
    esme.answer_deliver_sm(&second, ESME_ROK).await;
    h.wait_for_queued(DEMO_USER, 0, WAIT).await;
    // The late answer to the first one changes nothing.
    esme.answer_deliver_sm(&first, ESME_ROK).await;
    esme.expect_no_deliver_sm(QUIET).await;
    esme.assert_alive().await;
}

#[tokio::test]
async fn a_throttled_deliver_sm_comes_again_after_the_pause() {
    let h = setup()
        .env("DELIVERY__THROTTLE_PAUSE", "500ms")
        .start()
        .await;
    let mut esme = receiver(&h, BindKind::Transceiver).await;
    let text = "Slow down";
    let id = submit(&mut esme, PHONE, 1, text).await;

    let first = esme.expect_deliver_sm().await;
    assert_receipt(&first, &delivered(&id, text));
    esme.answer_deliver_sm(&first, ESME_RTHROTTLED).await;
    let second = esme.expect_deliver_sm().await;
    assert_eq!(second.content(), first.content());
    esme.answer_deliver_sm(&second, ESME_ROK).await;
    assert_all_delivered(&h, &mut esme).await;
}

/// The account's dead letters as `GET /api/smpp/v1/queue` lists them.
async fn dead_letters(h: &Harness, account: &str) -> u64 {
    let queue = h.queue().await;
    queue["accounts"]
        .as_array()
        .unwrap_or_else(|| panic!("no accounts array in {queue}"))
        .iter()
        .find(|a| a["account"] == account)
        .map_or(0, |a| {
            a["dead_letters"]
                .as_u64()
                .unwrap_or_else(|| panic!("no dead letter count in {queue}"))
        })
}

#[tokio::test]
async fn a_deliver_sm_refused_for_good_goes_to_the_dead_letters_after_dead_letter_after_tries() {
    let mut h = setup()
        .env("DELIVERY__DEAD_LETTER_AFTER", "2")
        .start()
        .await;
    let mut rx = receiver(&h, BindKind::Receiver).await;
    // No "to", and no delivery.mo_destination: the deliver_sm has no destination_addr.
    let injected = h
        .inject_mo(json!({ "from": MO_SENDER, "text": "Nobody's number" }))
        .await;
    let event = injected["id"].as_str().expect("event id").to_string();

    let first = rx.expect_deliver_sm().await;
    assert_eq!(first.dest_addr, "", "{first:?}");
    rx.answer_deliver_sm(&first, ESME_RINVDSTADR).await;
    let second = rx.expect_deliver_sm().await;
    assert_eq!(second.content(), first.content());
    rx.answer_deliver_sm(&second, ESME_RINVDSTADR).await;

    // Twice, then set aside: out of the live queue and never sent again.
    let deadline = Instant::now() + WAIT;
    while dead_letters(&h, DEMO_USER).await < 1 {
        assert!(
            Instant::now() < deadline,
            "no dead letter: {}",
            h.queue().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(h.queued_items(DEMO_USER).await, 0, "{}", h.queue().await);
    rx.expect_no_deliver_sm(QUIET).await;

    let log = h.server_log();
    let line = log
        .lines()
        .find(|line| line.contains("moved to the dead letters"))
        .unwrap_or_else(|| panic!("no dead-letter log line in\n{log}"));
    for part in [
        DEMO_USER,
        event.as_str(),
        "ESME_RINVDSTADR",
        "destination_addr is empty",
        "delivery.mo_destination",
    ] {
        assert!(line.contains(part), "{part:?} missing in {line}");
    }
    let metrics = h.metrics().await;
    assert_eq!(
        counter(
            &metrics,
            r#"smpp_deliveries_dead_lettered_total{status="ESME_RINVDSTADR"}"#
        ),
        1,
        "{metrics}"
    );
    assert_eq!(
        counter(&metrics, "smpp_delivery_dead_letters"),
        1,
        "{metrics}"
    );

    // Asked of the running server, then read from the file once nobody holds it.
    let (stdout, dead) = queue_stats_column(&h, DEMO_USER, QueueColumn::DeadLetters);
    assert_eq!(dead, Some(1), "{stdout}");
    h.kill_server();
    let (stdout, dead) = queue_stats_column(&h, DEMO_USER, QueueColumn::DeadLetters);
    assert_eq!(dead, Some(1), "{stdout}");
}

#[tokio::test]
async fn temporary_refusals_are_retried_past_dead_letter_after() {
    let h = setup()
        .env("DELIVERY__DEAD_LETTER_AFTER", "1")
        .env("DELIVERY__THROTTLE_PAUSE", "100ms")
        .start()
        .await;
    let mut rx = receiver(&h, BindKind::Receiver).await;
    h.inject_mo(json!({ "from": MO_SENDER, "to": MO_RECIPIENT, "text": "Busy" }))
        .await;

    let refusals = [
        ESME_RTHROTTLED,
        ESME_RTHROTTLED,
        ESME_RTHROTTLED,
        ESME_RX_T_APPN,
        ESME_RTHROTTLED,
        ESME_RSYSERR,
    ];
    let first = rx.expect_deliver_sm().await;
    let mut deliver = first.clone();
    for status in refusals {
        assert_eq!(deliver.content(), first.content());
        rx.answer_deliver_sm(&deliver, status).await;
        deliver = rx.expect_deliver_sm().await;
    }
    rx.answer_deliver_sm(&deliver, ESME_ROK).await;
    assert_all_delivered(&h, &mut rx).await;
    assert_eq!(dead_letters(&h, DEMO_USER).await, 0, "{}", h.queue().await);
}

#[tokio::test]
async fn two_receivers_share_the_deliveries_round_robin() {
    let h = setup().start().await;
    let mut sessions = [
        h.bound(BindKind::Receiver).await,
        h.bound(BindKind::Receiver).await,
    ];
    h.wait_for_registrations(WAIT).await;
    let texts: Vec<String> = (1..=4).map(|n| format!("round robin {n}")).collect();
    for text in &texts {
        h.inject_mo(json!({ "from": MO_SENDER, "to": MO_RECIPIENT, "text": text }))
            .await;
    }

    let mut got: [Vec<String>; 2] = Default::default();
    let deadline = Instant::now() + WAIT;
    while got.iter().map(Vec::len).sum::<usize>() < texts.len() {
        assert!(
            Instant::now() < deadline,
            "got only {got:?} within {WAIT:?}"
        );
        for (session, received) in sessions.iter_mut().zip(got.iter_mut()) {
            if let Some(deliver) = session.next_deliver_sm(Duration::from_millis(100)).await {
                session.answer_deliver_sm(&deliver, ESME_ROK).await;
                received.push(deliver.text());
            }
        }
    }
    assert_eq!(
        got.iter().map(Vec::len).collect::<Vec<_>>(),
        [2, 2],
        "{got:?}"
    );
    let mut all: Vec<String> = got.concat();
    all.sort();
    assert_eq!(all, texts);
    h.wait_for_queued(DEMO_USER, 0, WAIT).await;
    for session in &mut sessions {
        session.expect_no_deliver_sm(QUIET).await;
    }
}

/// The simulator's calls about `message_id` for `event`, oldest first, as (attempt, status).
async fn webhook_attempts(h: &Harness, event: &str, message_id: &str) -> Vec<(u64, Option<u64>)> {
    h.webhook_deliveries()
        .await
        .iter()
        .filter(|c| c["event"] == event && c["messageId"] == message_id)
        .map(|c| (c["attempt"].as_u64().unwrap_or(0), c["status"].as_u64()))
        .collect()
}

#[tokio::test]
async fn a_full_queue_answers_503_and_the_phone_retry_is_delivered_later() {
    // Room for one item: a second event waits on the phone, not on the server.
    let h = setup().env("DELIVERY__MAX_ITEMS", "1").start().await;
    // The webhooks outlive the session for the grace period, so events keep coming.
    let mut rx = receiver(&h, BindKind::Receiver).await;
    rx.unbind().await;
    drop(rx);

    // One after the other, so which of the two finds the room is not left to a race.
    let mo = |text: &str| json!({ "from": MO_SENDER, "to": MO_RECIPIENT, "text": text });
    let first = h.inject_mo(mo("first")).await;
    assert_eq!(first["webhooks"], 1, "{first}");
    let first_id = first["messageId"].as_str().expect("messageId").to_string();
    h.wait_for_webhook_call("sms:received", &first_id, 200, WAIT)
        .await;
    let second = h.inject_mo(mo("second")).await;
    assert_eq!(second["webhooks"], 1, "{second}");
    let second_id = second["messageId"].as_str().expect("messageId").to_string();
    assert_ne!(first_id, second_id);
    h.wait_for_webhook_call("sms:received", &second_id, 503, WAIT)
        .await;
    // The refused event took no room: only the first waits.
    assert_eq!(h.queued_items(DEMO_USER).await, 1, "{}", h.queue().await);
    let metrics = h.metrics().await;
    assert!(
        counter(&metrics, r#"smpp_webhooks_total{outcome="retry_later"}"#) >= 1,
        "{metrics}"
    );

    let mut rx = h.bound(BindKind::Receiver).await;
    let mut texts = Vec::new();
    let deliver = rx.expect_deliver_sm().await;
    assert_mo_addresses(&deliver);
    assert_eq!(deliver.text(), "first", "{deliver:?}");
    rx.answer_deliver_sm(&deliver, ESME_ROK).await;
    texts.push(deliver.text());

    // The phone's back-off (1 s doubling, 5 retries) spans about 31 s from the refusal.
    let deliver = rx
        .next_deliver_sm(Duration::from_secs(45))
        .await
        .unwrap_or_else(|| panic!("the retried event was not delivered: {second_id}"));
    assert_mo_addresses(&deliver);
    assert_eq!(deliver.text(), "second", "{deliver:?}");
    rx.answer_deliver_sm(&deliver, ESME_ROK).await;
    texts.push(deliver.text());

    h.wait_for_webhook_call("sms:received", &second_id, 200, WAIT)
        .await;
    assert_all_delivered(&h, &mut rx).await;
    assert_eq!(texts, ["first", "second"]);

    // The first was taken at once; the second was refused until there was room, then taken
    // once, after which the phone stopped.
    let attempts = webhook_attempts(&h, "sms:received", &first_id).await;
    assert_eq!(attempts, [(1, Some(200))], "{first_id}");
    let attempts = webhook_attempts(&h, "sms:received", &second_id).await;
    let (last, refused) = attempts.split_last().expect("calls for the second SMS");
    assert_eq!(last.1, Some(200), "{attempts:?}");
    assert!(!refused.is_empty(), "{attempts:?}");
    assert!(refused.iter().all(|a| a.1 == Some(503)), "{attempts:?}");
}

#[tokio::test]
async fn receipts_go_to_the_session_that_submitted_the_message_while_it_is_bound() {
    let h = Setup::new().webhooks().step_delay("100ms").start().await;
    let mut submitter = h.bound(BindKind::Transceiver).await;
    let mut other = h.bound(BindKind::Transceiver).await;
    h.wait_for_registrations(WAIT).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(submit_with_receipt(&mut submitter, PHONE).await);
    }
    // Round robin would hand the other session every second one.
    let mut receipted = Vec::new();
    for _ in 0..4 {
        receipted.push(receipted_id(&submitter.receive().await));
    }
    other.expect_no_deliver_sm(QUIET).await;
    receipted.sort();
    ids.sort();
    assert_eq!(receipted, ids);

    // Once the submitting session is gone, its receipts go to any receiver of the account.
    let id = submit_with_receipt(&mut submitter, PHONE).await;
    submitter.unbind().await;
    drop(submitter);
    let receipt = other.receive().await;
    assert_eq!(receipted_id(&receipt), id, "{receipt:?}");
}
