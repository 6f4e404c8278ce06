//! How a text travels as SMS: whether it fits the GSM 7-bit alphabet and how many parts it
//! needs. The server counts the same way (GSM 03.38 default alphabet and extension table).
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

/// The GSM 03.38 default alphabet, by septet; 0x1B is the escape to the extension table and
/// stands for no character of its own.
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

/// The characters of the GSM 03.38 extension table; each takes an escape plus a septet.
const GSM7_EXTENSION: [char; 10] = ['\u{0C}', '^', '{', '}', '\\', '[', '~', ']', '|', '€'];

/// Septets a character takes in GSM 7-bit, or `None` when it has no GSM 7-bit form.
fn gsm7_width(c: char) -> Option<usize> {
    if GSM7_EXTENSION.contains(&c) {
        Some(2)
    } else if c != '\u{1B}' && GSM7_BASIC.contains(&c) {
        Some(1)
    } else {
        None
    }
}

/// Whether `text` can be sent in the GSM 7-bit alphabet (extension characters included);
/// anything else goes as UCS-2, with less than half the room per part.
pub fn fits_gsm7(text: &str) -> bool {
    text.chars().all(|c| gsm7_width(c).is_some())
}

/// The septets `text` takes in GSM 7-bit, extension characters counting two; `None` when it
/// does not fit the alphabet.
pub fn gsm7_septets(text: &str) -> Option<usize> {
    text.chars().map(gsm7_width).sum()
}

/// How many SMS parts `text` needs: up to 160 septets in one part and 153 per part of a
/// concatenated message when it fits GSM 7-bit, otherwise 70 and 67 UTF-16 units (UCS-2).
/// An empty text is one (empty) part.
///
/// Parts are filled without splitting an escape sequence or a surrogate pair, as handsets
/// garble either when reassembling, so a part can carry one unit less than the nominal size.
pub fn segment_count(text: &str) -> usize {
    let gsm7: Option<Vec<usize>> = text.chars().map(gsm7_width).collect();
    let (widths, single, part) = match gsm7 {
        Some(widths) => (widths, 160, 153),
        None => (text.chars().map(char::len_utf16).collect(), 70, 67),
    };
    if widths.iter().sum::<usize>() <= single {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_repertoire_fits() {
        let all: String = GSM7_BASIC
            .iter()
            .filter(|&&c| c != '\u{1B}')
            .chain(GSM7_EXTENSION.iter())
            .collect();
        assert!(fits_gsm7(&all));
        assert_eq!(gsm7_septets(&all), Some(127 + 2 * 10));
    }

    #[test]
    fn outside_gsm7() {
        for text in ["ç", "á", "Привет", "😀", "\u{1B}", "`"] {
            assert!(!fits_gsm7(text), "{text}");
            assert_eq!(gsm7_septets(text), None);
        }
        assert!(fits_gsm7(""));
    }

    #[test]
    fn gsm7_boundaries() {
        assert_eq!(segment_count(""), 1);
        assert_eq!(segment_count(&"a".repeat(160)), 1);
        assert_eq!(segment_count(&"a".repeat(161)), 2);
        assert_eq!(segment_count(&"a".repeat(306)), 2);
        assert_eq!(segment_count(&"a".repeat(307)), 3);
        // 80 extension characters are 160 septets.
        assert_eq!(segment_count(&"€".repeat(80)), 1);
        assert_eq!(segment_count(&"€".repeat(81)), 2);
    }

    #[test]
    fn escapes_are_not_split_across_parts() {
        // 306 septets would fill two parts exactly, but 152 plain septets leave one septet in
        // the first part and the escape pair moves on, pushing the last septet into a third.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(gsm7_septets(&text), Some(306));
        assert_eq!(segment_count(&text), 3);
    }

    #[test]
    fn ucs2_boundaries() {
        assert_eq!(segment_count(&"я".repeat(70)), 1);
        assert_eq!(segment_count(&"я".repeat(71)), 2);
        assert_eq!(segment_count(&"я".repeat(134)), 2);
        assert_eq!(segment_count(&"я".repeat(135)), 3);
        // Emoji are two UTF-16 units each.
        assert_eq!(segment_count(&"😀".repeat(35)), 1);
        assert_eq!(segment_count(&"😀".repeat(36)), 2);
    }
}
