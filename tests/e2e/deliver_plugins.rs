//! The transform-deliver hook on the delivery path: what a plugin makes of a receipt or an
//! incoming SMS is what the ESME receives, and a dropped one is answered to the phone but never
//! sent. The misbehave fixture plays the plugin, declaring transform-deliver alone.

use std::path::Path;
use std::time::Duration;

use regex::Regex;
use rusmpp::values::RegisteredDelivery;
use serde_json::{Value, json};
use smpp_codec::command::SUBMIT_SM_RESP;
use smpp_codec::pdu::tag;
use smpp_codec::status::ESME_ROK;

use crate::client::*;
use crate::support::*;

/// Generous: webhook calls, plugin calls and fsyncs on a loaded two-core machine.
const WAIT: Duration = Duration::from_secs(30);
/// How long "nothing comes" is watched for once the server has answered the event.
const QUIET: Duration = Duration::from_secs(2);

const ESME_ADDR: &str = "4930123456";
const PHONE: &str = "491701234567";

/// The fixture's `append:TEXT` keeps everything after the first colon, the space included.
/// Parentheses and letters are the same octets in the GSM default alphabet as in ASCII, so the
/// deliver_sm's short_message can be compared as text.
const APPEND: &str = "append: (filtered)";
const SUFFIX: &str = " (filtered)";

/// A scratch plugin directory holding the misbehave fixture with `transform_deliver` as its
/// action list. Kept alive for the test: the server would reload an empty set without it.
fn misbehave_dir(transform_deliver: &str) -> PluginDir {
    let plugins = PluginDir::new();
    plugins.install(
        "misbehave",
        &format!(
            "[config]\nhooks = \"transform-deliver\"\ntransform-deliver = {transform_deliver:?}\n"
        ),
    );
    plugins
}

async fn start(plugins: &Path) -> Harness {
    Setup::new()
        .webhooks()
        .env("DELIVERY__RETRY_INITIAL", "200ms")
        .plugins(plugins)
        .start()
        .await
}

/// A bound session whose account's webhooks are in place; returns it with the webhook URL.
async fn receiver(h: &Harness, kind: BindKind) -> (Client, String) {
    let client = h.bound(kind).await;
    let url = h.wait_for_registrations(WAIT).await;
    (client, url)
}

/// Injects an incoming text SMS at the demo account's phone; returns its message id.
async fn inject_text(h: &Harness, text: &str) -> String {
    let answer = h
        .inject_mo(json!({ "from": MO_SENDER, "to": MO_RECIPIENT, "text": text }))
        .await;
    assert_eq!(answer["webhooks"], 1, "{answer}");
    answer["messageId"]
        .as_str()
        .unwrap_or_else(|| panic!("no messageId in {answer}"))
        .to_string()
}

/// Submits `text` to PHONE asking for a receipt on the final outcome; returns the message id.
async fn submit_with_receipt(esme: &mut Client, text: &str) -> String {
    let resp = esme
        .call(
            submit_sm(PHONE)
                .registered_delivery(RegisteredDelivery::from(1u8))
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

fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

const IGNORED: &str = r#"smpp_webhooks_total{outcome="ignored"}"#;

/// Nothing waits in the queue and no deliver_sm comes.
async fn assert_nothing_sent(h: &Harness, esme: &mut Client) {
    h.wait_for_queued(DEMO_USER, 0, WAIT).await;
    esme.expect_no_deliver_sm(QUIET).await;
    assert_eq!(h.queued_items(DEMO_USER).await, 0, "{}", h.queue().await);
}

#[tokio::test]
async fn an_appending_plugin_changes_the_text_of_an_incoming_sms() {
    let plugins = misbehave_dir(APPEND);
    let h = start(plugins.path()).await;
    let (mut esme, _) = receiver(&h, BindKind::Receiver).await;

    inject_text(&h, "Hello").await;
    let deliver = esme.receive().await;
    assert_eq!(
        (deliver.esm_class, deliver.data_coding),
        (0x00, 0),
        "{deliver:?}"
    );
    assert_eq!(deliver.text(), format!("Hello{SUFFIX}"), "{deliver:?}");
    assert!(deliver.tlvs.is_empty(), "{deliver:?}");
    // The plugin changed the content only: the addresses are the event's.
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

    h.wait_for_queued(DEMO_USER, 0, WAIT).await;
    esme.expect_no_deliver_sm(QUIET).await;
}

#[tokio::test]
async fn an_appending_plugin_changes_the_text_of_a_receipt() {
    let plugins = misbehave_dir(APPEND);
    let h = start(plugins.path()).await;
    let (mut esme, _) = receiver(&h, BindKind::Transceiver).await;
    let text = "Receipt for this one, please";
    let id = submit_with_receipt(&mut esme, text).await;

    let receipt = esme.receive().await;
    let context = format!("{receipt:?}");
    assert_eq!(
        (receipt.esm_class, receipt.data_coding),
        (0x04, 0),
        "{context}"
    );
    let body = receipt.text();
    let standard = body
        .strip_suffix(SUFFIX)
        .unwrap_or_else(|| panic!("the receipt text does not end with {SUFFIX:?}: {context}"));
    // What precedes the suffix is the receipt the server would have sent without the plugin.
    let pattern = Regex::new(
        r"^id:(\S+) sub:001 dlvrd:001 submit date:\d{10} done date:\d{10} stat:DELIVRD err:000 text:(.*)$",
    )
    .unwrap();
    let fields = pattern
        .captures(standard)
        .unwrap_or_else(|| panic!("not a receipt text before the suffix: {context}"));
    assert_eq!(&fields[1], id, "{context}");
    let quoted: String = text.chars().take(20).collect();
    assert_eq!(&fields[2], quoted, "{context}");

    // The TLVs and addresses still describe the receipted message.
    let mut receipted = id.as_bytes().to_vec();
    receipted.push(0);
    assert_eq!(
        receipt.tlv(tag::RECEIPTED_MESSAGE_ID).map(|v| &v[..]),
        Some(&receipted[..]),
        "{context}"
    );
    assert_eq!(
        receipt.tlv(tag::MESSAGE_STATE).map(|v| &v[..]),
        Some(&[2u8][..]),
        "{context}"
    );
    assert_eq!(
        (receipt.source_addr.as_str(), receipt.dest_addr.as_str()),
        (PHONE, ESME_ADDR),
        "{context}"
    );

    h.wait_for_webhook_call("sms:delivered", &id, 200, WAIT)
        .await;
    h.wait_for_queued(DEMO_USER, 0, WAIT).await;
    esme.expect_no_deliver_sm(QUIET).await;
}

#[tokio::test]
async fn a_dropping_plugin_stops_an_incoming_sms_and_the_phone_is_answered() {
    let plugins = misbehave_dir("drop");
    let h = start(plugins.path()).await;
    let (mut esme, url) = receiver(&h, BindKind::Receiver).await;

    let message_id = inject_text(&h, "Hello").await;
    // The server has decided about the event once it answered it: a deliver_sm would be
    // queued by now.
    h.wait_for_webhook_call("sms:received", &message_id, 200, WAIT)
        .await;
    assert_nothing_sent(&h, &mut esme).await;
    let metrics = h.metrics().await;
    assert!(counter(&metrics, IGNORED) >= 1, "{metrics}");
    assert_eq!(
        counter(&metrics, r#"smpp_webhooks_total{outcome="queued"}"#),
        0,
        "{metrics}"
    );

    // What the phone is told, seen on a hand-made event posted the same way.
    let resp = h
        .http()
        .post(&url)
        .json(&received_event("evt-dropped", "Hand-made and dropped"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    let answer: Value = resp
        .json()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: body is not JSON: {e}"));
    assert_eq!(
        (status, answer),
        (
            200,
            json!({"status": "ignored", "reason": "dropped by a transform-deliver plugin"})
        )
    );
    assert_nothing_sent(&h, &mut esme).await;
    esme.assert_alive().await;
}

#[tokio::test]
async fn a_dropping_plugin_stops_a_receipt() {
    let plugins = misbehave_dir("drop");
    let h = start(plugins.path()).await;
    let (mut esme, _) = receiver(&h, BindKind::Transceiver).await;
    let id = submit_with_receipt(&mut esme, "No receipt will come").await;

    h.wait_for_webhook_call("sms:delivered", &id, 200, WAIT)
        .await;
    assert_nothing_sent(&h, &mut esme).await;
    let metrics = h.metrics().await;
    assert!(counter(&metrics, IGNORED) >= 1, "{metrics}");
    esme.assert_alive().await;
}
