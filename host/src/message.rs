//! The decoded form of a message an ESME submits: what submit_sm, data_sm and submit_multi
//! have in common, with the text already turned into Unicode and the SMPP times into instants.
//! Everything after decoding (reassembly, policy plugins, the gateway call) works on this type,
//! never on raw PDU bytes.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::gateway::{DataMessage, OutgoingMessage, TextMessage};
use smpp_codec::pdu::{Address, DataSm, SubmitMulti, SubmitSm, Tlv, find_tlv, tag};
use smpp_codec::status::*;
use smpp_codec::time::{self as smpp_time, SmppTime};
use smpp_codec::udh::{self, Concat};
use sms_text::{Alphabet, AlphabetChoices};

const ESM_UDHI: u8 = 0x40;
/// The gateway refuses a time-to-live under five seconds.
const MIN_TTL_SECONDS: u64 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmitKind {
    SubmitSm,
    DataSm,
    SubmitMulti,
}

/// A message as the ESME meant it, ready for the next stage.
#[derive(Clone, Debug)]
pub struct Submission {
    pub kind: SubmitKind,
    pub service_type: String,
    pub source: Address,
    pub destinations: Vec<Address>,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub registered_delivery: u8,
    pub data_coding: u8,
    pub content: Content,
    pub validity: Option<Expiry>,
    pub schedule_at: Option<DateTime<Utc>>,
    /// Every TLV of the PDU, including the ones already interpreted.
    pub tlvs: Vec<Tlv>,
    /// Annotations plugins attach for later plugins in the chain.
    pub labels: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    Text(String),
    Binary { data: Vec<u8>, port: u16 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Expiry {
    At(DateTime<Utc>),
    After(std::time::Duration),
}

/// One segment of a concatenated message, before reassembly.
#[derive(Clone, Debug)]
pub struct Part {
    pub concat: Concat,
    pub payload: Bytes,
    /// Destination port of this part (TLV or UDH), for 8-bit data; often only some parts
    /// carry it.
    pub port: Option<u16>,
}

/// What decoding a PDU yields: a whole message, or one part of a longer one.
#[derive(Debug)]
pub enum Decoded {
    Whole(Submission),
    Part {
        /// The message with empty content: the parts' payloads are decoded together once all
        /// are there, because a UCS-2 surrogate pair or GSM escape may straddle two parts.
        template: Submission,
        part: Part,
    },
}

/// The mandatory fields the three submit PDUs share, borrowed from whichever arrived.
struct Fields<'a> {
    kind: SubmitKind,
    service_type: &'a str,
    source: &'a Address,
    destinations: Vec<Address>,
    esm_class: u8,
    protocol_id: u8,
    priority_flag: u8,
    schedule_delivery_time: &'a str,
    validity_period: &'a str,
    registered_delivery: u8,
    data_coding: u8,
    short_message: &'a Bytes,
    tlvs: &'a [Tlv],
}

pub fn from_submit_sm(
    pdu: &SubmitSm,
    alphabets: AlphabetChoices,
    now: DateTime<Utc>,
) -> Result<Decoded, SmppError> {
    decode(
        Fields {
            kind: SubmitKind::SubmitSm,
            service_type: &pdu.service_type,
            source: &pdu.source,
            destinations: vec![pdu.destination.clone()],
            esm_class: pdu.esm_class,
            protocol_id: pdu.protocol_id,
            priority_flag: pdu.priority_flag,
            schedule_delivery_time: &pdu.schedule_delivery_time,
            validity_period: &pdu.validity_period,
            registered_delivery: pdu.registered_delivery,
            data_coding: pdu.data_coding,
            short_message: &pdu.short_message,
            tlvs: &pdu.tlvs,
        },
        alphabets,
        now,
    )
}

pub fn from_data_sm(
    pdu: &DataSm,
    alphabets: AlphabetChoices,
    now: DateTime<Utc>,
) -> Result<Decoded, SmppError> {
    let empty = Bytes::new();
    decode(
        Fields {
            kind: SubmitKind::DataSm,
            service_type: &pdu.service_type,
            source: &pdu.source,
            destinations: vec![pdu.destination.clone()],
            esm_class: pdu.esm_class,
            protocol_id: 0,
            priority_flag: 0,
            schedule_delivery_time: "",
            validity_period: "",
            registered_delivery: pdu.registered_delivery,
            data_coding: pdu.data_coding,
            short_message: &empty,
            tlvs: &pdu.tlvs,
        },
        alphabets,
        now,
    )
}

/// submit_multi: `destinations` are the SME addresses that passed the per-entry checks.
pub fn from_submit_multi(
    pdu: &SubmitMulti,
    destinations: Vec<Address>,
    alphabets: AlphabetChoices,
    now: DateTime<Utc>,
) -> Result<Decoded, SmppError> {
    decode(
        Fields {
            kind: SubmitKind::SubmitMulti,
            service_type: &pdu.service_type,
            source: &pdu.source,
            destinations,
            esm_class: pdu.esm_class,
            protocol_id: pdu.protocol_id,
            priority_flag: pdu.priority_flag,
            schedule_delivery_time: &pdu.schedule_delivery_time,
            validity_period: &pdu.validity_period,
            registered_delivery: pdu.registered_delivery,
            data_coding: pdu.data_coding,
            short_message: &pdu.short_message,
            tlvs: &pdu.tlvs,
        },
        alphabets,
        now,
    )
}

fn decode(
    fields: Fields<'_>,
    alphabets: AlphabetChoices,
    now: DateTime<Utc>,
) -> Result<Decoded, SmppError> {
    if fields.priority_flag > 3 {
        return Err(SmppError::new(
            ESME_RINVPRTFLG,
            format!("priority_flag {} is not 0-3", fields.priority_flag),
        ));
    }
    let raw = payload(fields.short_message, fields.tlvs)?;
    let alphabet = sms_text::alphabet(fields.data_coding, alphabets)
        .map_err(|e| SmppError::new(ESME_RSUBMITFAIL, e.to_string()))?;

    let (header, body) = if fields.esm_class & ESM_UDHI != 0 {
        let (udh, body) = udh::split(&raw)
            .map_err(|e| SmppError::new(ESME_RINVESMCLASS, format!("user data header: {e}")))?;
        let offset = raw.len() - body.len();
        (Some(udh), raw.slice(offset..))
    } else {
        (None, raw)
    };
    let concat = match header.as_ref().and_then(|h| h.concat) {
        Some(concat) => Some(concat),
        None => sar_concat(fields.tlvs)?,
    };
    let port = tlv_u16(fields.tlvs, tag::DESTINATION_PORT)?.or(header.and_then(|h| h.dest_port));

    let (validity, schedule_at) = times(&fields, now)?;
    let template = Submission {
        kind: fields.kind,
        service_type: fields.service_type.to_string(),
        source: fields.source.clone(),
        destinations: fields
            .destinations
            .iter()
            .map(normalise_destination)
            .collect(),
        esm_class: fields.esm_class,
        protocol_id: fields.protocol_id,
        priority_flag: fields.priority_flag,
        registered_delivery: fields.registered_delivery,
        data_coding: fields.data_coding,
        content: Content::Text(String::new()),
        validity,
        schedule_at,
        tlvs: fields.tlvs.to_vec(),
        labels: Vec::new(),
    };
    match concat {
        Some(concat) if concat.total > 1 => Ok(Decoded::Part {
            template,
            part: Part {
                concat,
                payload: body,
                port,
            },
        }),
        _ => {
            let content = content(alphabet, &body, port)?;
            Ok(Decoded::Whole(Submission {
                content,
                ..template
            }))
        }
    }
}

/// Turns the payload bytes into text, or binary data when the coding says 8-bit.
pub fn content(alphabet: Alphabet, bytes: &[u8], port: Option<u16>) -> Result<Content, SmppError> {
    if alphabet == Alphabet::Binary {
        return match port {
            Some(port) if port > 0 => Ok(Content::Binary {
                data: bytes.to_vec(),
                port,
            }),
            _ => Err(SmppError::new(
                ESME_RSUBMITFAIL,
                "8-bit data needs a destination port (destination_port TLV or UDH port IE): \
                 the gateway sends binary SMS to a port only",
            )),
        };
    }
    sms_text::decode(alphabet, bytes)
        .map(Content::Text)
        .map_err(|e| SmppError::new(ESME_RINVMSGLEN, e.to_string()))
}

/// The alphabet of a submission, for decoding reassembled parts.
pub fn alphabet_of(sub: &Submission, alphabets: AlphabetChoices) -> Result<Alphabet, SmppError> {
    sms_text::alphabet(sub.data_coding, alphabets)
        .map_err(|e| SmppError::new(ESME_RSUBMITFAIL, e.to_string()))
}

/// short_message, or the message_payload TLV when short_message is empty. A message with
/// neither is refused here: the gateway would refuse it too, after a round trip.
fn payload(short_message: &Bytes, tlvs: &[Tlv]) -> Result<Bytes, SmppError> {
    let payload = match find_tlv(tlvs, tag::MESSAGE_PAYLOAD) {
        Some(_) if !short_message.is_empty() => {
            return Err(SmppError::new(
                ESME_RINVMSGLEN,
                "short_message and message_payload are both set",
            ));
        }
        Some(tlv) => tlv.value.clone(),
        None => short_message.clone(),
    };
    if payload.is_empty() {
        return Err(SmppError::new(
            ESME_RINVMSGLEN,
            "the message is empty: no short_message and no message_payload",
        ));
    }
    Ok(payload)
}

fn sar_concat(tlvs: &[Tlv]) -> Result<Option<Concat>, SmppError> {
    let reference = tlv_u16(tlvs, tag::SAR_MSG_REF_NUM)?;
    let total = find_tlv(tlvs, tag::SAR_TOTAL_SEGMENTS).and_then(|t| t.value.first().copied());
    let sequence = find_tlv(tlvs, tag::SAR_SEGMENT_SEQNUM).and_then(|t| t.value.first().copied());
    match (reference, total, sequence) {
        (None, None, None) => Ok(None),
        (Some(reference), Some(total), Some(sequence))
            if total > 0 && sequence > 0 && sequence <= total =>
        {
            Ok(Some(Concat {
                reference,
                total,
                sequence,
            }))
        }
        (Some(_), Some(_), Some(_)) => Err(SmppError::new(
            ESME_RINVOPTPARAMVAL,
            "sar_segment_seqnum must be 1..=sar_total_segments",
        )),
        _ => Err(SmppError::new(
            ESME_RMISSINGOPTPARAM,
            "sar_msg_ref_num, sar_total_segments and sar_segment_seqnum go together",
        )),
    }
}

fn tlv_u16(tlvs: &[Tlv], wanted: u16) -> Result<Option<u16>, SmppError> {
    match find_tlv(tlvs, wanted) {
        None => Ok(None),
        Some(tlv) => match tlv.value.as_ref() {
            [hi, lo] => Ok(Some(u16::from_be_bytes([*hi, *lo]))),
            _ => Err(SmppError::new(
                ESME_RINVPARLEN,
                format!("TLV 0x{wanted:04X} must be 2 bytes"),
            )),
        },
    }
}

fn times(
    fields: &Fields<'_>,
    now: DateTime<Utc>,
) -> Result<(Option<Expiry>, Option<DateTime<Utc>>), SmppError> {
    let validity = match smpp_time::parse(fields.validity_period)
        .map_err(|e| SmppError::new(ESME_RINVEXPIRY, format!("validity_period: {e}")))?
    {
        None => None,
        Some(SmppTime::Relative(d)) if d.as_secs() < MIN_TTL_SECONDS => {
            return Err(SmppError::new(
                ESME_RINVEXPIRY,
                format!(
                    "validity_period: shorter than the gateway's minimum of {MIN_TTL_SECONDS}s"
                ),
            ));
        }
        Some(SmppTime::Relative(d)) => Some(Expiry::After(d)),
        Some(absolute) => {
            let at = smpp_time::resolve(&absolute, now);
            if at <= now {
                return Err(SmppError::new(
                    ESME_RINVEXPIRY,
                    "validity_period: already expired",
                ));
            }
            Some(Expiry::At(at))
        }
    };
    let schedule_at = smpp_time::parse(fields.schedule_delivery_time)
        .map_err(|e| SmppError::new(ESME_RINVSCHED, format!("schedule_delivery_time: {e}")))?
        .map(|t| smpp_time::resolve(&t, now))
        // A time in the past means "now", as on every SMSC.
        .filter(|at| *at > now);
    if let (Some(schedule), Some(Expiry::At(until))) = (schedule_at, validity)
        && schedule >= until
    {
        return Err(SmppError::new(
            ESME_RINVSCHED,
            "schedule_delivery_time is after validity_period",
        ));
    }
    Ok((validity, schedule_at))
}

/// TON 1 (international) numbers usually come without '+'; SMSGate would read them as national
/// numbers of its default region, so make them E.164.
fn normalise_destination(address: &Address) -> Address {
    Address {
        addr: normalised_number(address),
        ..*address
    }
}

fn normalised_number(address: &Address) -> String {
    let addr = address.addr.trim();
    if address.ton == 1 && !addr.starts_with('+') && !addr.is_empty() {
        ["+", addr].concat()
    } else {
        addr.to_owned()
    }
}

/// SMPP priority_flag 0-3 onto SMSGate's -128..127, where 100 and above skip the phone's
/// sending limits: level 3 ("very urgent") is the only one allowed to do that.
fn gateway_priority(priority_flag: u8) -> Option<i8> {
    match priority_flag {
        0 => None,
        1 => Some(50),
        2 => Some(90),
        _ => Some(100),
    }
}

impl Submission {
    /// registered_delivery bits 1-0: any SMSC receipt requested.
    pub fn wants_receipt(&self) -> bool {
        self.registered_delivery & 0x03 != 0
    }

    /// The `POST /messages` body for this submission under the given message id.
    pub fn to_gateway(&self, id: &str, now: DateTime<Utc>) -> OutgoingMessage {
        let (text_message, data_message) = match &self.content {
            Content::Text(text) => (Some(TextMessage { text: text.clone() }), None),
            Content::Binary { data, port } => (None, Some(DataMessage::new(data, *port))),
        };
        let (ttl, valid_until) = match self.validity {
            None => (None, None),
            Some(Expiry::After(d)) => (Some(d.as_secs()), None),
            Some(Expiry::At(at)) => (None, Some(at)),
        };
        // Again here, because a plugin may have rewritten the destinations the SMPP way.
        let mut phone_numbers: Vec<String> = Vec::with_capacity(self.destinations.len());
        for number in self.destinations.iter().map(normalised_number) {
            if !phone_numbers.contains(&number) {
                phone_numbers.push(number);
            }
        }
        OutgoingMessage {
            id: id.to_string(),
            text_message,
            data_message,
            phone_numbers,
            with_delivery_report: self.wants_receipt(),
            priority: gateway_priority(self.priority_flag),
            ttl,
            valid_until,
            schedule_at: self.schedule_at.filter(|at| *at > now),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use sms_text::{DefaultAlphabet, Ia5Alphabet};

    /// `smpp.default_alphabet` and `smpp.ia5_alphabet` as the server ships them.
    const SERVER_DEFAULTS: AlphabetChoices = AlphabetChoices {
        default: DefaultAlphabet::Gsm7,
        ia5: Ia5Alphabet::Ascii,
    };

    fn addr(ton: u8, addr: &str) -> Address {
        Address {
            ton,
            npi: 1,
            addr: addr.into(),
        }
    }

    fn submit(data_coding: u8, short_message: &[u8]) -> SubmitSm {
        SubmitSm {
            service_type: String::new(),
            source: addr(5, "Shop"),
            destination: addr(1, "491701234567"),
            esm_class: 0,
            protocol_id: 0,
            priority_flag: 0,
            schedule_delivery_time: String::new(),
            validity_period: String::new(),
            registered_delivery: 1,
            replace_if_present_flag: 0,
            data_coding,
            sm_default_msg_id: 0,
            short_message: Bytes::copy_from_slice(short_message),
            tlvs: Vec::new(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    fn whole(pdu: &SubmitSm) -> Submission {
        match from_submit_sm(pdu, SERVER_DEFAULTS, now()).unwrap() {
            Decoded::Whole(s) => s,
            other => panic!("expected a whole message, got {other:?}"),
        }
    }

    fn rejected(pdu: &SubmitSm) -> SmppError {
        from_submit_sm(pdu, SERVER_DEFAULTS, now()).unwrap_err()
    }

    #[test]
    fn gsm7_text_with_escapes_and_international_destination() {
        // "Hi {€}" in unpacked GSM 03.38
        let sub = whole(&submit(
            0,
            &[0x48, 0x69, 0x20, 0x1B, 0x28, 0x1B, 0x65, 0x1B, 0x29],
        ));
        assert_eq!(sub.content, Content::Text("Hi {€}".into()));
        assert_eq!(sub.destinations[0].addr, "+491701234567");
        let body = sub.to_gateway("abc", now());
        assert_eq!(body.phone_numbers, vec!["+491701234567"]);
        assert!(body.with_delivery_report);
    }

    #[test]
    fn message_payload_is_used_when_short_message_is_empty() {
        let mut pdu = submit(8, b"");
        pdu.tlvs.push(Tlv {
            tag: tag::MESSAGE_PAYLOAD,
            value: Bytes::from_static(&[0xD8, 0x3D, 0xDE, 0x00]),
        });
        assert_eq!(whole(&pdu).content, Content::Text("😀".into()));
        pdu.short_message = Bytes::from_static(b"x");
        assert_eq!(rejected(&pdu).status, ESME_RINVMSGLEN);
    }

    #[test]
    fn an_empty_message_is_refused() {
        assert_eq!(rejected(&submit(0, b"")).status, ESME_RINVMSGLEN);
        let mut pdu = submit(0, b"");
        pdu.tlvs.push(Tlv {
            tag: tag::MESSAGE_PAYLOAD,
            value: Bytes::new(),
        });
        assert_eq!(rejected(&pdu).status, ESME_RINVMSGLEN);
    }

    #[test]
    fn binary_needs_a_port() {
        assert_eq!(rejected(&submit(4, &[1, 2, 3])).status, ESME_RSUBMITFAIL);
        let mut pdu = submit(4, &[1, 2, 3]);
        pdu.tlvs.push(Tlv {
            tag: tag::DESTINATION_PORT,
            value: Bytes::from_static(&[0x23, 0xF0]),
        });
        assert_eq!(
            whole(&pdu).content,
            Content::Binary {
                data: vec![1, 2, 3],
                port: 0x23F0
            }
        );
    }

    #[test]
    fn udh_concat_becomes_a_part_with_the_header_stripped() {
        let mut pdu = submit(0, &[0x05, 0x00, 0x03, 0x2A, 0x03, 0x02, 0x41, 0x42]);
        pdu.esm_class = ESM_UDHI;
        match from_submit_sm(&pdu, SERVER_DEFAULTS, now()).unwrap() {
            Decoded::Part { part, .. } => {
                assert_eq!(part.concat.reference, 0x2A);
                assert_eq!(part.concat.total, 3);
                assert_eq!(part.concat.sequence, 2);
                assert_eq!(part.payload.as_ref(), b"AB");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sar_tlvs_make_a_part_and_must_be_complete() {
        let mut pdu = submit(0, b"AB");
        pdu.tlvs.push(Tlv {
            tag: tag::SAR_MSG_REF_NUM,
            value: Bytes::from_static(&[0x01, 0x02]),
        });
        assert_eq!(rejected(&pdu).status, ESME_RMISSINGOPTPARAM);
        pdu.tlvs.push(Tlv {
            tag: tag::SAR_TOTAL_SEGMENTS,
            value: Bytes::from_static(&[2]),
        });
        pdu.tlvs.push(Tlv {
            tag: tag::SAR_SEGMENT_SEQNUM,
            value: Bytes::from_static(&[1]),
        });
        assert!(matches!(
            from_submit_sm(&pdu, SERVER_DEFAULTS, now()).unwrap(),
            Decoded::Part { .. }
        ));
    }

    #[test]
    fn undecodable_text_is_refused_not_replaced() {
        assert_eq!(
            rejected(&submit(8, &[0x00, 0x41, 0x00])).status,
            ESME_RINVMSGLEN
        );
        assert_eq!(
            rejected(&submit(8, &[0xD8, 0x3D, 0x00, 0x41])).status,
            ESME_RINVMSGLEN
        );
        assert_eq!(rejected(&submit(1, &[0x41, 0xE9])).status, ESME_RINVMSGLEN);
    }

    #[test]
    fn latin1_and_default_alphabet_choice() {
        assert_eq!(
            whole(&submit(3, &[0x63, 0x61, 0x66, 0xE9])).content,
            Content::Text("café".into())
        );
        let pdu = submit(0, &[0x63, 0x61, 0x66, 0xE9]);
        let latin1 = AlphabetChoices {
            default: DefaultAlphabet::Latin1,
            ..SERVER_DEFAULTS
        };
        match from_submit_sm(&pdu, latin1, now()).unwrap() {
            Decoded::Whole(s) => assert_eq!(s.content, Content::Text("café".into())),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn times_map_to_validity_and_schedule() {
        let mut pdu = submit(0, b"hi");
        pdu.validity_period = "000001000000000R".into();
        pdu.schedule_delivery_time = "261126130000000+".into();
        let sub = whole(&pdu);
        let body = sub.to_gateway("x", now());
        assert_eq!(body.ttl, Some(86_400));
        assert_eq!(
            body.schedule_at,
            Some(Utc.with_ymd_and_hms(2026, 11, 26, 13, 0, 0).unwrap())
        );

        pdu.validity_period = "261127120000004+".into();
        let body = whole(&pdu).to_gateway("x", now());
        assert_eq!(
            body.valid_until,
            Some(Utc.with_ymd_and_hms(2026, 11, 27, 11, 0, 0).unwrap())
        );

        pdu.validity_period = "2611271200".into();
        assert_eq!(rejected(&pdu).status, ESME_RINVEXPIRY);
        pdu.validity_period = "000000000001000R".into();
        assert_eq!(rejected(&pdu).status, ESME_RINVEXPIRY);
        pdu.validity_period = String::new();
        pdu.schedule_delivery_time = "261399000000000+".into();
        assert_eq!(rejected(&pdu).status, ESME_RINVSCHED);
    }

    #[test]
    fn priority_flag_maps_and_is_checked() {
        let mut pdu = submit(0, b"hi");
        pdu.priority_flag = 3;
        assert_eq!(whole(&pdu).to_gateway("x", now()).priority, Some(100));
        pdu.priority_flag = 4;
        assert_eq!(rejected(&pdu).status, ESME_RINVPRTFLG);
    }

    #[test]
    fn receipt_request_bits() {
        for (rd, wanted) in [
            (0, false),
            (1, true),
            (2, true),
            (0x11, true),
            (0x10, false),
        ] {
            let mut pdu = submit(0, b"hi");
            pdu.registered_delivery = rd;
            assert_eq!(
                whole(&pdu).to_gateway("x", now()).with_delivery_report,
                wanted,
                "registered_delivery {rd:#x}"
            );
        }
    }
}
