//! `smsgate-smpp plugin check` and `plugin run`: let a plugin author check a component against
//! the contract and run one hook on a JSON fixture, with the same loader, limits and NAME.toml
//! the server uses, and see the verdict, the time taken and the fuel used, so that a budget can
//! be kept in CI.
//!
//! Fixture format (JSON; every field may be left out and takes the default shown):
//!
//! * `--hook authenticate`: `{"request": BindRequest}`
//! * `--hook submit` (transform-submit) and `--hook route`: `{"account": Account, "message": Message}`
//! * `--hook deliver` (transform-deliver): `{"account": Account, "deliver": Deliver}`
//! * `--hook route-incoming`: `{"incoming": IncomingSms, "candidates": [Account, ...]}`
//!
//! where the records mirror wit/v0.2.0 with snake_case names:
//!
//! * BindRequest: `system_id` "", `password` "", `system_type` "", `bind_type`
//!   "transceiver" (or "transmitter", "receiver"), `peer_address` "", `tls` false,
//!   `address_range` "".
//! * Account: `id` "", `credentials` `{"basic": {"username": "", "password": ""}}` (or
//!   `{"bearer": "TOKEN"}`), `api_base_url`, `device_id`, `sim_number` null, `limits`
//!   `{"max_binds": null, "messages_per_second": null}`, `labels` `[["key", "value"], ...]`.
//! * Address: `{"ton": 0, "npi": 0, "addr": ""}`.
//! * Content: `{"text": "..."}` (the default, empty) or `{"binary": {"data": "HEX", "port": 0}}`.
//! * Message: `service_type` "", `source` Address, `destinations` [], `esm_class`,
//!   `protocol_id`, `priority_flag`, `registered_delivery`, `data_coding` 0, `content`,
//!   `validity` null (or `{"until": UNIX_MS}`, `{"after": SECONDS}`), `schedule_at` null (Unix
//!   ms), `tlvs` `[{"tag": 5120, "value": "HEX"}]`, `labels` [].
//! * Deliver: `kind` "incoming" (or "receipt"), `source`, `destination` Address, `content`,
//!   `message_id`, `message_state`, `error_code` null, `labels` [].
//! * IncomingSms: `event_id` "", `device_id` "", `sim_number` null, `sender` "", `recipient`
//!   null, `content`, `received_at` null (Unix ms).
//!
//! The output is one JSON object: `plugin`, `version`, `hook`, `verdict` (the hook's result in
//! the same notation, e.g. `"pass"`, `{"reject": 14}`, `{"replace": Message}`,
//! `{"route": {"device_id": "...", ...}}`, `{"deliver": ["shop1"]}`), `micros` (wall-clock
//! time of the call in whole microseconds) and `fuel_used`. A trap, a deadline overrun or a
//! memory cap is an error (exit status 1) saying what the server's failure policy would do.
//! Examples: examples/fixtures/.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::loader::{self, ArtifactCache, Candidate};
use super::manifest::{FailurePolicy, Manifest};
use super::runtime::{Called, Runtime, RuntimeOptions};
use super::settings::PluginsConfig;
use super::{Hook, Plugin, types};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum RunHook {
    Authenticate,
    /// transform-submit
    Submit,
    Route,
    /// transform-deliver
    Deliver,
    RouteIncoming,
}

impl RunHook {
    fn hook(self) -> Hook {
        match self {
            RunHook::Authenticate => Hook::Authenticate,
            RunHook::Submit => Hook::TransformSubmit,
            RunHook::Route => Hook::Route,
            RunHook::Deliver => Hook::TransformDeliver,
            RunHook::RouteIncoming => Hook::RouteIncoming,
        }
    }
}

/// Loads the plugin the way the server would and describes it.
pub fn check(
    wasm: &Path,
    manifest: Option<&Path>,
    defaults: &PluginsConfig,
) -> anyhow::Result<String> {
    let (_runtime, plugin) = load(wasm, manifest, defaults)?;
    let hooks: Vec<&str> = [
        Hook::Authenticate,
        Hook::TransformSubmit,
        Hook::Route,
        Hook::TransformDeliver,
        Hook::RouteIncoming,
    ]
    .into_iter()
    .filter(|hook| plugin.implements(*hook))
    .map(Hook::name)
    .collect();
    Ok(format!(
        "name: {}\nversion: {}\ncontract: smsgate:smpp-plugin@{}\nhooks: {}\n",
        plugin.info.name,
        plugin.info.version,
        plugin.contract,
        if hooks.is_empty() {
            "(none)".to_string()
        } else {
            hooks.join(", ")
        }
    ))
}

/// Runs one hook on the fixture in `input` and returns the report as JSON.
pub fn run(
    wasm: &Path,
    hook: RunHook,
    input: &Path,
    manifest: Option<&Path>,
    defaults: &PluginsConfig,
) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(input)
        .with_context(|| format!("--input {}: cannot read", input.display()))?;
    let fixture = |e: serde_json::Error| anyhow!("--input {}: {e}", input.display());
    let (_runtime, plugin) = load(wasm, manifest, defaults)?;
    if !plugin.implements(hook.hook()) {
        bail!(
            "{} does not declare the {} hook in describe, so the server never calls it",
            plugin.name,
            hook.hook().name()
        );
    }
    let instances = &plugin.instances;
    let called = match hook {
        RunHook::Authenticate => {
            let input: AuthenticateInput = serde_json::from_str(&text).map_err(fixture)?;
            let request = input.request.into();
            instances
                .call(async |p, store| p.call_authenticate(store, &request).await)
                .map(|c| c.map(|v| json(AuthVerdict::from(v))))
        }
        RunHook::Submit => {
            let input: SubmitInput = serde_json::from_str(&text).map_err(fixture)?;
            let (account, message) = (input.account.into(), input.message.into());
            instances
                .call(async |p, store| p.call_transform_submit(store, &account, &message).await)
                .map(|c| c.map(|v| json(TransformVerdict::from(v))))
        }
        RunHook::Route => {
            let input: SubmitInput = serde_json::from_str(&text).map_err(fixture)?;
            let (account, message) = (input.account.into(), input.message.into());
            instances
                .call(async |p, store| p.call_route(store, &account, &message).await)
                .map(|c| c.map(|v| json(RouteVerdict::from(v))))
        }
        RunHook::Deliver => {
            let input: DeliverInput = serde_json::from_str(&text).map_err(fixture)?;
            let (account, deliver) = (input.account.into(), input.deliver.into());
            instances
                .call(async |p, store| p.call_transform_deliver(store, &account, &deliver).await)
                .map(|c| c.map(|v| json(DeliverVerdict::from(v))))
        }
        RunHook::RouteIncoming => {
            let input: RouteIncomingInput = serde_json::from_str(&text).map_err(fixture)?;
            let incoming = input.incoming.into();
            let candidates: Vec<types::Account> =
                input.candidates.into_iter().map(Into::into).collect();
            instances
                .call(async |p, store| p.call_route_incoming(store, &incoming, &candidates).await)
                .map(|c| c.map(|v| json(RouteIncomingVerdict::from(v))))
        }
    };
    let called = called.map_err(|failure| {
        let policy = plugin.policies.get(hook.hook());
        anyhow!(
            "{} {failure}; with {policy} the server would {}",
            hook.hook().name(),
            consequence(hook.hook(), policy)
        )
    })?;
    let report = Report {
        plugin: &plugin.info.name,
        version: &plugin.info.version,
        hook: hook.hook().name(),
        verdict: called.value,
        micros: called.elapsed.as_micros() as u64,
        fuel_used: called.fuel_used,
    };
    Ok(serde_json::to_string_pretty(&report)? + "\n")
}

fn consequence(hook: Hook, policy: FailurePolicy) -> &'static str {
    match (hook, policy) {
        (Hook::Authenticate, FailurePolicy::FailClosed) => "refuse the bind (ESME_RBINDFAIL)",
        (Hook::Authenticate, FailurePolicy::FailOpen) => "ask the next plugin",
        (Hook::TransformDeliver, FailurePolicy::FailClosed) => "drop the deliver_sm",
        (Hook::RouteIncoming, FailurePolicy::FailClosed) => {
            "deliver by its own SIM and device matching"
        }
        (Hook::RouteIncoming, FailurePolicy::FailOpen) => "ask the next plugin",
        (_, FailurePolicy::FailClosed) => "refuse the message (ESME_RSYSERR)",
        (_, FailurePolicy::FailOpen) => "continue with the message unchanged",
    }
}

/// The runner always counts fuel so that it can report it; the server counts it only for
/// plugins with a budget, which does not change what a plugin computes.
fn load(
    wasm: &Path,
    manifest: Option<&Path>,
    defaults: &PluginsConfig,
) -> anyhow::Result<(Runtime, Plugin)> {
    let base = wasm.parent().unwrap_or(Path::new("."));
    let beside = wasm.with_extension("toml");
    let manifest_path: Option<PathBuf> = match manifest {
        Some(path) => Some(path.to_path_buf()),
        None => beside.is_file().then_some(beside),
    };
    let manifest = match &manifest_path {
        Some(path) => Manifest::read(path, base, defaults)?,
        None => Manifest::defaults(defaults),
    };
    let runtime = Runtime::new(&RuntimeOptions {
        fuel: true,
        max_memory: manifest.memory,
        plugins: 1,
    })?;
    let name = wasm
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cache = ArtifactCache::open(&defaults.cache_dir);
    let candidate = Candidate {
        name,
        wasm: wasm.to_path_buf(),
        manifest,
    };
    let plugin = loader::load(&runtime, candidate, cache.as_ref())?;
    Ok((runtime, plugin))
}

/// The verdicts are plain data (no maps with non-string keys), so they always serialize.
fn json(verdict: impl Serialize) -> serde_json::Value {
    serde_json::to_value(verdict).unwrap_or_default()
}

impl<R> Called<R> {
    fn map<S>(self, f: impl FnOnce(R) -> S) -> Called<S> {
        Called {
            value: f(self.value),
            elapsed: self.elapsed,
            fuel_used: self.fuel_used,
        }
    }
}

#[derive(Serialize)]
struct Report<'a> {
    plugin: &'a str,
    version: &'a str,
    hook: &'a str,
    verdict: serde_json::Value,
    /// Whole microseconds, as the server logs a hook's time: the fractions are below what
    /// the machine's noise lets one compare.
    micros: u64,
    fuel_used: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct AuthenticateInput {
    request: BindRequestJson,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct SubmitInput {
    account: AccountJson,
    message: MessageJson,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct DeliverInput {
    account: AccountJson,
    deliver: DeliverJson,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RouteIncomingInput {
    incoming: IncomingSmsJson,
    candidates: Vec<AccountJson>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct BindRequestJson {
    system_id: String,
    password: String,
    system_type: String,
    bind_type: BindTypeJson,
    peer_address: String,
    tls: bool,
    address_range: String,
}

#[derive(Serialize, Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum BindTypeJson {
    Transmitter,
    Receiver,
    #[default]
    Transceiver,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum CredentialsJson {
    Basic { username: String, password: String },
    Bearer(String),
}

impl Default for CredentialsJson {
    fn default() -> Self {
        CredentialsJson::Basic {
            username: String::new(),
            password: String::new(),
        }
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct LimitsJson {
    max_binds: Option<u32>,
    messages_per_second: Option<u32>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct AccountJson {
    id: String,
    credentials: CredentialsJson,
    api_base_url: Option<String>,
    device_id: Option<String>,
    sim_number: Option<u8>,
    limits: LimitsJson,
    labels: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct AddressJson {
    ton: u8,
    npi: u8,
    addr: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum ContentJson {
    Text(String),
    Binary {
        #[serde(with = "hex_bytes")]
        data: Vec<u8>,
        #[serde(default)]
        port: u16,
    },
}

impl Default for ContentJson {
    fn default() -> Self {
        ContentJson::Text(String::new())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum ValidityJson {
    Until(i64),
    After(u64),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlvJson {
    tag: u16,
    #[serde(with = "hex_bytes", default)]
    value: Vec<u8>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct MessageJson {
    service_type: String,
    source: AddressJson,
    destinations: Vec<AddressJson>,
    esm_class: u8,
    protocol_id: u8,
    priority_flag: u8,
    registered_delivery: u8,
    data_coding: u8,
    content: ContentJson,
    validity: Option<ValidityJson>,
    schedule_at: Option<i64>,
    tlvs: Vec<TlvJson>,
    labels: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum DeliverKindJson {
    Receipt,
    #[default]
    Incoming,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct DeliverJson {
    kind: DeliverKindJson,
    source: AddressJson,
    destination: AddressJson,
    content: ContentJson,
    message_id: Option<String>,
    message_state: Option<u8>,
    error_code: Option<u32>,
    labels: Vec<(String, String)>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct IncomingSmsJson {
    event_id: String,
    device_id: String,
    sim_number: Option<u8>,
    sender: String,
    recipient: Option<String>,
    content: ContentJson,
    received_at: Option<i64>,
}

#[derive(Serialize)]
struct RouteDecisionJson {
    device_id: Option<String>,
    sim_number: Option<u8>,
    priority: Option<i8>,
    credentials: Option<CredentialsJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum AuthVerdict {
    Accept(AccountJson),
    Reject(u32),
    Pass,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum TransformVerdict {
    Continue,
    Replace(MessageJson),
    Reject(u32),
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum RouteVerdict {
    Continue,
    Route(RouteDecisionJson),
    Reject(u32),
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum DeliverVerdict {
    Continue,
    Replace(DeliverJson),
    Drop,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum RouteIncomingVerdict {
    Continue,
    Deliver(Vec<String>),
    Drop(String),
}

impl From<BindRequestJson> for types::BindRequest {
    fn from(j: BindRequestJson) -> Self {
        types::BindRequest {
            system_id: j.system_id,
            password: j.password,
            system_type: j.system_type,
            bind_type: match j.bind_type {
                BindTypeJson::Transmitter => types::BindType::Transmitter,
                BindTypeJson::Receiver => types::BindType::Receiver,
                BindTypeJson::Transceiver => types::BindType::Transceiver,
            },
            peer_address: j.peer_address,
            tls: j.tls,
            address_range: j.address_range,
        }
    }
}

impl From<CredentialsJson> for types::Credentials {
    fn from(j: CredentialsJson) -> Self {
        match j {
            CredentialsJson::Basic { username, password } => {
                types::Credentials::Basic(types::BasicCredentials { username, password })
            }
            CredentialsJson::Bearer(token) => types::Credentials::Bearer(token),
        }
    }
}

impl From<types::Credentials> for CredentialsJson {
    fn from(c: types::Credentials) -> Self {
        match c {
            types::Credentials::Basic(basic) => CredentialsJson::Basic {
                username: basic.username,
                password: basic.password,
            },
            types::Credentials::Bearer(token) => CredentialsJson::Bearer(token),
        }
    }
}

impl From<AccountJson> for types::Account {
    fn from(j: AccountJson) -> Self {
        types::Account {
            id: j.id,
            credentials: j.credentials.into(),
            api_base_url: j.api_base_url,
            device_id: j.device_id,
            sim_number: j.sim_number,
            limits: types::AccountLimits {
                max_binds: j.limits.max_binds,
                messages_per_second: j.limits.messages_per_second,
            },
            labels: j.labels,
        }
    }
}

impl From<types::Account> for AccountJson {
    fn from(a: types::Account) -> Self {
        AccountJson {
            id: a.id,
            credentials: a.credentials.into(),
            api_base_url: a.api_base_url,
            device_id: a.device_id,
            sim_number: a.sim_number,
            limits: LimitsJson {
                max_binds: a.limits.max_binds,
                messages_per_second: a.limits.messages_per_second,
            },
            labels: a.labels,
        }
    }
}

impl From<AddressJson> for types::Address {
    fn from(j: AddressJson) -> Self {
        types::Address {
            ton: j.ton,
            npi: j.npi,
            addr: j.addr,
        }
    }
}

impl From<types::Address> for AddressJson {
    fn from(a: types::Address) -> Self {
        AddressJson {
            ton: a.ton,
            npi: a.npi,
            addr: a.addr,
        }
    }
}

impl From<ContentJson> for types::Content {
    fn from(j: ContentJson) -> Self {
        match j {
            ContentJson::Text(text) => types::Content::Text(text),
            ContentJson::Binary { data, port } => {
                types::Content::Binary(types::BinaryContent { data, port })
            }
        }
    }
}

impl From<types::Content> for ContentJson {
    fn from(c: types::Content) -> Self {
        match c {
            types::Content::Text(text) => ContentJson::Text(text),
            types::Content::Binary(binary) => ContentJson::Binary {
                data: binary.data,
                port: binary.port,
            },
        }
    }
}

impl From<MessageJson> for types::Message {
    fn from(j: MessageJson) -> Self {
        types::Message {
            service_type: j.service_type,
            source: j.source.into(),
            destinations: j.destinations.into_iter().map(Into::into).collect(),
            esm_class: j.esm_class,
            protocol_id: j.protocol_id,
            priority_flag: j.priority_flag,
            registered_delivery: j.registered_delivery,
            data_coding: j.data_coding,
            content: j.content.into(),
            validity: j.validity.map(|v| match v {
                ValidityJson::Until(ms) => types::Validity::Until(ms),
                ValidityJson::After(s) => types::Validity::After(s),
            }),
            schedule_at: j.schedule_at,
            tlvs: j
                .tlvs
                .into_iter()
                .map(|t| types::Tlv {
                    tag: t.tag,
                    value: t.value,
                })
                .collect(),
            labels: j.labels,
        }
    }
}

impl From<types::Message> for MessageJson {
    fn from(m: types::Message) -> Self {
        MessageJson {
            service_type: m.service_type,
            source: m.source.into(),
            destinations: m.destinations.into_iter().map(Into::into).collect(),
            esm_class: m.esm_class,
            protocol_id: m.protocol_id,
            priority_flag: m.priority_flag,
            registered_delivery: m.registered_delivery,
            data_coding: m.data_coding,
            content: m.content.into(),
            validity: m.validity.map(|v| match v {
                types::Validity::Until(ms) => ValidityJson::Until(ms),
                types::Validity::After(s) => ValidityJson::After(s),
            }),
            schedule_at: m.schedule_at,
            tlvs: m
                .tlvs
                .into_iter()
                .map(|t| TlvJson {
                    tag: t.tag,
                    value: t.value,
                })
                .collect(),
            labels: m.labels,
        }
    }
}

impl From<DeliverJson> for types::Deliver {
    fn from(j: DeliverJson) -> Self {
        types::Deliver {
            kind: match j.kind {
                DeliverKindJson::Receipt => types::DeliverKind::Receipt,
                DeliverKindJson::Incoming => types::DeliverKind::Incoming,
            },
            source: j.source.into(),
            destination: j.destination.into(),
            content: j.content.into(),
            message_id: j.message_id,
            message_state: j.message_state,
            error_code: j.error_code,
            labels: j.labels,
        }
    }
}

impl From<types::Deliver> for DeliverJson {
    fn from(d: types::Deliver) -> Self {
        DeliverJson {
            kind: match d.kind {
                types::DeliverKind::Receipt => DeliverKindJson::Receipt,
                types::DeliverKind::Incoming => DeliverKindJson::Incoming,
            },
            source: d.source.into(),
            destination: d.destination.into(),
            content: d.content.into(),
            message_id: d.message_id,
            message_state: d.message_state,
            error_code: d.error_code,
            labels: d.labels,
        }
    }
}

impl From<IncomingSmsJson> for types::IncomingSms {
    fn from(j: IncomingSmsJson) -> Self {
        types::IncomingSms {
            event_id: j.event_id,
            device_id: j.device_id,
            sim_number: j.sim_number,
            sender: j.sender,
            recipient: j.recipient,
            content: j.content.into(),
            received_at: j.received_at,
        }
    }
}

impl From<types::AuthResult> for AuthVerdict {
    fn from(r: types::AuthResult) -> Self {
        match r {
            types::AuthResult::Accept(account) => AuthVerdict::Accept(account.into()),
            types::AuthResult::Reject(status) => AuthVerdict::Reject(status),
            types::AuthResult::Pass => AuthVerdict::Pass,
        }
    }
}

impl From<types::TransformResult> for TransformVerdict {
    fn from(r: types::TransformResult) -> Self {
        match r {
            types::TransformResult::Continue => TransformVerdict::Continue,
            types::TransformResult::Replace(message) => TransformVerdict::Replace(message.into()),
            types::TransformResult::Reject(status) => TransformVerdict::Reject(status),
        }
    }
}

impl From<types::RouteResult> for RouteVerdict {
    fn from(r: types::RouteResult) -> Self {
        match r {
            types::RouteResult::Continue => RouteVerdict::Continue,
            types::RouteResult::Route(d) => RouteVerdict::Route(RouteDecisionJson {
                device_id: d.device_id,
                sim_number: d.sim_number,
                priority: d.priority,
                credentials: d.credentials.map(Into::into),
            }),
            types::RouteResult::Reject(status) => RouteVerdict::Reject(status),
        }
    }
}

impl From<types::DeliverResult> for DeliverVerdict {
    fn from(r: types::DeliverResult) -> Self {
        match r {
            types::DeliverResult::Continue => DeliverVerdict::Continue,
            types::DeliverResult::Replace(deliver) => DeliverVerdict::Replace(deliver.into()),
            types::DeliverResult::Drop => DeliverVerdict::Drop,
        }
    }
}

impl From<types::RouteIncomingResult> for RouteIncomingVerdict {
    fn from(r: types::RouteIncomingResult) -> Self {
        match r {
            types::RouteIncomingResult::Continue => RouteIncomingVerdict::Continue,
            types::RouteIncomingResult::Deliver(users) => RouteIncomingVerdict::Deliver(users),
            types::RouteIncomingResult::Drop(reason) => RouteIncomingVerdict::Drop(reason),
        }
    }
}

/// Binary content and TLV values as hex text, which is how they are written in specs and
/// Wireshark dumps.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return Err(D::Error::custom(format!(
                "{text:?}: odd number of hex digits"
            )));
        }
        digits
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .ok_or_else(|| D::Error::custom(format!("{text:?} is not hex")))
            })
            .collect()
    }
}
