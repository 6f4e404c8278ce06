//! A minimal ESME: requests are encoded with rusmpp where rusmpp can express them and written as
//! raw bytes where it cannot (long credentials, malformed PDUs); everything the server sends is
//! read as raw frames, so the tests see exactly the bytes on the wire.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use rusmpp::pdus::builders::SubmitSmBuilder;
use rusmpp::pdus::{BindReceiver, BindTransceiver, BindTransmitter, QuerySm, SubmitSm};
use rusmpp::tokio_codec::CommandCodec;
use rusmpp::types::OctetString;
use rusmpp::values::{
    DataCoding, EsmClass, InterfaceVersion, Npi, PriorityFlag, RegisteredDelivery, Ton,
};
use rusmpp::{Command, Pdu};
use smpp_codec::command::{
    BIND_RECEIVER, BIND_TRANSCEIVER, BIND_TRANSMITTER, DELIVER_SM, DELIVER_SM_RESP, ENQUIRE_LINK,
    ENQUIRE_LINK_RESP, RESPONSE_BIT, UNBIND_RESP,
};
use smpp_codec::status::{CommandStatus, ESME_ROK};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Encoder;

/// Long enough for any answer of a healthy server, short enough that a broken one fails the
/// test instead of hanging it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a deliver_sm may take to come: a webhook round trip with an fsync, on a slow
/// machine running many tests at once.
pub const DELIVER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindKind {
    Transmitter,
    Receiver,
    Transceiver,
}

impl BindKind {
    pub fn command_id(self) -> u32 {
        match self {
            BindKind::Transmitter => BIND_TRANSMITTER,
            BindKind::Receiver => BIND_RECEIVER,
            BindKind::Transceiver => BIND_TRANSCEIVER,
        }
    }
}

/// The rusmpp field types parse from text; every literal in these tests is valid for its field.
pub fn field<T: FromStr>(text: &str) -> T
where
    T::Err: fmt::Debug,
{
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} does not fit the field: {e:?}"))
}

pub fn octets(bytes: &[u8]) -> OctetString<0, 255> {
    OctetString::from_slice(bytes).expect("short_message fits 255 octets")
}

/// submit_sm to an international number with every field that rusmpp defaults unhelpfully set
/// explicitly (its `EsmClass::default()` is 0x08, not 0).
pub fn submit_sm(destination: &str) -> SubmitSmBuilder {
    SubmitSm::builder()
        .source_addr_ton(Ton::from(1u8))
        .source_addr_npi(Npi::from(1u8))
        .source_addr(field("4930123456"))
        .dest_addr_ton(Ton::from(1u8))
        .dest_addr_npi(Npi::from(1u8))
        .destination_addr(field(destination))
        .esm_class(EsmClass::from(0x00u8))
        .protocol_id(0)
        .priority_flag(PriorityFlag::from(0u8))
        .registered_delivery(RegisteredDelivery::from(0u8))
        .data_coding(DataCoding::from(0u8))
        .sm_default_msg_id(0)
}

pub fn query_sm(message_id: &str) -> QuerySm {
    QuerySm::builder()
        .message_id(field(message_id))
        .source_addr_ton(Ton::from(1u8))
        .source_addr_npi(Npi::from(1u8))
        .source_addr(field("4930123456"))
        .build()
}

/// A PDU body written field by field, for what rusmpp refuses to encode.
#[derive(Default, Clone)]
pub struct Body(pub Vec<u8>);

impl Body {
    pub fn new() -> Self {
        Body::default()
    }

    /// A C-Octet String with its NUL.
    pub fn c(mut self, s: &str) -> Self {
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        self
    }

    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    pub fn raw(mut self, raw: &[u8]) -> Self {
        self.0.extend_from_slice(raw);
        self
    }

    pub fn tlv(mut self, tag: u16, value: &[u8]) -> Self {
        self.0.extend_from_slice(&tag.to_be_bytes());
        let len = u16::try_from(value.len()).expect("TLV value fits u16");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(value);
        self
    }

    /// A bind body with credentials of any length.
    pub fn bind(system_id: &str, password: &[u8]) -> Self {
        Body::new()
            .c(system_id)
            .raw(password)
            .u8(0)
            .c("")
            .u8(0x34)
            .u8(0)
            .u8(0)
            .c("")
    }

    /// submit_sm up to and including sm_default_msg_id: international destination, GSM 7.
    pub fn submit_sm_head(destination: &str) -> Self {
        Body::new()
            .c("")
            .u8(1)
            .u8(1)
            .c("4930123456")
            .u8(1)
            .u8(1)
            .c(destination)
            .u8(0)
            .u8(0)
            .u8(0)
            .c("")
            .c("")
            .u8(0)
            .u8(0)
            .u8(0)
            .u8(0)
    }
}

/// One whole PDU: header with the real command_length, then `body`.
pub fn pdu_bytes(command_id: u32, sequence: u32, body: &[u8]) -> Vec<u8> {
    header(
        u32::try_from(16 + body.len()).expect("PDU length"),
        command_id,
        sequence,
    )
    .into_iter()
    .chain(body.iter().copied())
    .collect()
}

/// A header whose command_length may lie.
pub fn header(command_length: u32, command_id: u32, sequence: u32) -> Vec<u8> {
    [command_length, command_id, ESME_ROK.0, sequence]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

/// One PDU as the server sent it.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub command_id: u32,
    pub status: CommandStatus,
    pub sequence: u32,
    pub body: Bytes,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Frame {{ command_id: 0x{:08X}, status: {}, sequence: {}, body: {:02X?} }}",
            self.command_id,
            self.status,
            self.sequence,
            &self.body[..]
        )
    }
}

/// Reads the fields of a response body in order.
pub struct Fields(Bytes);

impl Fields {
    pub fn c_string(&mut self) -> String {
        let nul = self
            .0
            .iter()
            .position(|&b| b == 0)
            .unwrap_or_else(|| panic!("no NUL in {:02X?}", &self.0[..]));
        let value = self.0.split_to(nul);
        self.0.advance(1);
        value.iter().copied().map(char::from).collect()
    }

    pub fn u8(&mut self) -> u8 {
        assert!(!self.0.is_empty(), "body ends early");
        self.0.get_u8()
    }

    pub fn u32(&mut self) -> u32 {
        assert!(self.0.len() >= 4, "body ends early");
        self.0.get_u32()
    }

    pub fn bytes(&mut self, len: usize) -> Bytes {
        assert!(self.0.len() >= len, "body ends early");
        self.0.split_to(len)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn tlvs(mut self) -> Vec<(u16, Bytes)> {
        let mut tlvs = Vec::new();
        while !self.0.is_empty() {
            assert!(self.0.len() >= 4, "stray octets after the TLVs");
            let tag = self.0.get_u16();
            let len = usize::from(self.0.get_u16());
            assert!(self.0.len() >= len, "TLV 0x{tag:04X} overruns the body");
            tlvs.push((tag, self.0.split_to(len)));
        }
        tlvs
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct QueryResp {
    pub message_id: String,
    pub final_date: String,
    pub message_state: u8,
    pub error_code: u8,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Unsuccess {
    pub ton: u8,
    pub npi: u8,
    pub addr: String,
    pub error: CommandStatus,
}

impl Frame {
    pub fn fields(&self) -> Fields {
        Fields(self.body.clone())
    }

    /// submit_sm_resp and data_sm_resp: the body is the message_id alone.
    pub fn message_id(&self) -> String {
        let mut fields = self.fields();
        let id = fields.c_string();
        assert!(fields.is_empty(), "octets after message_id: {self:?}");
        id
    }

    /// bind_*_resp: system_id and the TLVs after it.
    pub fn bind_resp(&self) -> (String, Vec<(u16, Bytes)>) {
        let mut fields = self.fields();
        let system_id = fields.c_string();
        (system_id, fields.tlvs())
    }

    pub fn query_resp(&self) -> QueryResp {
        let mut fields = self.fields();
        let resp = QueryResp {
            message_id: fields.c_string(),
            final_date: fields.c_string(),
            message_state: fields.u8(),
            error_code: fields.u8(),
        };
        assert!(fields.is_empty(), "octets after error_code: {self:?}");
        resp
    }

    pub fn submit_multi_resp(&self) -> (String, Vec<Unsuccess>) {
        let mut fields = self.fields();
        let message_id = fields.c_string();
        let count = fields.u8();
        let unsuccess = (0..count)
            .map(|_| Unsuccess {
                ton: fields.u8(),
                npi: fields.u8(),
                addr: fields.c_string(),
                error: CommandStatus(fields.u32()),
            })
            .collect();
        assert!(fields.is_empty(), "octets after unsuccess_sme: {self:?}");
        (message_id, unsuccess)
    }

    /// Asserts a response's identity: command_id, status and the request's sequence number.
    #[track_caller]
    pub fn expect(&self, command_id: u32, status: CommandStatus, sequence: u32) {
        assert_eq!(
            (self.command_id, self.status, self.sequence),
            (command_id, status, sequence),
            "unexpected frame {self:?}"
        );
    }
}

/// A deliver_sm as the server sent it, field by field.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliverSm {
    pub sequence: u32,
    pub service_type: String,
    pub source_ton: u8,
    pub source_npi: u8,
    pub source_addr: String,
    pub dest_ton: u8,
    pub dest_npi: u8,
    pub dest_addr: String,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: String,
    pub validity_period: String,
    pub registered_delivery: u8,
    pub replace_if_present: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    pub short_message: Bytes,
    pub tlvs: Vec<(u16, Bytes)>,
}

impl fmt::Debug for DeliverSm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliverSm")
            .field("sequence", &self.sequence)
            .field("service_type", &self.service_type)
            .field(
                "source",
                &(self.source_ton, self.source_npi, &self.source_addr),
            )
            .field("dest", &(self.dest_ton, self.dest_npi, &self.dest_addr))
            .field("esm_class", &format_args!("0x{:02X}", self.esm_class))
            .field("protocol_id", &self.protocol_id)
            .field("priority_flag", &self.priority_flag)
            .field("schedule_delivery_time", &self.schedule_delivery_time)
            .field("validity_period", &self.validity_period)
            .field("registered_delivery", &self.registered_delivery)
            .field("replace_if_present", &self.replace_if_present)
            .field("data_coding", &self.data_coding)
            .field("sm_default_msg_id", &self.sm_default_msg_id)
            .field("short_message", &self.text())
            .field(
                "tlvs",
                &self
                    .tlvs
                    .iter()
                    .map(|(tag, value)| format!("0x{tag:04X}={:02X?}", &value[..]))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl DeliverSm {
    /// The value of the TLV with `tag`; a tag sent twice is a failure of its own.
    pub fn tlv(&self, tag: u16) -> Option<&Bytes> {
        let mut found = self.tlvs.iter().filter(|(t, _)| *t == tag);
        let first = found.next().map(|(_, value)| value);
        assert!(found.next().is_none(), "TLV 0x{tag:04X} twice: {self:?}");
        first
    }

    /// short_message with every octet taken as a character: receipts are ASCII, and anything
    /// else shows its bytes legibly enough in a failure message.
    pub fn text(&self) -> String {
        self.short_message.iter().copied().map(char::from).collect()
    }

    /// Everything but the sequence number: what must not change when a deliver_sm is retried.
    pub fn content(&self) -> DeliverSm {
        DeliverSm {
            sequence: 0,
            ..self.clone()
        }
    }
}

impl Frame {
    pub fn deliver_sm(&self) -> DeliverSm {
        assert_eq!(self.command_id, DELIVER_SM, "not a deliver_sm: {self:?}");
        assert_eq!(self.status, ESME_ROK, "a request with a status: {self:?}");
        let mut f = self.fields();
        let service_type = f.c_string();
        let (source_ton, source_npi, source_addr) = (f.u8(), f.u8(), f.c_string());
        let (dest_ton, dest_npi, dest_addr) = (f.u8(), f.u8(), f.c_string());
        let (esm_class, protocol_id, priority_flag) = (f.u8(), f.u8(), f.u8());
        let (schedule_delivery_time, validity_period) = (f.c_string(), f.c_string());
        let (registered_delivery, replace_if_present) = (f.u8(), f.u8());
        let (data_coding, sm_default_msg_id) = (f.u8(), f.u8());
        let sm_length = usize::from(f.u8());
        let short_message = f.bytes(sm_length);
        DeliverSm {
            sequence: self.sequence,
            service_type,
            source_ton,
            source_npi,
            source_addr,
            dest_ton,
            dest_npi,
            dest_addr,
            esm_class,
            protocol_id,
            priority_flag,
            schedule_delivery_time,
            validity_period,
            registered_delivery,
            replace_if_present,
            data_coding,
            sm_default_msg_id,
            short_message,
            tlvs: f.tlvs(),
        }
    }
}

#[derive(Debug)]
pub enum ReadError {
    Timeout,
    Closed,
}

/// An ESME connection over any byte stream (plain TCP or TLS).
pub struct Client<S = TcpStream> {
    io: S,
    buffer: BytesMut,
    next_sequence: u32,
    codec: CommandCodec,
    /// deliver_sm that came while the client waited for a response, oldest first.
    stashed: VecDeque<Frame>,
}

impl Client<TcpStream> {
    /// The client's end of the link, as the server sees its peer.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.io.local_addr().expect("a connected socket")
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(io: S) -> Self {
        Client {
            io,
            buffer: BytesMut::with_capacity(4096),
            next_sequence: 1,
            codec: CommandCodec::new().without_max_length(),
            stashed: VecDeque::new(),
        }
    }

    /// The connection itself, for tests that misbehave on it.
    pub fn into_io(self) -> S {
        self.io
    }

    pub fn next_sequence(&mut self) -> u32 {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        sequence
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.try_write(bytes).await.expect("write to the server");
    }

    /// A write that may fail, for connections the server is expected to close.
    pub async fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// The bytes of `pdu` under `sequence`, as rusmpp encodes them.
    pub fn encode(&mut self, sequence: u32, pdu: impl Into<Pdu>) -> Vec<u8> {
        let mut out = BytesMut::new();
        self.codec
            .encode(
                Command::new(rusmpp::CommandStatus::EsmeRok, sequence, pdu),
                &mut out,
            )
            .expect("rusmpp encodes the PDU");
        out.to_vec()
    }

    /// Sends a request and returns its sequence number without waiting for the answer.
    pub async fn send(&mut self, pdu: impl Into<Pdu>) -> u32 {
        let sequence = self.next_sequence();
        let bytes = self.encode(sequence, pdu);
        self.write(&bytes).await;
        sequence
    }

    /// Sends a raw PDU with a fresh sequence number.
    pub async fn send_raw(&mut self, command_id: u32, body: &[u8]) -> u32 {
        let sequence = self.next_sequence();
        self.write(&pdu_bytes(command_id, sequence, body)).await;
        sequence
    }

    /// The next PDU from the server, or why there is none.
    pub async fn try_read(&mut self, within: Duration) -> Result<Frame, ReadError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(frame) = self.buffered() {
                return Ok(frame);
            }
            match tokio::time::timeout_at(deadline, self.io.read_buf(&mut self.buffer)).await {
                Err(_) => return Err(ReadError::Timeout),
                // A reset or a TLS stream cut without close_notify is a closed link too.
                Ok(Ok(0)) | Ok(Err(_)) => {
                    assert!(
                        self.buffer.is_empty(),
                        "connection closed inside a PDU: {:02X?}",
                        &self.buffer[..]
                    );
                    return Err(ReadError::Closed);
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next PDU if it has already arrived whole, without waiting for more.
    pub fn buffered(&mut self) -> Option<Frame> {
        if self.buffer.len() < 4 {
            return None;
        }
        let len = u32::from_be_bytes(self.buffer[..4].try_into().unwrap()) as usize;
        assert!(len >= 16, "server sent command_length {len}");
        if self.buffer.len() < len {
            return None;
        }
        let mut frame = self.buffer.split_to(len).freeze();
        frame.advance(4);
        let command_id = frame.get_u32();
        let status = CommandStatus(frame.get_u32());
        let sequence = frame.get_u32();
        Some(Frame {
            command_id,
            status,
            sequence,
            body: frame,
        })
    }

    #[track_caller]
    pub fn read(&mut self) -> impl Future<Output = Frame> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            match self.try_read(READ_TIMEOUT).await {
                Ok(frame) => frame,
                Err(e) => panic!("{caller}: no PDU from the server: {e:?}"),
            }
        }
    }

    /// The answer to request `sequence`; enquire_links the server sends meanwhile are answered,
    /// deliver_sm kept for [`Client::next_deliver_sm`].
    pub async fn response(&mut self, sequence: u32) -> Frame {
        loop {
            let frame = self.read().await;
            if frame.command_id == ENQUIRE_LINK {
                self.write(&pdu_bytes(ENQUIRE_LINK_RESP, frame.sequence, &[]))
                    .await;
                continue;
            }
            if frame.command_id == DELIVER_SM {
                self.stashed.push_back(frame);
                continue;
            }
            assert_eq!(
                frame.sequence, sequence,
                "expected the answer to request {sequence}, got {frame:?}"
            );
            return frame;
        }
    }

    pub async fn call(&mut self, pdu: impl Into<Pdu>) -> Frame {
        let sequence = self.send(pdu).await;
        self.response(sequence).await
    }

    pub async fn call_raw(&mut self, command_id: u32, body: &[u8]) -> Frame {
        let sequence = self.send_raw(command_id, body).await;
        self.response(sequence).await
    }

    /// Binds through rusmpp when the credentials fit its 3.4 limits, as raw bytes otherwise.
    pub async fn bind(&mut self, kind: BindKind, system_id: &str, password: &str) -> Frame {
        let frame = if system_id.len() <= 15 && password.len() <= 8 {
            let ton = || Ton::from(0u8);
            let npi = || Npi::from(0u8);
            let pdu: Pdu = match kind {
                BindKind::Transmitter => BindTransmitter::builder()
                    .system_id(field(system_id))
                    .password(field(password))
                    .system_type(field(""))
                    .interface_version(InterfaceVersion::Smpp3_4)
                    .addr_ton(ton())
                    .addr_npi(npi())
                    .address_range(field(""))
                    .build()
                    .into(),
                BindKind::Receiver => BindReceiver::builder()
                    .system_id(field(system_id))
                    .password(field(password))
                    .system_type(field(""))
                    .interface_version(InterfaceVersion::Smpp3_4)
                    .addr_ton(ton())
                    .addr_npi(npi())
                    .address_range(field(""))
                    .build()
                    .into(),
                BindKind::Transceiver => BindTransceiver::builder()
                    .system_id(field(system_id))
                    .password(field(password))
                    .system_type(field(""))
                    .interface_version(InterfaceVersion::Smpp3_4)
                    .addr_ton(ton())
                    .addr_npi(npi())
                    .address_range(field(""))
                    .build()
                    .into(),
            };
            self.call(pdu).await
        } else {
            let body = Body::bind(system_id, password.as_bytes());
            self.call_raw(kind.command_id(), &body.0).await
        };
        assert_eq!(
            frame.command_id,
            kind.command_id() | RESPONSE_BIT,
            "{frame:?}"
        );
        frame
    }

    /// The next deliver_sm within `within`, unanswered; enquire_links meanwhile are answered and
    /// any other PDU fails the test. `None` when none came in time.
    pub async fn next_deliver_sm(&mut self, within: Duration) -> Option<DeliverSm> {
        if let Some(frame) = self.stashed.pop_front() {
            return Some(frame.deliver_sm());
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = match self.try_read(left).await {
                Ok(frame) => frame,
                Err(ReadError::Timeout) => return None,
                Err(ReadError::Closed) => panic!("connection closed while awaiting deliver_sm"),
            };
            match frame.command_id {
                ENQUIRE_LINK => {
                    self.write(&pdu_bytes(ENQUIRE_LINK_RESP, frame.sequence, &[]))
                        .await;
                }
                DELIVER_SM => return Some(frame.deliver_sm()),
                _ => panic!("expected deliver_sm, got {frame:?}"),
            }
        }
    }

    /// The next deliver_sm, unanswered; fails the test when none comes.
    #[track_caller]
    pub fn expect_deliver_sm(&mut self) -> impl Future<Output = DeliverSm> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            self.next_deliver_sm(DELIVER_TIMEOUT)
                .await
                .unwrap_or_else(|| panic!("{caller}: no deliver_sm within {DELIVER_TIMEOUT:?}"))
        }
    }

    /// deliver_sm_resp with `status` and the deliver_sm's sequence number; its message_id is
    /// unused in 3.4 and sent empty.
    pub async fn answer_deliver_sm(&mut self, deliver: &DeliverSm, status: CommandStatus) {
        let mut bytes = pdu_bytes(DELIVER_SM_RESP, deliver.sequence, &[0]);
        bytes[8..12].copy_from_slice(&status.0.to_be_bytes());
        self.write(&bytes).await;
    }

    /// The next deliver_sm, answered ESME_ROK.
    #[track_caller]
    pub fn receive(&mut self) -> impl Future<Output = DeliverSm> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            let deliver = self
                .next_deliver_sm(DELIVER_TIMEOUT)
                .await
                .unwrap_or_else(|| panic!("{caller}: no deliver_sm within {DELIVER_TIMEOUT:?}"));
            self.answer_deliver_sm(&deliver, ESME_ROK).await;
            deliver
        }
    }

    /// No deliver_sm comes for `within`.
    #[track_caller]
    pub fn expect_no_deliver_sm(&mut self, within: Duration) -> impl Future<Output = ()> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            if let Some(deliver) = self.next_deliver_sm(within).await {
                panic!("{caller}: unexpected deliver_sm {deliver:?}");
            }
        }
    }

    /// unbind, answered ESME_ROK.
    pub async fn unbind(&mut self) {
        let sequence = self.send(Pdu::Unbind).await;
        self.response(sequence)
            .await
            .expect(UNBIND_RESP, ESME_ROK, sequence);
    }

    /// enquire_link is answered with enquire_link_resp ESME_ROK: the link is up.
    pub async fn assert_alive(&mut self) {
        let sequence = self.send(Pdu::EnquireLink).await;
        let frame = self.response(sequence).await;
        frame.expect(ENQUIRE_LINK_RESP, ESME_ROK, sequence);
        assert!(frame.body.is_empty(), "{frame:?}");
    }

    /// The server closes the connection within `within`, sending nothing more before.
    pub async fn expect_closed(&mut self, within: Duration) {
        match self.try_read(within).await {
            Err(ReadError::Closed) => {}
            Err(ReadError::Timeout) => panic!("connection still open after {within:?}"),
            Ok(frame) => panic!("expected the connection to close, got {frame:?}"),
        }
    }
}

/// A submit_sm asking for every receipt; returns the message id the ESME got.
pub async fn submit_with_receipt(esme: &mut Client, destination: &str) -> String {
    let resp = esme
        .call(
            submit_sm(destination)
                .registered_delivery(rusmpp::values::RegisteredDelivery::from(1u8))
                .short_message(octets(b"whose receipt?"))
                .build(),
        )
        .await;
    resp.expect(smpp_codec::command::SUBMIT_SM_RESP, ESME_ROK, resp.sequence);
    resp.message_id()
}

/// The message id a receipt is about.
pub fn receipted_id(deliver: &DeliverSm) -> String {
    let id = deliver
        .tlv(smpp_codec::pdu::tag::RECEIPTED_MESSAGE_ID)
        .unwrap_or_else(|| panic!("not a receipt: {deliver:?}"));
    String::from_utf8_lossy(id.strip_suffix(&[0]).unwrap_or(id)).into_owned()
}
