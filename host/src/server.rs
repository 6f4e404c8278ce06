//! Wires the pieces together for `serve`: the gateway client (or the embedded simulator), the
//! SMPP listeners, the HTTP endpoints and the background sweeper, then waits for the shutdown
//! signal and drains the sessions.

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
use crate::shutdown::{Shutdown, TaskTracker};
use crate::webhooks;
use smsgate_plugin_host::Plugins;

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

pub async fn run(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    crate::ids::set_format(config.smpp.message_id_format);
    let background = TaskTracker::new();
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

async fn sweep_concatenations(ctx: Arc<Context>, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => pipeline::flush_expired(&ctx, Instant::now()).await,
        }
    }
}
