//! The bridge between the server's own messages and the plugin contract's: what a plugin sees of
//! a message, and how its answers change the message and the gateway call. (Binds and accounts
//! cross the same bridge in `auth`.)

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::auth::Account;
use crate::gateway::{Credentials, OutgoingMessage};
use crate::message::{Content, Expiry, Submission};
use smpp_codec::pdu::{Address, Tlv};
use smsgate_plugin_host::types;

pub fn message(submission: &Submission) -> types::Message {
    types::Message {
        service_type: submission.service_type.clone(),
        source: address(&submission.source),
        destinations: submission.destinations.iter().map(address).collect(),
        esm_class: submission.esm_class,
        protocol_id: submission.protocol_id,
        priority_flag: submission.priority_flag,
        registered_delivery: submission.registered_delivery,
        data_coding: submission.data_coding,
        content: match &submission.content {
            Content::Text(text) => types::Content::Text(text.clone()),
            Content::Binary { data, port } => types::Content::Binary(types::BinaryContent {
                data: data.clone(),
                port: *port,
            }),
        },
        validity: submission.validity.map(|v| match v {
            Expiry::At(at) => types::Validity::Until(at.timestamp_millis()),
            Expiry::After(d) => types::Validity::After(d.as_secs()),
        }),
        schedule_at: submission.schedule_at.map(|at| at.timestamp_millis()),
        tlvs: submission
            .tlvs
            .iter()
            .map(|t| types::Tlv {
                tag: t.tag,
                value: t.value.to_vec(),
            })
            .collect(),
        labels: submission.labels.clone(),
    }
}

/// The submission with a plugin's rewrite applied. What a plugin cannot express (the kind of
/// PDU) stays as it was.
pub fn apply(submission: Submission, message: types::Message) -> Submission {
    Submission {
        kind: submission.kind,
        service_type: message.service_type,
        source: from_address(message.source),
        destinations: message.destinations.into_iter().map(from_address).collect(),
        esm_class: message.esm_class,
        protocol_id: message.protocol_id,
        priority_flag: message.priority_flag,
        registered_delivery: message.registered_delivery,
        data_coding: message.data_coding,
        content: match message.content {
            types::Content::Text(text) => Content::Text(text),
            types::Content::Binary(binary) => Content::Binary {
                data: binary.data,
                port: binary.port,
            },
        },
        validity: message.validity.and_then(|v| match v {
            types::Validity::Until(millis) => {
                DateTime::<Utc>::from_timestamp_millis(millis).map(Expiry::At)
            }
            types::Validity::After(seconds) => Some(Expiry::After(Duration::from_secs(seconds))),
        }),
        schedule_at: message
            .schedule_at
            .and_then(DateTime::<Utc>::from_timestamp_millis),
        tlvs: message
            .tlvs
            .into_iter()
            .map(|t| Tlv {
                tag: t.tag,
                value: t.value.into(),
            })
            .collect(),
        labels: message.labels,
    }
}

/// Where and how the gateway sends: the route's choices over the account's defaults.
pub fn route(
    body: &mut OutgoingMessage,
    account: &Account,
    decision: Option<&types::RouteDecision>,
) -> Option<Credentials> {
    body.device_id = decision
        .and_then(|d| d.device_id.clone())
        .or_else(|| account.device_id.clone());
    body.sim_number = decision.and_then(|d| d.sim_number).or(account.sim_number);
    if let Some(priority) = decision.and_then(|d| d.priority) {
        body.priority = Some(priority);
    }
    decision
        .and_then(|d| d.credentials.clone())
        .map(Credentials::from)
}

pub fn address(a: &Address) -> types::Address {
    types::Address {
        ton: a.ton,
        npi: a.npi,
        addr: a.addr.clone(),
    }
}

pub fn from_address(a: types::Address) -> Address {
    Address {
        ton: a.ton,
        npi: a.npi,
        addr: a.addr,
    }
}
