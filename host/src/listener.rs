//! Accepts SMPP connections, plain and TLS at the same time, and starts a session for each.
//! A connection limit shared by both listeners keeps a flood of sockets from exhausting the
//! process; connections beyond it are closed at once.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::session::{self, Shared};
use crate::session_threads::SessionThreads;
use crate::shutdown::{Shutdown, TaskTracker};

/// A bound SMPP listening socket, TLS or not.
pub struct Listener {
    socket: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Listener {
    pub async fn plain(address: SocketAddr) -> anyhow::Result<Self> {
        let socket = TcpListener::bind(address)
            .await
            .with_context(|| format!("smpp.bind_address: cannot listen on {address}"))?;
        Ok(Listener { socket, tls: None })
    }

    pub async fn tls(address: SocketAddr, acceptor: TlsAcceptor) -> anyhow::Result<Self> {
        let socket = TcpListener::bind(address)
            .await
            .with_context(|| format!("smpp.tls_bind_address: cannot listen on {address}"))?;
        Ok(Listener {
            socket,
            tls: Some(acceptor),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Accepts until shutdown, handing each connection to a session thread; sessions are
    /// tracked so the caller can wait for them.
    pub async fn run(
        self,
        shared: Arc<Shared>,
        limit: Arc<Semaphore>,
        shutdown: Shutdown,
        sessions: TaskTracker,
        threads: Arc<SessionThreads>,
    ) {
        let kind = if self.tls.is_some() { "smpps" } else { "smpp" };
        info!(address = %self.local_addr().map(|a| a.to_string()).unwrap_or_default(), kind, "listening");
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.socket.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
                warn!(%peer, "connection limit reached; closing");
                continue;
            };
            let _ = stream.set_nodelay(true);
            // Out of this runtime's reactor, into the session thread's.
            let stream = match stream.into_std() {
                Ok(stream) => stream,
                Err(e) => {
                    warn!(%peer, error = %e, "cannot hand the connection over; closing");
                    continue;
                }
            };
            let shared = Arc::clone(&shared);
            let shutdown = shutdown.clone();
            let tls = self.tls.clone();
            threads.spawn(&sessions, move |place| async move {
                let stream = match TcpStream::from_std(stream) {
                    Ok(stream) => stream,
                    Err(e) => {
                        warn!(%peer, error = %e, "cannot take the connection over; closing");
                        return;
                    }
                };
                match tls {
                    None => session::run(stream, peer, false, shared, shutdown).await,
                    Some(acceptor) => {
                        let handshake = tokio::time::timeout(
                            shared.settings.bind_timeout,
                            acceptor.accept(stream),
                        );
                        match handshake.await {
                            Ok(Ok(tls_stream)) => {
                                session::run(tls_stream, peer, true, shared, shutdown).await
                            }
                            Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
                drop((permit, place));
            });
        }
        info!(kind, "stopped accepting");
    }
}
