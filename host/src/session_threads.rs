//! The threads SMPP sessions run on. A connection stays on one thread from accept to close,
//! with everything it starts — its writer, its requests, the gateway connections they use — as
//! Envoy and nginx keep a connection on one worker. The tasks of a bind then wake one another
//! without crossing threads: on the multi-threaded runtime, a relayed submit_sm woke the other
//! worker about once in four, and the switches cost a fifth of the server's CPU per message.
//! Binds spread over the threads, one per CPU, each new connection going to the thread with
//! the fewest sessions; a thread serves a bind at tens of thousands of submit_sm per second,
//! far beyond what a gateway of phones takes.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Builder, Handle};
use tokio_util::sync::CancellationToken;

use crate::shutdown::TaskTracker;

pub struct SessionThreads {
    threads: Vec<SessionThread>,
    /// Ends the threads' runtimes, and with them whatever still runs there, when the server
    /// is done with them.
    stop: CancellationToken,
}

struct SessionThread {
    runtime: Handle,
    sessions: Arc<AtomicUsize>,
}

impl SessionThreads {
    /// One thread per CPU the process may use.
    pub fn start() -> io::Result<Self> {
        Self::with_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    fn with_threads(count: usize) -> io::Result<Self> {
        let stop = CancellationToken::new();
        let threads = (0..count)
            .map(|index| {
                let runtime = Builder::new_current_thread().enable_all().build()?;
                let handle = runtime.handle().clone();
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("smpp-sessions-{index}"))
                    .spawn(move || runtime.block_on(stop.cancelled_owned()))?;
                Ok(SessionThread {
                    runtime: handle,
                    sessions: Arc::new(AtomicUsize::new(0)),
                })
            })
            .collect::<io::Result<_>>()
            .inspect_err(|_| stop.cancel())?;
        Ok(SessionThreads { threads, stop })
    }

    /// Runs the session `session` makes on the thread with the fewest, tracked by `tracker`.
    /// The session holds the `Place` it is given to its end. A socket belongs to the runtime it
    /// is made in: the session's own must be made into a tokio socket within the session.
    pub fn spawn<S>(&self, tracker: &TaskTracker, session: impl FnOnce(Place) -> S)
    where
        S: Future<Output = ()> + Send + 'static,
    {
        let thread = self
            .threads
            .iter()
            .min_by_key(|thread| thread.sessions.load(Ordering::Relaxed))
            .expect("at least one session thread");
        thread.sessions.fetch_add(1, Ordering::Relaxed);
        // Not wrapped in a future of ours holding the guard: a wrapper would keep a second
        // copy of the whole session's state (kilobytes per bind) beside the one it awaits.
        let place = Place(Arc::clone(&thread.sessions));
        tracker.spawn_on(session(place), &thread.runtime);
    }
}

impl Drop for SessionThreads {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A session's place in its thread's count, given back however the session ends.
pub struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::{mpsc, oneshot};

    use super::*;

    /// Each session reports the thread it runs on, then holds its place until told to end.
    async fn session(
        place: Place,
        report: mpsc::UnboundedSender<String>,
        end: oneshot::Receiver<()>,
    ) {
        let _place = place;
        let name = std::thread::current().name().unwrap_or_default().to_owned();
        report.send(name).unwrap();
        let _ = end.await;
    }

    #[tokio::test]
    async fn a_new_session_goes_to_the_thread_with_the_fewest() {
        let threads = SessionThreads::with_threads(2).unwrap();
        let tracker = TaskTracker::new();
        let (report, mut reports) = mpsc::unbounded_channel();
        let (end_first, first_ends) = oneshot::channel();
        let (_end_second, second_ends) = oneshot::channel();
        let (_end_third, third_ends) = oneshot::channel();

        let first_report = report.clone();
        threads.spawn(&tracker, |place| session(place, first_report, first_ends));
        let first = reports.recv().await.unwrap();
        let second_report = report.clone();
        threads.spawn(&tracker, |place| session(place, second_report, second_ends));
        let second = reports.recv().await.unwrap();
        assert!(first.starts_with("smpp-sessions-"), "{first}");
        assert_ne!(first, second);

        end_first.send(()).unwrap();
        // The first thread's count drops once its session has ended.
        tokio::time::timeout(Duration::from_secs(10), async {
            while tracker.len() > 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        threads.spawn(&tracker, |place| session(place, report, third_ends));
        assert_eq!(reports.recv().await.unwrap(), first);
    }

    #[tokio::test]
    async fn sessions_left_when_the_threads_stop_are_dropped() {
        let threads = SessionThreads::with_threads(1).unwrap();
        let tracker = TaskTracker::new();
        let (report, mut reports) = mpsc::unbounded_channel();
        let (_never, never_ends) = oneshot::channel();
        threads.spawn(&tracker, |place| session(place, report, never_ends));
        reports.recv().await.unwrap();
        drop(threads);
        tracker.close();
        tokio::time::timeout(Duration::from_secs(10), tracker.wait())
            .await
            .expect("the session's task ends with its thread");
    }
}
