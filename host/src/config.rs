//! One typed configuration, loaded from an optional TOML file and then from environment
//! variables with the Go server's names (`SMPP__BIND_ADDRESS`: double underscore = nesting), so
//! an existing deployment keeps working. Everything is validated here, at start-up, and an error
//! names the key and what is wrong with its value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

pub use crate::delivery::{DeliveryConfig, StoreKind};
use crate::gateway::GatewayMode;
use crate::ids::MessageIdFormat;
use sms_text::{AlphabetChoices, DefaultAlphabet, Ia5Alphabet};
pub use smsgate_plugin_host::PluginsConfig;
#[cfg(feature = "simulator")]
use smsgate_simulator::SimulatorConfig;

/// The top-level sections; each maps to one env prefix (`SMPP__`, `GATEWAY__`, `HTTP__`,
/// `ADMIN__`, `DELIVERY__`, `SIMULATOR__`, `PLUGINS__`).
const SECTIONS: [&str; 7] = [
    "smpp",
    "gateway",
    "http",
    "admin",
    "delivery",
    "simulator",
    "plugins",
];

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub smpp: SmppConfig,
    pub gateway: GatewayConfig,
    pub http: HttpConfig,
    pub admin: AdminConfig,
    pub delivery: DeliveryConfig,
    #[cfg(feature = "simulator")]
    pub simulator: SimulatorConfig,
    /// Read only to say that it is ignored: this build has no embedded simulator, and a
    /// configuration written for one that has should still start it.
    #[cfg(not(feature = "simulator"))]
    #[serde(skip_serializing)]
    simulator: Option<toml::Value>,
    pub plugins: PluginsConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmppConfig {
    /// Plain SMPP listener.
    pub bind_address: SocketAddr,
    /// SMPP over TLS listener; active when both `tls_cert` and `tls_key` are set.
    pub tls_bind_address: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// TON/NPI of the addresses the server originates (receipts and incoming SMS).
    #[serde(with = "lenient_u8")]
    pub source_ton: u8,
    #[serde(with = "lenient_u8")]
    pub source_npi: u8,
    #[serde(with = "lenient_u8")]
    pub dest_ton: u8,
    #[serde(with = "lenient_u8")]
    pub dest_npi: u8,
    /// system_id the server presents in bind responses.
    pub system_id: String,
    /// Requests of one session processed at the same time; more get ESME_RTHROTTLED.
    pub window: usize,
    /// Largest PDU accepted; a longer command_length closes the link.
    pub max_command_length: usize,
    /// Connections that have not bound within this time are closed.
    #[serde(with = "humantime_serde")]
    pub bind_timeout: Duration,
    /// Silence after which the server sends its own enquire_link.
    #[serde(with = "humantime_serde")]
    pub enquire_link_interval: Duration,
    /// How long the server waits for the answer to a PDU it sent.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    /// What data_coding 0 (SMSC default alphabet) means: gsm7, latin1 or ascii.
    #[serde(with = "from_str")]
    pub default_alphabet: DefaultAlphabet,
    /// What data_coding 1 (IA5) means: ascii as SMPP says, or gsm7 for ESMEs that send GSM
    /// 7-bit text under it.
    #[serde(with = "from_str")]
    pub ia5_alphabet: Ia5Alphabet,
    /// How long a bind check is reused for the same credentials, a success or a refusal
    /// (0 disables).
    #[serde(with = "humantime_serde")]
    pub bind_cache_ttl: Duration,
    /// The answer to a bind refused for its credentials waits this long, doubled with each
    /// recent failure of the address or system_id (up to 8 times as long).
    #[serde(with = "humantime_serde")]
    pub bind_failure_delay: Duration,
    /// Recent credential failures after which an address is locked out, and a system_id
    /// accepts only credentials that have bound before (0: never).
    pub bind_lockout_after: u32,
    /// How long a lockout lasts, and how long failures are remembered.
    #[serde(with = "humantime_serde")]
    pub bind_lockout: Duration,
    /// How long the parts of a concatenated message may take to arrive.
    #[serde(with = "humantime_serde")]
    pub concat_timeout: Duration,
    /// Connections accepted at once over both listeners.
    pub max_connections: usize,
    /// On shutdown, how long bound ESMEs get to answer unbind and in-flight work to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Spelling of the message ids ESMEs get: alphanumeric, or hex/decimal for ESMEs that store
    /// ids as 64-bit integers. Server-wide, because ids are minted before a session is known.
    pub message_id_format: MessageIdFormat,
}

impl Default for SmppConfig {
    fn default() -> Self {
        SmppConfig {
            bind_address: ([127, 0, 0, 1], 2775).into(),
            tls_bind_address: ([127, 0, 0, 1], 2776).into(),
            tls_cert: None,
            tls_key: None,
            source_ton: 1,
            source_npi: 1,
            dest_ton: 1,
            dest_npi: 1,
            system_id: "SMSGATE".into(),
            window: 64,
            max_command_length: 70_000,
            bind_timeout: Duration::from_secs(30),
            enquire_link_interval: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            default_alphabet: DefaultAlphabet::Gsm7,
            ia5_alphabet: Ia5Alphabet::Ascii,
            bind_cache_ttl: Duration::from_secs(60),
            bind_failure_delay: Duration::from_secs(1),
            bind_lockout_after: 10,
            bind_lockout: Duration::from_secs(600),
            concat_timeout: Duration::from_secs(60),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
            message_id_format: MessageIdFormat::Alphanumeric,
        }
    }
}

impl SmppConfig {
    /// How submitted text in data_coding 0 and 1 is read.
    pub fn alphabets(&self) -> AlphabetChoices {
        AlphabetChoices {
            default: self.default_alphabet,
            ia5: self.ia5_alphabet,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// An SMSGate server's API (`…/3rdparty/v1`: Cloud or Private) or a phone's
    /// (`http://<phone-ip>:8080`: Local mode).
    pub api_base_url: String,
    /// Which of the two `api_base_url` serves; `auto` tells from its answers.
    pub mode: GatewayMode,
    /// Public base URL of this server's webhook endpoint (used by the delivery path).
    pub webhook_base_url: Option<String>,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Extra attempts after a timeout or connection error (same message id, so never twice).
    pub retries: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            api_base_url: "https://api.sms-gate.app/3rdparty/v1".into(),
            mode: GatewayMode::Auto,
            webhook_base_url: None,
            timeout: Duration::from_secs(60),
            retries: 2,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub address: SocketAddr,
    /// Serve HTTPS with this certificate chain and key (PEM): the phone posts webhooks only to
    /// https URLs, unless a proxy in front terminates TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Connections open at once; more wait in the kernel's backlog until one closes. Separate
    /// from `smpp.max_connections`, so a flood of HTTP connections cannot take the file
    /// descriptors SMPP binds need.
    pub max_connections: usize,
    /// Time from a connection's accept (or the first byte of a further request on it) until
    /// the request's header is complete; a TLS handshake gets the same time.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Time for reading the body and answering, once the header is in; then 408.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            address: ([127, 0, 0, 1], 3000).into(),
            tls_cert: None,
            tls_key: None,
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The operator's endpoints (queue statistics, metrics), on a listener of their own so that
/// the port the phones must reach does not expose them.
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Plain HTTP: loopback by default; elsewhere, set `token`.
    pub address: SocketAddr,
    /// When set, every admin request needs `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// `/metrics` on `http.address` needs the token too. Off by default, because scrapers of
    /// the Go server know that path without a token.
    pub metrics_require_token: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            address: ([127, 0, 0, 1], 3001).into(),
            token: None,
            metrics_require_token: false,
        }
    }
}

/// Written by hand so that the token never reaches a log line or an error message.
impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| MASK))
            .field("metrics_require_token", &self.metrics_require_token)
            .finish()
    }
}

/// What stands in for a secret wherever the configuration is shown.
const MASK: &str = "********";

/// Shorter tokens could be guessed by anyone who can reach the admin port.
const MIN_TOKEN_LENGTH: usize = 16;

impl Config {
    /// Defaults, then the file (when given), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let config: Config = figment
            .merge(EnvOverrides::from_process())
            .extract_lossy()
            .map_err(|e| anyhow::anyhow!(describe_figment_error(e)))?;
        config.validate()?;
        #[cfg(not(feature = "simulator"))]
        if config.simulator.is_some() {
            tracing::warn!("[simulator] is ignored: this build has no embedded simulator");
        }
        Ok(config)
    }

    pub fn tls_enabled(&self) -> bool {
        self.smpp.tls_cert.is_some() && self.smpp.tls_key.is_some()
    }

    fn validate(&self) -> anyhow::Result<()> {
        let smpp = &self.smpp;
        check(
            (1..=4096).contains(&smpp.window),
            "smpp.window",
            "must be between 1 and 4096",
        )?;
        check(
            (1024..=1 << 20).contains(&smpp.max_command_length),
            "smpp.max_command_length",
            "must be between 1024 and 1048576 bytes",
        )?;
        check(
            smpp.max_connections >= 1,
            "smpp.max_connections",
            "must be at least 1",
        )?;
        check(
            self.http.max_connections >= 1,
            "http.max_connections",
            "must be at least 1",
        )?;
        check(
            !smpp.system_id.is_empty() && smpp.system_id.len() <= 15 && smpp.system_id.is_ascii(),
            "smpp.system_id",
            "must be 1 to 15 ASCII characters (SMPP's limit)",
        )?;
        check(
            smpp.bind_failure_delay <= Duration::from_secs(5),
            "smpp.bind_failure_delay",
            "must be at most 5s (doubled up to 40s, past most ESMEs' response timeout)",
        )?;
        for (key, value) in [
            ("smpp.bind_lockout", smpp.bind_lockout),
            ("smpp.bind_timeout", smpp.bind_timeout),
            ("smpp.enquire_link_interval", smpp.enquire_link_interval),
            ("smpp.response_timeout", smpp.response_timeout),
            ("smpp.concat_timeout", smpp.concat_timeout),
            ("gateway.timeout", self.gateway.timeout),
            ("http.header_timeout", self.http.header_timeout),
            ("http.idle_timeout", self.http.idle_timeout),
            ("http.request_timeout", self.http.request_timeout),
        ] {
            check(!value.is_zero(), key, "must be longer than 0s")?;
        }
        match (&smpp.tls_cert, &smpp.tls_key) {
            (Some(_), None) => bail!("smpp.tls_key: must be set when smpp.tls_cert is set"),
            (None, Some(_)) => bail!("smpp.tls_cert: must be set when smpp.tls_key is set"),
            _ => {}
        }
        if self.tls_enabled() && smpp.tls_bind_address == smpp.bind_address {
            bail!(
                "smpp.tls_bind_address: {} is also smpp.bind_address; plain and TLS listeners need their own ports",
                smpp.tls_bind_address
            );
        }
        match (&self.http.tls_cert, &self.http.tls_key) {
            (Some(_), None) => bail!("http.tls_key: must be set when http.tls_cert is set"),
            (None, Some(_)) => bail!("http.tls_cert: must be set when http.tls_key is set"),
            _ => {}
        }
        self.validate_admin()?;
        self.delivery
            .validate()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        check_url("gateway.api_base_url", &self.gateway.api_base_url)?;
        if let Some(url) = &self.gateway.webhook_base_url {
            check_url("gateway.webhook_base_url", url)?;
        }
        #[cfg(feature = "simulator")]
        self.simulator
            .validate()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.plugins
            .validate()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }

    fn validate_admin(&self) -> anyhow::Result<()> {
        let admin = &self.admin;
        if admin.address == self.http.address && admin.address.port() != 0 {
            bail!(
                "admin.address: {} is also http.address; the admin endpoints need a port of their own",
                admin.address
            );
        }
        if let Some(token) = &admin.token {
            // The value itself stays out of the message: it is a secret.
            check(
                token.len() >= MIN_TOKEN_LENGTH && token.bytes().all(|b| b.is_ascii_graphic()),
                "admin.token",
                "must be at least 16 visible ASCII characters, without spaces (e.g. the output of `openssl rand -hex 32`)",
            )?;
        }
        check(
            !admin.metrics_require_token || admin.token.is_some(),
            "admin.metrics_require_token",
            "needs admin.token to be set",
        )
    }

    /// The effective configuration as TOML, with secrets masked.
    pub fn to_masked_toml(&self) -> anyhow::Result<String> {
        let mut shown = self.clone();
        let mask = |key: &mut String| *key = MASK.into();
        shown.admin.token.as_mut().map(mask);
        shown.delivery.signing_key.as_mut().map(mask);
        shown.delivery.token_secret.as_mut().map(mask);
        shown.delivery.signing_keys.values_mut().for_each(mask);
        if let Some(url) = shown.delivery.redis_url.as_mut() {
            *url = delivery_store::shared::without_password(url);
        }
        #[cfg(feature = "simulator")]
        for account in &mut shown.simulator.accounts {
            account.password = MASK.into();
            if account.signing_key.is_some() {
                account.signing_key = Some(MASK.into());
            }
        }
        toml::to_string_pretty(&shown).context("rendering the configuration")
    }
}

/// Environment variables of our sections, every value kept as text. (figment's own `Env`
/// reads `SMPP__SYSTEM_ID=12345` as a number and then refuses it for a string key; text is
/// converted where a number is wanted by the lossy extraction instead.)
struct EnvOverrides(Vec<(String, String)>);

impl EnvOverrides {
    fn from_process() -> Self {
        EnvOverrides(
            std::env::vars()
                .filter_map(|(name, value)| {
                    let key = name.trim().to_ascii_lowercase();
                    let (section, _) = key.split_once("__")?;
                    SECTIONS
                        .contains(&section)
                        .then(|| (key.replace("__", "."), value))
                })
                .collect(),
        )
    }
}

impl Provider for EnvOverrides {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (key, value) in &self.0 {
            let path: Vec<&str> = key.split('.').collect();
            if path.iter().any(|segment| segment.is_empty()) {
                return Err(figment::Error::from(format!(
                    "{}: not a configuration key",
                    key.to_ascii_uppercase().replace('.', "__")
                )));
            }
            insert(&mut root, &path, Value::from(value.clone()));
        }
        Ok(Profile::Default.collect(root))
    }
}

fn insert(dict: &mut Dict, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert((*last).to_string(), value);
        }
        [first, rest @ ..] => {
            let child = dict
                .entry((*first).to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(child, Value::Dict(..)) {
                *child = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = child {
                insert(inner, rest, value);
            }
        }
    }
}

fn check(ok: bool, key: &str, problem: &str) -> anyhow::Result<()> {
    if ok {
        Ok(())
    } else {
        bail!("{key}: {problem}")
    }
}

fn check_url(key: &str, url: &str) -> anyhow::Result<()> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(()),
        Ok(parsed) => bail!("{key}: scheme {:?} is not http or https", parsed.scheme()),
        Err(e) => bail!("{key}: {url:?} is not a URL ({e})"),
    }
}

/// figment reports `for key "SMPP.WINDOW"` for env values; operators think in the lower-case
/// dotted form of the file, so say both where the key is known.
fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".").to_ascii_lowercase();
            let source = e
                .metadata
                .as_ref()
                .map(|m| m.name.to_string())
                .unwrap_or_else(|| "configuration".into());
            if key.is_empty() {
                format!("{} (from {source})", e.kind)
            } else {
                format!("{key}: {} (from {source})", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// TON/NPI values are written `1` or `0x01` in existing deployments.
mod lenient_u8 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        let value = match Raw::deserialize(d)? {
            Raw::Number(n) => n,
            Raw::Text(s) => {
                let s = s.trim();
                let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => s.parse(),
                };
                parsed.map_err(|_| D::Error::custom(format!("{s:?} is not a number")))?
            }
        };
        u8::try_from(value).map_err(|_| D::Error::custom(format!("{value} is larger than 255")))
    }

    pub fn serialize<S: Serializer>(value: &u8, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*value)
    }
}

/// Values that parse from their text form (`FromStr`) and print back with `Display`.
mod from_str {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr,
        T::Err: Display,
    {
        let text = String::deserialize(d)?;
        text.trim().parse().map_err(D::Error::custom)
    }

    pub fn serialize<S: Serializer, T: Display>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

    #[expect(
        clippy::result_large_err,
        reason = "figment's Jail fixes the closure's error type"
    )]
    fn load_in_jail(file: Option<&str>, env: &[(&str, &str)]) -> Result<Config, String> {
        let mut out = None;
        Jail::expect_with(|jail: &mut Jail| -> figment::error::Result<()> {
            for (k, v) in env {
                jail.set_env(k, v);
            }
            let path = file.map(|content| {
                jail.create_file("server.toml", content).unwrap();
                PathBuf::from("server.toml")
            });
            out = Some(Config::load(path.as_deref()).map_err(|e| e.to_string()));
            Ok(())
        });
        out.unwrap()
    }

    #[test]
    fn defaults_match_the_go_server() {
        let c = load_in_jail(None, &[]).unwrap();
        assert_eq!(c.smpp.bind_address.to_string(), "127.0.0.1:2775");
        assert_eq!(c.smpp.tls_bind_address.to_string(), "127.0.0.1:2776");
        assert_eq!(c.http.address.to_string(), "127.0.0.1:3000");
        assert_eq!(
            c.gateway.api_base_url,
            "https://api.sms-gate.app/3rdparty/v1"
        );
        assert_eq!(c.gateway.timeout, Duration::from_secs(60));
        assert_eq!(c.smpp.system_id, "SMSGATE");
        assert_eq!(c.smpp.window, 64);
        assert!(!c.tls_enabled());
    }

    #[test]
    fn env_overrides_file_with_go_names() {
        let c = load_in_jail(
            Some("[smpp]\nwindow = 8\nsystem_id = \"FILE\"\n[gateway]\ntimeout = \"5s\"\n"),
            &[
                ("SMPP__BIND_ADDRESS", "0.0.0.0:2775"),
                ("SMPP__SOURCE_TON", "0x05"),
                ("SMPP__SYSTEM_ID", "12345"),
                ("GATEWAY__TIMEOUT", "1m30s"),
                ("GATEWAY__API_BASE_URL", "http://127.0.0.1:9/3rdparty/v1"),
                ("SMPP__DEFAULT_ALPHABET", "latin1"),
                ("SMPP__IA5_ALPHABET", "GSM7"),
                ("GATEWAY__MODE", "local"),
            ],
        )
        .unwrap();
        assert_eq!(c.gateway.mode, GatewayMode::Local);
        assert_eq!(c.smpp.bind_address.to_string(), "0.0.0.0:2775");
        assert_eq!(c.smpp.window, 8);
        assert_eq!(c.smpp.source_ton, 5);
        assert_eq!(c.smpp.system_id, "12345");
        assert_eq!(c.gateway.timeout, Duration::from_secs(90));
        assert_eq!(c.smpp.default_alphabet, DefaultAlphabet::Latin1);
        assert_eq!(c.smpp.ia5_alphabet, Ia5Alphabet::Gsm7);
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("SMPP__WINDOW", "0")], "smpp.window"),
            (&[("SMPP__WINDOW", "many")], "smpp.window"),
            (&[("GATEWAY__TIMEOUT", "soon")], "gateway.timeout"),
            (&[("SMPP__BIND_ADDRESS", "nowhere")], "smpp.bind_address"),
            (&[("SMPP__SOURCE_TON", "300")], "smpp.source_ton"),
            (&[("SMPP__TLS_CERT", "/tmp/cert.pem")], "smpp.tls_key"),
            (
                &[("GATEWAY__API_BASE_URL", "ftp://x")],
                "gateway.api_base_url",
            ),
            (
                &[("SMPP__DEFAULT_ALPHABET", "ebcdic")],
                "smpp.default_alphabet",
            ),
            (&[("SMPP__IA5_ALPHABET", "latin1")], "smpp.ia5_alphabet"),
            (&[("GATEWAY__MODE", "phone")], "gateway.mode"),
            (
                &[("SMPP__SYSTEM_ID", "A_SYSTEM_ID_TOO_LONG")],
                "smpp.system_id",
            ),
        ];
        for (env, key) in cases {
            let err = load_in_jail(None, env).unwrap_err();
            assert!(err.contains(key), "{env:?}: {err}");
        }
    }

    /// Every duration key takes the same form; a bare number is refused rather than read as
    /// seconds in one place and milliseconds in another.
    #[test]
    fn durations_need_a_unit_everywhere() {
        let c = load_in_jail(
            Some("[smpp]\nbind_timeout = \"1m30s\"\n[plugins]\ndefault_timeout = \"10ms\"\n"),
            &[("DELIVERY__TTL", "5m")],
        )
        .unwrap();
        assert_eq!(c.smpp.bind_timeout, Duration::from_secs(90));
        assert_eq!(c.plugins.default_timeout, Duration::from_millis(10));
        assert_eq!(c.delivery.ttl, Duration::from_secs(300));
        for (env, key) in [
            ("SMPP__BIND_TIMEOUT", "smpp.bind_timeout"),
            ("PLUGINS__DEFAULT_TIMEOUT", "plugins.default_timeout"),
            ("DELIVERY__TTL", "delivery.ttl"),
        ] {
            let err = load_in_jail(None, &[(env, "30")]).unwrap_err();
            assert!(err.contains(key), "{env}: {err}");
        }
        let err = load_in_jail(Some("[smpp]\nresponse_timeout = 10\n"), &[]).unwrap_err();
        assert!(err.contains("smpp.response_timeout"), "{err}");
        #[cfg(feature = "simulator")]
        {
            let err = load_in_jail(Some("[simulator]\nstep_delay = 2\n"), &[]).unwrap_err();
            assert!(err.contains("simulator.step_delay"), "{err}");
        }
    }

    #[cfg(feature = "simulator")]
    #[test]
    fn simulator_listen_from_file_and_env_with_check() {
        let listen = |c: Config| c.simulator.listen.to_string();
        assert_eq!(listen(load_in_jail(None, &[]).unwrap()), "127.0.0.1:3100");
        let file = "[simulator]\nlisten = \"127.0.0.1:3200\"\n";
        assert_eq!(
            listen(load_in_jail(Some(file), &[]).unwrap()),
            "127.0.0.1:3200"
        );
        let env = [("SIMULATOR__LISTEN", "0.0.0.0:3300")];
        assert_eq!(
            listen(load_in_jail(Some(file), &env).unwrap()),
            "0.0.0.0:3300"
        );
        for bad in ["3300", "localhost"] {
            let err = load_in_jail(None, &[("SIMULATOR__LISTEN", bad)]).unwrap_err();
            assert!(err.contains("simulator.listen"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_file_keys_and_missing_files_are_errors() {
        let err = load_in_jail(Some("[smpp]\nwindoww = 3\n"), &[]).unwrap_err();
        assert!(err.contains("windoww"), "{err}");
        let err = Config::load(Some(Path::new("/nonexistent/server.toml"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/server.toml"));
    }

    #[test]
    fn the_example_file_loads_and_shows_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/server.toml");
        let example = load_in_jail(Some(&std::fs::read_to_string(path).unwrap()), &[]).unwrap();
        let defaults = load_in_jail(None, &[]).unwrap();
        assert_eq!(
            toml::to_string(&example.smpp).unwrap(),
            toml::to_string(&defaults.smpp).unwrap()
        );
        assert_eq!(
            toml::to_string(&example.http).unwrap(),
            toml::to_string(&defaults.http).unwrap()
        );
        assert_eq!(
            toml::to_string(&example.admin).unwrap(),
            toml::to_string(&defaults.admin).unwrap()
        );
        #[cfg(feature = "simulator")]
        assert_eq!(example.simulator.rules.len(), 4);
    }

    #[test]
    fn plugins_section_defaults_env_and_sizes() {
        let c = load_in_jail(None, &[]).unwrap();
        assert_eq!(c.plugins.dir, PathBuf::from("./plugins"));
        assert_eq!(
            c.plugins.cache_dir,
            std::env::temp_dir().join("smsgate-smpp-plugin-cache")
        );
        assert!(c.plugins.watch);
        assert_eq!(c.plugins.default_timeout, Duration::from_millis(10));
        assert_eq!(c.plugins.default_memory, 16 << 20);

        let c = load_in_jail(
            Some("[plugins]\ndefault_memory = \"512KiB\"\ndefault_timeout = \"25ms\"\n"),
            &[
                ("PLUGINS__DIR", "/srv/plugins"),
                ("PLUGINS__WATCH", "false"),
                ("PLUGINS__CACHE_DIR", "/var/cache/smsgate"),
            ],
        )
        .unwrap();
        assert_eq!(c.plugins.dir, PathBuf::from("/srv/plugins"));
        assert_eq!(c.plugins.cache_dir, PathBuf::from("/var/cache/smsgate"));
        assert!(!c.plugins.watch);
        assert_eq!(c.plugins.default_memory, 512 << 10);
        assert_eq!(c.plugins.default_timeout, Duration::from_millis(25));

        let c = load_in_jail(None, &[("PLUGINS__DEFAULT_MEMORY", "1048576")]).unwrap();
        assert_eq!(c.plugins.default_memory, 1 << 20);
        let shown = c.to_masked_toml().unwrap();
        assert!(shown.contains("default_memory = \"1MiB\""), "{shown}");
    }

    #[test]
    fn plugins_section_mistakes_name_the_key() {
        for (env, key) in [
            (
                ("PLUGINS__DEFAULT_MEMORY", "16 parsecs"),
                "plugins.default_memory",
            ),
            (
                ("PLUGINS__DEFAULT_MEMORY", "1KiB"),
                "plugins.default_memory",
            ),
            (
                ("PLUGINS__DEFAULT_TIMEOUT", "soon"),
                "plugins.default_timeout",
            ),
            (
                ("PLUGINS__DEFAULT_TIMEOUT", "0ms"),
                "plugins.default_timeout",
            ),
            (
                ("PLUGINS__DEFAULT_TIMEOUT", "10s"),
                "plugins.default_timeout",
            ),
            (("PLUGINS__WATCH", "sometimes"), "plugins.watch"),
            (("PLUGINS__DIRR", "/x"), "dirr"),
        ] {
            let err = load_in_jail(None, &[env]).unwrap_err();
            assert!(err.contains(key), "{env:?}: {err}");
        }
    }

    #[test]
    fn masked_output_hides_passwords() {
        let c = load_in_jail(None, &[]).unwrap();
        let shown = c.to_masked_toml().unwrap();
        assert!(!shown.contains("demo1234"), "{shown}");
        assert!(shown.contains("bind_address"));
    }

    #[test]
    fn http_limits_and_admin_from_env_with_checks() {
        let c = load_in_jail(None, &[]).unwrap();
        assert_eq!(c.http.max_connections, 256);
        assert_eq!(c.http.header_timeout, Duration::from_secs(10));
        assert_eq!(c.http.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.http.request_timeout, Duration::from_secs(30));
        assert_eq!(c.admin.address.to_string(), "127.0.0.1:3001");
        assert_eq!(c.admin.token, None);
        assert!(!c.admin.metrics_require_token);

        let token = "s3cret-0123456789abcdef";
        let c = load_in_jail(
            Some("[http]\nheader_timeout = \"2s\"\n[admin]\nmetrics_require_token = true\n"),
            &[
                ("HTTP__MAX_CONNECTIONS", "8"),
                ("HTTP__IDLE_TIMEOUT", "1m30s"),
                ("HTTP__REQUEST_TIMEOUT", "500ms"),
                ("ADMIN__ADDRESS", "10.0.0.1:9090"),
                ("ADMIN__TOKEN", token),
            ],
        )
        .unwrap();
        assert_eq!(c.http.max_connections, 8);
        assert_eq!(c.http.header_timeout, Duration::from_secs(2));
        assert_eq!(c.http.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.http.request_timeout, Duration::from_millis(500));
        assert_eq!(c.admin.address.to_string(), "10.0.0.1:9090");
        assert_eq!(c.admin.token.as_deref(), Some(token));
        assert!(c.admin.metrics_require_token);
        let shown = c.to_masked_toml().unwrap();
        assert!(!shown.contains(token), "{shown}");
        assert!(!format!("{c:?}").contains(token));

        for (env, key) in [
            (
                &[("HTTP__MAX_CONNECTIONS", "0")][..],
                "http.max_connections",
            ),
            (&[("HTTP__HEADER_TIMEOUT", "0s")], "http.header_timeout"),
            (&[("HTTP__IDLE_TIMEOUT", "soon")], "http.idle_timeout"),
            (&[("HTTP__REQUEST_TIMEOUT", "30")], "http.request_timeout"),
            (&[("ADMIN__ADDRESS", "127.0.0.1:3000")], "admin.address"),
            (
                &[("ADMIN__METRICS_REQUIRE_TOKEN", "true")],
                "admin.metrics_require_token",
            ),
            (&[("ADMIN__TOKEN", "short-secret")], "admin.token"),
            (
                &[("ADMIN__TOKEN", "with a space 0123456789")],
                "admin.token",
            ),
        ] {
            let err = load_in_jail(None, env).unwrap_err();
            assert!(err.contains(key), "{env:?}: {err}");
            assert!(
                !err.contains("short-secret") && !err.contains("a space"),
                "{err}"
            );
        }
    }

    #[test]
    fn message_id_format_from_file_and_env() {
        let c = load_in_jail(None, &[]).unwrap();
        assert_eq!(c.smpp.message_id_format, MessageIdFormat::Alphanumeric);
        let c = load_in_jail(Some("[smpp]\nmessage_id_format = \"hex\"\n"), &[]).unwrap();
        assert_eq!(c.smpp.message_id_format, MessageIdFormat::Hex);
        let c = load_in_jail(
            Some("[smpp]\nmessage_id_format = \"hex\"\n"),
            &[("SMPP__MESSAGE_ID_FORMAT", "Decimal")],
        )
        .unwrap();
        assert_eq!(c.smpp.message_id_format, MessageIdFormat::Decimal);
        let shown = c.to_masked_toml().unwrap();
        assert!(shown.contains("message_id_format = \"decimal\""), "{shown}");

        for (file, env) in [
            (None, &[("SMPP__MESSAGE_ID_FORMAT", "base64")][..]),
            (Some("[smpp]\nmessage_id_format = \"uuid\"\n"), &[][..]),
            (Some("[smpp]\nmessage_id_format = 16\n"), &[][..]),
        ] {
            let err = load_in_jail(file, env).unwrap_err();
            assert!(err.contains("smpp.message_id_format"), "{err}");
        }
        let err = load_in_jail(None, &[("SMPP__MESSAGE_ID_FORMAT", "base64")]).unwrap_err();
        assert!(err.contains("alphanumeric, hex, decimal"), "{err}");
    }

    #[test]
    fn delivery_section_from_env_with_checks_and_masked_keys() {
        let c = load_in_jail(None, &[]).unwrap();
        assert_eq!(c.delivery.window, 16);
        assert_eq!(c.delivery.ttl, Duration::from_secs(72 * 3600));
        let c = load_in_jail(
            Some("[delivery.signing_keys]\nalpha = \"alpha-secret\"\n"),
            &[
                ("DELIVERY__DATA_DIR", "/var/lib/smsgate"),
                ("DELIVERY__WINDOW", "4"),
                ("DELIVERY__PART_RECEIPTS", "last"),
                ("DELIVERY__LONG_MESSAGES", "payload"),
                ("DELIVERY__SIGNING_KEY", "every-secret"),
                ("DELIVERY__TOKEN_SECRET", "shared-deployment-secret"),
                ("DELIVERY__RETRY_INITIAL", "250ms"),
                ("DELIVERY__STORE", "redis"),
                (
                    "DELIVERY__REDIS_URL",
                    "redis://:redis-password@10.0.0.5:6379/2",
                ),
                ("DELIVERY__REDIS_LEASE", "5s"),
                ("HTTP__TLS_CERT", "/c.pem"),
                ("HTTP__TLS_KEY", "/k.pem"),
            ],
        )
        .unwrap();
        assert_eq!(c.delivery.data_dir, PathBuf::from("/var/lib/smsgate"));
        assert_eq!(c.delivery.window, 4);
        assert_eq!(
            c.delivery.part_receipts,
            crate::delivery::PartReceipts::Last
        );
        assert_eq!(
            c.delivery.long_messages,
            crate::receipt::LongMessages::Payload
        );
        assert_eq!(c.delivery.retry_initial, Duration::from_millis(250));
        assert_eq!(c.delivery.store, super::StoreKind::Redis);
        assert_eq!(c.delivery.redis_lease, Duration::from_secs(5));
        assert_eq!(c.http.tls_cert, Some(PathBuf::from("/c.pem")));
        let shown = c.to_masked_toml().unwrap();
        assert!(shown.contains("redis://:***@10.0.0.5:6379/2"), "{shown}");
        for secret in [
            "alpha-secret",
            "every-secret",
            "shared-deployment-secret",
            "redis-password",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }

        for (env, key) in [
            (("DELIVERY__WINDOW", "0"), "delivery.window"),
            (("DELIVERY__STORE", "redis"), "delivery.redis_url"),
            (("DELIVERY__STORE", "etcd"), "delivery.store"),
            (("DELIVERY__REDIS_LEASE", "10ms"), "delivery.redis_lease"),
            (
                ("DELIVERY__LONG_MESSAGES", "split"),
                "delivery.long_messages",
            ),
            (
                ("DELIVERY__PART_RECEIPTS", "first"),
                "delivery.part_receipts",
            ),
            (("DELIVERY__RETRY_MAX", "1ms"), "delivery.retry_max"),
            (("DELIVERY__TOKEN_SECRET", "short"), "delivery.token_secret"),
            (("DELIVERY__TTL", "0s"), "delivery.ttl"),
            (("HTTP__TLS_CERT", "/c.pem"), "http.tls_key"),
        ] {
            let err = load_in_jail(None, &[env]).unwrap_err();
            assert!(err.contains(key), "{env:?}: {err}");
        }
    }
}
