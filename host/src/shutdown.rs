//! The shutdown signal threaded through every long-lived task. A `CancellationToken` is
//! cloned into the listeners and sessions; a `TaskTracker` lets `main` wait for them to finish.

use tokio_util::sync::CancellationToken;

pub use tokio_util::task::TaskTracker;

pub type Shutdown = CancellationToken;

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn os_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
