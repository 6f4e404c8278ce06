//! Asks a server on this host whether it is ready, the way an orchestrator's probe would: for
//! the `health` command (a container health check without a shell) and for `doctor`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::Config;

/// The readiness URL on `http.address` when the server answers 2xx there, else why not. Over
/// HTTPS when the server serves HTTPS; its certificate is not checked, since this asks our own
/// process on this host.
pub async fn ready(config: &Config) -> anyhow::Result<String> {
    let scheme = match config.http.tls_cert {
        Some(_) => "https",
        None => "http",
    };
    let url = format!("{scheme}://{}/health/ready", reachable(config.http.address));
    let client = crate::tls::http_client()
        .tls_danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(5))
        .build()?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("http.address: no answer from {url}: {e}"))?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}: not ready");
    Ok(url)
}

/// Where this host reaches a listener bound to `address`: an unspecified address is every
/// interface, loopback among them.
pub fn reachable(mut address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => address.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => address.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    address
}
