//! The one task that owns a connection's write half. Responses finish in any order on many
//! tasks; they all queue here, and whatever is queued when the socket is ready goes out in one
//! write, so a busy bind costs a few syscalls per batch instead of one per PDU.

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::debug;

use crate::metrics;
use smpp_codec::pdu::{self, Outbound};

/// Flush once the batch reaches this size even if more PDUs are queued.
const MAX_BATCH_BYTES: usize = 64 * 1024;

pub async fn run<W: AsyncWrite + Unpin>(mut socket: W, mut queue: mpsc::Receiver<Outbound>) {
    let mut buffer = BytesMut::with_capacity(8 * 1024);
    while let Some(first) = queue.recv().await {
        encode(&first, &mut buffer);
        while buffer.len() < MAX_BATCH_BYTES {
            match queue.try_recv() {
                Ok(next) => encode(&next, &mut buffer),
                Err(_) => break,
            }
        }
        if let Err(e) = socket.write_all(&buffer).await {
            debug!(error = %e, "write failed; dropping the rest of the queue");
            return;
        }
        buffer.clear();
    }
    let _ = socket.flush().await;
    let _ = socket.shutdown().await;
}

fn encode(pdu: &Outbound, buffer: &mut BytesMut) {
    metrics::get().sent(pdu.command_id(), pdu.command_status());
    pdu::encode_pdu(pdu, buffer);
}
