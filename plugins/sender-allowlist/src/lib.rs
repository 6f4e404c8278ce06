//! sender-allowlist: lets each account send only from the sender ids the operator allowed it.
//!
//! Operators that resell or share a gateway need every customer to appear under its own name
//! and not under someone else's. The list is per account (`[config.accounts.ID]`), with a
//! `default` for accounts not listed; a sender that is not on the account's list gets
//! ESME_RINVSRCADR. See README.md for the configuration.

use std::collections::BTreeMap;

use smsgate_plugin_sdk::{
    Account, Address, Message, Plugin, TransformResult, TransformSubmit, config, log,
    register_plugin, status,
};

/// A list entry that allows every sender, for accounts that should not inherit `default`
/// (an empty list cannot say so: it is the same as no list).
const ANY: &str = "*";

/// A sender id as it is compared.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Sender {
    /// Digits without the leading `+`, which SMPP expresses with TON 1 instead.
    Number(String),
    /// Lower case, since `SHOP` and `Shop` look like the same sender to the recipient.
    Name(String),
}

impl Sender {
    fn new(text: &str) -> Sender {
        let text = text.trim();
        let digits = text.strip_prefix('+').unwrap_or(text);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            Sender::Number(digits.to_owned())
        } else {
            Sender::Name(text.to_lowercase())
        }
    }
}

/// Which senders an account may use.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Allowed {
    Any,
    Only(Vec<Sender>),
}

impl Allowed {
    /// From a configured list: empty or containing [`ANY`] allows everything.
    fn new(list: &[String]) -> Allowed {
        if list.is_empty() || list.iter().any(|entry| entry.trim() == ANY) {
            Allowed::Any
        } else {
            Allowed::Only(list.iter().map(|entry| Sender::new(entry)).collect())
        }
    }

    fn allows(&self, sender: &Sender) -> bool {
        match self {
            Allowed::Any => true,
            Allowed::Only(senders) => senders.contains(sender),
        }
    }
}

/// One `[config.accounts.ID]` table.
#[derive(Debug, Default)]
struct AccountPolicy {
    /// `None`: the account uses `default`.
    senders: Option<Allowed>,
    replace_empty: Option<Address>,
}

/// The plugin: the default list and the accounts' own.
pub struct SenderAllowlist {
    default: Allowed,
    default_replace_empty: Option<Address>,
    accounts: BTreeMap<String, AccountPolicy>,
}

impl Plugin for SenderAllowlist {
    fn new() -> Self {
        SenderAllowlist {
            default: Allowed::new(&config::list("default")),
            default_replace_empty: config::get("replace_empty").and_then(|s| address(&s)),
            accounts: accounts(),
        }
    }
}

impl TransformSubmit for SenderAllowlist {
    fn transform_submit(&mut self, account: &Account, mut message: Message) -> TransformResult {
        let policy = self.accounts.get(&account.id);
        if message.source.addr.trim().is_empty() {
            let replacement = policy
                .and_then(|p| p.replace_empty.as_ref())
                .or(self.default_replace_empty.as_ref());
            if let Some(replacement) = replacement {
                message.source = replacement.clone();
                return TransformResult::Replace(message);
            }
        }
        let allowed = policy
            .and_then(|p| p.senders.as_ref())
            .unwrap_or(&self.default);
        if allowed.allows(&Sender::new(&message.source.addr)) {
            return TransformResult::Continue;
        }
        log::info(&format!(
            "{}: sender {:?} is not allowed",
            account.id, message.source.addr
        ));
        TransformResult::Reject(status::ESME_RINVSRCADR)
    }
}

register_plugin!(SenderAllowlist);

/// Every `[config.accounts.ID]` table by account id.
fn accounts() -> BTreeMap<String, AccountPolicy> {
    let mut senders: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    let mut accounts: BTreeMap<String, AccountPolicy> = BTreeMap::new();
    for key in config::keys("accounts.") {
        let rest = &key["accounts.".len()..];
        let value = config::get(&key).unwrap_or_default();
        match split_entry(rest) {
            Some((id, Field::Sender(index))) => {
                accounts.entry(id.to_owned()).or_default();
                senders
                    .entry(id.to_owned())
                    .or_default()
                    .push((index, value));
            }
            Some((id, Field::ReplaceEmpty)) => {
                accounts.entry(id.to_owned()).or_default().replace_empty = address(&value);
            }
            None => log::warn(&format!("{key}: unknown setting, ignored")),
        }
    }
    for (id, mut list) in senders {
        // Keys sort as text, which puts "10" before "2".
        list.sort_unstable();
        let list: Vec<String> = list.into_iter().map(|(_, value)| value).collect();
        if let Some(policy) = accounts.get_mut(&id) {
            policy.senders = Some(Allowed::new(&list));
        }
    }
    accounts
}

enum Field {
    Sender(u64),
    ReplaceEmpty,
}

/// Splits `shop.1.senders.0` into the account id `shop.1` and its field. Account ids may
/// contain dots (`[config.accounts."shop.1"]`), so the split is where a known field starts.
fn split_entry(rest: &str) -> Option<(&str, Field)> {
    rest.match_indices('.').find_map(|(dot, _)| {
        let (id, field) = (&rest[..dot], &rest[dot + 1..]);
        if id.is_empty() {
            return None;
        }
        if field == "replace_empty" {
            return Some((id, Field::ReplaceEmpty));
        }
        let index = field.strip_prefix("senders.")?;
        match index.bytes().all(|b| b.is_ascii_digit()) {
            true => Some((id, Field::Sender(index.parse().ok()?))),
            false => None,
        }
    })
}

/// The SMPP address for a configured sender: `+` numbers as international (TON 1/NPI 1),
/// other numbers as unknown/ISDN, names as alphanumeric (TON 5). `None` for an empty text.
fn address(sender: &str) -> Option<Address> {
    let sender = sender.trim();
    let address = match Sender::new(sender) {
        _ if sender.is_empty() => return None,
        Sender::Number(digits) if sender.starts_with('+') => Address {
            ton: 1,
            npi: 1,
            addr: digits,
        },
        Sender::Number(digits) => Address {
            ton: 0,
            npi: 1,
            addr: digits,
        },
        Sender::Name(_) => Address {
            ton: 5,
            npi: 0,
            addr: sender.to_owned(),
        },
    };
    Some(address)
}

#[cfg(test)]
mod tests {
    use smsgate_plugin_sdk::log::Level;
    use smsgate_plugin_sdk::{Hook, plugin_hooks, testing};

    use super::*;

    const EXAMPLE: &[(&str, &str)] = &[
        ("default.0", "Shop"),
        ("default.1", "+4915112345678"),
        ("accounts.shop1.senders.0", "ShopOne"),
        ("accounts.shop1.senders.1", "ShopOne-Alerts"),
    ];

    fn example(extra: &[(&'static str, &'static str)]) -> SenderAllowlist {
        let entries: Vec<_> = EXAMPLE.iter().chain(extra).copied().collect();
        testing::set_config(&entries);
        SenderAllowlist::new()
    }

    fn submit(plugin: &mut SenderAllowlist, account: &str, source: Address) -> TransformResult {
        let mut message = testing::message("x", "+491701234567", "hi");
        message.source = source;
        plugin.transform_submit(&testing::account(account), message)
    }

    fn name(text: &str) -> Address {
        Address {
            ton: 5,
            npi: 0,
            addr: text.into(),
        }
    }

    fn number(ton: u8, text: &str) -> Address {
        Address {
            ton,
            npi: 1,
            addr: text.into(),
        }
    }

    const REJECTED: TransformResult = TransformResult::Reject(status::ESME_RINVSRCADR);

    #[test]
    fn announces_only_transform_submit() {
        assert_eq!(plugin_hooks!(SenderAllowlist), [Hook::TransformSubmit]);
    }

    #[test]
    fn accounts_use_their_own_list() {
        let mut plugin = example(&[]);
        for sender in ["ShopOne", "ShopOne-Alerts"] {
            assert_eq!(
                submit(&mut plugin, "shop1", name(sender)),
                TransformResult::Continue
            );
        }
        // Their own list replaces the default rather than adding to it.
        assert_eq!(submit(&mut plugin, "shop1", name("Shop")), REJECTED);
        assert_eq!(submit(&mut plugin, "shop1", name("Other")), REJECTED);
        assert!(
            testing::logs()
                .iter()
                .any(|(level, line)| *level == Level::Info
                    && line.contains("shop1")
                    && line.contains("\"Other\""))
        );
    }

    #[test]
    fn other_accounts_use_the_default() {
        let mut plugin = example(&[]);
        assert_eq!(
            submit(&mut plugin, "shop2", name("Shop")),
            TransformResult::Continue
        );
        assert_eq!(
            submit(&mut plugin, "shop2", number(1, "4915112345678")),
            TransformResult::Continue
        );
        assert_eq!(submit(&mut plugin, "shop2", name("ShopOne")), REJECTED);
    }

    #[test]
    fn names_match_in_any_case() {
        let mut plugin = example(&[]);
        for sender in ["shopone", "SHOPONE", "shopOne-alerts"] {
            assert_eq!(
                submit(&mut plugin, "shop1", name(sender)),
                TransformResult::Continue,
                "{sender}"
            );
        }
        // Also when the ESME does not mark it alphanumeric.
        assert_eq!(
            submit(&mut plugin, "shop2", number(0, "SHOP")),
            TransformResult::Continue
        );
    }

    #[test]
    fn numbers_match_exactly() {
        let mut plugin = example(&[]);
        for sender in [
            number(1, "4915112345678"),
            number(1, "+4915112345678"),
            number(0, "+4915112345678"),
        ] {
            assert_eq!(
                submit(&mut plugin, "shop2", sender.clone()),
                TransformResult::Continue,
                "{sender:?}"
            );
        }
        for sender in [
            number(1, "491511234567"),
            number(1, "49151123456789"),
            number(2, "015112345678"),
            number(1, "49 151 12345678"),
        ] {
            assert_eq!(
                submit(&mut plugin, "shop2", sender.clone()),
                REJECTED,
                "{sender:?}"
            );
        }
    }

    #[test]
    fn numbers_without_plus_and_short_codes() {
        testing::set_config(&[("default.0", "12345")]);
        let mut plugin = SenderAllowlist::new();
        assert_eq!(
            submit(&mut plugin, "a", number(3, "12345")),
            TransformResult::Continue
        );
        assert_eq!(
            submit(&mut plugin, "a", name("12345")),
            TransformResult::Continue
        );
        assert_eq!(submit(&mut plugin, "a", number(3, "1234")), REJECTED);
    }

    #[test]
    fn no_default_allows_everything_for_accounts_not_listed() {
        testing::set_config(&[("accounts.shop1.senders.0", "ShopOne")]);
        let mut plugin = SenderAllowlist::new();
        assert_eq!(
            submit(&mut plugin, "shop2", name("Anything")),
            TransformResult::Continue
        );
        assert_eq!(submit(&mut plugin, "shop1", name("Anything")), REJECTED);
    }

    #[test]
    fn no_configuration_allows_everything() {
        let mut plugin = SenderAllowlist::new();
        assert_eq!(
            submit(&mut plugin, "shop1", name("Anything")),
            TransformResult::Continue
        );
        assert_eq!(
            submit(&mut plugin, "shop1", number(0, "")),
            TransformResult::Continue
        );
    }

    #[test]
    fn a_star_exempts_an_account_from_the_default() {
        let mut plugin = example(&[("accounts.admin.senders.0", "*")]);
        assert_eq!(
            submit(&mut plugin, "admin", name("Anything")),
            TransformResult::Continue
        );
    }

    #[test]
    fn an_empty_source_is_not_an_allowed_sender() {
        let mut plugin = example(&[]);
        assert_eq!(submit(&mut plugin, "shop1", number(0, "")), REJECTED);
        assert_eq!(submit(&mut plugin, "shop2", number(0, " ")), REJECTED);
    }

    #[test]
    fn an_empty_source_can_be_replaced() {
        let mut plugin = example(&[
            ("accounts.shop1.replace_empty", "ShopOne"),
            ("accounts.shop3.replace_empty", "+4915112345678"),
        ]);
        let mut message = testing::message("x", "+491701234567", "hi");
        message.source = number(0, "");
        let result = plugin.transform_submit(&testing::account("shop1"), message.clone());
        let expected = Message {
            source: name("ShopOne"),
            ..message.clone()
        };
        assert_eq!(result, TransformResult::Replace(expected));

        // An account with only replace_empty keeps the default list.
        let result = plugin.transform_submit(&testing::account("shop3"), message.clone());
        let TransformResult::Replace(replaced) = result else {
            panic!("{result:?}")
        };
        assert_eq!(replaced.source, number(1, "4915112345678"));
        assert_eq!(
            submit(&mut plugin, "shop3", name("Shop")),
            TransformResult::Continue
        );

        // A sender that is there is checked, not replaced.
        assert_eq!(submit(&mut plugin, "shop1", name("Other")), REJECTED);
    }

    #[test]
    fn a_default_replacement_applies_to_every_account() {
        let mut plugin = example(&[
            ("replace_empty", "Shop"),
            ("accounts.shop1.replace_empty", "ShopOne"),
        ]);
        for (account, expected) in [("shop1", "ShopOne"), ("shop2", "Shop")] {
            let TransformResult::Replace(message) = submit(&mut plugin, account, number(0, ""))
            else {
                panic!("{account}: not replaced");
            };
            assert_eq!(message.source, name(expected), "{account}");
        }
    }

    #[test]
    fn account_ids_with_dots_and_long_lists() {
        let mut entries: Vec<(String, String)> = (0..12)
            .map(|i| (format!("accounts.shop.1.senders.{i}"), format!("S{i}")))
            .collect();
        entries.push(("accounts.shop.senders.0".into(), "Plain".into()));
        entries.push(("accounts.shop.1.sendrs.0".into(), "typo".into()));
        let entries: Vec<(&str, &str)> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        testing::set_config(&entries);
        let mut plugin = SenderAllowlist::new();
        for sender in ["S0", "S2", "S11"] {
            assert_eq!(
                submit(&mut plugin, "shop.1", name(sender)),
                TransformResult::Continue,
                "{sender}"
            );
        }
        assert_eq!(submit(&mut plugin, "shop.1", name("Plain")), REJECTED);
        assert_eq!(
            submit(&mut plugin, "shop", name("Plain")),
            TransformResult::Continue
        );
        assert_eq!(submit(&mut plugin, "shop", name("S0")), REJECTED);
        let warnings: Vec<_> = testing::logs()
            .into_iter()
            .filter(|(level, _)| *level == Level::Warn)
            .collect();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].1.contains("accounts.shop.1.sendrs.0"));
    }
}
