//! The one place that decides where host calls go: the server's imports inside a component,
//! the per-thread fake host of [`crate::testing`] everywhere else. Everything public wraps
//! these functions, so plugin code runs unchanged in both.

#[cfg(target_arch = "wasm32")]
use crate::bindings::smsgate::smpp_plugin::host as imports;
#[cfg(target_arch = "wasm32")]
use crate::log::Level;

#[cfg(target_arch = "wasm32")]
pub(crate) fn log(level: Level, message: &str) {
    imports::log(level, message);
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn config_get(key: &str) -> Option<String> {
    imports::config_get(key)
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn config_keys(prefix: &str) -> Vec<String> {
    imports::config_keys(prefix)
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn now_millis() -> i64 {
    imports::now_millis()
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::host::{config_get, config_keys, log, now_millis};
