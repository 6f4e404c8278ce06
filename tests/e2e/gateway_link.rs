//! How the server reaches the gateway: connections kept alive and reused, a connection the
//! gateway closed while idle, HTTPS with the certificate the gateway shows, a forward proxy.
//! A hop of the test's own between server and simulator sees every connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpp_codec::command::SUBMIT_SM_RESP;
use smpp_codec::status::{ESME_ROK, ESME_RSYSERR};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::client::*;
use crate::support::*;

/// What the hop does with a connection before passing its bytes on to the simulator.
#[derive(Clone)]
enum Role {
    /// Passes bytes on as they are; also a forward proxy for http targets, whose requests
    /// name the target in the request line, a form the simulator accepts.
    Relay,
    /// Terminates TLS, as a gateway's HTTPS front does.
    Tls(TlsAcceptor),
}

/// A TCP hop in front of the simulator: counts the connections it accepts, keeps the first
/// request line of each, and can cut them all.
struct Hop {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    request_lines: Arc<Mutex<Vec<String>>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: JoinHandle<()>,
}

impl Hop {
    async fn start(simulator: SocketAddr, role: Role) -> Hop {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the hop");
        let addr = listener.local_addr().expect("hop address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let request_lines = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let acceptor = tokio::spawn({
            let (accepted, request_lines, connections) = (
                Arc::clone(&accepted),
                Arc::clone(&request_lines),
                Arc::clone(&connections),
            );
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let (role, lines) = (role.clone(), Arc::clone(&request_lines));
                    let relay = tokio::spawn(async move {
                        let _ = match role {
                            Role::Relay => pass_on(client, simulator, lines).await,
                            Role::Tls(tls) => match tls.accept(client).await {
                                Ok(client) => pass_on(client, simulator, lines).await,
                                Err(e) => Err(e),
                            },
                        };
                    });
                    connections.lock().unwrap().push(relay);
                }
            }
        });
        Hop {
            addr,
            accepted,
            request_lines,
            connections,
            acceptor,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn request_lines(&self) -> Vec<String> {
        self.request_lines.lock().unwrap().clone()
    }

    /// Closes every connection, as a gateway does with connections idle too long; returns once
    /// they are closed.
    async fn cut(&self) {
        let connections: Vec<_> = self.connections.lock().unwrap().drain(..).collect();
        for connection in connections {
            connection.abort();
            let _ = connection.await;
        }
    }
}

impl Drop for Hop {
    fn drop(&mut self) {
        self.acceptor.abort();
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

/// Keeps the connection's first request line, then relays both ways.
async fn pass_on<S: AsyncRead + AsyncWrite + Unpin>(
    client: S,
    simulator: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let mut line = String::new();
    client.read_line(&mut line).await?;
    lines.lock().unwrap().push(line.trim_end().to_owned());
    let mut upstream = TcpStream::connect(simulator).await?;
    upstream.write_all(line.as_bytes()).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

fn message(text: &str) -> rusmpp::Pdu {
    submit_sm("491701234567")
        .short_message(octets(text.as_bytes()))
        .build()
        .into()
}

/// Submits one message and expects it accepted.
async fn submit(esme: &mut Client, text: &str) {
    let sequence = esme.send(message(text)).await;
    esme.response(sequence)
        .await
        .expect(SUBMIT_SM_RESP, ESME_ROK, sequence);
}

fn base_url(scheme: &str, host: &str, hop: &Hop, h: Personality) -> String {
    format!("{scheme}://{host}:{}{}", hop.addr.port(), h.api_prefix())
}

/// A server whose gateway calls pass the hop on their way to the simulator.
async fn relayed() -> (Hop, Harness) {
    let simulator = Setup::new().start_simulator().await;
    let hop = Hop::start(simulator.sim, Role::Relay).await;
    let personality = personality_from_env();
    let h = simulator
        .server_env(
            "GATEWAY__API_BASE_URL",
            &base_url("http", "127.0.0.1", &hop, personality),
        )
        .start_server()
        .await;
    (hop, h)
}

#[tokio::test]
async fn calls_share_kept_alive_connections() {
    let (hop, h) = relayed().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    submit(&mut esme, "the first").await;
    // A connection belongs to the thread that opened it: one for the calls of the server's
    // start, one for the bind's session thread.
    let opened = hop.accepted();
    assert!(opened <= 2, "{:?}", hop.request_lines());
    for n in 0..20 {
        submit(&mut esme, &format!("one after another {n}")).await;
    }
    // Twenty submits, one at a time, on the connection the session's thread already has.
    assert_eq!(hop.accepted(), opened, "{:?}", hop.request_lines());

    let mut sent = Vec::new();
    for n in 0..10 {
        sent.push(esme.send(message(&format!("at once {n}"))).await);
    }
    let mut answered = Vec::new();
    for _ in 0..sent.len() {
        let resp = esme.read().await;
        assert_eq!(
            (resp.command_id, resp.status),
            (SUBMIT_SM_RESP, ESME_ROK),
            "{resp:?}"
        );
        answered.push(resp.sequence);
    }
    answered.sort();
    assert_eq!(answered, sent);
    // Ten at once take at most ten connections, the one kept alive included.
    assert!(
        hop.accepted() < opened + 10,
        "{} connections",
        hop.accepted()
    );
    assert_eq!(
        h.wait_for_messages(31, Duration::from_secs(10)).await.len(),
        31
    );
}

#[tokio::test]
async fn a_connection_the_gateway_closed_while_idle_costs_nothing() {
    let (hop, h) = relayed().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    submit(&mut esme, "before the cut").await;
    let before = hop.accepted();
    hop.cut().await;
    submit(&mut esme, "after the cut").await;
    assert_eq!(hop.accepted(), before + 1);
    assert_eq!(
        h.wait_for_messages(2, Duration::from_secs(10)).await.len(),
        2
    );
    // Seen closed before the request went out: a new connection, not a retry.
    let log = h.server_log();
    assert!(!log.contains("retrying gateway call"), "{log}");
}

#[tokio::test]
async fn an_https_gateway_is_trusted_by_its_certificate_only() {
    install_crypto_provider();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let dir = TempDir::new("gateway-tls");
    let ca_file = dir.path().join("gateway.pem");
    std::fs::write(&ca_file, cert.pem()).expect("write the certificate");
    let key = rustls::pki_types::PrivateKeyDer::try_from(signing_key.serialize_der())
        .expect("private key");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("server config");
    let tls = TlsAcceptor::from(Arc::new(config));

    let personality = personality_from_env();
    let simulator = Setup::new().start_simulator().await;
    let hop = Hop::start(simulator.sim, Role::Tls(tls.clone())).await;
    let url = base_url("https", "localhost", &hop, personality);
    let h = simulator
        .server_env("GATEWAY__API_BASE_URL", &url)
        .server_env("SSL_CERT_FILE", ca_file.to_str().expect("path"))
        .start_server()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    submit(&mut esme, "over https").await;
    // One connection for the calls of the server's start, one for the session's thread, which
    // the bind's calls and the submit took.
    assert!(hop.accepted() <= 2, "{:?}", hop.request_lines());
    assert_eq!(
        h.wait_for_messages(1, Duration::from_secs(10)).await.len(),
        1
    );

    // The same gateway, to a server that does not trust its certificate: binds fail, and the
    // log says why.
    let simulator = Setup::new().start_simulator().await;
    let hop = Hop::start(simulator.sim, Role::Tls(tls)).await;
    let url = base_url("https", "localhost", &hop, personality);
    let h = simulator
        .server_env("GATEWAY__API_BASE_URL", &url)
        .start_server()
        .await;
    let mut esme = h.connect().await;
    let resp = esme
        .bind(BindKind::Transmitter, DEMO_USER, DEMO_PASSWORD)
        .await;
    // Not the password's fault: the gateway could not be reached safely.
    assert_eq!(resp.status, ESME_RSYSERR, "{resp:?}");
    let log = h.server_log();
    assert!(log.contains("invalid peer certificate"), "{log}");
}

#[tokio::test]
async fn gateway_calls_go_through_the_proxy_the_environment_names() {
    let simulator = Setup::new().start_simulator().await;
    let proxy = Hop::start(simulator.sim, Role::Relay).await;
    let sim = simulator.sim;
    let h = simulator
        .server_env("HTTP_PROXY", &format!("http://{}", proxy.addr))
        .server_env("NO_PROXY", "")
        .start_server()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    submit(&mut esme, "through the proxy").await;
    let lines = proxy.request_lines();
    let target = format!("http://{sim}{}", h.personality.api_prefix());
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("GET {target}/"))),
        "the bind check went to the gateway directly: {lines:?}"
    );
    assert_eq!(
        h.wait_for_messages(1, Duration::from_secs(10)).await.len(),
        1
    );
}
