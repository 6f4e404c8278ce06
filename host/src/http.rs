//! The HTTP side: health endpoints and Prometheus metrics on the Go server's paths, so existing
//! probes, orchestrators and dashboards keep working. The webhook routes of the delivery path will live beside them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

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

pub async fn bind(address: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("http.address: cannot listen on {address}"))
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    readiness: Readiness,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router(readiness))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
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
