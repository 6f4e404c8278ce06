//! Log lines in the server's log, tagged with the plugin's name.
//!
//! The server's log filter decides which levels are shown. A filtered-out line is still
//! formatted and handed to the server, so keep `trace` and `debug` lines out of loops that run
//! per character or per destination. Lines are plain text: put the values into the message,
//! for example `log::info(&format!("rejected {}: {reason}", message.source.addr))`.

/// How important a log line is, from [`Level::Trace`] to [`Level::Error`].
pub use crate::bindings::smsgate::smpp_plugin::host::Level;

/// Writes `message` to the server's log at `level`.
pub fn log(level: Level, message: &str) {
    crate::host::log(level, message);
}

/// Logs at [`Level::Trace`]: step-by-step detail.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Logs at [`Level::Debug`]: decisions worth seeing when diagnosing.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs at [`Level::Info`]: notable events, such as a rejected message.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs at [`Level::Warn`]: something is off but handled, such as a bad configuration value
/// that was replaced by a default.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs at [`Level::Error`]: the plugin cannot do its job as configured.
pub fn error(message: &str) {
    log(Level::Error, message);
}
