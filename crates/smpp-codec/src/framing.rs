//! Length-bounded SMPP 3.4 framing for `tokio_util::codec`.
//!
//! Each PDU is split off the read buffer as exactly `command_length` octets
//! before its body is looked at, so a malformed body can never consume bytes
//! of the PDU behind it, and a bad body costs one error response rather than
//! the connection.
//!
//! The codec also decides how much the next read asks for. Decoded PDUs keep
//! slices of the buffer they came from, so while requests are in flight the
//! buffer cannot be reused and every read gets fresh space — exactly as much
//! as was reserved. Left to `FramedRead`, that is one octet, and a busy peer
//! would cost several reads per PDU.

use std::io;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::pdu::{self, Inbound, Outbound};
use crate::status::CommandStatus;

/// command_length, command_id, command_status, sequence_number.
const HEADER_LEN: usize = 16;

/// The space the smallest read asks for, and what a connection's buffer should
/// start with: a bind is under 100 octets, and an idle bind should hold little.
pub const MIN_READ: usize = 512;
/// The space the largest read asks for: a window of 64 submit_sm is 6–12 KiB.
const MAX_READ: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct SmppCodec {
    max_command_length: usize,
    /// What the next read asks for, beyond the rest of a partial PDU.
    read_size: usize,
}

impl SmppCodec {
    /// `max_command_length` bounds the memory one peer can make the server
    /// buffer for a single PDU.
    pub fn new(max_command_length: usize) -> Self {
        Self {
            max_command_length,
            read_size: MIN_READ,
        }
    }

    /// Reserves the space the next read fills, at least `needed` octets. A
    /// read that filled all the space it had probably left more behind, so
    /// the next asks for twice as much; one that came up short asks for half.
    fn make_room(&mut self, src: &mut BytesMut, needed: usize) {
        // Splitting PDUs off shrinks length and capacity alike: no spare
        // capacity now means none was left by the read.
        self.read_size = if src.capacity() == src.len() {
            (self.read_size * 2).min(MAX_READ)
        } else {
            (self.read_size / 2).max(MIN_READ)
        };
        src.reserve(needed.max(self.read_size));
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl Decoder for SmppCodec {
    type Item = Inbound;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Inbound>> {
        if src.len() < 4 {
            self.make_room(src, 0);
            return Ok(None);
        }
        let command_length = be_u32(src, 0);
        let len = usize::try_from(command_length).unwrap_or(usize::MAX);
        if len < HEADER_LEN || len > self.max_command_length {
            let sequence_number = if src.len() >= HEADER_LEN {
                be_u32(src, 12)
            } else {
                0
            };
            // There is no telling where the next PDU starts; what is buffered
            // is garbage and the session closes after answering.
            src.clear();
            return Ok(Some(Inbound::BadLength {
                command_length,
                sequence_number,
            }));
        }
        if src.len() < len {
            let needed = len - src.len();
            self.make_room(src, needed);
            return Ok(None);
        }
        let mut frame = src.split_to(len).freeze();
        let command_id = be_u32(&frame, 4);
        let command_status = CommandStatus(be_u32(&frame, 8));
        let sequence_number = be_u32(&frame, 12);
        let body = frame.split_off(HEADER_LEN);
        Ok(Some(pdu::decode_pdu(
            command_id,
            command_status,
            sequence_number,
            body,
        )))
    }
}

impl Encoder<&Outbound> for SmppCodec {
    type Error = io::Error;

    fn encode(&mut self, item: &Outbound, dst: &mut BytesMut) -> io::Result<()> {
        pdu::encode_pdu(item, dst);
        Ok(())
    }
}

impl Encoder<Outbound> for SmppCodec {
    type Error = io::Error;

    fn encode(&mut self, item: Outbound, dst: &mut BytesMut) -> io::Result<()> {
        self.encode(&item, dst)
    }
}

#[cfg(test)]
mod tests {
    use std::{fmt::Debug, str::FromStr};

    use bytes::BufMut;
    use rusmpp::{
        Command, CommandId, CommandStatus, Pdu,
        pdus::{BindTransceiver, DataSm, QuerySm, SubmitMulti, SubmitSm},
        tlvs::MessageSubmissionRequestTlvValue as ReqTlv,
        tokio_codec::CommandCodec,
        types::{AnyOctetString, OctetString},
        values::{
            DataCoding, DestAddress, DistributionListName, EsmClass, InterfaceVersion,
            MessagePayload, MessageState, Npi, PriorityFlag, RegisteredDelivery, ServiceType,
            SmeAddress, Ton, UserMessageReference,
        },
    };

    use super::*;
    use crate::command::*;
    use crate::pdu::{Address, BindKind, Request, ResponseBody, UnsuccessSme, tag};
    use crate::status::*;

    const MAX: usize = 70_000;

    fn frame(command_id: u32, sequence_number: u32, body: &[u8]) -> Vec<u8> {
        let len = u32::try_from(HEADER_LEN + body.len()).unwrap();
        let mut out = Vec::new();
        for field in [len, command_id, ESME_ROK.0, sequence_number] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        out.extend_from_slice(body);
        out
    }

    /// Decodes everything in `bytes`, requiring that no partial PDU is left.
    fn decode_all(bytes: &[u8]) -> Vec<Inbound> {
        let mut codec = SmppCodec::new(MAX);
        let mut src = BytesMut::from(bytes);
        let mut items = Vec::new();
        while let Some(item) = codec.decode(&mut src).unwrap() {
            items.push(item);
        }
        assert!(src.is_empty(), "{} octets left undecoded", src.len());
        items
    }

    fn decode_one(bytes: &[u8]) -> Inbound {
        let mut items = decode_all(bytes);
        assert_eq!(items.len(), 1, "{items:?}");
        items.remove(0)
    }

    fn c<T: FromStr>(s: &str) -> T
    where
        T::Err: Debug,
    {
        s.parse().unwrap()
    }

    fn addr(ton: u8, npi: u8, addr: &str) -> Address {
        Address {
            ton,
            npi,
            addr: addr.into(),
        }
    }

    fn rusmpp_bytes(commands: Vec<Command>) -> BytesMut {
        let mut codec = CommandCodec::new();
        let mut dst = BytesMut::new();
        for command in commands {
            codec.encode(command, &mut dst).unwrap();
        }
        dst
    }

    fn bind_with_password(password: &[u8]) -> Vec<u8> {
        let mut body = b"esme\0".to_vec();
        body.extend_from_slice(password);
        body.extend_from_slice(b"\0\0\x34\x00\x00\0");
        body
    }

    #[test]
    fn an_invalid_pdu_does_not_disturb_the_next_one() {
        let mut bytes = frame(BIND_TRANSMITTER, 1, &bind_with_password(&[b'p'; 2000]));
        bytes.extend(frame(ENQUIRE_LINK, 2, b""));
        let items = decode_all(&bytes);
        assert_eq!(items.len(), 2);
        assert!(matches!(
            &items[0],
            Inbound::Invalid { command_id: BIND_TRANSMITTER, sequence_number: 1, status, .. }
                if *status == ESME_RINVPASWD
        ));
        assert_eq!(
            items[1],
            Inbound::Request {
                sequence_number: 2,
                request: Request::EnquireLink,
            }
        );
    }

    #[test]
    fn a_body_never_reads_into_the_next_pdu() {
        // The query_sm body stops inside source_addr; the NUL that would
        // complete it belongs to the following frame.
        let mut bytes = frame(QUERY_SM, 1, b"id\0\x01\x01src");
        bytes.extend(frame(ENQUIRE_LINK, 2, b""));
        let items = decode_all(&bytes);
        assert!(matches!(
            &items[0],
            Inbound::Invalid { status, sequence_number: 1, .. } if *status == ESME_RINVCMDLEN
        ));
        assert!(matches!(
            &items[1],
            Inbound::Request {
                sequence_number: 2,
                ..
            }
        ));
    }

    #[test]
    fn partial_reads_wait_for_the_whole_pdu() {
        let pdu = frame(QUERY_SM, 9, b"msg-1\0\x01\x01src\0");
        for chunk in [1, 3, 7, pdu.len()] {
            let mut codec = SmppCodec::new(MAX);
            let mut src = BytesMut::new();
            let mut items = Vec::new();
            for piece in pdu.chunks(chunk) {
                src.extend_from_slice(piece);
                if let Some(item) = codec.decode(&mut src).unwrap() {
                    items.push(item);
                }
            }
            assert!(src.is_empty());
            assert_eq!(
                items,
                vec![Inbound::Request {
                    sequence_number: 9,
                    request: Request::QuerySm(pdu::QuerySm {
                        message_id: "msg-1".into(),
                        source: addr(1, 1, "src"),
                    }),
                }],
                "chunk size {chunk}"
            );
        }
    }

    /// A peer's bytes, handed out as a socket would: as much as the reader
    /// has room for. Counts the reads.
    struct Socket {
        data: Vec<u8>,
        at: usize,
        reads: usize,
        largest_room: usize,
    }

    impl tokio::io::AsyncRead for Socket {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let n = buf.remaining().min(self.data.len() - self.at);
            buf.put_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            self.reads += 1;
            self.largest_room = self.largest_room.max(buf.remaining() + n);
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn submit_sm_body(n: u32) -> Vec<u8> {
        let mut body = b"\0\x01\x01447700900001\0\x01\x01447700900002\0".to_vec();
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let text = format!("message number {n:>5} of a window of sixty-four");
        body.push(text.len() as u8);
        body.extend_from_slice(text.as_bytes());
        body
    }

    /// Requests in flight keep their PDUs' octets, so the buffer is never
    /// free to reuse; a window of PDUs must still arrive in a few reads.
    #[tokio::test]
    async fn a_window_of_pdus_is_read_in_a_few_reads() {
        use futures::StreamExt;
        let mut data = Vec::new();
        for n in 1..=64 {
            data.extend(frame(SUBMIT_SM, n, &submit_sm_body(n)));
        }
        let total = data.len();
        let socket = Socket {
            data,
            at: 0,
            reads: 0,
            largest_room: 0,
        };
        let mut frames =
            tokio_util::codec::FramedRead::with_capacity(socket, SmppCodec::new(MAX), MIN_READ);
        let mut in_flight = Vec::new();
        for _ in 0..64 {
            in_flight.push(frames.next().await.unwrap().unwrap());
        }
        assert!(in_flight.iter().enumerate().all(|(i, pdu)| matches!(
            pdu,
            Inbound::Request { sequence_number, request: Request::SubmitSm(_) }
                if *sequence_number as usize == i + 1
        )));
        let socket = frames.get_ref();
        assert_eq!(socket.at, total);
        // 512, 1 KiB, 2 KiB, 4 KiB and the rest: the reads double while they
        // come back full.
        assert!(
            socket.reads <= 6,
            "{} reads for {total} octets in 64 PDUs",
            socket.reads
        );
    }

    /// A quiet peer's reads stay small: after a bind, the buffer waiting for
    /// the next PDU has room for at most `MIN_READ` octets.
    #[tokio::test]
    async fn a_quiet_peer_is_read_with_little_space() {
        use futures::StreamExt;
        let socket = Socket {
            data: frame(ENQUIRE_LINK, 1, b""),
            at: 0,
            reads: 0,
            largest_room: 0,
        };
        let mut frames =
            tokio_util::codec::FramedRead::with_capacity(socket, SmppCodec::new(MAX), MIN_READ);
        let first = frames.next().await.unwrap().unwrap();
        assert!(matches!(
            first,
            Inbound::Request {
                request: Request::EnquireLink,
                ..
            }
        ));
        assert!(frames.next().await.is_none(), "the peer sent one PDU");
        assert!(frames.get_ref().largest_room <= MIN_READ);
        assert!(frames.read_buffer().capacity() <= MIN_READ);
    }

    #[test]
    fn bad_command_length_loses_the_stream() {
        let mut short = frame(ENQUIRE_LINK, 5, b"");
        short[..4].copy_from_slice(&8u32.to_be_bytes());
        short.extend(frame(ENQUIRE_LINK, 6, b""));
        let mut codec = SmppCodec::new(MAX);
        let mut src = BytesMut::from(&short[..]);
        assert_eq!(
            codec.decode(&mut src).unwrap(),
            Some(Inbound::BadLength {
                command_length: 8,
                sequence_number: 5,
            })
        );
        assert!(src.is_empty());

        let mut long = frame(SUBMIT_SM, 6, b"");
        long[..4].copy_from_slice(&100_000u32.to_be_bytes());
        assert_eq!(
            decode_one(&long),
            Inbound::BadLength {
                command_length: 100_000,
                sequence_number: 6,
            }
        );

        // Too few octets buffered to see the sequence number.
        assert_eq!(
            decode_one(&[0, 0, 0, 8, 0, 0]),
            Inbound::BadLength {
                command_length: 8,
                sequence_number: 0,
            }
        );
    }

    #[test]
    fn command_length_limits_are_inclusive() {
        let mut codec = SmppCodec::new(HEADER_LEN + 4);
        let mut src = BytesMut::from(&frame(QUERY_SM, 1, b"\0\0\0\0")[..]);
        assert!(matches!(
            codec.decode(&mut src).unwrap(),
            Some(Inbound::Request { .. })
        ));
        let mut src = BytesMut::from(&frame(QUERY_SM, 1, b"\0\0\0\0\0")[..]);
        assert!(matches!(
            codec.decode(&mut src).unwrap(),
            Some(Inbound::BadLength {
                command_length: 21,
                ..
            })
        ));
        assert!(
            codec
                .decode(&mut BytesMut::from(&[0, 0][..]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn encoder_accepts_owned_and_borrowed_pdus() {
        let mut codec = SmppCodec::new(MAX);
        let mut dst = BytesMut::new();
        let out = Outbound::Unbind { sequence_number: 3 };
        codec.encode(&out, &mut dst).unwrap();
        codec.encode(out, &mut dst).unwrap();
        assert_eq!(
            &dst[..],
            [frame(UNBIND, 3, b""), frame(UNBIND, 3, b"")].concat()
        );
    }

    #[test]
    fn decodes_rusmpp_submit_sm() {
        let sm = SubmitSm::builder()
            .service_type(ServiceType::new(c("CMT")))
            .source_addr_ton(Ton::from(5u8))
            .source_addr_npi(Npi::from(0u8))
            .source_addr(c("Brand"))
            .dest_addr_ton(Ton::from(1u8))
            .dest_addr_npi(Npi::from(1u8))
            .destination_addr(c("447700900123"))
            .esm_class(EsmClass::from(0x40u8))
            .protocol_id(0)
            .priority_flag(PriorityFlag::from(1u8))
            .validity_period(c("000001000000000R"))
            .registered_delivery(RegisteredDelivery::from(1u8))
            .data_coding(DataCoding::from(8u8))
            .short_message(OctetString::from_static_slice(b"\x00h\x00i").unwrap())
            .push_tlv(ReqTlv::SarMsgRefNum(0x1234))
            .push_tlv(ReqTlv::SarTotalSegments(2))
            .push_tlv(ReqTlv::SarSegmentSeqnum(1))
            .push_tlv(ReqTlv::UserMessageReference(UserMessageReference::new(77)))
            .build();
        let bytes = rusmpp_bytes(vec![Command::new(CommandStatus::EsmeRok, 21, sm)]);
        let Inbound::Request {
            sequence_number: 21,
            request: Request::SubmitSm(sm),
        } = decode_one(&bytes)
        else {
            panic!("not a submit_sm");
        };
        assert_eq!(sm.service_type, "CMT");
        assert_eq!(sm.source, addr(5, 0, "Brand"));
        assert_eq!(sm.destination, addr(1, 1, "447700900123"));
        assert_eq!(
            (sm.esm_class, sm.priority_flag, sm.registered_delivery),
            (0x40, 1, 1)
        );
        assert_eq!(sm.schedule_delivery_time, "");
        assert_eq!(sm.validity_period, "000001000000000R");
        assert_eq!(sm.data_coding, 8);
        assert_eq!(&sm.short_message[..], b"\x00h\x00i");
        let tlv = |t| pdu::find_tlv(&sm.tlvs, t).map(|tlv| tlv.value.to_vec());
        assert_eq!(tlv(tag::SAR_MSG_REF_NUM), Some(vec![0x12, 0x34]));
        assert_eq!(tlv(tag::SAR_TOTAL_SEGMENTS), Some(vec![2]));
        assert_eq!(tlv(tag::SAR_SEGMENT_SEQNUM), Some(vec![1]));
        assert_eq!(tlv(tag::USER_MESSAGE_REFERENCE), Some(vec![0, 77]));
    }

    #[test]
    fn decodes_rusmpp_submit_multi() {
        let sm = SubmitMulti::builder()
            .source_addr_ton(Ton::from(1u8))
            .source_addr_npi(Npi::from(1u8))
            .source_addr(c("4420"))
            .push_dest_address(DestAddress::SmeAddress(SmeAddress::new(
                Ton::from(1u8),
                Npi::from(1u8),
                c("447700900001"),
            )))
            .push_dest_address(DestAddress::DistributionListName(
                DistributionListName::new(c("team")),
            ))
            .esm_class(EsmClass::from(0u8))
            .data_coding(DataCoding::from(0u8))
            .short_message(OctetString::from_static_slice(b"hello all").unwrap())
            .build();
        let bytes = rusmpp_bytes(vec![Command::new(CommandStatus::EsmeRok, 22, sm)]);
        let Inbound::Request {
            sequence_number: 22,
            request: Request::SubmitMulti(sm),
        } = decode_one(&bytes)
        else {
            panic!("not a submit_multi");
        };
        assert_eq!(sm.source, addr(1, 1, "4420"));
        assert_eq!(
            sm.destinations,
            vec![
                pdu::DestAddress::Sme(addr(1, 1, "447700900001")),
                pdu::DestAddress::DistributionList("team".into()),
            ]
        );
        assert_eq!(sm.esm_class, 0);
        assert_eq!(&sm.short_message[..], b"hello all");
        assert!(sm.tlvs.is_empty());
    }

    #[test]
    fn decodes_rusmpp_data_sm() {
        let sm = DataSm::builder()
            .service_type(ServiceType::new(c("WAP")))
            .source_addr_ton(Ton::from(1u8))
            .source_addr_npi(Npi::from(1u8))
            .source_addr(c("123"))
            .dest_addr_ton(Ton::from(1u8))
            .dest_addr_npi(Npi::from(1u8))
            .destination_addr(c("456"))
            .esm_class(EsmClass::from(0u8))
            .registered_delivery(RegisteredDelivery::from(1u8))
            .data_coding(DataCoding::from(0u8))
            .push_tlv(ReqTlv::MessagePayload(MessagePayload::new(
                AnyOctetString::from_static_slice(b"a long payload"),
            )))
            .build();
        let bytes = rusmpp_bytes(vec![Command::new(CommandStatus::EsmeRok, 23, sm)]);
        let Inbound::Request {
            sequence_number: 23,
            request: Request::DataSm(sm),
        } = decode_one(&bytes)
        else {
            panic!("not a data_sm");
        };
        assert_eq!(sm.service_type, "WAP");
        assert_eq!(sm.source, addr(1, 1, "123"));
        assert_eq!(sm.destination, addr(1, 1, "456"));
        assert_eq!((sm.esm_class, sm.registered_delivery), (0, 1));
        assert_eq!(
            pdu::find_tlv(&sm.tlvs, tag::MESSAGE_PAYLOAD).map(|t| &t.value[..]),
            Some(&b"a long payload"[..])
        );
    }

    #[test]
    fn decodes_rusmpp_query_sm_and_bind_transceiver() {
        let query = QuerySm::builder()
            .message_id(c("0f1e2d"))
            .source_addr_ton(Ton::from(2u8))
            .source_addr_npi(Npi::from(1u8))
            .source_addr(c("999"))
            .build();
        let bind = BindTransceiver::builder()
            .system_id(c("esme01"))
            .password(c("secret08"))
            .system_type(c("VMA"))
            .interface_version(InterfaceVersion::Smpp3_4)
            .addr_ton(Ton::from(1u8))
            .addr_npi(Npi::from(1u8))
            .address_range(c("^44"))
            .build();
        let bytes = rusmpp_bytes(vec![
            Command::new(CommandStatus::EsmeRok, 24, query),
            Command::new(CommandStatus::EsmeRok, 25, bind),
        ]);
        assert_eq!(
            decode_all(&bytes),
            vec![
                Inbound::Request {
                    sequence_number: 24,
                    request: Request::QuerySm(pdu::QuerySm {
                        message_id: "0f1e2d".into(),
                        source: addr(2, 1, "999"),
                    }),
                },
                Inbound::Request {
                    sequence_number: 25,
                    request: Request::Bind(pdu::Bind {
                        kind: BindKind::Transceiver,
                        system_id: "esme01".into(),
                        password: "secret08".into(),
                        system_type: "VMA".into(),
                        interface_version: 0x34,
                        addr_ton: 1,
                        addr_npi: 1,
                        address_range: "^44".into(),
                    }),
                },
            ]
        );
    }

    #[test]
    fn rusmpp_decodes_our_responses() {
        let ok = |sequence_number, body| Outbound::Response {
            sequence_number,
            status: ESME_ROK,
            body,
        };
        let outbound = [
            ok(
                1,
                ResponseBody::Bind {
                    kind: BindKind::Transceiver,
                    system_id: "SMSGATE".into(),
                    sc_interface_version: Some(0x34),
                },
            ),
            Outbound::Response {
                sequence_number: 2,
                status: ESME_RINVPASWD,
                body: ResponseBody::Bind {
                    kind: BindKind::Receiver,
                    system_id: "SMSGATE".into(),
                    sc_interface_version: None,
                },
            },
            ok(
                3,
                ResponseBody::SubmitSm {
                    message_id: "msg-3".into(),
                },
            ),
            ok(
                4,
                ResponseBody::SubmitMulti {
                    message_id: "msg-4".into(),
                    unsuccess: vec![UnsuccessSme {
                        address: addr(1, 1, "447700900002"),
                        error_status: ESME_RINVDSTADR,
                    }],
                },
            ),
            ok(
                5,
                ResponseBody::QuerySm {
                    message_id: "msg-5".into(),
                    final_date: "250102030405000+".into(),
                    message_state: 2,
                    error_code: 0,
                },
            ),
            ok(
                6,
                ResponseBody::DataSm {
                    message_id: "msg-6".into(),
                },
            ),
            ok(7, ResponseBody::CancelSm),
            ok(8, ResponseBody::ReplaceSm),
            ok(9, ResponseBody::EnquireLink),
            ok(10, ResponseBody::Unbind),
            Outbound::Response {
                sequence_number: 11,
                status: ESME_RINVCMDID,
                body: ResponseBody::error_for(0x0000_0999),
            },
            Outbound::EnquireLink {
                sequence_number: 12,
            },
            Outbound::Unbind {
                sequence_number: 13,
            },
        ];
        let mut buf = BytesMut::new();
        for out in &outbound {
            pdu::encode_pdu(out, &mut buf);
        }
        let mut codec = CommandCodec::new();
        let mut decoded = Vec::new();
        while let Some(command) = codec.decode(&mut buf).unwrap() {
            decoded.push(command);
        }
        assert!(buf.is_empty());
        assert_eq!(decoded.len(), outbound.len());
        for (command, out) in decoded.iter().zip(&outbound) {
            assert_eq!(command.sequence_number(), out.sequence_number());
            assert_eq!(u32::from(command.id()), out.command_id());
            assert_eq!(u32::from(command.status()), out.command_status().0);
        }

        let pdu = |i: usize| decoded[i].pdu();
        let Some(Pdu::BindTransceiverResp(bind)) = pdu(0) else {
            panic!("{:?}", decoded[0]);
        };
        assert_eq!(bind.system_id.as_str(), "SMSGATE");
        assert_eq!(bind.sc_interface_version(), Some(InterfaceVersion::Smpp3_4));
        assert_eq!(decoded[1].id(), CommandId::BindReceiverResp);
        assert_eq!(decoded[1].status(), CommandStatus::EsmeRinvpaswd);
        assert!(pdu(1).is_none());
        let Some(Pdu::SubmitSmResp(resp)) = pdu(2) else {
            panic!("{:?}", decoded[2]);
        };
        assert_eq!(resp.message_id().as_str(), "msg-3");
        let Some(Pdu::SubmitMultiResp(resp)) = pdu(3) else {
            panic!("{:?}", decoded[3]);
        };
        assert_eq!(resp.message_id.as_str(), "msg-4");
        let [unsuccess] = resp.unsuccess_sme() else {
            panic!("{resp:?}");
        };
        assert_eq!(unsuccess.destination_addr.as_str(), "447700900002");
        assert_eq!(unsuccess.error_status_code, CommandStatus::EsmeRinvdstadr);
        let Some(Pdu::QuerySmResp(resp)) = pdu(4) else {
            panic!("{:?}", decoded[4]);
        };
        assert_eq!(resp.message_id.as_str(), "msg-5");
        assert_eq!(resp.final_date.as_str(), "250102030405000+");
        assert_eq!(resp.message_state, MessageState::Delivered);
        let Some(Pdu::DataSmResp(resp)) = pdu(5) else {
            panic!("{:?}", decoded[5]);
        };
        assert_eq!(resp.message_id().as_str(), "msg-6");
        assert_eq!(decoded[10].id(), CommandId::GenericNack);
        assert_eq!(decoded[11].id(), CommandId::EnquireLink);
        assert_eq!(decoded[12].id(), CommandId::Unbind);
    }

    /// xorshift64: deterministic, dependency-free randomness.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> usize {
            usize::try_from(self.next() % n).unwrap()
        }

        /// Skewed towards NULs and small values so that random bodies get
        /// past the first fields instead of failing on the first C-string.
        fn octet(&mut self) -> u8 {
            let v = self.next();
            match v % 8 {
                0 | 1 => 0,
                2 => (v >> 8) as u8 % 4,
                _ => (v >> 8) as u8,
            }
        }
    }

    /// A valid body per request, used as a seed for mutation.
    fn seed(command_id: u32) -> &'static [u8] {
        match command_id {
            BIND_TRANSMITTER | BIND_RECEIVER | BIND_TRANSCEIVER => b"esme\0pw\0\0\x34\x01\x01\0",
            SUBMIT_SM => {
                b"\0\x01\x01src\0\x01\x01dst\0\x00\x00\x00\0\0\x01\x00\x00\x00\x02hi\x02\x0c\x00\x02\x00\x01"
            }
            SUBMIT_MULTI => {
                b"\0\x01\x01src\0\x02\x01\x01\x01d1\0\x02dl\0\x00\x00\x00\0\0\x01\x00\x00\x00\x01x"
            }
            DATA_SM => b"\0\x01\x01src\0\x01\x01dst\0\x00\x01\x00\x04\x24\x00\x02hi",
            QUERY_SM => b"id\0\x01\x01src\0",
            CANCEL_SM => b"\0id\0\x01\x01src\0\x01\x01dst\0",
            REPLACE_SM => b"id\0\x01\x01src\0\0\0\x01\x00\x02hi",
            _ => b"",
        }
    }

    fn random_body(rng: &mut Rng, command_id: u32) -> Vec<u8> {
        if rng.below(2) == 0 {
            let len = rng.below(300);
            return (0..len).map(|_| rng.octet()).collect();
        }
        let mut body = seed(command_id).to_vec();
        for _ in 0..=rng.below(4) {
            match rng.below(4) {
                0 if !body.is_empty() => {
                    let at = rng.below(body.len() as u64);
                    body[at] = rng.octet();
                }
                1 => body.truncate(rng.below(body.len() as u64 + 1)),
                2 => body.extend((0..rng.below(8)).map(|_| rng.octet())),
                _ => {
                    let at = rng.below(body.len() as u64 + 1);
                    body.insert(at, rng.octet());
                }
            }
        }
        body
    }

    #[test]
    fn random_bodies_yield_exactly_one_item_per_frame() {
        const FRAMES: u32 = 20_000;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let ids = [
            BIND_TRANSMITTER,
            BIND_RECEIVER,
            BIND_TRANSCEIVER,
            SUBMIT_SM,
            SUBMIT_MULTI,
            DATA_SM,
            QUERY_SM,
            CANCEL_SM,
            REPLACE_SM,
            ENQUIRE_LINK,
            UNBIND,
            DELIVER_SM_RESP,
        ];
        for command_id in ids {
            let mut src = BytesMut::new();
            for seq in 0..FRAMES {
                let body = random_body(&mut rng, command_id);
                src.put_slice(&frame(command_id, seq, &body));
            }
            let mut codec = SmppCodec::new(MAX);
            let mut seq = 0;
            while let Some(item) = codec.decode(&mut src).unwrap() {
                let sequence_number = match item {
                    Inbound::Request {
                        sequence_number, ..
                    }
                    | Inbound::Response {
                        sequence_number, ..
                    } => sequence_number,
                    Inbound::Invalid {
                        command_id: id,
                        sequence_number,
                        ..
                    } => {
                        assert_eq!(id, command_id);
                        sequence_number
                    }
                    Inbound::BadLength { .. } => panic!("valid header reported as bad length"),
                };
                assert_eq!(sequence_number, seq, "command 0x{command_id:08X}");
                seq += 1;
            }
            assert_eq!(seq, FRAMES);
            assert!(src.is_empty());
        }
    }

    #[test]
    fn what_follows_a_frame_never_changes_how_it_decodes() {
        let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
        for _ in 0..2_000 {
            let body = random_body(&mut rng, SUBMIT_SM);
            let alone = decode_one(&frame(SUBMIT_SM, 1, &body));
            let mut followed = frame(SUBMIT_SM, 1, &body);
            followed.extend(frame(SUBMIT_SM, 2, &[0xff; 64]));
            let first = decode_all(&followed).remove(0);
            assert_eq!(alone, first);
        }
    }
}
