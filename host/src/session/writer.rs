//! The one task that owns a connection's write half. Responses finish in any order on many
//! tasks; they all queue here, and whatever is queued when the socket is ready goes out in one
//! write, so a busy bind costs a few syscalls per batch instead of one per PDU.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::debug;

use crate::metrics;
use smpp_codec::pdu::{self, Outbound};

/// Flush once the batch reaches this size even if more PDUs are queued.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// When the write in progress began, so the session can tell a peer that stopped reading from
/// one that is merely busy.
pub struct Progress {
    origin: Instant,
    /// Microseconds since `origin` plus one while a write is in progress; 0 while idle.
    writing_since: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            origin: Instant::now(),
            writing_since: AtomicU64::new(0),
        }
    }
}

impl Progress {
    fn begin(&self) {
        let since = self.origin.elapsed().as_micros() as u64 + 1;
        self.writing_since.store(since, Ordering::Relaxed);
    }

    fn end(&self) {
        self.writing_since.store(0, Ordering::Relaxed);
    }

    /// How long the write in progress has been waiting for the socket, if one is.
    pub fn blocked_for(&self) -> Option<Duration> {
        match self.writing_since.load(Ordering::Relaxed) {
            0 => None,
            since => Some(
                self.origin
                    .elapsed()
                    .saturating_sub(Duration::from_micros(since - 1)),
            ),
        }
    }
}

/// The session's window, to tell whether more answers are on their way.
pub struct InFlight {
    pub window: Arc<tokio::sync::Semaphore>,
    pub size: usize,
}

impl InFlight {
    fn others(&self) -> bool {
        self.window.available_permits() < self.size
    }
}

pub async fn run<W: AsyncWrite + Unpin>(
    mut socket: W,
    mut queue: mpsc::Receiver<Outbound>,
    progress: Arc<Progress>,
    in_flight: InFlight,
) {
    // Grown by the first batch rather than reserved up front: most binds are quiet most of the
    // time, and thousands of them each holding 8 KiB add up.
    let mut buffer = BytesMut::new();
    while let Some(first) = queue.recv().await {
        encode(&first, &mut buffer);
        take_queued(&mut queue, &mut buffer);
        // Answers of a busy bind finish moments apart; one turn of the scheduler lets those
        // about to finish join this write instead of each paying for a syscall of its own. A
        // quiet bind, with nothing else in flight, is not kept waiting.
        if buffer.len() < MAX_BATCH_BYTES && in_flight.others() {
            tokio::task::yield_now().await;
            take_queued(&mut queue, &mut buffer);
        }
        progress.begin();
        let written = socket.write_all(&buffer).await;
        progress.end();
        if let Err(e) = written {
            debug!(error = %e, "write failed; dropping the rest of the queue");
            return;
        }
        buffer.clear();
    }
    let _ = socket.flush().await;
    let _ = socket.shutdown().await;
}

/// Adds what is queued now to the batch, up to its size limit.
fn take_queued(queue: &mut mpsc::Receiver<Outbound>, buffer: &mut BytesMut) {
    while buffer.len() < MAX_BATCH_BYTES {
        match queue.try_recv() {
            Ok(next) => encode(&next, buffer),
            Err(_) => break,
        }
    }
}

fn encode(pdu: &Outbound, buffer: &mut BytesMut) {
    metrics::get().sent(pdu.command_id(), pdu.command_status());
    pdu::encode_pdu(pdu, buffer);
}
