//! End-to-end tests: the built `smsgate-smpp` binary runs as a real process in front of a
//! standalone simulator process, and a small ESME drives it over real sockets. Every test starts
//! its own pair of processes on its own ports, so the tests run in parallel.

mod client;
#[path = "../free_port.rs"]
mod free_port;
mod services;
mod support;

mod bind;
mod cluster;
mod concat;
mod config;
mod console;
mod deliver_plugins;
mod delivery;
mod doctor;
mod gateway_link;
mod gateway_status;
mod http_limits;
mod languages;
mod malformed;
mod modes;
mod monitoring;
mod multi;
mod plugins;
mod query;
mod route_incoming;
mod shared_account;
mod simulate;
mod stalled;
mod submit;
mod timers;
mod tls;
mod window;
