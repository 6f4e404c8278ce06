//! `smsgate-smpp` as a library: an SMPP 3.4 server in front of the SMSGate REST API. The binary
//! (`main.rs`) is only its command line: it parses, loads the configuration and calls `server`.
//!
//! Two flows run through it (ARCHITECTURE.md names the file of each step):
//! - submit: `listener` → `session` → `pipeline` → `gateway`, answered with submit_sm_resp;
//! - delivery: `webhooks` → the durable queue in `delivery` → `session`, as deliver_sm.

mod activity;
mod admin;
mod auth;
mod bind_guard;
mod concat;
pub mod config;
mod delivery;
pub mod doctor;
pub mod gateway;
mod http;
mod ids;
mod listener;
mod message;
mod metrics;
mod pipeline;
mod policy;
pub mod probe;
mod receipt;
pub mod recent_errors;
pub mod server;
mod session;
mod session_threads;
pub mod shutdown;
pub mod tls;
mod webhooks;
