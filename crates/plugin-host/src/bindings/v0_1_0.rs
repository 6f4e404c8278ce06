//! wit/v0.1.0, the first contract. Its components are checked against its own world and get
//! its own host interface; their values cross into the latest types here. Every 0.1.0 type has
//! a latest counterpart of the same shape (0.2.0 only added), so each conversion is field by
//! field, and nothing a 0.1.0 plugin says is lost or invented on the way.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../../wit/v0.1.0",
    exports: { default: async },
});

use self::smsgate::smpp_plugin::host as old_host;
use self::smsgate::smpp_plugin::types as old;
use super::latest::smsgate::smpp_plugin::host as new_host;
use super::latest::smsgate::smpp_plugin::types as new;
use crate::runtime::HostState;

impl old::Host for HostState {}

/// The same functions as the latest host interface, which does the work.
impl old_host::Host for HostState {
    fn log(&mut self, level: old_host::Level, message: String) {
        new_host::Host::log(self, level.convert(), message);
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        new_host::Host::config_get(self, key)
    }

    fn config_keys(&mut self, prefix: String) -> Vec<String> {
        new_host::Host::config_keys(self, prefix)
    }

    fn now_millis(&mut self) -> i64 {
        new_host::Host::now_millis(self)
    }
}

/// A value moved between a 0.1.0 type and its latest counterpart (or back). A trait of its
/// own rather than `From`, so that lists, options and tuples of converted types convert too.
pub trait Convert<T> {
    fn convert(self) -> T;
}

macro_rules! unchanged {
    ($($ty:ty),*) => {$(
        impl Convert<$ty> for $ty {
            fn convert(self) -> $ty {
                self
            }
        }
    )*};
}

unchanged!(String, bool, u8, u16, u32, u64, i8, i64);

impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
    fn convert(self) -> Vec<B> {
        self.into_iter().map(Convert::convert).collect()
    }
}

impl<A: Convert<B>, B> Convert<Option<B>> for Option<A> {
    fn convert(self) -> Option<B> {
        self.map(Convert::convert)
    }
}

impl<A: Convert<C>, B: Convert<D>, C, D> Convert<(C, D)> for (A, B) {
    fn convert(self) -> (C, D) {
        (self.0.convert(), self.1.convert())
    }
}

/// Records, field by field, from module `$from` to module `$to`.
macro_rules! records {
    ($from:ident => $to:ident: $($name:ident { $($field:ident),* $(,)? })*) => {$(
        impl Convert<$to::$name> for $from::$name {
            fn convert(self) -> $to::$name {
                $to::$name { $($field: self.$field.convert()),* }
            }
        }
    )*};
}

/// Variants and enums, case by case (a case with a payload names it in parentheses).
macro_rules! variants {
    ($from:ident => $to:ident: $($name:ident { $($case:ident $(($payload:ident))?),* $(,)? })*) => {$(
        impl Convert<$to::$name> for $from::$name {
            fn convert(self) -> $to::$name {
                match self {
                    $($from::$name::$case $(($payload))? => $to::$name::$case $(($payload.convert()))?,)*
                }
            }
        }
    )*};
}

// What the server hands a plugin, and what a plugin may hand back changed.
macro_rules! both_ways {
    ($($from:ident => $to:ident),*) => {$(
        records! { $from => $to:
            Account { id, credentials, api_base_url, device_id, sim_number, limits, labels }
            BasicCredentials { username, password }
            AccountLimits { max_binds, messages_per_second }
            Address { ton, npi, addr }
            BinaryContent { data, port }
            Tlv { tag, value }
            Message {
                service_type, source, destinations, esm_class, protocol_id, priority_flag,
                registered_delivery, data_coding, content, validity, schedule_at, tlvs, labels,
            }
            Deliver {
                kind, source, destination, content, message_id, message_state, error_code,
                labels,
            }
        }
        variants! { $from => $to:
            Credentials { Basic(basic), Bearer(token) }
            Content { Text(text), Binary(binary) }
            Validity { Until(millis), After(seconds) }
            DeliverKind { Receipt, Incoming }
        }
    )*};
}

both_ways!(old => new, new => old);

// Only handed to plugins.
records! { new => old:
    BindRequest { system_id, password, system_type, bind_type, peer_address, tls, address_range }
}
variants! { new => old:
    BindType { Transmitter, Receiver, Transceiver }
}

// Only answered by plugins.
records! { old => new:
    RouteDecision { device_id, sim_number, priority, credentials }
}
variants! { old => new:
    AuthResult { Accept(account), Reject(status), Pass }
    TransformResult { Continue, Replace(message), Reject(status) }
    RouteResult { Continue, Route(decision), Reject(status) }
    DeliverResult { Continue, Replace(deliver), Drop }
}
variants! { old_host => new_host:
    Level { Trace, Debug, Info, Warn, Error }
}

/// A 0.1.0 plugin declares the hooks 0.1.0 has; the later ones stay unset.
impl Convert<new::PluginInfo> for old::PluginInfo {
    fn convert(self) -> new::PluginInfo {
        let mut hooks = new::Hooks::empty();
        for (old, new) in [
            (old::Hooks::AUTHENTICATE, new::Hooks::AUTHENTICATE),
            (old::Hooks::TRANSFORM_SUBMIT, new::Hooks::TRANSFORM_SUBMIT),
            (old::Hooks::ROUTE, new::Hooks::ROUTE),
            (old::Hooks::TRANSFORM_DELIVER, new::Hooks::TRANSFORM_DELIVER),
        ] {
            if self.hooks.contains(old) {
                hooks |= new;
            }
        }
        new::PluginInfo {
            name: self.name,
            version: self.version,
            hooks,
        }
    }
}
