//! Hot reload: on SIGHUP, and when the plugin directory changes (polled once a second, so no
//! watcher crate or inotify limits are involved), the whole set is loaded and checked again and
//! swapped in only if every plugin passes. A change is acted on once the directory has looked
//! the same for one more poll, so a .wasm still being copied is not loaded half-written.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{debug, error};

use super::Plugins;
use tokio_util::sync::CancellationToken as Shutdown;

const POLL: Duration = Duration::from_secs(1);

/// Name, size and modification time of each plugin file; any difference means a change.
type Snapshot = Vec<(String, u64, Option<SystemTime>)>;

impl Plugins {
    /// Reloads on SIGHUP and, with `plugins.watch`, on directory changes, until `shutdown`.
    /// Does nothing for `Plugins::empty()`. Must be called inside the tokio runtime.
    pub fn spawn_reloader(self: &Arc<Self>, shutdown: Shutdown) {
        let Some(config) = self.config.clone() else {
            return;
        };
        let plugins = Arc::clone(self);
        // Registered before returning: until then SIGHUP's default action would end the server.
        let mut hangup = Hangup::new();
        tokio::spawn(async move {
            let mut poll = tokio::time::interval(POLL);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut loaded = snapshot(&config.dir);
            let mut pending: Option<Snapshot> = None;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = hangup.recv() => {
                        loaded = snapshot(&config.dir);
                        pending = None;
                        reload(&plugins, "SIGHUP").await;
                    }
                    _ = poll.tick(), if config.watch => {
                        let now = snapshot(&config.dir);
                        if now == loaded {
                            pending = None;
                        } else if pending.as_ref() == Some(&now) {
                            loaded = now;
                            pending = None;
                            reload(&plugins, "directory changed").await;
                        } else {
                            pending = Some(now);
                        }
                    }
                }
            }
        });
    }
}

/// Loading compiles, so it runs on a blocking thread rather than a runtime worker.
async fn reload(plugins: &Arc<Plugins>, cause: &str) {
    debug!(cause, "reloading plugins");
    let target = Arc::clone(plugins);
    match tokio::task::spawn_blocking(move || target.reload()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => error!(
            cause,
            "plugin reload refused, the previous plugins stay: {e:#}"
        ),
        Err(e) => error!(
            cause,
            "plugin reload failed, the previous plugins stay: {e}"
        ),
    }
}

fn snapshot(dir: &Path) -> Snapshot {
    let mut files: Snapshot = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.ends_with(".wasm") || name.ends_with(".toml")) {
                return None;
            }
            let meta = entry.metadata().ok()?;
            Some((name, meta.len(), meta.modified().ok()))
        })
        .collect();
    files.sort();
    files
}

/// SIGHUP where there is such a thing; elsewhere a signal that never comes.
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Hangup {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::hangup())
                .map_err(|e| {
                    error!("cannot listen for SIGHUP, plugins reload on changes only: {e}")
                })
                .ok();
            Hangup { signal }
        }
        #[cfg(not(unix))]
        Hangup {}
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if let Some(signal) = &mut self.signal
                && signal.recv().await.is_some()
            {
                return;
            }
            self.signal = None;
        }
        std::future::pending::<()>().await
    }
}
