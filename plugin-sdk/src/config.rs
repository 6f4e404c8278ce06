//! The plugin's own configuration: the `[config]` table of its `NAME.toml`.
//!
//! The server flattens the table before handing it over: nested tables are joined with `.`,
//! array items get their index as the last part, and every value is text. So
//!
//! ```toml
//! [config]
//! default_country = "DE"
//! max_length = 480
//! blocked = ["+4915", "+4916"]
//!
//! [config.users.alice]
//! password = "secret"
//! account = "acme"
//! ```
//!
//! is seen as
//!
//! | key | value |
//! |---|---|
//! | `default_country` | `DE` |
//! | `max_length` | `480` |
//! | `blocked.0` | `+4915` |
//! | `blocked.1` | `+4916` |
//! | `users.alice.password` | `secret` |
//! | `users.alice.account` | `acme` |
//!
//! and read with [`get`], [`get_parsed`], [`list`] and [`children`]:
//!
//! ```
//! use smsgate_plugin_sdk::config;
//! # smsgate_plugin_sdk::testing::set_config(&[
//! #     ("default_country", "DE"), ("max_length", "480"),
//! #     ("blocked.0", "+4915"), ("blocked.1", "+4916"),
//! #     ("users.alice.password", "secret"), ("users.alice.account", "acme"),
//! # ]);
//! assert_eq!(config::get("default_country").as_deref(), Some("DE"));
//! assert_eq!(config::get_parsed::<u32>("max_length"), Some(Ok(480)));
//! assert_eq!(config::list("blocked"), ["+4915", "+4916"]);
//! for user in config::children("users") {
//!     let password = config::get(&format!("users.{user}.password"));
//!     assert_eq!(password.as_deref(), Some("secret"));
//! }
//! ```
//!
//! The configuration does not change during the life of a plugin instance (a changed file
//! means a reload, which creates new instances), so reading it once in
//! [`Plugin::new`](crate::Plugin::new) is enough.

use std::str::FromStr;

/// The value at `key`, or `None` when it is not set (or is a table or an array, which have no
/// value of their own).
pub fn get(key: &str) -> Option<String> {
    crate::host::config_get(key)
}

/// The value at `key` parsed with [`FromStr`]: `None` when it is not set, `Some(Err(..))` when
/// it does not parse.
///
/// Booleans are `true` / `false`, numbers are written as in the TOML file.
pub fn get_parsed<T: FromStr>(key: &str) -> Option<Result<T, T::Err>> {
    get(key).map(|value| value.parse())
}

/// Every key that starts with `prefix` (`""` for all of them), sorted.
///
/// This is a plain text match: `keys("user")` also returns `users.alice.password`. Add the
/// dot (`"users."`) to stay inside one table.
pub fn keys(prefix: &str) -> Vec<String> {
    crate::host::config_keys(prefix)
}

/// The items of the array at `key`, in order; empty when there is no such array.
///
/// Meant for arrays of plain values. For an array of tables, whose items have no value of
/// their own, use [`children`] to get the indices.
pub fn list(key: &str) -> Vec<String> {
    // TOML arrays have no holes, so the first missing index is the end.
    (0..)
        .map_while(|index| get(&format!("{key}.{index}")))
        .collect()
}

/// The distinct names one level below the table at `prefix` (`""` for the top level).
///
/// For `users.alice.password`, `users.alice.account` and `users.bob.password`,
/// `children("users")` is `["alice", "bob"]`. Array indices come back in numeric order.
pub fn children(prefix: &str) -> Vec<String> {
    let scope = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}.")
    };
    let mut names: Vec<String> = keys(&scope)
        .iter()
        .filter_map(|key| key[scope.len()..].split('.').next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    // Keys arrive sorted as text, which puts "10" before "2"; an array's items belong in
    // index order. Numbers go first so that the order stays total when names are mixed.
    names.sort_by_cached_key(|name| match name.parse::<u64>() {
        Ok(index) => (false, index, name.clone()),
        Err(_) => (true, 0, name.clone()),
    });
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn get_reads_values_and_misses_tables() {
        testing::set_config(&[("a", "1"), ("t.x", "2")]);
        assert_eq!(get("a").as_deref(), Some("1"));
        assert_eq!(get("t.x").as_deref(), Some("2"));
        assert_eq!(get("t"), None);
        assert_eq!(get("missing"), None);
    }

    #[test]
    fn get_parsed_separates_missing_from_malformed() {
        testing::set_config(&[("n", "42"), ("b", "true"), ("bad", "4x")]);
        assert_eq!(get_parsed::<u16>("n"), Some(Ok(42)));
        assert_eq!(get_parsed::<bool>("b"), Some(Ok(true)));
        assert!(matches!(get_parsed::<u16>("bad"), Some(Err(_))));
        assert_eq!(get_parsed::<u16>("missing"), None);
    }

    #[test]
    fn keys_match_text_prefixes_in_order() {
        testing::set_config(&[
            ("users.b", "1"),
            ("user", "2"),
            ("users.a", "3"),
            ("x", "4"),
        ]);
        assert_eq!(keys("user"), ["user", "users.a", "users.b"]);
        assert_eq!(keys("users."), ["users.a", "users.b"]);
        assert_eq!(keys("").len(), 4);
    }

    #[test]
    fn list_reads_items_in_index_order() {
        let items: Vec<(String, String)> = (0..12)
            .map(|i| (format!("l.{i}"), format!("v{i}")))
            .collect();
        let pairs: Vec<(&str, &str)> = items
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        testing::set_config(&pairs);
        let expected: Vec<String> = (0..12).map(|i| format!("v{i}")).collect();
        assert_eq!(list("l"), expected);
        assert!(list("missing").is_empty());
    }

    #[test]
    fn children_are_distinct_next_level_names() {
        testing::set_config(&[
            ("users.alice.password", "a"),
            ("users.alice.account", "acme"),
            ("users.bob.password", "b"),
            ("usersx.carol", "c"),
            ("routes.10.device", "d10"),
            ("routes.2.device", "d2"),
            ("top", "t"),
        ]);
        assert_eq!(children("users"), ["alice", "bob"]);
        assert_eq!(children("routes"), ["2", "10"]);
        assert_eq!(children(""), ["routes", "top", "users", "usersx"]);
        assert!(children("top").is_empty());
    }
}
