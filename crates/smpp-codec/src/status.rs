//! SMPP 3.4 `command_status` values (section 5.1.3).
//!
//! A newtype over the raw integer rather than an enum: peers send values outside the
//! specification, and the session must be able to echo whatever it received without a lossy
//! conversion; the named constants are the values the specification defines.

use std::fmt;

/// An SMPP `command_status`: `ESME_ROK` or the reason a request failed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CommandStatus(pub u32);

macro_rules! statuses {
    ($($(#[doc = $doc:literal])+ $name:ident = $value:literal,)+) => {
        $($(#[doc = $doc])+ pub const $name: CommandStatus = CommandStatus($value);)+

        /// The same values as plain integers, for interfaces that carry a bare `u32` (the
        /// plugin contract's reject answers).
        pub mod code {
            $($(#[doc = $doc])+ pub const $name: u32 = $value;)+
        }

        impl CommandStatus {
            /// The specification name; `None` for values the specification reserves or
            /// leaves to vendors.
            pub fn known_name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)+
                    _ => None,
                }
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

impl CommandStatus {
    /// The specification name, for logs and metrics labels; `"UNKNOWN"` for values the
    /// specification reserves or leaves to vendors.
    pub fn name(self) -> &'static str {
        self.known_name().unwrap_or("UNKNOWN")
    }

    pub fn is_ok(self) -> bool {
        self == ESME_ROK
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:08X})", self.name(), self.0)
    }
}

impl fmt::Debug for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A request that cannot be carried out: the status the ESME gets and the reason the log
/// gets. Every stage that can refuse (decoding, binding, plugins, the gateway) says so with one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmppError {
    pub status: CommandStatus,
    pub reason: String,
}

impl SmppError {
    pub fn new(status: CommandStatus, reason: impl Into<String>) -> Self {
        SmppError {
            status,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for SmppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.name(), self.reason)
    }
}

impl std::error::Error for SmppError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ESME_RINVDSTADR.name(), "ESME_RINVDSTADR");
        assert_eq!(ESME_RINVOPTPARSTREAM.name(), "ESME_RINVOPTPARSTREAM");
        assert_eq!(CommandStatus(0x0000_0009).name(), "UNKNOWN");
        assert_eq!(ESME_RTHROTTLED.to_string(), "ESME_RTHROTTLED (0x00000058)");
    }
}
