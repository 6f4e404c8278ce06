//! Wires the pieces together for `serve`: the gateway client (or the embedded simulator), the
//! SMPP listeners, the public and admin HTTP endpoints and the background sweeper, then waits
//! for the shutdown signal and drains the sessions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::admin::{self, Admin, Bearer};
use crate::auth::Authenticator;
use crate::concat::Reassembler;
use crate::config::Config;
use crate::delivery::Delivery;
use crate::gateway::Gateway;
use crate::http::{self, Readiness};
use crate::listener::Listener;
use crate::pipeline::Submitter;
use crate::session;
use crate::session::board::Board;
use crate::session_threads::SessionThreads;
use crate::shutdown::{Shutdown, TaskTracker};
use crate::webhooks;
use smsgate_plugin_host::Plugins;

/// Concatenated messages being reassembled at once, over all accounts.
const MAX_PENDING_CONCAT: usize = 10_000;

pub async fn run(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let started = chrono::Utc::now();
    crate::ids::set_format(config.smpp.message_id_format);
    let background = TaskTracker::new();
    let gateway = Gateway::new(
        &config.gateway.api_base_url,
        config.gateway.timeout,
        config.gateway.retries,
    )?
    .with_mode(config.gateway.mode);
    info!(api = %config.gateway.api_base_url, mode = %config.gateway.mode, "gateway");
    background.spawn(decide_mode(gateway.clone(), shutdown.clone()));
    let plugins = Arc::new(Plugins::load(&config.plugins)?);
    plugins.spawn_reloader(shutdown.clone());
    crate::metrics::get().watch_plugins(Arc::clone(&plugins));
    let tls = match (&config.smpp.tls_cert, &config.smpp.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key, "smpp")?),
        _ => None,
    };
    let plain = Listener::plain(config.smpp.bind_address).await?;
    let secure = match tls {
        Some(acceptor) => Some(Listener::tls(config.smpp.tls_bind_address, acceptor).await?),
        None => None,
    };
    let http_listener = http::bind(&config.http).await?;
    info!(address = %http_listener.local_addr()?, tls = config.http.tls_cert.is_some(), "http listening");
    let admin_listener = http::bind_admin(&config.admin, &config.http).await?;
    let token = config.admin.token.as_deref().map(Bearer::new);
    info!(address = %admin_listener.local_addr()?, token = token.is_some(), "admin listening");
    if token.is_none() && !config.admin.address.ip().is_loopback() {
        warn!(
            address = %config.admin.address,
            "admin.token is unset and admin.address is not a loopback address: only clients on this host are served"
        );
    }
    let delivery = Delivery::open(
        &config.delivery,
        config.gateway.webhook_base_url.clone(),
        config.smpp.default_alphabet,
        Arc::clone(&plugins),
        shutdown.clone(),
        background.clone(),
    )
    .await?;
    if delivery.shared_store().is_none() {
        info!(data_dir = %config.delivery.data_dir.display(), "delivery queue open");
    }

    let submitter = Arc::new(Submitter::new(
        Reassembler::new(config.smpp.concat_timeout, MAX_PENDING_CONCAT),
        Arc::clone(&plugins),
        Arc::clone(&delivery),
        config.smpp.alphabets(),
    ));
    let board = Arc::new(Board::default());
    let shared = Arc::new(session::Shared {
        auth: Authenticator::new(
            gateway,
            Arc::clone(&plugins),
            &config.smpp,
            delivery.shared_store(),
        ),
        submitter: Arc::clone(&submitter),
        delivery: Arc::clone(&delivery),
        settings: config.smpp.clone(),
        board: Arc::clone(&board),
    });
    let readiness = Readiness::default();
    let metrics_token = token.clone().filter(|_| config.admin.metrics_require_token);
    let routes = http::router(readiness.clone(), metrics_token)
        .merge(webhooks::router(Arc::clone(&delivery)));
    background.spawn(http::serve(http_listener, routes, shutdown.clone()));
    let admin = Admin {
        board,
        delivery,
        plugins,
        started,
    };
    let admin_routes = admin::router(admin, token);
    background.spawn(http::serve(admin_listener, admin_routes, shutdown.clone()));
    background.spawn(crate::activity::sample(shutdown.clone()));
    background.spawn(sweep_concatenations(
        Arc::clone(&submitter),
        shutdown.clone(),
    ));

    let sessions = TaskTracker::new();
    let threads = Arc::new(SessionThreads::start().context("cannot start the session threads")?);
    let limit = Arc::new(Semaphore::new(config.smpp.max_connections));
    for listener in std::iter::once(plain).chain(secure) {
        background.spawn(listener.run(
            Arc::clone(&shared),
            Arc::clone(&limit),
            shutdown.clone(),
            sessions.clone(),
            Arc::clone(&threads),
        ));
    }
    readiness.set(true);
    info!("ready");

    shutdown.cancelled().await;
    readiness.set(false);
    info!("shutting down");
    sessions.close();
    let drain = config.smpp.shutdown_grace + config.smpp.response_timeout;
    if tokio::time::timeout(drain, sessions.wait()).await.is_err() {
        warn!(?drain, "sessions still open after the grace period");
    }
    // Parts still waiting for their siblings are sent as they are rather than lost.
    submitter
        .flush_expired(Instant::now() + config.smpp.concat_timeout)
        .await;
    background.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), background.wait()).await;
    info!("stopped");
    Ok(())
}

/// `serve --simulate`: the embedded SMSGate simulator, with the gateway and webhook URLs of
/// `config` pointed at it.
#[cfg(feature = "simulator")]
pub async fn run_simulated(mut config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let (address, simulator) = start_simulator(&config, &shutdown).await?;
    config.gateway.api_base_url = format!("http://{address}{}", config.simulator.mode.api_prefix());
    // The simulated phone posts its webhooks straight back to this server, so receipts and
    // incoming SMS work without any setting.
    if config.gateway.webhook_base_url.is_none() {
        config.gateway.webhook_base_url = Some(format!("http://{}", config.http.address));
    }
    let result = run(config, shutdown).await;
    // It stops on the same signal; it gets the time the server's own background tasks get.
    let _ = tokio::time::timeout(Duration::from_secs(5), simulator).await;
    result
}

#[cfg(feature = "simulator")]
async fn start_simulator(
    config: &Config,
    shutdown: &Shutdown,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let socket = bind_simulator(config.simulator.listen).await?;
    let address = socket.local_addr()?;
    // Printed, not logged: these are demo credentials for the newcomer at the terminal, and
    // logs never carry passwords.
    for account in &config.simulator.accounts {
        println!(
            "simulator account: system_id {:?} password {:?}",
            account.username, account.password
        );
    }
    let simulator = smsgate_simulator::Simulator::new(config.simulator.clone());
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = simulator
            .serve(socket, async move { stop.cancelled().await })
            .await
        {
            warn!(error = %e, "simulator stopped");
        }
    });
    info!(%address, "embedded SMSGate simulator running");
    Ok((address, task))
}

/// `simulator.listen` (by default where `simulator inject-mo` looks), or any free port of its
/// address when that one is taken (another server, a test running beside): `serve --simulate`
/// is for trying the server out, and the address it got is logged.
#[cfg(feature = "simulator")]
async fn bind_simulator(wanted: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let error = match tokio::net::TcpListener::bind(wanted).await {
        Ok(socket) => return Ok(socket),
        Err(error) => error,
    };
    info!(%wanted, %error, "simulator.listen is unavailable; the simulator takes a free port");
    tokio::net::TcpListener::bind((wanted.ip(), 0))
        .await
        .map_err(|e| anyhow::anyhow!("simulator.listen: cannot listen on {wanted}: {e}"))
}

/// Tells the gateway's API now, so the log says at start-up which one the binds will meet; a
/// gateway that does not answer yet is looked at again at the first bind.
async fn decide_mode(gateway: Gateway, shutdown: Shutdown) {
    tokio::select! {
        decided = gateway.api() => if let Err(e) = decided {
            warn!(error = %e, "gateway mode not known yet; it is told at the first bind");
        },
        () = shutdown.cancelled() => {}
    }
}

async fn sweep_concatenations(submitter: Arc<Submitter>, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => submitter.flush_expired(Instant::now()).await,
        }
    }
}
