//! What [`register_plugin!`](crate::register_plugin) expands to: the hooks a plugin type
//! implements, found at compile time, and the component exports built on them. Reached
//! through `__private`; not part of the API.
//!
//! Whether a type implements a trait cannot be asked in a generic function, so the question
//! goes through method resolution on the concrete type, in the macro's expansion
//! ("autoref specialisation"): for each hook, [`Probe<P>`] has a method from an `…Implemented`
//! trait that exists only when `P` implements the hook trait, and `&Probe<P>` one of the same
//! name from a `…Missing` trait that always exists. A call on `&Probe<P>` takes the first
//! when it exists, as it needs no extra reference, and falls back to the second otherwise.
//! Both the `describe` answer and the dispatch read the result, so they cannot disagree.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::thread::LocalKey;

use crate::bindings::smsgate::smpp_plugin::types::{Hooks, PluginInfo};
use crate::{
    Account, AuthResult, BindRequest, Deliver, DeliverResult, Hook, IncomingSms, Message, Plugin,
    RouteIncomingResult, RouteResult, TransformResult,
};

/// [`Authenticate::authenticate`](crate::Authenticate::authenticate) of a plugin type.
pub type AuthenticateFn<P> = fn(&mut P, BindRequest) -> AuthResult;
/// [`TransformSubmit::transform_submit`](crate::TransformSubmit::transform_submit) of a plugin
/// type.
pub type TransformSubmitFn<P> = fn(&mut P, &Account, Message) -> TransformResult;
/// [`Route::route`](crate::Route::route) of a plugin type.
pub type RouteFn<P> = fn(&mut P, &Account, &Message) -> RouteResult;
/// [`TransformDeliver::transform_deliver`](crate::TransformDeliver::transform_deliver) of a
/// plugin type.
pub type TransformDeliverFn<P> = fn(&mut P, &Account, Deliver) -> DeliverResult;
/// [`RouteIncoming::route_incoming`](crate::RouteIncoming::route_incoming) of a plugin type.
pub type RouteIncomingFn<P> = fn(&mut P, &IncomingSms, &[Account]) -> RouteIncomingResult;

/// Stands for plugin type `P` in the method calls that find its hooks.
pub struct Probe<P>(PhantomData<P>);

impl<P> Probe<P> {
    /// The probe for `P`; a constant, so the expansion needs no path to `PhantomData`.
    pub const NEW: Self = Probe(PhantomData);
}

/// The traits whose methods [`__hook_table!`](crate::__hook_table) calls on a [`Probe`]; the
/// expansion imports them all, and method resolution picks one of each pair.
pub mod probe {
    use super::{
        AuthenticateFn, Probe, RouteFn, RouteIncomingFn, TransformDeliverFn, TransformSubmitFn,
    };
    use crate::{Authenticate, Route, RouteIncoming, TransformDeliver, TransformSubmit};

    macro_rules! probes {
        ($($method:ident: $hook:ident, $fn:ident, $implemented:ident, $missing:ident;)*) => {$(
            /// Has the hook when the plugin type implements its trait.
            pub trait $implemented<P> {
                /// The hook function.
                fn $method(&self) -> Option<$fn<P>>;
            }

            impl<P: $hook> $implemented<P> for Probe<P> {
                fn $method(&self) -> Option<$fn<P>> {
                    Some(<P as $hook>::$method)
                }
            }

            /// The fallback when the plugin type does not implement the hook's trait.
            pub trait $missing<P> {
                /// No hook function.
                fn $method(&self) -> Option<$fn<P>>;
            }

            impl<P> $missing<P> for &Probe<P> {
                fn $method(&self) -> Option<$fn<P>> {
                    None
                }
            }
        )*};
    }

    probes! {
        authenticate: Authenticate, AuthenticateFn, AuthenticateImplemented, AuthenticateMissing;
        transform_submit: TransformSubmit, TransformSubmitFn, TransformSubmitImplemented,
            TransformSubmitMissing;
        route: Route, RouteFn, RouteImplemented, RouteMissing;
        transform_deliver: TransformDeliver, TransformDeliverFn, TransformDeliverImplemented,
            TransformDeliverMissing;
        route_incoming: RouteIncoming, RouteIncomingFn, RouteIncomingImplemented,
            RouteIncomingMissing;
    }
}

/// Builds the [`HookTable`] of plugin type `$plugin`, which has to be a concrete type.
#[doc(hidden)]
#[macro_export]
macro_rules! __hook_table {
    ($plugin:ty) => {{
        use $crate::__private::probe::*;
        let probe = &$crate::__private::Probe::<$plugin>::NEW;
        $crate::__private::HookTable::<$plugin> {
            authenticate: probe.authenticate(),
            transform_submit: probe.transform_submit(),
            route: probe.route(),
            transform_deliver: probe.transform_deliver(),
            route_incoming: probe.route_incoming(),
        }
    }};
}

/// The hooks plugin type `P` implements; `None` for the others.
pub struct HookTable<P: Plugin> {
    /// [`Authenticate::authenticate`](crate::Authenticate::authenticate), if implemented.
    pub authenticate: Option<AuthenticateFn<P>>,
    /// [`TransformSubmit::transform_submit`](crate::TransformSubmit::transform_submit), if
    /// implemented.
    pub transform_submit: Option<TransformSubmitFn<P>>,
    /// [`Route::route`](crate::Route::route), if implemented.
    pub route: Option<RouteFn<P>>,
    /// [`TransformDeliver::transform_deliver`](crate::TransformDeliver::transform_deliver), if
    /// implemented.
    pub transform_deliver: Option<TransformDeliverFn<P>>,
    /// [`RouteIncoming::route_incoming`](crate::RouteIncoming::route_incoming), if
    /// implemented.
    pub route_incoming: Option<RouteIncomingFn<P>>,
}

/// Where a plugin component keeps its instance's value of the plugin type.
pub type Instance<P> = LocalKey<RefCell<Option<P>>>;

// A hook that is not implemented is not announced in `describe`, so the server does not call
// it; should it anyway, it gets the answer of a plugin without an opinion, as the WIT contract
// has no way to refuse the call.
impl<P: Plugin> HookTable<P> {
    /// The implemented hooks, in the order of [`Hook`].
    pub fn hooks(&self) -> Vec<Hook> {
        let flags = self.flags();
        [
            Hook::Authenticate,
            Hook::TransformSubmit,
            Hook::Route,
            Hook::TransformDeliver,
            Hook::RouteIncoming,
        ]
        .into_iter()
        .filter(|&hook| flags.contains(flag(hook)))
        .collect()
    }

    fn flags(&self) -> Hooks {
        let mut flags = Hooks::empty();
        flags.set(Hooks::AUTHENTICATE, self.authenticate.is_some());
        flags.set(Hooks::TRANSFORM_SUBMIT, self.transform_submit.is_some());
        flags.set(Hooks::ROUTE, self.route.is_some());
        flags.set(Hooks::TRANSFORM_DELIVER, self.transform_deliver.is_some());
        flags.set(Hooks::ROUTE_INCOMING, self.route_incoming.is_some());
        flags
    }

    /// The `describe` answer for this plugin type, built by package `name` at `version`.
    pub fn describe(&self, name: &str, version: &str) -> PluginInfo {
        install_panic_hook();
        PluginInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            hooks: self.flags(),
        }
    }

    /// The `authenticate` export.
    pub fn authenticate(&self, instance: &'static Instance<P>, request: BindRequest) -> AuthResult {
        match self.authenticate {
            Some(hook) => call(instance, |plugin| hook(plugin, request)),
            None => AuthResult::Pass,
        }
    }

    /// The `transform-submit` export.
    pub fn transform_submit(
        &self,
        instance: &'static Instance<P>,
        account: Account,
        message: Message,
    ) -> TransformResult {
        match self.transform_submit {
            Some(hook) => call(instance, |plugin| hook(plugin, &account, message)),
            None => TransformResult::Continue,
        }
    }

    /// The `route` export.
    pub fn route(
        &self,
        instance: &'static Instance<P>,
        account: Account,
        message: Message,
    ) -> RouteResult {
        match self.route {
            Some(hook) => call(instance, |plugin| hook(plugin, &account, &message)),
            None => RouteResult::Continue,
        }
    }

    /// The `transform-deliver` export.
    pub fn transform_deliver(
        &self,
        instance: &'static Instance<P>,
        account: Account,
        deliver: Deliver,
    ) -> DeliverResult {
        match self.transform_deliver {
            Some(hook) => call(instance, |plugin| hook(plugin, &account, deliver)),
            None => DeliverResult::Continue,
        }
    }

    /// The `route-incoming` export.
    pub fn route_incoming(
        &self,
        instance: &'static Instance<P>,
        incoming: IncomingSms,
        candidates: Vec<Account>,
    ) -> RouteIncomingResult {
        match self.route_incoming {
            Some(hook) => call(instance, |plugin| hook(plugin, &incoming, &candidates)),
            None => RouteIncomingResult::Continue,
        }
    }
}

fn flag(hook: Hook) -> Hooks {
    match hook {
        Hook::Authenticate => Hooks::AUTHENTICATE,
        Hook::TransformSubmit => Hooks::TRANSFORM_SUBMIT,
        Hook::Route => Hooks::ROUTE,
        Hook::TransformDeliver => Hooks::TRANSFORM_DELIVER,
        Hook::RouteIncoming => Hooks::ROUTE_INCOMING,
    }
}

/// Runs `hook` on the instance's plugin value, creating it on first use.
fn call<P: Plugin, R>(instance: &'static Instance<P>, hook: impl FnOnce(&mut P) -> R) -> R {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Authenticate, Route, RouteIncoming, TransformDeliver, TransformSubmit, log, plugin_hooks,
        testing,
    };

    /// Logs its creation, so tests see when an instance is made.
    fn created(name: &str) {
        log::info(&format!("new {name}"));
    }

    fn creations() -> usize {
        testing::logs()
            .iter()
            .filter(|(_, line)| line.starts_with("new "))
            .count()
    }

    struct Nothing;

    impl Plugin for Nothing {
        fn new() -> Self {
            created("Nothing");
            Nothing
        }
    }

    /// Counts its calls, to show that one instance serves them all.
    struct OnlyRoute {
        calls: u8,
    }

    impl Plugin for OnlyRoute {
        fn new() -> Self {
            created("OnlyRoute");
            OnlyRoute { calls: 0 }
        }
    }

    impl Route for OnlyRoute {
        fn route(&mut self, _: &Account, _: &Message) -> RouteResult {
            self.calls += 1;
            RouteResult::Route(crate::RouteDecision {
                sim_number: Some(self.calls),
                ..Default::default()
            })
        }
    }

    struct Everything;

    impl Plugin for Everything {
        fn new() -> Self {
            created("Everything");
            Everything
        }
    }

    impl Authenticate for Everything {
        fn authenticate(&mut self, _: BindRequest) -> AuthResult {
            AuthResult::Reject(crate::status::ESME_RINVPASWD)
        }
    }

    impl TransformSubmit for Everything {
        fn transform_submit(&mut self, _: &Account, _: Message) -> TransformResult {
            TransformResult::Reject(crate::status::ESME_RSUBMITFAIL)
        }
    }

    impl Route for Everything {
        fn route(&mut self, _: &Account, _: &Message) -> RouteResult {
            RouteResult::Reject(crate::status::ESME_RINVDSTADR)
        }
    }

    impl TransformDeliver for Everything {
        fn transform_deliver(&mut self, _: &Account, _: Deliver) -> DeliverResult {
            DeliverResult::Drop
        }
    }

    impl RouteIncoming for Everything {
        fn route_incoming(
            &mut self,
            _: &IncomingSms,
            candidates: &[Account],
        ) -> RouteIncomingResult {
            RouteIncomingResult::Deliver(candidates.iter().map(|c| c.id.clone()).collect())
        }
    }

    thread_local! {
        static NOTHING: RefCell<Option<Nothing>> = const { RefCell::new(None) };
        static ONLY_ROUTE: RefCell<Option<OnlyRoute>> = const { RefCell::new(None) };
        static EVERYTHING: RefCell<Option<Everything>> = const { RefCell::new(None) };
    }

    #[test]
    fn only_implemented_hooks_are_described() {
        assert_eq!(plugin_hooks!(Nothing), []);
        assert_eq!(plugin_hooks!(OnlyRoute), [Hook::Route]);
        assert_eq!(
            plugin_hooks!(Everything),
            [
                Hook::Authenticate,
                Hook::TransformSubmit,
                Hook::Route,
                Hook::TransformDeliver,
                Hook::RouteIncoming,
            ]
        );

        let info = crate::__hook_table!(OnlyRoute).describe("only-route", "1.2.3");
        assert_eq!(
            info,
            PluginInfo {
                name: "only-route".into(),
                version: "1.2.3".into(),
                hooks: Hooks::ROUTE,
            }
        );
        let info = crate::__hook_table!(Everything).describe("everything", "0.1.0");
        assert_eq!(info.hooks, Hooks::all());
        let info = crate::__hook_table!(Nothing).describe("nothing", "0.1.0");
        assert_eq!(info.hooks, Hooks::empty());
    }

    #[test]
    fn implemented_hooks_are_called_on_one_instance() {
        let table = crate::__hook_table!(OnlyRoute);
        let account = testing::account("acme");
        let message = testing::message("ACME", "+491701234567", "hi");
        for calls in 1..=3 {
            let result = table.route(&ONLY_ROUTE, account.clone(), message.clone());
            let RouteResult::Route(decision) = result else {
                panic!("{result:?}")
            };
            assert_eq!(decision.sim_number, Some(calls));
        }
        assert_eq!(creations(), 1);

        let table = crate::__hook_table!(Everything);
        let request = testing::bind_request("alice", "secret");
        let deliver = testing::incoming("+491701234567", "ACME", "hi");
        assert_eq!(
            table.authenticate(&EVERYTHING, request),
            AuthResult::Reject(crate::status::ESME_RINVPASWD)
        );
        assert_eq!(
            table.transform_submit(&EVERYTHING, account.clone(), message.clone()),
            TransformResult::Reject(crate::status::ESME_RSUBMITFAIL)
        );
        assert_eq!(
            table.route(&EVERYTHING, account.clone(), message),
            RouteResult::Reject(crate::status::ESME_RINVDSTADR)
        );
        assert_eq!(
            table.transform_deliver(&EVERYTHING, account.clone(), deliver),
            DeliverResult::Drop
        );
        let sms = testing::received("+491701234567", "+4930999999", "hi");
        assert_eq!(
            table.route_incoming(&EVERYTHING, sms, vec![account]),
            RouteIncomingResult::Deliver(vec!["acme".into()])
        );
    }

    #[test]
    fn missing_hooks_answer_neutrally_without_an_instance() {
        let account = testing::account("acme");
        let message = testing::message("ACME", "+491701234567", "hi");
        let deliver = testing::incoming("+491701234567", "ACME", "hi");

        let table = crate::__hook_table!(Nothing);
        let request = testing::bind_request("alice", "secret");
        assert_eq!(table.authenticate(&NOTHING, request), AuthResult::Pass);
        assert_eq!(
            table.transform_submit(&NOTHING, account.clone(), message.clone()),
            TransformResult::Continue
        );
        assert_eq!(
            table.route(&NOTHING, account.clone(), message.clone()),
            RouteResult::Continue
        );
        assert_eq!(
            table.transform_deliver(&NOTHING, account.clone(), deliver.clone()),
            DeliverResult::Continue
        );
        let sms = testing::received("+491701234567", "+4930999999", "hi");
        assert_eq!(
            table.route_incoming(&NOTHING, sms, vec![account.clone()]),
            RouteIncomingResult::Continue
        );

        let table = crate::__hook_table!(OnlyRoute);
        let request = testing::bind_request("alice", "secret");
        assert_eq!(table.authenticate(&ONLY_ROUTE, request), AuthResult::Pass);
        assert_eq!(
            table.transform_submit(&ONLY_ROUTE, account.clone(), message),
            TransformResult::Continue
        );
        assert_eq!(
            table.transform_deliver(&ONLY_ROUTE, account, deliver),
            DeliverResult::Continue
        );
        assert_eq!(creations(), 0);
    }
}
