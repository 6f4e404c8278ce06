//! How a text travels as SMS: whether it fits the GSM 7-bit alphabet and how many parts it
//! needs. These are the functions the server itself counts with (GSM 03.38 default alphabet
//! and extension table), so a limit a plugin checks is the one the message is sent under.
//!
//! ```
//! use smsgate_plugin_sdk::text;
//!
//! assert!(text::fits_gsm7("Grüße, 5€ {incl. VAT}"));
//! assert!(!text::fits_gsm7("ça va")); // Ç is in the alphabet, ç is not
//! assert_eq!(text::gsm7_septets("5€"), Some(3));
//! assert_eq!(text::segment_count(&"a".repeat(161)), 2);
//! assert_eq!(text::segment_count(&"я".repeat(71)), 2);
//! ```

pub use sms_text::{fits_gsm7, gsm7_septets, segment_count};
