//! SMS text: conversion between SMPP `data_coding` values and Unicode, and how a text travels
//! as SMS (whether it fits GSM 7-bit, how many parts it needs). The server and the plugin SDK
//! share it, so a plugin counts parts exactly as the server sends them.
//!
//! ```
//! assert!(sms_text::fits_gsm7("Grüße, 5€ {incl. VAT}"));
//! assert!(!sms_text::fits_gsm7("ça va")); // Ç is in the alphabet, ç is not
//! assert_eq!(sms_text::gsm7_septets("5€"), Some(3));
//! assert_eq!(sms_text::segment_count(&"a".repeat(161)), 2);
//! assert_eq!(sms_text::segment_count(&"я".repeat(71)), 2);
//! ```
//!
//! Decoding is strict: a byte sequence that does not belong to the announced alphabet is an
//! error, never a U+FFFD, so a garbled message is refused at submit time instead of being
//! delivered as something the sender did not write.

use std::fmt;
use std::str::FromStr;

/// What `data_coding` 0 ("SMSC default alphabet") means. SMPP leaves it to the SMSC, and ESMEs
/// disagree in practice, so the operator picks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAlphabet {
    Gsm7,
    Latin1,
    Ascii,
}

impl DefaultAlphabet {
    /// The spelling accepted by [`FromStr`] and produced by [`fmt::Display`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gsm7 => "gsm7",
            Self::Latin1 => "latin1",
            Self::Ascii => "ascii",
        }
    }
}

impl fmt::Display for DefaultAlphabet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An alphabet name that is none of the ones a setting accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownAlphabet {
    pub name: String,
    /// The accepted names, for the message.
    pub expected: &'static str,
}

impl fmt::Display for UnknownAlphabet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown alphabet {:?}: expected one of {}",
            self.name, self.expected
        )
    }
}

impl std::error::Error for UnknownAlphabet {}

impl FromStr for DefaultAlphabet {
    type Err = UnknownAlphabet;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Gsm7, Self::Latin1, Self::Ascii]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownAlphabet {
                name: s.to_owned(),
                expected: "gsm7, latin1, ascii",
            })
    }
}

/// What `data_coding` 1 (IA5) means. SMPP says ASCII, but some ESMEs (node-smpp among them)
/// label GSM 7-bit text with it, so the operator picks, as Kannel's `alt-charset` lets one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ia5Alphabet {
    Ascii,
    Gsm7,
}

impl Ia5Alphabet {
    /// The spelling accepted by [`FromStr`] and produced by [`fmt::Display`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ascii => "ascii",
            Self::Gsm7 => "gsm7",
        }
    }
}

impl fmt::Display for Ia5Alphabet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Ia5Alphabet {
    type Err = UnknownAlphabet;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Ascii, Self::Gsm7]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownAlphabet {
                name: s.to_owned(),
                expected: "ascii, gsm7",
            })
    }
}

/// The operator's reading of the `data_coding` values whose alphabet ESMEs disagree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlphabetChoices {
    /// `data_coding` 0.
    pub default: DefaultAlphabet,
    /// `data_coding` 1.
    pub ia5: Ia5Alphabet,
}

/// The character set a `short_message` is written in, resolved from its `data_coding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alphabet {
    /// GSM 03.38 default alphabet, one unpacked septet per byte.
    Gsm7,
    /// IA5, i.e. 7-bit ASCII.
    Ascii,
    /// ISO-8859-1.
    Latin1,
    /// UCS-2, read as UTF-16BE because handsets send emoji as surrogate pairs.
    Ucs2,
    /// ISO-8859-5.
    Cyrillic,
    /// ISO-8859-8.
    Hebrew,
    /// 8-bit data with no text form.
    Binary,
}

impl Alphabet {
    /// A short lowercase name for logs and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gsm7 => "gsm7",
            Self::Ascii => "ascii",
            Self::Latin1 => "latin1",
            Self::Ucs2 => "ucs2",
            Self::Cyrillic => "iso-8859-5",
            Self::Hebrew => "iso-8859-8",
            Self::Binary => "binary",
        }
    }
}

impl From<DefaultAlphabet> for Alphabet {
    fn from(default: DefaultAlphabet) -> Self {
        match default {
            DefaultAlphabet::Gsm7 => Self::Gsm7,
            DefaultAlphabet::Latin1 => Self::Latin1,
            DefaultAlphabet::Ascii => Self::Ascii,
        }
    }
}

impl From<Ia5Alphabet> for Alphabet {
    fn from(ia5: Ia5Alphabet) -> Self {
        match ia5 {
            Ia5Alphabet::Ascii => Self::Ascii,
            Ia5Alphabet::Gsm7 => Self::Gsm7,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextError {
    Unsupported {
        data_coding: u8,
    },
    Invalid {
        alphabet: &'static str,
        offset: usize,
        reason: &'static str,
    },
    Binary,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported { data_coding } => {
                write!(f, "data_coding 0x{data_coding:02X} is not supported")
            }
            Self::Invalid {
                alphabet,
                offset,
                reason,
            } => write!(f, "invalid {alphabet} text at byte {offset}: {reason}"),
            Self::Binary => f.write_str("binary data has no text form"),
        }
    }
}

impl std::error::Error for TextError {}

/// Resolves a `data_coding` octet following SMPP 3.4 §5.2.19 for 0x00–0x0F and the GSM 03.38
/// coding groups above that; 0 and 1 as the operator has `chosen`.
pub fn alphabet(data_coding: u8, chosen: AlphabetChoices) -> Result<Alphabet, TextError> {
    let unsupported = Err(TextError::Unsupported { data_coding });
    match data_coding {
        0x00 => Ok(chosen.default.into()),
        0x01 => Ok(chosen.ia5.into()),
        0x02 | 0x04 => Ok(Alphabet::Binary),
        0x03 => Ok(Alphabet::Latin1),
        0x06 => Ok(Alphabet::Cyrillic),
        0x07 => Ok(Alphabet::Hebrew),
        0x08 => Ok(Alphabet::Ucs2),
        // General data coding and automatic deletion groups share one layout: bit 5 marks
        // compressed text, which nothing in the chain can inflate, and bits 3-2 pick the
        // alphabet.
        0x10..=0x7F if data_coding & 0x20 != 0 => unsupported,
        0x10..=0x7F => match (data_coding >> 2) & 0x03 {
            0b00 => Ok(Alphabet::Gsm7),
            0b01 => Ok(Alphabet::Binary),
            0b10 => Ok(Alphabet::Ucs2),
            _ => unsupported,
        },
        // Message waiting indication: discard (0xC0-0xCF) and store (0xD0-0xDF) both carry
        // GSM 7-bit text, 0xE0-0xEF carries UCS-2.
        0xC0..=0xDF => Ok(Alphabet::Gsm7),
        0xE0..=0xEF => Ok(Alphabet::Ucs2),
        0xF0..=0xFF if data_coding & 0x04 != 0 => Ok(Alphabet::Binary),
        0xF0..=0xFF => Ok(Alphabet::Gsm7),
        // JIS, pictogram, ISO-2022-JP, Kanji, KS C 5601, the reserved values and the
        // reserved coding groups 0x80-0xBF.
        _ => unsupported,
    }
}

/// Decodes `bytes` as text in `alphabet`. Binary data is refused: the caller forwards it as
/// it is.
pub fn decode(alphabet: Alphabet, bytes: &[u8]) -> Result<String, TextError> {
    match alphabet {
        Alphabet::Gsm7 => decode_gsm7(bytes),
        Alphabet::Ascii => {
            decode_bytewise(alphabet, bytes, |b| b.is_ascii().then(|| char::from(b)))
        }
        Alphabet::Latin1 => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        Alphabet::Ucs2 => decode_ucs2(bytes),
        Alphabet::Cyrillic => decode_bytewise(alphabet, bytes, iso_8859_5),
        Alphabet::Hebrew => decode_bytewise(alphabet, bytes, iso_8859_8),
        Alphabet::Binary => Err(TextError::Binary),
    }
}

const ESCAPE: u8 = 0x1B;

/// The GSM 03.38 default alphabet, indexed by septet. The entry at 0x1B is the escape to the
/// extension table and never stands for a character by itself.
#[rustfmt::skip]
const GSM7_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É',
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
];

/// The GSM 03.38 extension table: septets that follow an escape.
const GSM7_EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

fn decode_gsm7(bytes: &[u8]) -> Result<String, TextError> {
    const ABOVE_SEPTET: &str = "byte above 0x7F in unpacked GSM 7-bit text";
    let invalid = |offset, reason| TextError::Invalid {
        alphabet: Alphabet::Gsm7.name(),
        offset,
        reason,
    };
    let mut text = String::with_capacity(bytes.len());
    let mut septets = bytes.iter().copied().enumerate();
    while let Some((offset, septet)) = septets.next() {
        if septet > 0x7F {
            return Err(invalid(offset, ABOVE_SEPTET));
        }
        if septet != ESCAPE {
            text.push(GSM7_BASIC[usize::from(septet)]);
            continue;
        }
        let Some((offset, code)) = septets.next() else {
            return Err(invalid(offset, "escape at the end of the text"));
        };
        if code > 0x7F {
            return Err(invalid(offset, ABOVE_SEPTET));
        }
        // 03.38 reserves a double escape for a future table and says to show a space; any
        // other code missing from the extension table falls back to the default table.
        let c = match GSM7_EXTENSION.iter().find(|&&(c, _)| c == code) {
            Some(&(_, c)) => c,
            None if code == ESCAPE => ' ',
            None => GSM7_BASIC[usize::from(code)],
        };
        text.push(c);
    }
    Ok(text)
}

/// One character's GSM 7-bit form: a default table septet, or an escaped extension septet.
fn gsm7_code(c: char) -> Option<(Option<u8>, u8)> {
    if let Some(&code) = ASCII_GSM7.get(c as usize) {
        return match code {
            NOT_GSM7 => None,
            code if code & ESCAPED != 0 => Some((Some(ESCAPE), code & !ESCAPED)),
            septet => Some((None, septet)),
        };
    }
    if let Some(&(code, _)) = GSM7_EXTENSION.iter().find(|&&(_, e)| e == c) {
        return Some((Some(ESCAPE), code));
    }
    GSM7_BASIC
        .iter()
        .position(|&b| b == c)
        .filter(|&septet| septet != usize::from(ESCAPE))
        .and_then(|septet| u8::try_from(septet).ok())
        .map(|septet| (None, septet))
}

/// In `ASCII_GSM7`: the character has no GSM 7-bit code.
const NOT_GSM7: u8 = 0xFF;
/// In `ASCII_GSM7`: the code is in the extension table, behind an escape.
const ESCAPED: u8 = 0x80;

/// The GSM 7-bit code of each ASCII character, looked up instead of searched for: most text
/// is ASCII, and every submitted message is measured.
const ASCII_GSM7: [u8; 128] = {
    let mut table = [NOT_GSM7; 128];
    let mut septet = 0;
    while septet < GSM7_BASIC.len() {
        let c = GSM7_BASIC[septet] as usize;
        if c < 128 && septet != ESCAPE as usize && table[c] == NOT_GSM7 {
            table[c] = septet as u8;
        }
        septet += 1;
    }
    let mut i = 0;
    while i < GSM7_EXTENSION.len() {
        let (code, c) = GSM7_EXTENSION[i];
        if (c as usize) < 128 {
            table[c as usize] = code | ESCAPED;
        }
        i += 1;
    }
    table
};

fn gsm7_width(c: char) -> Option<usize> {
    gsm7_code(c).map(|(escape, _)| if escape.is_some() { 2 } else { 1 })
}

/// Encodes `text` as unpacked GSM 7-bit septets, escaping extension characters; `None` when a
/// character is outside the default and extension tables.
pub fn encode_gsm7(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let (escape, septet) = gsm7_code(c)?;
        out.extend(escape);
        out.push(septet);
    }
    Some(out)
}

/// Encodes `text` as UTF-16BE, the form UCS-2 receivers accept in practice.
pub fn encode_ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Whether `text` can be sent in the GSM 7-bit alphabet (extension characters included);
/// anything else goes as UCS-2, with less than half the room per part.
pub fn fits_gsm7(text: &str) -> bool {
    text.chars().all(|c| gsm7_width(c).is_some())
}

/// The number of septets `text` takes in GSM 7-bit, extension characters counting two;
/// `None` when it cannot be written in GSM 7-bit.
pub fn gsm7_septets(text: &str) -> Option<usize> {
    text.chars().map(gsm7_width).sum()
}

/// How many SMS parts `text` needs: up to 160 septets in one part and 153 per part of a
/// concatenated message when it fits GSM 7-bit, otherwise 70 and 67 UTF-16 units (UCS-2). An
/// empty text is one (empty) part.
///
/// Parts are filled greedily without splitting an escape sequence or a surrogate pair, as
/// handsets would garble either when reassembling, so a part can carry one unit less than the
/// nominal 153 septets or 67 UTF-16 units.
pub fn segment_count(text: &str) -> usize {
    let (width, single, part): (fn(char) -> Option<usize>, _, _) = if fits_gsm7(text) {
        (gsm7_width, 160, 153)
    } else {
        (|c| Some(c.len_utf16()), 70, 67)
    };
    let widths = text.chars().filter_map(width);
    if widths.clone().sum::<usize>() <= single {
        return 1;
    }
    let mut parts = 1;
    let mut used = 0;
    for width in widths {
        if used + width > part {
            parts += 1;
            used = 0;
        }
        used += width;
    }
    parts
}

fn decode_bytewise(
    alphabet: Alphabet,
    bytes: &[u8],
    map: impl Fn(u8) -> Option<char>,
) -> Result<String, TextError> {
    bytes
        .iter()
        .enumerate()
        .map(|(offset, &b)| {
            map(b).ok_or(TextError::Invalid {
                alphabet: alphabet.name(),
                offset,
                reason: "byte not assigned in this character set",
            })
        })
        .collect()
}

fn iso_8859_5(b: u8) -> Option<char> {
    let c = match b {
        0x00..=0xA0 => return Some(char::from(b)),
        0xAD => 0x00AD,
        0xF0 => 0x2116,
        0xFD => 0x00A7,
        // Everything else in the upper half is the Cyrillic block in ISO-8859-5 order.
        _ => u32::from(b) + 0x0360,
    };
    char::from_u32(c)
}

fn iso_8859_8(b: u8) -> Option<char> {
    let c = match b {
        0x00..=0xA0 | 0xA2..=0xA9 | 0xAB..=0xB9 | 0xBB..=0xBE => u32::from(b),
        0xAA => 0x00D7,
        0xBA => 0x00F7,
        0xDF => 0x2017,
        0xE0..=0xFA => u32::from(b) - 0xE0 + 0x05D0,
        0xFD => 0x200E,
        0xFE => 0x200F,
        _ => return None,
    };
    char::from_u32(c)
}

fn decode_ucs2(bytes: &[u8]) -> Result<String, TextError> {
    let invalid = |offset, reason| TextError::Invalid {
        alphabet: Alphabet::Ucs2.name(),
        offset,
        reason,
    };
    if !bytes.len().is_multiple_of(2) {
        return Err(invalid(bytes.len() - 1, "odd number of bytes"));
    }
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    let mut text = String::with_capacity(bytes.len() / 2);
    let mut unit_index = 0;
    for decoded in char::decode_utf16(units) {
        let c = decoded.map_err(|_| invalid(unit_index * 2, "unpaired surrogate"))?;
        unit_index += c.len_utf16();
        text.push(c);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gsm7_repertoire() -> impl Iterator<Item = char> {
        GSM7_BASIC
            .iter()
            .enumerate()
            .filter(|&(septet, _)| septet != usize::from(ESCAPE))
            .map(|(_, &c)| c)
            .chain(GSM7_EXTENSION.iter().map(|&(_, c)| c))
    }

    /// The ASCII table gives every character the code the two GSM tables give it, and none to
    /// the ASCII characters GSM 7-bit lacks.
    #[test]
    fn ascii_lookup_agrees_with_the_gsm_tables() {
        for c in (0..128u8).map(char::from) {
            let extension = GSM7_EXTENSION.iter().find(|&&(_, e)| e == c);
            let basic = GSM7_BASIC
                .iter()
                .position(|&b| b == c)
                .filter(|&septet| septet != usize::from(ESCAPE));
            let expected = match (extension, basic) {
                (Some(&(code, _)), _) => Some((Some(ESCAPE), code)),
                (None, Some(septet)) => Some((None, septet as u8)),
                (None, None) => None,
            };
            assert_eq!(gsm7_code(c), expected, "{c:?}");
        }
        assert_eq!(gsm7_code('`'), None);
        assert_eq!(gsm7_code('@'), Some((None, 0)));
        assert_eq!(gsm7_code('['), Some((Some(ESCAPE), 0x3C)));
    }

    /// What data_coding 0 and 1 mean unless a test says otherwise: not the server's default
    /// for 0, so that a test cannot pass by accident on it.
    const LATIN1_DEFAULT: AlphabetChoices = AlphabetChoices {
        default: DefaultAlphabet::Latin1,
        ia5: Ia5Alphabet::Ascii,
    };

    #[test]
    fn default_alphabet_parses_case_insensitively() {
        assert_eq!("GSM7".parse(), Ok(DefaultAlphabet::Gsm7));
        assert_eq!("Latin1".parse(), Ok(DefaultAlphabet::Latin1));
        assert_eq!("ascii".parse(), Ok(DefaultAlphabet::Ascii));
        let err = "ebcdic".parse::<DefaultAlphabet>().unwrap_err().to_string();
        assert!(
            err.contains("ebcdic") && err.contains("gsm7, latin1, ascii"),
            "{err}"
        );
        for a in [
            DefaultAlphabet::Gsm7,
            DefaultAlphabet::Latin1,
            DefaultAlphabet::Ascii,
        ] {
            assert_eq!(a.to_string().parse(), Ok(a));
        }
    }

    #[test]
    fn ia5_alphabet_parses_case_insensitively() {
        assert_eq!("ASCII".parse(), Ok(Ia5Alphabet::Ascii));
        assert_eq!("Gsm7".parse(), Ok(Ia5Alphabet::Gsm7));
        let err = "latin1".parse::<Ia5Alphabet>().unwrap_err().to_string();
        assert!(
            err.contains("latin1") && err.contains("ascii, gsm7"),
            "{err}"
        );
        for a in [Ia5Alphabet::Ascii, Ia5Alphabet::Gsm7] {
            assert_eq!(a.to_string().parse(), Ok(a));
        }
    }

    /// node-smpp labels GSM 7-bit text as IA5: '@' is septet 0x00 and 'ä' 0x7B there, a NUL
    /// and '{' in ASCII.
    #[test]
    fn ia5_is_read_as_gsm7_when_chosen() {
        let septets = b"\x00Anna: K\x7Bse 5\x1B\x65";
        let gsm7 = AlphabetChoices {
            ia5: Ia5Alphabet::Gsm7,
            ..LATIN1_DEFAULT
        };
        let read = |chosen| decode(alphabet(1, chosen).unwrap(), septets).unwrap();
        assert_eq!(read(gsm7), "@Anna: Käse 5€");
        assert_eq!(read(LATIN1_DEFAULT), "\0Anna: K{se 5\u{1B}e");
        // data_coding 0 keeps its own setting.
        assert_eq!(alphabet(0, gsm7), Ok(Alphabet::Latin1));
    }

    #[test]
    fn data_coding_groups_map_to_alphabets() {
        use Alphabet::*;
        let cases: &[(u8, Option<Alphabet>)] = &[
            (0x00, Some(Latin1)),
            (0x01, Some(Ascii)),
            (0x02, Some(Binary)),
            (0x03, Some(Latin1)),
            (0x04, Some(Binary)),
            (0x05, None),
            (0x06, Some(Cyrillic)),
            (0x07, Some(Hebrew)),
            (0x08, Some(Ucs2)),
            (0x09, None),
            (0x0A, None),
            (0x0B, None),
            (0x0C, None),
            (0x0D, None),
            (0x0E, None),
            (0x0F, None),
            (0x10, Some(Gsm7)),
            (0x11, Some(Gsm7)),
            (0x14, Some(Binary)),
            (0x18, Some(Ucs2)),
            (0x1C, None),
            (0x20, None),
            (0x38, None),
            (0x3F, None),
            (0x40, Some(Gsm7)),
            (0x44, Some(Binary)),
            (0x48, Some(Ucs2)),
            (0x4C, None),
            (0x60, None),
            (0x7F, None),
            (0x80, None),
            (0xBF, None),
            (0xC0, Some(Gsm7)),
            (0xD8, Some(Gsm7)),
            (0xDF, Some(Gsm7)),
            (0xE0, Some(Ucs2)),
            (0xEF, Some(Ucs2)),
            (0xF0, Some(Gsm7)),
            (0xF3, Some(Gsm7)),
            (0xF4, Some(Binary)),
            (0xF7, Some(Binary)),
            (0xFB, Some(Gsm7)),
            (0xFF, Some(Binary)),
        ];
        for &(dc, expected) in cases {
            let got = alphabet(dc, LATIN1_DEFAULT);
            match expected {
                Some(a) => assert_eq!(got, Ok(a), "data_coding 0x{dc:02X}"),
                None => assert_eq!(
                    got,
                    Err(TextError::Unsupported { data_coding: dc }),
                    "data_coding 0x{dc:02X}"
                ),
            }
        }
        for (default, expected) in [
            (DefaultAlphabet::Gsm7, Gsm7),
            (DefaultAlphabet::Ascii, Ascii),
        ] {
            let chosen = AlphabetChoices {
                default,
                ..LATIN1_DEFAULT
            };
            assert_eq!(alphabet(0, chosen), Ok(expected));
        }
    }

    #[test]
    fn unsupported_data_coding_names_the_value() {
        let err = alphabet(0x05, LATIN1_DEFAULT).unwrap_err();
        assert_eq!(err.to_string(), "data_coding 0x05 is not supported");
    }

    #[test]
    fn whole_gsm7_table_round_trips() {
        let all: String = gsm7_repertoire().collect();
        assert_eq!(all.chars().count(), 127 + 10);
        let encoded = encode_gsm7(&all).unwrap();
        assert_eq!(encoded.len(), 127 + 2 * 10);
        assert_eq!(decode(Alphabet::Gsm7, &encoded).unwrap(), all);
        for c in gsm7_repertoire() {
            let s = c.to_string();
            assert_eq!(
                decode(Alphabet::Gsm7, &encode_gsm7(&s).unwrap()).unwrap(),
                s
            );
        }
    }

    #[test]
    fn gsm7_table_positions() {
        let decoded = decode(
            Alphabet::Gsm7,
            &[0x00, 0x01, 0x02, 0x03, 0x11, 0x24, 0x40, 0x7F],
        );
        assert_eq!(decoded.unwrap(), "@£$¥_¤¡à");
        assert_eq!(
            decode(Alphabet::Gsm7, &[0x10, 0x12, 0x13, 0x14, 0x15, 0x16]).unwrap(),
            "ΔΦΓΛΩΠ"
        );
    }

    #[test]
    fn gsm7_escapes() {
        let text = "{}[]~\\|^€";
        let encoded = encode_gsm7(text).unwrap();
        assert_eq!(
            encoded,
            [
                0x1B, 0x28, 0x1B, 0x29, 0x1B, 0x3C, 0x1B, 0x3E, 0x1B, 0x3D, 0x1B, 0x2F, 0x1B, 0x40,
                0x1B, 0x14, 0x1B, 0x65
            ]
        );
        assert_eq!(decode(Alphabet::Gsm7, &encoded).unwrap(), text);
        assert_eq!(encode_gsm7("\u{0C}").unwrap(), [0x1B, 0x0A]);
    }

    #[test]
    fn gsm7_unknown_escape_falls_back() {
        // 0x1B 0x41 is not in the extension table: shown as the default table's 'A'.
        assert_eq!(decode(Alphabet::Gsm7, &[0x1B, 0x41, 0x42]).unwrap(), "AB");
        assert_eq!(
            decode(Alphabet::Gsm7, &[0x41, 0x1B, 0x1B, 0x42]).unwrap(),
            "A B"
        );
    }

    #[test]
    fn gsm7_rejects_lone_escape_and_high_bytes() {
        assert_eq!(
            decode(Alphabet::Gsm7, &[0x41, 0x1B]),
            Err(TextError::Invalid {
                alphabet: "gsm7",
                offset: 1,
                reason: "escape at the end of the text",
            })
        );
        assert!(matches!(
            decode(Alphabet::Gsm7, &[0x41, 0x80]),
            Err(TextError::Invalid { offset: 1, .. })
        ));
        assert!(matches!(
            decode(Alphabet::Gsm7, &[0x1B, 0xE5]),
            Err(TextError::Invalid { offset: 1, .. })
        ));
    }

    #[test]
    fn gsm7_encoding_refuses_foreign_characters() {
        assert_eq!(encode_gsm7("naïve"), None);
        assert_eq!(encode_gsm7("\u{1B}"), None);
        assert_eq!(encode_gsm7("😀"), None);
        assert_eq!(encode_gsm7(""), Some(Vec::new()));
    }

    #[test]
    fn ascii() {
        assert_eq!(
            decode(Alphabet::Ascii, b"Hi {there}").unwrap(),
            "Hi {there}"
        );
        let err = decode(Alphabet::Ascii, &[0x41, 0x80]).unwrap_err();
        assert_eq!(
            err,
            TextError::Invalid {
                alphabet: "ascii",
                offset: 1,
                reason: "byte not assigned in this character set",
            }
        );
        assert_eq!(
            err.to_string(),
            "invalid ascii text at byte 1: byte not assigned in this character set"
        );
    }

    #[test]
    fn latin1_maps_every_byte() {
        assert_eq!(decode(Alphabet::Latin1, b"caf\xE9 \xFF").unwrap(), "café ÿ");
        // 0x80 is a C1 control in ISO-8859-1, not windows-1252's euro sign.
        assert_eq!(decode(Alphabet::Latin1, &[0x80]).unwrap(), "\u{80}");
        let all: Vec<u8> = (0..=255).collect();
        let decoded = decode(Alphabet::Latin1, &all).unwrap();
        assert!(decoded.chars().map(u32::from).eq(0..=255));
    }

    #[test]
    fn cyrillic() {
        assert_eq!(
            decode(Alphabet::Cyrillic, &[0xBF, 0xE0, 0xD8, 0xD2, 0xD5, 0xE2]).unwrap(),
            "Привет"
        );
        assert_eq!(
            decode(Alphabet::Cyrillic, &[0xA1, 0xF1, 0xF0, 0xFD, 0xAD, 0xFF]).unwrap(),
            "Ёё№§\u{AD}џ"
        );
    }

    #[test]
    fn hebrew() {
        assert_eq!(
            decode(Alphabet::Hebrew, &[0xF9, 0xEC, 0xE5, 0xED]).unwrap(),
            "שלום"
        );
        assert_eq!(
            decode(Alphabet::Hebrew, &[0xAA, 0xBA, 0xE0, 0xFA]).unwrap(),
            "×÷את"
        );
        assert!(matches!(
            decode(Alphabet::Hebrew, &[0x41, 0xC0]),
            Err(TextError::Invalid {
                alphabet: "iso-8859-8",
                offset: 1,
                ..
            })
        ));
    }

    #[test]
    fn ucs2_with_surrogate_pair() {
        let bytes = [0x00, 0x68, 0x00, 0x69, 0x00, 0x20, 0xD8, 0x3D, 0xDE, 0x00];
        assert_eq!(decode(Alphabet::Ucs2, &bytes).unwrap(), "hi 😀");
        assert_eq!(encode_ucs2("hi 😀"), bytes);
    }

    #[test]
    fn ucs2_rejects_odd_length_and_lone_surrogates() {
        assert_eq!(
            decode(Alphabet::Ucs2, &[0x00, 0x41, 0x00]),
            Err(TextError::Invalid {
                alphabet: "ucs2",
                offset: 2,
                reason: "odd number of bytes"
            })
        );
        let unpaired = |offset| TextError::Invalid {
            alphabet: "ucs2",
            offset,
            reason: "unpaired surrogate",
        };
        // High surrogate followed by an ordinary character.
        assert_eq!(
            decode(Alphabet::Ucs2, &[0x00, 0x41, 0xD8, 0x3D, 0x00, 0x41]),
            Err(unpaired(2))
        );
        // High surrogate at the end.
        assert_eq!(decode(Alphabet::Ucs2, &[0xD8, 0x3D]), Err(unpaired(0)));
        // Low surrogate with nothing before it, after a pair.
        assert_eq!(
            decode(Alphabet::Ucs2, &[0xD8, 0x3D, 0xDE, 0x00, 0xDE, 0x00]),
            Err(unpaired(4))
        );
    }

    #[test]
    fn binary_is_not_text() {
        assert_eq!(decode(Alphabet::Binary, &[1, 2, 3]), Err(TextError::Binary));
    }

    #[test]
    fn whole_gsm7_repertoire_fits() {
        let all: String = gsm7_repertoire().collect();
        assert!(fits_gsm7(&all));
        assert_eq!(gsm7_septets(&all), Some(127 + 2 * 10));
        for text in ["ç", "á", "Привет", "😀", "\u{1B}", "`"] {
            assert!(!fits_gsm7(text), "{text}");
        }
        assert!(fits_gsm7(""));
    }

    #[test]
    fn septet_counts() {
        assert_eq!(gsm7_septets("hello"), Some(5));
        assert_eq!(gsm7_septets("a€{"), Some(5));
        assert_eq!(gsm7_septets("привет"), None);
    }

    #[test]
    fn gsm7_segment_boundaries() {
        assert_eq!(segment_count(""), 1);
        assert_eq!(segment_count(&"a".repeat(160)), 1);
        assert_eq!(segment_count(&"a".repeat(161)), 2);
        assert_eq!(segment_count(&"a".repeat(306)), 2);
        assert_eq!(segment_count(&"a".repeat(307)), 3);
        // Escapes count two septets.
        assert_eq!(segment_count(&"€".repeat(80)), 1);
        assert_eq!(segment_count(&format!("{}a", "€".repeat(80))), 2);
        // An escape sequence is never split, so the first part carries only 152 septets.
        assert_eq!(
            segment_count(&format!("{}€{}", "a".repeat(152), "a".repeat(151))),
            2
        );
        assert_eq!(
            segment_count(&format!("{}€{}", "a".repeat(152), "a".repeat(152))),
            3
        );
    }

    #[test]
    fn ucs2_segment_boundaries() {
        assert_eq!(segment_count(&"ж".repeat(70)), 1);
        assert_eq!(segment_count(&"ж".repeat(71)), 2);
        assert_eq!(segment_count(&"ж".repeat(134)), 2);
        assert_eq!(segment_count(&"ж".repeat(135)), 3);
        // One non-GSM character switches the whole text to UCS-2.
        assert_eq!(segment_count(&format!("{}ж", "a".repeat(69))), 1);
        assert_eq!(segment_count(&format!("{}ж", "a".repeat(70))), 2);
        // Emoji take two UTF-16 units and are never split across parts.
        assert_eq!(segment_count(&"😀".repeat(35)), 1);
        assert_eq!(segment_count(&format!("{}😀", "ж".repeat(69))), 2);
        assert_eq!(
            segment_count(&format!("{}😀{}", "ж".repeat(66), "ж".repeat(65))),
            2
        );
        assert_eq!(
            segment_count(&format!("{}😀{}", "ж".repeat(66), "ж".repeat(66))),
            3
        );
    }
}
