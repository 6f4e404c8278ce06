//! User Data Header parsing (3GPP TS 23.040 §9.2.3.24) for short messages submitted with the
//! UDHI bit of `esm_class` set.

/// The information elements this server acts on; all others are skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Udh {
    pub concat: Option<Concat>,
    pub dest_port: Option<u16>,
    pub source_port: Option<u16>,
}

/// One part of a concatenated message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concat {
    /// Shared by every part of one message; 8-bit references are widened.
    pub reference: u16,
    pub total: u8,
    /// 1-based position of this part.
    pub sequence: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UdhError {
    #[error("short message is empty, so it has no user data header")]
    Empty,
    #[error("user data header length {udhl} exceeds the {available} bytes that follow it")]
    HeaderOverrun { udhl: u8, available: usize },
    #[error("information element at header offset {offset} has no length byte")]
    MissingIeLength { offset: usize },
    #[error(
        "information element 0x{iei:02X} at header offset {offset} declares {length} bytes \
         but only {available} remain in the header"
    )]
    IeOverrun {
        iei: u8,
        offset: usize,
        length: u8,
        available: usize,
    },
    #[error("information element 0x{iei:02X} must be {expected} bytes long, not {actual}")]
    IeLength { iei: u8, expected: u8, actual: u8 },
    #[error("concatenation part {sequence} of {total} is invalid")]
    BadConcat { total: u8, sequence: u8 },
}

const CONCAT_8BIT: u8 = 0x00;
const PORTS_8BIT: u8 = 0x04;
const PORTS_16BIT: u8 = 0x05;
const CONCAT_16BIT: u8 = 0x08;

/// Splits `short_message` into its header and the payload after it.
///
/// A repeated element overrides the earlier one, as TS 23.040 prescribes for elements that
/// are not repeatable.
pub fn split(short_message: &[u8]) -> Result<(Udh, &[u8]), UdhError> {
    let (&udhl, rest) = short_message.split_first().ok_or(UdhError::Empty)?;
    if usize::from(udhl) > rest.len() {
        return Err(UdhError::HeaderOverrun {
            udhl,
            available: rest.len(),
        });
    }
    let (mut header, payload) = rest.split_at(usize::from(udhl));
    let mut udh = Udh::default();
    let mut offset = 0;
    while let Some((&iei, after_iei)) = header.split_first() {
        let (&length, after_length) = after_iei
            .split_first()
            .ok_or(UdhError::MissingIeLength { offset })?;
        if usize::from(length) > after_length.len() {
            return Err(UdhError::IeOverrun {
                iei,
                offset,
                length,
                available: after_length.len(),
            });
        }
        let (data, next) = after_length.split_at(usize::from(length));
        apply(&mut udh, iei, data)?;
        header = next;
        offset += 2 + data.len();
    }
    Ok((udh, payload))
}

fn apply(udh: &mut Udh, iei: u8, data: &[u8]) -> Result<(), UdhError> {
    match iei {
        CONCAT_8BIT => {
            let [reference, total, sequence] = fixed(iei, data)?;
            udh.concat = Some(concat(u16::from(reference), total, sequence)?);
        }
        CONCAT_16BIT => {
            let [hi, lo, total, sequence] = fixed(iei, data)?;
            udh.concat = Some(concat(u16::from_be_bytes([hi, lo]), total, sequence)?);
        }
        PORTS_8BIT => {
            let [dest, source] = fixed(iei, data)?;
            udh.dest_port = Some(u16::from(dest));
            udh.source_port = Some(u16::from(source));
        }
        PORTS_16BIT => {
            let [dest_hi, dest_lo, source_hi, source_lo] = fixed(iei, data)?;
            udh.dest_port = Some(u16::from_be_bytes([dest_hi, dest_lo]));
            udh.source_port = Some(u16::from_be_bytes([source_hi, source_lo]));
        }
        _ => {}
    }
    Ok(())
}

fn fixed<const N: usize>(iei: u8, data: &[u8]) -> Result<[u8; N], UdhError> {
    data.try_into().map_err(|_| UdhError::IeLength {
        iei,
        // Element bodies come from a one-byte length, and N is one of the small sizes above.
        expected: N as u8,
        actual: data.len() as u8,
    })
}

fn concat(reference: u16, total: u8, sequence: u8) -> Result<Concat, UdhError> {
    if total == 0 || sequence == 0 || sequence > total {
        return Err(UdhError::BadConcat { total, sequence });
    }
    Ok(Concat {
        reference,
        total,
        sequence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_8bit() {
        let msg = [0x05, 0x00, 0x03, 0xA7, 0x03, 0x02, b'h', b'i'];
        let (udh, payload) = split(&msg).unwrap();
        assert_eq!(
            udh.concat,
            Some(Concat {
                reference: 0xA7,
                total: 3,
                sequence: 2
            })
        );
        assert_eq!((udh.dest_port, udh.source_port), (None, None));
        assert_eq!(payload, b"hi");
    }

    #[test]
    fn concat_16bit() {
        let msg = [0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x02, b'x'];
        let (udh, payload) = split(&msg).unwrap();
        assert_eq!(
            udh.concat,
            Some(Concat {
                reference: 0x1234,
                total: 2,
                sequence: 2
            })
        );
        assert_eq!(payload, b"x");
    }

    #[test]
    fn ports_and_unknown_elements() {
        // 16-bit ports, then an unknown IE 0x24 (national language) that is skipped.
        let msg = [
            0x09, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x24, 0x01, 0x01, 0xAA,
        ];
        let (udh, payload) = split(&msg).unwrap();
        assert_eq!(udh.dest_port, Some(2948));
        assert_eq!(udh.source_port, Some(9200));
        assert_eq!(udh.concat, None);
        assert_eq!(payload, [0xAA]);

        let (udh, payload) = split(&[0x04, 0x04, 0x02, 0xF5, 0x00]).unwrap();
        assert_eq!((udh.dest_port, udh.source_port), (Some(0xF5), Some(0)));
        assert!(payload.is_empty());
    }

    #[test]
    fn ports_with_concat_and_empty_header() {
        let msg = [
            0x0B, 0x05, 0x04, 0x15, 0x81, 0x00, 0x00, 0x00, 0x03, 0x01, 0x02, 0x01, b'z',
        ];
        let (udh, payload) = split(&msg).unwrap();
        assert_eq!(udh.dest_port, Some(0x1581));
        assert_eq!(udh.concat.map(|c| (c.total, c.sequence)), Some((2, 1)));
        assert_eq!(payload, b"z");

        assert_eq!(split(&[0x00, b'a']).unwrap(), (Udh::default(), &b"a"[..]));
    }

    #[test]
    fn later_element_wins() {
        let msg = [
            0x0B, 0x00, 0x03, 0x01, 0x02, 0x01, 0x08, 0x04, 0x00, 0x09, 0x03, 0x03,
        ];
        let (udh, _) = split(&msg).unwrap();
        assert_eq!(
            udh.concat,
            Some(Concat {
                reference: 9,
                total: 3,
                sequence: 3
            })
        );
    }

    #[test]
    fn empty_message() {
        assert_eq!(split(&[]), Err(UdhError::Empty));
    }

    #[test]
    fn header_longer_than_message() {
        let err = split(&[0x05, 0x00, 0x03, 0x01]).unwrap_err();
        assert_eq!(
            err,
            UdhError::HeaderOverrun {
                udhl: 5,
                available: 3
            }
        );
        assert_eq!(
            err.to_string(),
            "user data header length 5 exceeds the 3 bytes that follow it"
        );
    }

    #[test]
    fn element_overruns_header() {
        // The IE claims 3 bytes but the 4-byte header leaves it only 2; the payload byte
        // after the header must not be read as part of it.
        let err = split(&[0x04, 0x00, 0x03, 0x01, 0x02, 0x01]).unwrap_err();
        assert_eq!(
            err,
            UdhError::IeOverrun {
                iei: 0x00,
                offset: 0,
                length: 3,
                available: 2
            }
        );
        assert!(err.to_string().contains("0x00"), "{err}");

        assert_eq!(
            split(&[0x03, 0x24, 0x00, 0x70, b'a']),
            Err(UdhError::MissingIeLength { offset: 2 })
        );
    }

    #[test]
    fn wrong_length_for_known_element() {
        let cases: &[(&[u8], u8, u8, u8)] = &[
            (&[0x04, 0x00, 0x02, 0x01, 0x02], 0x00, 3, 2),
            (&[0x05, 0x08, 0x03, 0x01, 0x02, 0x01], 0x08, 4, 3),
            (&[0x05, 0x05, 0x03, 0x01, 0x02, 0x03], 0x05, 4, 3),
            (&[0x05, 0x04, 0x03, 0x01, 0x02, 0x03], 0x04, 2, 3),
        ];
        for &(msg, iei, expected, actual) in cases {
            assert_eq!(
                split(msg),
                Err(UdhError::IeLength {
                    iei,
                    expected,
                    actual
                }),
                "{msg:02X?}"
            );
        }
        assert_eq!(
            split(cases[0].0).unwrap_err().to_string(),
            "information element 0x00 must be 3 bytes long, not 2"
        );
    }

    #[test]
    fn invalid_concat_numbers() {
        for (total, sequence) in [(0, 0), (0, 1), (2, 0), (2, 3)] {
            let msg = [0x05, 0x00, 0x03, 0x01, total, sequence];
            assert_eq!(
                split(&msg),
                Err(UdhError::BadConcat { total, sequence }),
                "{total}/{sequence}"
            );
        }
        assert_eq!(
            split(&[0x05, 0x00, 0x03, 0x01, 0x02, 0x03])
                .unwrap_err()
                .to_string(),
            "concatenation part 3 of 2 is invalid"
        );
        assert!(split(&[0x05, 0x00, 0x03, 0x01, 0x01, 0x01]).is_ok());
    }
}
