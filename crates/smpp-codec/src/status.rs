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
    ($($name:ident = $value:literal,)+) => {
        $(pub const $name: CommandStatus = CommandStatus($value);)+

        impl CommandStatus {
            /// The specification name, for logs and metrics labels; values the specification
            /// reserves or leaves to vendors are `"UNKNOWN"`.
            pub fn name(self) -> &'static str {
                match self.0 {
                    $($value => stringify!($name),)+
                    _ => "UNKNOWN",
                }
            }
        }
    };
}

statuses! {
    ESME_ROK = 0x0000_0000,
    ESME_RINVMSGLEN = 0x0000_0001,
    ESME_RINVCMDLEN = 0x0000_0002,
    ESME_RINVCMDID = 0x0000_0003,
    ESME_RINVBNDSTS = 0x0000_0004,
    ESME_RALYBND = 0x0000_0005,
    ESME_RINVPRTFLG = 0x0000_0006,
    ESME_RINVREGDLVFLG = 0x0000_0007,
    ESME_RSYSERR = 0x0000_0008,
    ESME_RINVSRCADR = 0x0000_000A,
    ESME_RINVDSTADR = 0x0000_000B,
    ESME_RINVMSGID = 0x0000_000C,
    ESME_RBINDFAIL = 0x0000_000D,
    ESME_RINVPASWD = 0x0000_000E,
    ESME_RINVSYSID = 0x0000_000F,
    ESME_RCANCELFAIL = 0x0000_0011,
    ESME_RREPLACEFAIL = 0x0000_0013,
    ESME_RMSGQFUL = 0x0000_0014,
    ESME_RINVSERTYP = 0x0000_0015,
    ESME_RINVNUMDESTS = 0x0000_0033,
    ESME_RINVDLNAME = 0x0000_0034,
    ESME_RINVDESTFLAG = 0x0000_0040,
    ESME_RINVSUBREP = 0x0000_0042,
    ESME_RINVESMCLASS = 0x0000_0043,
    ESME_RCNTSUBDL = 0x0000_0044,
    ESME_RSUBMITFAIL = 0x0000_0045,
    ESME_RINVSRCTON = 0x0000_0048,
    ESME_RINVSRCNPI = 0x0000_0049,
    ESME_RINVDSTTON = 0x0000_0050,
    ESME_RINVDSTNPI = 0x0000_0051,
    ESME_RINVSYSTYP = 0x0000_0053,
    ESME_RINVREPFLAG = 0x0000_0054,
    ESME_RINVNUMMSGS = 0x0000_0055,
    ESME_RTHROTTLED = 0x0000_0058,
    ESME_RINVSCHED = 0x0000_0061,
    ESME_RINVEXPIRY = 0x0000_0062,
    ESME_RINVDFTMSGID = 0x0000_0063,
    ESME_RX_T_APPN = 0x0000_0064,
    ESME_RX_P_APPN = 0x0000_0065,
    ESME_RX_R_APPN = 0x0000_0066,
    ESME_RQUERYFAIL = 0x0000_0067,
    ESME_RINVOPTPARSTREAM = 0x0000_00C0,
    ESME_ROPTPARNOTALLWD = 0x0000_00C1,
    ESME_RINVPARLEN = 0x0000_00C2,
    ESME_RMISSINGOPTPARAM = 0x0000_00C3,
    ESME_RINVOPTPARAMVAL = 0x0000_00C4,
    ESME_RDELIVERYFAILURE = 0x0000_00FE,
    ESME_RUNKNOWNERR = 0x0000_00FF,
}

impl CommandStatus {
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
