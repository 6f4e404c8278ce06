//! Can ESMEs and the phones connect at all: each listener's address, whether other hosts can
//! reach it, and whether its port is free (or held by this server already).

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};

use super::Check;
use crate::config::Config;

pub fn check(config: &Config, running: bool) -> Vec<Check> {
    let mut listeners = vec![("smpp.bind_address", config.smpp.bind_address, "ESMEs")];
    if config.smpp.tls_cert.is_some() && config.smpp.tls_key.is_some() {
        listeners.push((
            "smpp.tls_bind_address",
            config.smpp.tls_bind_address,
            "ESMEs",
        ));
    }
    listeners.push(("http.address", config.http.address, "the phones' webhooks"));
    let mut checks: Vec<Check> = listeners
        .into_iter()
        .map(|(key, address, audience)| listener(key, address, running, Some(audience)))
        .collect();
    checks.push(admin(config, running));
    checks
}

/// `audience` is who must reach the address from other hosts, if anyone.
fn listener(key: &str, address: SocketAddr, running: bool, audience: Option<&str>) -> Check {
    let port = match TcpListener::bind(address) {
        Ok(_) => "port free",
        Err(e) if e.kind() == ErrorKind::AddrInUse && running => "in use by the running server",
        Err(e) if e.kind() == ErrorKind::AddrInUse => {
            return Check::failed(
                key,
                format!("{address}: in use by another program"),
                format!("stop that program or choose another port in {key}"),
            );
        }
        Err(e) if e.kind() == ErrorKind::AddrNotAvailable => {
            return Check::failed(
                key,
                format!("{address}: not an address of this host"),
                format!("use one of this host's addresses, or 0.0.0.0, in {key}"),
            );
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return Check::failed(
                key,
                format!("{address}: binding is not permitted ({e})"),
                "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port above 1023",
            );
        }
        Err(e) => return Check::failed(key, format!("{address}: {e}"), format!("check {key}")),
    };
    match audience {
        Some(audience) if address.ip().is_loopback() => Check::warning(
            key,
            format!("{address}: {port}, loopback only"),
            format!(
                "{audience} on other hosts cannot reach it; listen on 0.0.0.0:{} (or this host's address) unless a proxy on this host forwards to it",
                address.port()
            ),
        ),
        _ => Check::ok(key, format!("{address}: {port}")),
    }
}

fn admin(config: &Config, running: bool) -> Check {
    let address = config.admin.address;
    let check = listener("admin.address", address, running, None);
    if check.status != super::Status::Ok || address.ip().is_loopback() {
        return check;
    }
    match config.admin.token {
        Some(_) => check,
        None => Check::warning(
            "admin.address",
            format!(
                "{address}: not loopback and admin.token is not set, so other hosts are refused"
            ),
            "set ADMIN__TOKEN, or keep the admin listener on 127.0.0.1",
        ),
    }
}
