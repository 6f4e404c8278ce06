//! Message ids: the server picks them (so a retried gateway call cannot create a second
//! message), and the id of each part of a concatenated message carries the id of the whole,
//! so query_sm and receipts can find it without a lookup table that a restart would lose.

use rand::Rng;
use rand::distr::Alphanumeric;

/// Length of a whole message's id: as long as SMSGate's own ids, well under its 36-char limit.
const ID_LEN: usize = 21;

pub fn new_message_id() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(ID_LEN)
        .map(char::from)
        .collect()
}

/// The id the ESME gets for part `sequence` of the concatenated message `message_id`.
pub fn part_id(message_id: &str, sequence: u8) -> String {
    format!("{message_id}.{sequence}")
}

/// The gateway's id for an id an ESME holds: a part id names its whole message.
pub fn gateway_id(id: &str) -> &str {
    match id.split_once('.') {
        Some((whole, seq))
            if whole.len() == ID_LEN
                && whole.bytes().all(|b| b.is_ascii_alphanumeric())
                && !seq.is_empty()
                && seq.len() <= 3
                && seq.bytes().all(|b| b.is_ascii_digit()) =>
        {
            whole
        }
        _ => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_alphanumeric() {
        let a = new_message_id();
        let b = new_message_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), ID_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn part_ids_lead_back_to_the_whole() {
        let id = new_message_id();
        assert_eq!(gateway_id(&part_id(&id, 3)), id);
        assert_eq!(gateway_id(&id), id);
        assert_eq!(gateway_id("foreign.12"), "foreign.12");
        assert_eq!(gateway_id("x.y"), "x.y");
    }
}
