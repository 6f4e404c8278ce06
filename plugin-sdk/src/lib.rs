//! Write policy plugins for the smsgate-smpp server in Rust.
//!
//! A plugin is a WebAssembly component that the server loads at start-up (and on reload) and
//! calls at fixed points of its two flows:
//!
//! | hook trait | when | typical use |
//! |---|---|---|
//! | [`Authenticate`] | an ESME binds | own user table, IP allow-lists, per-user SMSGate accounts |
//! | [`TransformSubmit`] | a submit_sm / data_sm / submit_multi was decoded | number normalisation, content rules, labels |
//! | [`Route`] | after the transforms | choose device, SIM, priority or SMSGate credentials |
//! | [`TransformDeliver`] | before a receipt or incoming SMS goes to the ESME | rewrite or drop |
//! | [`RouteIncoming`] | an SMS a phone received is about to go to the SMPP users of its SMSGate account | pick the users, or drop it |
//!
//! Implement [`Plugin`] (its only method, [`Plugin::new`], creates the plugin's state) and the
//! hook traits you need on a type, and hand the type to [`register_plugin!`]. The macro finds
//! at compile time which hook traits the type implements and generates everything else: the
//! component exports, `describe` announcing exactly those hooks, one value of your type per
//! plugin instance. There is no list of hooks to keep in step with the code, so a hook cannot
//! be implemented and then never called. The plugin crate needs no dependency besides this
//! one.
//!
//! ```
//! use smsgate_plugin_sdk::{
//!     config, log, phone, status, register_plugin, Account, Message, Plugin, TransformResult,
//!     TransformSubmit,
//! };
//!
//! /// Rewrites every destination to E.164 and refuses numbers that cannot be read.
//! struct NormaliseNumbers {
//!     country: String,
//! }
//!
//! impl Plugin for NormaliseNumbers {
//!     fn new() -> Self {
//!         let country = config::get("default_country").unwrap_or_else(|| "DE".to_owned());
//!         NormaliseNumbers { country }
//!     }
//! }
//!
//! impl TransformSubmit for NormaliseNumbers {
//!     fn transform_submit(&mut self, account: &Account, mut message: Message) -> TransformResult {
//!         for destination in &mut message.destinations {
//!             match phone::address_to_e164(destination, &self.country) {
//!                 Ok(e164) => {
//!                     destination.addr = e164.trim_start_matches('+').to_owned();
//!                     destination.ton = 1;
//!                     destination.npi = 1;
//!                 }
//!                 Err(err) => {
//!                     log::info(&format!("{}: {}: {err}", account.id, destination.addr));
//!                     return TransformResult::Reject(status::ESME_RINVDSTADR);
//!                 }
//!             }
//!         }
//!         TransformResult::Replace(message)
//!     }
//! }
//!
//! register_plugin!(NormaliseNumbers);
//!
//! // The same logic, tested natively with `cargo test`:
//! use smsgate_plugin_sdk::{plugin_hooks, testing, Hook};
//!
//! assert_eq!(plugin_hooks!(NormaliseNumbers), [Hook::TransformSubmit]);
//!
//! testing::set_config(&[("default_country", "GB")]);
//! let mut plugin = NormaliseNumbers::new();
//! let account = testing::account("acme");
//!
//! let result = plugin.transform_submit(&account, testing::message("ACME", "07911 123456", "hi"));
//! let TransformResult::Replace(message) = result else { panic!("{result:?}") };
//! assert_eq!(message.destinations[0].addr, "447911123456");
//!
//! let result = plugin.transform_submit(&account, testing::message("ACME", "call me", "hi"));
//! assert_eq!(result, TransformResult::Reject(status::ESME_RINVDSTADR));
//! assert_eq!(testing::logs().len(), 1);
//! ```
//!
//! Build the component with plain cargo (the `wasm32-wasip2` target ships the component
//! linker, nothing else is needed), with a profile that optimises for size, as the bundled
//! plugins do (`--profile wasm` in this repository's workspace; a plugin crate of its own can
//! put the same settings in `[profile.release]` and build with `--release`):
//!
//! ```text
//! rustup target add wasm32-wasip2
//! cargo build --target wasm32-wasip2 --profile wasm
//! ```
//!
//! ```toml
//! [profile.wasm]
//! inherits = "release"
//! opt-level = "s"
//! lto = true
//! codegen-units = 1
//! debug = false
//! strip = true
//! ```
//!
//! # Testing without wasm
//!
//! When the crate is compiled for anything but `wasm32`, the host functions ([`log`],
//! [`config`], [`now_millis`]) talk to a per-thread fake host instead of the server; the
//! [`testing`] module sets its configuration and clock, reads the logged lines and builds
//! inputs. `cargo test` runs each test on its own thread, so tests do not see each other's
//! configuration.
//!
//! # Instances and state
//!
//! The server may run several instances of a plugin at once (for example one per worker) and
//! replaces an instance after it failed or when the plugin is reloaded. Each instance creates
//! its own value of your type with [`Plugin::new`] before its first hook call. Keep caches in
//! the value if they help, but never rely on state surviving or being shared.

#![warn(missing_docs)]

mod bindings;
mod export;
mod ext;
mod host;
mod plugin;

pub mod config;
pub mod log;
pub mod phone;
pub mod status;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod text;

pub use plugin::{
    Authenticate, Hook, Plugin, Route, RouteIncoming, TransformDeliver, TransformSubmit,
};

pub use bindings::smsgate::smpp_plugin::types::{
    Account, AccountLimits, Address, AuthResult, BasicCredentials, BinaryContent, BindRequest,
    BindType, Content, Credentials, Deliver, DeliverKind, DeliverResult, IncomingSms, Message,
    RouteDecision, RouteIncomingResult, RouteResult, Tlv, TransformResult, Validity,
};

/// Wall-clock time as Unix milliseconds, as the server sees it.
///
/// Natively (in tests) this is the time set with [`testing::set_now`], or the system clock when
/// none was set.
pub fn now_millis() -> i64 {
    host::now_millis()
}

/// What [`register_plugin!`] and [`plugin_hooks!`] expand to needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::smsgate::smpp_plugin::types::PluginInfo;
    pub use crate::bindings::*;
    pub use crate::export::{HookTable, Probe, probe};
}
