//! schedule_delivery_time and validity_period as an ESME may send them. Parsing must never
//! panic nor resolve to a time before now for a relative period, and an absolute time must come
//! back unchanged (to the second) through the server's own formatter.

#![no_main]

use chrono::{DateTime, Datelike, SubsecRound, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use smpp_codec::time::{self, SmppTime};

fuzz_target!(|data: &[u8]| {
    // The PDU decoder hands these fields over as Latin-1, one character per octet; UTF-8 reaches
    // the multi-byte characters a string from elsewhere could hold.
    check(&data.iter().copied().map(char::from).collect::<String>());
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
});

fn check(text: &str) {
    let now = Utc.with_ymd_and_hms(2024, 6, 22, 9, 0, 0).unwrap();
    match time::parse(text) {
        Ok(None) => assert!(text.is_empty()),
        Ok(Some(t @ SmppTime::Absolute(at))) => {
            let instant = time::resolve(&t, now);
            assert_eq!(instant, at);
            // Two-digit years: only this century survives formatting, and the offset can move
            // an instant out of it.
            if (2000..=2099).contains(&instant.year()) {
                let formatted = time::format_absolute(instant);
                assert_eq!(
                    time::parse(&formatted),
                    Ok(Some(SmppTime::Absolute(instant.trunc_subsecs(0).into()))),
                    "{formatted}"
                );
            }
        }
        Ok(Some(t @ SmppTime::Relative(_))) => {
            for now in [now, DateTime::<Utc>::MAX_UTC] {
                assert!(time::resolve(&t, now) >= now);
            }
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
}
