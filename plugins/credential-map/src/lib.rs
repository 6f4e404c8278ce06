//! credential-map: maps short SMPP credentials to SMSGate accounts.
//!
//! SMPP carries at most 8 characters of password, while SMSGate passwords have 14 or more, so
//! an ESME cannot bind with its SMSGate credentials directly. This plugin keeps a table of SMPP
//! users (`[config.users.SYSTEM_ID]`), checks the bind against it (password, peer address,
//! bind type) and accepts it with the SMSGate credentials or token of that user. See README.md
//! for the configuration.

mod peers;
mod users;

use std::collections::BTreeMap;

use smsgate_plugin_sdk::{
    AuthResult, Authenticate, BindRequest, Plugin, config, log, register_plugin, status,
};

use users::User;

/// What a bind with a system_id that is not in the map gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unknown {
    /// Leave it to the next plugin, or the server's default (system_id and password used as
    /// SMSGate credentials).
    Pass,
    Reject,
}

/// The plugin: the user table of its configuration.
pub struct CredentialMap {
    unknown: Unknown,
    users: BTreeMap<String, Result<User, String>>,
}

impl Plugin for CredentialMap {
    fn new() -> Self {
        let unknown = match config::get("unknown").as_deref() {
            None | Some("pass") => Unknown::Pass,
            Some("reject") => Unknown::Reject,
            Some(other) => {
                // Letting unknown users through is the less safe reading of a typo.
                log::warn(&format!(
                    "unknown = {other:?} is not \"pass\" or \"reject\"; rejecting unknown system_ids"
                ));
                Unknown::Reject
            }
        };
        CredentialMap {
            unknown,
            users: users::load(),
        }
    }
}

impl Authenticate for CredentialMap {
    fn authenticate(&mut self, request: BindRequest) -> AuthResult {
        let system_id = &request.system_id;
        let peer = &request.peer_address;
        let user = match self.users.get(system_id) {
            Some(Ok(user)) => user,
            Some(Err(problem)) => {
                log::error(&format!(
                    "users.{system_id} is misconfigured: {problem}; bind from {peer} refused"
                ));
                return AuthResult::Reject(status::ESME_RBINDFAIL);
            }
            None => {
                return match self.unknown {
                    Unknown::Pass => AuthResult::Pass,
                    Unknown::Reject => {
                        log::info(&format!("unknown system_id {system_id:?} from {peer}"));
                        AuthResult::Reject(status::ESME_RINVSYSID)
                    }
                };
            }
        };
        // Before the password, so that a peer that may not bind learns nothing about it.
        if !user.peer_allowed(peer) {
            log::info(&format!("{system_id}: peer {peer} is not in allowed_peers"));
            return AuthResult::Reject(status::ESME_RBINDFAIL);
        }
        if !user.password_matches(&request.password) {
            log::info(&format!("{system_id}: wrong password from {peer}"));
            return AuthResult::Reject(status::ESME_RINVPASWD);
        }
        if !user.bind_allowed(request.bind_type) {
            log::info(&format!(
                "{system_id}: {:?} bind from {peer} is not in allowed_binds",
                request.bind_type
            ));
            return AuthResult::Reject(status::ESME_RBINDFAIL);
        }
        log::debug(&format!("{system_id}: bound from {peer}"));
        AuthResult::Accept(user.account().clone())
    }
}

register_plugin!(CredentialMap);

#[cfg(test)]
mod tests {
    use smsgate_plugin_sdk::{
        Account, AccountLimits, BasicCredentials, BindRequest, BindType, Credentials, log::Level,
    };
    use smsgate_plugin_sdk::{Hook, plugin_hooks, testing};

    use super::*;

    const SHOP1: &[(&str, &str)] = &[
        ("users.shop1.password", "s3cret12"),
        ("users.shop1.smsgate_username", "ABCDEF"),
        ("users.shop1.smsgate_password", "a-long-smsgate-password"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> CredentialMap {
        let entries: Vec<_> = SHOP1.iter().chain(extra).copied().collect();
        testing::set_config(&entries);
        CredentialMap::new()
    }

    fn bind(plugin: &mut CredentialMap, password: &str) -> AuthResult {
        plugin.authenticate(testing::bind_request("shop1", password))
    }

    fn from(plugin: &mut CredentialMap, peer: &str) -> AuthResult {
        plugin.authenticate(BindRequest {
            peer_address: peer.into(),
            ..testing::bind_request("shop1", "s3cret12")
        })
    }

    fn accepted(result: AuthResult) -> Account {
        match result {
            AuthResult::Accept(account) => account,
            other => panic!("expected accept, got {other:?}"),
        }
    }

    fn no_secret_logged() {
        for (_, line) in testing::logs() {
            for secret in ["s3cret12", "a-long-smsgate-password", "jwt.token.here"] {
                assert!(!line.contains(secret), "secret in log: {line}");
            }
        }
    }

    #[test]
    fn announces_only_authenticate() {
        assert_eq!(plugin_hooks!(CredentialMap), [Hook::Authenticate]);
    }

    #[test]
    fn right_password_gets_the_smsgate_account() {
        let mut plugin = with(&[]);
        let account = accepted(bind(&mut plugin, "s3cret12"));
        assert_eq!(
            account,
            Account {
                id: "shop1".into(),
                credentials: Credentials::Basic(BasicCredentials {
                    username: "ABCDEF".into(),
                    password: "a-long-smsgate-password".into(),
                }),
                api_base_url: None,
                device_id: None,
                sim_number: None,
                limits: AccountLimits::default(),
                labels: Vec::new(),
            }
        );
        no_secret_logged();
    }

    #[test]
    fn wrong_password_is_rejected() {
        let mut plugin = with(&[]);
        for password in ["s3cret13", "", "s3cret1", "s3cret123", "S3CRET12"] {
            assert_eq!(
                bind(&mut plugin, password),
                AuthResult::Reject(status::ESME_RINVPASWD),
                "{password:?}"
            );
        }
        no_secret_logged();
    }

    #[test]
    fn hashed_password() {
        testing::set_config(&[
            // sha256("s3cret12"), upper case as some tools print it
            (
                "users.shop1.password_sha256",
                "5239792398986E454C237EBE3BEF9556FA80A0DAD64CF376450508C3E6B08736",
            ),
            ("users.shop1.token", "jwt.token.here"),
            // sha256("test")
            (
                "users.other.password_sha256",
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            ),
            ("users.other.token", "jwt.token.here"),
        ]);
        let mut plugin = CredentialMap::new();
        assert_eq!(accepted(bind(&mut plugin, "s3cret12")).id, "shop1");
        assert_eq!(
            bind(&mut plugin, "s3cret1"),
            AuthResult::Reject(status::ESME_RINVPASWD)
        );
        let ok = plugin.authenticate(testing::bind_request("other", "test"));
        assert_eq!(accepted(ok).id, "other");
        // Not the hex digest itself: it is not the password.
        let wrong = plugin.authenticate(testing::bind_request(
            "other",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ));
        assert_eq!(wrong, AuthResult::Reject(status::ESME_RINVPASWD));
        no_secret_logged();
    }

    #[test]
    fn bearer_token() {
        testing::set_config(&[
            ("users.shop1.password", "s3cret12"),
            ("users.shop1.token", "jwt.token.here"),
        ]);
        let mut plugin = CredentialMap::new();
        let account = accepted(bind(&mut plugin, "s3cret12"));
        assert_eq!(
            account.credentials,
            Credentials::Bearer("jwt.token.here".into())
        );
        no_secret_logged();
    }

    #[test]
    fn unknown_system_id_passes_by_default() {
        let mut plugin = with(&[]);
        let result = plugin.authenticate(testing::bind_request("other", "x"));
        assert_eq!(result, AuthResult::Pass);
        let mut plugin = with(&[("unknown", "pass")]);
        let result = plugin.authenticate(testing::bind_request("other", "x"));
        assert_eq!(result, AuthResult::Pass);
    }

    #[test]
    fn unknown_system_id_can_be_rejected() {
        let mut plugin = with(&[("unknown", "reject")]);
        let result = plugin.authenticate(testing::bind_request("other", "x"));
        assert_eq!(result, AuthResult::Reject(status::ESME_RINVSYSID));
        // system_ids are compared exactly.
        let result = plugin.authenticate(testing::bind_request("SHOP1", "s3cret12"));
        assert_eq!(result, AuthResult::Reject(status::ESME_RINVSYSID));
    }

    #[test]
    fn a_mistyped_unknown_setting_rejects() {
        let mut plugin = with(&[("unknown", "allow")]);
        let result = plugin.authenticate(testing::bind_request("other", "x"));
        assert_eq!(result, AuthResult::Reject(status::ESME_RINVSYSID));
        assert!(
            testing::logs()
                .iter()
                .any(|(level, line)| *level == Level::Warn && line.contains("unknown = \"allow\""))
        );
    }

    #[test]
    fn ipv4_peers_and_ranges() {
        let mut plugin = with(&[
            ("users.shop1.allowed_peers.0", "127.0.0.1"),
            ("users.shop1.allowed_peers.1", "10.0.0.0/8"),
        ]);
        accepted(from(&mut plugin, "127.0.0.1:40000"));
        accepted(from(&mut plugin, "10.20.30.40:1234"));
        accepted(from(&mut plugin, "[::ffff:10.1.1.1]:1234"));
        for peer in ["127.0.0.2:40000", "11.0.0.1:1", "[::1]:2775"] {
            assert_eq!(
                from(&mut plugin, peer),
                AuthResult::Reject(status::ESME_RBINDFAIL),
                "{peer}"
            );
        }
    }

    #[test]
    fn ipv6_peers_and_ranges() {
        let mut plugin = with(&[
            ("users.shop1.allowed_peers.0", "::1"),
            ("users.shop1.allowed_peers.1", "2001:db8:42::/48"),
        ]);
        accepted(from(&mut plugin, "[::1]:40000"));
        accepted(from(&mut plugin, "[2001:db8:42:ffff::9]:5000"));
        for peer in ["[2001:db8:43::1]:1", "127.0.0.1:40000", "not an address"] {
            assert_eq!(
                from(&mut plugin, peer),
                AuthResult::Reject(status::ESME_RBINDFAIL),
                "{peer}"
            );
        }
    }

    #[test]
    fn a_peer_not_allowed_is_refused_before_the_password_is_checked() {
        let mut plugin = with(&[("users.shop1.allowed_peers.0", "192.0.2.0/24")]);
        let result = plugin.authenticate(BindRequest {
            peer_address: "198.51.100.1:1".into(),
            ..testing::bind_request("shop1", "wrong")
        });
        assert_eq!(result, AuthResult::Reject(status::ESME_RBINDFAIL));
    }

    #[test]
    fn bind_types() {
        let mut plugin = with(&[
            ("users.shop1.allowed_binds.0", "transmitter"),
            ("users.shop1.allowed_binds.1", "Transceiver"),
        ]);
        for (bind_type, allowed) in [
            (BindType::Transmitter, true),
            (BindType::Transceiver, true),
            (BindType::Receiver, false),
        ] {
            let result = plugin.authenticate(BindRequest {
                bind_type,
                ..testing::bind_request("shop1", "s3cret12")
            });
            match allowed {
                true => _ = accepted(result),
                false => assert_eq!(result, AuthResult::Reject(status::ESME_RBINDFAIL)),
            }
        }
    }

    #[test]
    fn limits_defaults_and_labels_go_into_the_account() {
        let mut plugin = with(&[
            (
                "users.shop1.api_base_url",
                "https://sms.example.com/api/3rdparty/v1",
            ),
            ("users.shop1.max_binds", "4"),
            ("users.shop1.messages_per_second", "50"),
            ("users.shop1.device_id", "dev-1"),
            ("users.shop1.sim_number", "2"),
            ("users.shop1.labels.tier", "gold"),
            ("users.shop1.labels.team", "web"),
        ]);
        let account = accepted(bind(&mut plugin, "s3cret12"));
        assert_eq!(
            account.api_base_url.as_deref(),
            Some("https://sms.example.com/api/3rdparty/v1")
        );
        assert_eq!(account.limits.max_binds, Some(4));
        assert_eq!(account.limits.messages_per_second, Some(50));
        assert_eq!(account.device_id.as_deref(), Some("dev-1"));
        assert_eq!(account.sim_number, Some(2));
        assert_eq!(account.label("tier"), Some("gold"));
        assert_eq!(account.label("team"), Some("web"));
    }

    #[test]
    fn system_ids_with_dots() {
        testing::set_config(&[
            ("users.shop.1.password", "pw"),
            ("users.shop.1.token", "t"),
            ("users.shop.1.labels.a.b", "c"),
            ("users.shop.password", "other"),
            ("users.shop.token", "t2"),
        ]);
        let mut plugin = CredentialMap::new();
        let account = accepted(plugin.authenticate(testing::bind_request("shop.1", "pw")));
        assert_eq!(account.id, "shop.1");
        assert_eq!(account.label("a.b"), Some("c"));
        let account = accepted(plugin.authenticate(testing::bind_request("shop", "other")));
        assert_eq!(account.credentials, Credentials::Bearer("t2".into()));
    }

    fn refused_as_misconfigured(extra: &[(&'static str, &'static str)], reason: &str) {
        testing::clear();
        let entries: Vec<_> = [("users.shop1.password", "s3cret12")]
            .iter()
            .chain(extra)
            .copied()
            .collect();
        testing::set_config(&entries);
        let mut plugin = CredentialMap::new();
        assert_eq!(
            bind(&mut plugin, "s3cret12"),
            AuthResult::Reject(status::ESME_RBINDFAIL),
            "{extra:?}"
        );
        let logs = testing::logs();
        let error = logs
            .iter()
            .find(|(level, _)| *level == Level::Error)
            .unwrap_or_else(|| panic!("no error logged for {extra:?}: {logs:?}"));
        assert!(error.1.contains("users.shop1"), "{}", error.1);
        assert!(error.1.contains(reason), "{}", error.1);
        no_secret_logged();
    }

    #[test]
    fn misconfigured_entries_refuse_the_bind_and_say_why() {
        refused_as_misconfigured(&[], "no SMSGate credentials");
        refused_as_misconfigured(
            &[("users.shop1.smsgate_username", "ABCDEF")],
            "without smsgate_password",
        );
        refused_as_misconfigured(
            &[("users.shop1.smsgate_password", "a-long-smsgate-password")],
            "without smsgate_username",
        );
        refused_as_misconfigured(
            &[
                ("users.shop1.smsgate_username", "ABCDEF"),
                ("users.shop1.smsgate_password", "a-long-smsgate-password"),
                ("users.shop1.token", "jwt.token.here"),
            ],
            "not both",
        );
        let with_token =
            |extra: (&'static str, &'static str)| [("users.shop1.token", "jwt.token.here"), extra];
        refused_as_misconfigured(
            &with_token(("users.shop1.password_sha256", "abc")),
            "not both",
        );
        refused_as_misconfigured(
            &with_token(("users.shop1.allowed_peers.0", "10.0.0.0/33")),
            "allowed_peers",
        );
        refused_as_misconfigured(
            &with_token(("users.shop1.allowed_binds.0", "tx")),
            "allowed_binds",
        );
        refused_as_misconfigured(&with_token(("users.shop1.sim_number", "0")), "sim_number");
        refused_as_misconfigured(&with_token(("users.shop1.max_binds", "-1")), "max_binds");
        refused_as_misconfigured(
            &with_token(("users.shop1.api_base_url", "sms.example.com")),
            "api_base_url",
        );
    }

    #[test]
    fn an_entry_without_password_is_misconfigured() {
        testing::set_config(&[("users.shop1.token", "jwt.token.here")]);
        let mut plugin = CredentialMap::new();
        assert_eq!(
            bind(&mut plugin, ""),
            AuthResult::Reject(status::ESME_RBINDFAIL)
        );
        let logs = testing::logs();
        assert!(
            logs.iter().any(|(level, line)| *level == Level::Error
                && line.contains("users.shop1")
                && line.contains("no password")),
            "{logs:?}"
        );
        no_secret_logged();
    }

    #[test]
    fn a_bad_hash_is_misconfigured() {
        testing::set_config(&[
            ("users.shop1.password_sha256", "not-hex"),
            ("users.shop1.token", "jwt.token.here"),
        ]);
        let mut plugin = CredentialMap::new();
        assert_eq!(
            bind(&mut plugin, "s3cret12"),
            AuthResult::Reject(status::ESME_RBINDFAIL)
        );
    }

    #[test]
    fn other_entries_work_next_to_a_broken_one() {
        let mut plugin = with(&[("users.broken.password", "x")]);
        accepted(bind(&mut plugin, "s3cret12"));
        let result = plugin.authenticate(testing::bind_request("broken", "x"));
        assert_eq!(result, AuthResult::Reject(status::ESME_RBINDFAIL));
    }

    #[test]
    fn typos_and_long_passwords_are_warned_about() {
        testing::set_config(&[
            ("users.shop1.pasword", "s3cret12"),
            ("users.shop2.password", "much-too-long-for-smpp"),
            ("users.shop2.token", "t"),
        ]);
        CredentialMap::new();
        let warnings: Vec<String> = testing::logs()
            .into_iter()
            .filter(|(level, _)| *level == Level::Warn)
            .map(|(_, line)| line)
            .collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("users.shop1.pasword"));
        assert!(warnings[1].contains("users.shop2.password"));
        assert!(!warnings[1].contains("much-too-long"));
    }
}
