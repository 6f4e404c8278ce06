//! SMPP 3.4 `command_status` values for `Reject` answers (SMPP 3.4 §5.1.3): the server's own
//! table, as the plain integers the plugin contract carries.
//!
//! Pick the most specific one: ESMEs act on them, for example by retrying after
//! [`ESME_RTHROTTLED`] but not after [`ESME_RINVDSTADR`].

pub use smpp_codec::status::code::*;

/// An SMPP `command_status`.
pub type CommandStatus = u32;

/// The name of a status, such as `"ESME_RINVDSTADR"` for `0x0B`, for log lines; `None` for
/// values SMPP 3.4 does not define.
pub fn name(status: CommandStatus) -> Option<&'static str> {
    smpp_codec::status::CommandStatus(status).known_name()
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
