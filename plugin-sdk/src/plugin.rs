//! The traits a plugin implements and the macros that turn it into a component.

use crate::{
    Account, AuthResult, BindRequest, Deliver, DeliverResult, IncomingSms, Message,
    RouteIncomingResult, RouteResult, TransformResult,
};

/// A policy plugin: its state, created once per plugin instance.
///
/// Implement it, then the hook traits for the points where the plugin takes part
/// ([`Authenticate`], [`TransformSubmit`], [`Route`], [`TransformDeliver`],
/// [`RouteIncoming`]), and pass the type to [`register_plugin!`](crate::register_plugin!). The server calls exactly the hooks whose
/// traits the type implements.
///
/// Hooks are methods of their own traits and never of this one, so a hook cannot be written
/// where the server would not see it:
///
/// ```compile_fail,E0407
/// use smsgate_plugin_sdk::{Account, Message, Plugin, RouteResult};
///
/// struct Router;
///
/// impl Plugin for Router {
///     fn new() -> Self {
///         Router
///     }
///
///     fn route(&mut self, _account: &Account, _message: &Message) -> RouteResult {
///         RouteResult::Continue
///     }
/// }
/// ```
///
/// # Chains
///
/// Operators can load several plugins; for each hook the server asks them in the order of
/// their `order` setting, lowest first. An answer that has no opinion (`Pass`, `Continue`)
/// hands over to the next plugin; a final answer (accept, reject, route, drop) ends the chain;
/// a replacement (`Replace`) is what the next plugin receives. A plugin that does not implement
/// a hook is skipped for it, as if it had no opinion.
///
/// # Failures
///
/// A hook call fails when the plugin panics, runs past its time budget (`timeout`, or `fuel`
/// when set) or needs more than its `memory` limit. The instance is then discarded and the
/// `failure_policy` in the plugin's NAME.toml decides what the call counts as:
///
/// * `fail-open`: as if the hook had no opinion (`Pass` or `Continue`);
/// * `fail-closed`: a bind is refused with [`status::ESME_RBINDFAIL`], a message with
///   [`status::ESME_RSYSERR`] (which ESMEs retry later), a receipt or incoming SMS is
///   dropped by transform-deliver, and route-incoming leaves the choice of users to the
///   server's SIM and device matching (a failure never drops an incoming SMS).
///
/// Unless the operator says otherwise, `authenticate` fails closed and the other hooks fail
/// open. The panic message goes to the server's log. Prefer an explicit `Reject` with a fitting
/// [`status`] over a panic: it is cheaper and tells the ESME what went wrong.
///
/// [`status`]: crate::status
/// [`status::ESME_RBINDFAIL`]: crate::status::ESME_RBINDFAIL
/// [`status::ESME_RSYSERR`]: crate::status::ESME_RSYSERR
pub trait Plugin: Sized + 'static {
    /// Creates the plugin's state, once per plugin instance, right before that instance's
    /// first hook call. The configuration is available here through [`config`](crate::config).
    ///
    /// A panic here fails the hook call that triggered it (see [Failures](Plugin#failures)), and
    /// the next call tries again; so rather than panicking on a bad setting, log it with
    /// [`log::warn`](crate::log::warn) and fall back to something safe.
    fn new() -> Self;
}

/// The `authenticate` hook: decides whether an ESME may bind, and for which SMSGate account.
///
/// ```
/// use smsgate_plugin_sdk::{
///     register_plugin, status, testing, AuthResult, Authenticate, BindRequest, Plugin,
/// };
///
/// /// Refuses binds over plain TCP and leaves the rest to the next plugin.
/// struct TlsOnly;
///
/// impl Plugin for TlsOnly {
///     fn new() -> Self {
///         TlsOnly
///     }
/// }
///
/// impl Authenticate for TlsOnly {
///     fn authenticate(&mut self, request: BindRequest) -> AuthResult {
///         match request.tls {
///             true => AuthResult::Pass,
///             false => AuthResult::Reject(status::ESME_RBINDFAIL),
///         }
///     }
/// }
///
/// register_plugin!(TlsOnly);
///
/// let result = TlsOnly::new().authenticate(testing::bind_request("alice", "secret"));
/// assert_eq!(result, AuthResult::Reject(status::ESME_RBINDFAIL));
/// ```
pub trait Authenticate: Plugin {
    /// Called for every bind_transmitter, bind_receiver and bind_transceiver, before the
    /// server answers it.
    ///
    /// * [`AuthResult::Accept`]: the bind succeeds and the session acts for the given account
    ///   (its credentials, defaults, limits and labels).
    /// * [`AuthResult::Reject`]: the bind fails with that status, usually
    ///   [`status::ESME_RINVPASWD`], [`status::ESME_RINVSYSID`] or
    ///   [`status::ESME_RBINDFAIL`].
    /// * [`AuthResult::Pass`]: no opinion; the next plugin decides, and when all pass the
    ///   system_id and password are used as SMSGate credentials.
    ///
    /// [`status::ESME_RINVPASWD`]: crate::status::ESME_RINVPASWD
    /// [`status::ESME_RINVSYSID`]: crate::status::ESME_RINVSYSID
    /// [`status::ESME_RBINDFAIL`]: crate::status::ESME_RBINDFAIL
    fn authenticate(&mut self, request: BindRequest) -> AuthResult;
}

/// The `transform-submit` hook: checks or rewrites a message an ESME submitted, before it is
/// routed and sent.
///
/// ```
/// use smsgate_plugin_sdk::{
///     register_plugin, status, testing, Account, Message, Plugin, TransformResult,
///     TransformSubmit,
/// };
///
/// /// Tags every message with the account's tier, for a router later in the chain.
/// struct Tier;
///
/// impl Plugin for Tier {
///     fn new() -> Self {
///         Tier
///     }
/// }
///
/// impl TransformSubmit for Tier {
///     fn transform_submit(&mut self, account: &Account, mut message: Message) -> TransformResult {
///         let tier = account.label("tier").unwrap_or("basic").to_owned();
///         message.set_label("tier", tier);
///         TransformResult::Replace(message)
///     }
/// }
///
/// register_plugin!(Tier);
///
/// let account = testing::account("acme");
/// let message = testing::message("ACME", "+491701234567", "hi");
/// let TransformResult::Replace(message) = Tier::new().transform_submit(&account, message) else {
///     panic!("expected a replacement");
/// };
/// assert_eq!(message.label("tier"), Some("basic"));
/// ```
pub trait TransformSubmit: Plugin {
    /// Called once per message (after the parts of a concatenated message were joined) with
    /// the account of the session that submitted it.
    ///
    /// * [`TransformResult::Continue`]: the message goes on unchanged.
    /// * [`TransformResult::Replace`]: the given message goes on instead; later plugins, the
    ///   router and the gateway see it. Set labels here to pass decisions along.
    /// * [`TransformResult::Reject`]: the ESME gets that status in the response, for example
    ///   [`status::ESME_RINVDSTADR`] or [`status::ESME_RSUBMITFAIL`]; nothing is sent.
    ///
    /// [`status::ESME_RINVDSTADR`]: crate::status::ESME_RINVDSTADR
    /// [`status::ESME_RSUBMITFAIL`]: crate::status::ESME_RSUBMITFAIL
    fn transform_submit(&mut self, account: &Account, message: Message) -> TransformResult;
}

/// The `route` hook: chooses how a message is sent (device, SIM slot, SMSGate priority or
/// credentials).
///
/// ```
/// use smsgate_plugin_sdk::{
///     register_plugin, testing, Account, Message, Plugin, Route, RouteDecision, RouteResult,
/// };
///
/// /// Sends messages of gold-tier accounts with SMSGate priority 100.
/// struct GoldFirst;
///
/// impl Plugin for GoldFirst {
///     fn new() -> Self {
///         GoldFirst
///     }
/// }
///
/// impl Route for GoldFirst {
///     fn route(&mut self, account: &Account, _message: &Message) -> RouteResult {
///         match account.label("tier") {
///             Some("gold") => RouteResult::Route(RouteDecision {
///                 priority: Some(100),
///                 ..Default::default()
///             }),
///             _ => RouteResult::Continue,
///         }
///     }
/// }
///
/// register_plugin!(GoldFirst);
///
/// let message = testing::message("ACME", "+491701234567", "hi");
/// let result = GoldFirst::new().route(&testing::account("acme"), &message);
/// assert_eq!(result, RouteResult::Continue);
/// ```
pub trait Route: Plugin {
    /// Called once per message, after every transform.
    ///
    /// * [`RouteResult::Continue`]: no opinion; the next plugin decides, and when none does,
    ///   the account's defaults apply.
    /// * [`RouteResult::Route`]: send as the decision says; fields left `None` keep the
    ///   account's defaults.
    /// * [`RouteResult::Reject`]: the ESME gets that status (for example
    ///   [`status::ESME_RINVDSTADR`] when no route exists for the destination).
    ///
    /// [`status::ESME_RINVDSTADR`]: crate::status::ESME_RINVDSTADR
    fn route(&mut self, account: &Account, message: &Message) -> RouteResult;
}

/// The `transform-deliver` hook: checks or rewrites what the server is about to send to an
/// ESME as deliver_sm, a delivery receipt or an SMS a phone received.
///
/// ```
/// use smsgate_plugin_sdk::{
///     register_plugin, testing, Account, Deliver, DeliverKind, DeliverResult, Plugin,
///     TransformDeliver,
/// };
///
/// /// Passes receipts on and keeps incoming SMS from ESMEs.
/// struct ReceiptsOnly;
///
/// impl Plugin for ReceiptsOnly {
///     fn new() -> Self {
///         ReceiptsOnly
///     }
/// }
///
/// impl TransformDeliver for ReceiptsOnly {
///     fn transform_deliver(&mut self, _account: &Account, deliver: Deliver) -> DeliverResult {
///         match deliver.kind {
///             DeliverKind::Receipt => DeliverResult::Continue,
///             DeliverKind::Incoming => DeliverResult::Drop,
///         }
///     }
/// }
///
/// register_plugin!(ReceiptsOnly);
///
/// let deliver = testing::incoming("+491701234567", "ACME", "hi");
/// let result = ReceiptsOnly::new().transform_deliver(&testing::account("acme"), deliver);
/// assert_eq!(result, DeliverResult::Drop);
/// ```
pub trait TransformDeliver: Plugin {
    /// Called with the account the ESME is bound as, before each delivery.
    ///
    /// * [`DeliverResult::Continue`]: delivered unchanged.
    /// * [`DeliverResult::Replace`]: the given deliver_sm is sent instead.
    /// * [`DeliverResult::Drop`]: not delivered at all; the server treats it as handled.
    fn transform_deliver(&mut self, account: &Account, deliver: Deliver) -> DeliverResult;
}

/// The `route-incoming` hook: decides which SMPP users get an SMS a phone received.
///
/// An SMS arrives through the webhooks of one SMSGate account, which several SMPP users may
/// share. Without a route-incoming plugin it goes to every user whose account names the SIM
/// and device it arrived on, or names neither; this hook can choose instead, for example by
/// the number it was sent to or by its sender.
///
/// ```
/// use smsgate_plugin_sdk::{
///     register_plugin, testing, Account, IncomingSms, Plugin, RouteIncoming,
///     RouteIncomingResult,
/// };
///
/// /// SMS to the second number go to the user "support", and nobody gets short codes.
/// struct Support;
///
/// impl Plugin for Support {
///     fn new() -> Self {
///         Support
///     }
/// }
///
/// impl RouteIncoming for Support {
///     fn route_incoming(&mut self, sms: &IncomingSms, _candidates: &[Account]) -> RouteIncomingResult {
///         if sms.sender.len() <= 6 {
///             return RouteIncomingResult::Drop("short codes are not wanted".into());
///         }
///         match sms.recipient.as_deref() {
///             Some("+4930222222") => RouteIncomingResult::Deliver(vec!["support".into()]),
///             _ => RouteIncomingResult::Continue,
///         }
///     }
/// }
///
/// register_plugin!(Support);
///
/// let sms = testing::received("+491701234567", "+4930222222", "my order?");
/// let candidates = [testing::account("sales"), testing::account("support")];
/// assert_eq!(
///     Support::new().route_incoming(&sms, &candidates),
///     RouteIncomingResult::Deliver(vec!["support".into()])
/// );
/// ```
pub trait RouteIncoming: Plugin {
    /// Called once per incoming SMS (sms:received or sms:data-received), with the SMPP users
    /// of its SMSGate account that the server knows (those that bound as receivers since it
    /// started), before any SIM or device matching. Each user it goes to then gets it through
    /// [`TransformDeliver`] as usual.
    ///
    /// * [`RouteIncomingResult::Continue`]: no opinion; the next plugin decides, and when none
    ///   does, the server's SIM and device matching applies.
    /// * [`RouteIncomingResult::Deliver`]: exactly these users get it, by the [`Account::id`]
    ///   of the candidates. Ids that are not candidates are ignored with a warning; when none
    ///   is left, the phone is asked to send the SMS again later (so a user who has not bound
    ///   since the server started gets it once it binds).
    /// * [`RouteIncomingResult::Drop`]: nobody gets it; the reason goes to the server's log
    ///   and to the phone.
    ///
    /// A failure (panic, time or memory limit) never drops the SMS: with `fail-open` the next
    /// plugin decides, with `fail-closed` the server's SIM and device matching does.
    fn route_incoming(
        &mut self,
        incoming: &IncomingSms,
        candidates: &[Account],
    ) -> RouteIncomingResult;
}

/// The points of the server's flows a plugin can take part in, one per hook trait.
///
/// [`plugin_hooks!`](crate::plugin_hooks!) lists those a plugin type implements, which is what
/// the plugin tells the server it handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hook {
    /// [`Authenticate`], on every bind.
    Authenticate,
    /// [`TransformSubmit`], on every message an ESME submits.
    TransformSubmit,
    /// [`Route`], on every message an ESME submits, after the transforms.
    Route,
    /// [`TransformDeliver`], on every receipt and incoming SMS sent to an ESME.
    TransformDeliver,
    /// [`RouteIncoming`], on every incoming SMS, before the users it goes to are chosen.
    RouteIncoming,
}

/// Turns a [`Plugin`] type into the plugin component.
///
/// It generates the exports the server calls: `describe`, answering with this crate's package
/// name and version and the hooks whose traits the type implements (found at compile time,
/// see [`plugin_hooks!`](crate::plugin_hooks!)), and one export per hook that calls the
/// implementation on the instance's value of the type. A hook the type does not implement is
/// not announced and answers as a plugin without an opinion would (`Pass` or `Continue`).
///
/// Use it once, at the top level of the plugin crate, with the type's name:
///
/// ```
/// use smsgate_plugin_sdk::{register_plugin, Plugin};
///
/// /// Takes part in nothing; a starting point.
/// struct Quiet;
///
/// impl Plugin for Quiet {
///     fn new() -> Self {
///         Quiet
///     }
/// }
///
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

            fn hooks() -> $crate::__private::HookTable<$plugin> {
                $crate::__hook_table!($plugin)
            }

            // Only the wasm exports construct it.
            #[allow(dead_code)]
            struct Export;

            impl $crate::__private::Guest for Export {
                fn describe() -> $crate::__private::PluginInfo {
                    hooks().describe(
                        ::core::env!("CARGO_PKG_NAME"),
                        ::core::env!("CARGO_PKG_VERSION"),
                    )
                }

                fn authenticate(request: $crate::BindRequest) -> $crate::AuthResult {
                    hooks().authenticate(&INSTANCE, request)
                }

                fn transform_submit(
                    account: $crate::Account,
                    message: $crate::Message,
                ) -> $crate::TransformResult {
                    hooks().transform_submit(&INSTANCE, account, message)
                }

                fn route(
                    account: $crate::Account,
                    message: $crate::Message,
                ) -> $crate::RouteResult {
                    hooks().route(&INSTANCE, account, message)
                }

                fn transform_deliver(
                    account: $crate::Account,
                    deliver: $crate::Deliver,
                ) -> $crate::DeliverResult {
                    hooks().transform_deliver(&INSTANCE, account, deliver)
                }

                fn route_incoming(
                    incoming: $crate::IncomingSms,
                    candidates: ::std::vec::Vec<$crate::Account>,
                ) -> $crate::RouteIncomingResult {
                    hooks().route_incoming(&INSTANCE, incoming, candidates)
                }
            }

            #[cfg(target_arch = "wasm32")]
    $crate::__private::export!(Export with_types_in $crate::__private);
        };
    };
}

/// The hooks a [`Plugin`] type implements, as a `Vec<`[`Hook`]`>` in the order of [`Hook`]:
/// what the plugin's `describe` reports, and so the hooks the server calls.
///
/// Handy in a unit test, to pin down what the component will announce:
///
/// ```
/// use smsgate_plugin_sdk::{
///     plugin_hooks, Account, Hook, Message, Plugin, Route, RouteResult, TransformResult,
///     TransformSubmit,
/// };
///
/// struct Both;
///
/// impl Plugin for Both {
///     fn new() -> Self {
///         Both
///     }
/// }
///
/// impl TransformSubmit for Both {
///     fn transform_submit(&mut self, _account: &Account, _message: Message) -> TransformResult {
///         TransformResult::Continue
///     }
/// }
///
/// impl Route for Both {
///     fn route(&mut self, _account: &Account, _message: &Message) -> RouteResult {
///         RouteResult::Continue
///     }
/// }
///
/// assert_eq!(plugin_hooks!(Both), [Hook::TransformSubmit, Hook::Route]);
/// ```
///
/// Like [`register_plugin!`](crate::register_plugin!), it is meant for the concrete type:
/// inside a generic function, `plugin_hooks!(P)` sees only the hook traits that `P`'s bounds
/// name.
#[macro_export]
macro_rules! plugin_hooks {
    ($plugin:ty) => {
        $crate::__hook_table!($plugin).hooks()
    };
}
