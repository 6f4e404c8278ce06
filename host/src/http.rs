//! The HTTP side: health endpoints and Prometheus metrics on the Go server's paths, so existing
//! probes, orchestrators and dashboards keep working; the webhook routes of the delivery path
//! are merged in beside them. Plain HTTP, or HTTPS when `http.tls_cert`/`http.tls_key` are set,
//! because the phone posts webhooks to https URLs only. The admin endpoints (`admin.rs`) are
//! served the same way on a port of their own.
//!
//! The public port faces the internet, so each connection is served here rather than by
//! `axum::serve`, which has no timeouts: as in Go's net/http (ReadHeaderTimeout, IdleTimeout)
//! and nginx (client_header_timeout, keepalive_timeout), a header must arrive within
//! `http.header_timeout`, a kept-alive connection may wait `http.idle_timeout` for its next
//! request, and the answer must be ready within `http.request_timeout`. A cap on open
//! connections, separate from SMPP's, keeps HTTP from taking the file descriptors that SMPP
//! binds need. HTTP/1.1 only: the phone, Prometheus and probes speak it, and HTTP/2 would
//! need bounds of its own.

use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;
use tracing::{debug, info, warn};

use crate::admin::{self, Bearer};
use crate::config::{AdminConfig, HttpConfig};
use crate::shutdown::{Shutdown, TaskTracker};

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

/// The public routes; `/metrics` asks for the admin token when `metrics_token` is given.
pub fn router(readiness: Readiness, metrics_token: Option<Bearer>) -> Router {
    let health = Router::new()
        .route("/health", get(live))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/health/startup", get(ready))
        .with_state(readiness);
    let metrics = Router::new().route("/metrics", get(metrics));
    health.merge(admin::guard(metrics, metrics_token))
}

/// Admin connections open at once: operators' tools and a scraper need few, and a flood on
/// the public port does not take them.
const ADMIN_MAX_CONNECTIONS: usize = 32;

/// A bound listening socket with what its connections are allowed.
pub struct HttpListener {
    socket: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    /// `http` or `admin`, for the logs.
    name: &'static str,
}

#[derive(Clone, Copy)]
struct Limits {
    connections: usize,
    header: Duration,
    idle: Duration,
    request: Duration,
}

impl HttpListener {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

/// The public listener: `http.address`, with TLS when a certificate is configured.
pub async fn bind(config: &HttpConfig) -> anyhow::Result<HttpListener> {
    let address = config.address;
    let socket = TcpListener::bind(address)
        .await
        .with_context(|| format!("http.address: cannot listen on {address}"))?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key, "http")?),
        _ => None,
    };
    Ok(HttpListener {
        socket,
        tls,
        limits: Limits::of(config, config.max_connections),
        name: "http",
    })
}

/// The admin listener: plain HTTP on `admin.address`, with the timeouts of `[http]`.
pub async fn bind_admin(admin: &AdminConfig, http: &HttpConfig) -> anyhow::Result<HttpListener> {
    let address = admin.address;
    let socket = TcpListener::bind(address)
        .await
        .with_context(|| format!("admin.address: cannot listen on {address}"))?;
    Ok(HttpListener {
        socket,
        tls: None,
        limits: Limits::of(http, ADMIN_MAX_CONNECTIONS),
        name: "admin",
    })
}

impl Limits {
    fn of(config: &HttpConfig, connections: usize) -> Self {
        Limits {
            connections,
            header: config.header_timeout,
            idle: config.idle_timeout,
            request: config.request_timeout,
        }
    }
}

/// Serves until shutdown, then lets the connections finish what they are answering.
pub async fn serve(listener: HttpListener, routes: Router, shutdown: Shutdown) {
    let HttpListener {
        socket,
        tls,
        limits,
        name,
    } = listener;
    let routes = routes.layer(middleware::from_fn_with_state(
        limits.request,
        limit_request_time,
    ));
    let slots = Arc::new(Semaphore::new(limits.connections));
    let connections = TaskTracker::new();
    let mut warned_full: Option<Instant> = None;
    loop {
        // The slot is taken before accepting: at the cap, new connections wait in the kernel's
        // backlog and cost this process no file descriptor.
        if slots.available_permits() == 0
            && warned_full.is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
        {
            warn!(
                listener = name,
                limit = limits.connections,
                "connection limit reached; new connections wait until one closes"
            );
            warned_full = Some(Instant::now());
        }
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = socket.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        connections.spawn(connection(
            stream,
            peer,
            tls.clone(),
            routes.clone(),
            limits,
            shutdown.clone(),
            slot,
        ));
    }
    drop(socket);
    info!(listener = name, "stopped accepting");
    connections.close();
    connections.wait().await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    routes: Router,
    limits: Limits,
    shutdown: Shutdown,
    _slot: OwnedSemaphorePermit,
) {
    match tls {
        None => drive(stream, peer, routes, limits, shutdown).await,
        Some(acceptor) => {
            match tokio::time::timeout(limits.header, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => drive(stream, peer, routes, limits, shutdown).await,
                Ok(Err(e)) => debug!(%peer, error = %e, "https handshake failed"),
                Err(_) => debug!(%peer, "https handshake timed out"),
            }
        }
    }
}

/// Runs one connection under the header and idle deadlines.
async fn drive<S>(stream: S, peer: SocketAddr, routes: Router, limits: Limits, shutdown: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service = hyper::service::service_fn({
        let activity = Arc::clone(&activity);
        move |mut request: Request<Incoming>| {
            let handling = activity.handling();
            let mut routes = routes.clone();
            // Who asked, for handlers that log it (admin actions) or serve only some peers.
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            async move {
                let response = routes.call(request).await;
                drop(handling);
                response
            }
        }
    });
    let mut conn = pin!(
        hyper::server::conn::http1::Builder::new()
            // The deadlines are kept by `Activity` below: hyper's own header timer restarts
            // when a response is done, so it would bound idle waiting and header reading as one.
            .header_read_timeout(None)
            .serve_connection(io, service)
    );
    let mut stopping = false;
    loop {
        let deadline = activity.deadline(&limits);
        if let Some((at, what)) = deadline
            && at <= Instant::now()
        {
            debug!(%peer, "{what}; closing the connection");
            return;
        }
        tokio::select! {
            finished = conn.as_mut() => {
                if let Err(e) = finished {
                    debug!(%peer, error = %e, "http connection ended");
                }
                return;
            }
            _ = activity.changed.notified() => {}
            _ = tokio::time::sleep_until(deadline.map_or_else(Instant::now, |(at, _)| at)),
                if deadline.is_some() => {}
            _ = shutdown.cancelled(), if !stopping => {
                // Idle connections close at once; a request in progress is answered first.
                conn.as_mut().graceful_shutdown();
                stopping = true;
            }
        }
    }
}

/// Where a connection is between requests.
#[derive(Clone, Copy)]
enum Phase {
    /// Waiting for a request header to be complete, since the accept or the request's first
    /// byte.
    Header(Instant),
    /// A request is being answered; `http.request_timeout` bounds it.
    Handling,
    /// Answered; waiting for the next request, since the last byte in either direction.
    Idle(Instant),
}

struct Activity {
    phase: Mutex<Phase>,
    /// Wakes the connection's loop when a deadline may have moved earlier.
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Activity {
            phase: Mutex::new(Phase::Header(Instant::now())),
            changed: Notify::new(),
        }
    }

    fn update(&self, change: impl FnOnce(Phase) -> Option<Phase>) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(next) = change(*phase) {
            *phase = next;
            self.changed.notify_one();
        }
    }

    fn bytes_read(&self) {
        self.update(|phase| match phase {
            Phase::Idle(_) => Some(Phase::Header(Instant::now())),
            _ => None,
        });
    }

    /// A client still reading a long answer is not idle.
    fn bytes_written(&self) {
        self.update(|phase| match phase {
            Phase::Idle(_) => Some(Phase::Idle(Instant::now())),
            _ => None,
        });
    }

    fn handling(self: &Arc<Self>) -> Handling {
        self.update(|_| Some(Phase::Handling));
        Handling(Arc::clone(self))
    }

    fn deadline(&self, limits: &Limits) -> Option<(Instant, &'static str)> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Header(since) => {
                Some((since + limits.header, "request header not complete in time"))
            }
            Phase::Handling => None,
            Phase::Idle(since) => Some((since + limits.idle, "idle")),
        }
    }
}

/// Held while a request is answered.
struct Handling(Arc<Activity>);

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.update(|_| Some(Phase::Idle(Instant::now())));
    }
}

/// The connection's stream, reporting bytes as they move.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.bytes_written();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.bytes_written();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// 408 for a request not answered in time, mostly a body sent too slowly; the connection is
/// closed, since what is left of the body is unread.
async fn limit_request_time(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let reason = format!(
                "request not complete within {}",
                humantime::format_duration(limit)
            );
            debug!(%reason, "http request timed out");
            let mut response = (
                StatusCode::REQUEST_TIMEOUT,
                Json(json!({ "error": reason })),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

pub(crate) async fn metrics() -> ([(header::HeaderName, &'static str); 1], String) {
    (
        [(
            header::CONTENT_TYPE,
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
            ..HttpConfig::default()
        };
        let listener = bind(&config).await.unwrap();
        assert!(listener.tls.is_some(), "a certificate was configured");
        let port = listener.local_addr().unwrap().port();
        let shutdown = Shutdown::new();
        let readiness = Readiness::default();
        readiness.set(true);
        let server = tokio::spawn(serve(listener, router(readiness, None), shutdown.clone()));

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
        server.await.unwrap();
    }

    /// Generous: these wait for an outcome, they do not time it.
    const PATIENCE: Duration = Duration::from_secs(20);

    async fn start(config: HttpConfig, routes: Router) -> (SocketAddr, Shutdown) {
        let listener = bind(&HttpConfig {
            address: ([127, 0, 0, 1], 0).into(),
            ..config
        })
        .await
        .unwrap();
        let address = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        tokio::spawn(serve(listener, routes, shutdown.clone()));
        (address, shutdown)
    }

    fn health() -> Router {
        let readiness = Readiness::default();
        readiness.set(true);
        router(readiness, None)
    }

    /// Reads until the server closes; false if it has not within [`PATIENCE`].
    async fn closed_by_server(stream: &mut TcpStream) -> bool {
        use tokio::io::AsyncReadExt as _;
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await,
            Ok(Ok(_)) | Ok(Err(_))
        )
    }

    async fn get_health(stream: &mut TcpStream) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        while !answer.ends_with(b"}") {
            let mut chunk = [0; 1024];
            let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
                .await
                .expect("an answer")
                .unwrap();
            assert!(n > 0, "closed before answering");
            answer.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8(answer).unwrap()
    }

    #[tokio::test]
    async fn a_header_not_finished_in_time_closes_the_connection() {
        use tokio::io::AsyncWriteExt as _;
        let config = HttpConfig {
            header_timeout: Duration::from_millis(200),
            ..HttpConfig::default()
        };
        let (address, _shutdown) = start(config, health()).await;
        let mut slow = TcpStream::connect(address).await.unwrap();
        slow.write_all(b"GET /health HTTP/1.1\r\nHo").await.unwrap();
        assert!(closed_by_server(&mut slow).await);
        // Silence from the start counts the same.
        let mut silent = TcpStream::connect(address).await.unwrap();
        assert!(closed_by_server(&mut silent).await);
    }

    #[tokio::test]
    async fn an_idle_kept_alive_connection_is_closed() {
        let config = HttpConfig {
            idle_timeout: Duration::from_millis(200),
            ..HttpConfig::default()
        };
        let (address, _shutdown) = start(config, health()).await;
        let mut client = TcpStream::connect(address).await.unwrap();
        // Kept alive between requests, then closed once idle.
        assert!(get_health(&mut client).await.starts_with("HTTP/1.1 200"));
        assert!(get_health(&mut client).await.starts_with("HTTP/1.1 200"));
        assert!(closed_by_server(&mut client).await);
    }

    #[tokio::test]
    async fn past_the_connection_cap_a_client_waits_for_a_free_slot() {
        let config = HttpConfig {
            max_connections: 2,
            ..HttpConfig::default()
        };
        let (address, _shutdown) = start(config, health()).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut client = TcpStream::connect(address).await.unwrap();
            get_health(&mut client).await;
            held.push(client);
        }
        let waiting = tokio::spawn(async move {
            let mut client = TcpStream::connect(address).await.unwrap();
            get_health(&mut client).await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "answered past the cap");
        held.pop();
        let answer = tokio::time::timeout(PATIENCE, waiting)
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn a_request_not_answered_in_time_gets_408_and_a_closed_connection() {
        let config = HttpConfig {
            request_timeout: Duration::from_millis(100),
            ..HttpConfig::default()
        };
        let stuck = Router::new().route("/health", get(std::future::pending::<()>));
        let (address, _shutdown) = start(config, stuck).await;
        let mut client = TcpStream::connect(address).await.unwrap();
        let answer = get_health(&mut client).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("connection: close"), "{answer}");
        assert!(closed_by_server(&mut client).await);
    }

    #[tokio::test]
    async fn shutdown_closes_idle_connections_and_returns() {
        let listener = bind(&HttpConfig {
            address: ([127, 0, 0, 1], 0).into(),
            ..HttpConfig::default()
        })
        .await
        .unwrap();
        let address = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let server = tokio::spawn(serve(listener, health(), shutdown.clone()));
        let mut idle = TcpStream::connect(address).await.unwrap();
        get_health(&mut idle).await;
        shutdown.cancel();
        assert!(closed_by_server(&mut idle).await);
        tokio::time::timeout(PATIENCE, server)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_missing_key_file_names_the_key() {
        let config = HttpConfig {
            address: ([127, 0, 0, 1], 0).into(),
            tls_cert: Some("/nonexistent/cert.pem".into()),
            tls_key: Some("/nonexistent/key.pem".into()),
            ..HttpConfig::default()
        };
        let error = bind(&config).await.err().expect("no certificate to read");
        assert!(error.to_string().contains("http.tls_cert"), "{error}");
    }
}
