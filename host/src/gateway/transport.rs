//! HTTP/1.1 to the gateway, each request driving its own connection. A general-purpose client
//! runs every connection as a task of its own, so each call crosses threads four times (the
//! request to that task, the bytes out, the bytes in, the answer back), and even driven by the
//! caller it passes the request, the answer and its body through channels to and from the
//! connection's state machine. Here the task that needs the answer writes the request into the
//! connection's buffer, writes that to the socket and reads the answer out of what comes back
//! (framing: the `http1-framing` crate); a connection between calls is just a value in the
//! pool. The crossings cost about a third of the server's CPU per relayed message, and the
//! channels another 2 µs of the 11 left (README, "Performance").
//!
//! Behind a forward proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, with `NO_PROXY`) calls
//! take reqwest instead, which speaks to proxies; the proxy's own hop costs more than the
//! hand-overs saved here.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http1_framing::{AnswerReader, Collected};
use hyper::Method;
use hyper::header::{self, HeaderValue};
use hyper::http::uri::PathAndQuery;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::runtime;
use url::Url;

pub use http1_framing::Answer;

/// A connection unused this long may have been closed by the other side or a middlebox
/// without our noticing; it is dropped rather than tried (servers keep idle connections for a
/// minute or more: nginx 75 s, Go's net/http 90 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// Idle connections kept per gateway, enough for a window of 64 on several binds.
const MAX_IDLE: usize = 256;

/// Room made for each read of an answer: a gateway's answers are a few hundred bytes.
const READ_SIZE: usize = 4096;

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
    path: PathAndQuery,
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

/// Why a request got no answer.
#[derive(Debug)]
pub enum Failure {
    /// No connection could be made, or the request went out and no whole answer came back.
    Network(String),
    /// The answer is longer than the caller accepts.
    TooLong,
}

impl From<http1_framing::Error> for Failure {
    fn from(e: http1_framing::Error) -> Self {
        match e {
            http1_framing::Error::TooLong => Failure::TooLong,
            e => Failure::Network(e.to_string()),
        }
    }
}

/// Anything a connection runs over, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

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
        // Looked up once: the runtime and the gateway do not change while this call lasts.
        let pool = pool_key(&target.origin);
        loop {
            let (mut connection, pooled) = match self.checkout(&pool) {
                Some(mut connection) => {
                    // Closed by the gateway while it waited: dropped, and the next one tried.
                    if connection.closed_while_idle() {
                        continue;
                    }
                    (connection, true)
                }
                // Once per connection, and a third of the request's future: boxed.
                None => (
                    Box::new(Box::pin(self.connect(&target.origin)).await?),
                    false,
                ),
            };
            connection.write_request(
                &method,
                target,
                &self.shared.user_agent,
                authorization.as_ref(),
                json.as_deref(),
            );
            match connection.exchange(&method, limit).await {
                Ok((answer, reusable)) => {
                    if reusable {
                        self.checkin(&pool, connection);
                    }
                    return Ok(answer);
                }
                // A pooled connection the gateway had closed: nothing reached it, so the
                // request goes out on another one.
                Err(Exchange::NotSent(_)) if pooled => {}
                Err(Exchange::NotSent(e)) => {
                    return Err(Failure::Network(format!("sending the request: {e}")));
                }
                // Closed as the request went out, the race every kept-alive connection has:
                // a request that does the same however often it is made goes out again
                // (RFC 9112, 9.3.1); a POST does not, as the gateway may have acted on it.
                Err(Exchange::Unanswered(_)) if pooled && method.is_idempotent() => {}
                Err(Exchange::Unanswered(failure) | Exchange::Failed(failure)) => {
                    return Err(failure);
                }
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
            Ok(Connection {
                io: stream,
                received: BytesMut::new(),
                request: Vec::new(),
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

/// One HTTP/1.1 connection, with the buffers its requests and answers pass through.
struct Connection {
    io: Box<dyn Stream>,
    /// What the gateway sent and no answer has taken yet.
    received: BytesMut,
    /// The request under way, written whole before it goes out.
    request: Vec<u8>,
}

enum Exchange {
    /// Writing the request failed: the gateway has none of it, or not enough to act on.
    NotSent(std::io::Error),
    /// The connection ended before a byte of the answer came.
    Unanswered(Failure),
    Failed(Failure),
}

impl Connection {
    fn write_request(
        &mut self,
        method: &Method,
        target: &Target,
        user_agent: &HeaderValue,
        authorization: Option<&HeaderValue>,
        json: Option<&[u8]>,
    ) {
        static ACCEPT: HeaderValue = HeaderValue::from_static("*/*");
        static JSON: HeaderValue = HeaderValue::from_static("application/json");
        let headers = [
            ("Host", Some(&target.host_header)),
            ("User-Agent", Some(user_agent)),
            ("Accept", Some(&ACCEPT)),
            ("Authorization", authorization),
            ("Content-Type", json.map(|_| &JSON)),
        ];
        let present = headers
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?)));
        http1_framing::write_request(&mut self.request, method, &target.path, present, json);
    }

    /// Sends the request written last and reads its answer; whether the connection can carry
    /// another request comes with it.
    async fn exchange(
        &mut self,
        method: &Method,
        limit: usize,
    ) -> Result<(Answer, bool), Exchange> {
        let sent = async {
            self.io.write_all(&self.request).await?;
            self.io.flush().await
        };
        sent.await.map_err(Exchange::NotSent)?;
        let failed = |e: http1_framing::Error| Exchange::Failed(e.into());
        let mut reader = AnswerReader::new(method, limit);
        let mut heard = false;
        loop {
            if let Some(answer) = reader.read(&mut self.received).map_err(failed)? {
                // Bytes after the answer were never asked for: the connection is not trusted.
                let reusable = reader.keep_alive() && self.received.is_empty();
                return Ok((answer, reusable));
            }
            self.received.reserve(READ_SIZE);
            let ended = match self.io.read_buf(&mut self.received).await {
                Ok(0) => match reader.closed() {
                    Ok(answer) => return Ok((answer, false)),
                    Err(e) => e.to_string(),
                },
                Ok(_) => {
                    heard = true;
                    continue;
                }
                Err(e) => format!("reading the answer: {e}"),
            };
            return Err(if heard {
                Exchange::Failed(Failure::Network(ended))
            } else {
                Exchange::Unanswered(Failure::Network(ended))
            });
        }
    }

    /// Whether the gateway closed the connection (or sent something unasked) while it was in
    /// the pool. Costs no system call when nothing came: the socket is known not readable.
    fn closed_while_idle(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut byte = [0; 1];
        let mut buf = ReadBuf::new(&mut byte);
        Pin::new(&mut self.io)
            .poll_read(&mut cx, &mut buf)
            .is_ready()
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

    /// What the test's gateway does with a request: answers it with these bytes, and then
    /// closes the connection or not (no bytes and closing: closed as the request came).
    type Reply = (&'static [u8], bool);

    const CLOSE: bool = true;
    const KEEP: bool = false;

    /// A gateway of the test's own that meets each request with the next of `replies`, byte
    /// for byte, and counts the connections it accepted and the requests on each. It closes a
    /// connection only when a reply says so, so the client alone decides whether to reuse one.
    async fn scripted_gateway(replies: Vec<Reply>) -> (Url, Arc<Mutex<Vec<usize>>>) {
        use tokio::io::AsyncBufReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/health", listener.local_addr().unwrap()));
        let requests_per_connection = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests_per_connection);
        tokio::spawn(async move {
            let mut replies = replies.into_iter();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let connection = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(0);
                    seen.len() - 1
                };
                let mut socket = tokio::io::BufReader::new(socket);
                // Each request: its head, then a body of the length it gives.
                let mut line = String::new();
                let mut length = 0;
                loop {
                    line.clear();
                    if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                        break;
                    }
                    if let Some(value) = line.strip_prefix("Content-Length: ") {
                        length = value.trim().parse().unwrap();
                    }
                    if line != "\r\n" {
                        continue;
                    }
                    socket.read_exact(&mut vec![0; length]).await.unwrap();
                    length = 0;
                    seen.lock().unwrap()[connection] += 1;
                    let Some((answer, close)) = replies.next() else {
                        return;
                    };
                    socket.get_mut().write_all(answer).await.unwrap();
                    if close {
                        break;
                    }
                }
            }
        });
        (url.unwrap(), requests_per_connection)
    }

    async fn call(transport: &Transport, method: Method, url: &Url) -> Result<Answer, Failure> {
        let target = Target::new(url).unwrap();
        let json = (method == Method::POST).then(|| Bytes::from_static(b"{}"));
        transport.send(method, &target, None, json, 1024).await
    }

    #[tokio::test]
    async fn connections_are_kept_as_long_as_the_gateway_frames_its_answers() {
        let (url, connections) = scripted_gateway(vec![
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                KEEP,
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ntrue", KEEP),
            (
                b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                KEEP,
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1", KEEP),
        ])
        .await;
        let transport = Transport::new(Duration::from_secs(5)).unwrap();
        let bodies = [(200, "{}"), (200, "true"), (503, ""), (200, "1")];
        for (status, body) in bodies {
            let answer = call(&transport, Method::GET, &url)
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(
                (answer.status.as_u16(), &answer.body[..]),
                (status, body.as_bytes())
            );
        }
        // Three requests on the first connection; after `Connection: close` (the gateway kept
        // the connection open all the same) the next went on a new one.
        assert_eq!(*connections.lock().unwrap(), [3, 1]);
    }

    #[tokio::test]
    async fn an_answer_cut_short_or_too_long_is_no_answer() {
        let (url, connections) = scripted_gateway(vec![
            (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", CLOSE),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", KEEP),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", KEEP),
        ])
        .await;
        let transport = Transport::new(Duration::from_secs(5)).unwrap();
        match call(&transport, Method::GET, &url).await {
            Err(Failure::Network(reason)) => assert!(reason.contains("closed"), "{reason}"),
            other => panic!("{:?}", other.map(|a| a.status)),
        }
        assert!(matches!(
            call(&transport, Method::GET, &url).await,
            Err(Failure::TooLong)
        ));
        // Neither connection is used again: the one whose answer was not read ends with it.
        assert_eq!(
            &call(&transport, Method::GET, &url).await.unwrap().body[..],
            b"{}"
        );
        assert_eq!(*connections.lock().unwrap(), [1, 1, 1]);
    }

    #[tokio::test]
    async fn a_kept_connection_closed_unanswered_is_retried_only_for_what_may_be_repeated() {
        const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        let (url, connections) = scripted_gateway(vec![
            (OK, KEEP),
            (b"", CLOSE),
            (OK, KEEP),
            (b"", CLOSE),
            (OK, KEEP),
        ])
        .await;
        let transport = Transport::new(Duration::from_secs(5)).unwrap();
        call(&transport, Method::GET, &url).await.unwrap();
        // The gateway closes the kept connection as the GET arrives: it goes out again.
        let answer = call(&transport, Method::GET, &url).await;
        assert_eq!(&answer.unwrap().body[..], b"{}");
        assert_eq!(*connections.lock().unwrap(), [2, 1]);
        // The same for a POST fails the call: the gateway had it once, and only once.
        match call(&transport, Method::POST, &url).await {
            Err(Failure::Network(reason)) => assert!(reason.contains("closed"), "{reason}"),
            other => panic!("{:?}", other.map(|a| a.status)),
        }
        assert_eq!(*connections.lock().unwrap(), [2, 2]);
        call(&transport, Method::POST, &url).await.unwrap();
        assert_eq!(*connections.lock().unwrap(), [2, 2, 1]);
    }
}
