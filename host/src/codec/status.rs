//! SMPP 3.4 `command_status` and `command_id` values.
//!
//! Plain `u32` constants rather than enums: both fields travel as raw integers,
//! peers send values outside the specification, and the session must be able
//! to echo whatever it received without a lossy conversion.

// --- command_status (SMPP 3.4 section 5.1.3) ---

pub const ESME_ROK: u32 = 0x0000_0000;
pub const ESME_RINVMSGLEN: u32 = 0x0000_0001;
pub const ESME_RINVCMDLEN: u32 = 0x0000_0002;
pub const ESME_RINVCMDID: u32 = 0x0000_0003;
pub const ESME_RINVBNDSTS: u32 = 0x0000_0004;
pub const ESME_RALYBND: u32 = 0x0000_0005;
pub const ESME_RINVPRTFLG: u32 = 0x0000_0006;
pub const ESME_RINVREGDLVFLG: u32 = 0x0000_0007;
pub const ESME_RSYSERR: u32 = 0x0000_0008;
pub const ESME_RINVSRCADR: u32 = 0x0000_000A;
pub const ESME_RINVDSTADR: u32 = 0x0000_000B;
pub const ESME_RINVMSGID: u32 = 0x0000_000C;
pub const ESME_RBINDFAIL: u32 = 0x0000_000D;
pub const ESME_RINVPASWD: u32 = 0x0000_000E;
pub const ESME_RINVSYSID: u32 = 0x0000_000F;
pub const ESME_RCANCELFAIL: u32 = 0x0000_0011;
pub const ESME_RREPLACEFAIL: u32 = 0x0000_0013;
pub const ESME_RMSGQFUL: u32 = 0x0000_0014;
pub const ESME_RINVSERTYP: u32 = 0x0000_0015;
pub const ESME_RINVNUMDESTS: u32 = 0x0000_0033;
pub const ESME_RINVDLNAME: u32 = 0x0000_0034;
pub const ESME_RINVDESTFLAG: u32 = 0x0000_0040;
pub const ESME_RINVSUBREP: u32 = 0x0000_0042;
pub const ESME_RINVESMCLASS: u32 = 0x0000_0043;
pub const ESME_RCNTSUBDL: u32 = 0x0000_0044;
pub const ESME_RSUBMITFAIL: u32 = 0x0000_0045;
pub const ESME_RINVSRCTON: u32 = 0x0000_0048;
pub const ESME_RINVSRCNPI: u32 = 0x0000_0049;
pub const ESME_RINVDSTTON: u32 = 0x0000_0050;
pub const ESME_RINVDSTNPI: u32 = 0x0000_0051;
pub const ESME_RINVSYSTYP: u32 = 0x0000_0053;
pub const ESME_RINVREPFLAG: u32 = 0x0000_0054;
pub const ESME_RINVNUMMSGS: u32 = 0x0000_0055;
pub const ESME_RTHROTTLED: u32 = 0x0000_0058;
pub const ESME_RINVSCHED: u32 = 0x0000_0061;
pub const ESME_RINVEXPIRY: u32 = 0x0000_0062;
pub const ESME_RINVDFTMSGID: u32 = 0x0000_0063;
pub const ESME_RX_T_APPN: u32 = 0x0000_0064;
pub const ESME_RX_P_APPN: u32 = 0x0000_0065;
pub const ESME_RX_R_APPN: u32 = 0x0000_0066;
pub const ESME_RQUERYFAIL: u32 = 0x0000_0067;
pub const ESME_RINVOPTPARSTREAM: u32 = 0x0000_00C0;
pub const ESME_ROPTPARNOTALLWD: u32 = 0x0000_00C1;
pub const ESME_RINVPARLEN: u32 = 0x0000_00C2;
pub const ESME_RMISSINGOPTPARAM: u32 = 0x0000_00C3;
pub const ESME_RINVOPTPARAMVAL: u32 = 0x0000_00C4;
pub const ESME_RDELIVERYFAILURE: u32 = 0x0000_00FE;
pub const ESME_RUNKNOWNERR: u32 = 0x0000_00FF;

/// The specification name of a `command_status`, for logs and metrics labels.
/// Values the specification reserves or leaves to vendors map to `"UNKNOWN"`.
pub fn name(status: u32) -> &'static str {
    match status {
        ESME_ROK => "ESME_ROK",
        ESME_RINVMSGLEN => "ESME_RINVMSGLEN",
        ESME_RINVCMDLEN => "ESME_RINVCMDLEN",
        ESME_RINVCMDID => "ESME_RINVCMDID",
        ESME_RINVBNDSTS => "ESME_RINVBNDSTS",
        ESME_RALYBND => "ESME_RALYBND",
        ESME_RINVPRTFLG => "ESME_RINVPRTFLG",
        ESME_RINVREGDLVFLG => "ESME_RINVREGDLVFLG",
        ESME_RSYSERR => "ESME_RSYSERR",
        ESME_RINVSRCADR => "ESME_RINVSRCADR",
        ESME_RINVDSTADR => "ESME_RINVDSTADR",
        ESME_RINVMSGID => "ESME_RINVMSGID",
        ESME_RBINDFAIL => "ESME_RBINDFAIL",
        ESME_RINVPASWD => "ESME_RINVPASWD",
        ESME_RINVSYSID => "ESME_RINVSYSID",
        ESME_RCANCELFAIL => "ESME_RCANCELFAIL",
        ESME_RREPLACEFAIL => "ESME_RREPLACEFAIL",
        ESME_RMSGQFUL => "ESME_RMSGQFUL",
        ESME_RINVSERTYP => "ESME_RINVSERTYP",
        ESME_RINVNUMDESTS => "ESME_RINVNUMDESTS",
        ESME_RINVDLNAME => "ESME_RINVDLNAME",
        ESME_RINVDESTFLAG => "ESME_RINVDESTFLAG",
        ESME_RINVSUBREP => "ESME_RINVSUBREP",
        ESME_RINVESMCLASS => "ESME_RINVESMCLASS",
        ESME_RCNTSUBDL => "ESME_RCNTSUBDL",
        ESME_RSUBMITFAIL => "ESME_RSUBMITFAIL",
        ESME_RINVSRCTON => "ESME_RINVSRCTON",
        ESME_RINVSRCNPI => "ESME_RINVSRCNPI",
        ESME_RINVDSTTON => "ESME_RINVDSTTON",
        ESME_RINVDSTNPI => "ESME_RINVDSTNPI",
        ESME_RINVSYSTYP => "ESME_RINVSYSTYP",
        ESME_RINVREPFLAG => "ESME_RINVREPFLAG",
        ESME_RINVNUMMSGS => "ESME_RINVNUMMSGS",
        ESME_RTHROTTLED => "ESME_RTHROTTLED",
        ESME_RINVSCHED => "ESME_RINVSCHED",
        ESME_RINVEXPIRY => "ESME_RINVEXPIRY",
        ESME_RINVDFTMSGID => "ESME_RINVDFTMSGID",
        ESME_RX_T_APPN => "ESME_RX_T_APPN",
        ESME_RX_P_APPN => "ESME_RX_P_APPN",
        ESME_RX_R_APPN => "ESME_RX_R_APPN",
        ESME_RQUERYFAIL => "ESME_RQUERYFAIL",
        ESME_RINVOPTPARSTREAM => "ESME_RINVOPTPARSTREAM",
        ESME_ROPTPARNOTALLWD => "ESME_ROPTPARNOTALLWD",
        ESME_RINVPARLEN => "ESME_RINVPARLEN",
        ESME_RMISSINGOPTPARAM => "ESME_RMISSINGOPTPARAM",
        ESME_RINVOPTPARAMVAL => "ESME_RINVOPTPARAMVAL",
        ESME_RDELIVERYFAILURE => "ESME_RDELIVERYFAILURE",
        ESME_RUNKNOWNERR => "ESME_RUNKNOWNERR",
        _ => "UNKNOWN",
    }
}

// --- command_id (SMPP 3.4 section 5.1.2, plus the 5.0 broadcast family so
// that logs name them when a peer sends one) ---

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
        assert_eq!(name(ESME_RINVDSTADR), "ESME_RINVDSTADR");
        assert_eq!(name(ESME_RINVOPTPARSTREAM), "ESME_RINVOPTPARSTREAM");
        assert_eq!(name(0x0000_0009), "UNKNOWN");
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
