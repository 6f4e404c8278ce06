//! The `[config.users.*]` tables, read once per instance into ready-to-check entries.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use smsgate_plugin_sdk::{
    Account, AccountLimits, BasicCredentials, BindType, Credentials, config, log,
};
use subtle::ConstantTimeEq;

use crate::peers::{Network, peer_ip};

/// SMPP 3.4 carries the password in a C-Octet String of 9 octets.
const SMPP_PASSWORD_MAX: usize = 8;

const SCALAR_FIELDS: &[&str] = &[
    "password",
    "password_sha256",
    "smsgate_username",
    "smsgate_password",
    "token",
    "api_base_url",
    "max_binds",
    "messages_per_second",
    "device_id",
    "sim_number",
];
const LIST_FIELDS: &[&str] = &["allowed_peers", "allowed_binds"];
const TABLE_FIELDS: &[&str] = &["labels"];

/// A usable entry of the map.
#[derive(Debug)]
pub struct User {
    /// SHA-256 of the password: comparing digests takes the same time whatever the length of
    /// either password, and lets plain and hashed entries share one check.
    password_digest: [u8; 32],
    /// `None`: any peer.
    allowed_peers: Option<Vec<Network>>,
    /// `None`: any bind type.
    allowed_binds: Option<Vec<BindType>>,
    account: Account,
}

impl User {
    pub fn password_matches(&self, password: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        digest.ct_eq(&self.password_digest).into()
    }

    pub fn peer_allowed(&self, peer: &str) -> bool {
        let Some(networks) = &self.allowed_peers else {
            return true;
        };
        peer_ip(peer).is_some_and(|ip| networks.iter().any(|net| net.contains(ip)))
    }

    pub fn bind_allowed(&self, bind_type: BindType) -> bool {
        self.allowed_binds
            .as_ref()
            .is_none_or(|allowed| allowed.contains(&bind_type))
    }

    pub fn account(&self) -> &Account {
        &self.account
    }
}

/// Every entry under `users`, by system_id: the user, or why the entry cannot be used (never
/// containing a secret, since it is logged).
pub fn load() -> BTreeMap<String, Result<User, String>> {
    let mut fields: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for key in config::keys("users.") {
        let rest = &key["users.".len()..];
        match split_entry(rest) {
            Some((system_id, field)) => {
                let value = config::get(&key).unwrap_or_default();
                fields
                    .entry(system_id.to_owned())
                    .or_default()
                    .insert(field.to_owned(), value);
            }
            None => log::warn(&format!("{key}: unknown setting, ignored")),
        }
    }
    fields
        .into_iter()
        .map(|(system_id, fields)| {
            let user = user(&system_id, &Fields(fields));
            (system_id, user)
        })
        .collect()
}

/// Splits `shop.1.password` into the system_id `shop.1` and the field `password`. A system_id
/// may contain dots (`[config.users."shop.1"]`), so the split is where a known field starts;
/// the leftmost such place wins, which keeps label names with dots in the label.
fn split_entry(rest: &str) -> Option<(&str, &str)> {
    rest.match_indices('.')
        .map(|(dot, _)| (&rest[..dot], &rest[dot + 1..]))
        .find(|(system_id, field)| !system_id.is_empty() && is_field(field))
}

fn is_field(path: &str) -> bool {
    if SCALAR_FIELDS.contains(&path) {
        return true;
    }
    let Some((name, rest)) = path.split_once('.') else {
        return false;
    };
    (LIST_FIELDS.contains(&name) && !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        || (TABLE_FIELDS.contains(&name) && !rest.is_empty())
}

struct Fields(BTreeMap<String, String>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Set and not empty: an empty value is as good as a missing one for every setting here.
    fn text(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|value| !value.is_empty())
    }

    /// The items of the array `name`, in index order (keys sort as text, so "10" < "2").
    fn list(&self, name: &str) -> Option<Vec<&str>> {
        let prefix = format!("{name}.");
        let mut items: Vec<(u64, &str)> = self
            .0
            .iter()
            .filter_map(|(key, value)| {
                let index = key.strip_prefix(&prefix)?.parse().ok()?;
                Some((index, value.as_str()))
            })
            .collect();
        items.sort_unstable();
        (!items.is_empty()).then(|| items.into_iter().map(|(_, value)| value).collect())
    }

    fn table(&self, name: &str) -> Vec<(String, String)> {
        let prefix = format!("{name}.");
        self.0
            .iter()
            .filter_map(|(key, value)| Some((key.strip_prefix(&prefix)?.to_owned(), value.clone())))
            .collect()
    }

    fn number<T>(&self, name: &str, min: T) -> Result<Option<T>, String>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        match text.parse::<T>() {
            Ok(value) if value >= min => Ok(Some(value)),
            _ => Err(format!(
                "{name} = {text:?} is not a whole number of at least {min}"
            )),
        }
    }
}

fn user(system_id: &str, fields: &Fields) -> Result<User, String> {
    let password_digest = match (fields.get("password"), fields.text("password_sha256")) {
        (Some(_), Some(_)) => return Err("set password or password_sha256, not both".into()),
        (Some(password), None) => {
            if password.chars().count() > SMPP_PASSWORD_MAX {
                log::warn(&format!(
                    "users.{system_id}.password is longer than the {SMPP_PASSWORD_MAX} characters \
                     SMPP carries, so ESMEs may be unable to send it"
                ));
            }
            Sha256::digest(password.as_bytes()).into()
        }
        (None, Some(hex)) => decode_sha256(hex)
            .ok_or("password_sha256 must be 64 hexadecimal digits (the SHA-256 of the password)")?,
        (None, None) => return Err("no password or password_sha256".into()),
    };

    let credentials = match (
        fields.text("smsgate_username"),
        fields.text("smsgate_password"),
        fields.text("token"),
    ) {
        (None, None, Some(token)) => Credentials::Bearer(token.to_owned()),
        (Some(username), Some(password), None) => Credentials::Basic(BasicCredentials {
            username: username.to_owned(),
            password: password.to_owned(),
        }),
        (None, None, None) => {
            return Err(
                "no SMSGate credentials (smsgate_username and smsgate_password, or token)".into(),
            );
        }
        (_, _, Some(_)) => {
            return Err("set smsgate_username/smsgate_password or token, not both".into());
        }
        (Some(_), None, None) => return Err("smsgate_username without smsgate_password".into()),
        (None, Some(_), None) => return Err("smsgate_password without smsgate_username".into()),
    };

    let api_base_url = fields.text("api_base_url").map(str::to_owned);
    if let Some(url) = &api_base_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(format!("api_base_url {url:?} is not an http(s) URL"));
    }

    let allowed_peers = fields
        .list("allowed_peers")
        .map(|rules| {
            rules
                .into_iter()
                .map(|rule| Network::parse(rule).map_err(|err| format!("allowed_peers: {err}")))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let allowed_binds = fields
        .list("allowed_binds")
        .map(|names| {
            names
                .into_iter()
                .map(bind_type)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;

    let account = Account {
        id: system_id.to_owned(),
        credentials,
        api_base_url,
        device_id: fields.text("device_id").map(str::to_owned),
        sim_number: fields.number("sim_number", 1)?,
        limits: AccountLimits {
            max_binds: fields.number("max_binds", 1)?,
            messages_per_second: fields.number("messages_per_second", 1)?,
        },
        labels: fields.table("labels"),
    };
    Ok(User {
        password_digest,
        allowed_peers,
        allowed_binds,
        account,
    })
}

fn bind_type(name: &str) -> Result<BindType, String> {
    match name.to_ascii_lowercase().as_str() {
        "transmitter" => Ok(BindType::Transmitter),
        "receiver" => Ok(BindType::Receiver),
        "transceiver" => Ok(BindType::Transceiver),
        _ => Err(format!(
            "allowed_binds: {name:?} is not transmitter, receiver or transceiver"
        )),
    }
}

fn decode_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        // Digit by digit: from_str_radix would also take a sign ("+f").
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(digest)
}

fn nibble(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|n| u8::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_split_where_a_known_field_starts() {
        assert_eq!(split_entry("shop1.password"), Some(("shop1", "password")));
        assert_eq!(split_entry("shop.1.password"), Some(("shop.1", "password")));
        assert_eq!(
            split_entry("shop1.allowed_peers.10"),
            Some(("shop1", "allowed_peers.10"))
        );
        assert_eq!(
            split_entry("shop1.labels.team.name"),
            Some(("shop1", "labels.team.name"))
        );
        assert_eq!(
            split_entry("shop1.labels.password"),
            Some(("shop1", "labels.password"))
        );
        assert_eq!(split_entry("shop1.pasword"), None);
        assert_eq!(split_entry("shop1.allowed_peers.x"), None);
        assert_eq!(split_entry(".password"), None);
        assert_eq!(split_entry("password"), None);
    }

    #[test]
    fn sha256_hex_is_decoded_in_either_case() {
        let lower = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let digest = decode_sha256(lower).unwrap();
        assert_eq!(digest[0], 0x9f);
        assert_eq!(decode_sha256(&lower.to_uppercase()), Some(digest));
        assert_eq!(decode_sha256(&lower[1..]), None);
        assert_eq!(decode_sha256(&lower.replace('f', "g")), None);
        assert_eq!(decode_sha256(&"é".repeat(32)), None);
        assert_eq!(decode_sha256(&"+f".repeat(32)), None);
    }
}
