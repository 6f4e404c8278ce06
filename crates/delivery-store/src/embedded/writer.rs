//! One thread applies every change the hot paths make to the queue: the webhook's pushes and the
//! dispatcher's acknowledgements. Whatever has accumulated while the previous transaction was
//! being committed goes into the next one, so a burst of webhook calls costs one fsync rather
//! than one each, and no call is answered before its change is on disk.

use std::io;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::queue::{Push, PushRequest, Queue, QueueError};

/// Changes taken into one transaction at most; bounds how long the first caller waits.
const MAX_BATCH: usize = 1024;

enum Op {
    Push {
        account: String,
        event_id: String,
        payloads: Vec<Bytes>,
        reply: oneshot::Sender<Result<Push, QueueError>>,
    },
    Ack {
        seqs: Vec<u64>,
        reply: oneshot::Sender<Result<usize, QueueError>>,
    },
}

pub struct QueueWriter {
    /// `None` only while dropping: closing the channel is what ends the thread.
    ops: Option<mpsc::Sender<Op>>,
    thread: Option<JoinHandle<()>>,
}

impl QueueWriter {
    /// Starts the thread; it ends when the writer is dropped.
    pub fn spawn(queue: Arc<Queue>) -> io::Result<QueueWriter> {
        let (ops, incoming) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("queue-writer".into())
            .spawn(move || run(&queue, &incoming))?;
        Ok(QueueWriter {
            ops: Some(ops),
            thread: Some(thread),
        })
    }

    /// Stores the items of one event; done when they are on disk.
    pub fn push(
        &self,
        account: &str,
        event_id: &str,
        payloads: Vec<Bytes>,
    ) -> impl Future<Output = Result<Push, QueueError>> + use<> {
        let (reply, answer) = oneshot::channel();
        let sent = self.send(Op::Push {
            account: account.to_owned(),
            event_id: event_id.to_owned(),
            payloads,
            reply,
        });
        async move {
            sent?;
            answer.await.map_err(|_| QueueError::WriterGone)?
        }
    }

    /// Removes delivered items; returns how many were still queued.
    pub fn ack(&self, seqs: Vec<u64>) -> impl Future<Output = Result<usize, QueueError>> + use<> {
        let (reply, answer) = oneshot::channel();
        let sent = self.send(Op::Ack { seqs, reply });
        async move {
            sent?;
            answer.await.map_err(|_| QueueError::WriterGone)?
        }
    }

    fn send(&self, op: Op) -> Result<(), QueueError> {
        self.ops
            .as_ref()
            .and_then(|ops| ops.send(op).ok())
            .ok_or(QueueError::WriterGone)
    }
}

impl Drop for QueueWriter {
    /// Waits for the thread, so the queue file is released (and can be opened again) once the
    /// writer is gone.
    fn drop(&mut self) {
        drop(self.ops.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(queue: &Queue, incoming: &mpsc::Receiver<Op>) {
    while let Ok(first) = incoming.recv() {
        let mut batch = vec![first];
        batch.extend(incoming.try_iter().take(MAX_BATCH - 1));
        apply(queue, batch);
    }
}

fn apply(queue: &Queue, batch: Vec<Op>) {
    let mut acks = Vec::new();
    let mut pushes = Vec::new();
    let mut ack_replies = Vec::new();
    for op in batch {
        match op {
            Op::Push {
                account,
                event_id,
                payloads,
                reply,
            } => pushes.push((account, event_id, payloads, reply)),
            Op::Ack { seqs, reply } => {
                ack_replies.push((seqs.len(), reply));
                acks.extend(seqs);
            }
        }
    }
    let slices: Vec<Vec<&[u8]>> = pushes
        .iter()
        .map(|(_, _, payloads, _)| payloads.iter().map(|p| p.as_ref()).collect())
        .collect();
    let requests: Vec<PushRequest<'_>> = pushes
        .iter()
        .zip(&slices)
        .map(|((account, event_id, _, _), payloads)| PushRequest {
            account,
            event_id,
            payloads,
        })
        .collect();
    match queue.apply(&requests, &acks) {
        Ok((results, removed)) => {
            for ((.., reply), result) in pushes.into_iter().zip(results) {
                let _ = reply.send(result);
            }
            // Acks share one count; each caller learns whether any of its items went.
            for (count, reply) in ack_replies {
                let _ = reply.send(Ok(removed.min(count)));
            }
        }
        Err(e) => {
            let reason = e.to_string();
            for (.., reply) in pushes {
                let _ = reply.send(Err(QueueError::Failed(reason.clone())));
            }
            for (_, reply) in ack_replies {
                let _ = reply.send(Err(QueueError::Failed(reason.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::queue::QueueOptions;
    use tempfile::TempDir;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_pushes_and_acks_all_land() {
        let dir = TempDir::new().unwrap();
        let queue =
            Arc::new(Queue::open(&dir.path().join("store.redb"), QueueOptions::default()).unwrap());
        let writer = Arc::new(QueueWriter::spawn(Arc::clone(&queue)).unwrap());
        let tasks: Vec<_> = (0..500)
            .map(|i| {
                let writer = Arc::clone(&writer);
                tokio::spawn(async move {
                    let payload = Bytes::from(format!("item {i}"));
                    writer.push("acct", &format!("e{i}"), vec![payload]).await
                })
            })
            .collect();
        for task in tasks {
            assert!(matches!(task.await.unwrap(), Ok(Push::Stored(_))));
        }
        let again = writer
            .push("acct", "e7", vec![Bytes::from_static(b"x")])
            .await
            .unwrap();
        assert_eq!(again, Push::Duplicate);
        let items = queue.peek("acct", 1000).unwrap();
        assert_eq!(items.len(), 500);
        let seqs: Vec<u64> = items.iter().map(|i| i.seq).collect();
        assert_eq!(writer.ack(seqs[..300].to_vec()).await.unwrap(), 300);
        assert_eq!(queue.peek("acct", 1000).unwrap().len(), 200);
        drop(writer);
    }
}
