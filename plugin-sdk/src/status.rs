//! SMPP 3.4 `command_status` values for `Reject` answers (SMPP 3.4 §5.1.3).
//!
//! Pick the most specific one: ESMEs act on them, for example by retrying after
//! [`ESME_RTHROTTLED`] but not after [`ESME_RINVDSTADR`].

/// An SMPP `command_status`.
pub type CommandStatus = u32;

macro_rules! statuses {
    ($($(#[doc = $doc:literal])+ $name:ident = $value:literal,)+) => {
        $(
            $(#[doc = $doc])+
            pub const $name: CommandStatus = $value;
        )+

        /// The name of a status, such as `"ESME_RINVDSTADR"` for `0x0B`, for log lines; `None`
        /// for values SMPP 3.4 does not define.
        pub fn name(status: CommandStatus) -> Option<&'static str> {
            match status {
                $($value => Some(stringify!($name)),)+
                _ => None,
            }
        }
    };
}

statuses! {
    /// No error.
    ESME_ROK = 0x00,
    /// Message length is invalid.
    ESME_RINVMSGLEN = 0x01,
    /// Command length is invalid.
    ESME_RINVCMDLEN = 0x02,
    /// Invalid command ID.
    ESME_RINVCMDID = 0x03,
    /// Incorrect bind status for the given command.
    ESME_RINVBNDSTS = 0x04,
    /// ESME already in bound state.
    ESME_RALYBND = 0x05,
    /// Invalid priority flag.
    ESME_RINVPRTFLG = 0x06,
    /// Invalid registered delivery flag.
    ESME_RINVREGDLVFLG = 0x07,
    /// System error.
    ESME_RSYSERR = 0x08,
    /// Invalid source address.
    ESME_RINVSRCADR = 0x0A,
    /// Invalid destination address.
    ESME_RINVDSTADR = 0x0B,
    /// Message ID is invalid.
    ESME_RINVMSGID = 0x0C,
    /// Bind failed.
    ESME_RBINDFAIL = 0x0D,
    /// Invalid password.
    ESME_RINVPASWD = 0x0E,
    /// Invalid system ID.
    ESME_RINVSYSID = 0x0F,
    /// cancel_sm failed.
    ESME_RCANCELFAIL = 0x11,
    /// replace_sm failed.
    ESME_RREPLACEFAIL = 0x13,
    /// Message queue full.
    ESME_RMSGQFUL = 0x14,
    /// Invalid service type.
    ESME_RINVSERTYP = 0x15,
    /// Invalid number of destinations.
    ESME_RINVNUMDESTS = 0x33,
    /// Invalid distribution list name.
    ESME_RINVDLNAME = 0x34,
    /// Destination flag is invalid (submit_multi).
    ESME_RINVDESTFLAG = 0x40,
    /// Invalid submit with replace request.
    ESME_RINVSUBREP = 0x42,
    /// Invalid esm_class field data.
    ESME_RINVESMCLASS = 0x43,
    /// Cannot submit to distribution list.
    ESME_RCNTSUBDL = 0x44,
    /// submit_sm or submit_multi failed.
    ESME_RSUBMITFAIL = 0x45,
    /// Invalid source address TON.
    ESME_RINVSRCTON = 0x48,
    /// Invalid source address NPI.
    ESME_RINVSRCNPI = 0x49,
    /// Invalid destination address TON.
    ESME_RINVDSTTON = 0x50,
    /// Invalid destination address NPI.
    ESME_RINVDSTNPI = 0x51,
    /// Invalid system_type field.
    ESME_RINVSYSTYP = 0x53,
    /// Invalid replace_if_present flag.
    ESME_RINVREPFLAG = 0x54,
    /// Invalid number of messages.
    ESME_RINVNUMMSGS = 0x55,
    /// Throttling error: the ESME exceeded its allowed message limits.
    ESME_RTHROTTLED = 0x58,
    /// Invalid scheduled delivery time.
    ESME_RINVSCHED = 0x61,
    /// Invalid message validity period (expiry time).
    ESME_RINVEXPIRY = 0x62,
    /// Predefined message invalid or not found.
    ESME_RINVDFTMSGID = 0x63,
    /// ESME receiver temporary application error.
    ESME_RX_T_APPN = 0x64,
    /// ESME receiver permanent application error.
    ESME_RX_P_APPN = 0x65,
    /// ESME receiver reject message error.
    ESME_RX_R_APPN = 0x66,
    /// query_sm failed.
    ESME_RQUERYFAIL = 0x67,
    /// Error in the optional part of the PDU body.
    ESME_RINVOPTPARSTREAM = 0xC0,
    /// Optional parameter not allowed.
    ESME_ROPTPARNOTALLWD = 0xC1,
    /// Invalid parameter length.
    ESME_RINVPARLEN = 0xC2,
    /// Expected optional parameter missing.
    ESME_RMISSINGOPTPARAM = 0xC3,
    /// Invalid optional parameter value.
    ESME_RINVOPTPARAMVAL = 0xC4,
    /// Delivery failure (data_sm_resp).
    ESME_RDELIVERYFAILURE = 0xFE,
    /// Unknown error.
    ESME_RUNKNOWNERR = 0xFF,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_smpp_3_4() {
        assert_eq!(ESME_RINVPASWD, 0x0E);
        assert_eq!(ESME_RBINDFAIL, 0x0D);
        assert_eq!(ESME_RINVDSTADR, 0x0B);
        assert_eq!(ESME_RINVSRCADR, 0x0A);
        assert_eq!(ESME_RSUBMITFAIL, 0x45);
        assert_eq!(ESME_RTHROTTLED, 0x58);
        assert_eq!(ESME_RINVSYSID, 0x0F);
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(name(ESME_RTHROTTLED), Some("ESME_RTHROTTLED"));
        assert_eq!(name(0x09), None);
    }
}
