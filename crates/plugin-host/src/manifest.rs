//! NAME.toml, the operator's settings for one plugin: whether and where it runs in the chain,
//! what a failure means, its limits, what it may touch (nothing unless granted) and the
//! `[config]` table handed to it. Every mistake is an error naming the file and the key, since a
//! plugin running with settings other than the operator meant is worse than one refused.
//!
//! ```toml
//! enabled = true                  # false: the plugin is skipped
//! order = 100                     # chain position: by order, then by name
//! failure_policy = "fail-open"    # for every hook, or per hook:
//! # [failure_policy]
//! # authenticate = "fail-open"    # default fail-closed (the bind gets ESME_RBINDFAIL)
//! # route = "fail-closed"         # others default fail-open; fail-closed answers ESME_RSYSERR
//! #                               # (transform-deliver: drops the deliver_sm; route-incoming:
//! #                               # the server's own SIM and device matching decides)
//! timeout = "10ms"                # wall-clock limit per call (default plugins.default_timeout)
//! memory = "16MiB"                # per instance (default plugins.default_memory)
//! fuel = 5000000                  # optional deterministic budget per call
//!
//! [capabilities]                  # nothing is granted by default; network never is
//! env = ["TZ"]                    # environment variables passed (their values at load)
//! dirs = [{ host = "data", guest = "/data", read_only = true }]  # host relative to plugins.dir
//! stdio = true                    # inherit the server's stdout and stderr
//!
//! [config]                        # anything; the plugin reads it flattened with host.config-get
//! prefixes = ["49", "33"]         # -> "prefixes.0" = "49", "prefixes.1" = "33"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::Hook;
use super::settings::{PluginsConfig, byte_size, check_memory, check_timeout};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Carry on as if the plugin had no opinion.
    FailOpen,
    /// Refuse what the hook was deciding on.
    FailClosed,
}

impl fmt::Display for FailurePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailurePolicy::FailOpen => "fail-open",
            FailurePolicy::FailClosed => "fail-closed",
        })
    }
}

impl FailurePolicy {
    fn parse(text: &str) -> Option<FailurePolicy> {
        match text {
            "fail-open" => Some(FailurePolicy::FailOpen),
            "fail-closed" => Some(FailurePolicy::FailClosed),
            _ => None,
        }
    }
}

/// What a failure (trap, deadline, memory cap) of each hook means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policies([FailurePolicy; 5]);

impl Default for Policies {
    /// A broken authentication plugin must not let everyone in; a broken transform or route
    /// plugin should not stop the traffic it was only meant to adjust.
    fn default() -> Self {
        Policies([
            FailurePolicy::FailClosed,
            FailurePolicy::FailOpen,
            FailurePolicy::FailOpen,
            FailurePolicy::FailOpen,
            FailurePolicy::FailOpen,
        ])
    }
}

impl Policies {
    pub fn get(&self, hook: Hook) -> FailurePolicy {
        self.0[hook as usize]
    }
}

#[derive(Clone, Debug)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

/// What the plugin may reach besides the host interface. Network access is never granted in
/// this version: the sockets interfaces are linked but every use is refused.
#[derive(Clone, Debug, Default)]
pub struct Capabilities {
    /// Environment variables passed, with their values at load time.
    pub env: Vec<(String, String)>,
    pub dirs: Vec<DirGrant>,
    /// Inherit the server's stdout and stderr (otherwise the plugin's output is discarded).
    pub stdio: bool,
}

#[derive(Clone, Debug)]
pub struct Manifest {
    pub enabled: bool,
    pub order: i64,
    pub policies: Policies,
    pub timeout: Duration,
    pub memory: usize,
    pub fuel: Option<u64>,
    pub capabilities: Capabilities,
    /// The `[config]` table, flattened the way `host.config-get` serves it.
    pub config: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_order")]
    order: i64,
    failure_policy: Option<toml::Value>,
    #[serde(default, with = "humantime_serde::option")]
    timeout: Option<Duration>,
    #[serde(default, deserialize_with = "byte_size::deserialize_option")]
    memory: Option<usize>,
    fuel: Option<u64>,
    #[serde(default)]
    capabilities: RawCapabilities,
    #[serde(default)]
    config: toml::Table,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapabilities {
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    dirs: Vec<RawDir>,
    #[serde(default)]
    stdio: bool,
    /// Accepted by the parser only to answer with a clear refusal.
    network: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    host: PathBuf,
    guest: String,
    #[serde(default = "yes")]
    read_only: bool,
}

fn yes() -> bool {
    true
}

fn default_order() -> i64 {
    100
}

impl Manifest {
    /// The settings of a plugin without a NAME.toml.
    pub fn defaults(config: &PluginsConfig) -> Manifest {
        Manifest {
            enabled: true,
            order: default_order(),
            policies: Policies::default(),
            timeout: config.default_timeout,
            memory: config.default_memory,
            fuel: None,
            capabilities: Capabilities::default(),
            config: BTreeMap::new(),
        }
    }

    /// Reads NAME.toml; relative `dirs` paths are taken from `base` (the plugin directory).
    pub fn read(path: &Path, base: &Path, config: &PluginsConfig) -> anyhow::Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        Manifest::parse(&text, base, config)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.trim_end()))
    }

    fn parse(text: &str, base: &Path, config: &PluginsConfig) -> Result<Manifest, String> {
        let raw: Raw = toml::from_str(text).map_err(|e| e.to_string())?;
        let timeout = raw.timeout.unwrap_or(config.default_timeout);
        check_timeout(timeout).map_err(|e| format!("timeout: {e}"))?;
        let memory = raw.memory.unwrap_or(config.default_memory);
        check_memory(memory).map_err(|e| format!("memory: {e}"))?;
        if raw.fuel == Some(0) {
            return Err("fuel: must be at least 1 (leave it out for no fuel budget)".into());
        }
        let mut flat = BTreeMap::new();
        flatten("", &toml::Value::Table(raw.config), &mut flat);
        Ok(Manifest {
            enabled: raw.enabled,
            order: raw.order,
            policies: parse_policies(raw.failure_policy.as_ref())?,
            timeout,
            memory,
            fuel: raw.fuel,
            capabilities: resolve_capabilities(raw.capabilities, base)?,
            config: flat,
        })
    }
}

fn parse_policies(value: Option<&toml::Value>) -> Result<Policies, String> {
    const EXPECTED: &str = "must be \"fail-open\" or \"fail-closed\"";
    let mut policies = Policies::default();
    match value {
        None => {}
        Some(toml::Value::String(text)) => {
            let policy =
                FailurePolicy::parse(text).ok_or_else(|| format!("failure_policy: {EXPECTED}"))?;
            policies = Policies([policy; 5]);
        }
        Some(toml::Value::Table(table)) => {
            for (key, value) in table {
                let hook = Hook::from_name(key).ok_or_else(|| {
                    format!(
                        "failure_policy.{key}: not a hook (authenticate, transform-submit, \
                         route, transform-deliver, route-incoming)"
                    )
                })?;
                policies.0[hook as usize] = value
                    .as_str()
                    .and_then(FailurePolicy::parse)
                    .ok_or_else(|| format!("failure_policy.{key}: {EXPECTED}"))?;
            }
        }
        Some(_) => {
            return Err(format!(
                "failure_policy: {EXPECTED}, or a table of hook = policy"
            ));
        }
    }
    Ok(policies)
}

fn resolve_capabilities(raw: RawCapabilities, base: &Path) -> Result<Capabilities, String> {
    if raw.network.is_some() {
        return Err(
            "capabilities.network: network access cannot be granted to plugins in this version"
                .into(),
        );
    }
    let env = raw
        .env
        .into_iter()
        .filter_map(|name| std::env::var(&name).ok().map(|value| (name, value)))
        .collect();
    let mut dirs = Vec::with_capacity(raw.dirs.len());
    for (i, dir) in raw.dirs.into_iter().enumerate() {
        let host = base.join(&dir.host);
        if !host.is_dir() {
            return Err(format!(
                "capabilities.dirs[{i}].host: {} is not a directory",
                host.display()
            ));
        }
        if dir.guest.is_empty() {
            return Err(format!("capabilities.dirs[{i}].guest: must not be empty"));
        }
        dirs.push(DirGrant {
            host,
            guest: dir.guest,
            read_only: dir.read_only,
        });
    }
    Ok(Capabilities {
        env,
        dirs,
        stdio: raw.stdio,
    })
}

/// Nested tables joined with '.', array items as '.0', '.1', every value as text: a plugin in
/// any language can read that without a TOML parser.
pub fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                flatten(&join(key), value, out);
            }
        }
        toml::Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                flatten(&join(&i.to_string()), value, out);
            }
        }
        toml::Value::String(text) => {
            out.insert(prefix.to_string(), text.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(text, Path::new("."), &PluginsConfig::default())
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let m = parse("").unwrap();
        assert!(m.enabled);
        assert_eq!(m.order, 100);
        assert_eq!(m.timeout, Duration::from_millis(10));
        assert_eq!(m.memory, 16 << 20);
        assert_eq!(m.fuel, None);
        assert_eq!(
            m.policies.get(Hook::Authenticate),
            FailurePolicy::FailClosed
        );
        assert_eq!(m.policies.get(Hook::Route), FailurePolicy::FailOpen);
        assert_eq!(m.policies.get(Hook::RouteIncoming), FailurePolicy::FailOpen);
        assert!(m.capabilities.env.is_empty() && m.capabilities.dirs.is_empty());
        assert!(!m.capabilities.stdio);
    }

    #[test]
    fn failure_policy_is_one_string_or_per_hook() {
        let m = parse("failure_policy = \"fail-closed\"").unwrap();
        assert_eq!(
            m.policies.get(Hook::TransformDeliver),
            FailurePolicy::FailClosed
        );
        let m = parse(
            "[failure_policy]\nauthenticate = \"fail-open\"\ntransform-submit = \"fail-closed\"\n\
             route-incoming = \"fail-closed\"\n",
        )
        .unwrap();
        assert_eq!(
            m.policies.get(Hook::RouteIncoming),
            FailurePolicy::FailClosed
        );
        assert_eq!(m.policies.get(Hook::Authenticate), FailurePolicy::FailOpen);
        assert_eq!(
            m.policies.get(Hook::TransformSubmit),
            FailurePolicy::FailClosed
        );
        assert_eq!(m.policies.get(Hook::Route), FailurePolicy::FailOpen);
        let err = parse("[failure_policy]\nrout = \"fail-open\"").unwrap_err();
        assert!(err.contains("failure_policy.rout"), "{err}");
        let err = parse("failure_policy = \"maybe\"").unwrap_err();
        assert!(err.contains("failure_policy"), "{err}");
    }

    #[test]
    fn mistakes_name_the_key() {
        for (text, key) in [
            ("timeoutt = \"5ms\"", "timeoutt"),
            ("timeout = \"soon\"", "timeout"),
            ("timeout = \"0s\"", "timeout"),
            // A bare number once meant milliseconds here and seconds elsewhere; every
            // duration now says its unit.
            ("timeout = 10", "timeout"),
            ("timeout = \"6s\"", "timeout"),
            ("memory = \"16 parsecs\"", "memory"),
            ("memory = \"1KiB\"", "memory"),
            ("fuel = 0", "fuel"),
            ("[capabilities]\nnetwork = true", "capabilities.network"),
            ("[capabilities]\nfiles = []", "files"),
            (
                "[capabilities]\ndirs = [{ host = \"/nonexistent\", guest = \"/d\" }]",
                "capabilities.dirs[0].host",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn config_is_flattened_to_text() {
        let m = parse(
            "[config]\nname = \"x\"\nlimit = 5\nratio = 0.5\non = true\nprefixes = [\"49\", \"33\"]\n\
             [config.accounts.alice]\npassword = \"pw\"\n[[config.rules]]\nto = \"1\"\n",
        )
        .unwrap();
        let expected: BTreeMap<String, String> = [
            ("accounts.alice.password", "pw"),
            ("limit", "5"),
            ("name", "x"),
            ("on", "true"),
            ("prefixes.0", "49"),
            ("prefixes.1", "33"),
            ("ratio", "0.5"),
            ("rules.0.to", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(m.config, expected);
    }

    #[test]
    fn env_grants_pass_only_variables_that_are_set() {
        let m =
            parse("[capabilities]\nenv = [\"PATH\", \"SMSGATE_SURELY_UNSET_VARIABLE\"]").unwrap();
        assert_eq!(m.capabilities.env.len(), 1);
        assert_eq!(m.capabilities.env[0].0, "PATH");
    }
}
