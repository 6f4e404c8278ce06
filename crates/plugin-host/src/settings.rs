//! The `[plugins]` section of the server configuration and the limits and value formats it
//! shares with each plugin's NAME.toml (durations like "10ms", sizes like "16MiB"). The server's
//! `config.rs` re-exports it and validates it with the other sections.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The longest deadline a hook may have. Hooks run synchronously on the server's request path,
/// so a policy that needs longer is a mistake, and a stalled plugin would hold a worker that long.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(5);
/// One WebAssembly page; no instance can run in less.
pub const MIN_MEMORY: usize = 64 << 10;
/// 32-bit linear memories cannot grow past this.
pub const MAX_MEMORY: usize = 4 << 30;

/// The deadline check shared by `plugins.default_timeout` and NAME.toml's `timeout`.
pub fn check_timeout(timeout: Duration) -> Result<(), String> {
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(format!(
            "must be longer than 0s and at most {}",
            humantime::format_duration(MAX_TIMEOUT)
        ));
    }
    Ok(())
}

/// The memory check shared by `plugins.default_memory` and NAME.toml's `memory`.
pub fn check_memory(memory: usize) -> Result<(), String> {
    if !(MIN_MEMORY..=MAX_MEMORY).contains(&memory) {
        return Err("must be between 64KiB and 4GiB".into());
    }
    Ok(())
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Where NAME.wasm files (and the NAME.toml beside each) are loaded from.
    pub dir: PathBuf,
    /// Compiled plugins kept between runs, so a restart does not recompile them.
    pub cache_dir: PathBuf,
    /// Reload when a file in `dir` changes (SIGHUP reloads in any case).
    pub watch: bool,
    /// Wall-clock limit of one hook call, for plugins that do not set `timeout`.
    #[serde(with = "humantime_serde")]
    pub default_timeout: Duration,
    /// Memory cap of one plugin instance, for plugins that do not set `memory`.
    #[serde(with = "byte_size")]
    pub default_memory: usize,
}

impl PluginsConfig {
    /// Checks every key; an error names the key.
    pub fn validate(&self) -> Result<(), String> {
        check_timeout(self.default_timeout).map_err(|e| format!("plugins.default_timeout: {e}"))?;
        check_memory(self.default_memory).map_err(|e| format!("plugins.default_memory: {e}"))?;
        if self.dir.as_os_str().is_empty() {
            return Err("plugins.dir: must not be empty".into());
        }
        Ok(())
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dir: PathBuf::from("./plugins"),
            cache_dir: std::env::temp_dir().join("smsgate-smpp-plugin-cache"),
            watch: true,
            default_timeout: Duration::from_millis(10),
            default_memory: 16 << 20,
        }
    }
}

/// Sizes are written "16MiB", "512KiB", "1GiB" or as plain bytes; KB/MB/GB mean the same binary
/// units, since a WebAssembly page is 64 KiB and nobody means 10^6 here.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like \"16MiB\""))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use KiB, MiB or GiB)"
            ));
        }
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

pub fn format_size(bytes: usize) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

pub mod byte_size {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => usize::try_from(n).map_err(D::Error::custom),
            Raw::Text(s) => super::parse_size(&s).map_err(D::Error::custom),
        }
    }

    pub fn serialize<S: Serializer>(value: &usize, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_size(*value))
    }

    /// For keys that may be left out (NAME.toml's `memory`).
    pub fn deserialize_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units_and_print_back() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size(" 1 GiB "), Ok(1 << 30));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("2mb"), Ok(2 << 20));
        assert!(parse_size("16 furlongs").unwrap_err().contains("furlongs"));
        assert!(parse_size("MiB").is_err());
        assert_eq!(format_size(16 << 20), "16MiB");
        assert_eq!(format_size(1536), "1536");
        assert_eq!(format_size(3 << 10), "3KiB");
    }
}
