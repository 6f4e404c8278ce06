//! Write policy plugins for the smsgate-smpp server in Rust.
//!
//! A plugin is a WebAssembly component that the server loads at start-up (and on reload) and
//! calls at fixed points of its two flows:
//!
//! | hook | when | typical use |
//! |---|---|---|
//! | [`Plugin::authenticate`] | an ESME binds | own user table, IP allow-lists, per-user SMSGate accounts |
//! | [`Plugin::transform_submit`] | a submit_sm / data_sm / submit_multi was decoded | number normalisation, content rules, labels |
//! | [`Plugin::route`] | after the transforms | choose device, SIM, priority or SMSGate credentials |
//! | [`Plugin::transform_deliver`] | before a receipt or incoming SMS goes to the ESME | rewrite or drop |
//!
//! Implement [`Plugin`] on a type, list the hooks it implements in [`Plugin::HOOKS`] and hand
//! the type to [`register_plugin!`]. Everything else (the component exports, `describe`, one
//! instance of your type per plugin instance) is generated. The plugin crate needs no
//! dependency besides this one.
//!
//! ```
//! use smsgate_plugin_sdk::{
//!     config, log, phone, status, register_plugin, Account, Hook, Message, Plugin,
//!     TransformResult,
//! };
//!
//! /// Rewrites every destination to E.164 and refuses numbers that cannot be read.
//! struct NormaliseNumbers {
//!     country: String,
//! }
//!
//! impl Plugin for NormaliseNumbers {
//!     const HOOKS: &'static [Hook] = &[Hook::TransformSubmit];
//!
//!     fn new() -> Self {
//!         let country = config::get("default_country").unwrap_or_else(|| "DE".to_owned());
//!         NormaliseNumbers { country }
//!     }
//!
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
//! use smsgate_plugin_sdk::testing;
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
//! linker, nothing else is needed):
//!
//! ```text
//! rustup target add wasm32-wasip2
//! cargo build --target wasm32-wasip2 --release
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
mod ext;
mod host;

pub mod config;
pub mod log;
pub mod phone;
pub mod status;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod text;

pub use bindings::smsgate::smpp_plugin::types::{
    Account, AccountLimits, Address, AuthResult, BasicCredentials, BinaryContent, BindRequest,
    BindType, Content, Credentials, Deliver, DeliverKind, DeliverResult, Message, RouteDecision,
    RouteResult, Tlv, TransformResult, Validity,
};

/// Wall-clock time as Unix milliseconds, as the server sees it.
///
/// Natively (in tests) this is the time set with [`testing::set_now`], or the system clock when
/// none was set.
pub fn now_millis() -> i64 {
    host::now_millis()
}

/// The points of the server's flows a plugin can take part in.
///
/// A plugin lists the hooks it implements in [`Plugin::HOOKS`]; the server calls only those,
/// so a hook that is implemented but not listed is never called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hook {
    /// [`Plugin::authenticate`], on every bind.
    Authenticate,
    /// [`Plugin::transform_submit`], on every message an ESME submits.
    TransformSubmit,
    /// [`Plugin::route`], on every message an ESME submits, after the transforms.
    Route,
    /// [`Plugin::transform_deliver`], on every receipt and incoming SMS sent to an ESME.
    TransformDeliver,
}

impl Hook {
    fn flag(self) -> bindings::smsgate::smpp_plugin::types::Hooks {
        use bindings::smsgate::smpp_plugin::types::Hooks;
        match self {
            Hook::Authenticate => Hooks::AUTHENTICATE,
            Hook::TransformSubmit => Hooks::TRANSFORM_SUBMIT,
            Hook::Route => Hooks::ROUTE,
            Hook::TransformDeliver => Hooks::TRANSFORM_DELIVER,
        }
    }
}

/// A policy plugin: implement the hooks you need, list them in [`HOOKS`](Plugin::HOOKS) and
/// pass the type to [`register_plugin!`].
///
/// # Chains
///
/// Operators can load several plugins; for each hook the server asks them in the order of
/// their `order` setting, lowest first. An answer that has no opinion (`Pass`, `Continue`) hands over to the
/// next plugin; a final answer (accept, reject, route, drop) ends the chain; a replacement
/// (`Replace`) is what the next plugin receives.
///
/// # Failures
///
/// A hook call fails when the plugin panics, runs past its time budget (`timeout`, or `fuel`
/// when set) or needs more than its `memory` limit. The instance is then discarded and the
/// `failure_policy` in the plugin's NAME.toml decides what the call counts as:
///
/// * `fail-open`: as if the hook had no opinion (`Pass` or `Continue`);
/// * `fail-closed`: a bind is refused with [`status::ESME_RBINDFAIL`], a message with
///   [`status::ESME_RSYSERR`] (which ESMEs retry later), and a receipt or incoming SMS is
///   dropped.
///
/// Unless the operator says otherwise, `authenticate` fails closed and the other hooks fail
/// open. The panic message goes to the server's log. Prefer an explicit `Reject` with a fitting
/// [`status`] over a panic: it is cheaper and tells the ESME what went wrong.
pub trait Plugin: Sized + 'static {
    /// The hooks this plugin implements; the server calls only these.
    const HOOKS: &'static [Hook];

    /// Creates the plugin's state, once per plugin instance, right before that instance's
    /// first hook call. The configuration is available here through [`config`].
    ///
    /// A panic here fails the hook call that triggered it (see [Failures](Plugin#failures)), and
    /// the next call tries again; so rather than panicking on a bad setting, log it with
    /// [`log::warn`] and fall back to something safe.
    fn new() -> Self;

    /// Decides whether an ESME may bind, and for which SMSGate account.
    ///
    /// Called for every bind_transmitter, bind_receiver and bind_transceiver, before the
    /// server answers it.
    ///
    /// * [`AuthResult::Accept`]: the bind succeeds and the session acts for the given account
    ///   (its credentials, defaults, limits and labels).
    /// * [`AuthResult::Reject`]: the bind fails with that status, usually
    ///   [`status::ESME_RINVPASWD`], [`status::ESME_RINVSYSID`] or [`status::ESME_RBINDFAIL`].
    /// * [`AuthResult::Pass`] (the default): no opinion; the next plugin decides, and when all
    ///   pass the system_id and password are used as SMSGate credentials.
    fn authenticate(&mut self, request: BindRequest) -> AuthResult {
        let _ = request;
        AuthResult::Pass
    }

    /// Checks or rewrites a message an ESME submitted, before it is routed and sent.
    ///
    /// Called once per message (after the parts of a concatenated message were joined) with
    /// the account of the session that submitted it.
    ///
    /// * [`TransformResult::Continue`] (the default): the message goes on unchanged.
    /// * [`TransformResult::Replace`]: the given message goes on instead; later plugins, the
    ///   router and the gateway see it. Set labels here to pass decisions along.
    /// * [`TransformResult::Reject`]: the ESME gets that status in the response, for example
    ///   [`status::ESME_RINVDSTADR`] or [`status::ESME_RSUBMITFAIL`]; nothing is sent.
    fn transform_submit(&mut self, account: &Account, message: Message) -> TransformResult {
        let _ = (account, message);
        TransformResult::Continue
    }

    /// Chooses how a message is sent: device, SIM slot, SMSGate priority or credentials.
    ///
    /// Called once per message, after every transform.
    ///
    /// * [`RouteResult::Continue`] (the default): no opinion; the next plugin decides, and
    ///   when none does, the account's defaults apply.
    /// * [`RouteResult::Route`]: send as the decision says; fields left `None` keep the
    ///   account's defaults.
    /// * [`RouteResult::Reject`]: the ESME gets that status (for example
    ///   [`status::ESME_RINVDSTADR`] when no route exists for the destination).
    fn route(&mut self, account: &Account, message: &Message) -> RouteResult {
        let _ = (account, message);
        RouteResult::Continue
    }

    /// Checks or rewrites what the server is about to send to an ESME as deliver_sm: a
    /// delivery receipt or an SMS a phone received.
    ///
    /// Called with the account the ESME is bound as, before each delivery.
    ///
    /// * [`DeliverResult::Continue`] (the default): delivered unchanged.
    /// * [`DeliverResult::Replace`]: the given deliver_sm is sent instead.
    /// * [`DeliverResult::Drop`]: not delivered at all; the server treats it as handled.
    fn transform_deliver(&mut self, account: &Account, deliver: Deliver) -> DeliverResult {
        let _ = (account, deliver);
        DeliverResult::Continue
    }
}

/// Turns a [`Plugin`] type into the plugin component: generates the exports the server calls,
/// including `describe` with this crate's package name and version and the plugin's
/// [`HOOKS`](Plugin::HOOKS).
///
/// Use it once, at the top level of the plugin crate:
///
/// ```
/// # use smsgate_plugin_sdk::{register_plugin, Hook, Plugin};
/// struct Quiet;
/// impl Plugin for Quiet {
///     const HOOKS: &'static [Hook] = &[];
///     fn new() -> Self {
///         Quiet
///     }
/// }
/// register_plugin!(Quiet);
/// ```
///
/// The exports exist only when compiling for `wasm32`; natively the macro only type-checks,
/// so the same crate builds and tests on the host.
#[macro_export]
macro_rules! register_plugin {
    ($plugin:ty) => {
        const _: () = {
            ::std::thread_local! {
                // One value per wasm instance: wasm has a single thread, so this is the
                // instance's global, created by the first hook call.
                static INSTANCE: ::core::cell::RefCell<::core::option::Option<$plugin>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            // Only the wasm exports construct it.
            #[allow(dead_code)]
            struct Export;

            impl $crate::__private::Guest for Export {
                fn describe() -> $crate::__private::PluginInfo {
                    $crate::__private::describe::<$plugin>(
                        ::core::env!("CARGO_PKG_NAME"),
                        ::core::env!("CARGO_PKG_VERSION"),
                    )
                }

                fn authenticate(request: $crate::BindRequest) -> $crate::AuthResult {
                    $crate::__private::call(&INSTANCE, |plugin: &mut $plugin| {
                        $crate::Plugin::authenticate(plugin, request)
                    })
                }

                fn transform_submit(
                    account: $crate::Account,
                    message: $crate::Message,
                ) -> $crate::TransformResult {
                    $crate::__private::call(&INSTANCE, |plugin: &mut $plugin| {
                        $crate::Plugin::transform_submit(plugin, &account, message)
                    })
                }

                fn route(
                    account: $crate::Account,
                    message: $crate::Message,
                ) -> $crate::RouteResult {
                    $crate::__private::call(&INSTANCE, |plugin: &mut $plugin| {
                        $crate::Plugin::route(plugin, &account, &message)
                    })
                }

                fn transform_deliver(
                    account: $crate::Account,
                    deliver: $crate::Deliver,
                ) -> $crate::DeliverResult {
                    $crate::__private::call(&INSTANCE, |plugin: &mut $plugin| {
                        $crate::Plugin::transform_deliver(plugin, &account, deliver)
                    })
                }
            }

            #[cfg(target_arch = "wasm32")]
    $crate::__private::export!(Export with_types_in $crate::__private);
        };
    };
}

/// What [`register_plugin!`] expands to needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    use std::cell::RefCell;
    use std::thread::LocalKey;

    pub use crate::bindings::smsgate::smpp_plugin::types::{Hooks, PluginInfo};
    pub use crate::bindings::*;

    use crate::{Hook, Plugin};

    /// The `describe` answer for plugin type `P` built by package `name` at `version`.
    pub fn describe<P: Plugin>(name: &str, version: &str) -> PluginInfo {
        install_panic_hook();
        PluginInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            hooks: P::HOOKS
                .iter()
                .fold(Hooks::empty(), |hooks, &hook| hooks | Hook::flag(hook)),
        }
    }

    /// Runs `hook` on the instance's plugin value, creating it on first use.
    pub fn call<P: Plugin, R>(
        instance: &'static LocalKey<RefCell<Option<P>>>,
        hook: impl FnOnce(&mut P) -> R,
    ) -> R {
        install_panic_hook();
        instance.with(|slot| {
            let mut slot = slot.borrow_mut();
            hook(slot.get_or_insert_with(P::new))
        })
    }

    /// Sends panic messages to the server's log: the component's stderr is usually not
    /// connected, and a trap alone does not say what went wrong.
    fn install_panic_hook() {
        #[cfg(target_arch = "wasm32")]
        {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                std::panic::set_hook(Box::new(|info| {
                    crate::log::error(&info.to_string());
                }));
            });
        }
    }
}
