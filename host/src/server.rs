//! Wires the pieces together for `serve`: the gateway client (or the embedded simulator), the
//! SMPP listeners, the HTTP endpoints and the background sweeper, then waits for the shutdown
//! signal and drains the sessions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::auth::Authenticator;
use crate::concat::Reassembler;
use crate::config::Config;
use crate::delivery::Delivery;
use crate::gateway::Gateway;
use crate::http::{self, Readiness};
use crate::listener::Listener;
use crate::pipeline;
use crate::plugins::Plugins;
use crate::shutdown::{Shutdown, TaskTracker};
use crate::simulator::Simulator;
use crate::webhooks;

/// Where `serve --simulate` runs its simulator when the port is free.
const SIMULATOR_ADDRESS: &str = "127.0.0.1:3100";

/// Concatenated messages being reassembled at once, over all accounts.
const MAX_PENDING_CONCAT: usize = 10_000;

/// What every session shares.
pub struct Context {
    pub config: Config,
    pub auth: Authenticator,
    pub concat: Reassembler,
    pub plugins: Arc<Plugins>,
    pub delivery: Arc<Delivery>,
}

pub async fn run(mut config: Config, simulate: bool, shutdown: Shutdown) -> anyhow::Result<()> {
    crate::ids::set_format(config.smpp.message_id_format);
    let background = TaskTracker::new();
    if simulate {
        let address = start_simulator(&config, &shutdown, &background).await?;
        config.gateway.api_base_url = format!("http://{address}/3rdparty/v1");
        // The simulated phone posts its webhooks straight back to this server, so receipts
        // and incoming SMS work without any setting.
        if config.gateway.webhook_base_url.is_none() {
            config.gateway.webhook_base_url = Some(format!("http://{}", config.http.address));
        }
    }
    let gateway = Gateway::new(
        &config.gateway.api_base_url,
        config.gateway.timeout,
        config.gateway.retries,
    )?;
    info!(api = %config.gateway.api_base_url, "gateway");
    let plugins = Arc::new(Plugins::load(&config.plugins)?);
    plugins.spawn_reloader(shutdown.clone());
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
    info!(address = %config.http.address, tls = config.http.tls_cert.is_some(), "http listening");
    let delivery = Delivery::open(
        &config.delivery,
        config.gateway.webhook_base_url.clone(),
        config.smpp.default_alphabet,
        Arc::clone(&plugins),
        shutdown.clone(),
        background.clone(),
    )?;
    info!(data_dir = %config.delivery.data_dir.display(), "delivery queue open");

    let ctx = Arc::new(Context {
        auth: Authenticator::new(gateway, Arc::clone(&plugins), config.smpp.bind_cache_ttl),
        concat: Reassembler::new(config.smpp.concat_timeout, MAX_PENDING_CONCAT),
        plugins,
        delivery,
        config,
    });
    let readiness = Readiness::default();
    background.spawn({
        let (readiness, shutdown) = (readiness.clone(), shutdown.clone());
        let routes = http::router(readiness).merge(webhooks::router(Arc::clone(&ctx.delivery)));
        async move {
            if let Err(e) = http::serve(http_listener, routes, shutdown).await {
                warn!(error = %e, "http server stopped");
            }
        }
    });
    background.spawn(sweep_concatenations(Arc::clone(&ctx), shutdown.clone()));

    let sessions = TaskTracker::new();
    let limit = Arc::new(Semaphore::new(ctx.config.smpp.max_connections));
    for listener in std::iter::once(plain).chain(secure) {
        background.spawn(listener.run(
            Arc::clone(&ctx),
            Arc::clone(&limit),
            shutdown.clone(),
            sessions.clone(),
        ));
    }
    readiness.set(true);
    info!("ready");

    shutdown.cancelled().await;
    readiness.set(false);
    info!("shutting down");
    sessions.close();
    let drain = ctx.config.smpp.shutdown_grace + ctx.config.smpp.response_timeout;
    if tokio::time::timeout(drain, sessions.wait()).await.is_err() {
        warn!(?drain, "sessions still open after the grace period");
    }
    // Parts still waiting for their siblings are sent as they are rather than lost.
    pipeline::flush_expired(&ctx, Instant::now() + ctx.config.smpp.concat_timeout).await;
    background.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), background.wait()).await;
    info!("stopped");
    Ok(())
}

async fn start_simulator(
    config: &Config,
    shutdown: &Shutdown,
    background: &TaskTracker,
) -> anyhow::Result<SocketAddr> {
    // The simulator's usual port, where `simulator inject-mo` looks by default; any free one
    // when it is taken (another server, a test running beside).
    let socket = match tokio::net::TcpListener::bind(SIMULATOR_ADDRESS).await {
        Ok(socket) => socket,
        Err(_) => tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?,
    };
    let address = socket.local_addr()?;
    // Printed, not logged: these are demo credentials for the newcomer at the terminal, and
    // logs never carry passwords.
    for account in &config.simulator.accounts {
        println!(
            "simulator account: system_id {:?} password {:?}",
            account.username, account.password
        );
    }
    let simulator = Simulator::new(config.simulator.clone());
    let stop = shutdown.clone();
    background.spawn(async move {
        if let Err(e) = simulator
            .serve(socket, async move { stop.cancelled().await })
            .await
        {
            warn!(error = %e, "simulator stopped");
        }
    });
    info!(%address, "embedded SMSGate simulator running");
    Ok(address)
}

async fn sweep_concatenations(ctx: Arc<Context>, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => pipeline::flush_expired(&ctx, Instant::now()).await,
        }
    }
}
