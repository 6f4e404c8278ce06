//! Phone numbers as people and ESMEs write them, turned into E.164 (`+491701234567`).
//!
//! ```
//! use smsgate_plugin_sdk::phone::{self, PhoneError};
//!
//! assert_eq!(phone::to_e164("0170 1234567", "DE").as_deref(), Ok("+491701234567"));
//! assert_eq!(phone::to_e164("(212) 555-0123", "US").as_deref(), Ok("+12125550123"));
//! assert_eq!(phone::to_e164("8 (916) 123-45-67", "RU").as_deref(), Ok("+79161234567"));
//! assert_eq!(phone::to_e164("00 44 20 7946 0958", "FR").as_deref(), Ok("+442079460958"));
//! assert_eq!(phone::to_e164("06 12 34 56", "FR"), Err(PhoneError::InvalidLength {
//!     country_code: 33, digits: 7, min: 9, max: 9,
//! }));
//! ```
//!
//! The rules are the ITU-T E.164 numbering plan with each country's dialling prefixes; they
//! are not a number-range database, so a well-formed number that is not in service passes.

mod tables;

use std::fmt;

use crate::Address;

/// E.164 allows at most 15 digits, country code included.
const MAX_DIGITS: usize = 15;
/// Fewer digits than this after a `+` cannot be a subscriber number anywhere.
const MIN_INTERNATIONAL_DIGITS: usize = 8;
/// Fewer digits than this in a national number are a short code, not a phone number.
const MIN_NATIONAL_DIGITS: usize = 7;

/// Why a text is not a phone number [`to_e164`] can convert.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhoneError {
    /// There are no digits at all.
    Empty,
    /// A character that is neither a digit, a leading `+` nor a separator (space, `-`, `.`,
    /// `/`, parentheses).
    InvalidCharacter(char),
    /// A `+` somewhere else than at the start.
    MisplacedPlus,
    /// Fewer digits than any phone number has.
    TooShort {
        /// Digits found (after the country code for national numbers).
        digits: usize,
        /// The least that is accepted.
        min: usize,
    },
    /// More digits than E.164 allows (15 including the country code).
    TooLong {
        /// Digits including the country code.
        digits: usize,
    },
    /// An international number that starts with no assigned country calling code; holds the
    /// first digits.
    UnknownCountryCode(String),
    /// The number is national, and the default country is not an ISO 3166 alpha-2 code this
    /// module knows (or is empty).
    UnknownDefaultCountry(String),
    /// The national part starts with a digit no number of that country starts with (a 0
    /// left in after the country code, or a 0 or 1 in the North American plan).
    InvalidPrefix {
        /// The country calling code.
        country_code: u16,
        /// The offending first digit of the national part.
        digit: char,
    },
    /// The national part has a length no number of that country has.
    InvalidLength {
        /// The country calling code.
        country_code: u16,
        /// Digits after the country code.
        digits: usize,
        /// The shortest length that country uses.
        min: usize,
        /// The longest length that country uses.
        max: usize,
    },
    /// The address is alphanumeric (TON 5), a sender name rather than a number.
    Alphanumeric,
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneError::Empty => f.write_str("no digits in the phone number"),
            PhoneError::InvalidCharacter(c) => {
                write!(f, "character {c:?} is not allowed in a phone number")
            }
            PhoneError::MisplacedPlus => f.write_str("'+' is only allowed at the start"),
            PhoneError::TooShort { digits, min } => write!(
                f,
                "{digits} digits are too few for a phone number (at least {min})"
            ),
            PhoneError::TooLong { digits } => write!(
                f,
                "{digits} digits are too many for a phone number \
                 (at most {MAX_DIGITS} with the country code)"
            ),
            PhoneError::UnknownCountryCode(digits) => {
                write!(f, "+{digits}... does not start with a country calling code")
            }
            PhoneError::UnknownDefaultCountry(country) if country.is_empty() => {
                f.write_str("a national number needs a default country")
            }
            PhoneError::UnknownDefaultCountry(country) => write!(
                f,
                "unknown default country {country:?} (expected an ISO 3166 alpha-2 code such as \"DE\")"
            ),
            PhoneError::InvalidPrefix {
                country_code,
                digit,
            } => write!(
                f,
                "numbers in +{country_code} cannot start with {digit} after the country code"
            ),
            PhoneError::InvalidLength {
                country_code,
                digits,
                min,
                max,
            } => {
                write!(f, "numbers in +{country_code} have ")?;
                if min == max {
                    write!(f, "{min}")?;
                } else {
                    write!(f, "{min} to {max}")?;
                }
                write!(f, " digits after the country code, not {digits}")
            }
            PhoneError::Alphanumeric => {
                f.write_str("alphanumeric address: a sender name, not a phone number")
            }
        }
    }
}

impl std::error::Error for PhoneError {}

/// Converts `number` to E.164 (`+` and digits), reading national forms as in
/// `default_country` (ISO 3166 alpha-2, case-insensitive, e.g. `"DE"`).
///
/// Accepted forms, shown for Germany:
///
/// * international: `+49 170 1234567`, also `+49 (0)170 1234567`;
/// * with the country's international prefix: `0049 170 1234567` (`011` in North America,
///   `810` in Russia, ...);
/// * national with trunk prefix: `0170 1234567` (`1` in North America, `8` in Russia, none in
///   Italy or Spain);
/// * national without it: `170 1234567`.
///
/// Spaces, `-`, `.`, `/` and parentheses are ignored. The result is checked against E.164
/// (a known country code, at most 15 digits), against a minimum (8 digits with the country
/// code, 7 for a national number), and, for the 66 most common calling codes, against the
/// lengths their national numbers have.
///
/// A number that already carries its country code must say so with `+` or the international
/// prefix: `49 170 1234567` reads as a national number of `default_country`. For SMPP
/// addresses, whose TON says it, use [`address_to_e164`].
pub fn to_e164(number: &str, default_country: &str) -> Result<String, PhoneError> {
    let (international, digits) = digits_of(number)?;
    let country = default_country.to_ascii_uppercase();
    if international {
        return international_number(&digits);
    }
    let Some(code) = calling_code(&country) else {
        return Err(PhoneError::UnknownDefaultCountry(
            default_country.to_owned(),
        ));
    };
    let carrier_selection = tables::CARRIER_SELECTION.contains(&country.as_str());
    for prefix in tables::international_prefixes(&country) {
        if let Some(rest) = digits.strip_prefix(prefix) {
            let rest = match carrier_selection {
                true => rest.get(2..).unwrap_or(""),
                false => rest,
            };
            return international_number(rest);
        }
    }
    national_number(
        code,
        &digits,
        tables::trunk_prefixes(&country),
        carrier_selection,
    )
}

/// Converts an SMPP address to E.164, following its TON: international (1) numbers get their
/// `+`, national (2) numbers are read for `default_country`, and unknown (0) or other TONs
/// are read as [`to_e164`] does. Alphanumeric (5) addresses are refused with
/// [`PhoneError::Alphanumeric`].
pub fn address_to_e164(address: &Address, default_country: &str) -> Result<String, PhoneError> {
    match address.ton {
        5 => Err(PhoneError::Alphanumeric),
        1 if !address.addr.trim_start().starts_with('+') => {
            to_e164(&format!("+{}", address.addr), default_country)
        }
        _ => to_e164(&address.addr, default_country),
    }
}

/// The country calling code of an ISO 3166 alpha-2 country (case-insensitive): `Some(49)` for
/// `"DE"`.
pub fn calling_code(country: &str) -> Option<u16> {
    let country = country.to_ascii_uppercase();
    tables::COUNTRIES
        .binary_search_by(|&(iso, _)| iso.cmp(country.as_str()))
        .ok()
        .map(|index| tables::COUNTRIES[index].1)
}

/// The country calling code an E.164 number (`+` and digits, as [`to_e164`] returns) starts
/// with: `Some(44)` for `"+442079460958"`. Useful to route by country.
pub fn calling_code_of(e164: &str) -> Option<u16> {
    let digits = e164.strip_prefix('+')?;
    split_calling_code(digits).map(|(code, _)| code)
}

/// The digits of `number` and whether it started with `+`.
fn digits_of(number: &str) -> Result<(bool, String), PhoneError> {
    let number = number.trim();
    let international = number.starts_with('+');
    // "+44 (0)20 ..." shows the trunk prefix for national callers; it is not dialled from
    // abroad.
    let number = match international {
        true => number[1..].replacen("(0)", "", 1),
        false => number.to_owned(),
    };
    let mut digits = String::with_capacity(number.len());
    for c in number.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '+' => return Err(PhoneError::MisplacedPlus),
            '-' | '.' | '/' | '(' | ')' => {}
            c if c.is_whitespace() => {}
            c => return Err(PhoneError::InvalidCharacter(c)),
        }
    }
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }
    Ok((international, digits))
}

fn split_calling_code(digits: &str) -> Option<(u16, &str)> {
    (1..=3).find_map(|len| {
        let code: u16 = digits.get(..len)?.parse().ok()?;
        tables::CALLING_CODES
            .binary_search(&code)
            .is_ok()
            .then(|| (code, &digits[len..]))
    })
}

/// `digits` after `+` or an international prefix: country code and national number.
fn international_number(digits: &str) -> Result<String, PhoneError> {
    if digits.len() > MAX_DIGITS {
        return Err(PhoneError::TooLong {
            digits: digits.len(),
        });
    }
    if digits.len() < MIN_INTERNATIONAL_DIGITS {
        return Err(PhoneError::TooShort {
            digits: digits.len(),
            min: MIN_INTERNATIONAL_DIGITS,
        });
    }
    let Some((code, national)) = split_calling_code(digits) else {
        return Err(PhoneError::UnknownCountryCode(digits[..3].to_owned()));
    };
    check_national(code, national)?;
    Ok(format!("+{digits}"))
}

/// A national number of calling code `code`, possibly with a trunk prefix (and a carrier
/// code after it).
fn national_number(
    code: u16,
    digits: &str,
    trunk_prefixes: &[&str],
    carrier_selection: bool,
) -> Result<String, PhoneError> {
    // Whether a leading 8 or 1 is a trunk prefix or part of the number (Russia's 812 area,
    // say) is decided by which reading gives a valid number; the trunk reading goes first.
    let mut candidates = Vec::with_capacity(4);
    for prefix in trunk_prefixes {
        if let Some(rest) = digits.strip_prefix(prefix) {
            candidates.push(rest);
            if carrier_selection && rest.len() > 2 {
                candidates.push(&rest[2..]);
            }
        }
    }
    candidates.push(digits);
    let mut first_error = None;
    for national in candidates {
        match check_national_length(code, national).and_then(|()| check_national(code, national)) {
            Ok(()) => return Ok(format!("+{code}{national}")),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    Err(first_error.unwrap_or(PhoneError::Empty))
}

/// The bounds that apply to national input but not after a `+`, where the country code
/// already counts towards the minimum.
fn check_national_length(code: u16, national: &str) -> Result<(), PhoneError> {
    let total = code_len(code) + national.len();
    if total > MAX_DIGITS {
        return Err(PhoneError::TooLong { digits: total });
    }
    if national.len() < MIN_NATIONAL_DIGITS {
        return Err(PhoneError::TooShort {
            digits: national.len(),
            min: MIN_NATIONAL_DIGITS,
        });
    }
    Ok(())
}

/// The per-country rules for the digits after the country code.
fn check_national(code: u16, national: &str) -> Result<(), PhoneError> {
    let Some(first) = national.chars().next() else {
        return Err(PhoneError::TooShort {
            digits: 0,
            min: MIN_NATIONAL_DIGITS,
        });
    };
    // North American area codes start with 2-9; elsewhere a leading 0 is the trunk prefix,
    // which is not part of the international form.
    let bad_first = match code {
        1 => matches!(first, '0' | '1'),
        _ => first == '0' && !tables::LEADING_ZERO_ALLOWED.contains(&code),
    };
    if bad_first {
        return Err(PhoneError::InvalidPrefix {
            country_code: code,
            digit: first,
        });
    }
    if let Some(&(_, min, max)) = tables::NATIONAL_LENGTHS.iter().find(|(c, ..)| *c == code)
        && !(min..=max).contains(&national.len())
    {
        return Err(PhoneError::InvalidLength {
            country_code: code,
            digits: national.len(),
            min,
            max,
        });
    }
    Ok(())
}

fn code_len(code: u16) -> usize {
    match code {
        0..=9 => 1,
        10..=99 => 2,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ok(number: &str, country: &str, expected: &str) {
        assert_eq!(
            to_e164(number, country).as_deref(),
            Ok(expected),
            "{number:?} in {country}"
        );
    }

    #[track_caller]
    fn err(number: &str, country: &str, expected: PhoneError) {
        assert_eq!(
            to_e164(number, country),
            Err(expected),
            "{number:?} in {country}"
        );
    }

    #[test]
    fn germany() {
        for n in [
            "+491701234567",
            "+49 170 1234567",
            "+49 (0)170 1234567",
            "0049 170 1234567",
            "0170 1234567",
            "0170/1234567",
            "0170-123 45 67",
            "170 1234567",
        ] {
            ok(n, "DE", "+491701234567");
        }
        // Landline with a five-digit area code and a short subscriber number.
        ok("033203 1234", "DE", "+49332031234");
        ok("030 12345678", "de", "+493012345678");
    }

    #[test]
    fn united_kingdom() {
        for n in [
            "07911 123456",
            "+44 7911 123456",
            "0044 7911 123456",
            "7911123456",
        ] {
            ok(n, "GB", "+447911123456");
        }
        ok("020 7946 0958", "GB", "+442079460958");
        ok("+44 (0)20 7946 0958", "GB", "+442079460958");
    }

    #[test]
    fn north_america() {
        for n in [
            "(212) 555-0123",
            "212.555.0123",
            "1-212-555-0123",
            "1 (212) 555 0123",
            "+1 212 555 0123",
            "2125550123",
        ] {
            ok(n, "US", "+12125550123");
        }
        ok("011 49 170 1234567", "US", "+491701234567");
        ok("(416) 555-0199", "CA", "+14165550199");
        err(
            "(112) 555-0123",
            "US",
            PhoneError::InvalidPrefix {
                country_code: 1,
                digit: '1',
            },
        );
        err(
            "212 555 012",
            "US",
            PhoneError::InvalidLength {
                country_code: 1,
                digits: 9,
                min: 10,
                max: 10,
            },
        );
    }

    #[test]
    fn france() {
        for n in [
            "06 12 34 56 78",
            "+33 6 12 34 56 78",
            "0033 6 12 34 56 78",
            "612345678",
        ] {
            ok(n, "FR", "+33612345678");
        }
        err(
            "06 12 34 56 7",
            "FR",
            PhoneError::InvalidLength {
                country_code: 33,
                digits: 8,
                min: 9,
                max: 9,
            },
        );
    }

    #[test]
    fn india() {
        for n in [
            "098765 43210",
            "98765 43210",
            "+91 98765 43210",
            "0091 98765 43210",
        ] {
            ok(n, "IN", "+919876543210");
        }
        ok("011 2345 6789", "IN", "+911123456789");
    }

    #[test]
    fn russia() {
        for n in [
            "8 (916) 123-45-67",
            "+7 916 123-45-67",
            "+7 (916) 123 45 67",
            "916 123 45 67",
            "89161234567",
        ] {
            ok(n, "RU", "+79161234567");
        }
        ok("810 49 170 1234567", "RU", "+491701234567");
        // Saint Petersburg's area code starts with 8, like the trunk prefix.
        ok("8 812 123 45 67", "RU", "+78121234567");
        ok("812 123 45 67", "RU", "+78121234567");
        ok("8 800 555 35 35", "RU", "+78005553535");
        ok("+7 701 123 4567", "KZ", "+77011234567");
    }

    #[test]
    fn brazil() {
        for n in [
            "(11) 91234-5678",
            "011 91234-5678",
            "0 21 11 91234-5678",
            "+55 11 91234-5678",
            "00 21 55 11 91234 5678",
        ] {
            ok(n, "BR", "+5511912345678");
        }
        ok("(11) 3123-4567", "BR", "+551131234567");
        ok("0 15 21 3123 4567", "BR", "+552131234567");
        ok("00 21 49 170 1234567", "BR", "+491701234567");
    }

    #[test]
    fn nigeria() {
        for n in [
            "0803 123 4567",
            "803 123 4567",
            "+234 803 123 4567",
            "009 234 803 123 4567",
        ] {
            ok(n, "NG", "+2348031234567");
        }
        ok("01 234 5678", "NG", "+23412345678");
        ok("009 44 20 7946 0958", "NG", "+442079460958");
    }

    #[test]
    fn indonesia() {
        for n in [
            "0812-3456-7890",
            "812 3456 7890",
            "+62 812-3456-7890",
            "001 62 812 3456 7890",
        ] {
            ok(n, "ID", "+6281234567890");
        }
        ok("021 1234 5678", "ID", "+622112345678");
        ok("001 65 6123 4567", "ID", "+6561234567");
    }

    #[test]
    fn italy_keeps_the_zero() {
        ok("06 1234 5678", "IT", "+390612345678");
        ok("+39 06 1234 5678", "IT", "+390612345678");
        ok("0039 06 1234 5678", "IT", "+390612345678");
        ok("333 123 4567", "IT", "+393331234567");
        ok("+39 333 1234567", "DE", "+393331234567");
    }

    #[test]
    fn other_prefixes() {
        ok("0011 49 170 1234567", "AU", "+491701234567");
        ok("0412 345 678", "AU", "+61412345678");
        ok("010 49 170 1234567", "JP", "+491701234567");
        ok("090-1234-5678", "JP", "+819012345678");
        ok("06 20 123 4567", "HU", "+36201234567");
        ok("8 029 123 45 67", "BY", "+375291234567");
        ok("612 345 678", "ES", "+34612345678");
    }

    #[test]
    fn international_numbers_ignore_the_default_country() {
        ok("+49 170 1234567", "US", "+491701234567");
        ok("+49 170 1234567", "", "+491701234567");
        ok("+49 170 1234567", "ZZ", "+491701234567");
        // No length table for Kenya's neighbours: only the E.164 bounds apply.
        ok("+250 788 123 456", "DE", "+250788123456");
        ok("+882 1234 5678", "DE", "+88212345678");
    }

    #[test]
    fn malformed_input() {
        err("", "DE", PhoneError::Empty);
        err(" - ", "DE", PhoneError::Empty);
        err("0170 CALL ME", "DE", PhoneError::InvalidCharacter('C'));
        err("0170_1234567", "DE", PhoneError::InvalidCharacter('_'));
        err("0170+1234567", "DE", PhoneError::MisplacedPlus);
        err("++49 170 1234567", "DE", PhoneError::MisplacedPlus);
    }

    #[test]
    fn too_short_or_too_long() {
        err("12345", "DE", PhoneError::TooShort { digits: 5, min: 7 });
        err("0170 123", "DE", PhoneError::TooShort { digits: 6, min: 7 });
        err(
            "+49 17012",
            "DE",
            PhoneError::TooShort { digits: 7, min: 8 },
        );
        ok("+49 170 1234 5678 90", "DE", "+491701234567890");
        err(
            "+49 170 1234 5678 901",
            "DE",
            PhoneError::TooLong { digits: 16 },
        );
        err(
            "0170 1234 5678 901",
            "DE",
            PhoneError::TooLong { digits: 16 },
        );
    }

    #[test]
    fn unknown_codes_and_countries() {
        err(
            "+28 1234 5678",
            "DE",
            PhoneError::UnknownCountryCode("281".into()),
        );
        err(
            "+0049 170 1234567",
            "DE",
            PhoneError::UnknownCountryCode("004".into()),
        );
        err(
            "00 28 1234 5678",
            "DE",
            PhoneError::UnknownCountryCode("281".into()),
        );
        err(
            "0170 1234567",
            "XX",
            PhoneError::UnknownDefaultCountry("XX".into()),
        );
        err(
            "0170 1234567",
            "",
            PhoneError::UnknownDefaultCountry(String::new()),
        );
    }

    #[test]
    fn country_rules() {
        err(
            "+49 0170 1234567",
            "DE",
            PhoneError::InvalidPrefix {
                country_code: 49,
                digit: '0',
            },
        );
        err(
            "+33 6 12 34 56 78 9",
            "DE",
            PhoneError::InvalidLength {
                country_code: 33,
                digits: 10,
                min: 9,
                max: 9,
            },
        );
        err(
            "0612 345 678",
            "ES",
            PhoneError::InvalidPrefix {
                country_code: 34,
                digit: '0',
            },
        );
    }

    #[test]
    fn errors_read_well() {
        let cases = [
            (PhoneError::Empty, "no digits in the phone number"),
            (
                PhoneError::InvalidCharacter('x'),
                "character 'x' is not allowed in a phone number",
            ),
            (
                PhoneError::TooShort { digits: 5, min: 7 },
                "5 digits are too few for a phone number (at least 7)",
            ),
            (
                PhoneError::UnknownCountryCode("281".into()),
                "+281... does not start with a country calling code",
            ),
            (
                PhoneError::InvalidLength {
                    country_code: 33,
                    digits: 8,
                    min: 9,
                    max: 9,
                },
                "numbers in +33 have 9 digits after the country code, not 8",
            ),
            (
                PhoneError::InvalidLength {
                    country_code: 49,
                    digits: 14,
                    min: 6,
                    max: 13,
                },
                "numbers in +49 have 6 to 13 digits after the country code, not 14",
            ),
            (
                PhoneError::UnknownDefaultCountry("DEU".into()),
                "unknown default country \"DEU\" (expected an ISO 3166 alpha-2 code such as \"DE\")",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn addresses_follow_their_ton() {
        let address = |ton, addr: &str| Address {
            ton,
            npi: 1,
            addr: addr.into(),
        };
        assert_eq!(
            address_to_e164(&address(1, "491701234567"), "US").as_deref(),
            Ok("+491701234567")
        );
        assert_eq!(
            address_to_e164(&address(1, "+491701234567"), "US").as_deref(),
            Ok("+491701234567")
        );
        assert_eq!(
            address_to_e164(&address(2, "01701234567"), "DE").as_deref(),
            Ok("+491701234567")
        );
        assert_eq!(
            address_to_e164(&address(0, "01701234567"), "DE").as_deref(),
            Ok("+491701234567")
        );
        assert_eq!(
            address_to_e164(&address(5, "ACME"), "DE"),
            Err(PhoneError::Alphanumeric)
        );
    }

    #[test]
    fn calling_codes() {
        assert_eq!(calling_code("de"), Some(49));
        assert_eq!(calling_code("US"), Some(1));
        assert_eq!(calling_code("XX"), None);
        assert_eq!(calling_code_of("+442079460958"), Some(44));
        assert_eq!(calling_code_of("+12125550123"), Some(1));
        assert_eq!(calling_code_of("+3721234567"), Some(372));
        assert_eq!(calling_code_of("442079460958"), None);
    }
}
