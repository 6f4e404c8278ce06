//! Unit-testing plugins natively, with plain `cargo test`.
//!
//! Outside wasm the SDK's host functions use a fake host that lives in a thread-local: set
//! its configuration with [`set_config`] and its clock with [`set_now`], read what the plugin
//! logged with [`logs`]. Each `#[test]` runs on its own thread, so every test starts from an
//! empty configuration, no logs and the system clock.
//!
//! The builders ([`bind_request`], [`message`], [`account`], [`incoming`], [`receipt`],
//! [`received`]) fill
//! every field with a plain default; change what a test is about with struct update syntax or
//! by assigning fields:
//!
//! ```
//! use smsgate_plugin_sdk::{testing, BindRequest};
//!
//! let request = BindRequest {
//!     peer_address: "203.0.113.7:40000".into(),
//!     ..testing::bind_request("alice", "secret")
//! };
//! let mut message = testing::message("ACME", "+491701234567", "hello");
//! message.registered_delivery = 1;
//! ```
//!
//! This module only exists when not compiling for `wasm32`.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::log::Level;
use crate::{
    Account, AccountLimits, Address, BasicCredentials, BindRequest, BindType, Content, Credentials,
    Deliver, DeliverKind, IncomingSms, Message,
};

#[derive(Default)]
struct TestHost {
    config: BTreeMap<String, String>,
    logs: Vec<(Level, String)>,
    now: Option<i64>,
}

thread_local! {
    static HOST: RefCell<TestHost> = RefCell::new(TestHost::default());
}

/// Replaces the configuration with `entries`, given as flattened keys and text values (see
/// [`config`](crate::config) for the format).
pub fn set_config(entries: &[(&str, &str)]) {
    HOST.with_borrow_mut(|host| {
        host.config = entries
            .iter()
            .map(|&(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
    });
}

/// Resets the fake host: no configuration, no logs, the system clock.
pub fn clear() {
    HOST.with_borrow_mut(|host| *host = TestHost::default());
}

/// Every line logged on this thread so far (or since [`clear`]), oldest first.
pub fn logs() -> Vec<(Level, String)> {
    HOST.with_borrow(|host| host.logs.clone())
}

/// Makes [`now_millis`](crate::now_millis) return `millis` (Unix milliseconds) until the next
/// call or [`clear`].
pub fn set_now(millis: i64) {
    HOST.with_borrow_mut(|host| host.now = Some(millis));
}

/// A transceiver bind from `127.0.0.1:40000` without TLS, with empty system_type and
/// address_range.
pub fn bind_request(system_id: &str, password: &str) -> BindRequest {
    BindRequest {
        system_id: system_id.to_owned(),
        password: password.to_owned(),
        system_type: String::new(),
        bind_type: BindType::Transceiver,
        peer_address: "127.0.0.1:40000".to_owned(),
        tls: false,
        address_range: String::new(),
    }
}

/// A text message from `source` to the single destination `destination`, with default
/// data_coding and flags and no validity, schedule, TLVs or labels.
///
/// The addresses get the TON/NPI an ESME would typically send: international/ISDN for numbers
/// starting with `+` (the `+` is removed, as on the wire), alphanumeric for sender names
/// with letters, unknown/ISDN otherwise.
pub fn message(source: &str, destination: &str, text: &str) -> Message {
    Message {
        service_type: String::new(),
        source: address(source),
        destinations: vec![address(destination)],
        esm_class: 0,
        protocol_id: 0,
        priority_flag: 0,
        registered_delivery: 0,
        data_coding: 0,
        content: Content::Text(text.to_owned()),
        validity: None,
        schedule_at: None,
        tlvs: Vec::new(),
        labels: Vec::new(),
    }
}

/// An account named `id` with basic credentials (username `id`, password `"password"`), no
/// overrides, no limits and no labels.
pub fn account(id: &str) -> Account {
    Account {
        id: id.to_owned(),
        credentials: Credentials::Basic(BasicCredentials {
            username: id.to_owned(),
            password: "password".to_owned(),
        }),
        api_base_url: None,
        device_id: None,
        sim_number: None,
        limits: AccountLimits::default(),
        labels: Vec::new(),
    }
}

/// An SMS a phone received from `source` (addressed to `destination`), about to be sent to the
/// ESME.
pub fn incoming(source: &str, destination: &str, text: &str) -> Deliver {
    Deliver {
        kind: DeliverKind::Incoming,
        source: address(source),
        destination: address(destination),
        content: Content::Text(text.to_owned()),
        message_id: None,
        message_state: None,
        error_code: None,
        labels: Vec::new(),
    }
}

/// A text SMS from `sender` to the phone's number `recipient`, as the route-incoming hook
/// sees it: on SIM 1 of device `"device-1"`, event id `"event-1"`, received at Unix time 0.
pub fn received(sender: &str, recipient: &str, text: &str) -> IncomingSms {
    IncomingSms {
        event_id: "event-1".to_owned(),
        device_id: "device-1".to_owned(),
        sim_number: Some(1),
        sender: sender.to_owned(),
        recipient: Some(recipient.to_owned()),
        content: Content::Text(text.to_owned()),
        received_at: Some(0),
    }
}

/// A delivery receipt for the submitted message `message_id` in SMPP `message_state` (2
/// delivered, 5 undeliverable, ...), with the usual receipt text.
pub fn receipt(message_id: &str, message_state: u8) -> Deliver {
    let stat = match message_state {
        1 => "ENROUTE",
        2 => "DELIVRD",
        3 => "EXPIRED",
        4 => "DELETED",
        5 => "UNDELIV",
        6 => "ACCEPTD",
        8 => "REJECTD",
        _ => "UNKNOWN",
    };
    let delivered = u8::from(message_state == 2);
    let text = format!(
        "id:{message_id} sub:001 dlvrd:{delivered:03} submit date:2501011200 \
         done date:2501011201 stat:{stat} err:000 text:"
    );
    Deliver {
        kind: DeliverKind::Receipt,
        source: address("+491701234567"),
        destination: address("ACME"),
        content: Content::Text(text),
        message_id: Some(message_id.to_owned()),
        message_state: Some(message_state),
        error_code: None,
        labels: Vec::new(),
    }
}

fn address(addr: &str) -> Address {
    if let Some(digits) = addr.strip_prefix('+') {
        Address {
            ton: 1,
            npi: 1,
            addr: digits.to_owned(),
        }
    } else if addr.chars().any(|c| c.is_alphabetic()) {
        Address {
            ton: 5,
            npi: 0,
            addr: addr.to_owned(),
        }
    } else {
        Address {
            ton: 0,
            npi: 1,
            addr: addr.to_owned(),
        }
    }
}

/// The fake host behind [`crate::host`] outside wasm.
pub(crate) mod host {
    use super::HOST;
    use crate::log::Level;

    pub(crate) fn log(level: Level, message: &str) {
        // Printed too, so that a failing test shows what the plugin said (the test harness
        // captures it and shows it only on failure).
        eprintln!("[plugin {level:?}] {message}");
        HOST.with_borrow_mut(|host| host.logs.push((level, message.to_owned())));
    }

    pub(crate) fn config_get(key: &str) -> Option<String> {
        HOST.with_borrow(|host| host.config.get(key).cloned())
    }

    pub(crate) fn config_keys(prefix: &str) -> Vec<String> {
        HOST.with_borrow(|host| {
            host.config
                .range(prefix.to_owned()..)
                .map(|(key, _)| key)
                .take_while(|key| key.starts_with(prefix))
                .cloned()
                .collect()
        })
    }

    pub(crate) fn now_millis() -> i64 {
        HOST.with_borrow(|host| host.now).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| {
                    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{log, now_millis};

    #[test]
    fn logs_are_recorded_in_order() {
        log::info("one");
        log::error("two");
        assert_eq!(
            logs(),
            [
                (Level::Info, "one".to_owned()),
                (Level::Error, "two".to_owned())
            ]
        );
        clear();
        assert!(logs().is_empty());
    }

    #[test]
    fn clock_is_settable_and_defaults_to_the_system() {
        assert!(now_millis() > 1_700_000_000_000);
        set_now(42);
        assert_eq!(now_millis(), 42);
        clear();
        assert!(now_millis() > 1_700_000_000_000);
    }

    #[test]
    fn set_config_replaces_everything() {
        set_config(&[("a", "1")]);
        set_config(&[("b", "2")]);
        assert_eq!(crate::config::get("a"), None);
        assert_eq!(crate::config::get("b").as_deref(), Some("2"));
    }

    #[test]
    fn builders_pick_address_types_like_an_esme() {
        let m = message("ACME", "+491701234567", "hi");
        assert_eq!((m.source.ton, m.source.addr.as_str()), (5, "ACME"));
        assert_eq!(
            m.destinations,
            [Address {
                ton: 1,
                npi: 1,
                addr: "491701234567".into()
            }]
        );
        assert_eq!(message("12345", "0170", "").source.ton, 0);
        assert_eq!(m.text(), Some("hi"));
    }

    #[test]
    fn receipts_carry_id_and_state() {
        let r = receipt("abc", 2);
        assert_eq!(r.kind, DeliverKind::Receipt);
        assert_eq!(r.message_id.as_deref(), Some("abc"));
        assert!(r.text().unwrap().contains("stat:DELIVRD"));
        assert!(r.text().unwrap().starts_with("id:abc "));
    }
}
