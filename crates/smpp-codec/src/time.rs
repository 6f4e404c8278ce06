//! SMPP 3.4 time strings (§7.1.1), as used by `schedule_delivery_time` and
//! `validity_period`: `YYMMDDhhmmsstnnp`, either an absolute local time with its UTC offset or
//! a relative period.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmppTime {
    Absolute(DateTime<FixedOffset>),
    Relative(Duration),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("SMPP time must be 16 characters (YYMMDDhhmmsstnnp), got {found}")]
    Length { found: usize },
    #[error("SMPP time has {found:?} at offset {offset} where a digit is expected")]
    NotDigit { offset: usize, found: char },
    #[error("SMPP time must end in '+', '-' or 'R', not {found:?}")]
    Kind { found: char },
    #[error("SMPP time {field} {value} is out of range {min}-{max}")]
    OutOfRange {
        field: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
    #[error("SMPP time day {day} does not exist in {year}-{month:02}")]
    NoSuchDay { year: i32, month: u32, day: u32 },
}

const LEN: usize = 16;

/// Parses an SMPP time; the empty string means the field is absent.
pub fn parse(s: &str) -> Result<Option<SmppTime>, TimeError> {
    if s.is_empty() {
        return Ok(None);
    }
    let chars: [char; LEN] = s
        .chars()
        .collect::<Vec<_>>()
        .try_into()
        .map_err(|chars: Vec<char>| TimeError::Length { found: chars.len() })?;
    let mut digits = [0u32; LEN - 1];
    for (offset, (digit, &c)) in digits.iter_mut().zip(&chars).enumerate() {
        *digit = c
            .to_digit(10)
            .ok_or(TimeError::NotDigit { offset, found: c })?;
    }
    let field = |i: usize| digits[i] * 10 + digits[i + 1];
    let [yy, mo, dd, hh, mi, ss] = [0, 2, 4, 6, 8, 10].map(field);
    let tenths = digits[12];
    let quarter_hours = field(13);

    let sign = match chars[LEN - 1] {
        '+' => 1,
        '-' => -1,
        // Relative fields are a period, not a calendar date, so only their digits matter; the
        // tenths and offset carry no meaning there and are ignored.
        'R' => {
            let days = u64::from(yy) * 365 + u64::from(mo) * 30 + u64::from(dd);
            let secs = ((days * 24 + u64::from(hh)) * 60 + u64::from(mi)) * 60 + u64::from(ss);
            return Ok(Some(SmppTime::Relative(Duration::from_secs(secs))));
        }
        found => return Err(TimeError::Kind { found }),
    };

    check("month", mo, 1, 12)?;
    check("hour", hh, 0, 23)?;
    check("minute", mi, 0, 59)?;
    check("second", ss, 0, 59)?;
    check("UTC offset quarter-hours", quarter_hours, 0, 48)?;

    // Two-digit years: SMPP 3.4 predates any need for another century.
    let year = 2000 + yy as i32;
    let no_such_day = TimeError::NoSuchDay {
        year,
        month: mo,
        day: dd,
    };
    let local = NaiveDate::from_ymd_opt(year, mo, dd)
        .ok_or(no_such_day)?
        .and_hms_milli_opt(hh, mi, ss, tenths * 100)
        .expect("hour, minute, second and tenths were range-checked");
    let offset = FixedOffset::east_opt(sign * quarter_hours as i32 * 15 * 60)
        .expect("at most 12 hours from UTC");
    let absolute = local
        .and_local_timezone(offset)
        .single()
        .expect("a fixed offset maps every local time to exactly one instant");
    Ok(Some(SmppTime::Absolute(absolute)))
}

fn check(field: &'static str, value: u32, min: u32, max: u32) -> Result<(), TimeError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(TimeError::OutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}

/// The UTC instant `t` stands for; a relative time counts from `now`. A period too long to
/// represent saturates to the latest representable instant.
pub fn resolve(t: &SmppTime, now: DateTime<Utc>) -> DateTime<Utc> {
    match t {
        SmppTime::Absolute(at) => at.with_timezone(&Utc),
        SmppTime::Relative(period) => TimeDelta::from_std(*period)
            .ok()
            .and_then(|delta| now.checked_add_signed(delta))
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    }
}

/// Formats `t` as an absolute SMPP time in UTC, dropping fractions of a second. Only years
/// 2000-2099 survive the two-digit year.
pub fn format_absolute(t: DateTime<Utc>) -> String {
    t.format("%y%m%d%H%M%S000+").to_string()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn absolute(s: &str) -> DateTime<Utc> {
        match parse(s) {
            Ok(Some(t @ SmppTime::Absolute(_))) => resolve(&t, utc(2000, 1, 1, 0, 0, 0)),
            other => panic!("{s}: {other:?}"),
        }
    }

    fn relative(s: &str) -> Duration {
        match parse(s) {
            Ok(Some(SmppTime::Relative(d))) => d,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn empty_is_absent() {
        assert_eq!(parse(""), Ok(None));
    }

    #[test]
    fn absolute_with_positive_offset() {
        // +04 quarter-hours is UTC+1, so local 03:04:05.6 is 02:04:05.6 UTC.
        let t = absolute("250102030405604+");
        assert_eq!(
            t,
            utc(2025, 1, 2, 2, 4, 5) + TimeDelta::milliseconds(600),
            "{t}"
        );
        let Ok(Some(SmppTime::Absolute(local))) = parse("250102030405604+") else {
            panic!("not absolute");
        };
        assert_eq!(local.offset().local_minus_utc(), 3600);
    }

    #[test]
    fn absolute_with_negative_offset_crosses_midnight() {
        // UTC-5:30 (22 quarter-hours): 2024-02-29 22:00 local is 2024-03-01 03:30 UTC.
        assert_eq!(absolute("240229220000022-"), utc(2024, 3, 1, 3, 30, 0));
        assert_eq!(
            absolute("991231235959948+"),
            utc(2099, 12, 31, 11, 59, 59) + TimeDelta::milliseconds(900)
        );
    }

    #[test]
    fn relative_periods() {
        assert_eq!(relative("000001000000000R"), Duration::from_secs(86_400));
        assert_eq!(relative("000000000000000R"), Duration::ZERO);
        assert_eq!(
            relative("010203040506000R"),
            Duration::from_secs(((365 + 2 * 30 + 3) * 24 * 3600) + 4 * 3600 + 5 * 60 + 6)
        );
        // Tenths and offset digits carry no meaning in a relative time.
        assert_eq!(relative("000000000010999R"), Duration::from_secs(10));
        let now = utc(2025, 6, 1, 12, 0, 0);
        let t = parse("000001000000000R").unwrap().unwrap();
        assert_eq!(resolve(&t, now), utc(2025, 6, 2, 12, 0, 0));
    }

    #[test]
    fn resolve_saturates() {
        let t = SmppTime::Relative(Duration::MAX);
        assert_eq!(
            resolve(&t, utc(2025, 1, 1, 0, 0, 0)),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn format_round_trips() {
        let t = utc(2031, 11, 9, 8, 7, 6);
        assert_eq!(format_absolute(t), "311109080706000+");
        assert_eq!(
            format_absolute(t + TimeDelta::milliseconds(750)),
            "311109080706000+"
        );
        assert_eq!(absolute(&format_absolute(t)), t);
    }

    #[test]
    fn wrong_length() {
        for s in ["25010203040560+", "2501020304056004+", "R"] {
            assert_eq!(
                parse(s),
                Err(TimeError::Length {
                    found: s.chars().count()
                }),
                "{s}"
            );
        }
        assert_eq!(
            parse("1").unwrap_err().to_string(),
            "SMPP time must be 16 characters (YYMMDDhhmmsstnnp), got 1"
        );
    }

    #[test]
    fn non_digit() {
        assert_eq!(
            parse("2501020304x5604+"),
            Err(TimeError::NotDigit {
                offset: 10,
                found: 'x'
            })
        );
        assert_eq!(
            parse("25010203040560é+"),
            Err(TimeError::NotDigit {
                offset: 14,
                found: 'é'
            })
        );
        assert_eq!(
            parse("0000010000000 0R"),
            Err(TimeError::NotDigit {
                offset: 13,
                found: ' '
            })
        );
    }

    #[test]
    fn bad_kind() {
        let err = parse("250102030405604Z").unwrap_err();
        assert_eq!(err, TimeError::Kind { found: 'Z' });
        assert_eq!(
            err.to_string(),
            "SMPP time must end in '+', '-' or 'R', not 'Z'"
        );
    }

    #[test]
    fn out_of_range_fields() {
        let cases = [
            ("250002030405604+", "month", 0),
            ("251302030405604+", "month", 13),
            ("250102240405604+", "hour", 24),
            ("250102036005604+", "minute", 60),
            ("250102030460604+", "second", 60),
            ("250102030405649+", "UTC offset quarter-hours", 49),
        ];
        for (s, field, value) in cases {
            match parse(s) {
                Err(TimeError::OutOfRange {
                    field: f, value: v, ..
                }) => assert_eq!((f, v), (field, value), "{s}"),
                other => panic!("{s}: {other:?}"),
            }
        }
        assert_eq!(
            parse("251302030405604+").unwrap_err().to_string(),
            "SMPP time month 13 is out of range 1-12"
        );
    }

    #[test]
    fn day_must_exist_in_month() {
        assert_eq!(
            parse("250229000000000+"),
            Err(TimeError::NoSuchDay {
                year: 2025,
                month: 2,
                day: 29
            })
        );
        assert!(parse("240229000000000+").is_ok());
        assert!(matches!(
            parse("250431000000000+"),
            Err(TimeError::NoSuchDay { day: 31, .. })
        ));
        assert_eq!(
            parse("250100000000000-").unwrap_err().to_string(),
            "SMPP time day 0 does not exist in 2025-01"
        );
    }
}
