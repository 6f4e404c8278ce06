//! prefix-router: chooses device, SIM slot and priority by the destination number's prefix,
//! and refuses destinations on a deny-list; for incoming SMS, chooses the SMPP users that get
//! them (or drops them) by the prefixes of the number they were sent to and of their sender.
//!
//! The longest configured prefix that the destination starts with wins, so a general rule
//! (`+49` → device A) and an exception (`+4917` → SIM 2) can stand side by side. Incoming
//! rules match on two numbers at once, so they are tried in the order of the file, like
//! firewall rules. See README.md for the configuration.

use std::cmp::Reverse;

use smsgate_plugin_sdk::{
    Account, IncomingSms, Message, Plugin, Route, RouteDecision, RouteIncoming,
    RouteIncomingResult, RouteResult, config, log, register_plugin, status,
};

/// One `[[config.routes]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PrefixRoute {
    /// Digits only; see [`digits`].
    prefix: String,
    /// As configured, for log lines.
    configured: String,
    decision: RouteDecision,
}

/// One `[[config.incoming]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IncomingRule {
    /// `incoming.N`, for log lines.
    key: String,
    /// Digit prefixes (see [`digits`]) of the phone's own number and of the sender; `None`
    /// matches any.
    recipient: Option<String>,
    sender: Option<String>,
    action: IncomingAction,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum IncomingAction {
    Deliver(Vec<String>),
    Drop(String),
}

/// The plugin: deny-list and routes, each sorted longest prefix first; incoming rules in the
/// order of the file.
pub struct PrefixRouter {
    deny: Vec<(String, String)>,
    deny_status: u32,
    routes: Vec<PrefixRoute>,
    incoming: Vec<IncomingRule>,
}

impl Plugin for PrefixRouter {
    fn new() -> Self {
        let mut deny: Vec<(String, String)> = config::list("deny")
            .into_iter()
            .filter_map(|prefix| match digits(&prefix) {
                Some(key) => Some((key, prefix)),
                None => {
                    log::warn(&format!("deny: {prefix:?} is not a number prefix, ignored"));
                    None
                }
            })
            .collect();
        deny.sort_by_key(|(key, _)| Reverse(key.len()));

        let deny_status = match config::get("deny_status") {
            None => status::ESME_RINVDSTADR,
            Some(text) => match parse_status(&text) {
                Some(value) => value,
                None => {
                    log::warn(&format!(
                        "deny_status = {text:?} is not a non-zero command_status; using \
                         ESME_RINVDSTADR (11)"
                    ));
                    status::ESME_RINVDSTADR
                }
            },
        };

        let mut routes: Vec<PrefixRoute> = Vec::new();
        for index in config::children("routes") {
            let Some(route) = route(&format!("routes.{index}")) else {
                continue;
            };
            if let Some(earlier) = routes.iter().find(|r| r.prefix == route.prefix) {
                log::warn(&format!(
                    "routes.{index}: prefix {:?} is already routed by {:?}; ignored",
                    route.configured, earlier.configured
                ));
                continue;
            }
            routes.push(route);
        }
        routes.sort_by_key(|route| Reverse(route.prefix.len()));

        let incoming = config::children("incoming")
            .iter()
            .filter_map(|index| incoming_rule(&format!("incoming.{index}")))
            .collect();

        PrefixRouter {
            deny,
            deny_status,
            routes,
            incoming,
        }
    }
}

impl Route for PrefixRouter {
    fn route(&mut self, account: &Account, message: &Message) -> RouteResult {
        for destination in &message.destinations {
            let Some(number) = digits(&destination.addr) else {
                continue;
            };
            if let Some((_, prefix)) = self.deny.iter().find(|(key, _)| number.starts_with(key)) {
                log::info(&format!(
                    "{}: destination {:?} is denied by {prefix:?}",
                    account.id, destination.addr
                ));
                return RouteResult::Reject(self.deny_status);
            }
        }
        // One message goes out through one device, so the first destination decides.
        let Some(number) = message.destinations.first().and_then(|d| digits(&d.addr)) else {
            return RouteResult::Continue;
        };
        match self.routes.iter().find(|r| number.starts_with(&r.prefix)) {
            Some(route) => {
                log::debug(&format!(
                    "{}: +{number} routed by prefix {:?}",
                    account.id, route.configured
                ));
                RouteResult::Route(route.decision.clone())
            }
            None => RouteResult::Continue,
        }
    }
}

impl RouteIncoming for PrefixRouter {
    fn route_incoming(
        &mut self,
        incoming: &IncomingSms,
        _candidates: &[Account],
    ) -> RouteIncomingResult {
        let recipient = incoming.recipient.as_deref().and_then(digits);
        let sender = digits(&incoming.sender);
        // A rule's prefix matches only a number; a sender name or an unknown recipient never
        // matches a rule that names a prefix for it.
        let matches = |prefix: &Option<String>, number: &Option<String>| match prefix {
            None => true,
            Some(prefix) => number.as_ref().is_some_and(|n| n.starts_with(prefix)),
        };
        let Some(rule) = self
            .incoming
            .iter()
            .find(|rule| matches(&rule.recipient, &recipient) && matches(&rule.sender, &sender))
        else {
            return RouteIncomingResult::Continue;
        };
        log::debug(&format!(
            "incoming SMS from {:?} to {:?} matched {}",
            incoming.sender, incoming.recipient, rule.key
        ));
        match &rule.action {
            IncomingAction::Deliver(users) => RouteIncomingResult::Deliver(users.clone()),
            IncomingAction::Drop(reason) => RouteIncomingResult::Drop(reason.clone()),
        }
    }
}

register_plugin!(PrefixRouter);

/// The digits of a number or prefix, without the `+` that E.164 writes and SMPP leaves out
/// (TON 1): `+4917` and `4917` match the same numbers. `None` for anything that is not
/// digits, such as an alphanumeric address.
fn digits(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text.strip_prefix('+').unwrap_or(text);
    let digits: String = text
        .chars()
        .filter(|c| !(c.is_whitespace() || *c == '-'))
        .collect();
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// A command_status written as a number (`11`) or in hex as the SMPP specification lists
/// them (`"0x0B"`).
fn parse_status(text: &str) -> Option<u32> {
    let text = text.trim();
    let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => text.parse().ok()?,
    };
    (value != status::ESME_ROK).then_some(value)
}

/// The route at `key` (`routes.0`), or `None` after a warning when it is unusable.
fn route(key: &str) -> Option<PrefixRoute> {
    let Some(configured) = config::get(&format!("{key}.prefix")) else {
        log::warn(&format!("{key}: no prefix; route ignored"));
        return None;
    };
    let Some(prefix) = digits(&configured) else {
        log::warn(&format!(
            "{key}: prefix {configured:?} is not a number prefix; route ignored"
        ));
        return None;
    };
    let sim_number: Option<u8> = number(key, "sim_number", &configured)?;
    if sim_number == Some(0) {
        log::warn(&format!(
            "{key}.sim_number counts from 1; route {configured:?} ignored"
        ));
        return None;
    }
    let priority: Option<i8> = number(key, "priority", &configured)?;
    let device_id = config::get(&format!("{key}.device_id")).filter(|id| !id.is_empty());
    Some(PrefixRoute {
        prefix,
        configured,
        decision: RouteDecision {
            device_id,
            sim_number,
            priority,
            credentials: None,
        },
    })
}

/// The incoming rule at `key` (`incoming.0`), or `None` after a warning when it is unusable.
fn incoming_rule(key: &str) -> Option<IncomingRule> {
    let prefix = |field: &str| -> Option<Option<String>> {
        match config::get(&format!("{key}.{field}")) {
            None => Some(None),
            Some(text) => match digits(&text) {
                Some(prefix) => Some(Some(prefix)),
                None => {
                    log::warn(&format!(
                        "{key}.{field}: {text:?} is not a number prefix; rule ignored"
                    ));
                    None
                }
            },
        }
    };
    let recipient = prefix("recipient")?;
    let sender = prefix("sender")?;
    let users = config::list(&format!("{key}.users"));
    let action = match (users.is_empty(), config::get(&format!("{key}.drop"))) {
        (false, None) => IncomingAction::Deliver(users),
        (true, Some(reason)) => IncomingAction::Drop(reason),
        (false, Some(_)) => {
            log::warn(&format!(
                "{key}: both users and drop; say one of them. Rule ignored"
            ));
            return None;
        }
        (true, None) => {
            log::warn(&format!(
                "{key}: neither users (a non-empty list) nor drop; rule ignored"
            ));
            return None;
        }
    };
    Some(IncomingRule {
        key: key.to_owned(),
        recipient,
        sender,
        action,
    })
}

/// The number at `key.field`: `Some(None)` when it is not set, `None` after a warning when it
/// does not parse.
fn number<T: std::str::FromStr>(key: &str, field: &str, configured: &str) -> Option<Option<T>> {
    match config::get_parsed(&format!("{key}.{field}")) {
        None => Some(None),
        Some(Ok(value)) => Some(Some(value)),
        Some(Err(_)) => {
            log::warn(&format!(
                "{key}.{field} is not a valid number; route {configured:?} ignored"
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use smsgate_plugin_sdk::{Address, log::Level};
    use smsgate_plugin_sdk::{Hook, plugin_hooks, testing};

    use super::*;

    const EXAMPLE: &[(&str, &str)] = &[
        ("deny.0", "+7"),
        ("deny.1", "+380"),
        ("routes.0.prefix", "+49"),
        ("routes.0.device_id", "dev-de"),
        ("routes.0.sim_number", "1"),
        ("routes.1.prefix", "+4917"),
        ("routes.1.sim_number", "2"),
        ("routes.2.prefix", "44"),
        ("routes.2.device_id", "dev-uk"),
        ("routes.2.priority", "100"),
    ];

    fn example() -> PrefixRouter {
        testing::set_config(EXAMPLE);
        PrefixRouter::new()
    }

    fn route_to(plugin: &mut PrefixRouter, destinations: &[&str]) -> RouteResult {
        let mut message = testing::message("Shop", destinations[0], "hi");
        for destination in &destinations[1..] {
            message
                .destinations
                .push(testing::message("Shop", destination, "").destinations[0].clone());
        }
        plugin.route(&testing::account("shop1"), &message)
    }

    fn decision(
        device_id: Option<&str>,
        sim_number: Option<u8>,
        priority: Option<i8>,
    ) -> RouteResult {
        RouteResult::Route(RouteDecision {
            device_id: device_id.map(str::to_owned),
            sim_number,
            priority,
            credentials: None,
        })
    }

    #[test]
    fn announces_route_and_route_incoming() {
        assert_eq!(
            plugin_hooks!(PrefixRouter),
            [Hook::Route, Hook::RouteIncoming]
        );
    }

    const INCOMING: &[(&str, &str)] = &[
        ("incoming.0.sender", "+4990"),
        ("incoming.0.drop", "premium-rate sender"),
        ("incoming.1.recipient", "+4930222"),
        ("incoming.1.users.0", "shop2"),
        ("incoming.2.recipient", "+4930"),
        ("incoming.2.sender", "+44"),
        ("incoming.2.users.0", "shop1"),
        ("incoming.2.users.1", "uk-desk"),
    ];

    fn route_incoming(
        plugin: &mut PrefixRouter,
        sender: &str,
        recipient: &str,
    ) -> RouteIncomingResult {
        let mut sms = testing::received(sender, recipient, "hi");
        if recipient.is_empty() {
            sms.recipient = None;
        }
        plugin.route_incoming(
            &sms,
            &[testing::account("shop1"), testing::account("shop2")],
        )
    }

    fn deliver(users: &[&str]) -> RouteIncomingResult {
        RouteIncomingResult::Deliver(users.iter().map(|u| u.to_string()).collect())
    }

    #[test]
    fn incoming_rules_apply_in_the_order_of_the_file() {
        testing::set_config(INCOMING);
        let mut plugin = PrefixRouter::new();
        assert_eq!(
            route_incoming(&mut plugin, "+4915112345678", "+4930222222"),
            deliver(&["shop2"])
        );
        assert_eq!(
            route_incoming(&mut plugin, "+447911123456", "+4930111111"),
            deliver(&["shop1", "uk-desk"])
        );
        // The drop rule comes first, whatever number the SMS was sent to.
        assert_eq!(
            route_incoming(&mut plugin, "+49900123456", "+4930222222"),
            RouteIncomingResult::Drop("premium-rate sender".into())
        );
        // No rule: the server's own matching decides.
        assert_eq!(
            route_incoming(&mut plugin, "+4915112345678", "+4930111111"),
            RouteIncomingResult::Continue
        );
        assert!(
            testing::logs()
                .iter()
                .all(|(level, _)| *level != Level::Warn)
        );
    }

    #[test]
    fn incoming_prefixes_never_match_names_or_unknown_numbers() {
        testing::set_config(INCOMING);
        let mut plugin = PrefixRouter::new();
        // The recipient is unknown: rule 1 cannot match, and rule 2 needs it too.
        assert_eq!(
            route_incoming(&mut plugin, "+447911123456", ""),
            RouteIncomingResult::Continue
        );
        // A sender name is not a number: rules with a sender prefix do not match it, rules
        // without one still do.
        assert_eq!(
            route_incoming(&mut plugin, "Amazon", "+4930222222"),
            deliver(&["shop2"])
        );
        assert_eq!(
            route_incoming(&mut plugin, "Amazon", "+4930111111"),
            RouteIncomingResult::Continue
        );
    }

    #[test]
    fn unusable_incoming_rules_are_skipped_with_a_warning() {
        testing::set_config(&[
            ("incoming.0.recipient", "+4930"),
            ("incoming.1.recipient", "+4930"),
            ("incoming.1.users.0", "shop1"),
            ("incoming.1.drop", "both"),
            ("incoming.2.sender", "premium"),
            ("incoming.2.drop", "never"),
            ("incoming.3.users.0", "everyone-else"),
        ]);
        let mut plugin = PrefixRouter::new();
        assert_eq!(
            route_incoming(&mut plugin, "+4915112345678", "+4930222222"),
            deliver(&["everyone-else"])
        );
        let warnings = testing::logs()
            .iter()
            .filter(|(level, _)| *level == Level::Warn)
            .count();
        assert_eq!(warnings, 3, "{:?}", testing::logs());
    }

    #[test]
    fn the_longest_prefix_wins() {
        let mut plugin = example();
        assert_eq!(
            route_to(&mut plugin, &["+491701234567"]),
            decision(None, Some(2), None)
        );
        assert_eq!(
            route_to(&mut plugin, &["+493012345678"]),
            decision(Some("dev-de"), Some(1), None)
        );
        assert_eq!(
            route_to(&mut plugin, &["+442079460958"]),
            decision(Some("dev-uk"), None, Some(100))
        );
    }

    #[test]
    fn the_order_of_the_file_does_not_matter() {
        let mut reversed: Vec<(String, String)> = Vec::new();
        for (key, value) in EXAMPLE {
            let key = key
                .replace("routes.0.", "routes.X.")
                .replace("routes.1.", "routes.0.")
                .replace("routes.X.", "routes.1.");
            reversed.push((key, value.to_string()));
        }
        let entries: Vec<(&str, &str)> = reversed
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        testing::set_config(&entries);
        let mut plugin = PrefixRouter::new();
        assert_eq!(
            route_to(&mut plugin, &["+491701234567"]),
            decision(None, Some(2), None)
        );
    }

    #[test]
    fn prefixes_match_with_and_without_plus() {
        let mut plugin = example();
        let mut message = testing::message("Shop", "+491701234567", "hi");
        for addr in ["491701234567", "+491701234567", " +49 170 1234567"] {
            message.destinations[0] = Address {
                ton: 1,
                npi: 1,
                addr: addr.into(),
            };
            assert_eq!(
                plugin.route(&testing::account("shop1"), &message),
                decision(None, Some(2), None),
                "{addr:?}"
            );
        }
        // "44" was configured without '+'.
        assert_eq!(
            route_to(&mut plugin, &["+447911123456"]),
            decision(Some("dev-uk"), None, Some(100))
        );
    }

    #[test]
    fn no_match_continues() {
        let mut plugin = example();
        assert_eq!(
            route_to(&mut plugin, &["+33612345678"]),
            RouteResult::Continue
        );
        assert_eq!(route_to(&mut plugin, &["Shop"]), RouteResult::Continue);
        let mut message = testing::message("Shop", "+1", "hi");
        message.destinations.clear();
        assert_eq!(
            plugin.route(&testing::account("shop1"), &message),
            RouteResult::Continue
        );
    }

    #[test]
    fn denied_prefixes_are_rejected() {
        let mut plugin = example();
        for destination in ["+79161234567", "79161234567", "+380441234567"] {
            assert_eq!(
                route_to(&mut plugin, &[destination]),
                RouteResult::Reject(status::ESME_RINVDSTADR),
                "{destination}"
            );
        }
        assert!(
            testing::logs()
                .iter()
                .any(|(level, line)| *level == Level::Info && line.contains("\"+380\""))
        );
        // +381 (Serbia) shares digits with +380 but does not start with it.
        assert_eq!(
            route_to(&mut plugin, &["+381111234567"]),
            RouteResult::Continue
        );
    }

    #[test]
    fn any_denied_destination_rejects_the_message() {
        let mut plugin = example();
        assert_eq!(
            route_to(&mut plugin, &["+491701234567", "+79161234567"]),
            RouteResult::Reject(status::ESME_RINVDSTADR)
        );
    }

    #[test]
    fn the_first_destination_routes() {
        let mut plugin = example();
        assert_eq!(
            route_to(&mut plugin, &["+442079460958", "+491701234567"]),
            decision(Some("dev-uk"), None, Some(100))
        );
        assert_eq!(
            route_to(&mut plugin, &["+33612345678", "+491701234567"]),
            RouteResult::Continue
        );
    }

    #[test]
    fn the_deny_status_is_configurable() {
        for (text, expected) in [
            ("69", 0x45),
            ("0x45", 0x45),
            ("0X0b", 0x0B),
            ("0", status::ESME_RINVDSTADR),
            ("nope", status::ESME_RINVDSTADR),
        ] {
            testing::clear();
            testing::set_config(&[("deny.0", "+7"), ("deny_status", text)]);
            let mut plugin = PrefixRouter::new();
            assert_eq!(
                route_to(&mut plugin, &["+79161234567"]),
                RouteResult::Reject(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn deny_wins_over_a_longer_route() {
        testing::set_config(&[
            ("deny.0", "+7"),
            ("routes.0.prefix", "+7916"),
            ("routes.0.sim_number", "1"),
        ]);
        let mut plugin = PrefixRouter::new();
        assert_eq!(
            route_to(&mut plugin, &["+79161234567"]),
            RouteResult::Reject(status::ESME_RINVDSTADR)
        );
    }

    #[test]
    fn unusable_routes_are_skipped_with_a_warning() {
        testing::set_config(&[
            ("deny.0", "abc"),
            ("routes.0.device_id", "no-prefix"),
            ("routes.1.prefix", "+49"),
            ("routes.1.sim_number", "two"),
            ("routes.2.prefix", "+49"),
            ("routes.2.sim_number", "0"),
            ("routes.3.prefix", "+49"),
            ("routes.3.priority", "200"),
            ("routes.4.prefix", "DE"),
            ("routes.5.prefix", "+49"),
            ("routes.5.device_id", "dev-de"),
            ("routes.6.prefix", "49"),
            ("routes.6.device_id", "duplicate"),
        ]);
        let mut plugin = PrefixRouter::new();
        assert_eq!(
            route_to(&mut plugin, &["+491701234567"]),
            decision(Some("dev-de"), None, None)
        );
        let warnings = testing::logs()
            .iter()
            .filter(|(level, _)| *level == Level::Warn)
            .count();
        assert_eq!(warnings, 7, "{:?}", testing::logs());
    }

    #[test]
    fn no_configuration_routes_nothing() {
        let mut plugin = PrefixRouter::new();
        assert_eq!(
            route_to(&mut plugin, &["+491701234567"]),
            RouteResult::Continue
        );
        assert!(testing::logs().is_empty());
    }

    #[test]
    fn routes_past_the_tenth_are_read() {
        let entries: Vec<(String, String)> = (0..12)
            .flat_map(|i| {
                [
                    (format!("routes.{i}.prefix"), format!("+49{i:02}")),
                    (format!("routes.{i}.sim_number"), format!("{}", i + 1)),
                ]
            })
            .collect();
        let entries: Vec<(&str, &str)> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        testing::set_config(&entries);
        let mut plugin = PrefixRouter::new();
        assert_eq!(
            route_to(&mut plugin, &["+4911123456789"]),
            decision(None, Some(12), None)
        );
    }
}
