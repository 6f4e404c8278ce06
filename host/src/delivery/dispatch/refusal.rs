//! Which answers of an ESME to a deliver_sm a later attempt can change.
//!
//! As Kannel and Jasmin do for an SMSC's answers, a few statuses are temporary by nature
//! (queue full, throttled, system error, the ESME's temporary application error) and so is no
//! answer at all; those are retried until the TTL. Statuses that object to the deliver_sm
//! itself (its addresses, fields, TLVs, the message) get the same answer for the same bytes, so
//! after `delivery.dead_letter_after` of them the item is set aside. Unlike Kannel, which fails
//! a message on any other status, anything not named here counts as temporary: statuses that
//! describe other operations (bind, submit, query) and vendor-specific ones say nothing certain
//! about the message, and the item keeps its chance until the TTL.

use smpp_codec::status::*;

/// Whether a refusal can change on a later attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Retried with back-off until the TTL.
    Transient,
    /// The same deliver_sm gets the same answer; what the ESME objects to.
    Permanent(&'static str),
}

/// SMPP 5.0's ESME_RINVDCS, which SMPP 3.4 lacks and some 3.4 ESMEs send anyway.
const ESME_RINVDCS: CommandStatus = CommandStatus(0x104);

/// The README's status table lists the same statuses; a change here belongs there too.
pub fn classify(status: CommandStatus) -> Refusal {
    let objection = match status {
        ESME_RINVMSGLEN => "the ESME refused the message length or text",
        ESME_RINVCMDLEN => "the ESME could not read the deliver_sm",
        ESME_RINVCMDID => "the ESME does not take deliver_sm",
        ESME_RINVPRTFLG => "the ESME refused priority_flag",
        ESME_RINVREGDLVFLG => "the ESME refused registered_delivery",
        ESME_RINVSRCADR => "the ESME refused source_addr",
        ESME_RINVDSTADR => "the ESME refused destination_addr",
        ESME_RINVMSGID => "the ESME does not know the receipted message id",
        ESME_RINVSERTYP => "the ESME refused service_type",
        ESME_RINVESMCLASS => "the ESME refused esm_class",
        ESME_RINVSRCTON => "the ESME refused the source TON",
        ESME_RINVSRCNPI => "the ESME refused the source NPI",
        ESME_RINVDSTTON => "the ESME refused the destination TON",
        ESME_RINVDSTNPI => "the ESME refused the destination NPI",
        ESME_RINVREPFLAG => "the ESME refused replace_if_present_flag",
        ESME_RINVSCHED => "the ESME refused schedule_delivery_time",
        ESME_RINVEXPIRY => "the ESME refused validity_period",
        ESME_RINVDFTMSGID => "the ESME refused sm_default_msg_id",
        ESME_RX_P_APPN => "the ESME's application refused the message permanently",
        ESME_RX_R_APPN => "the ESME's application rejected the message",
        ESME_RINVOPTPARSTREAM => "the ESME could not read the TLVs",
        ESME_ROPTPARNOTALLWD => "the ESME does not allow one of the TLVs",
        ESME_RINVPARLEN => "the ESME refused a TLV's length",
        ESME_RMISSINGOPTPARAM => "the ESME misses a TLV it requires",
        ESME_RINVOPTPARAMVAL => "the ESME refused a TLV's value",
        ESME_RINVDCS => "the ESME refused data_coding",
        _ => return Refusal::Transient,
    };
    Refusal::Permanent(objection)
}

/// The reason a dead letter is kept with and logged under: the `objection` of a permanent
/// `status`, made precise with what the queued `deliver_sm` body shows where it shows the
/// cause (an empty address, the value refused).
pub fn reason(status: CommandStatus, objection: &str, deliver_sm: &[u8]) -> String {
    let Some(fields) = Fields::read(deliver_sm) else {
        return objection.to_owned();
    };
    let receipt = fields.is_receipt();
    match status {
        ESME_RINVDSTADR if fields.destination.2.is_empty() && receipt => {
            "destination_addr is empty: the submit_sm this receipt answers had no source_addr"
                .to_owned()
        }
        ESME_RINVDSTADR if fields.destination.2.is_empty() => {
            "destination_addr is empty: the phone did not report its own number \
             (delivery.mo_destination sets one)"
                .to_owned()
        }
        ESME_RINVSRCADR if fields.source.2.is_empty() => "source_addr is empty".to_owned(),
        ESME_RINVDSTADR | ESME_RINVDSTTON | ESME_RINVDSTNPI => {
            let (ton, npi, addr) = &fields.destination;
            format!("{objection}: destination_addr {addr:?} TON {ton} NPI {npi}")
        }
        ESME_RINVSRCADR | ESME_RINVSRCTON | ESME_RINVSRCNPI => {
            let (ton, npi, addr) = &fields.source;
            format!("{objection}: source_addr {addr:?} TON {ton} NPI {npi}")
        }
        ESME_RINVESMCLASS => format!("{objection}: esm_class 0x{:02X}", fields.esm_class),
        ESME_RINVDCS => format!("{objection}: data_coding 0x{:02X}", fields.data_coding),
        _ => objection.to_owned(),
    }
}

/// The head of a deliver_sm body (SMPP 3.4 §4.6.1) up to data_coding; addresses as (TON, NPI,
/// address).
struct Fields {
    source: (u8, u8, String),
    destination: (u8, u8, String),
    esm_class: u8,
    data_coding: u8,
}

/// Whether a queued deliver_sm body is a delivery receipt rather than an incoming SMS. Asked for
/// every deliver_sm an ESME accepts, so it steps over the addresses without copying them.
pub fn is_receipt(deliver_sm: &[u8]) -> bool {
    fn after_c_string(rest: &[u8]) -> Option<&[u8]> {
        let end = rest.iter().position(|&octet| octet == 0)?;
        Some(&rest[end + 1..])
    }
    let esm_class = after_c_string(deliver_sm) // service_type
        .and_then(|rest| after_c_string(rest.get(2..)?)) // source TON, NPI, addr
        .and_then(|rest| after_c_string(rest.get(2..)?)) // destination TON, NPI, addr
        .and_then(|rest| rest.first().copied());
    esm_class.is_some_and(receipt_class)
}

/// esm_class 0x04 is a delivery receipt; everything else this server sends is an SMS the phone
/// received.
fn receipt_class(esm_class: u8) -> bool {
    esm_class & 0x3C == 0x04
}

impl Fields {
    fn is_receipt(&self) -> bool {
        receipt_class(self.esm_class)
    }

    /// `None` for a body cut short, which this server does not queue.
    fn read(body: &[u8]) -> Option<Fields> {
        let mut rest = body;
        let mut octet = || {
            let (&first, tail) = rest.split_first()?;
            rest = tail;
            Some(first)
        };
        let _service_type = c_string(&mut octet)?;
        let source = (octet()?, octet()?, c_string(&mut octet)?);
        let destination = (octet()?, octet()?, c_string(&mut octet)?);
        let esm_class = octet()?;
        let _protocol_id = octet()?;
        let _priority_flag = octet()?;
        let _schedule_delivery_time = c_string(&mut octet)?;
        let _validity_period = c_string(&mut octet)?;
        let _registered_delivery = octet()?;
        let _replace_if_present_flag = octet()?;
        let data_coding = octet()?;
        Some(Fields {
            source,
            destination,
            esm_class,
            data_coding,
        })
    }
}

/// A C-Octet String, read as Latin-1 as the codec reads addresses.
fn c_string(octet: &mut impl FnMut() -> Option<u8>) -> Option<String> {
    let mut text = String::new();
    loop {
        match octet()? {
            0 => return Some(text),
            byte => text.push(char::from(byte)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{self, Content, LongMessages};
    use sms_text::DefaultAlphabet;

    #[test]
    fn statuses_about_the_message_are_permanent_the_rest_transient() {
        for status in [
            ESME_RINVMSGLEN,
            ESME_RINVCMDLEN,
            ESME_RINVCMDID,
            ESME_RINVSRCADR,
            ESME_RINVDSTADR,
            ESME_RINVMSGID,
            ESME_RINVESMCLASS,
            ESME_RINVDSTTON,
            ESME_RX_P_APPN,
            ESME_RX_R_APPN,
            ESME_RINVOPTPARAMVAL,
            ESME_RINVDCS,
        ] {
            assert!(
                matches!(classify(status), Refusal::Permanent(_)),
                "{status} should be permanent"
            );
        }
        for status in [
            ESME_RSYSERR,
            ESME_RMSGQFUL,
            ESME_RTHROTTLED,
            ESME_RX_T_APPN,
            ESME_RINVBNDSTS,
            ESME_RSUBMITFAIL,
            ESME_RUNKNOWNERR,
            // Reserved, and vendor-specific.
            CommandStatus(0x09),
            CommandStatus(0x400),
            CommandStatus(0x4FF),
        ] {
            assert_eq!(classify(status), Refusal::Transient, "{status}");
        }
    }

    fn incoming(destination: &str) -> Vec<u8> {
        receipt::build_incoming(
            &receipt::sme_address("+4915112345678"),
            &receipt::sme_address(destination),
            Content::Text("hello"),
            DefaultAlphabet::Gsm7,
            LongMessages::Udh,
            0,
        )[0]
        .encode()
        .to_vec()
    }

    #[test]
    fn receipts_are_told_from_incoming_sms_by_their_esm_class() {
        let mut pdu = receipt::build_incoming(
            &receipt::sme_address("+4915112345678"),
            &receipt::sme_address("+4930999999"),
            Content::Text("hello"),
            DefaultAlphabet::Gsm7,
            LongMessages::Udh,
            0,
        )
        .remove(0);
        assert!(!is_receipt(&pdu.encode()));
        pdu.esm_class = 0x04;
        let body = pdu.encode();
        assert!(is_receipt(&body));
        assert!(Fields::read(&body).is_some_and(|fields| fields.is_receipt()));
        assert!(!is_receipt(&body[..10]), "a body cut short");
    }

    fn reason_for(status: CommandStatus, body: &[u8]) -> String {
        let Refusal::Permanent(objection) = classify(status) else {
            panic!("{status} is not permanent");
        };
        reason(status, objection, body)
    }

    #[test]
    fn the_reason_names_what_the_deliver_sm_shows() {
        let no_number = reason_for(ESME_RINVDSTADR, &incoming(""));
        assert!(
            no_number.starts_with("destination_addr is empty")
                && no_number.contains("delivery.mo_destination"),
            "{no_number}"
        );
        assert_eq!(
            reason_for(ESME_RINVDSTADR, &incoming("+4930999999")),
            "the ESME refused destination_addr: destination_addr \"4930999999\" TON 1 NPI 1"
        );
        assert_eq!(
            reason_for(ESME_RINVESMCLASS, &incoming("+4930999999")),
            "the ESME refused esm_class: esm_class 0x00"
        );
        assert_eq!(
            reason_for(ESME_RX_P_APPN, &incoming("+4930999999")),
            "the ESME's application refused the message permanently"
        );
        // A body cut short still gets the status's own words.
        assert_eq!(
            reason_for(ESME_RINVDSTADR, &incoming("")[..5]),
            "the ESME refused destination_addr"
        );
    }
}
