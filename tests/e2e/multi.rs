//! submit_multi and data_sm.

use rusmpp::pdus::{DataSm, SubmitMulti};
use rusmpp::tlvs::MessageSubmissionRequestTlvValue as Tlv;
use rusmpp::types::AnyOctetString;
use rusmpp::values::{
    DataCoding, DestAddress, DistributionListName, EsmClass, MessagePayload, Npi, PriorityFlag,
    RegisteredDelivery, ServiceType, SmeAddress, Ton,
};
use serde_json::json;
use smpp_codec::command::{DATA_SM_RESP, SUBMIT_MULTI_RESP};
use smpp_codec::status::{ESME_RINVDLNAME, ESME_RINVNUMDESTS, ESME_ROK};

use crate::client::*;
use crate::support::*;

fn sme(number: &str) -> DestAddress {
    DestAddress::SmeAddress(SmeAddress::new(
        Ton::from(1u8),
        Npi::from(1u8),
        field(number),
    ))
}

#[tokio::test]
async fn submit_multi_sends_one_message_to_the_unique_numbers() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let pdu = SubmitMulti::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(Ton::from(1u8))
        .source_addr_npi(Npi::from(1u8))
        .source_addr(field("4930123456"))
        .push_dest_address(sme("491701111111"))
        .push_dest_address(sme("491702222222"))
        .push_dest_address(sme("491701111111"))
        .push_dest_address(DestAddress::DistributionListName(
            DistributionListName::new(field("friends")),
        ))
        .esm_class(EsmClass::from(0x00u8))
        .protocol_id(0)
        .priority_flag(PriorityFlag::from(0u8))
        .registered_delivery(RegisteredDelivery::from(0u8))
        .data_coding(DataCoding::from(0u8))
        .sm_default_msg_id(0)
        .short_message(octets(b"hello all"))
        .build();
    let resp = esme.call(pdu).await;
    resp.expect(SUBMIT_MULTI_RESP, ESME_ROK, 2);
    let (message_id, unsuccess) = resp.submit_multi_resp();
    assert_eq!(
        unsuccess,
        vec![Unsuccess {
            ton: 0,
            npi: 0,
            addr: "friends".into(),
            error: ESME_RINVDLNAME,
        }]
    );

    let messages = h.sim_messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0]["id"], message_id.as_str());
    let request = &messages[0]["request"];
    assert_eq!(
        request["phoneNumbers"],
        json!(["+491701111111", "+491702222222"]),
        "{request}"
    );
    assert_eq!(request["textMessage"]["text"], "hello all");
}

fn submit_multi(destinations: Vec<DestAddress>) -> SubmitMulti {
    SubmitMulti::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(Ton::from(1u8))
        .source_addr_npi(Npi::from(1u8))
        .source_addr(field("4930123456"))
        .dest_address(destinations)
        .esm_class(EsmClass::from(0x00u8))
        .protocol_id(0)
        .priority_flag(PriorityFlag::from(0u8))
        .registered_delivery(RegisteredDelivery::from(0u8))
        .data_coding(DataCoding::from(0u8))
        .sm_default_msg_id(0)
        .short_message(octets(b"to many"))
        .build()
}

#[tokio::test]
async fn submit_multi_without_a_usable_destination_fails_whole() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let only_list = submit_multi(vec![DestAddress::DistributionListName(
        DistributionListName::new(field("friends")),
    )]);
    let resp = esme.call(only_list).await;
    resp.expect(SUBMIT_MULTI_RESP, ESME_RINVDLNAME, 2);
    assert!(resp.body.is_empty(), "{resp:?}");

    // SMSGate takes at most 100 recipients per message.
    let too_many = submit_multi((0..101).map(|i| sme(&format!("4917000{i:05}"))).collect());
    let resp = esme.call(too_many).await;
    resp.expect(SUBMIT_MULTI_RESP, ESME_RINVNUMDESTS, 3);
    assert!(h.sim_messages().await.is_empty());

    let hundred = submit_multi((0..100).map(|i| sme(&format!("4917000{i:05}"))).collect());
    let resp = esme.call(hundred).await;
    resp.expect(SUBMIT_MULTI_RESP, ESME_ROK, 4);
    let (id, unsuccess) = resp.submit_multi_resp();
    assert!(unsuccess.is_empty(), "{unsuccess:?}");
    let request = h.sim_message(&id).await["request"].clone();
    assert_eq!(request["phoneNumbers"].as_array().map(Vec::len), Some(100));
}

#[tokio::test]
async fn data_sm_with_a_payload_is_sent_as_text() {
    let h = Setup::new().start().await;
    let mut esme = h.bound(BindKind::Transceiver).await;
    let text = "data sm carries its text in a message payload TLV";
    let pdu = DataSm::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(Ton::from(1u8))
        .source_addr_npi(Npi::from(1u8))
        .source_addr(field("4930123456"))
        .dest_addr_ton(Ton::from(1u8))
        .dest_addr_npi(Npi::from(1u8))
        .destination_addr(field("491701234567"))
        .esm_class(EsmClass::from(0x00u8))
        .registered_delivery(RegisteredDelivery::from(1u8))
        .data_coding(DataCoding::from(0u8))
        .push_tlv(Tlv::MessagePayload(MessagePayload::new(
            AnyOctetString::from_slice(text.as_bytes()),
        )))
        .build();
    let resp = esme.call(pdu).await;
    resp.expect(DATA_SM_RESP, ESME_ROK, 2);
    let id = resp.message_id();
    assert!(!id.is_empty());
    let request = h.sim_message(&id).await["request"].clone();
    assert_eq!(request["textMessage"]["text"], text, "{request}");
    assert_eq!(request["phoneNumbers"], json!(["+491701234567"]));
    assert_eq!(request["withDeliveryReport"], true);
}
