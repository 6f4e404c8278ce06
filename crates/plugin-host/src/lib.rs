//! Policy plugins: WebAssembly components (the `plugin` world of wit/v0.2.0, or of wit/v0.1.0
//! for plugins built before it) that operators drop into `plugins.dir` to decide binds, rewrite
//! and route submits, route incoming SMS and filter deliveries. This module is what the rest
//! of the server sees: a chain per hook, called synchronously, where a misbehaving plugin costs
//! at most its deadline and its failure policy says what happens then. The server sees the
//! latest contract's types only; `bindings` converts for plugins of older versions.
//!
//! Chain semantics: `authenticate` takes the first answer that is not `pass`;
//! `transform_submit` feeds each plugin the previous one's output and stops at a reject;
//! `route` and `route_incoming` take the first answer that is not `continue`;
//! `transform_deliver` feeds each plugin the previous one's output and stops at a drop.
//! Plugins run by `order`, then by name.

mod failure_log;
mod loader;
mod manifest;
mod reload;
pub mod runner;
mod runtime;
mod settings;
#[cfg(test)]
mod tests;
mod usage;

use failure_log::FailureLog;
use std::sync::Arc;

use arc_swap::ArcSwap;
use smpp_codec::status::{CommandStatus, ESME_RBINDFAIL, ESME_RSYSERR};
use tracing::{debug, info, warn};

pub use self::settings::PluginsConfig;
pub use self::usage::HookUsage;

use self::manifest::{FailurePolicy, Policies};
use self::runtime::{Called, Failure, HostState, Instances, Runtime};
use self::usage::Usage;
use bindings::latest::smsgate::smpp_plugin::types::{Hooks, PluginInfo};

mod bindings;

/// The latest contract's types, as the server passes them to plugins and gets them back.
pub mod types {
    pub use super::bindings::latest::smsgate::smpp_plugin::types::{
        Account, AccountLimits, Address, AuthResult, BasicCredentials, BinaryContent, BindRequest,
        BindType, Content, Credentials, Deliver, DeliverKind, DeliverResult, IncomingSms, Message,
        RouteDecision, RouteIncomingResult, RouteResult, Tlv, TransformResult, Validity,
    };
}

/// What a fail-closed authenticate answers.
const BIND_FAILED: CommandStatus = ESME_RBINDFAIL;
/// What a fail-closed submit hook answers; ESMEs retry it later.
const SYSTEM_ERROR: CommandStatus = ESME_RSYSERR;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Authenticate = 0,
    TransformSubmit = 1,
    Route = 2,
    TransformDeliver = 3,
    RouteIncoming = 4,
}

impl Hook {
    const ALL: [Hook; 5] = [
        Hook::Authenticate,
        Hook::TransformSubmit,
        Hook::Route,
        Hook::TransformDeliver,
        Hook::RouteIncoming,
    ];

    fn name(self) -> &'static str {
        match self {
            Hook::Authenticate => "authenticate",
            Hook::TransformSubmit => "transform-submit",
            Hook::Route => "route",
            Hook::TransformDeliver => "transform-deliver",
            Hook::RouteIncoming => "route-incoming",
        }
    }

    /// Accepts the WIT spelling and the Rust one (`transform_submit`).
    fn from_name(name: &str) -> Option<Hook> {
        match name.replace('_', "-").as_str() {
            "authenticate" => Some(Hook::Authenticate),
            "transform-submit" => Some(Hook::TransformSubmit),
            "route" => Some(Hook::Route),
            "transform-deliver" => Some(Hook::TransformDeliver),
            "route-incoming" => Some(Hook::RouteIncoming),
            _ => None,
        }
    }

    fn flag(self) -> Hooks {
        match self {
            Hook::Authenticate => Hooks::AUTHENTICATE,
            Hook::TransformSubmit => Hooks::TRANSFORM_SUBMIT,
            Hook::Route => Hooks::ROUTE,
            Hook::TransformDeliver => Hooks::TRANSFORM_DELIVER,
            Hook::RouteIncoming => Hooks::ROUTE_INCOMING,
        }
    }
}

/// What the authenticate chain decided.
#[derive(Debug)]
pub enum AuthOutcome {
    Accept(types::Account),
    /// An SMPP command_status for the bind response.
    Reject(CommandStatus),
    /// No plugin had an opinion: system_id and password are the SMSGate credentials.
    Default,
}

/// What the route-incoming chain decided about an incoming SMS.
#[derive(Debug, PartialEq, Eq)]
pub enum IncomingRoute {
    /// No plugin decided: the server's own SIM and device matching applies.
    Default,
    /// Exactly these users get it: account ids among the candidates, without repeats, in the
    /// plugin's order. Empty when the plugin named only users that are not candidates.
    Deliver(Vec<String>),
    /// Nobody gets it; the plugin (by file name) and its reason.
    Drop { plugin: String, reason: String },
}

/// A loaded plugin as operators see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedPlugin {
    /// `NAME` of NAME.wasm, the name logs and metrics use.
    pub file: String,
    /// The name and version the plugin reports.
    pub name: String,
    pub version: String,
    /// The contract version it targets, such as "0.2.0".
    pub contract: &'static str,
    pub order: i64,
    /// The WIT names of the hooks it implements.
    pub hooks: Vec<&'static str>,
}

/// One loaded plugin: its file name (`NAME` of NAME.wasm, used in logs), what it declared, its
/// place in the chain, and its instances.
struct Plugin {
    name: String,
    info: PluginInfo,
    /// The contract version the component targets, such as "0.1.0".
    contract: &'static str,
    order: i64,
    policies: Policies,
    /// Whether the compiled code came from the artifact cache.
    cached: bool,
    instances: Instances,
    failures: FailureLog,
    usage: Usage,
}

impl Plugin {
    fn implements(&self, hook: Hook) -> bool {
        self.info.hooks.contains(hook.flag())
    }

    /// Calls one hook; a failure is logged with the policy that will be applied.
    fn call<R>(
        &self,
        hook: Hook,
        f: impl AsyncFnOnce(&bindings::Plugin, &mut wasmtime::Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<Called<R>, FailurePolicy> {
        let called = self.instances.call(f);
        if let Ok(called) = &called {
            self.usage.succeeded(hook, called.elapsed);
        }
        called.map_err(|failure: Failure| {
            self.usage.failed(hook);
            let policy = self.policies.get(hook);
            if let Some(left_out) = self.failures.admit() {
                warn!(
                    plugin = %self.name,
                    hook = hook.name(),
                    %policy,
                    not_logged_since_last = left_out,
                    "plugin {failure}"
                );
            }
            policy
        })
    }
}

/// A loaded set of plugins in chain order. Its runtime (engine and epoch ticker) lives exactly as
/// long as the set, so a replaced set goes away when its last call finishes.
pub struct Chain {
    plugins: Vec<Plugin>,
    _runtime: Option<Runtime>,
}

impl Chain {
    fn empty() -> Chain {
        Chain {
            plugins: Vec::new(),
            _runtime: None,
        }
    }

    fn new(runtime: Runtime, plugins: Vec<Plugin>) -> Chain {
        Chain {
            plugins,
            _runtime: Some(runtime),
        }
    }

    fn with(&self, hook: Hook) -> impl Iterator<Item = &Plugin> {
        self.plugins.iter().filter(move |p| p.implements(hook))
    }
}

/// The plugin chains of the server. Share it as `Arc<Plugins>`; a reload swaps the whole set at
/// once, and calls already running finish on the set they started with.
pub struct Plugins {
    chain: ArcSwap<Chain>,
    /// Where a reload reads from; `None` for `empty()`, which never reloads.
    config: Option<PluginsConfig>,
}

impl Plugins {
    /// Loads and checks every plugin of `config.dir`; any plugin that is refused fails the load
    /// with its file and the reason. A missing or empty directory gives an empty chain.
    pub fn load(config: &PluginsConfig) -> anyhow::Result<Plugins> {
        let chain = loader::load_set(config)?;
        log_set(&chain, "plugins loaded");
        Ok(Plugins {
            chain: ArcSwap::from_pointee(chain),
            config: Some(config.clone()),
        })
    }

    pub fn empty() -> Plugins {
        Plugins {
            chain: ArcSwap::from_pointee(Chain::empty()),
            config: None,
        }
    }

    /// Whether any loaded plugin implements `hook`, so callers can skip building its input.
    pub fn handles(&self, hook: Hook) -> bool {
        self.chain.load().with(hook).next().is_some()
    }

    /// Loads the directory again and swaps the new set in; when it fails the current set stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let Some(config) = &self.config else {
            return Ok(());
        };
        let chain = loader::load_set(config)?;
        log_set(&chain, "plugins reloaded");
        self.chain.store(Arc::new(chain));
        Ok(())
    }

    /// The plugins in chain order, by file name.
    pub fn names(&self) -> Vec<String> {
        self.chain
            .load()
            .plugins
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }

    /// What each loaded plugin declared, in chain order.
    pub fn loaded(&self) -> Vec<LoadedPlugin> {
        self.chain
            .load()
            .plugins
            .iter()
            .map(|plugin| LoadedPlugin {
                file: plugin.name.clone(),
                name: plugin.info.name.clone(),
                version: plugin.info.version.clone(),
                contract: plugin.contract,
                order: plugin.order,
                hooks: Hook::ALL
                    .into_iter()
                    .filter(|&h| plugin.implements(h))
                    .map(Hook::name)
                    .collect(),
            })
            .collect()
    }

    /// Calls, failures and time of every hook each loaded plugin implements, in chain order.
    pub fn usage(&self) -> Vec<HookUsage> {
        let chain = self.chain.load();
        let mut usage = Vec::new();
        for plugin in &chain.plugins {
            for hook in Hook::ALL.into_iter().filter(|&h| plugin.implements(h)) {
                let (calls, failures, time, latencies) = plugin.usage.of(hook);
                usage.push(HookUsage {
                    plugin: plugin.name.clone(),
                    hook: hook.name(),
                    calls,
                    failures,
                    time,
                    latencies,
                });
            }
        }
        usage
    }

    pub fn authenticate(&self, request: &types::BindRequest) -> AuthOutcome {
        let chain = self.chain.load();
        for plugin in chain.with(Hook::Authenticate) {
            let result = plugin.call(Hook::Authenticate, async |p, store| {
                p.call_authenticate(store, request).await
            });
            match result {
                Ok(called) => {
                    // The account carries credentials: only its id is logged.
                    log_outcome(plugin, Hook::Authenticate, &called, || {
                        match &called.value {
                            types::AuthResult::Accept(account) => format!("accept {}", account.id),
                            types::AuthResult::Reject(status) => format!("reject {status:#04x}"),
                            types::AuthResult::Pass => "pass".into(),
                        }
                    });
                    match called.value {
                        types::AuthResult::Accept(account) => return AuthOutcome::Accept(account),
                        types::AuthResult::Reject(status) => {
                            return AuthOutcome::Reject(CommandStatus(status));
                        }
                        types::AuthResult::Pass => {}
                    }
                }
                Err(FailurePolicy::FailClosed) => return AuthOutcome::Reject(BIND_FAILED),
                Err(FailurePolicy::FailOpen) => {}
            }
        }
        AuthOutcome::Default
    }

    /// The message after every transform, or the command_status of the first reject.
    pub fn transform_submit(
        &self,
        account: &types::Account,
        mut message: types::Message,
    ) -> Result<types::Message, CommandStatus> {
        let chain = self.chain.load();
        for plugin in chain.with(Hook::TransformSubmit) {
            let result = plugin.call(Hook::TransformSubmit, async |p, store| {
                p.call_transform_submit(store, account, &message).await
            });
            match result {
                Ok(called) => {
                    log_outcome(plugin, Hook::TransformSubmit, &called, || {
                        match &called.value {
                            types::TransformResult::Continue => "continue".to_string(),
                            types::TransformResult::Replace(_) => "replace".into(),
                            types::TransformResult::Reject(status) => {
                                format!("reject {status:#04x}")
                            }
                        }
                    });
                    match called.value {
                        types::TransformResult::Continue => {}
                        types::TransformResult::Replace(next) => message = next,
                        types::TransformResult::Reject(status) => {
                            return Err(CommandStatus(status));
                        }
                    }
                }
                Err(FailurePolicy::FailClosed) => return Err(SYSTEM_ERROR),
                Err(FailurePolicy::FailOpen) => {}
            }
        }
        Ok(message)
    }

    /// The first routing decision, `None` when every plugin said continue, or a reject status.
    pub fn route(
        &self,
        account: &types::Account,
        message: &types::Message,
    ) -> Result<Option<types::RouteDecision>, CommandStatus> {
        let chain = self.chain.load();
        for plugin in chain.with(Hook::Route) {
            let result = plugin.call(Hook::Route, async |p, store| {
                p.call_route(store, account, message).await
            });
            match result {
                Ok(called) => {
                    log_outcome(plugin, Hook::Route, &called, || match &called.value {
                        types::RouteResult::Continue => "continue".to_string(),
                        types::RouteResult::Route(decision) => format!(
                            "route device={:?} sim={:?} priority={:?}",
                            decision.device_id, decision.sim_number, decision.priority
                        ),
                        types::RouteResult::Reject(status) => format!("reject {status:#04x}"),
                    });
                    match called.value {
                        types::RouteResult::Continue => {}
                        types::RouteResult::Route(decision) => return Ok(Some(decision)),
                        types::RouteResult::Reject(status) => return Err(CommandStatus(status)),
                    }
                }
                Err(FailurePolicy::FailClosed) => return Err(SYSTEM_ERROR),
                Err(FailurePolicy::FailOpen) => {}
            }
        }
        Ok(None)
    }

    /// The deliver_sm to send after every transform, or `None` when a plugin dropped it (or a
    /// fail-closed plugin failed).
    pub fn transform_deliver(
        &self,
        account: &types::Account,
        mut deliver: types::Deliver,
    ) -> Option<types::Deliver> {
        let chain = self.chain.load();
        for plugin in chain.with(Hook::TransformDeliver) {
            let result = plugin.call(Hook::TransformDeliver, async |p, store| {
                p.call_transform_deliver(store, account, &deliver).await
            });
            match result {
                Ok(called) => {
                    log_outcome(plugin, Hook::TransformDeliver, &called, || {
                        match &called.value {
                            types::DeliverResult::Continue => "continue",
                            types::DeliverResult::Replace(_) => "replace",
                            types::DeliverResult::Drop => "drop",
                        }
                        .to_string()
                    });
                    match called.value {
                        types::DeliverResult::Continue => {}
                        types::DeliverResult::Replace(next) => deliver = next,
                        types::DeliverResult::Drop => return None,
                    }
                }
                Err(FailurePolicy::FailClosed) => return None,
                Err(FailurePolicy::FailOpen) => {}
            }
        }
        Some(deliver)
    }

    /// Who gets an incoming SMS, asked of the route-incoming plugins with the users of its
    /// SMSGate account the server knows (`candidates`).
    ///
    /// A failure never drops the SMS: fail-open asks the next plugin, fail-closed ends the
    /// chain with the server's own matching. Dropping is a decision only a working plugin can
    /// make; a plugin that traps on some SMS would otherwise make them vanish without any user
    /// seeing them, where the default matching at worst delivers one to the users that would
    /// have had it without the plugin.
    pub fn route_incoming(
        &self,
        incoming: &types::IncomingSms,
        candidates: &[types::Account],
    ) -> IncomingRoute {
        let chain = self.chain.load();
        for plugin in chain.with(Hook::RouteIncoming) {
            let result = plugin.call(Hook::RouteIncoming, async |p, store| {
                p.call_route_incoming(store, incoming, candidates).await
            });
            match result {
                Ok(called) => {
                    log_outcome(plugin, Hook::RouteIncoming, &called, || {
                        match &called.value {
                            types::RouteIncomingResult::Continue => "continue".to_string(),
                            types::RouteIncomingResult::Deliver(users) => {
                                format!("deliver {users:?}")
                            }
                            types::RouteIncomingResult::Drop(reason) => format!("drop {reason:?}"),
                        }
                    });
                    match called.value {
                        types::RouteIncomingResult::Continue => {}
                        types::RouteIncomingResult::Deliver(users) => {
                            return IncomingRoute::Deliver(known_users(plugin, users, candidates));
                        }
                        types::RouteIncomingResult::Drop(reason) => {
                            return IncomingRoute::Drop {
                                plugin: plugin.name.clone(),
                                reason,
                            };
                        }
                    }
                }
                Err(FailurePolicy::FailClosed) => return IncomingRoute::Default,
                Err(FailurePolicy::FailOpen) => {}
            }
        }
        IncomingRoute::Default
    }
}

/// The users of a deliver answer that are candidates, each once; the others are logged, since
/// they are a mistake in the plugin or its configuration (or a user that has not bound since
/// the server started).
fn known_users(plugin: &Plugin, users: Vec<String>, candidates: &[types::Account]) -> Vec<String> {
    let mut known: Vec<String> = Vec::with_capacity(users.len());
    let mut unknown: Vec<String> = Vec::new();
    for user in users {
        if known.contains(&user) || unknown.contains(&user) {
            continue;
        }
        if candidates.iter().any(|c| c.id == user) {
            known.push(user);
        } else {
            unknown.push(user);
        }
    }
    if !unknown.is_empty() {
        warn!(
            plugin = %plugin.name,
            hook = Hook::RouteIncoming.name(),
            ?unknown,
            candidates = ?candidates.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            "route-incoming named users that are not candidates; ignored"
        );
    }
    known
}

/// The outcome text is built only when debug logging is on: this runs on every submit.
fn log_outcome<R>(
    plugin: &Plugin,
    hook: Hook,
    called: &Called<R>,
    outcome: impl FnOnce() -> String,
) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    debug!(
        plugin = %plugin.name,
        hook = hook.name(),
        outcome = outcome(),
        micros = called.elapsed.as_micros() as u64,
        "plugin hook"
    );
}

fn log_set(chain: &Chain, what: &str) {
    let names: Vec<&str> = chain.plugins.iter().map(|p| p.name.as_str()).collect();
    let cached = chain.plugins.iter().filter(|p| p.cached).count();
    info!(plugins = ?names, from_cache = cached, "{what}");
}
