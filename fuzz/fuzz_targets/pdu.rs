//! SMPP PDUs from arbitrary bytes, read as a peer's TCP stream. Framing and decoding must never
//! panic; the stream must decode to the same PDUs however it is cut into reads; every PDU must
//! get an answer that is itself a well-formed PDU; and a decoded submit_sm, encoded again,
//! must decode to the same message.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use smpp_codec::SmppCodec;
use smpp_codec::command::{DATA_SM_RESP, SUBMIT_SM};
use smpp_codec::pdu::{
    DeliverSm, DestAddress, Inbound, Outbound, Request, ResponseBody, SubmitSm, UnsuccessSme,
    encode_pdu,
};
use smpp_codec::status::{ESME_RINVCMDLEN, ESME_RINVDSTADR, ESME_ROK};
use tokio_util::codec::Decoder;

/// The lowest `smpp.max_command_length` the server accepts, so that short inputs reach the
/// too-long branch as well as complete PDUs.
const MAX_COMMAND_LENGTH: usize = 1024;

fuzz_target!(|stream: &[u8]| {
    let whole = decode_stream(&[stream]);
    let byte_by_byte: Vec<&[u8]> = stream.chunks(1).collect();
    let streamed = decode_stream(&byte_by_byte);
    assert_eq!(whole.len(), streamed.len());
    for (at_once, in_pieces) in whole.iter().zip(&streamed) {
        match (at_once, in_pieces) {
            // The sequence number of a frame with a bad length is read only when the header is
            // already buffered; the session closes after answering either way.
            (
                Inbound::BadLength { command_length, .. },
                Inbound::BadLength {
                    command_length: length,
                    sequence_number: 0,
                },
            ) => assert_eq!(command_length, length),
            _ => assert_eq!(at_once, in_pieces),
        }
    }
    for inbound in &whole {
        check_answers(inbound);
    }
});

/// Decodes what arrives in `reads` as the session's reader does, up to the frame after which
/// the session closes.
fn decode_stream(reads: &[&[u8]]) -> Vec<Inbound> {
    let mut codec = SmppCodec::new(MAX_COMMAND_LENGTH);
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    for read in reads {
        buffer.extend_from_slice(read);
        while let Some(frame) = codec.decode(&mut buffer).expect("decoding never fails") {
            let closes = matches!(frame, Inbound::BadLength { .. });
            frames.push(frame);
            if closes {
                return frames;
            }
        }
    }
    frames
}

fn check_answers(inbound: &Inbound) {
    match inbound {
        Inbound::Request {
            sequence_number,
            request,
        } => {
            let sequence_number = *sequence_number;
            let ok = Outbound::Response {
                sequence_number,
                status: ESME_ROK,
                body: success_body(request),
            };
            assert_answer_decodes(&ok);
            let refused = Outbound::Response {
                sequence_number,
                status: ESME_RINVDSTADR,
                body: ResponseBody::error_for(request.command_id()),
            };
            assert_answer_decodes(&refused);
            if let Request::SubmitSm(submit) = request {
                assert_encodes_back(submit);
            }
        }
        Inbound::Invalid {
            command_id,
            sequence_number,
            status,
            ..
        } => assert_answer_decodes(&Outbound::Response {
            sequence_number: *sequence_number,
            status: *status,
            body: ResponseBody::error_for(*command_id),
        }),
        Inbound::BadLength {
            sequence_number, ..
        } => assert_answer_decodes(&Outbound::Response {
            sequence_number: *sequence_number,
            status: ESME_RINVCMDLEN,
            body: ResponseBody::GenericNack,
        }),
        Inbound::Response { .. } => {}
    }
}

/// A successful answer whose strings come from the request, so the encoder meets whatever
/// octets a peer can put in a field.
fn success_body(request: &Request) -> ResponseBody {
    match request {
        Request::Bind(bind) => ResponseBody::Bind {
            kind: bind.kind,
            system_id: bind.system_id.clone(),
            sc_interface_version: Some(bind.interface_version),
        },
        Request::SubmitSm(submit) => ResponseBody::SubmitSm {
            message_id: submit.service_type.clone(),
        },
        Request::SubmitMulti(multi) => ResponseBody::SubmitMulti {
            message_id: multi.source.addr.clone(),
            unsuccess: multi
                .destinations
                .iter()
                .filter_map(|dest| match dest {
                    DestAddress::Sme(address) => Some(UnsuccessSme {
                        address: address.clone(),
                        error_status: ESME_RINVDSTADR,
                    }),
                    DestAddress::DistributionList(_) => None,
                })
                .collect(),
        },
        Request::DataSm(data) => ResponseBody::DataSm {
            message_id: data.source.addr.clone(),
        },
        Request::QuerySm(query) => ResponseBody::QuerySm {
            message_id: query.message_id.clone(),
            final_date: String::new(),
            message_state: 2,
            error_code: 0,
        },
        Request::CancelSm(_) => ResponseBody::CancelSm,
        Request::ReplaceSm(_) => ResponseBody::ReplaceSm,
        Request::EnquireLink => ResponseBody::EnquireLink,
        Request::Unbind => ResponseBody::Unbind,
    }
}

/// The answer, read back by the same codec, is exactly one response with its header intact
/// (and for data_sm_resp its message_id).
fn assert_answer_decodes(answer: &Outbound) {
    let mut wire = BytesMut::new();
    encode_pdu(answer, &mut wire);
    let decoded = SmppCodec::new(usize::MAX)
        .decode(&mut wire)
        .expect("decoding never fails");
    assert!(wire.is_empty(), "{answer:?} left {} octets", wire.len());
    let Some(Inbound::Response {
        command_id,
        command_status,
        sequence_number,
        message_id,
    }) = decoded
    else {
        panic!("{answer:?} decoded as {decoded:?}");
    };
    assert_eq!(command_id, answer.command_id());
    assert_eq!(command_status, answer.command_status());
    assert_eq!(sequence_number, answer.sequence_number());
    if let Outbound::Response {
        status,
        body: ResponseBody::DataSm { message_id: sent },
        ..
    } = answer
        && *status == ESME_ROK
    {
        assert_eq!(command_id, DATA_SM_RESP);
        assert_eq!(
            message_id.as_deref(),
            Some(sent.as_str()).filter(|s| !s.is_empty())
        );
    }
}

/// deliver_sm and submit_sm share one body layout (SMPP 3.4 §4.4.1, §4.6.1), so the server's
/// deliver_sm encoder, framed as a submit_sm, must give back the message it was built from,
/// less the fields a deliver_sm leaves NULL.
fn assert_encodes_back(submit: &SubmitSm) {
    let body = DeliverSm {
        service_type: submit.service_type.clone(),
        source: submit.source.clone(),
        destination: submit.destination.clone(),
        esm_class: submit.esm_class,
        protocol_id: submit.protocol_id,
        priority_flag: submit.priority_flag,
        registered_delivery: submit.registered_delivery,
        data_coding: submit.data_coding,
        short_message: submit.short_message.clone(),
        tlvs: submit.tlvs.clone(),
    }
    .encode();
    let mut wire = BytesMut::new();
    encode_pdu(
        &Outbound::DeliverSm {
            sequence_number: 7,
            body,
        },
        &mut wire,
    );
    wire[4..8].copy_from_slice(&SUBMIT_SM.to_be_bytes());
    let decoded = SmppCodec::new(MAX_COMMAND_LENGTH)
        .decode(&mut wire)
        .expect("decoding never fails");
    let expected = SubmitSm {
        schedule_delivery_time: String::new(),
        validity_period: String::new(),
        replace_if_present_flag: 0,
        sm_default_msg_id: 0,
        ..submit.clone()
    };
    assert_eq!(
        decoded,
        Some(Inbound::Request {
            sequence_number: 7,
            request: Request::SubmitSm(expected),
        })
    );
}
