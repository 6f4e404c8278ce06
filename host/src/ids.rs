//! Message ids: the server picks them (so a retried gateway call cannot create a second
//! message), and the id of each part of a concatenated message carries the id of the whole,
//! so query_sm and receipts can find it without a lookup table that a restart would lose.
//!
//! Some ESMEs keep message ids in a 64-bit integer column, so besides the default 21-character
//! alphanumeric ids the server can mint numeric ones (`smpp.message_id_format`):
//!
//! | format         | whole message (= gateway id)        | part `n` (0..=255)               |
//! |----------------|-------------------------------------|----------------------------------|
//! | `alphanumeric` | 21 of `[0-9A-Za-z]`                 | `{whole}.{n}`                    |
//! | `hex`          | 14 lowercase hex digits, first ≠ 0  | `{whole}{n:02x}`: 16 digits, u64 |
//! | `decimal`      | 15 decimal digits, first ≠ 0        | `{whole}{n:03}`: 18 digits, i64  |
//!
//! A part id is its whole id plus a suffix, so [`gateway_id`] is a slice of what the ESME sends.
//! The first digit is never 0 because an ESME that stores the id as a number prints it back
//! without leading zeros, which would shorten it. Every shape has its own length (wholes 14,
//! 15, 21; parts 16, 18, 23 to 25 with a dot), so no whole id reads as a part of another and
//! [`gateway_id`] needs no setting: ids handed out before a restart with another format keep
//! leading to their messages.
//!
//! Uniqueness. SMSGate keys messages by (id, device) and answers a reused id with 409, which
//! the gateway client takes for an earlier attempt of the same message: a collision would
//! silently drop a message. Random numeric ids would collide with birthday odds T²/2N — for
//! decimal (N = 9·10^14 wholes) 1 in 1,800 after a million ids, even odds after 35 million; hex
//! (N = 15·16^13 ≈ 6.8·10^16) 1 in 135,000 after a million. So numeric ids come from a counter
//! that starts at a random point of the N values: one process never repeats an id before it has
//! minted N of them, and two processes (a restart, a replica) that mint a and b ids meet only
//! when their ranges overlap, with probability about (a+b)/N — 2.2·10^-9 for decimal and
//! 3·10^-11 for hex at a million ids each. Alphanumeric ids stay random: 62^21 ≈ 2^125 values.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};

/// Length of a whole message's id: as long as SMSGate's own ids, well under its 36-char limit.
const ID_LEN: usize = 21;

/// How the ids the ESMEs see are spelled; one per server, fixed at start-up ([`set_format`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum MessageIdFormat {
    #[default]
    Alphanumeric,
    /// At most 16 lowercase hex digits: fits a u64.
    Hex,
    /// At most 18 decimal digits, no leading zero: fits an i64.
    Decimal,
}

impl MessageIdFormat {
    /// The spelling accepted by [`FromStr`] and the configuration, produced by [`fmt::Display`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alphanumeric => "alphanumeric",
            Self::Hex => "hex",
            Self::Decimal => "decimal",
        }
    }

    fn numeric(self) -> Option<&'static Numeric> {
        match self {
            Self::Alphanumeric => None,
            Self::Hex => Some(&HEX),
            Self::Decimal => Some(&DECIMAL),
        }
    }
}

impl fmt::Display for MessageIdFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message id format name that is none of the supported ones.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown message id format {0:?}: expected one of alphanumeric, hex, decimal")]
pub struct UnknownMessageIdFormat(pub String);

// Trimmed and case-blind like the other enumerated settings, since env values are hand-typed.
impl FromStr for MessageIdFormat {
    type Err = UnknownMessageIdFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Alphanumeric, Self::Hex, Self::Decimal]
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownMessageIdFormat(s.to_owned()))
    }
}

impl TryFrom<String> for MessageIdFormat {
    type Error = UnknownMessageIdFormat;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

static FORMAT: OnceLock<MessageIdFormat> = OnceLock::new();

/// Fixes the format of the ids this process mints. The first call wins: an ESME that parses ids
/// as numbers must not get a 21-character id from the same server later. A later call with
/// another format is ignored with a warning rather than a panic, because routing never depends
/// on the setting ([`gateway_id`] reads the shape) and start-up may run more than once in one
/// process (tests).
pub fn set_format(format: MessageIdFormat) {
    set_once(&FORMAT, format);
}

fn set_once(cell: &OnceLock<MessageIdFormat>, format: MessageIdFormat) {
    let kept = *cell.get_or_init(|| format);
    if kept != format {
        tracing::warn!(%kept, ignored = %format, "message id format is fixed at start-up");
    }
}

/// The format [`new_message_id`] uses: the one set at start-up, else alphanumeric.
pub fn format() -> MessageIdFormat {
    FORMAT.get().copied().unwrap_or_default()
}

pub fn new_message_id() -> String {
    mint(format())
}

fn mint(format: MessageIdFormat) -> String {
    match format.numeric() {
        None => rand::rng()
            .sample_iter(&Alphanumeric)
            .take(ID_LEN)
            .map(char::from)
            .collect(),
        Some(numeric) => numeric.mint(),
    }
}

/// The id the ESME gets for part `sequence` of the concatenated message `message_id`. The
/// suffix follows the shape of `message_id`, not the setting, so it always matches what
/// [`gateway_id`] takes apart.
pub fn part_id(message_id: &str, sequence: u8) -> String {
    if HEX.is_whole(message_id) {
        format!("{message_id}{sequence:02x}")
    } else if DECIMAL.is_whole(message_id) {
        format!("{message_id}{sequence:03}")
    } else {
        format!("{message_id}.{sequence}")
    }
}

/// The gateway's id for an id an ESME holds: a part id names its whole message. Every format is
/// recognised whatever the setting, so ids from before a restart with another format still work.
pub fn gateway_id(id: &str) -> &str {
    if let Some((whole, seq)) = id.split_once('.') {
        if whole.len() == ID_LEN
            && whole.bytes().all(|b| b.is_ascii_alphanumeric())
            && !seq.is_empty()
            && seq.len() <= 3
            && seq.bytes().all(|b| b.is_ascii_digit())
        {
            return whole;
        }
        return id;
    }
    HEX.whole_of_part(id)
        .or_else(|| DECIMAL.whole_of_part(id))
        .unwrap_or(id)
}

/// A numeric format: whole ids of `whole_len` digits in `radix`, parts with `suffix_len` more.
struct Numeric {
    radix: u64,
    whole_len: usize,
    suffix_len: usize,
    /// Whether a byte is a digit of an id the ESME sends back.
    is_digit: fn(&u8) -> bool,
}

/// An ESME that printed its u64 may send a hex id back in upper case. The whole id then keeps
/// that case: found if the gateway compares ids case-blind, and not found otherwise, which is
/// no worse than passing the unrecognised part id on.
const HEX: Numeric = Numeric {
    radix: 16,
    whole_len: 14,
    suffix_len: 2,
    is_digit: u8::is_ascii_hexdigit,
};

const DECIMAL: Numeric = Numeric {
    radix: 10,
    whole_len: 15,
    suffix_len: 3,
    is_digit: u8::is_ascii_digit,
};

/// Spreads consecutive counts over the whole range (`x ↦ x·SPREAD mod N` is a bijection as
/// SPREAD shares no factor with N = 15·2^52 or 9·10^14), so that an ESME cannot read from two of
/// its ids how many messages others sent in between. It hides nothing from someone who reads
/// this; ids were never a credential (query_sm and cancel_sm run with the ESME's own account).
const SPREAD: u128 = 0x9e37_79b9_7f4a_7c19;

/// Counts minted numeric ids; see the module comment for why a counter and not fresh randomness.
static MINTED: AtomicU64 = AtomicU64::new(0);
static START: LazyLock<u64> = LazyLock::new(|| rand::rng().random());

impl Numeric {
    /// Smallest whole value: the first digit is not 0.
    fn lowest(&self) -> u64 {
        self.radix.pow(self.whole_len as u32 - 1)
    }

    /// How many whole values there are.
    fn count(&self) -> u64 {
        (self.radix - 1) * self.lowest()
    }

    fn mint(&self) -> String {
        let n = u128::from(self.count());
        let slot = (u128::from(*START) + u128::from(MINTED.fetch_add(1, Ordering::Relaxed))) % n;
        let spread = u64::try_from(slot * SPREAD % n).expect("below count, a u64");
        let value = self.lowest() + spread;
        if self.radix == 16 {
            format!("{value:x}")
        } else {
            value.to_string()
        }
    }

    /// Whether `id` is a whole id as this format mints it (lower case, for [`part_id`]).
    fn is_whole(&self, id: &str) -> bool {
        id.len() == self.whole_len
            && !id.starts_with('0')
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (self.radix == 16 && matches!(b, b'a'..=b'f')))
    }

    /// The whole id inside a part id of this format.
    fn whole_of_part<'a>(&self, id: &'a str) -> Option<&'a str> {
        if id.len() != self.whole_len + self.suffix_len
            || id.starts_with('0')
            || !id.bytes().all(|b| (self.is_digit)(&b))
        {
            return None;
        }
        let (whole, suffix) = id.split_at(self.whole_len);
        // Two hex digits are always a u8; three decimal ones may not be, and then it is no part.
        let sequence = u64::from_str_radix(suffix, self.radix as u32).ok()?;
        (sequence <= u64::from(u8::MAX)).then_some(whole)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const SEQUENCES: [u8; 6] = [0, 1, 2, 99, 254, 255];

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

    /// Checks one format over 10,000 whole ids and some parts of each; `check` gets every id.
    fn exercise(
        format: MessageIdFormat,
        whole_len: usize,
        part_len: fn(u8) -> usize,
        check: fn(&str),
    ) {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let whole = mint(format);
            assert_eq!(whole.len(), whole_len, "{whole}");
            check(&whole);
            assert_eq!(gateway_id(&whole), whole);
            for sequence in SEQUENCES {
                let part = part_id(&whole, sequence);
                assert_eq!(part.len(), part_len(sequence), "{part}");
                check(&part);
                assert_eq!(gateway_id(&part), whole, "{part}");
                assert!(seen.insert(part.clone()), "{part} twice");
            }
            assert!(seen.insert(whole.clone()), "{whole} twice");
        }
    }

    #[test]
    fn alphanumeric_format() {
        exercise(
            MessageIdFormat::Alphanumeric,
            21,
            |sequence| 22 + sequence.to_string().len(),
            |id| assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')),
        );
    }

    #[test]
    fn hex_ids_are_lowercase_u64s() {
        exercise(
            MessageIdFormat::Hex,
            14,
            |_| 16,
            |id| {
                assert!(id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
                // What an ESME that keeps a u64 sends back is what it got: no leading zero lost.
                let value = u64::from_str_radix(id, 16).unwrap();
                assert_eq!(format!("{value:x}"), id);
            },
        );
    }

    #[test]
    fn decimal_ids_are_i64s() {
        exercise(
            MessageIdFormat::Decimal,
            15,
            |_| 18,
            |id| {
                assert!(id.bytes().all(|b| b.is_ascii_digit()));
                let value: i64 = id.parse().unwrap();
                assert!(value > 0);
                assert_eq!(value.to_string(), id);
            },
        );
    }

    #[test]
    fn the_largest_ids_still_fit() {
        let hex = part_id("ffffffffffffff", 255);
        assert_eq!(hex, "ffffffffffffffff");
        assert_eq!(u64::from_str_radix(&hex, 16).unwrap(), u64::MAX);
        assert_eq!(gateway_id(&hex), "ffffffffffffff");
        let decimal = part_id("999999999999999", 255);
        assert_eq!(decimal, "999999999999999255");
        assert!(decimal.parse::<i64>().is_ok());
        assert_eq!(gateway_id(&decimal), "999999999999999");
        assert_eq!(part_id("100000000000000", 0), "100000000000000000");
        assert_eq!(gateway_id("100000000000000000"), "100000000000000");
    }

    #[test]
    fn ids_of_every_format_are_recognised_whatever_the_setting() {
        let alnum = "AbCdEfGhIjKlMnOpQrStU";
        assert_eq!(gateway_id(&format!("{alnum}.255")), alnum);
        for (id, gateway) in [
            // Wholes are never read as parts.
            ("1234567890abcd", "1234567890abcd"),
            ("123456789012345", "123456789012345"),
            ("12345678901234", "12345678901234"),
            // Parts of each numeric format.
            ("1234567890abcd07", "1234567890abcd"),
            ("1234567890123407", "12345678901234"),
            ("123456789012345007", "123456789012345"),
            // An ESME that prints its u64 in upper case.
            ("1234567890ABCDFF", "1234567890ABCD"),
            // Not ours: leading zero, a sequence above 255, other lengths, other characters.
            ("0234567890abcd07", "0234567890abcd07"),
            ("023456789012345007", "023456789012345007"),
            ("123456789012345256", "123456789012345256"),
            ("12345678901234567", "12345678901234567"),
            ("1234567890abcg07", "1234567890abcg07"),
            ("12345678901234500a", "12345678901234500a"),
            ("", ""),
        ] {
            assert_eq!(gateway_id(id), gateway, "{id}");
        }
    }

    #[test]
    fn part_ids_follow_the_shape_of_the_whole() {
        assert_eq!(part_id("1234567890abcd", 10), "1234567890abcd0a");
        assert_eq!(part_id("123456789012345", 10), "123456789012345010");
        // Anything else keeps the dotted form, as before numeric formats.
        assert_eq!(part_id("1234567890ABCD", 10), "1234567890ABCD.10");
        assert_eq!(part_id("023456789012345", 10), "023456789012345.10");
        assert_eq!(part_id("foreign", 1), "foreign.1");
    }

    #[test]
    fn the_spread_is_a_bijection() {
        for numeric in [&HEX, &DECIMAL] {
            let (mut a, mut b) = (SPREAD, u128::from(numeric.count()));
            while b != 0 {
                (a, b) = (b, a % b);
            }
            assert_eq!(a, 1, "SPREAD shares a factor with {}", numeric.count());
        }
        assert_eq!(HEX.count(), 15 << 52);
        assert_eq!(DECIMAL.count(), 9 * 10u64.pow(14));
    }

    #[test]
    fn format_names() {
        for (text, format) in [
            ("alphanumeric", MessageIdFormat::Alphanumeric),
            (" Hex ", MessageIdFormat::Hex),
            ("DECIMAL", MessageIdFormat::Decimal),
        ] {
            assert_eq!(text.parse::<MessageIdFormat>(), Ok(format));
        }
        let err = "base64".parse::<MessageIdFormat>().unwrap_err().to_string();
        assert!(err.contains("alphanumeric, hex, decimal"), "{err}");
        assert_eq!(
            serde_json::to_string(&MessageIdFormat::Decimal).unwrap(),
            "\"decimal\""
        );
        let parsed: MessageIdFormat = serde_json::from_str("\"hex\"").unwrap();
        assert_eq!(parsed, MessageIdFormat::Hex);
        assert_eq!(MessageIdFormat::default(), MessageIdFormat::Alphanumeric);
    }

    #[test]
    fn the_first_setting_wins() {
        let cell = OnceLock::new();
        set_once(&cell, MessageIdFormat::Hex);
        set_once(&cell, MessageIdFormat::Decimal);
        set_once(&cell, MessageIdFormat::Hex);
        assert_eq!(cell.get(), Some(&MessageIdFormat::Hex));
    }
}
