//! Can the phones post receipts and incoming SMS back: the webhook base URL is HTTPS (Android
//! refuses cleartext), names an address the phones can reach (public for Cloud; the LAN will do
//! for a phone serving its own API in Local mode, whose certificate must then name that
//! address), resolves, and leads to this server; and webhooks are signed.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;

use super::Check;
use crate::config::Config;
use crate::gateway::Api;

const KEY: &str = "gateway.webhook_base_url";

/// `api`: what the gateway serves, when the gateway checks could tell.
pub async fn check(config: &Config, api: Option<Api>) -> Vec<Check> {
    let local = api == Some(Api::Local);
    let Some(base) = config.gateway.webhook_base_url.as_deref() else {
        return vec![Check::warning(
            KEY,
            "not set: ESMEs can send, but get no receipts and no incoming SMS",
            "set it to the public HTTPS address where the phones reach this server's http.address",
        )];
    };
    let mut checks = vec![url(config, base, local).await];
    if checks[0].status == super::Status::Ok {
        if local && let Some(names) = certificate(config, base) {
            checks.push(names);
        }
        checks.push(reachable(base, local).await);
    }
    checks.push(signing(config));
    checks
}

async fn url(config: &Config, base: &str, local: bool) -> Check {
    let url = match Url::parse(base) {
        Ok(url) => url,
        Err(e) => {
            return Check::failed(KEY, format!("{base}: {e}"), "set an absolute https:// URL");
        }
    };
    let Some(host) = url.host_str() else {
        return Check::failed(
            KEY,
            format!("{base}: no host"),
            "set an absolute https:// URL",
        );
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(found) => found.map(|a| a.ip()).collect(),
        Err(e) => {
            return Check::failed(
                KEY,
                format!("{host} does not resolve: {e}"),
                "publish a DNS record for it, or use the address the phones reach",
            );
        }
    };
    // Who posts the webhooks decides what they can reach: a gateway on this host (the
    // simulator) posts from here; a phone serving its own API on the LAN (Local mode) posts
    // from the LAN; the cloud's phones post from anywhere.
    let gateway_host = Url::parse(&config.gateway.api_base_url)
        .ok()
        .and_then(|g| g.host_str().map(str::to_owned))
        .unwrap_or_default();
    let gateway = gateway_host.trim_matches(['[', ']']).parse::<IpAddr>().ok();
    let gateway_on_this_host =
        gateway_host == "localhost" || gateway.is_some_and(|ip| ip.is_loopback());
    let gateway_on_the_lan = gateway.is_some_and(|ip| !ip.is_loopback() && !is_public(&ip));
    for ip in &addresses {
        let reachable = if ip.is_loopback() {
            gateway_on_this_host
        } else {
            is_public(ip) || gateway_on_the_lan || local
        };
        if !reachable {
            return Check::failed(
                KEY,
                match host.trim_matches(['[', ']']) == ip.to_string() {
                    true => format!("{ip} is not an address the phones can reach"),
                    false => format!("{host} is {ip}, not an address the phones can reach"),
                },
                "use a public address, or a reverse proxy or tunnel with one, in front of http.address",
            );
        }
    }
    // The phone's own API registers only https:// URLs and http://127.0.0.1 (the app's
    // WebHooksService), whatever the name resolves to.
    if local && url.scheme() != "https" && host != "127.0.0.1" {
        return Check::failed(
            KEY,
            format!("{base}: plain http, which the phone (Local mode) refuses to register"),
            format!(
                "serve HTTPS (http.tls_cert / http.tls_key) with a certificate for {host} the phone trusts — SMSGate's CA issues them for private addresses — or put a reverse proxy with one in front, and use https://"
            ),
        );
    }
    // Android allows cleartext HTTP to this device only.
    if url.scheme() != "https" && !addresses.iter().all(IpAddr::is_loopback) {
        return Check::failed(
            KEY,
            format!("{base}: plain http"),
            "Android refuses cleartext HTTP: serve HTTPS (http.tls_cert / http.tls_key, or a reverse proxy) and use https://",
        );
    }
    Check::ok(KEY, format!("{base}: resolves to {}", list(&addresses)))
}

/// When this server serves the HTTPS the phone posts to, its certificate must name the host of
/// the URL: a phone on the LAN reaches it by a private address, which public CAs do not issue
/// certificates for.
fn certificate(config: &Config, base: &str) -> Option<Check> {
    const NAME: &str = "webhook certificate";
    let cert = config.http.tls_cert.as_deref()?;
    let url = Url::parse(base)
        .ok()
        .filter(|url| url.scheme() == "https")?;
    let host = url.host_str()?.trim_matches(['[', ']']).to_owned();
    Some(match super::tls::leaf_names(cert) {
        Err(e) => Check::failed(NAME, e, "point http.tls_cert at the PEM certificate chain"),
        Ok(names) if names.iter().any(|name| names_host(name, &host)) => Check::ok(
            NAME,
            format!(
                "{}: names {host}, the address the phone posts to",
                cert.display()
            ),
        ),
        Ok(names) => Check::failed(
            NAME,
            format!(
                "{}: names {}, not {host}, which the webhook URL gives the phone",
                cert.display(),
                if names.is_empty() {
                    "nothing".into()
                } else {
                    names.join(", ")
                }
            ),
            format!(
                "get a certificate for {host} (for a private address: `smsgate-ca webhooks {host}` from SMSGate's CA, which the app trusts from version 1.31), or use a name the certificate has"
            ),
        ),
    })
}

/// A subject alternative name matches the host exactly or, for `*.example.com`, one label.
fn names_host(name: &str, host: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(domain) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest.eq_ignore_ascii_case(domain)),
        None => name.eq_ignore_ascii_case(host),
    }
}

/// Through the URL the phones use, this server's readiness answers: the port is open, a
/// proxy forwards it, and it is this kind of server. A phone in Local mode may trust a
/// certificate this host does not (SMSGate's CA is built into the app), so there an untrusted
/// certificate is only a warning.
async fn reachable(base: &str, local: bool) -> Check {
    let url = format!("{}/health/ready", base.trim_end_matches('/'));
    let answer = async {
        let client = crate::tls::http_client()
            .timeout(Duration::from_secs(10))
            .build()?;
        let response = client.get(&url).send().await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        anyhow::Ok((status, body))
    }
    .await;
    match answer {
        Ok((status, body)) if status.is_success() && body["status"] == "pass" => {
            Check::ok("webhook reachability", format!("{url} answers ready"))
        }
        Ok((status, _)) => Check::failed(
            "webhook reachability",
            format!("{url} answered {status}, not this server's readiness"),
            "forward the URL's path to this server's http.address unchanged",
        ),
        Err(e) if local && is_untrusted_certificate(e.as_ref()) => Check::warning(
            "webhook reachability",
            format!(
                "{url}: this host does not trust the certificate: {}",
                crate::gateway::error_chain(e.as_ref())
            ),
            "expected with a certificate from SMSGate's CA, which the app trusts and this host does not; otherwise use one the phone trusts",
        ),
        Err(e) => Check::failed(
            "webhook reachability",
            format!(
                "{url}: no answer: {}",
                crate::gateway::error_chain(e.as_ref())
            ),
            "open the port, or point the reverse proxy at http.address; the server must be running for this check",
        ),
    }
}

fn is_untrusted_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    let chain = crate::gateway::error_chain(e);
    chain.contains("UnknownIssuer") || chain.contains("invalid peer certificate")
}

fn signing(config: &Config) -> Check {
    const NAME: &str = "delivery.signing_key";
    if config.delivery.signing_key.is_some() || !config.delivery.signing_keys.is_empty() {
        Check::ok(NAME, "set: unsigned webhooks are refused")
    } else {
        Check::warning(
            NAME,
            "not set: webhooks are taken unsigned",
            "set DELIVERY__SIGNING_KEY to the key the app shows under Settings → Webhooks",
        )
    }
}

/// Loopback, private (RFC 1918, unique local), link-local, CGNAT and unspecified addresses
/// are not reachable from a phone on the internet.
fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

fn list(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_means_reachable_from_the_internet() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.20",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(!is_public(&private.parse().unwrap()), "{private}");
        }
        for public in ["203.0.113.7", "8.8.8.8", "100.128.0.1", "2001:db8::1"] {
            assert!(is_public(&public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn certificate_names_match_hosts_as_tls_clients_match_them() {
        assert!(names_host("192.168.1.10", "192.168.1.10"));
        assert!(names_host("SMS.example.com", "sms.example.com"));
        assert!(names_host("*.example.com", "sms.example.com"));
        assert!(!names_host("*.example.com", "a.sms.example.com"));
        assert!(!names_host("*.example.com", "example.com"));
        assert!(!names_host("192.168.1.10", "192.168.1.11"));
    }
}
