//! The HTTP side: health endpoints and Prometheus metrics on the Go server's paths, so existing
//! probes, orchestrators and dashboards keep working; the webhook routes of the delivery path
//! are merged in beside them. Plain HTTP, or HTTPS when `http.tls_cert`/`http.tls_key` are set,
//! because the phone posts webhooks to https URLs only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::debug;

use crate::config::HttpConfig;
use crate::shutdown::Shutdown;

/// Set once every listener is up; cleared when shutdown starts.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/health", get(live))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/health/startup", get(ready))
        .route("/metrics", get(metrics))
        .with_state(readiness)
}

/// The bound HTTP socket, plain or TLS.
pub enum HttpListener {
    Plain(tokio::net::TcpListener),
    Tls(TlsListener),
}

pub async fn bind(config: &HttpConfig) -> anyhow::Result<HttpListener> {
    let address = config.address;
    let socket = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("http.address: cannot listen on {address}"))?;
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let acceptor = crate::tls::acceptor(cert, key, "http")?;
            Ok(HttpListener::Tls(TlsListener::spawn(socket, acceptor)?))
        }
        _ => Ok(HttpListener::Plain(socket)),
    }
}

pub async fn serve(
    listener: HttpListener,
    routes: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let stop = async move { shutdown.cancelled().await };
    match listener {
        HttpListener::Plain(socket) => {
            axum::serve(socket, routes)
                .with_graceful_shutdown(stop)
                .await
        }
        HttpListener::Tls(tls) => axum::serve(tls, routes).with_graceful_shutdown(stop).await,
    }
}

/// Connections whose TLS handshake has finished. Handshakes run on tasks of their own, so a
/// client that stalls mid-handshake holds up nobody else.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

/// A client gets this long to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsListener {
    fn spawn(socket: tokio::net::TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = socket.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match socket.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        debug!(error = %e, "http accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "https handshake failed"),
                        Err(_) => debug!(%peer, "https handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task is gone only if the runtime is shutting down.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn metrics() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::get().render(),
    )
}

async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "pass", "version": env!("CARGO_PKG_VERSION") }))
}

async fn ready(State(readiness): State<Readiness>) -> (StatusCode, Json<serde_json::Value>) {
    let up = readiness.get();
    let status = if up { "pass" } else { "fail" };
    let code = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "checks": { "listeners": { "status": status } },
    });
    (code, Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_https_when_a_certificate_is_configured() {
        crate::tls::install_crypto_provider();
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let dir = tempfile::TempDir::new().unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
        let config = HttpConfig {
            address: ([127, 0, 0, 1], 0).into(),
            tls_cert: Some(cert_path),
            tls_key: Some(key_path),
        };
        let listener = bind(&config).await.unwrap();
        let HttpListener::Tls(tls) = &listener else {
            panic!("a certificate was configured, yet the listener is plain");
        };
        let port = axum::serve::Listener::local_addr(tls).unwrap().port();
        let shutdown = Shutdown::new();
        let readiness = Readiness::default();
        readiness.set(true);
        let server = tokio::spawn(serve(listener, router(readiness), shutdown.clone()));

        let root = reqwest::Certificate::from_der(cert.der()).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(root)
            .build()
            .unwrap();
        let url = format!("https://localhost:{port}/health/ready");
        let answer = client.get(&url).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let plain = reqwest::get(format!("http://127.0.0.1:{port}/health")).await;
        assert!(
            plain.is_err(),
            "plain HTTP must not be answered on the TLS port"
        );
        // The accept loop survives a client that speaks plain HTTP to it.
        assert_eq!(
            client.get(&url).send().await.unwrap().status(),
            StatusCode::OK
        );

        shutdown.cancel();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_missing_key_file_names_the_key() {
        let config = HttpConfig {
            address: ([127, 0, 0, 1], 0).into(),
            tls_cert: Some("/nonexistent/cert.pem".into()),
            tls_key: Some("/nonexistent/key.pem".into()),
        };
        let error = bind(&config).await.err().expect("no certificate to read");
        assert!(error.to_string().contains("http.tls_cert"), "{error}");
    }
}
