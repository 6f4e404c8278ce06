//! The contract versions this host loads, one module of generated bindings each (`v0_1_0`,
//! `v0_2_0`), and the one face the rest of the server sees: [`PluginPre`] and [`Plugin`] speak
//! the latest contract's types whatever version a component targets. A component built
//! against an older version is checked against that version's world, so it loads exactly as
//! it did with a server of its own time; its arguments and answers are converted at this
//! boundary. A new contract version adds a module here, becomes `latest`, and the previous
//! one gains conversions; nothing outside this module changes for that.

pub mod v0_1_0;
pub mod v0_2_0;

pub use v0_2_0 as latest;

use anyhow::anyhow;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use self::latest::smsgate::smpp_plugin::types::{
    Account, AuthResult, BindRequest, Deliver, DeliverResult, IncomingSms, Message, PluginInfo,
    RouteIncomingResult, RouteResult, TransformResult,
};
use self::v0_1_0::Convert;
use super::runtime::HostState;

/// The contract's package; a component says which version it targets by importing its
/// interfaces at that version.
const PACKAGE: &str = "smsgate:smpp-plugin";
/// The versions loaded, newest first.
const VERSIONS: [&str; 2] = ["0.2.0", "0.1.0"];

/// Makes the host interfaces of every loaded contract version available to components.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v0_1_0::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    v0_2_0::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

/// A component checked against the contract version it targets, ready to instantiate.
pub enum PluginPre {
    V0_1_0(v0_1_0::PluginPre<HostState>),
    V0_2_0(v0_2_0::PluginPre<HostState>),
}

impl PluginPre {
    /// Checks `component`'s imports and exports against the world of the contract version it
    /// imports the host interfaces of. A component that imports none of them (so no version
    /// can be told) is checked against the latest; the error names the version checked.
    pub fn new(linker: &Linker<HostState>, component: &Component) -> anyhow::Result<PluginPre> {
        let version = targeted_version(linker.engine(), component);
        let checked = version.clone().unwrap_or_else(|| VERSIONS[0].to_owned());
        let pre = linker.instantiate_pre(component);
        let result = match checked.as_str() {
            "0.1.0" => pre.and_then(v0_1_0::PluginPre::new).map(PluginPre::V0_1_0),
            "0.2.0" => pre.and_then(v0_2_0::PluginPre::new).map(PluginPre::V0_2_0),
            other => {
                return Err(anyhow!(
                    "targets the {PACKAGE}@{other} contract, which this server does not load \
                     (it loads {})",
                    VERSIONS.join(", ")
                ));
            }
        };
        result.map_err(|e| match (version, unprovided_import(&format!("{e:#}"))) {
            (_, Some(interface)) => anyhow!("{}", refusal_of_import(&interface)),
            (Some(_), None) => anyhow!("does not match the {PACKAGE}@{checked} contract: {e:#}"),
            (None, None) => anyhow!(
                "does not match the {PACKAGE}@{checked} contract (it imports no {PACKAGE} \
                 interface, so no other version applies): {e:#}"
            ),
        })
    }

    /// The contract version the component targets.
    pub fn version(&self) -> &'static str {
        match self {
            PluginPre::V0_1_0(_) => "0.1.0",
            PluginPre::V0_2_0(_) => "0.2.0",
        }
    }

    pub fn engine(&self) -> &Engine {
        match self {
            PluginPre::V0_1_0(pre) => pre.engine(),
            PluginPre::V0_2_0(pre) => pre.engine(),
        }
    }

    pub async fn instantiate_async(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Plugin> {
        Ok(match self {
            PluginPre::V0_1_0(pre) => Plugin::V0_1_0(pre.instantiate_async(store).await?),
            PluginPre::V0_2_0(pre) => Plugin::V0_2_0(pre.instantiate_async(store).await?),
        })
    }
}

/// The interface a component imports that the linker does not provide, from wasmtime's
/// "component imports instance `NAME`, but a matching implementation was not found" error.
fn unprovided_import(error: &str) -> Option<String> {
    let (_, rest) = error.split_once("imports instance `")?;
    let (interface, _) = rest.split_once('`')?;
    Some(interface.to_owned())
}

/// Why an import is refused and how an author avoids it: language toolchains add WASI imports
/// by default that a plugin does not need and the server does not offer.
fn refusal_of_import(interface: &str) -> String {
    let offered = "plugins get the smsgate:smpp-plugin host interface and WASI 0.2, where \
                   files, environment and stdio are reachable only as granted in NAME.toml and \
                   the network never";
    let avoid = if interface.starts_with("wasi:http/") {
        "plugins never get network access. componentize-js imports it unless built with \
         disableFeatures: ['http', 'fetch-event'] (all of ['random', 'stdio', 'clocks', \
         'http', 'fetch-event'] gives a component that imports no WASI at all); in Rust, do \
         not depend on an HTTP client"
    } else if interface.starts_with(PACKAGE) {
        "build against one of the contracts in wit/ of this server's version"
    } else {
        "build the plugin without the feature that imports it"
    };
    format!("imports {interface}, which the server does not provide: {avoid} ({offered})")
}

/// The version of the first `smsgate:smpp-plugin/…@VERSION` import; wit-bindgen guests import
/// the `types` interface whenever an export uses its types, which `describe` always does.
fn targeted_version(engine: &Engine, component: &Component) -> Option<String> {
    component
        .component_type()
        .imports(engine)
        .find_map(|(name, _)| {
            let (interface, version) = name.strip_prefix(PACKAGE)?.split_once('@')?;
            interface.starts_with('/').then(|| version.to_owned())
        })
}

/// An instance of a plugin, of whichever contract version; every call takes and returns the
/// latest types.
pub enum Plugin {
    V0_1_0(v0_1_0::Plugin),
    V0_2_0(v0_2_0::Plugin),
}

impl Plugin {
    pub async fn call_describe(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<PluginInfo> {
        match self {
            Plugin::V0_1_0(p) => Ok(p.call_describe(store).await?.convert()),
            Plugin::V0_2_0(p) => p.call_describe(store).await,
        }
    }

    pub async fn call_authenticate(
        &self,
        store: &mut Store<HostState>,
        request: &BindRequest,
    ) -> wasmtime::Result<AuthResult> {
        match self {
            Plugin::V0_1_0(p) => Ok(p
                .call_authenticate(store, &request.clone().convert())
                .await?
                .convert()),
            Plugin::V0_2_0(p) => p.call_authenticate(store, request).await,
        }
    }

    pub async fn call_transform_submit(
        &self,
        store: &mut Store<HostState>,
        account: &Account,
        message: &Message,
    ) -> wasmtime::Result<TransformResult> {
        match self {
            Plugin::V0_1_0(p) => Ok(p
                .call_transform_submit(
                    store,
                    &account.clone().convert(),
                    &message.clone().convert(),
                )
                .await?
                .convert()),
            Plugin::V0_2_0(p) => p.call_transform_submit(store, account, message).await,
        }
    }

    pub async fn call_route(
        &self,
        store: &mut Store<HostState>,
        account: &Account,
        message: &Message,
    ) -> wasmtime::Result<RouteResult> {
        match self {
            Plugin::V0_1_0(p) => Ok(p
                .call_route(
                    store,
                    &account.clone().convert(),
                    &message.clone().convert(),
                )
                .await?
                .convert()),
            Plugin::V0_2_0(p) => p.call_route(store, account, message).await,
        }
    }

    pub async fn call_transform_deliver(
        &self,
        store: &mut Store<HostState>,
        account: &Account,
        deliver: &Deliver,
    ) -> wasmtime::Result<DeliverResult> {
        match self {
            Plugin::V0_1_0(p) => Ok(p
                .call_transform_deliver(
                    store,
                    &account.clone().convert(),
                    &deliver.clone().convert(),
                )
                .await?
                .convert()),
            Plugin::V0_2_0(p) => p.call_transform_deliver(store, account, deliver).await,
        }
    }

    pub async fn call_route_incoming(
        &self,
        store: &mut Store<HostState>,
        incoming: &IncomingSms,
        candidates: &[Account],
    ) -> wasmtime::Result<RouteIncomingResult> {
        match self {
            // A 0.1.0 component cannot declare route-incoming (its describe converts without
            // the flag), so the chain never asks it; were it asked, it has no opinion.
            Plugin::V0_1_0(_) => Ok(RouteIncomingResult::Continue),
            Plugin::V0_2_0(p) => p.call_route_incoming(store, incoming, candidates).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_import_is_named_with_how_to_avoid_it() {
        let error = "component imports instance `wasi:http/types@0.2.3`, but a matching \
                     implementation was not found in the linker";
        let interface = unprovided_import(error).unwrap();
        assert_eq!(interface, "wasi:http/types@0.2.3");
        let refusal = refusal_of_import(&interface);
        for part in [
            "imports wasi:http/types@0.2.3",
            "disableFeatures",
            "'fetch-event'",
        ] {
            assert!(refusal.contains(part), "{part:?} missing in {refusal}");
        }
        assert_eq!(
            unprovided_import("export `describe` has the wrong type"),
            None
        );
    }
}
