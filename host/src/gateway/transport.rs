//! HTTP/1.1 to the gateway, each request driving its own connection. A general-purpose client
//! runs every connection as a task of its own, so each call crosses threads four times (the
//! request to that task, the bytes out, the bytes in, the answer back); here the task that
//! needs the answer writes the request and reads the answer itself, and a connection between
//! calls is just a value in the pool. That is about a third of the server's CPU per relayed
//! message, and of the latency it adds (README, "Performance").
//!
//! Behind a forward proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, with `NO_PROXY`) calls
//! take reqwest instead, which speaks to proxies; the proxy's own hop costs more than the
//! hand-overs saved here.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::runtime;
use url::Url;

/// A connection unused this long may have been closed by the other side or a middlebox
/// without our noticing; it is dropped rather than tried (servers keep idle connections for a
/// minute or more: nginx 75 s, Go's net/http 90 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// Idle connections kept per gateway, enough for a window of 64 on several binds.
const MAX_IDLE: usize = 256;

/// Where requests go: scheme, host and port, as the pool keys connections.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
    /// Of the fields above, taken once: the pool is looked up twice per request.
    hash: u64,
}

impl Origin {
    fn new(https: bool, host: String, port: u16) -> Self {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        // Fixed keys: equal origins made anywhere must hash alike.
        let hash = BuildHasherDefault::<DefaultHasher>::new().hash_one((https, &host, port));
        Origin {
            https,
            host,
            port,
            hash,
        }
    }
}

impl std::hash::Hash for Origin {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// One URL, taken apart once: what the pool needs and what the request line and `Host`
/// header carry.
#[derive(Clone, Debug)]
pub struct Target {
    origin: Arc<Origin>,
    path: Uri,
    host_header: HeaderValue,
}

impl Target {
    /// `url` on the same origin as this target (the caller's to make sure): only the path is
    /// taken apart, so a call to a new path costs no more than parsing it.
    pub fn at(&self, url: &Url) -> anyhow::Result<Self> {
        Ok(Target {
            origin: Arc::clone(&self.origin),
            path: path_and_query(url).parse()?,
            host_header: self.host_header.clone(),
        })
    }

    pub fn new(url: &Url) -> anyhow::Result<Self> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => anyhow::bail!("{other}: only http and https gateways are supported"),
        };
        let named = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("{url} names no host"))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| anyhow::anyhow!("{url} names no port"))?;
        let host_header = match url.port() {
            Some(port) => HeaderValue::try_from(format!("{named}:{port}"))?,
            None => HeaderValue::try_from(named)?,
        };
        Ok(Target {
            origin: Arc::new(Origin::new(
                https,
                // IPv6 literals come bracketed, as a URL writes them.
                named.trim_start_matches('[').trim_end_matches(']').into(),
                port,
            )),
            path: path_and_query(url).parse()?,
            host_header,
        })
    }
}

/// What the request line carries of `url`.
fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.origin.https { "https" } else { "http" };
        let host = self.host_header.to_str().unwrap_or("?");
        write!(f, "{scheme}://{host}{}", self.path)
    }
}

/// An answer read whole.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// A body read piece by piece up to a limit. One that comes in one piece, as a gateway's
/// short answers do, is kept as it came; more pieces are gathered in one buffer.
#[derive(Default)]
struct Collected {
    first: Bytes,
    more: BytesMut,
}

impl Collected {
    fn take(&mut self, data: Bytes, limit: usize) -> Result<(), Failure> {
        if self.first.len() + self.more.len() + data.len() > limit {
            return Err(Failure::TooLong);
        }
        if self.first.is_empty() && self.more.is_empty() {
            self.first = data;
        } else {
            if self.more.is_empty() {
                self.more
                    .extend_from_slice(&std::mem::take(&mut self.first));
            }
            self.more.extend_from_slice(&data);
        }
        Ok(())
    }

    fn answer(self, status: StatusCode) -> Answer {
        let body = if self.more.is_empty() {
            self.first
        } else {
            self.more.freeze()
        };
        Answer { status, body }
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum Failure {
    /// No connection could be made, or the request went out and no whole answer came back.
    Network(String),
    /// The answer is longer than the caller accepts.
    TooLong,
}

/// Anything a connection runs over, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

type Io = TokioIo<Box<dyn Stream>>;

/// The HTTP client of every gateway made from one configuration; clones share the pool.
#[derive(Clone)]
pub struct Transport {
    shared: Arc<Shared>,
}

struct Shared {
    /// Per runtime and gateway, the most recently used last. A socket belongs to the reactor
    /// of the runtime it was opened on: used from another, every readiness would cross
    /// threads, and it would die with that runtime (see `session_threads`).
    idle: Mutex<HashMap<PoolKey, VecDeque<Idle>>>,
    /// For gateways a forward proxy is configured for: which schemes it serves, and the client
    /// that goes through it.
    proxied: Option<(Proxied, reqwest::Client)>,
    tls: tokio_rustls::TlsConnector,
    connect_timeout: Duration,
    user_agent: HeaderValue,
}

struct Idle {
    /// Boxed: in and out of the pool per request, and a connection's buffers and state
    /// machine are hundreds of bytes to copy each way.
    connection: Box<Connection>,
    since: Instant,
}

type PoolKey = (runtime::Id, Arc<Origin>);

/// Where in the pool the connections of `origin` opened on the calling task's runtime wait.
fn pool_key(origin: &Arc<Origin>) -> PoolKey {
    (runtime::Handle::current().id(), Arc::clone(origin))
}

impl Transport {
    pub fn new(connect_timeout: Duration) -> anyhow::Result<Self> {
        use rustls_platform_verifier::ConfigVerifierExt;
        crate::tls::install_crypto_provider();
        let mut tls = rustls::ClientConfig::with_platform_verifier()?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let proxied = match Proxied::from_env() {
            Some(proxied) => Some((
                proxied,
                crate::tls::http_client()
                    .connect_timeout(connect_timeout)
                    .build()?,
            )),
            None => None,
        };
        Ok(Transport {
            shared: Arc::new(Shared {
                idle: Mutex::default(),
                proxied,
                tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
                connect_timeout,
                user_agent: HeaderValue::from_static(crate::tls::USER_AGENT),
            }),
        })
    }

    /// Sends one request and reads its answer, refusing one longer than `limit` bytes.
    pub async fn send(
        &self,
        method: Method,
        target: &Target,
        authorization: Option<HeaderValue>,
        json: Option<Bytes>,
        limit: usize,
    ) -> Result<Answer, Failure> {
        if let Some((proxied, client)) = &self.shared.proxied
            && proxied.serves(&target.origin)
        {
            return send_proxied(client, method, target, authorization, json, limit).await;
        }
        let has_body = json.is_some();
        let mut request = Request::new(Full::new(json.unwrap_or_default()));
        *request.method_mut() = method;
        *request.uri_mut() = target.path.clone();
        let headers = request.headers_mut();
        headers.insert(header::HOST, target.host_header.clone());
        headers.insert(header::USER_AGENT, self.shared.user_agent.clone());
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        if let Some(authorization) = authorization {
            headers.insert(header::AUTHORIZATION, authorization);
        }
        if has_body {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        // Looked up once: the runtime and the gateway do not change while this call lasts.
        let pool = pool_key(&target.origin);
        loop {
            let (mut connection, pooled) = match self.checkout(&pool) {
                Some(connection) => (connection, true),
                // Once per connection, and a third of the request's future: boxed.
                None => (
                    Box::new(Box::pin(self.connect(&target.origin)).await?),
                    false,
                ),
            };
            match connection.exchange(request, limit).await {
                Ok(answer) => {
                    if connection.reusable() {
                        self.checkin(&pool, connection);
                    }
                    return Ok(answer);
                }
                // A pooled connection the gateway had closed: nothing was sent, so the
                // request goes out on another one.
                Err(Exchange::NotSent(again)) if pooled => request = *again,
                Err(Exchange::NotSent(_)) => {
                    return Err(Failure::Network(
                        "the connection closed before the request was sent".into(),
                    ));
                }
                Err(Exchange::Failed(failure)) => return Err(failure),
            }
        }
    }

    fn checkout(&self, pool: &PoolKey) -> Option<Box<Connection>> {
        let mut idle = self.shared.idle.lock().unwrap_or_else(|e| e.into_inner());
        let connections = idle.get_mut(pool)?;
        // The most recently used first: the warmest, and the least likely to have been closed.
        while let Some(Idle { connection, since }) = connections.pop_back() {
            if since.elapsed() < IDLE_TIMEOUT {
                return Some(connection);
            }
        }
        None
    }

    fn checkin(&self, pool: &PoolKey, connection: Box<Connection>) {
        let mut idle = self.shared.idle.lock().unwrap_or_else(|e| e.into_inner());
        let connections = idle.entry(pool.clone()).or_default();
        let now = Instant::now();
        // The least recently used go first, so that connections a quieter hour left behind
        // are closed here rather than kept open by the pool.
        while connections
            .front()
            .is_some_and(|oldest| now.saturating_duration_since(oldest.since) >= IDLE_TIMEOUT)
        {
            connections.pop_front();
        }
        if connections.len() < MAX_IDLE {
            connections.push_back(Idle {
                connection,
                since: now,
            });
        }
    }

    async fn connect(&self, origin: &Origin) -> Result<Connection, Failure> {
        let shared = &self.shared;
        let connecting = async {
            let tcp = match origin.host.parse::<IpAddr>() {
                Ok(ip) => TcpStream::connect((ip, origin.port)).await,
                Err(_) => TcpStream::connect((origin.host.as_str(), origin.port)).await,
            }
            .map_err(|e| {
                Failure::Network(format!(
                    "cannot connect to {}:{}: {e}",
                    origin.host, origin.port
                ))
            })?;
            // Requests are small and written whole; waiting to coalesce them only adds latency.
            let _ = tcp.set_nodelay(true);
            let stream: Box<dyn Stream> = if origin.https {
                let name = ServerName::try_from(origin.host.clone()).map_err(|e| {
                    Failure::Network(format!("{} is not a valid TLS name: {e}", origin.host))
                })?;
                let tls = shared.tls.connect(name, tcp).await.map_err(|e| {
                    Failure::Network(format!(
                        "TLS with {}: {}",
                        origin.host,
                        super::error_chain(&e)
                    ))
                })?;
                Box::new(tls)
            } else {
                Box::new(tcp)
            };
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| Failure::Network(super::error_chain(&e)))?;
            Ok(Connection {
                sender,
                driver: connection,
                finished: false,
            })
        };
        tokio::time::timeout(shared.connect_timeout, connecting)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Network(format!(
                    "cannot connect to {}:{} within {:?}",
                    origin.host, origin.port, shared.connect_timeout
                )))
            })
    }
}

/// The forward proxies configured in the environment, by the schemes they serve.
struct Proxied {
    http: bool,
    https: bool,
}

impl Proxied {
    fn from_env() -> Option<Self> {
        let set = |names: &[&str]| {
            names
                .iter()
                .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
        };
        let all = set(&["ALL_PROXY", "all_proxy"]);
        let proxied = Proxied {
            http: all || set(&["HTTP_PROXY", "http_proxy"]),
            https: all || set(&["HTTPS_PROXY", "https_proxy"]),
        };
        (proxied.http || proxied.https).then_some(proxied)
    }

    fn serves(&self, origin: &Origin) -> bool {
        if origin.https { self.https } else { self.http }
    }
}

/// The same exchange through reqwest, which applies the proxy settings (`NO_PROXY` included).
async fn send_proxied(
    client: &reqwest::Client,
    method: Method,
    target: &Target,
    authorization: Option<HeaderValue>,
    json: Option<Bytes>,
    limit: usize,
) -> Result<Answer, Failure> {
    let failed = |e: reqwest::Error| Failure::Network(super::error_chain(&e));
    let mut request = client.request(method, target.to_string());
    if let Some(authorization) = authorization {
        request = request.header(header::AUTHORIZATION, authorization);
    }
    if let Some(json) = json {
        request = request
            .header(header::CONTENT_TYPE, "application/json")
            .body(json);
    }
    let mut response = request.send().await.map_err(failed)?;
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(Failure::TooLong);
    }
    let status = response.status();
    let mut body = Collected::default();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        body.take(chunk, limit)?;
    }
    Ok(body.answer(status))
}

/// One HTTP/1.1 connection: the handle that queues a request, and the state machine that does
/// the reading and writing, which whoever waits for an answer polls.
struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: http1::Connection<Io, Full<Bytes>>,
    /// The state machine has ended (closed, or failed); it must not be polled again.
    finished: bool,
}

enum Exchange {
    NotSent(Box<Request<Full<Bytes>>>),
    Failed(Failure),
}

impl Connection {
    /// Moves the connection on as far as it can go, then polls what the caller waits for.
    fn drive<T>(
        &mut self,
        cx: &mut Context<'_>,
        waited: impl FnOnce(&mut Self, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        advance(&mut self.driver, &mut self.finished, cx);
        waited(self, cx)
    }

    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
        limit: usize,
    ) -> Result<Answer, Exchange> {
        let ready = poll_fn(|cx| {
            self.drive(cx, |this, cx| {
                if this.finished {
                    return Poll::Ready(false);
                }
                this.sender.poll_ready(cx).map(|ready| ready.is_ok())
            })
        })
        .await;
        if !ready {
            return Err(Exchange::NotSent(Box::new(request)));
        }
        let mut answer = std::pin::pin!(self.sender.try_send_request(request));
        // The answer borrows the sender, so the connection is advanced field by field here.
        let response = poll_fn(|cx| {
            advance(&mut self.driver, &mut self.finished, cx);
            answer.as_mut().poll(cx)
        })
        .await;
        let response = match response {
            Ok(response) => response,
            Err(mut e) => {
                return Err(match e.take_message() {
                    Some(request) => Exchange::NotSent(Box::new(request)),
                    None => Exchange::Failed(Failure::Network(super::error_chain(e.error()))),
                });
            }
        };
        self.read_body(response, limit)
            .await
            .map_err(Exchange::Failed)
    }

    async fn read_body(
        &mut self,
        response: Response<Incoming>,
        limit: usize,
    ) -> Result<Answer, Failure> {
        let status = response.status();
        let mut body = response.into_body();
        if body
            .size_hint()
            .exact()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(Failure::TooLong);
        }
        let mut read = Collected::default();
        loop {
            let frame =
                poll_fn(|cx| self.drive(cx, |_, cx| Pin::new(&mut body).poll_frame(cx))).await;
            match frame {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        read.take(data, limit)?;
                    }
                }
                Some(Err(e)) => return Err(Failure::Network(super::error_chain(&e))),
            }
        }
        Ok(read.answer(status))
    }

    /// Whether the connection can carry another request: it lets the state machine see the
    /// end of this exchange first (a `Connection: close` answer ends it here).
    fn reusable(&mut self) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let _ = self.drive(&mut cx, |_, _| Poll::Ready(()));
        !self.finished && !self.sender.is_closed()
    }
}

/// Polls the connection's state machine unless it has ended, and notes when it does (closed
/// by either side, or failed: a request under way learns which from its answer's channel).
fn advance(
    driver: &mut http1::Connection<Io, Full<Bytes>>,
    finished: &mut bool,
    cx: &mut Context<'_>,
) {
    if !*finished && Pin::new(driver).poll(cx).is_ready() {
        *finished = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_on_one_origin_find_its_connections() {
        let target = |url: &str| Target::new(&Url::parse(url).unwrap()).unwrap();
        let messages = target("http://gateway.test:3100/3rdparty/v1/messages");
        let mut pool = HashMap::new();
        pool.insert(Arc::clone(&messages.origin), "idle connections");
        let health = target("http://gateway.test:3100/health");
        assert_eq!(pool.get(&health.origin), Some(&"idle connections"));
        for other in [
            "https://gateway.test:3100/health",
            "http://gateway.test:3101/health",
            "http://other.test:3100/health",
        ] {
            assert_eq!(pool.get(&target(other).origin), None, "{other}");
        }
    }

    #[test]
    fn a_body_in_pieces_is_read_in_order_up_to_the_limit() {
        let mut one = Collected::default();
        one.take(Bytes::from_static(b"{}"), 8).unwrap();
        assert_eq!(one.answer(StatusCode::OK).body, "{}");

        let mut pieces = Collected::default();
        for piece in [&b"ab"[..], b"cd", b"ef"] {
            pieces.take(Bytes::from_static(piece), 6).unwrap();
        }
        assert!(matches!(
            pieces.take(Bytes::from_static(b"g"), 6),
            Err(Failure::TooLong)
        ));
        assert_eq!(pieces.answer(StatusCode::OK).body, "abcdef");
    }
}
