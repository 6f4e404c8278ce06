//! SMSGate webhook calls as anyone who can reach the endpoint may send them. Parsing the body
//! and checking the signature headers must never panic, a parsed event must hold what `parse`
//! promises, and what `sign` makes must verify.
//!
//! The input up to the first NUL is the body (JSON has none, so the seeds are plain webhook
//! bodies); the NUL-separated parts after it are X-Timestamp, X-Signature and the signing key.

#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_events::{Event, EventKind, Payload, parse, sign, verify_signature};

const NOW: i64 = 1_719_046_000;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == 0);
    let body = parts.next().unwrap_or_default();
    let timestamp = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let signature = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let key = parts.next().unwrap_or(b"s3cret-signing-key");

    match parse(body) {
        Ok(event) => check_event(&event),
        Err(reason) => assert!(!reason.is_empty() && !reason.contains('\n')),
    }

    let _ = verify_signature(key, body, &timestamp, &signature, NOW);
    if let Ok(sent_at) = timestamp.parse::<i64>() {
        let good = sign(key, body, &timestamp);
        assert_eq!(
            verify_signature(key, body, &timestamp, &good, sent_at),
            Ok(())
        );
        assert_eq!(
            verify_signature(key, body, &timestamp, &good.to_uppercase(), sent_at),
            Ok(())
        );
    }
});

fn check_event(event: &Event) {
    assert!(!event.id.is_empty());
    let p = &event.payload;
    match &event.event {
        EventKind::Other(name) => {
            assert!(!KNOWN.contains(&name.as_str()));
            assert_eq!(p, &Payload::default());
            assert_eq!(event.occurred_at(), None);
        }
        kind => {
            assert!(KNOWN.contains(&kind.name()));
            assert!(p.message_id.is_some());
            assert!(event.occurred_at().is_some());
            match kind {
                EventKind::SmsReceived => assert!(p.message.is_some() && p.sender.is_some()),
                EventKind::SmsDataReceived => assert!(p.data.is_some() && p.sender.is_some()),
                _ => {}
            }
        }
    }
}

const KNOWN: [&str; 5] = [
    "sms:received",
    "sms:data-received",
    "sms:sent",
    "sms:delivered",
    "sms:failed",
];
