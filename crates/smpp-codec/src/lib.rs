//! SMPP 3.4 on the wire: length-bounded framing, PDU decoding with the precise status each
//! malformed field earns, encoding, the `command_status` and `command_id` values, the User Data
//! Header of concatenated and ported messages, and SMPP's time format. No I/O and no policy:
//! the server, its tests and its benchmarks all speak SMPP through this crate.

pub mod command;
mod framing;
pub mod pdu;
pub mod status;
pub mod time;
pub mod udh;

pub use framing::SmppCodec;
pub use pdu::Inbound;
