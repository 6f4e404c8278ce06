//! SMPP 3.4 `command_id` values (section 5.1.2), plus the 5.0 broadcast family so that logs
//! name them when a peer sends one.

/// Set on every response `command_id`; clear on every request.
pub const RESPONSE_BIT: u32 = 0x8000_0000;

pub const GENERIC_NACK: u32 = 0x8000_0000;
pub const BIND_RECEIVER: u32 = 0x0000_0001;
pub const BIND_RECEIVER_RESP: u32 = 0x8000_0001;
pub const BIND_TRANSMITTER: u32 = 0x0000_0002;
pub const BIND_TRANSMITTER_RESP: u32 = 0x8000_0002;
pub const QUERY_SM: u32 = 0x0000_0003;
pub const QUERY_SM_RESP: u32 = 0x8000_0003;
pub const SUBMIT_SM: u32 = 0x0000_0004;
pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
pub const DELIVER_SM: u32 = 0x0000_0005;
pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
pub const UNBIND: u32 = 0x0000_0006;
pub const UNBIND_RESP: u32 = 0x8000_0006;
pub const REPLACE_SM: u32 = 0x0000_0007;
pub const REPLACE_SM_RESP: u32 = 0x8000_0007;
pub const CANCEL_SM: u32 = 0x0000_0008;
pub const CANCEL_SM_RESP: u32 = 0x8000_0008;
pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
pub const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
pub const OUTBIND: u32 = 0x0000_000B;
pub const ENQUIRE_LINK: u32 = 0x0000_0015;
pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
pub const SUBMIT_MULTI: u32 = 0x0000_0021;
pub const SUBMIT_MULTI_RESP: u32 = 0x8000_0021;
pub const ALERT_NOTIFICATION: u32 = 0x0000_0102;
pub const DATA_SM: u32 = 0x0000_0103;
pub const DATA_SM_RESP: u32 = 0x8000_0103;
pub const BROADCAST_SM: u32 = 0x0000_0111;
pub const BROADCAST_SM_RESP: u32 = 0x8000_0111;
pub const QUERY_BROADCAST_SM: u32 = 0x0000_0112;
pub const QUERY_BROADCAST_SM_RESP: u32 = 0x8000_0112;
pub const CANCEL_BROADCAST_SM: u32 = 0x0000_0113;
pub const CANCEL_BROADCAST_SM_RESP: u32 = 0x8000_0113;

/// The specification name of a `command_id`; `"unknown"` for anything else.
pub fn command_name(id: u32) -> &'static str {
    match id {
        GENERIC_NACK => "generic_nack",
        BIND_RECEIVER => "bind_receiver",
        BIND_RECEIVER_RESP => "bind_receiver_resp",
        BIND_TRANSMITTER => "bind_transmitter",
        BIND_TRANSMITTER_RESP => "bind_transmitter_resp",
        QUERY_SM => "query_sm",
        QUERY_SM_RESP => "query_sm_resp",
        SUBMIT_SM => "submit_sm",
        SUBMIT_SM_RESP => "submit_sm_resp",
        DELIVER_SM => "deliver_sm",
        DELIVER_SM_RESP => "deliver_sm_resp",
        UNBIND => "unbind",
        UNBIND_RESP => "unbind_resp",
        REPLACE_SM => "replace_sm",
        REPLACE_SM_RESP => "replace_sm_resp",
        CANCEL_SM => "cancel_sm",
        CANCEL_SM_RESP => "cancel_sm_resp",
        BIND_TRANSCEIVER => "bind_transceiver",
        BIND_TRANSCEIVER_RESP => "bind_transceiver_resp",
        OUTBIND => "outbind",
        ENQUIRE_LINK => "enquire_link",
        ENQUIRE_LINK_RESP => "enquire_link_resp",
        SUBMIT_MULTI => "submit_multi",
        SUBMIT_MULTI_RESP => "submit_multi_resp",
        ALERT_NOTIFICATION => "alert_notification",
        DATA_SM => "data_sm",
        DATA_SM_RESP => "data_sm_resp",
        BROADCAST_SM => "broadcast_sm",
        BROADCAST_SM_RESP => "broadcast_sm_resp",
        QUERY_BROADCAST_SM => "query_broadcast_sm",
        QUERY_BROADCAST_SM_RESP => "query_broadcast_sm_resp",
        CANCEL_BROADCAST_SM => "cancel_broadcast_sm",
        CANCEL_BROADCAST_SM_RESP => "cancel_broadcast_sm_resp",
        _ => "unknown",
    }
}

/// Whether `id` is a request this server accepts from an ESME, i.e. one the
/// session answers with `id | RESPONSE_BIT` rather than with generic_nack.
pub fn is_esme_request(id: u32) -> bool {
    matches!(
        id,
        BIND_RECEIVER
            | BIND_TRANSMITTER
            | BIND_TRANSCEIVER
            | QUERY_SM
            | SUBMIT_SM
            | UNBIND
            | REPLACE_SM
            | CANCEL_SM
            | ENQUIRE_LINK
            | SUBMIT_MULTI
            | DATA_SM
    )
}

/// Whether `id` is an SMPP 3.4 response (generic_nack included).
pub fn is_response(id: u32) -> bool {
    matches!(
        id,
        GENERIC_NACK
            | BIND_RECEIVER_RESP
            | BIND_TRANSMITTER_RESP
            | QUERY_SM_RESP
            | SUBMIT_SM_RESP
            | DELIVER_SM_RESP
            | UNBIND_RESP
            | REPLACE_SM_RESP
            | CANCEL_SM_RESP
            | BIND_TRANSCEIVER_RESP
            | ENQUIRE_LINK_RESP
            | SUBMIT_MULTI_RESP
            | DATA_SM_RESP
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(command_name(SUBMIT_MULTI_RESP), "submit_multi_resp");
        assert_eq!(command_name(GENERIC_NACK), "generic_nack");
        assert_eq!(command_name(0x0000_0999), "unknown");
    }

    #[test]
    fn classification() {
        assert!(is_esme_request(SUBMIT_SM));
        assert!(!is_esme_request(DELIVER_SM));
        assert!(!is_esme_request(OUTBIND));
        assert!(!is_esme_request(BROADCAST_SM));
        assert!(is_response(DELIVER_SM_RESP));
        assert!(is_response(GENERIC_NACK));
        assert!(!is_response(BROADCAST_SM_RESP));
        assert!(!is_response(0x8000_0099));
    }
}
