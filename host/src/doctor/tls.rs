//! Does TLS work: for SMPP over TLS and for the HTTPS webhook listener, the certificate and key
//! are readable, parse, fit each other, are in force and not about to expire, and the chain is
//! in the order clients need (the server's certificate first, then each issuer).

use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::Check;
use crate::config::Config;

/// An expiry closer than this is a warning: time to renew.
const RENEW_WITHIN_DAYS: i64 = 30;

pub fn check(config: &Config) -> Vec<Check> {
    [
        ("smpp", &config.smpp.tls_cert, &config.smpp.tls_key),
        ("http", &config.http.tls_cert, &config.http.tls_key),
    ]
    .into_iter()
    .filter_map(|(section, cert, key)| match (cert, key) {
        (None, None) => None,
        (Some(_), None) => Some(Check::failed(
            format!("{section}.tls_key"),
            format!("not set, but {section}.tls_cert is"),
            format!("set {section}.tls_key to the certificate's private key"),
        )),
        (None, Some(_)) => Some(Check::failed(
            format!("{section}.tls_cert"),
            format!("not set, but {section}.tls_key is"),
            format!("set {section}.tls_cert to the certificate chain (PEM)"),
        )),
        (Some(cert), Some(key)) => Some(pair(section, cert, key)),
    })
    .collect()
}

fn pair(section: &str, cert: &Path, key: &Path) -> Check {
    let name = format!("{section}.tls_cert");
    // The server's own loader: readable, PEM, and the key fits the certificate.
    if let Err(e) = crate::tls::acceptor(cert, key, section) {
        return Check::failed(
            name,
            format!("{e:#}"),
            "point both keys at readable PEM files: the chain, and the key it was issued for",
        );
    }
    let chain: Vec<CertificateDer> = match CertificateDer::pem_file_iter(cert) {
        Ok(certs) => certs.filter_map(Result::ok).collect(),
        Err(e) => return Check::failed(name, format!("{}: {e}", cert.display()), "check the file"),
    };
    let parsed: Result<Vec<X509Certificate>, _> = chain
        .iter()
        .map(|der| X509Certificate::from_der(der).map(|(_, c)| c))
        .collect();
    match parsed {
        Ok(parsed) => validity(&name, cert, &parsed),
        Err(e) => Check::failed(
            name,
            format!("{}: not an X.509 certificate: {e}", cert.display()),
            "use the PEM certificate chain your CA issued",
        ),
    }
}

fn validity(name: &str, file: &Path, chain: &[X509Certificate]) -> Check {
    let leaf = &chain[0];
    let now = chrono::Utc::now().timestamp();
    let not_after = leaf.validity().not_after.timestamp();
    let not_before = leaf.validity().not_before.timestamp();
    let until = date(not_after);
    let subject = leaf.subject().to_string();
    if now > not_after {
        return Check::failed(
            name,
            format!("{}: {subject} expired on {until}", file.display()),
            "renew the certificate; clients refuse an expired one",
        );
    }
    if now < not_before {
        return Check::failed(
            name,
            format!(
                "{}: {subject} is valid only from {}",
                file.display(),
                date(not_before)
            ),
            "check this host's clock, or use a certificate already in force",
        );
    }
    if let Some(position) = out_of_order(chain) {
        return Check::warning(
            name,
            format!(
                "{}: certificate {} of the chain did not issue certificate {}",
                file.display(),
                position + 2,
                position + 1
            ),
            "put the server's certificate first, then each issuer in turn, as clients read them",
        );
    }
    let days = (not_after - now) / 86_400;
    let saw = format!(
        "{}: {subject}, valid until {until} ({days} days), chain of {}",
        file.display(),
        chain.len()
    );
    if days < RENEW_WITHIN_DAYS {
        Check::warning(name, saw, "renew it soon: it expires within 30 days")
    } else {
        Check::ok(name, saw)
    }
}

/// The DNS names and IP addresses the first certificate of a PEM chain was issued for.
pub(super) fn leaf_names(cert: &Path) -> Result<Vec<String>, String> {
    let file = cert.display();
    let der = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{file}: {e}"))?
        .next()
        .ok_or_else(|| format!("{file}: no certificate in it"))?
        .map_err(|e| format!("{file}: {e}"))?;
    let (_, leaf) = X509Certificate::from_der(&der)
        .map_err(|e| format!("{file}: not an X.509 certificate: {e}"))?;
    let names = leaf
        .subject_alternative_name()
        .map_err(|e| format!("{file}: unreadable subject alternative names: {e}"))?;
    Ok(names
        .map(|names| {
            names
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some(dns.to_string()),
                    GeneralName::IPAddress(bytes) => ip_address(bytes).map(|ip| ip.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

fn ip_address(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// The first certificate whose successor in the file is not its issuer.
fn out_of_order(chain: &[X509Certificate]) -> Option<usize> {
    chain
        .windows(2)
        .position(|pair| pair[0].issuer().as_raw() != pair[1].subject().as_raw())
}

fn date(timestamp: i64) -> String {
    chrono::DateTime::from_timestamp(timestamp, 0).map_or_else(
        || timestamp.to_string(),
        |t| t.format("%Y-%m-%d").to_string(),
    )
}
