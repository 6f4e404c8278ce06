//! e164: rewrites destination numbers (and optionally numeric senders) to E.164.
//!
//! ESMEs send numbers in whatever form their users typed: national with a trunk prefix,
//! with `00`, with spaces. SMSGate and the plugins after this one want one form, so each
//! destination becomes international (TON 1, NPI 1) digits, read for the configured
//! `default_country`. A destination that cannot be a phone number is refused with
//! ESME_RINVDSTADR rather than handed to a phone that would fail on it. See README.md.

use smsgate_plugin_sdk::phone;
use smsgate_plugin_sdk::{
    Account, Address, Message, Plugin, TransformResult, TransformSubmit, config, log,
    register_plugin, status,
};

/// SMPP type of number: international.
const TON_INTERNATIONAL: u8 = 1;
/// SMPP type of number: national.
const TON_NATIONAL: u8 = 2;
/// SMPP type of number: unknown.
const TON_UNKNOWN: u8 = 0;
/// SMPP numbering plan: ISDN/telephone (E.164).
const NPI_ISDN: u8 = 1;

/// The plugin: the country national numbers are read for, and whether senders are rewritten.
pub struct E164 {
    /// Empty when not configured: then only numbers that carry their country code convert.
    country: String,
    normalise_source: bool,
}

impl Plugin for E164 {
    fn new() -> Self {
        let country = config::get("default_country")
            .unwrap_or_default()
            .trim()
            .to_ascii_uppercase();
        if phone::calling_code(&country).is_none() {
            log::error(&format!(
                "default_country = {country:?} is not an ISO 3166 alpha-2 code such as \"DE\"; \
                 destinations without a country code will be rejected"
            ));
        }
        let normalise_source = match config::get_parsed::<bool>("normalise_source") {
            None => false,
            Some(Ok(value)) => value,
            Some(Err(_)) => {
                log::warn("normalise_source is not true or false; senders are left as they are");
                false
            }
        };
        E164 {
            country,
            normalise_source,
        }
    }
}

impl TransformSubmit for E164 {
    fn transform_submit(&mut self, account: &Account, mut message: Message) -> TransformResult {
        let mut changed = false;
        for destination in &mut message.destinations {
            match phone::address_to_e164(destination, &self.country) {
                Ok(e164) => changed |= set_international(destination, &e164),
                Err(err) => {
                    log::info(&format!(
                        "{}: destination {:?} refused: {err}",
                        account.id, destination.addr
                    ));
                    return TransformResult::Reject(status::ESME_RINVDSTADR);
                }
            }
        }
        if self.normalise_source && is_numeric(&message.source) {
            match phone::address_to_e164(&message.source, &self.country) {
                Ok(e164) => changed |= set_international(&mut message.source, &e164),
                // An unknown-type number that is no phone number is most likely a short code,
                // which is a sender in its own right.
                Err(_) if message.source.ton == TON_UNKNOWN => {}
                Err(err) => {
                    log::info(&format!(
                        "{}: source {:?} refused: {err}",
                        account.id, message.source.addr
                    ));
                    return TransformResult::Reject(status::ESME_RINVSRCADR);
                }
            }
        }
        match changed {
            true => TransformResult::Replace(message),
            false => TransformResult::Continue,
        }
    }
}

register_plugin!(E164);

/// Writes `e164` (`+` and digits) into `address` as SMPP carries international numbers: the
/// digits with TON 1 / NPI 1. Returns whether anything changed.
fn set_international(address: &mut Address, e164: &str) -> bool {
    let normalised = Address {
        ton: TON_INTERNATIONAL,
        npi: NPI_ISDN,
        addr: e164.trim_start_matches('+').to_owned(),
    };
    let changed = *address != normalised;
    *address = normalised;
    changed
}

/// A sender this plugin may rewrite: a number (digits and the separators people write, with
/// an optional leading `+`) of international, national or unknown type. Names, and short
/// codes sent with other TONs, stay as they are.
fn is_numeric(address: &Address) -> bool {
    let number = address.addr.trim();
    let number = number.strip_prefix('+').unwrap_or(number);
    matches!(address.ton, TON_INTERNATIONAL | TON_NATIONAL | TON_UNKNOWN)
        && number.bytes().any(|b| b.is_ascii_digit())
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_whitespace() || "-./()".contains(c))
}

#[cfg(test)]
mod tests {
    use smsgate_plugin_sdk::{Hook, plugin_hooks, testing};

    use super::*;

    /// SMPP type of number: alphanumeric.
    const TON_ALPHANUMERIC: u8 = 5;

    fn plugin(config: &[(&str, &str)]) -> E164 {
        testing::set_config(config);
        E164::new()
    }

    fn de() -> E164 {
        plugin(&[("default_country", "DE")])
    }

    fn submit(plugin: &mut E164, message: Message) -> TransformResult {
        plugin.transform_submit(&testing::account("shop1"), message)
    }

    fn replaced(result: TransformResult) -> Message {
        match result {
            TransformResult::Replace(message) => message,
            other => panic!("expected replace, got {other:?}"),
        }
    }

    fn address(ton: u8, npi: u8, addr: &str) -> Address {
        Address {
            ton,
            npi,
            addr: addr.into(),
        }
    }

    #[test]
    fn announces_only_transform_submit() {
        assert_eq!(plugin_hooks!(E164), [Hook::TransformSubmit]);
    }

    #[test]
    fn national_numbers_become_international() {
        let mut plugin = de();
        for input in [
            "0170 1234567",
            "01701234567",
            "0049 170 1234567",
            "+49 (0)170 1234567",
        ] {
            let message = replaced(submit(&mut plugin, testing::message("Shop", input, "hi")));
            assert_eq!(
                message.destinations,
                [address(1, 1, "491701234567")],
                "{input}"
            );
        }
    }

    #[test]
    fn national_ton_is_read_for_the_default_country() {
        let mut plugin = de();
        let mut message = testing::message("Shop", "1701234567", "hi");
        message.destinations[0] = address(TON_NATIONAL, NPI_ISDN, "1701234567");
        let message = replaced(submit(&mut plugin, message));
        assert_eq!(message.destinations, [address(1, 1, "491701234567")]);
    }

    #[test]
    fn international_ton_keeps_its_country() {
        let mut plugin = de();
        let mut message = testing::message("Shop", "+442079460958", "hi");
        message.destinations[0].npi = 0;
        let message = replaced(submit(&mut plugin, message));
        assert_eq!(message.destinations, [address(1, 1, "442079460958")]);
    }

    #[test]
    fn the_country_setting_is_used() {
        let mut plugin = plugin(&[("default_country", "gb")]);
        let message = replaced(submit(
            &mut plugin,
            testing::message("Shop", "07911 123456", "hi"),
        ));
        assert_eq!(message.destinations, [address(1, 1, "447911123456")]);
    }

    #[test]
    fn numbers_already_in_e164_are_left_alone() {
        let mut plugin = de();
        let message = testing::message("Shop", "+491701234567", "hi");
        assert_eq!(submit(&mut plugin, message), TransformResult::Continue);
    }

    #[test]
    fn every_destination_is_normalised() {
        let mut plugin = de();
        let mut message = testing::message("Shop", "+491701234567", "hi");
        message.destinations.push(address(0, 1, "0151 2345678"));
        let message = replaced(submit(&mut plugin, message));
        assert_eq!(
            message.destinations,
            [address(1, 1, "491701234567"), address(1, 1, "491512345678")]
        );
    }

    #[test]
    fn numbers_that_cannot_be_valid_are_rejected() {
        let mut plugin = de();
        for input in [
            "",
            "12",
            "call me",
            "+999123456789",
            "0170-12345678901234",
            "+49 0170 1234567",
        ] {
            let result = submit(&mut plugin, testing::message("Shop", input, "hi"));
            assert_eq!(
                result,
                TransformResult::Reject(status::ESME_RINVDSTADR),
                "{input:?}"
            );
        }
        assert!(
            testing::logs()
                .iter()
                .all(|(_, line)| line.contains("shop1"))
        );
    }

    #[test]
    fn one_bad_destination_rejects_the_message() {
        let mut plugin = de();
        let mut message = testing::message("Shop", "+491701234567", "hi");
        message.destinations.push(address(0, 1, "123"));
        let result = submit(&mut plugin, message);
        assert_eq!(result, TransformResult::Reject(status::ESME_RINVDSTADR));
    }

    #[test]
    fn alphanumeric_destinations_are_rejected() {
        let mut plugin = de();
        let mut message = testing::message("Shop", "+491701234567", "hi");
        message.destinations[0] = address(TON_ALPHANUMERIC, 0, "01701234567");
        let result = submit(&mut plugin, message);
        assert_eq!(result, TransformResult::Reject(status::ESME_RINVDSTADR));
    }

    #[test]
    fn without_a_country_only_international_numbers_pass() {
        let mut plugin = plugin(&[]);
        assert!(
            testing::logs()
                .iter()
                .any(|(_, line)| line.contains("default_country"))
        );
        let result = submit(
            &mut plugin,
            testing::message("Shop", "0049170 1234567", "hi"),
        );
        assert_eq!(result, TransformResult::Reject(status::ESME_RINVDSTADR));
        let result = submit(&mut plugin, testing::message("Shop", "+491701234567", "hi"));
        assert_eq!(result, TransformResult::Continue);
    }

    #[test]
    fn sources_are_left_alone_unless_asked() {
        let mut plugin = de();
        let message = testing::message("0170 1234567", "+491701234567", "hi");
        assert_eq!(submit(&mut plugin, message), TransformResult::Continue);
    }

    #[test]
    fn numeric_sources_are_normalised_when_asked() {
        let mut plugin = plugin(&[("default_country", "DE"), ("normalise_source", "true")]);
        let message = replaced(submit(
            &mut plugin,
            testing::message("0170 1234567", "+491701234567", "hi"),
        ));
        assert_eq!(message.source, address(1, 1, "491701234567"));

        let mut message = testing::message("x", "+491701234567", "hi");
        message.source = address(TON_NATIONAL, NPI_ISDN, "1701234567");
        let message = replaced(submit(&mut plugin, message));
        assert_eq!(message.source, address(1, 1, "491701234567"));
    }

    #[test]
    fn alphanumeric_senders_and_short_codes_stay() {
        let mut plugin = plugin(&[("default_country", "DE"), ("normalise_source", "true")]);
        for source in [
            address(TON_ALPHANUMERIC, 0, "Shop"),
            address(TON_ALPHANUMERIC, 0, "12345"),
            address(TON_UNKNOWN, 0, "Shop24"),
            address(TON_UNKNOWN, 1, "12345"),
            address(3, 0, "12345"),
            address(6, 0, "1234"),
            address(TON_UNKNOWN, 0, ""),
        ] {
            let mut message = testing::message("x", "+491701234567", "hi");
            message.source = source.clone();
            assert_eq!(
                submit(&mut plugin, message),
                TransformResult::Continue,
                "{source:?}"
            );
        }
    }

    #[test]
    fn numbers_claimed_international_or_national_must_be_valid_senders() {
        let mut plugin = plugin(&[("default_country", "DE"), ("normalise_source", "true")]);
        for source in [
            address(TON_INTERNATIONAL, 1, "999123"),
            address(TON_NATIONAL, 1, "12"),
        ] {
            let mut message = testing::message("x", "+491701234567", "hi");
            message.source = source.clone();
            assert_eq!(
                submit(&mut plugin, message),
                TransformResult::Reject(status::ESME_RINVSRCADR),
                "{source:?}"
            );
        }
    }

    #[test]
    fn other_fields_are_kept() {
        let mut plugin = de();
        let mut message = testing::message("Shop", "0170 1234567", "hello");
        message.registered_delivery = 1;
        message.set_label("k", "v");
        let expected = Message {
            destinations: vec![address(1, 1, "491701234567")],
            ..message.clone()
        };
        assert_eq!(replaced(submit(&mut plugin, message)), expected);
    }
}
