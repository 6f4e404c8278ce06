//! What a webhook event means for the ESME: the deliver_sm bodies to queue, decided once when
//! the event arrives (receipt wanted or not, which ids, the transform-deliver plugins), so the
//! dispatcher only moves bytes.

use bytes::Bytes;
use chrono::Utc;
use tracing::info;

use super::event::{Event, EventKind};
use super::{Delivery, IncomingUser, PartReceipts};
use crate::auth::{self, Account};
use crate::policy;
use crate::receipt::{self, Content, Receipt, ReceiptState};
use delivery_store::{QueueError, SentLogError, SentRecord};
use smpp_codec::pdu::Address;
use smsgate_plugin_host::{Hook, IncomingRoute, types};

/// The queue items of one event, under the id that makes a repeat of it a duplicate.
pub struct Composed {
    pub dedupe_id: String,
    pub bodies: Vec<Bytes>,
    /// The receiver session these should go to while it is bound (the one that submitted
    /// the message a receipt is about).
    pub prefer: Option<u64>,
}

/// Why an event is not queued.
pub enum Skip {
    /// It needs no deliver_sm; the reason.
    Ignored(&'static str),
    /// An incoming SMS, but no SMPP user of its SMSGate account is known yet: the phone should
    /// come back later.
    NoUserYet,
    /// The store could not say who the users are.
    Store(QueueError),
    /// A route-incoming plugin dropped an incoming SMS; which plugin and why.
    Dropped(String),
}

/// The queue items of an event that came in through the webhooks of SMSGate account
/// `smsgate`, by the SMPP user (account name) whose queue they go to.
pub async fn compose(
    delivery: &Delivery,
    smsgate: &str,
    event: &Event,
) -> Result<Vec<(String, Composed)>, Skip> {
    let state = match event.event {
        EventKind::SmsSent => ReceiptState::Enroute,
        EventKind::SmsDelivered => ReceiptState::Delivered,
        // The phone gives up on a message whose validity ran out with a reason saying so.
        EventKind::SmsFailed
            if event
                .payload
                .reason
                .as_deref()
                .is_some_and(|r| r.to_ascii_lowercase().contains("expired")) =>
        {
            ReceiptState::Expired
        }
        EventKind::SmsFailed => ReceiptState::Undeliverable,
        EventKind::SmsReceived | EventKind::SmsDataReceived => {
            let candidates = delivery
                .incoming_candidates(smsgate)
                .await
                .map_err(Skip::Store)?
                .ok_or(Skip::NoUserYet)?;
            let content = incoming_content(event).map_err(Skip::Ignored)?;
            let users = incoming_users(delivery, event, &content, candidates)?;
            // A user whose plugin drops the SMS does not keep it from the others.
            let mut dropped = "no SMPP user of this SMSGate account takes this SIM or device";
            let composed: Vec<_> = users
                .into_iter()
                .filter_map(|user| {
                    let account = user.account.as_deref();
                    match incoming(delivery, account, &user.name, event, content.clone()) {
                        Ok(composed) => Some((user.name, composed)),
                        Err(why) => {
                            dropped = why;
                            None
                        }
                    }
                })
                .collect();
            return if composed.is_empty() {
                Err(Skip::Ignored(dropped))
            } else {
                Ok(composed)
            };
        }
        EventKind::Other(_) => return Err(Skip::Ignored("this event is not sent to ESMEs")),
    };
    receipts(delivery, smsgate, event, state).await
}

/// A receipt goes to the SMPP user that submitted the message, never to another user of the
/// same SMSGate account.
async fn receipts(
    delivery: &Delivery,
    smsgate: &str,
    event: &Event,
    state: ReceiptState,
) -> Result<Vec<(String, Composed)>, Skip> {
    let message_id = event
        .payload
        .message_id
        .as_deref()
        .ok_or(Skip::Ignored("the event has no message id"))?;
    let record = match delivery.store.sent(message_id).await {
        Ok(Some(record)) => record,
        Ok(None) => return Err(Skip::Ignored("no receipt was requested for this message")),
        // Unreachable now, maybe not when the phone retries.
        Err(SentLogError::Shared(e)) => return Err(Skip::Store(QueueError::Shared(e))),
        Err(e) => {
            tracing::warn!(error = %e, "reading the sent-message record failed");
            return Err(Skip::Ignored("the sent-message record could not be read"));
        }
    };
    let name = record.account.as_str();
    let account = delivery.account_view(name);
    let account = account.as_deref();
    let through_this_account = if super::owner_is_a_user(smsgate) {
        name == smsgate
    } else {
        account.is_none_or(|a| a.smsgate_account() == smsgate)
    };
    if !through_this_account {
        return Err(Skip::Ignored(
            "the message was sent through another SMSGate account",
        ));
    }
    if !receipt::wants(record.registered_delivery, state) {
        return Err(Skip::Ignored(
            "registered_delivery did not ask for this receipt",
        ));
    }
    let ids: Vec<&str> = match (record.part_ids.as_slice(), delivery.config.part_receipts) {
        ([], _) => vec![message_id],
        (parts, PartReceipts::Each) => parts.iter().map(String::as_str).collect(),
        ([.., last], PartReceipts::Last) => vec![last.as_str()],
    };
    let destination = recipient_address(&record, event.payload.phone_number.as_deref());
    let done = event
        .occurred_at()
        .map_or_else(Utc::now, |at| at.with_timezone(&Utc));
    let error = if state.is_failure() {
        error_code(event.payload.reason.as_deref())
    } else {
        0
    };
    let mut bodies = Vec::with_capacity(ids.len());
    for id in ids {
        let receipt = Receipt {
            message_id: id,
            submit_source: &record.source,
            submit_destination: &destination,
            state,
            submitted: record.submitted_at,
            done,
            error,
            original_text: record.text_prefix.as_deref(),
        };
        if let Some(pdu) = transformed_receipt(delivery, account, name, event, &receipt) {
            bodies.push(pdu);
        }
    }
    if bodies.is_empty() {
        return Err(Skip::Ignored("dropped by a transform-deliver plugin"));
    }
    let composed = Composed {
        // Phones report "delivered" once per part of a long message, each with its own event
        // id; one receipt per recipient and state is what the ESME asked for.
        dedupe_id: format!(
            "{message_id}/{}/{}",
            destination.addr.trim_start_matches('+'),
            state.stat()
        ),
        bodies,
        prefer: record.session,
    };
    Ok(vec![(name.to_owned(), composed)])
}

/// The submitted destination the event is about; a submit_multi had several.
fn recipient_address(record: &SentRecord, phone_number: Option<&str>) -> Address {
    let digits = |s: &str| s.trim_start_matches('+').to_owned();
    phone_number
        .and_then(|number| {
            record
                .destinations
                .iter()
                .find(|d| digits(&d.addr) == digits(number))
                .cloned()
                .or_else(|| Some(receipt::sme_address(number)))
        })
        .or_else(|| record.destinations.first().cloned())
        .unwrap_or_else(|| receipt::sme_address(""))
}

/// SMSGate reports a failure as text. A number in it is taken as the error code; Android's
/// SmsManager result names get their numeric values; anything else is 1, the generic failure.
fn error_code(reason: Option<&str>) -> u16 {
    let Some(reason) = reason else {
        return 1;
    };
    const ANDROID: [(&str, u16); 5] = [
        ("GENERIC_FAILURE", 1),
        ("RADIO_OFF", 2),
        ("NULL_PDU", 3),
        ("NO_SERVICE", 4),
        ("LIMIT_EXCEEDED", 5),
    ];
    let upper = reason.to_ascii_uppercase();
    if let Some((_, code)) = ANDROID.iter().find(|(name, _)| upper.contains(name)) {
        return *code;
    }
    reason
        .split(|c: char| !c.is_ascii_digit())
        .find(|digits| !digits.is_empty())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(1)
}

fn transformed_receipt(
    delivery: &Delivery,
    account: Option<&Account>,
    name: &str,
    event: &Event,
    receipt: &Receipt<'_>,
) -> Option<Bytes> {
    let alphabet = delivery.alphabet;
    if !delivery.plugins.handles(Hook::TransformDeliver) {
        return Some(receipt::build_receipt(receipt, alphabet).encode());
    }
    let deliver = types::Deliver {
        kind: types::DeliverKind::Receipt,
        source: policy::address(receipt.submit_destination),
        destination: policy::address(receipt.submit_source),
        content: types::Content::Text(receipt.text()),
        message_id: Some(receipt.message_id.to_owned()),
        message_state: Some(receipt.state.message_state()),
        error_code: receipt
            .state
            .is_failure()
            .then_some(u32::from(receipt.error)),
        labels: event_labels(event),
    };
    let out = delivery
        .plugins
        .transform_deliver(&view(account, name), deliver)?;
    let text = match out.content {
        types::Content::Text(text) => text,
        // A receipt's body is text; a binary replacement has no meaning here.
        types::Content::Binary(_) => return None,
    };
    // A receipt is one short message; the ESME's parser expects no more.
    let text: String = text.chars().take(160).collect();
    let (source, destination) = (
        policy::from_address(out.source),
        policy::from_address(out.destination),
    );
    let replaced = Receipt {
        submit_source: &destination,
        submit_destination: &source,
        ..*receipt
    };
    Some(receipt::receipt_with_text(&replaced, &text, alphabet).encode())
}

/// The users an incoming SMS goes to: as the route-incoming plugins decide, else those that
/// take its SIM and device.
fn incoming_users(
    delivery: &Delivery,
    event: &Event,
    content: &types::Content,
    candidates: Vec<IncomingUser>,
) -> Result<Vec<IncomingUser>, Skip> {
    let by_sim_and_device = |candidates: Vec<IncomingUser>| {
        candidates
            .into_iter()
            .filter(|user| user.takes(event.payload.sim_number, &event.device_id))
            .collect()
    };
    if !delivery.plugins.handles(Hook::RouteIncoming) {
        return Ok(by_sim_and_device(candidates));
    }
    let views: Vec<types::Account> = candidates
        .iter()
        .map(|user| {
            let mut view = view(user.account.as_deref(), &user.name);
            // A user bound to another instance is known by its limits only.
            if user.account.is_none() {
                view.sim_number = user.sim_number;
                view.device_id = user.device_id.clone();
            }
            view
        })
        .collect();
    match delivery
        .plugins
        .route_incoming(&incoming_sms(delivery, event, content), &views)
    {
        IncomingRoute::Default => Ok(by_sim_and_device(candidates)),
        IncomingRoute::Deliver(names) => {
            let mut candidates = candidates;
            let chosen: Vec<_> = names
                .iter()
                .filter_map(|name| {
                    let at = candidates.iter().position(|user| &user.name == name)?;
                    Some(candidates.swap_remove(at))
                })
                .collect();
            if chosen.is_empty() {
                // The plugin named only users this server does not know yet; the phone sends
                // the event again later, by when they may have bound.
                return Err(Skip::NoUserYet);
            }
            Ok(chosen)
        }
        IncomingRoute::Drop { plugin, reason } => {
            info!(
                event = %event.id,
                %plugin,
                %reason,
                "incoming SMS dropped by a route-incoming plugin"
            );
            Err(Skip::Dropped(format!(
                "dropped by route-incoming plugin {plugin}: {reason}"
            )))
        }
    }
}

/// The incoming SMS as route-incoming plugins see it.
fn incoming_sms(
    delivery: &Delivery,
    event: &Event,
    content: &types::Content,
) -> types::IncomingSms {
    let payload = &event.payload;
    types::IncomingSms {
        event_id: event.id.clone(),
        device_id: event.device_id.clone(),
        sim_number: payload.sim_number,
        sender: payload.sender.clone().unwrap_or_default(),
        recipient: own_number(delivery, event).map(str::to_owned),
        content: content.clone(),
        received_at: payload.received_at.map(|at| at.timestamp_millis()),
    }
}

/// The phone's own number an incoming SMS was sent to. `phoneNumber` of an inbound event is
/// the sender again (a legacy field), so only `recipient` names it, else the configuration.
fn own_number<'a>(delivery: &'a Delivery, event: &'a Event) -> Option<&'a str> {
    event
        .payload
        .recipient
        .as_deref()
        .or(delivery.config.own_number(event.payload.sim_number))
}

/// The text of an sms:received, the data of an sms:data-received.
fn incoming_content(event: &Event) -> Result<types::Content, &'static str> {
    match (&event.payload.message, &event.payload.data) {
        (Some(text), _) if event.event == EventKind::SmsReceived => {
            Ok(types::Content::Text(text.clone()))
        }
        (_, Some(data)) => Ok(types::Content::Binary(types::BinaryContent {
            data: data.clone(),
            port: receipt::SMSGATE_DATA_PORT,
        })),
        _ => Err("the event has no message"),
    }
}

fn incoming(
    delivery: &Delivery,
    account: Option<&Account>,
    name: &str,
    event: &Event,
    content: types::Content,
) -> Result<Composed, &'static str> {
    let payload = &event.payload;
    let source = receipt::sme_address(payload.sender.as_deref().unwrap_or(""));
    let destination = receipt::sme_address(own_number(delivery, event).unwrap_or(""));
    let (source, destination, content) = if delivery.plugins.handles(Hook::TransformDeliver) {
        let deliver = types::Deliver {
            kind: types::DeliverKind::Incoming,
            source: policy::address(&source),
            destination: policy::address(&destination),
            content,
            message_id: payload.message_id.clone(),
            message_state: None,
            error_code: None,
            labels: event_labels(event),
        };
        let out = delivery
            .plugins
            .transform_deliver(&view(account, name), deliver)
            .ok_or("dropped by a transform-deliver plugin")?;
        (
            policy::from_address(out.source),
            policy::from_address(out.destination),
            out.content,
        )
    } else {
        (source, destination, content)
    };
    let content = match &content {
        types::Content::Text(text) => Content::Text(text),
        types::Content::Binary(binary) => Content::Binary(&binary.data),
    };
    let bodies = receipt::build_incoming(
        &source,
        &destination,
        content,
        delivery.alphabet,
        delivery.config.long_messages,
        delivery.next_mo_reference(),
    )
    .iter()
    .map(|pdu| pdu.encode())
    .collect();
    Ok(Composed {
        dedupe_id: event.id.clone(),
        bodies,
        prefer: None,
    })
}

/// What a plugin learns about the event besides the deliver_sm.
fn event_labels(event: &Event) -> Vec<(String, String)> {
    let mut labels = vec![
        ("event".to_owned(), event.event.name().to_owned()),
        ("device-id".to_owned(), event.device_id.clone()),
    ];
    if let Some(sim) = event.payload.sim_number {
        labels.push(("sim-number".to_owned(), sim.to_string()));
    }
    labels
}

/// The account as plugins see it; after a restart, before the account binds again, only its
/// name is known.
fn view(account: Option<&Account>, name: &str) -> types::Account {
    match account {
        Some(account) => auth::account_view(account),
        None => types::Account {
            id: name.to_owned(),
            credentials: types::Credentials::Bearer(String::new()),
            api_base_url: None,
            device_id: None,
            sim_number: None,
            limits: types::AccountLimits {
                max_binds: None,
                messages_per_second: None,
            },
            labels: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn failure_reasons_become_error_codes() {
        assert_eq!(error_code(None), 1);
        assert_eq!(error_code(Some("RESULT_ERROR_NO_SERVICE")), 4);
        assert_eq!(error_code(Some("Radio off")), 1);
        assert_eq!(error_code(Some("RESULT_ERROR_RADIO_OFF")), 2);
        assert_eq!(error_code(Some("SMS failed with error code 34")), 34);
        assert_eq!(error_code(Some("unknown")), 1);
    }

    #[test]
    fn the_receipt_goes_to_the_destination_the_phone_names() {
        let record = SentRecord {
            account: "a".into(),
            source: receipt::sme_address("Brand"),
            destinations: vec![
                receipt::sme_address("+15550001"),
                receipt::sme_address("+15550002"),
            ],
            registered_delivery: 1,
            submitted_at: utc("2026-11-26T10:00:00Z"),
            text_prefix: None,
            part_ids: Vec::new(),
            session: None,
        };
        assert_eq!(
            recipient_address(&record, Some("+15550002")).addr,
            "15550002"
        );
        assert_eq!(recipient_address(&record, None).addr, "15550001");
        assert_eq!(recipient_address(&record, Some("+4912345")).addr, "4912345");
    }
}
