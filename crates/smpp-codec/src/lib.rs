//! SMPP 3.4 on the wire: length-bounded framing, PDU decoding with the precise status each
//! malformed field earns, encoding, the `command_status` and `command_id` values, the User Data
//! Header of concatenated and ported messages, and SMPP's time format. No I/O and no policy:
//! the server, its tests and its benchmarks all speak SMPP through this crate, and the plugin SDK
//! takes its status table (without the default feature `wire`, which adds everything else).

pub mod command;
#[cfg(feature = "wire")]
mod framing;
#[cfg(feature = "wire")]
pub mod pdu;
pub mod status;
#[cfg(feature = "wire")]
pub mod time;
#[cfg(feature = "wire")]
pub mod udh;

#[cfg(feature = "wire")]
pub use framing::{MIN_READ, SmppCodec};
#[cfg(feature = "wire")]
pub use pdu::Inbound;
