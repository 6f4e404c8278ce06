//! TLS for every listener and HTTP client of the server, in one place: the crypto provider,
//! certificate loading with start-up errors that name the key, and the HTTP client builder.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Every TLS user (listeners, HTTP clients) shares ring; installing it before the first one is
/// built keeps rustls from having to guess between providers.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How the server names itself to the gateway and to anything else it calls over HTTP.
pub(crate) const USER_AGENT: &str = concat!("smsgate-smpp/", env!("CARGO_PKG_VERSION"));

/// An HTTP client builder whose TLS is ready to use, with the server's user agent.
pub fn http_client() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().user_agent(USER_AGENT)
}

/// Loads the certificate chain and key; any problem is a start-up error naming the file.
pub fn acceptor(cert: &Path, key: &Path, section: &str) -> anyhow::Result<TlsAcceptor> {
    install_crypto_provider();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("{section}.tls_cert: cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "{section}.tls_cert: {} is not a PEM certificate",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        anyhow::bail!(
            "{section}.tls_cert: {} holds no certificate",
            cert.display()
        );
    }
    let private_key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "{section}.tls_key: {} holds no PEM private key",
            key.display()
        )
    })?;
    let config = rustls::ServerConfig::builder_with_protocol_versions(&[
        &rustls::version::TLS13,
        &rustls::version::TLS12,
    ])
    .with_no_client_auth()
    .with_single_cert(chain, private_key)
    .with_context(|| {
        format!("{section}.tls_cert / {section}.tls_key: the key does not fit the certificate")
    })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
