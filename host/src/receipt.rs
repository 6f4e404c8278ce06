//! deliver_sm PDUs for what the phone reports: delivery receipts for messages an ESME
//! submitted, and mobile originated messages.
//!
//! Only the bytes are decided here; which session gets a PDU, and whether, is the delivery
//! path's business.

use std::ops::Range;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use smpp_codec::pdu::{Address, DeliverSm, Tlv, tag};
use sms_text::DefaultAlphabet;

/// esm_class message type "SMSC delivery receipt".
const ESM_DELIVERY_RECEIPT: u8 = 0x04;
/// esm_class UDHI: short_message (or message_payload) starts with a user data header.
const ESM_UDHI: u8 = 0x40;

const DC_DEFAULT: u8 = 0x00;
const DC_BINARY: u8 = 0x04;
const DC_UCS2: u8 = 0x08;

/// registered_delivery bit asking for intermediate notifications.
const INTERMEDIATE: u8 = 0x10;

/// network_error_code type for GSM error codes.
const NETWORK_TYPE_GSM: u8 = 3;

/// The application port SMSGate receives binary messages on; the webhook does not report the
/// sender's port, so the source port is left 0.
pub const SMSGATE_DATA_PORT: u16 = 53739;

/// User data header information elements (3GPP TS 23.040 §9.2.3.24).
const IEI_CONCAT_8BIT: u8 = 0x00;
const IEI_PORTS_16BIT: u8 = 0x05;

/// The outcome a receipt reports, with the SMPP 3.4 message_state values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptState {
    Enroute,
    Delivered,
    Expired,
    Deleted,
    Undeliverable,
    Unknown,
}

impl ReceiptState {
    /// The message_state value (SMPP 3.4 §5.2.28).
    pub const fn message_state(self) -> u8 {
        match self {
            Self::Enroute => 1,
            Self::Delivered => 2,
            Self::Expired => 3,
            Self::Deleted => 4,
            Self::Undeliverable => 5,
            Self::Unknown => 7,
        }
    }

    /// The `stat:` word of the receipt text.
    pub const fn stat(self) -> &'static str {
        match self {
            Self::Enroute => "ENROUTE",
            Self::Delivered => "DELIVRD",
            Self::Expired => "EXPIRED",
            Self::Deleted => "DELETED",
            Self::Undeliverable => "UNDELIV",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// Every state but ENROUTE ends the message's life.
    pub const fn is_final(self) -> bool {
        !matches!(self, Self::Enroute)
    }

    /// A final state in which the message did not, or is not known to, reach the handset.
    pub const fn is_failure(self) -> bool {
        matches!(
            self,
            Self::Expired | Self::Deleted | Self::Undeliverable | Self::Unknown
        )
    }
}

/// Whether a message submitted with `registered_delivery` may get any receipt at all.
pub fn wants_any(registered_delivery: u8) -> bool {
    registered_delivery & 0x03 != 0 || registered_delivery & INTERMEDIATE != 0
}

/// Whether a message submitted with `registered_delivery` should get a receipt for `state`.
///
/// Bits 1-0: 0 none, 1 final outcome, 2 failure only; 3 is reserved in 3.4 and means
/// "success only" in SMPP 5.0, which is the only reading an ESME setting it can intend. Bit 4
/// adds intermediate (ENROUTE) notifications, so Kannel's usual 0x11 gets both.
pub fn wants(registered_delivery: u8, state: ReceiptState) -> bool {
    if !state.is_final() {
        return registered_delivery & INTERMEDIATE != 0;
    }
    match registered_delivery & 0x03 {
        0 => false,
        1 => true,
        2 => state.is_failure(),
        _ => !state.is_failure(),
    }
}

/// The de-facto receipt text of SMPP 3.4 Appendix B:
/// `id:… sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DELIVRD err:000
/// text:…`, with the first 20 characters of the original message.
///
/// `err` has three digits in every parser's pattern, so codes above 999 show as 999; the
/// network_error_code TLV carries the exact value.
pub fn receipt_text(
    id: &str,
    state: ReceiptState,
    submitted: DateTime<Utc>,
    done: DateTime<Utc>,
    error: u16,
    original_text: Option<&str>,
) -> String {
    const DATE: &str = "%y%m%d%H%M";
    let dlvrd = if state == ReceiptState::Delivered {
        "001"
    } else {
        "000"
    };
    let text: String = original_text.unwrap_or("").chars().take(20).collect();
    format!(
        "id:{id} sub:001 dlvrd:{dlvrd} submit date:{} done date:{} stat:{} err:{:03} text:{text}",
        submitted.format(DATE),
        done.format(DATE),
        state.stat(),
        error.min(999),
    )
}

/// What a receipt reports about one submitted message.
#[derive(Debug, Clone, Copy)]
pub struct Receipt<'a> {
    /// The id the ESME got in submit_sm_resp: ESMEs match receipts on this exact string.
    pub message_id: &'a str,
    /// The submit_sm's addresses. The receipt travels back to the submitter, so they swap.
    pub submit_source: &'a Address,
    pub submit_destination: &'a Address,
    pub state: ReceiptState,
    pub submitted: DateTime<Utc>,
    pub done: DateTime<Utc>,
    /// GSM error code; sent in network_error_code when the state is a failure.
    pub error: u16,
    pub original_text: Option<&'a str>,
}

/// The receipt as a deliver_sm. Its text is written in the coding `alphabet` gives
/// data_coding 0, as the ESME will read it that way; characters of the quoted original
/// text that coding lacks become '?'.
///
/// esm_class is 0x04 even for ENROUTE: many ESMEs recognise only 0x04 as a receipt, and the
/// stat word and message_state already say the state is intermediate.
pub fn build_receipt(receipt: &Receipt<'_>, alphabet: DefaultAlphabet) -> DeliverSm {
    receipt_with_text(receipt, &receipt.text(), alphabet)
}

impl Receipt<'_> {
    /// The standard receipt text for this receipt.
    pub fn text(&self) -> String {
        receipt_text(
            self.message_id,
            self.state,
            self.submitted,
            self.done,
            self.error,
            self.original_text,
        )
    }
}

/// The receipt with `text` as its body, for a text a plugin rewrote.
pub fn receipt_with_text(
    receipt: &Receipt<'_>,
    text: &str,
    alphabet: DefaultAlphabet,
) -> DeliverSm {
    let short_message: Vec<u8> = text
        .chars()
        .flat_map(|c| default_coding(c, alphabet).unwrap_or_else(|| vec![b'?']))
        .collect();
    let mut tlvs = vec![
        Tlv {
            tag: tag::RECEIPTED_MESSAGE_ID,
            value: c_octet_string(receipt.message_id),
        },
        Tlv {
            tag: tag::MESSAGE_STATE,
            value: Bytes::copy_from_slice(&[receipt.state.message_state()]),
        },
    ];
    if receipt.state.is_failure() {
        let [hi, lo] = receipt.error.to_be_bytes();
        tlvs.push(Tlv {
            tag: tag::NETWORK_ERROR_CODE,
            value: Bytes::copy_from_slice(&[NETWORK_TYPE_GSM, hi, lo]),
        });
    }
    DeliverSm {
        esm_class: ESM_DELIVERY_RECEIPT,
        short_message: Bytes::from(short_message),
        tlvs,
        ..deliver_sm(
            receipt.submit_destination,
            receipt.submit_source,
            DC_DEFAULT,
        )
    }
}

/// The body of a mobile originated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// How a message too long for one SMS reaches the ESME.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LongMessages {
    /// As concatenated parts with an 8-bit reference user data header, the way a handset
    /// would have received them; every ESME understands this.
    #[default]
    Udh,
    /// Whole, in one deliver_sm's message_payload TLV.
    Payload,
}

/// A mobile originated message from `source` (the sender) to `destination` (the phone's
/// number) as one or more deliver_sm.
///
/// Text goes out in the coding data_coding 0 stands for under `alphabet` when every
/// character has one, in UCS-2 (data_coding 8) otherwise; binary content as 8-bit data
/// (data_coding 4) addressed to SMSGate's data port with a port user data header. Parts hold
/// what a network SMS holds: 153 septets, 134 octets or 67 UTF-16 units, never splitting a
/// GSM escape or a surrogate pair. `reference` identifies the parts of this message and
/// should differ between consecutive long messages to one ESME.
///
/// A message over 255 parts cannot be numbered in the header and travels in
/// message_payload whatever `long` says; no handset receives one that long.
pub fn build_incoming(
    source: &Address,
    destination: &Address,
    content: Content<'_>,
    alphabet: DefaultAlphabet,
    long: LongMessages,
    reference: u8,
) -> Vec<DeliverSm> {
    let ud = match content {
        Content::Text(text) => text_user_data(text, alphabet),
        Content::Binary(data) => binary_user_data(data),
    };
    let base = deliver_sm(source, destination, ud.data_coding);
    let udhi = if ud.header.is_empty() { 0 } else { ESM_UDHI };
    if ud.bytes.len() <= ud.single {
        return vec![DeliverSm {
            esm_class: udhi,
            short_message: with_header(&ud.header, &ud.bytes),
            ..base
        }];
    }
    let parts = split(&ud.boundaries, ud.part);
    let total = match u8::try_from(parts.len()) {
        Ok(total) if long == LongMessages::Udh => total,
        _ => {
            return vec![DeliverSm {
                esm_class: udhi,
                tlvs: vec![Tlv {
                    tag: tag::MESSAGE_PAYLOAD,
                    value: with_header(&ud.header, &ud.bytes),
                }],
                ..base
            }];
        }
    };
    parts
        .into_iter()
        .zip(1..=total)
        .map(|(range, sequence)| {
            let mut header = vec![IEI_CONCAT_8BIT, 3, reference, total, sequence];
            header.extend_from_slice(&ud.header);
            DeliverSm {
                esm_class: ESM_UDHI,
                short_message: with_header(&header, &ud.bytes[range]),
                ..base.clone()
            }
        })
        .collect()
}

/// The SMPP address for a number or sender name as the phone reports it: `+` and digits is
/// international, digits alone have an unknown type, anything else is alphanumeric.
pub fn sme_address(number: &str) -> Address {
    let number = number.trim();
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (ton, npi, addr) = match number.strip_prefix('+') {
        Some(digits) if all_digits(digits) => (1, 1, digits),
        _ if all_digits(number) => (0, 1, number),
        _ if number.is_empty() => (0, 0, number),
        _ => (5, 0, number),
    };
    Address {
        ton,
        npi,
        addr: addr.to_owned(),
    }
}

fn deliver_sm(source: &Address, destination: &Address, data_coding: u8) -> DeliverSm {
    DeliverSm {
        service_type: String::new(),
        source: source.clone(),
        destination: destination.clone(),
        esm_class: 0,
        protocol_id: 0,
        priority_flag: 0,
        registered_delivery: 0,
        data_coding,
        short_message: Bytes::new(),
        tlvs: Vec::new(),
    }
}

/// A message's user data in its chosen coding.
struct UserData {
    data_coding: u8,
    bytes: Vec<u8>,
    /// Offsets just after each character: the only places a part may end.
    boundaries: Vec<usize>,
    /// How many bytes fit in one unconcatenated message, and in each concatenated part.
    single: usize,
    part: usize,
    /// Information elements every PDU carries besides concatenation.
    header: Vec<u8>,
}

fn text_user_data(text: &str, alphabet: DefaultAlphabet) -> UserData {
    // GSM and ASCII characters are seven bits, so 160 fit where 140 octets do.
    let (single, part) = match alphabet {
        DefaultAlphabet::Gsm7 | DefaultAlphabet::Ascii => (160, 153),
        DefaultAlphabet::Latin1 => (140, 134),
    };
    let by_char = |encode: &dyn Fn(char) -> Option<Vec<u8>>| {
        let mut bytes = Vec::with_capacity(text.len());
        let mut boundaries = Vec::with_capacity(text.len());
        for c in text.chars() {
            bytes.extend(encode(c)?);
            boundaries.push(bytes.len());
        }
        Some((bytes, boundaries))
    };
    let user_data = |data_coding, (bytes, boundaries), single, part| UserData {
        data_coding,
        bytes,
        boundaries,
        single,
        part,
        header: Vec::new(),
    };
    match by_char(&|c| default_coding(c, alphabet)) {
        Some(encoded) => user_data(DC_DEFAULT, encoded, single, part),
        None => {
            let encoded = by_char(&|c| Some(sms_text::encode_ucs2(c.encode_utf8(&mut [0; 4]))))
                .expect("UCS-2 encodes every character");
            user_data(DC_UCS2, encoded, 140, 134)
        }
    }
}

fn binary_user_data(data: &[u8]) -> UserData {
    let [dest_hi, dest_lo] = SMSGATE_DATA_PORT.to_be_bytes();
    let header = vec![IEI_PORTS_16BIT, 4, dest_hi, dest_lo, 0, 0];
    // 140 octets less the header length octet and the ports element; each part also loses
    // the 5 octets of the concatenation element.
    let single = 140 - 1 - header.len();
    UserData {
        data_coding: DC_BINARY,
        bytes: data.to_vec(),
        boundaries: (1..=data.len()).collect(),
        single,
        part: single - 5,
        header,
    }
}

/// One character in the coding data_coding 0 stands for under `alphabet`.
fn default_coding(c: char, alphabet: DefaultAlphabet) -> Option<Vec<u8>> {
    match alphabet {
        DefaultAlphabet::Gsm7 => sms_text::encode_gsm7(c.encode_utf8(&mut [0; 4])),
        DefaultAlphabet::Latin1 => u8::try_from(c).ok().map(|b| vec![b]),
        DefaultAlphabet::Ascii => u8::try_from(c).ok().filter(u8::is_ascii).map(|b| vec![b]),
    }
}

/// Greedy parts of at most `part` bytes, each ending on a boundary.
fn split(boundaries: &[usize], part: usize) -> Vec<Range<usize>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for &boundary in boundaries {
        if boundary - start > part {
            parts.push(start..end);
            start = end;
        }
        end = boundary;
    }
    if end > start {
        parts.push(start..end);
    }
    parts
}

/// `payload` behind a user data header of the information elements `ies`, if any.
fn with_header(ies: &[u8], payload: &[u8]) -> Bytes {
    if ies.is_empty() {
        return Bytes::copy_from_slice(payload);
    }
    let mut out = Vec::with_capacity(1 + ies.len() + payload.len());
    out.push(u8::try_from(ies.len()).expect("a few information elements"));
    out.extend_from_slice(ies);
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// `s` as a NUL-terminated Latin-1 string, with the same substitutions the PDU encoder makes
/// for C-Octet String fields.
fn c_octet_string(s: &str) -> Bytes {
    s.chars()
        .map(|c| u8::try_from(c).ok().filter(|&b| b != 0).unwrap_or(b'?'))
        .chain([0])
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use smpp_codec::pdu::{Outbound, encode_pdu, find_tlv};

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 59).unwrap()
    }

    fn addr(ton: u8, npi: u8, addr: &str) -> Address {
        Address {
            ton,
            npi,
            addr: addr.into(),
        }
    }

    const ALL: [ReceiptState; 6] = [
        ReceiptState::Enroute,
        ReceiptState::Delivered,
        ReceiptState::Expired,
        ReceiptState::Deleted,
        ReceiptState::Undeliverable,
        ReceiptState::Unknown,
    ];

    #[test]
    fn states_have_their_smpp_values_and_words() {
        let words: Vec<_> = ALL.iter().map(|s| (s.message_state(), s.stat())).collect();
        assert_eq!(
            words,
            [
                (1, "ENROUTE"),
                (2, "DELIVRD"),
                (3, "EXPIRED"),
                (4, "DELETED"),
                (5, "UNDELIV"),
                (7, "UNKNOWN"),
            ]
        );
    }

    #[test]
    fn receipt_text_format() {
        assert_eq!(
            receipt_text(
                "Ab3dE6gH9jK1mN4pQ7sT0",
                ReceiptState::Delivered,
                at(2024, 6, 22, 8, 46),
                at(2024, 6, 22, 8, 47),
                0,
                Some("Hello world, this is longer than twenty"),
            ),
            "id:Ab3dE6gH9jK1mN4pQ7sT0 sub:001 dlvrd:001 submit date:2406220846 \
             done date:2406220847 stat:DELIVRD err:000 text:Hello world, this is"
        );
        assert_eq!(
            receipt_text(
                "m.2",
                ReceiptState::Undeliverable,
                at(2025, 1, 2, 3, 4),
                at(2025, 12, 31, 23, 59),
                34,
                None,
            ),
            "id:m.2 sub:001 dlvrd:000 submit date:2501020304 done date:2512312359 \
             stat:UNDELIV err:034 text:"
        );
        let text = receipt_text(
            "x",
            ReceiptState::Expired,
            at(2025, 1, 1, 0, 0),
            at(2025, 1, 1, 0, 0),
            4321,
            Some("привет, мир! 😀 ещё немного"),
        );
        assert!(
            text.ends_with("stat:EXPIRED err:999 text:привет, мир! 😀 ещё н"),
            "{text}"
        );
    }

    #[test]
    fn which_receipts_are_wanted() {
        use ReceiptState::*;
        // registered_delivery, then the states that produce a receipt.
        let table: &[(u8, &[ReceiptState])] = &[
            (0x00, &[]),
            (0x01, &[Delivered, Expired, Deleted, Undeliverable, Unknown]),
            (0x02, &[Expired, Deleted, Undeliverable, Unknown]),
            (0x03, &[Delivered]),
            (0x10, &[Enroute]),
            (0x11, &ALL),
            (0x12, &[Enroute, Expired, Deleted, Undeliverable, Unknown]),
            // SME acknowledgement bits do not ask for SMSC receipts.
            (0x0C, &[]),
            (0x0D, &ALL[1..]),
        ];
        for &(rd, wanted) in table {
            for state in ALL {
                assert_eq!(
                    wants(rd, state),
                    wanted.contains(&state),
                    "registered_delivery 0x{rd:02X}, {state:?}"
                );
            }
        }
    }

    fn receipt(state: ReceiptState, error: u16) -> DeliverSm {
        build_receipt(
            &Receipt {
                message_id: "Ab3dE6gH9jK1mN4pQ7sT0",
                submit_source: &addr(5, 0, "Shop"),
                submit_destination: &addr(1, 1, "447700900123"),
                state,
                submitted: at(2024, 6, 22, 8, 46),
                done: at(2024, 6, 22, 8, 47),
                error,
                original_text: Some("Your code: 1234"),
            },
            DefaultAlphabet::Gsm7,
        )
    }

    #[test]
    fn delivered_receipt_pdu() {
        let pdu = receipt(ReceiptState::Delivered, 0);
        assert_eq!(pdu.esm_class, 0x04);
        assert_eq!(pdu.data_coding, 0);
        assert_eq!(pdu.registered_delivery, 0);
        // It travels back: from the handset to the submitter.
        assert_eq!(pdu.source, addr(1, 1, "447700900123"));
        assert_eq!(pdu.destination, addr(5, 0, "Shop"));
        assert_eq!(
            &pdu.short_message[..],
            b"id:Ab3dE6gH9jK1mN4pQ7sT0 sub:001 dlvrd:001 submit date:2406220846 \
              done date:2406220847 stat:DELIVRD err:000 text:Your code: 1234"
        );
        assert_eq!(
            pdu.tlvs,
            [
                Tlv {
                    tag: 0x001E,
                    value: Bytes::from_static(b"Ab3dE6gH9jK1mN4pQ7sT0\0"),
                },
                Tlv {
                    tag: 0x0427,
                    value: Bytes::from_static(&[2]),
                },
            ]
        );
    }

    #[test]
    fn failed_receipt_carries_the_network_error() {
        let pdu = receipt(ReceiptState::Undeliverable, 0x0122);
        assert_eq!(
            find_tlv(&pdu.tlvs, tag::MESSAGE_STATE).unwrap().value[..],
            [5]
        );
        assert_eq!(
            find_tlv(&pdu.tlvs, tag::NETWORK_ERROR_CODE).unwrap().value[..],
            [3, 0x01, 0x22]
        );
        assert!(
            pdu.short_message
                .ends_with(b"stat:UNDELIV err:290 text:Your code: 1234")
        );
        let enroute = receipt(ReceiptState::Enroute, 0);
        assert_eq!(enroute.esm_class, 0x04);
        assert!(find_tlv(&enroute.tlvs, tag::NETWORK_ERROR_CODE).is_none());
        assert_eq!(
            find_tlv(&enroute.tlvs, tag::MESSAGE_STATE).unwrap().value[..],
            [1]
        );
    }

    #[test]
    fn receipt_tlv_bytes_on_the_wire() {
        let mut wire = bytes::BytesMut::new();
        encode_pdu(
            &Outbound::DeliverSm {
                sequence_number: 1,
                body: receipt(ReceiptState::Expired, 27).encode(),
            },
            &mut wire,
        );
        let tail: &[u8] = b"\x00\x1e\x00\x16Ab3dE6gH9jK1mN4pQ7sT0\0\
                            \x04\x27\x00\x01\x03\
                            \x04\x23\x00\x03\x03\x00\x1b";
        assert!(wire.ends_with(tail), "{:02x?}", &wire[..]);
    }

    #[test]
    fn receipt_text_follows_the_default_alphabet() {
        let with_text = |alphabet| {
            build_receipt(
                &Receipt {
                    message_id: "id_1",
                    submit_source: &addr(0, 0, "a"),
                    submit_destination: &addr(0, 0, "b"),
                    state: ReceiptState::Delivered,
                    submitted: at(2024, 1, 1, 0, 0),
                    done: at(2024, 1, 1, 0, 0),
                    error: 0,
                    original_text: Some("é€ж"),
                },
                alphabet,
            )
            .short_message
        };
        let gsm7 = with_text(DefaultAlphabet::Gsm7);
        assert!(gsm7.starts_with(b"id:id\x111 "), "{gsm7:02x?}");
        assert!(gsm7.ends_with(b"text:\x05\x1b\x65?"), "{gsm7:02x?}");
        let latin1 = with_text(DefaultAlphabet::Latin1);
        assert!(latin1.starts_with(b"id:id_1 "));
        assert!(latin1.ends_with(b"text:\xe9??"));
        assert!(with_text(DefaultAlphabet::Ascii).ends_with(b"text:???"));
    }

    fn incoming(content: Content<'_>, long: LongMessages) -> Vec<DeliverSm> {
        build_incoming(
            &addr(1, 1, "447700900123"),
            &addr(0, 1, "07700900999"),
            content,
            DefaultAlphabet::Gsm7,
            long,
            0x2A,
        )
    }

    fn text(content: &str) -> Vec<DeliverSm> {
        incoming(Content::Text(content), LongMessages::Udh)
    }

    /// The parts' payloads decoded, after checking each part's header.
    fn reassemble(parts: &[DeliverSm], alphabet: sms_text::Alphabet) -> String {
        let total = parts.len();
        parts
            .iter()
            .enumerate()
            .map(|(i, pdu)| {
                assert_eq!(pdu.esm_class, 0x40);
                let sm = &pdu.short_message;
                assert_eq!(
                    sm[..6],
                    [5, 0, 3, 0x2A, total as u8, i as u8 + 1],
                    "part {i}"
                );
                sms_text::decode(alphabet, &sm[6..]).unwrap()
            })
            .collect()
    }

    #[test]
    fn short_gsm_text_is_one_plain_pdu() {
        let [pdu] = &text("Hello {world} @ 5€")[..] else {
            panic!("one PDU expected");
        };
        assert_eq!(pdu.esm_class, 0x00);
        assert_eq!(pdu.data_coding, 0);
        assert_eq!(pdu.source, addr(1, 1, "447700900123"));
        assert_eq!(pdu.destination, addr(0, 1, "07700900999"));
        assert!(pdu.tlvs.is_empty());
        assert_eq!(
            &pdu.short_message[..],
            b"Hello \x1b\x28world\x1b\x29 \x00 5\x1b\x65"
        );
        assert_eq!(text(&"a".repeat(160))[0].short_message.len(), 160);
    }

    #[test]
    fn non_gsm_text_is_ucs2() {
        let [pdu] = &text("Привет 😀")[..] else {
            panic!("one PDU expected");
        };
        assert_eq!(pdu.data_coding, 8);
        assert_eq!(pdu.esm_class, 0);
        assert_eq!(
            sms_text::decode(sms_text::Alphabet::Ucs2, &pdu.short_message).unwrap(),
            "Привет 😀"
        );
        assert_eq!(text(&"ж".repeat(70))[0].short_message.len(), 140);
    }

    #[test]
    fn gsm_text_of_161_characters_is_two_parts() {
        let message = "x".repeat(161);
        let parts = text(&message);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].short_message.len(), 6 + 153);
        assert_eq!(parts[1].short_message.len(), 6 + 8);
        assert!(parts.iter().all(|p| p.data_coding == 0));
        assert_eq!(reassemble(&parts, sms_text::Alphabet::Gsm7), message);
    }

    #[test]
    fn ucs2_text_of_71_characters_is_two_parts() {
        let message = "ж".repeat(71);
        let parts = text(&message);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].short_message.len(), 6 + 134);
        assert_eq!(parts[1].short_message.len(), 6 + 8);
        assert!(parts.iter().all(|p| p.data_coding == 8));
        assert_eq!(reassemble(&parts, sms_text::Alphabet::Ucs2), message);
    }

    #[test]
    fn escapes_and_surrogate_pairs_are_not_split() {
        // The escape would straddle septets 153 and 154.
        let message = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let parts = text(&message);
        assert_eq!(parts[0].short_message.len(), 6 + 152);
        assert_eq!(reassemble(&parts, sms_text::Alphabet::Gsm7), message);

        // The emoji would straddle UTF-16 units 67 and 68.
        let message = format!("{}😀{}", "ж".repeat(66), "ж".repeat(10));
        let parts = text(&message);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].short_message.len(), 6 + 132);
        assert_eq!(reassemble(&parts, sms_text::Alphabet::Ucs2), message);
        assert!(parts[1].short_message[6..].starts_with(&[0xD8, 0x3D, 0xDE, 0x00]));
    }

    #[test]
    fn part_counts_match_the_segment_count() {
        for message in [
            "a".repeat(306),
            "a".repeat(307),
            "€".repeat(80),
            format!("{}€", "€".repeat(80)),
            "ж".repeat(134),
            "ж".repeat(135),
            "😀".repeat(100),
            format!("{}€{}", "a".repeat(152), "a".repeat(152)),
        ] {
            assert_eq!(
                text(&message).len(),
                sms_text::segment_count(&message),
                "{message}"
            );
        }
    }

    #[test]
    fn payload_mode_sends_one_pdu() {
        let message = "y".repeat(400);
        let [pdu] = &incoming(Content::Text(&message), LongMessages::Payload)[..] else {
            panic!("one PDU expected");
        };
        assert_eq!(pdu.esm_class, 0);
        assert_eq!(pdu.data_coding, 0);
        assert!(pdu.short_message.is_empty());
        assert_eq!(
            pdu.tlvs,
            [Tlv {
                tag: tag::MESSAGE_PAYLOAD,
                value: Bytes::from(message.into_bytes()),
            }]
        );
        // A message that fits one SMS stays in short_message.
        let [pdu] = &incoming(Content::Text("hi"), LongMessages::Payload)[..] else {
            panic!("one PDU expected");
        };
        assert_eq!(&pdu.short_message[..], b"hi");
        assert!(pdu.tlvs.is_empty());
    }

    #[test]
    fn more_than_255_parts_fall_back_to_the_payload() {
        let message = "z".repeat(153 * 255);
        assert_eq!(text(&message).len(), 255);
        let message = "z".repeat(153 * 255 + 1);
        let [pdu] = &text(&message)[..] else {
            panic!("one PDU expected");
        };
        assert_eq!(pdu.tlvs[0].tag, tag::MESSAGE_PAYLOAD);
        assert_eq!(pdu.tlvs[0].value.len(), message.len());
    }

    #[test]
    fn other_default_alphabets() {
        let latin = |content: &str| {
            build_incoming(
                &addr(0, 0, "a"),
                &addr(0, 0, "b"),
                Content::Text(content),
                DefaultAlphabet::Latin1,
                LongMessages::Udh,
                1,
            )
        };
        let [pdu] = &latin("café [ok]")[..] else {
            panic!("one PDU expected");
        };
        assert_eq!(pdu.data_coding, 0);
        assert_eq!(&pdu.short_message[..], b"caf\xe9 [ok]");
        // Latin-1 octets are eight bits: 140 fit one message, 134 a part.
        assert_eq!(latin(&"é".repeat(140)).len(), 1);
        let parts = latin(&"é".repeat(141));
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].short_message.len(), 6 + 134);
        assert_eq!(latin("€")[0].data_coding, 8);

        let [pdu] = &build_incoming(
            &addr(0, 0, "a"),
            &addr(0, 0, "b"),
            Content::Text("a_b"),
            DefaultAlphabet::Ascii,
            LongMessages::Udh,
            1,
        )[..] else {
            panic!("one PDU expected");
        };
        assert_eq!((pdu.data_coding, &pdu.short_message[..]), (0, &b"a_b"[..]));
    }

    #[test]
    fn binary_messages_carry_the_port_header() {
        let [pdu] = &incoming(Content::Binary(&[0xCA, 0xFE]), LongMessages::Udh)[..] else {
            panic!("one PDU expected");
        };
        assert_eq!(pdu.data_coding, 4);
        assert_eq!(pdu.esm_class, 0x40);
        assert_eq!(
            &pdu.short_message[..],
            [0x06, 0x05, 0x04, 0xD1, 0xEB, 0x00, 0x00, 0xCA, 0xFE]
        );
        assert_eq!(
            incoming(Content::Binary(&[7; 133]), LongMessages::Udh).len(),
            1
        );

        let data: Vec<u8> = (0..=199).collect();
        let parts = incoming(Content::Binary(&data), LongMessages::Udh);
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0].short_message[..12],
            [0x0B, 0x00, 0x03, 0x2A, 2, 1, 0x05, 0x04, 0xD1, 0xEB, 0, 0]
        );
        assert_eq!(parts[0].short_message.len(), 12 + 128);
        assert_eq!(parts[1].short_message[5], 2);
        let joined: Vec<u8> = parts
            .iter()
            .flat_map(|p| p.short_message[12..].to_vec())
            .collect();
        assert_eq!(joined, data);

        let [pdu] = &incoming(Content::Binary(&data), LongMessages::Payload)[..] else {
            panic!("one PDU expected");
        };
        assert_eq!(pdu.esm_class, 0x40);
        assert!(pdu.short_message.is_empty());
        let payload = &find_tlv(&pdu.tlvs, tag::MESSAGE_PAYLOAD).unwrap().value;
        assert_eq!(payload[..7], [0x06, 0x05, 0x04, 0xD1, 0xEB, 0, 0]);
        assert_eq!(payload[7..], data[..]);
    }

    #[test]
    fn empty_messages_are_one_empty_pdu() {
        let [pdu] = &text("")[..] else {
            panic!("one PDU expected");
        };
        assert!(pdu.short_message.is_empty());
        assert_eq!(pdu.data_coding, 0);
    }

    #[test]
    fn addresses_from_phone_numbers() {
        assert_eq!(sme_address("+447700900123"), addr(1, 1, "447700900123"));
        assert_eq!(sme_address(" 6505551212 "), addr(0, 1, "6505551212"));
        assert_eq!(sme_address("Google"), addr(5, 0, "Google"));
        assert_eq!(sme_address("+"), addr(5, 0, "+"));
        assert_eq!(sme_address(""), addr(0, 0, ""));
    }
}
