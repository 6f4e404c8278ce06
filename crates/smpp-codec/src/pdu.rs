//! Typed SMPP 3.4 PDUs: decoding of the requests an ESME sends and encoding of
//! what the server sends back.
//!
//! Decoding never fails with an error: every problem becomes
//! [`Inbound::Invalid`] carrying the `command_status` the session should answer
//! with, so one bad PDU costs one error response instead of the connection.
//! Bodies are read strictly inside their own frame.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::command::*;
use crate::status::*;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Request {
        sequence_number: u32,
        request: Request,
    },
    /// A response (or generic_nack) from the ESME to something the server sent.
    Response {
        command_id: u32,
        command_status: CommandStatus,
        sequence_number: u32,
        /// Present only for deliver_sm_resp and data_sm_resp that carry a
        /// non-empty message_id.
        message_id: Option<String>,
    },
    /// A well-framed PDU that cannot be accepted. The session answers with
    /// `ResponseBody::error_for(command_id)` carrying `status` and goes on.
    Invalid {
        command_id: u32,
        sequence_number: u32,
        status: CommandStatus,
        reason: String,
    },
    /// `command_length` is below the header size or above the configured
    /// maximum. Framing is lost, so the session sends generic_nack
    /// ESME_RINVCMDLEN and closes.
    BadLength {
        command_length: u32,
        sequence_number: u32,
    },
}

impl Inbound {
    /// The command_id of the frame (0 when the length was bad and the header unread).
    pub fn command_id(&self) -> u32 {
        match self {
            Inbound::Request { request, .. } => request.command_id(),
            Inbound::Response { command_id, .. } | Inbound::Invalid { command_id, .. } => {
                *command_id
            }
            Inbound::BadLength { .. } => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindKind {
    Transmitter,
    Receiver,
    Transceiver,
}

impl BindKind {
    pub const fn command_id(self) -> u32 {
        match self {
            Self::Transmitter => BIND_TRANSMITTER,
            Self::Receiver => BIND_RECEIVER,
            Self::Transceiver => BIND_TRANSCEIVER,
        }
    }

    pub const fn resp_command_id(self) -> u32 {
        self.command_id() | RESPONSE_BIT
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Transmitter => "transmitter",
            Self::Receiver => "receiver",
            Self::Transceiver => "transceiver",
        }
    }

    /// tx, rx or trx, as in metrics labels.
    pub const fn short_name(self) -> &'static str {
        match self {
            Self::Transmitter => "tx",
            Self::Receiver => "rx",
            Self::Transceiver => "trx",
        }
    }

    /// May submit messages (bound as transmitter or transceiver).
    pub const fn can_transmit(self) -> bool {
        matches!(self, Self::Transmitter | Self::Transceiver)
    }

    pub const fn can_receive(self) -> bool {
        matches!(self, Self::Receiver | Self::Transceiver)
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Bind {
    pub kind: BindKind,
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    pub interface_version: u8,
    pub addr_ton: u8,
    pub addr_npi: u8,
    pub address_range: String,
}

// Hand-written so that a bind logged at any level never leaks the password.
impl fmt::Debug for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bind")
            .field("kind", &self.kind)
            .field("system_id", &self.system_id)
            .field("password", &format_args!("<redacted>"))
            .field("system_type", &self.system_type)
            .field(
                "interface_version",
                &format_args!("0x{:02X}", self.interface_version),
            )
            .field("addr_ton", &self.addr_ton)
            .field("addr_npi", &self.addr_npi)
            .field("address_range", &self.address_range)
            .finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub ton: u8,
    pub npi: u8,
    pub addr: String,
}

/// An optional parameter, kept raw: the server interprets only the few tags it
/// needs and must still be able to see vendor tags.
#[derive(Clone, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u16,
    pub value: Bytes,
}

impl fmt::Debug for Tlv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Tlv");
        match tag::name(self.tag) {
            Some(name) => s.field("tag", &format_args!("{name} (0x{:04X})", self.tag)),
            None => s.field("tag", &format_args!("0x{:04X}", self.tag)),
        };
        s.field("value", &self.value).finish()
    }
}

/// The first TLV with `tag`; SMPP does not define repeated tags for the
/// parameters the server reads.
pub fn find_tlv(tlvs: &[Tlv], tag: u16) -> Option<&Tlv> {
    tlvs.iter().find(|tlv| tlv.tag == tag)
}

/// TLV tags (SMPP 3.4 section 5.3.2).
pub mod tag {
    pub const PAYLOAD_TYPE: u16 = 0x0019;
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    pub const USER_MESSAGE_REFERENCE: u16 = 0x0204;
    pub const SOURCE_PORT: u16 = 0x020A;
    pub const DESTINATION_PORT: u16 = 0x020B;
    pub const SAR_MSG_REF_NUM: u16 = 0x020C;
    pub const SAR_TOTAL_SEGMENTS: u16 = 0x020E;
    pub const SAR_SEGMENT_SEQNUM: u16 = 0x020F;
    pub const SC_INTERFACE_VERSION: u16 = 0x0210;
    pub const NETWORK_ERROR_CODE: u16 = 0x0423;
    pub const MESSAGE_PAYLOAD: u16 = 0x0424;
    pub const MESSAGE_STATE: u16 = 0x0427;

    /// The specification name of a tag the server knows about.
    pub fn name(tag: u16) -> Option<&'static str> {
        Some(match tag {
            PAYLOAD_TYPE => "payload_type",
            RECEIPTED_MESSAGE_ID => "receipted_message_id",
            USER_MESSAGE_REFERENCE => "user_message_reference",
            SOURCE_PORT => "source_port",
            DESTINATION_PORT => "destination_port",
            SAR_MSG_REF_NUM => "sar_msg_ref_num",
            SAR_TOTAL_SEGMENTS => "sar_total_segments",
            SAR_SEGMENT_SEQNUM => "sar_segment_seqnum",
            SC_INTERFACE_VERSION => "sc_interface_version",
            NETWORK_ERROR_CODE => "network_error_code",
            MESSAGE_PAYLOAD => "message_payload",
            MESSAGE_STATE => "message_state",
            _ => return None,
        })
    }

    /// Value length the specification fixes for tags an ESME may send and the
    /// server relies on; a mismatch is rejected rather than half-read later.
    pub(super) fn fixed_len(tag: u16) -> Option<usize> {
        match tag {
            SAR_MSG_REF_NUM | SOURCE_PORT | DESTINATION_PORT | USER_MESSAGE_REFERENCE => Some(2),
            SAR_TOTAL_SEGMENTS | SAR_SEGMENT_SEQNUM | PAYLOAD_TYPE => Some(1),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitSm {
    pub service_type: String,
    pub source: Address,
    pub destination: Address,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: String,
    pub validity_period: String,
    pub registered_delivery: u8,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    pub short_message: Bytes,
    pub tlvs: Vec<Tlv>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestAddress {
    Sme(Address),
    DistributionList(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitMulti {
    pub service_type: String,
    pub source: Address,
    pub destinations: Vec<DestAddress>,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: String,
    pub validity_period: String,
    pub registered_delivery: u8,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    pub short_message: Bytes,
    pub tlvs: Vec<Tlv>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSm {
    pub service_type: String,
    pub source: Address,
    pub destination: Address,
    pub esm_class: u8,
    pub registered_delivery: u8,
    pub data_coding: u8,
    pub tlvs: Vec<Tlv>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySm {
    pub message_id: String,
    pub source: Address,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelSm {
    pub service_type: String,
    pub message_id: String,
    pub source: Address,
    pub destination: Address,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaceSm {
    pub message_id: String,
    pub source: Address,
    pub schedule_delivery_time: String,
    pub validity_period: String,
    pub registered_delivery: u8,
    pub sm_default_msg_id: u8,
    pub short_message: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Bind(Bind),
    SubmitSm(SubmitSm),
    SubmitMulti(SubmitMulti),
    DataSm(DataSm),
    QuerySm(QuerySm),
    CancelSm(CancelSm),
    ReplaceSm(ReplaceSm),
    EnquireLink,
    Unbind,
}

impl Request {
    pub fn command_id(&self) -> u32 {
        match self {
            Request::Bind(bind) => bind.kind.command_id(),
            Request::SubmitSm(_) => SUBMIT_SM,
            Request::SubmitMulti(_) => SUBMIT_MULTI,
            Request::DataSm(_) => DATA_SM,
            Request::QuerySm(_) => QUERY_SM,
            Request::CancelSm(_) => CANCEL_SM,
            Request::ReplaceSm(_) => REPLACE_SM,
            Request::EnquireLink => ENQUIRE_LINK,
            Request::Unbind => UNBIND,
        }
    }
}

// --- decoding ---

// Field limits in characters, excluding the NUL terminator.

/// One over the 3.4 limit of 5: a six-character service type is harmless and
/// rejecting it would only fail messages the gateway can carry.
const MAX_SERVICE_TYPE: usize = 6;
const MAX_ADDR: usize = 20;
const MAX_MESSAGE_ID: usize = 64;
const MAX_DL_NAME: usize = 20;
const MAX_SYSTEM_TYPE: usize = 12;
const MAX_ADDRESS_RANGE: usize = 40;
/// Deliberately far above the 3.4 limits (15 and 8): SMSGate credentials are
/// longer, and binds carry them verbatim.
const MAX_CREDENTIAL: usize = 255;
const TIME_LEN: usize = 16;
const MAX_SM_LENGTH: usize = 254;
const MAX_DESTS: u8 = 254;

fn truncated(field: &str) -> SmppError {
    SmppError::new(
        ESME_RINVCMDLEN,
        format!("command_length inconsistent with body: PDU ends inside {field}"),
    )
}

type Parsed<T> = Result<T, SmppError>;

/// Sequential reader over one PDU body; it owns only that frame's bytes, so
/// nothing can be read from the following PDU.
struct Reader {
    rest: Bytes,
}

impl Reader {
    fn u8(&mut self, field: &str) -> Parsed<u8> {
        if self.rest.is_empty() {
            return Err(truncated(field));
        }
        Ok(self.rest.get_u8())
    }

    /// The raw octets of a C-Octet String, terminator consumed.
    fn c_octets(&mut self, field: &str, max: usize, too_long: CommandStatus) -> Parsed<Bytes> {
        let Some(nul) = self.rest.iter().position(|&b| b == 0) else {
            return Err(truncated(field));
        };
        if nul > max {
            return Err(SmppError::new(
                too_long,
                format!("{field} is {nul} octets long, limit {max}"),
            ));
        }
        let value = self.rest.split_to(nul);
        self.rest.advance(1);
        Ok(value)
    }

    fn c_string(&mut self, field: &str, max: usize, too_long: CommandStatus) -> Parsed<String> {
        self.c_octets(field, max, too_long).map(|raw| latin1(&raw))
    }

    /// An absolute or relative SMPP time: empty, or exactly 16 characters.
    fn time(&mut self, field: &str, invalid: CommandStatus) -> Parsed<String> {
        let raw = self.c_octets(field, TIME_LEN, invalid)?;
        if !raw.is_empty() && raw.len() != TIME_LEN {
            return Err(SmppError::new(
                invalid,
                format!(
                    "{field} must be empty or {TIME_LEN} characters, got {}",
                    raw.len()
                ),
            ));
        }
        Ok(latin1(&raw))
    }

    /// `fields` names the ton, npi and address fields for error reasons.
    fn address(&mut self, fields: [&str; 3], too_long: CommandStatus) -> Parsed<Address> {
        let [ton, npi, addr] = fields;
        Ok(Address {
            ton: self.u8(ton)?,
            npi: self.u8(npi)?,
            addr: self.c_string(addr, MAX_ADDR, too_long)?,
        })
    }

    /// sm_length followed by short_message.
    fn short_message(&mut self) -> Parsed<Bytes> {
        let len = usize::from(self.u8("sm_length")?);
        if len > MAX_SM_LENGTH {
            return Err(SmppError::new(
                ESME_RINVMSGLEN,
                format!("sm_length {len} exceeds {MAX_SM_LENGTH}"),
            ));
        }
        if len > self.rest.len() {
            return Err(SmppError::new(
                ESME_RINVMSGLEN,
                format!(
                    "sm_length {len} exceeds the {} octets left in the PDU",
                    self.rest.len()
                ),
            ));
        }
        Ok(self.rest.split_to(len))
    }

    /// Everything after the mandatory part of a PDU that allows TLVs.
    fn tlvs(mut self) -> Parsed<Vec<Tlv>> {
        let mut tlvs = Vec::new();
        while !self.rest.is_empty() {
            if self.rest.len() < 4 {
                return Err(SmppError::new(
                    ESME_RINVOPTPARSTREAM,
                    format!(
                        "{} stray octets where a TLV header was expected",
                        self.rest.len()
                    ),
                ));
            }
            let tag = self.rest.get_u16();
            let len = usize::from(self.rest.get_u16());
            if len > self.rest.len() {
                return Err(SmppError::new(
                    ESME_RINVPARLEN,
                    format!(
                        "TLV 0x{tag:04X} declares {len} octets but only {} remain",
                        self.rest.len()
                    ),
                ));
            }
            if let Some(expected) = tag::fixed_len(tag)
                && expected != len
            {
                return Err(SmppError::new(
                    ESME_RINVPARLEN,
                    format!("TLV 0x{tag:04X} must be {expected} octets, got {len}"),
                ));
            }
            tlvs.push(Tlv {
                tag,
                value: self.rest.split_to(len),
            });
        }
        Ok(tlvs)
    }

    /// Closes a PDU that has no optional part.
    fn end(self) -> Parsed<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(SmppError::new(
                ESME_RINVCMDLEN,
                format!(
                    "command_length inconsistent with body: {} octets after the last field",
                    self.rest.len()
                ),
            ))
        }
    }
}

/// Each octet becomes the code point of the same value, so any input decodes
/// and re-encodes losslessly.
fn latin1(raw: &[u8]) -> String {
    raw.iter().copied().map(char::from).collect()
}

/// Decodes one frame whose 16-octet header has already been split off.
pub(super) fn decode_pdu(
    command_id: u32,
    command_status: CommandStatus,
    sequence_number: u32,
    body: Bytes,
) -> Inbound {
    if is_response(command_id) {
        let message_id = match command_id {
            DELIVER_SM_RESP | DATA_SM_RESP => response_message_id(&body),
            _ => None,
        };
        return Inbound::Response {
            command_id,
            command_status,
            sequence_number,
            message_id,
        };
    }
    // command_status is unused in requests, so whatever the ESME put there is
    // ignored rather than rejected.
    match decode_request(command_id, Reader { rest: body }) {
        Ok(request) => Inbound::Request {
            sequence_number,
            request,
        },
        Err(SmppError { status, reason }) => Inbound::Invalid {
            command_id,
            sequence_number,
            status,
            reason,
        },
    }
}

/// Responses are never answered, so a malformed body degrades to "no id".
fn response_message_id(body: &[u8]) -> Option<String> {
    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
    (end > 0).then(|| latin1(&body[..end]))
}

fn decode_request(command_id: u32, r: Reader) -> Parsed<Request> {
    Ok(match command_id {
        BIND_TRANSMITTER => Request::Bind(bind(BindKind::Transmitter, r)?),
        BIND_RECEIVER => Request::Bind(bind(BindKind::Receiver, r)?),
        BIND_TRANSCEIVER => Request::Bind(bind(BindKind::Transceiver, r)?),
        SUBMIT_SM => Request::SubmitSm(submit_sm(r)?),
        SUBMIT_MULTI => Request::SubmitMulti(submit_multi(r)?),
        DATA_SM => Request::DataSm(data_sm(r)?),
        QUERY_SM => Request::QuerySm(query_sm(r)?),
        CANCEL_SM => Request::CancelSm(cancel_sm(r)?),
        REPLACE_SM => Request::ReplaceSm(replace_sm(r)?),
        ENQUIRE_LINK => {
            r.end()?;
            Request::EnquireLink
        }
        UNBIND => {
            r.end()?;
            Request::Unbind
        }
        _ => {
            let reason = match command_name(command_id) {
                "unknown" => format!("unknown command_id 0x{command_id:08X}"),
                name => format!("{name} is not accepted from an ESME"),
            };
            return Err(SmppError::new(ESME_RINVCMDID, reason));
        }
    })
}

fn bind(kind: BindKind, mut r: Reader) -> Parsed<Bind> {
    let bind = Bind {
        kind,
        system_id: r.c_string("system_id", MAX_CREDENTIAL, ESME_RINVSYSID)?,
        password: r.c_string("password", MAX_CREDENTIAL, ESME_RINVPASWD)?,
        system_type: r.c_string("system_type", MAX_SYSTEM_TYPE, ESME_RINVSYSTYP)?,
        interface_version: r.u8("interface_version")?,
        addr_ton: r.u8("addr_ton")?,
        addr_npi: r.u8("addr_npi")?,
        address_range: r.c_string("address_range", MAX_ADDRESS_RANGE, ESME_RBINDFAIL)?,
    };
    r.end()?;
    Ok(bind)
}

fn service_type(r: &mut Reader) -> Parsed<String> {
    r.c_string("service_type", MAX_SERVICE_TYPE, ESME_RINVSERTYP)
}

fn message_id(r: &mut Reader) -> Parsed<String> {
    r.c_string("message_id", MAX_MESSAGE_ID, ESME_RINVMSGID)
}

fn source(r: &mut Reader) -> Parsed<Address> {
    r.address(
        ["source_addr_ton", "source_addr_npi", "source_addr"],
        ESME_RINVSRCADR,
    )
}

fn destination(r: &mut Reader) -> Parsed<Address> {
    r.address(
        ["dest_addr_ton", "dest_addr_npi", "destination_addr"],
        ESME_RINVDSTADR,
    )
}

fn submit_sm(mut r: Reader) -> Parsed<SubmitSm> {
    Ok(SubmitSm {
        service_type: service_type(&mut r)?,
        source: source(&mut r)?,
        destination: destination(&mut r)?,
        esm_class: r.u8("esm_class")?,
        protocol_id: r.u8("protocol_id")?,
        priority_flag: r.u8("priority_flag")?,
        schedule_delivery_time: r.time("schedule_delivery_time", ESME_RINVSCHED)?,
        validity_period: r.time("validity_period", ESME_RINVEXPIRY)?,
        registered_delivery: r.u8("registered_delivery")?,
        replace_if_present_flag: r.u8("replace_if_present_flag")?,
        data_coding: r.u8("data_coding")?,
        sm_default_msg_id: r.u8("sm_default_msg_id")?,
        short_message: r.short_message()?,
        tlvs: r.tlvs()?,
    })
}

fn submit_multi(mut r: Reader) -> Parsed<SubmitMulti> {
    let service_type = service_type(&mut r)?;
    let source = source(&mut r)?;
    let count = r.u8("number_of_dests")?;
    if count == 0 || count > MAX_DESTS {
        return Err(SmppError::new(
            ESME_RINVNUMDESTS,
            format!("number_of_dests {count} is outside 1..={MAX_DESTS}"),
        ));
    }
    let mut destinations = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        destinations.push(match r.u8("dest_flag")? {
            1 => DestAddress::Sme(destination(&mut r)?),
            2 => DestAddress::DistributionList(r.c_string(
                "dl_name",
                MAX_DL_NAME,
                ESME_RINVDLNAME,
            )?),
            flag => {
                return Err(SmppError::new(
                    ESME_RINVDESTFLAG,
                    format!("dest_flag {flag} is neither 1 (SME) nor 2 (distribution list)"),
                ));
            }
        });
    }
    Ok(SubmitMulti {
        service_type,
        source,
        destinations,
        esm_class: r.u8("esm_class")?,
        protocol_id: r.u8("protocol_id")?,
        priority_flag: r.u8("priority_flag")?,
        schedule_delivery_time: r.time("schedule_delivery_time", ESME_RINVSCHED)?,
        validity_period: r.time("validity_period", ESME_RINVEXPIRY)?,
        registered_delivery: r.u8("registered_delivery")?,
        replace_if_present_flag: r.u8("replace_if_present_flag")?,
        data_coding: r.u8("data_coding")?,
        sm_default_msg_id: r.u8("sm_default_msg_id")?,
        short_message: r.short_message()?,
        tlvs: r.tlvs()?,
    })
}

fn data_sm(mut r: Reader) -> Parsed<DataSm> {
    Ok(DataSm {
        service_type: service_type(&mut r)?,
        source: source(&mut r)?,
        destination: destination(&mut r)?,
        esm_class: r.u8("esm_class")?,
        registered_delivery: r.u8("registered_delivery")?,
        data_coding: r.u8("data_coding")?,
        tlvs: r.tlvs()?,
    })
}

fn query_sm(mut r: Reader) -> Parsed<QuerySm> {
    let query = QuerySm {
        message_id: message_id(&mut r)?,
        source: source(&mut r)?,
    };
    r.end()?;
    Ok(query)
}

fn cancel_sm(mut r: Reader) -> Parsed<CancelSm> {
    let cancel = CancelSm {
        service_type: service_type(&mut r)?,
        message_id: message_id(&mut r)?,
        source: source(&mut r)?,
        destination: destination(&mut r)?,
    };
    r.end()?;
    Ok(cancel)
}

fn replace_sm(mut r: Reader) -> Parsed<ReplaceSm> {
    let replace = ReplaceSm {
        message_id: message_id(&mut r)?,
        source: source(&mut r)?,
        schedule_delivery_time: r.time("schedule_delivery_time", ESME_RINVSCHED)?,
        validity_period: r.time("validity_period", ESME_RINVEXPIRY)?,
        registered_delivery: r.u8("registered_delivery")?,
        sm_default_msg_id: r.u8("sm_default_msg_id")?,
        short_message: r.short_message()?,
    };
    r.end()?;
    Ok(replace)
}

// --- encoding ---

/// A PDU the server writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Response {
        sequence_number: u32,
        status: CommandStatus,
        body: ResponseBody,
    },
    EnquireLink {
        sequence_number: u32,
    },
    Unbind {
        sequence_number: u32,
    },
    /// A deliver_sm body encoded when its event was queued; only the header is added here.
    DeliverSm {
        sequence_number: u32,
        body: Bytes,
    },
}

impl Outbound {
    pub fn command_id(&self) -> u32 {
        match self {
            Self::Response { body, .. } => body.command_id(),
            Self::EnquireLink { .. } => ENQUIRE_LINK,
            Self::Unbind { .. } => UNBIND,
            Self::DeliverSm { .. } => DELIVER_SM,
        }
    }

    pub fn command_status(&self) -> CommandStatus {
        match self {
            Self::Response { status, .. } => *status,
            Self::EnquireLink { .. } | Self::Unbind { .. } | Self::DeliverSm { .. } => ESME_ROK,
        }
    }

    pub fn sequence_number(&self) -> u32 {
        match self {
            Self::Response {
                sequence_number, ..
            }
            | Self::EnquireLink { sequence_number }
            | Self::Unbind { sequence_number }
            | Self::DeliverSm {
                sequence_number, ..
            } => *sequence_number,
        }
    }

    fn put_body(&self, dst: &mut BytesMut) {
        match self {
            // On error only the header is returned, whatever the body says.
            Self::Response { status, body, .. } if *status == ESME_ROK => body.put(dst),
            Self::Response { .. } | Self::EnquireLink { .. } | Self::Unbind { .. } => {}
            Self::DeliverSm { body, .. } => dst.put_slice(body),
        }
    }
}

/// A deliver_sm the server originates: a delivery receipt or a mobile
/// originated message. schedule_delivery_time, validity_period,
/// replace_if_present_flag and sm_default_msg_id must be NULL in deliver_sm
/// (SMPP 3.4 §4.6.1), so they are not fields and cannot be set by mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverSm {
    pub service_type: String,
    pub source: Address,
    pub destination: Address,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub registered_delivery: u8,
    pub data_coding: u8,
    /// At most 254 octets; longer text belongs in a message_payload TLV.
    pub short_message: Bytes,
    pub tlvs: Vec<Tlv>,
}

impl DeliverSm {
    /// The body as it goes on the wire, without the header.
    pub fn encode(&self) -> Bytes {
        let mut dst = BytesMut::with_capacity(64 + self.short_message.len());
        self.put(&mut dst);
        dst.freeze()
    }

    fn put(&self, dst: &mut BytesMut) {
        put_c_string(dst, &self.service_type);
        put_address(dst, &self.source);
        put_address(dst, &self.destination);
        dst.put_u8(self.esm_class);
        dst.put_u8(self.protocol_id);
        dst.put_u8(self.priority_flag);
        // schedule_delivery_time and validity_period: empty C-Octet Strings.
        dst.put_u8(0);
        dst.put_u8(0);
        dst.put_u8(self.registered_delivery);
        // replace_if_present_flag
        dst.put_u8(0);
        dst.put_u8(self.data_coding);
        // sm_default_msg_id
        dst.put_u8(0);
        // sm_length is one octet. The builders never exceed the limit, so a
        // longer message is a caller bug; it is cut rather than allowed to
        // desynchronise the ESME's parser.
        debug_assert!(self.short_message.len() <= MAX_SM_LENGTH);
        let sm = &self.short_message[..self.short_message.len().min(MAX_SM_LENGTH)];
        dst.put_u8(u8::try_from(sm.len()).expect("cut to 254 octets"));
        dst.put_slice(sm);
        for tlv in &self.tlvs {
            put_tlv(dst, tlv);
        }
    }
}

fn put_address(dst: &mut BytesMut, address: &Address) {
    dst.put_u8(address.ton);
    dst.put_u8(address.npi);
    put_c_string(dst, &address.addr);
}

/// The length field is 16 bits; a longer value, which no SMS can produce, is
/// cut for the same reason as an over-long short_message.
fn put_tlv(dst: &mut BytesMut, tlv: &Tlv) {
    let len = u16::try_from(tlv.value.len()).unwrap_or(u16::MAX);
    debug_assert_eq!(usize::from(len), tlv.value.len());
    dst.put_u16(tlv.tag);
    dst.put_u16(len);
    dst.put_slice(&tlv.value[..usize::from(len)]);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody {
    Bind {
        kind: BindKind,
        system_id: String,
        /// Sent as the sc_interface_version TLV when present.
        sc_interface_version: Option<u8>,
    },
    SubmitSm {
        message_id: String,
    },
    DataSm {
        message_id: String,
    },
    SubmitMulti {
        message_id: String,
        unsuccess: Vec<UnsuccessSme>,
    },
    QuerySm {
        message_id: String,
        final_date: String,
        message_state: u8,
        error_code: u8,
    },
    CancelSm,
    ReplaceSm,
    EnquireLink,
    Unbind,
    GenericNack,
    /// Header-only response of the given command_id (used for error answers).
    Empty {
        command_id: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsuccessSme {
    pub address: Address,
    pub error_status: CommandStatus,
}

impl ResponseBody {
    pub fn command_id(&self) -> u32 {
        match self {
            Self::Bind { kind, .. } => kind.resp_command_id(),
            Self::SubmitSm { .. } => SUBMIT_SM_RESP,
            Self::DataSm { .. } => DATA_SM_RESP,
            Self::SubmitMulti { .. } => SUBMIT_MULTI_RESP,
            Self::QuerySm { .. } => QUERY_SM_RESP,
            Self::CancelSm => CANCEL_SM_RESP,
            Self::ReplaceSm => REPLACE_SM_RESP,
            Self::EnquireLink => ENQUIRE_LINK_RESP,
            Self::Unbind => UNBIND_RESP,
            Self::GenericNack => GENERIC_NACK,
            Self::Empty { command_id } => *command_id,
        }
    }

    /// The body for an error answer to a PDU with `command_id`: that
    /// request's own response when the server accepts the request from an
    /// ESME, generic_nack for anything else.
    pub fn error_for(command_id: u32) -> Self {
        if is_esme_request(command_id) {
            Self::Empty {
                command_id: command_id | RESPONSE_BIT,
            }
        } else {
            Self::GenericNack
        }
    }

    fn put(&self, dst: &mut BytesMut) {
        match self {
            Self::Bind {
                system_id,
                sc_interface_version,
                ..
            } => {
                put_c_string(dst, system_id);
                if let Some(version) = sc_interface_version {
                    dst.put_u16(tag::SC_INTERFACE_VERSION);
                    dst.put_u16(1);
                    dst.put_u8(*version);
                }
            }
            Self::SubmitSm { message_id } | Self::DataSm { message_id } => {
                put_c_string(dst, message_id);
            }
            Self::SubmitMulti {
                message_id,
                unsuccess,
            } => {
                put_c_string(dst, message_id);
                // no_unsuccess is one octet; submit_multi allows at most 254
                // destinations, so a longer list is a caller bug and is cut.
                let count = u8::try_from(unsuccess.len()).unwrap_or(u8::MAX);
                dst.put_u8(count);
                for sme in &unsuccess[..usize::from(count)] {
                    dst.put_u8(sme.address.ton);
                    dst.put_u8(sme.address.npi);
                    put_c_string(dst, &sme.address.addr);
                    dst.put_u32(sme.error_status.0);
                }
            }
            Self::QuerySm {
                message_id,
                final_date,
                message_state,
                error_code,
            } => {
                put_c_string(dst, message_id);
                put_c_string(dst, final_date);
                dst.put_u8(*message_state);
                dst.put_u8(*error_code);
            }
            Self::CancelSm
            | Self::ReplaceSm
            | Self::EnquireLink
            | Self::Unbind
            | Self::GenericNack
            | Self::Empty { .. } => {}
        }
    }
}

/// Writes `s` as a Latin-1 C-Octet String. Characters outside Latin-1, and
/// NUL (which would end the field early and shift every following field),
/// become '?'.
fn put_c_string(dst: &mut BytesMut, s: &str) {
    dst.extend(
        s.chars()
            .map(|c| u8::try_from(c).ok().filter(|&b| b != 0).unwrap_or(b'?')),
    );
    dst.put_u8(0);
}

/// Appends one complete PDU to `dst`, so a writer can batch many PDUs into a
/// single buffer.
pub fn encode_pdu(out: &Outbound, dst: &mut BytesMut) {
    let start = dst.len();
    // command_length is patched once the body length is known.
    dst.put_u32(0);
    dst.put_u32(out.command_id());
    dst.put_u32(out.command_status().0);
    dst.put_u32(out.sequence_number());
    out.put_body(dst);
    let command_length = u32::try_from(dst.len() - start).expect("PDU longer than 4 GiB");
    dst[start..start + 4].copy_from_slice(&command_length.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a PDU body field by field.
    #[derive(Default)]
    struct Body(Vec<u8>);

    impl Body {
        fn c(mut self, s: &str) -> Self {
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(0);
            self
        }

        fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }

        fn raw(mut self, raw: &[u8]) -> Self {
            self.0.extend_from_slice(raw);
            self
        }

        fn tlv(mut self, tag: u16, value: &[u8]) -> Self {
            self.0.extend_from_slice(&tag.to_be_bytes());
            let len = u16::try_from(value.len()).unwrap();
            self.0.extend_from_slice(&len.to_be_bytes());
            self.0.extend_from_slice(value);
            self
        }
    }

    const SEQ: u32 = 7;

    fn decode(command_id: u32, body: Body) -> Inbound {
        decode_pdu(command_id, ESME_ROK, SEQ, Bytes::from(body.0))
    }

    fn request(command_id: u32, body: Body) -> Request {
        match decode(command_id, body) {
            Inbound::Request {
                sequence_number: SEQ,
                request,
            } => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    /// The status of an `Invalid`, after checking it kept the PDU's identity.
    fn rejected(command_id: u32, body: Body) -> CommandStatus {
        match decode(command_id, body) {
            Inbound::Invalid {
                command_id: id,
                sequence_number: SEQ,
                status,
                reason,
            } => {
                assert_eq!(id, command_id);
                assert!(!reason.is_empty());
                status
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn bind_body(system_id: &str, password: &str) -> Body {
        Body::default()
            .c(system_id)
            .c(password)
            .c("VMA")
            .u8(0x34)
            .u8(1)
            .u8(1)
            .c("^447")
    }

    /// submit_sm up to and including sm_default_msg_id.
    fn submit_sm_head() -> Body {
        Body::default()
            .c("CMT")
            .u8(1)
            .u8(1)
            .c("Sender")
            .u8(1)
            .u8(1)
            .c("447700900123")
            .u8(0x40)
            .u8(0)
            .u8(1)
            .c("")
            .c("000001000000000R")
            .u8(1)
            .u8(0)
            .u8(8)
            .u8(0)
    }

    fn submit_sm(short_message: &[u8]) -> Body {
        submit_sm_head()
            .u8(u8::try_from(short_message.len()).unwrap())
            .raw(short_message)
    }

    fn addr(ton: u8, npi: u8, addr: &str) -> Address {
        Address {
            ton,
            npi,
            addr: addr.into(),
        }
    }

    fn encoded(out: Outbound) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode_pdu(&out, &mut dst);
        dst.to_vec()
    }

    fn header(len: u32, id: u32, status: CommandStatus, seq: u32) -> Vec<u8> {
        [len, id, status.0, seq]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect()
    }

    fn response(status: CommandStatus, body: ResponseBody) -> Outbound {
        Outbound::Response {
            sequence_number: SEQ,
            status,
            body,
        }
    }

    #[test]
    fn decodes_each_bind_kind() {
        for (id, kind) in [
            (BIND_TRANSMITTER, BindKind::Transmitter),
            (BIND_RECEIVER, BindKind::Receiver),
            (BIND_TRANSCEIVER, BindKind::Transceiver),
        ] {
            assert_eq!(kind.command_id(), id);
            assert_eq!(kind.resp_command_id(), id | RESPONSE_BIT);
            assert_eq!(
                request(id, bind_body("esme", "secret")),
                Request::Bind(Bind {
                    kind,
                    system_id: "esme".into(),
                    password: "secret".into(),
                    system_type: "VMA".into(),
                    interface_version: 0x34,
                    addr_ton: 1,
                    addr_npi: 1,
                    address_range: "^447".into(),
                })
            );
        }
        assert_eq!(BindKind::Transceiver.as_str(), "transceiver");
    }

    #[test]
    fn bind_debug_redacts_the_password() {
        let Request::Bind(bind) = request(BIND_TRANSMITTER, bind_body("esme", "hunter2")) else {
            panic!("not a bind");
        };
        let shown = format!("{bind:?}");
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains("esme"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn bind_credentials_up_to_255_characters_are_accepted() {
        let long = "u".repeat(255);
        let Request::Bind(bind) = request(BIND_TRANSCEIVER, bind_body(&long, &long)) else {
            panic!("not a bind");
        };
        assert_eq!(bind.system_id, long);
        assert_eq!(bind.password, long);

        let too_long = "u".repeat(256);
        assert_eq!(
            rejected(BIND_TRANSCEIVER, bind_body(&too_long, "pw")),
            ESME_RINVSYSID
        );
        assert_eq!(
            rejected(BIND_TRANSCEIVER, bind_body("esme", &too_long)),
            ESME_RINVPASWD
        );
        assert_eq!(
            rejected(BIND_RECEIVER, bind_body("esme", &"p".repeat(2000))),
            ESME_RINVPASWD
        );
    }

    #[test]
    fn bind_reason_never_contains_the_password() {
        let password = "p".repeat(300);
        let Inbound::Invalid { reason, .. } =
            decode(BIND_TRANSMITTER, bind_body("esme", &password))
        else {
            panic!("expected Invalid");
        };
        assert!(!reason.contains(&password[..20]));
    }

    #[test]
    fn bind_field_limits() {
        let body = Body::default().c("esme").c("pw").c(&"t".repeat(13));
        assert_eq!(rejected(BIND_TRANSMITTER, body), ESME_RINVSYSTYP);

        let body = Body::default()
            .c("esme")
            .c("pw")
            .c("")
            .u8(0x34)
            .u8(0)
            .u8(0)
            .c(&"1".repeat(41));
        assert_eq!(rejected(BIND_TRANSMITTER, body), ESME_RBINDFAIL);
    }

    #[test]
    fn bind_truncation_and_trailing_bytes_are_command_length_errors() {
        let body = Body::default().c("esme").c("pw").c("").u8(0x34).u8(0);
        assert_eq!(rejected(BIND_TRANSMITTER, body), ESME_RINVCMDLEN);
        let body = Body::default().c("esme").raw(b"unterminated");
        assert_eq!(rejected(BIND_TRANSMITTER, body), ESME_RINVCMDLEN);
        let body = bind_body("esme", "pw").tlv(tag::SC_INTERFACE_VERSION, &[0x34]);
        assert_eq!(rejected(BIND_TRANSMITTER, body), ESME_RINVCMDLEN);
    }

    #[test]
    fn c_strings_decode_as_latin1() {
        let body = Body::default()
            .raw(b"caf\xe9\xff")
            .u8(0)
            .c("pw")
            .c("")
            .u8(0x34)
            .u8(0)
            .u8(0)
            .c("");
        let Request::Bind(bind) = request(BIND_TRANSMITTER, body) else {
            panic!("not a bind");
        };
        assert_eq!(bind.system_id, "caf\u{e9}\u{ff}");
    }

    #[test]
    fn decodes_submit_sm_with_tlvs() {
        let body = submit_sm(b"hello")
            .tlv(tag::SAR_MSG_REF_NUM, &[0x12, 0x34])
            .tlv(tag::SAR_TOTAL_SEGMENTS, &[2])
            .tlv(tag::SAR_SEGMENT_SEQNUM, &[1])
            .tlv(0x1401, b"vendor")
            .tlv(0x1402, b"");
        let Request::SubmitSm(sm) = request(SUBMIT_SM, body) else {
            panic!("not a submit_sm");
        };
        assert_eq!(
            sm,
            SubmitSm {
                service_type: "CMT".into(),
                source: addr(1, 1, "Sender"),
                destination: addr(1, 1, "447700900123"),
                esm_class: 0x40,
                protocol_id: 0,
                priority_flag: 1,
                schedule_delivery_time: String::new(),
                validity_period: "000001000000000R".into(),
                registered_delivery: 1,
                replace_if_present_flag: 0,
                data_coding: 8,
                sm_default_msg_id: 0,
                short_message: Bytes::from_static(b"hello"),
                tlvs: vec![
                    Tlv {
                        tag: tag::SAR_MSG_REF_NUM,
                        value: Bytes::from_static(&[0x12, 0x34]),
                    },
                    Tlv {
                        tag: tag::SAR_TOTAL_SEGMENTS,
                        value: Bytes::from_static(&[2]),
                    },
                    Tlv {
                        tag: tag::SAR_SEGMENT_SEQNUM,
                        value: Bytes::from_static(&[1]),
                    },
                    Tlv {
                        tag: 0x1401,
                        value: Bytes::from_static(b"vendor"),
                    },
                    Tlv {
                        tag: 0x1402,
                        value: Bytes::new(),
                    },
                ],
            }
        );
        assert_eq!(
            find_tlv(&sm.tlvs, 0x1401).map(|t| &t.value[..]),
            Some(&b"vendor"[..])
        );
        assert!(find_tlv(&sm.tlvs, tag::MESSAGE_PAYLOAD).is_none());
    }

    #[test]
    fn truncated_mandatory_fields_are_command_length_errors() {
        let body = Body::default()
            .c("")
            .u8(1)
            .u8(1)
            .c("Sender")
            .u8(1)
            .u8(1)
            .raw(b"4477009");
        assert_eq!(rejected(SUBMIT_SM, body), ESME_RINVCMDLEN);
        // Ends right before sm_length.
        assert_eq!(rejected(SUBMIT_SM, submit_sm_head()), ESME_RINVCMDLEN);
        assert_eq!(rejected(SUBMIT_SM, Body::default()), ESME_RINVCMDLEN);
    }

    #[test]
    fn sm_length_beyond_the_frame_or_254_is_a_message_length_error() {
        let body = submit_sm_head().u8(10).raw(b"abc");
        assert_eq!(rejected(SUBMIT_SM, body), ESME_RINVMSGLEN);
        let body = submit_sm_head().u8(255).raw(&[b'x'; 255]);
        assert_eq!(rejected(SUBMIT_SM, body), ESME_RINVMSGLEN);
        let Request::SubmitSm(sm) = request(SUBMIT_SM, submit_sm(&[b'x'; 254])) else {
            panic!("not a submit_sm");
        };
        assert_eq!(sm.short_message.len(), 254);
    }

    #[test]
    fn address_and_service_type_limits() {
        let body = Body::default().c("CMTXYZ").u8(1).u8(1).c("src");
        assert!(
            matches!(decode(SUBMIT_SM, body), Inbound::Invalid { status, .. } if status == ESME_RINVCMDLEN)
        );
        assert_eq!(
            rejected(SUBMIT_SM, Body::default().c("CMTXYZ7")),
            ESME_RINVSERTYP
        );
        let body = Body::default().c("").u8(1).u8(1).c(&"1".repeat(21));
        assert_eq!(rejected(SUBMIT_SM, body), ESME_RINVSRCADR);
        let body = Body::default()
            .c("")
            .u8(1)
            .u8(1)
            .c(&"1".repeat(20))
            .u8(1)
            .u8(1)
            .c(&"2".repeat(21));
        assert_eq!(rejected(SUBMIT_SM, body), ESME_RINVDSTADR);
    }

    #[test]
    fn schedule_and_validity_must_be_empty_or_16_characters() {
        let with_times = |schedule: &str, validity: &str| {
            Body::default()
                .c("")
                .u8(1)
                .u8(1)
                .c("src")
                .u8(1)
                .u8(1)
                .c("dst")
                .u8(0)
                .u8(0)
                .u8(0)
                .c(schedule)
                .c(validity)
                .u8(0)
                .u8(0)
                .u8(0)
                .u8(0)
                .u8(0)
        };
        assert!(matches!(
            decode(SUBMIT_SM, with_times("", "")),
            Inbound::Request { .. }
        ));
        assert_eq!(
            rejected(SUBMIT_SM, with_times("00000100000000R", "")),
            ESME_RINVSCHED
        );
        assert_eq!(
            rejected(SUBMIT_SM, with_times("0000010000000000R", "")),
            ESME_RINVSCHED
        );
        assert_eq!(
            rejected(SUBMIT_SM, with_times("", "0000010000000R")),
            ESME_RINVEXPIRY
        );
    }

    #[test]
    fn tlv_stream_errors() {
        for stray in 1..=3 {
            let body = submit_sm(b"hi").raw(&[0, 0, 0][..stray]);
            assert_eq!(rejected(SUBMIT_SM, body), ESME_RINVOPTPARSTREAM);
        }
        let body = submit_sm(b"hi").raw(&[0x04, 0x24, 0x00, 0x10, b'a', b'b']);
        assert_eq!(rejected(SUBMIT_SM, body), ESME_RINVPARLEN);
        let body = submit_sm(b"hi")
            .tlv(0x1400, b"ok")
            .raw(&[0x14, 0x01, 0xff, 0xff]);
        assert_eq!(rejected(SUBMIT_SM, body), ESME_RINVPARLEN);
    }

    #[test]
    fn fixed_size_tlvs_with_the_wrong_length_are_rejected() {
        for (tag, len) in [
            (tag::SAR_MSG_REF_NUM, 2),
            (tag::SAR_TOTAL_SEGMENTS, 1),
            (tag::SAR_SEGMENT_SEQNUM, 1),
            (tag::SOURCE_PORT, 2),
            (tag::DESTINATION_PORT, 2),
            (tag::PAYLOAD_TYPE, 1),
            (tag::USER_MESSAGE_REFERENCE, 2),
        ] {
            let good = submit_sm(b"").tlv(tag, &vec![1; len]);
            assert!(matches!(decode(SUBMIT_SM, good), Inbound::Request { .. }));
            for wrong in [0, len + 1] {
                let body = submit_sm(b"").tlv(tag, &vec![1; wrong]);
                assert_eq!(rejected(SUBMIT_SM, body), ESME_RINVPARLEN, "tag {tag:04X}");
            }
        }
    }

    fn submit_multi_head(count: u8) -> Body {
        Body::default().c("").u8(5).u8(0).c("Brand").u8(count)
    }

    fn submit_multi_tail(body: Body) -> Body {
        body.u8(0)
            .u8(0)
            .u8(0)
            .c("")
            .c("")
            .u8(1)
            .u8(0)
            .u8(0)
            .u8(0)
            .u8(3)
            .raw(b"abc")
    }

    #[test]
    fn decodes_submit_multi() {
        let body = submit_multi_head(2)
            .u8(1)
            .u8(1)
            .u8(1)
            .c("447700900001")
            .u8(2)
            .c("friends");
        let body = submit_multi_tail(body).tlv(tag::USER_MESSAGE_REFERENCE, &[0, 9]);
        let Request::SubmitMulti(sm) = request(SUBMIT_MULTI, body) else {
            panic!("not a submit_multi");
        };
        assert_eq!(sm.source, addr(5, 0, "Brand"));
        assert_eq!(
            sm.destinations,
            vec![
                DestAddress::Sme(addr(1, 1, "447700900001")),
                DestAddress::DistributionList("friends".into()),
            ]
        );
        assert_eq!(sm.registered_delivery, 1);
        assert_eq!(&sm.short_message[..], b"abc");
        assert_eq!(sm.tlvs.len(), 1);
    }

    #[test]
    fn submit_multi_destination_errors() {
        assert_eq!(
            rejected(SUBMIT_MULTI, submit_multi_tail(submit_multi_head(0))),
            ESME_RINVNUMDESTS
        );
        assert_eq!(
            rejected(SUBMIT_MULTI, submit_multi_head(255)),
            ESME_RINVNUMDESTS
        );
        let body = submit_multi_tail(submit_multi_head(1).u8(3).u8(1).u8(1).c("1"));
        assert_eq!(rejected(SUBMIT_MULTI, body), ESME_RINVDESTFLAG);
        let body = submit_multi_tail(submit_multi_head(1).u8(2).c(&"d".repeat(21)));
        assert_eq!(rejected(SUBMIT_MULTI, body), ESME_RINVDLNAME);
        let body = submit_multi_tail(submit_multi_head(1).u8(1).u8(1).u8(1).c(&"9".repeat(21)));
        assert_eq!(rejected(SUBMIT_MULTI, body), ESME_RINVDSTADR);
        // Declares two destinations, carries one.
        let body = submit_multi_head(2).u8(1).u8(1).u8(1).c("1");
        assert_eq!(rejected(SUBMIT_MULTI, body), ESME_RINVCMDLEN);
    }

    #[test]
    fn decodes_data_sm() {
        let body = Body::default()
            .c("WAP")
            .u8(1)
            .u8(1)
            .c("src")
            .u8(1)
            .u8(1)
            .c("dst")
            .u8(0)
            .u8(1)
            .u8(4)
            .tlv(tag::MESSAGE_PAYLOAD, b"payload")
            .tlv(tag::SOURCE_PORT, &[0x0b, 0x84]);
        assert_eq!(
            request(DATA_SM, body),
            Request::DataSm(DataSm {
                service_type: "WAP".into(),
                source: addr(1, 1, "src"),
                destination: addr(1, 1, "dst"),
                esm_class: 0,
                registered_delivery: 1,
                data_coding: 4,
                tlvs: vec![
                    Tlv {
                        tag: tag::MESSAGE_PAYLOAD,
                        value: Bytes::from_static(b"payload"),
                    },
                    Tlv {
                        tag: tag::SOURCE_PORT,
                        value: Bytes::from_static(&[0x0b, 0x84]),
                    },
                ],
            })
        );
    }

    #[test]
    fn decodes_query_sm_and_rejects_trailing_bytes() {
        let body = || Body::default().c("abc-123").u8(1).u8(1).c("src");
        assert_eq!(
            request(QUERY_SM, body()),
            Request::QuerySm(QuerySm {
                message_id: "abc-123".into(),
                source: addr(1, 1, "src"),
            })
        );
        assert_eq!(rejected(QUERY_SM, body().u8(0)), ESME_RINVCMDLEN);
        let body = Body::default().c(&"m".repeat(65)).u8(1).u8(1).c("src");
        assert_eq!(rejected(QUERY_SM, body), ESME_RINVMSGID);
    }

    #[test]
    fn decodes_cancel_sm() {
        let body = || {
            Body::default()
                .c("")
                .c("id-1")
                .u8(1)
                .u8(1)
                .c("src")
                .u8(2)
                .u8(3)
                .c("dst")
        };
        assert_eq!(
            request(CANCEL_SM, body()),
            Request::CancelSm(CancelSm {
                service_type: String::new(),
                message_id: "id-1".into(),
                source: addr(1, 1, "src"),
                destination: addr(2, 3, "dst"),
            })
        );
        assert_eq!(rejected(CANCEL_SM, body().raw(b"xx")), ESME_RINVCMDLEN);
    }

    #[test]
    fn decodes_replace_sm() {
        let body = || {
            Body::default()
                .c("id-1")
                .u8(1)
                .u8(1)
                .c("src")
                .c("")
                .c("000000010000000R")
                .u8(1)
                .u8(0)
                .u8(2)
                .raw(b"hi")
        };
        assert_eq!(
            request(REPLACE_SM, body()),
            Request::ReplaceSm(ReplaceSm {
                message_id: "id-1".into(),
                source: addr(1, 1, "src"),
                schedule_delivery_time: String::new(),
                validity_period: "000000010000000R".into(),
                registered_delivery: 1,
                sm_default_msg_id: 0,
                short_message: Bytes::from_static(b"hi"),
            })
        );
        assert_eq!(rejected(REPLACE_SM, body().u8(0)), ESME_RINVCMDLEN);
    }

    #[test]
    fn enquire_link_and_unbind_must_have_no_body() {
        assert_eq!(request(ENQUIRE_LINK, Body::default()), Request::EnquireLink);
        assert_eq!(request(UNBIND, Body::default()), Request::Unbind);
        assert_eq!(
            rejected(ENQUIRE_LINK, Body::default().u8(0)),
            ESME_RINVCMDLEN
        );
        assert_eq!(rejected(UNBIND, Body::default().c("x")), ESME_RINVCMDLEN);
    }

    #[test]
    fn ids_that_are_not_esme_requests_are_invalid_command_ids() {
        for id in [
            0x0000_0000,
            0x0000_0099,
            0x8000_0099,
            DELIVER_SM,
            OUTBIND,
            ALERT_NOTIFICATION,
            BROADCAST_SM,
            QUERY_BROADCAST_SM,
            CANCEL_BROADCAST_SM,
            BROADCAST_SM_RESP,
        ] {
            assert_eq!(rejected(id, Body::default()), ESME_RINVCMDID, "0x{id:08X}");
            assert_eq!(ResponseBody::error_for(id), ResponseBody::GenericNack);
        }
    }

    #[test]
    fn request_header_status_is_ignored() {
        let inbound = decode_pdu(ENQUIRE_LINK, ESME_RSYSERR, 3, Bytes::new());
        assert_eq!(
            inbound,
            Inbound::Request {
                sequence_number: 3,
                request: Request::EnquireLink,
            }
        );
    }

    #[test]
    fn responses_never_fail() {
        let cases: [(u32, &[u8], Option<&str>); 7] = [
            (DELIVER_SM_RESP, b"\0", None),
            (DELIVER_SM_RESP, b"", None),
            (DELIVER_SM_RESP, b"id-9\0", Some("id-9")),
            (DATA_SM_RESP, b"id-7\0\x04\x25\x00\x01\x00", Some("id-7")),
            (DATA_SM_RESP, b"no-nul", Some("no-nul")),
            (ENQUIRE_LINK_RESP, b"junk", None),
            (GENERIC_NACK, b"", None),
        ];
        for (id, body, message_id) in cases {
            assert_eq!(
                decode_pdu(id, ESME_RX_T_APPN, 11, Bytes::from_static(body)),
                Inbound::Response {
                    command_id: id,
                    command_status: ESME_RX_T_APPN,
                    sequence_number: 11,
                    message_id: message_id.map(String::from),
                }
            );
        }
    }

    #[test]
    fn error_for_maps_requests_to_their_own_response() {
        assert_eq!(
            ResponseBody::error_for(BIND_RECEIVER),
            ResponseBody::Empty {
                command_id: BIND_RECEIVER_RESP
            }
        );
        assert_eq!(
            ResponseBody::error_for(SUBMIT_MULTI).command_id(),
            SUBMIT_MULTI_RESP
        );
        assert_eq!(
            ResponseBody::error_for(ENQUIRE_LINK).command_id(),
            ENQUIRE_LINK_RESP
        );
        assert_eq!(
            ResponseBody::error_for(DELIVER_SM).command_id(),
            GENERIC_NACK
        );
    }

    #[test]
    fn encodes_bind_responses() {
        let body = |sc_interface_version| ResponseBody::Bind {
            kind: BindKind::Transceiver,
            system_id: "SMSGATE".into(),
            sc_interface_version,
        };
        let mut want = header(24, BIND_TRANSCEIVER_RESP, ESME_ROK, SEQ);
        want.extend_from_slice(b"SMSGATE\0");
        assert_eq!(encoded(response(ESME_ROK, body(None))), want);

        let mut want = header(29, BIND_TRANSCEIVER_RESP, ESME_ROK, SEQ);
        want.extend_from_slice(b"SMSGATE\0\x02\x10\x00\x01\x34");
        assert_eq!(encoded(response(ESME_ROK, body(Some(0x34)))), want);
    }

    #[test]
    fn error_responses_are_header_only() {
        let bind = ResponseBody::Bind {
            kind: BindKind::Receiver,
            system_id: "SMSGATE".into(),
            sc_interface_version: Some(0x34),
        };
        assert_eq!(
            encoded(response(ESME_RINVPASWD, bind)),
            header(16, BIND_RECEIVER_RESP, ESME_RINVPASWD, SEQ)
        );
        let multi = ResponseBody::SubmitMulti {
            message_id: "x".into(),
            unsuccess: vec![],
        };
        assert_eq!(
            encoded(response(ESME_RTHROTTLED, multi)),
            header(16, SUBMIT_MULTI_RESP, ESME_RTHROTTLED, SEQ)
        );
        assert_eq!(
            encoded(response(ESME_RINVCMDLEN, ResponseBody::error_for(QUERY_SM))),
            header(16, QUERY_SM_RESP, ESME_RINVCMDLEN, SEQ)
        );
    }

    #[test]
    fn encodes_message_id_responses() {
        for (body, id) in [
            (
                ResponseBody::SubmitSm {
                    message_id: "abc".into(),
                },
                SUBMIT_SM_RESP,
            ),
            (
                ResponseBody::DataSm {
                    message_id: "abc".into(),
                },
                DATA_SM_RESP,
            ),
        ] {
            let mut want = header(20, id, ESME_ROK, SEQ);
            want.extend_from_slice(b"abc\0");
            assert_eq!(encoded(response(ESME_ROK, body)), want);
        }
    }

    #[test]
    fn encodes_submit_multi_resp() {
        let body = ResponseBody::SubmitMulti {
            message_id: "m1".into(),
            unsuccess: vec![
                UnsuccessSme {
                    address: addr(1, 1, "4477"),
                    error_status: ESME_RINVDSTADR,
                },
                UnsuccessSme {
                    address: addr(0, 0, ""),
                    error_status: ESME_RSUBMITFAIL,
                },
            ],
        };
        let mut want = header(16 + 3 + 1 + 11 + 7, SUBMIT_MULTI_RESP, ESME_ROK, SEQ);
        want.extend_from_slice(b"m1\0\x02");
        want.extend_from_slice(b"\x01\x014477\0\x00\x00\x00\x0b");
        want.extend_from_slice(b"\x00\x00\0\x00\x00\x00\x45");
        assert_eq!(encoded(response(ESME_ROK, body)), want);
    }

    #[test]
    fn encodes_query_sm_resp() {
        let body = ResponseBody::QuerySm {
            message_id: "q".into(),
            final_date: "250101120000000+".into(),
            message_state: 2,
            error_code: 0,
        };
        let mut want = header(16 + 2 + 17 + 2, QUERY_SM_RESP, ESME_ROK, SEQ);
        want.extend_from_slice(b"q\x00250101120000000+\0\x02\x00");
        assert_eq!(encoded(response(ESME_ROK, body)), want);
    }

    #[test]
    fn encodes_header_only_pdus() {
        for (body, id) in [
            (ResponseBody::CancelSm, CANCEL_SM_RESP),
            (ResponseBody::ReplaceSm, REPLACE_SM_RESP),
            (ResponseBody::EnquireLink, ENQUIRE_LINK_RESP),
            (ResponseBody::Unbind, UNBIND_RESP),
            (ResponseBody::GenericNack, GENERIC_NACK),
            (
                ResponseBody::Empty {
                    command_id: DATA_SM_RESP,
                },
                DATA_SM_RESP,
            ),
        ] {
            assert_eq!(
                encoded(response(ESME_ROK, body)),
                header(16, id, ESME_ROK, SEQ)
            );
        }
        let link = Outbound::EnquireLink {
            sequence_number: 42,
        };
        assert_eq!(link.command_id(), ENQUIRE_LINK);
        assert_eq!(encoded(link), header(16, ENQUIRE_LINK, ESME_ROK, 42));
        assert_eq!(
            encoded(Outbound::Unbind {
                sequence_number: 43
            }),
            header(16, UNBIND, ESME_ROK, 43)
        );
    }

    #[test]
    fn encode_appends_to_a_batch() {
        let mut dst = BytesMut::new();
        encode_pdu(&Outbound::EnquireLink { sequence_number: 1 }, &mut dst);
        encode_pdu(
            &response(
                ESME_ROK,
                ResponseBody::SubmitSm {
                    message_id: "a".into(),
                },
            ),
            &mut dst,
        );
        let mut want = header(16, ENQUIRE_LINK, ESME_ROK, 1);
        want.extend(header(18, SUBMIT_SM_RESP, ESME_ROK, SEQ));
        want.extend_from_slice(b"a\0");
        assert_eq!(dst.to_vec(), want);
    }

    #[test]
    fn encoded_strings_are_latin1_without_embedded_nul() {
        let body = ResponseBody::SubmitSm {
            message_id: "\u{e9}\u{20ac}a\0b".into(),
        };
        let bytes = encoded(response(ESME_ROK, body));
        assert_eq!(&bytes[16..], b"\xe9?a?b\0");
    }

    #[test]
    fn tlv_debug_names_known_tags() {
        let tlv = Tlv {
            tag: tag::MESSAGE_PAYLOAD,
            value: Bytes::from_static(b"x"),
        };
        assert!(format!("{tlv:?}").contains("message_payload (0x0424)"));
        let tlv = Tlv {
            tag: 0x1400,
            value: Bytes::new(),
        };
        assert!(format!("{tlv:?}").contains("0x1400"));
    }

    fn deliver_sm(short_message: &'static [u8], tlvs: Vec<Tlv>) -> DeliverSm {
        DeliverSm {
            service_type: String::new(),
            source: addr(1, 1, "447700900123"),
            destination: addr(5, 0, "Brand"),
            esm_class: 0x04,
            protocol_id: 0,
            priority_flag: 0,
            registered_delivery: 0,
            data_coding: 0,
            short_message: Bytes::from_static(short_message),
            tlvs,
        }
    }

    #[test]
    fn encodes_deliver_sm() {
        let out = Outbound::DeliverSm {
            sequence_number: 9,
            body: deliver_sm(b"id:1", Vec::new()).encode(),
        };
        assert_eq!(out.command_id(), DELIVER_SM);
        assert_eq!(out.command_status(), ESME_ROK);
        assert_eq!(out.sequence_number(), 9);
        let mut want = header(16 + 38, DELIVER_SM, ESME_ROK, 9);
        want.extend_from_slice(b"\0");
        want.extend_from_slice(b"\x01\x01447700900123\0");
        want.extend_from_slice(b"\x05\x00Brand\0");
        // esm_class, protocol_id, priority_flag, empty schedule and validity,
        // registered_delivery, replace_if_present_flag, data_coding,
        // sm_default_msg_id, sm_length.
        want.extend_from_slice(b"\x04\x00\x00\0\0\x00\x00\x00\x00\x04");
        want.extend_from_slice(b"id:1");
        assert_eq!(encoded(out), want);
    }

    #[test]
    fn deliver_sm_tlvs_follow_the_short_message() {
        let pdu = deliver_sm(
            b"",
            vec![
                Tlv {
                    tag: tag::RECEIPTED_MESSAGE_ID,
                    value: Bytes::from_static(b"m1\0"),
                },
                Tlv {
                    tag: tag::MESSAGE_STATE,
                    value: Bytes::from_static(&[2]),
                },
            ],
        );
        let bytes = encoded(Outbound::DeliverSm {
            sequence_number: 1,
            body: pdu.encode(),
        });
        let body_end = 16 + 34;
        assert_eq!(bytes[body_end - 1], 0, "sm_length");
        assert_eq!(
            &bytes[body_end..],
            b"\x00\x1e\x00\x03m1\0\x04\x27\x00\x01\x02"
        );
        assert_eq!(
            u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize,
            bytes.len()
        );
    }

    #[test]
    fn rusmpp_decodes_our_deliver_sm() {
        use rusmpp::{
            Pdu,
            tlvs::TlvValue,
            tokio_codec::CommandCodec,
            values::{ErrorCodeNetworkType, MessageState},
        };
        use tokio_util::codec::Decoder;

        let mut pdu = deliver_sm(
            b"id:m-1 sub:001 dlvrd:000",
            vec![
                Tlv {
                    tag: tag::RECEIPTED_MESSAGE_ID,
                    value: Bytes::from_static(b"m-1\0"),
                },
                Tlv {
                    tag: tag::MESSAGE_STATE,
                    value: Bytes::from_static(&[5]),
                },
                Tlv {
                    tag: tag::NETWORK_ERROR_CODE,
                    value: Bytes::from_static(&[3, 0x00, 0x22]),
                },
            ],
        );
        pdu.service_type = "CMT".into();
        pdu.data_coding = 8;
        let mut buf = BytesMut::new();
        encode_pdu(
            &Outbound::DeliverSm {
                sequence_number: 77,
                body: pdu.encode(),
            },
            &mut buf,
        );
        let command = CommandCodec::new()
            .decode(&mut buf)
            .unwrap()
            .expect("one whole PDU");
        assert!(buf.is_empty());
        assert_eq!(command.sequence_number(), 77);
        assert_eq!(u32::from(command.id()), DELIVER_SM);
        let Some(Pdu::DeliverSm(sm)) = command.pdu() else {
            panic!("{command:?}");
        };
        assert_eq!(sm.service_type.value().as_str(), "CMT");
        assert_eq!(sm.source_addr.as_str(), "447700900123");
        assert_eq!(sm.destination_addr.as_str(), "Brand");
        assert_eq!(u8::from(sm.esm_class), 0x04);
        assert_eq!(u8::from(sm.data_coding), 8);
        assert!(sm.schedule_delivery_time.as_str().is_empty());
        assert!(sm.validity_period.as_str().is_empty());
        assert_eq!(sm.short_message().as_ref(), b"id:m-1 sub:001 dlvrd:000");
        let values: Vec<_> = sm.tlvs().iter().filter_map(|t| t.value()).collect();
        let [
            TlvValue::ReceiptedMessageId(id),
            TlvValue::MessageState(state),
            TlvValue::NetworkErrorCode(error),
        ] = values[..]
        else {
            panic!("{:?}", sm.tlvs());
        };
        assert_eq!(id.as_str(), "m-1");
        assert_eq!(*state, MessageState::Undeliverable);
        assert_eq!(error.network_type, ErrorCodeNetworkType::Gsm);
        assert_eq!(error.error_code, 0x22);
    }
}
