//! A short_message as an ESME submits it: the first input octet is its data_coding, the rest
//! its octets. The user data header and the text in every alphabet must parse without panic;
//! decoded text must encode back where the alphabet has an encoder; any Unicode text must
//! survive UCS-2, and GSM 7-bit when it fits; part counts must agree with the units counted.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smpp_codec::udh;
use sms_text::{Alphabet, AlphabetChoices, DefaultAlphabet, Ia5Alphabet};

fuzz_target!(|data: &[u8]| {
    let Some((&data_coding, short_message)) = data.split_first() else {
        return;
    };
    if let Ok((header, payload)) = udh::split(short_message) {
        let udhl = usize::from(short_message[0]);
        assert_eq!(payload, &short_message[1 + udhl..]);
        if let Some(concat) = header.concat {
            assert!(1 <= concat.sequence && concat.sequence <= concat.total);
        }
        check_decoding(data_coding, payload);
    }
    check_decoding(data_coding, short_message);
    if let Ok(text) = std::str::from_utf8(short_message) {
        check_unicode(text);
    }
});

fn check_decoding(data_coding: u8, octets: &[u8]) {
    // The configured alphabets matter only for data_coding 0 and 1.
    let usual = AlphabetChoices {
        default: DefaultAlphabet::Gsm7,
        ia5: Ia5Alphabet::Ascii,
    };
    let choices: Vec<AlphabetChoices> = match data_coding {
        0 => [
            DefaultAlphabet::Gsm7,
            DefaultAlphabet::Latin1,
            DefaultAlphabet::Ascii,
        ]
        .map(|default| AlphabetChoices { default, ..usual })
        .to_vec(),
        1 => [Ia5Alphabet::Ascii, Ia5Alphabet::Gsm7]
            .map(|ia5| AlphabetChoices { ia5, ..usual })
            .to_vec(),
        _ => vec![usual],
    };
    for chosen in choices {
        let Ok(alphabet) = sms_text::alphabet(data_coding, chosen) else {
            continue;
        };
        let Ok(text) = sms_text::decode(alphabet, octets) else {
            continue;
        };
        match alphabet {
            // Not octet for octet: unknown escapes fall back to the default table.
            Alphabet::Gsm7 => {
                let septets = sms_text::encode_gsm7(&text).expect("decoded GSM text encodes");
                assert_eq!(sms_text::gsm7_septets(&text), Some(septets.len()));
                assert_eq!(sms_text::decode(Alphabet::Gsm7, &septets), Ok(text.clone()));
            }
            Alphabet::Ascii => assert_eq!(text.as_bytes(), octets),
            Alphabet::Latin1 => assert!(text.chars().eq(octets.iter().copied().map(char::from))),
            Alphabet::Ucs2 => assert_eq!(sms_text::encode_ucs2(&text), octets),
            Alphabet::Cyrillic | Alphabet::Hebrew => {
                assert_eq!(text.chars().count(), octets.len());
            }
            Alphabet::Binary => panic!("binary data decoded as text {text:?}"),
        }
        check_unicode(&text);
    }
}

fn check_unicode(text: &str) {
    let ucs2 = sms_text::encode_ucs2(text);
    assert_eq!(sms_text::decode(Alphabet::Ucs2, &ucs2).as_deref(), Ok(text));
    let units = match sms_text::encode_gsm7(text) {
        Some(septets) => {
            assert!(sms_text::fits_gsm7(text));
            assert_eq!(sms_text::gsm7_septets(text), Some(septets.len()));
            assert_eq!(
                sms_text::decode(Alphabet::Gsm7, &septets).as_deref(),
                Ok(text)
            );
            Units {
                count: septets.len(),
                single: 160,
                part: 153,
            }
        }
        None => {
            assert!(!sms_text::fits_gsm7(text));
            assert_eq!(sms_text::gsm7_septets(text), None);
            Units {
                count: ucs2.len() / 2,
                single: 70,
                part: 67,
            }
        }
    };
    units.check(sms_text::segment_count(text));
}

/// What one text takes in its alphabet, and what one part holds.
struct Units {
    count: usize,
    single: usize,
    part: usize,
}

impl Units {
    /// Parts are filled to the nominal size, or one unit less where an escape sequence or a
    /// surrogate pair would be split.
    fn check(&self, parts: usize) {
        if self.count <= self.single {
            assert_eq!(parts, 1, "{} units", self.count);
        } else {
            let fewest = self.count.div_ceil(self.part);
            let most = self.count.div_ceil(self.part - 1);
            assert!(
                (fewest..=most).contains(&parts),
                "{} units in {parts} parts",
                self.count
            );
        }
    }
}
