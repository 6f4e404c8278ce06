//! The embedded backend: two redb files and a secret file under the data directory, for a
//! single server instance. The queue's pushes and acknowledgements go through one writer
//! thread that group-commits them; the sent-message record has a writer of its own.

mod file;
pub mod queue;
pub mod sent;
mod writer;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;

pub use file::OpenError;
pub use queue::QueueOptions;

use crate::{DeliveryStore, TOKEN_SECRET_LEN, TokenOwner};
use queue::{
    AccountStats, DeadLetter, DeadLettered, Expired, Item, Push, Queue, QueueError, Refusals,
};
use sent::{SentLog, SentLogError, SentRecord};
use writer::QueueWriter;

const QUEUE_FILE: &str = "queue.redb";
const SENT_FILE: &str = "sent.redb";
const SECRET_FILE: &str = "webhook-token.secret";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Sent(#[from] SentLogError),
    #[error("webhook token secret {}: {source}", .path.display())]
    Secret { path: PathBuf, source: io::Error },
    #[error("cannot start the queue writer: {0}")]
    Writer(io::Error),
}

pub struct Embedded {
    queue: Arc<Queue>,
    writer: QueueWriter,
    sent: Arc<SentLog>,
    secret: [u8; TOKEN_SECRET_LEN],
}

impl Embedded {
    /// Opens (or creates) the files under `data_dir`; sent records are kept for `sent_ttl`.
    pub fn open(
        data_dir: &Path,
        options: QueueOptions,
        sent_ttl: Duration,
    ) -> Result<Embedded, EmbeddedError> {
        let queue = Arc::new(Queue::open(&queue_path(data_dir), options)?);
        let sent = SentLog::open(&data_dir.join(SENT_FILE), sent_ttl)?;
        let path = data_dir.join(SECRET_FILE);
        let secret = read_or_create_secret(&path)
            .map_err(|source| EmbeddedError::Secret { path, source })?;
        let writer = QueueWriter::spawn(Arc::clone(&queue)).map_err(EmbeddedError::Writer)?;
        Ok(Embedded {
            queue,
            writer,
            sent: Arc::new(sent),
            secret,
        })
    }
}

/// The queue file of a data directory.
pub fn queue_path(data_dir: &Path) -> PathBuf {
    data_dir.join(QUEUE_FILE)
}

/// Per-account totals (items and dead letters) read from the queue file itself, for `queue
/// stats` while no server runs; fails with `QueueError::Open(OpenError::Locked)` while one
/// holds the file.
pub fn stats_from_file(data_dir: &Path) -> Result<Vec<AccountStats>, QueueError> {
    let path = queue_path(data_dir);
    if !path.exists() {
        return Ok(Vec::new());
    }
    Queue::open(&path, QueueOptions::default())?.stats()
}

/// Runs a scan or a write of a redb file off the async workers: on a slow disk it blocks.
fn blocking<T: Send + 'static, E: Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
    panicked: impl FnOnce() -> E + Send + 'static,
) -> BoxFuture<'static, Result<T, E>> {
    tokio::task::spawn_blocking(work)
        .map(|joined| joined.unwrap_or_else(|_| Err(panicked())))
        .boxed()
}

fn queue_task_panicked() -> QueueError {
    QueueError::Failed("the queue task panicked".into())
}

impl DeliveryStore for Embedded {
    fn push(
        &self,
        account: &str,
        event_id: &str,
        payloads: Vec<Bytes>,
    ) -> BoxFuture<'static, Result<Push, QueueError>> {
        self.writer.push(account, event_id, payloads).boxed()
    }

    fn peek(
        &self,
        account: &str,
        limit: usize,
    ) -> BoxFuture<'static, Result<Vec<Item>, QueueError>> {
        // Reads of the memory-mapped file are quick; they stay on the caller's thread.
        let result = self.queue.peek(account, limit);
        async move { result }.boxed()
    }

    fn ack(&self, _account: &str, seqs: Vec<u64>) -> BoxFuture<'static, Result<usize, QueueError>> {
        self.writer.ack(seqs).boxed()
    }

    fn retry_later(
        &self,
        _account: &str,
        seq: u64,
    ) -> BoxFuture<'static, Result<Option<u32>, QueueError>> {
        let queue = Arc::clone(&self.queue);
        blocking(move || queue.retry_later(seq), queue_task_panicked)
    }

    fn refused(
        &self,
        _account: &str,
        seq: u64,
    ) -> BoxFuture<'static, Result<Option<Refusals>, QueueError>> {
        let queue = Arc::clone(&self.queue);
        blocking(move || queue.refused(seq), queue_task_panicked)
    }

    fn dead_letter(
        &self,
        _account: &str,
        seq: u64,
        status: u32,
        reason: &str,
    ) -> BoxFuture<'static, Result<Option<DeadLettered>, QueueError>> {
        let queue = Arc::clone(&self.queue);
        let reason = reason.to_owned();
        blocking(
            move || queue.dead_letter(seq, status, &reason),
            queue_task_panicked,
        )
    }

    fn dead_letters(
        &self,
        account: &str,
        limit: usize,
    ) -> BoxFuture<'static, Result<Vec<DeadLetter>, QueueError>> {
        let queue = Arc::clone(&self.queue);
        let account = account.to_owned();
        blocking(
            move || queue.dead_letters(&account, limit),
            queue_task_panicked,
        )
    }

    fn retry_dead_letters(&self, account: &str) -> BoxFuture<'static, Result<usize, QueueError>> {
        let queue = Arc::clone(&self.queue);
        let account = account.to_owned();
        blocking(
            move || queue.retry_dead_letters(&account),
            queue_task_panicked,
        )
    }

    fn drop_dead_letters(&self, account: &str) -> BoxFuture<'static, Result<usize, QueueError>> {
        let queue = Arc::clone(&self.queue);
        let account = account.to_owned();
        blocking(
            move || queue.drop_dead_letters(&account),
            queue_task_panicked,
        )
    }

    fn dead_letter_count(&self) -> BoxFuture<'static, Result<u64, QueueError>> {
        let result = self.queue.dead_letter_count();
        async move { result }.boxed()
    }

    fn item_count(&self) -> BoxFuture<'static, Result<u64, QueueError>> {
        let result = self.queue.item_count();
        async move { result }.boxed()
    }

    fn accounts_with_items(&self) -> BoxFuture<'static, Result<Vec<String>, QueueError>> {
        let result = self.queue.accounts_with_items();
        async move { result }.boxed()
    }

    fn expire(&self, now: SystemTime) -> BoxFuture<'static, Result<Expired, QueueError>> {
        let queue = Arc::clone(&self.queue);
        blocking(move || queue.expire(now), queue_task_panicked)
    }

    fn stats(&self) -> BoxFuture<'static, Result<Vec<AccountStats>, QueueError>> {
        let queue = Arc::clone(&self.queue);
        blocking(move || queue.stats(), queue_task_panicked)
    }

    fn token_secret(&self) -> [u8; TOKEN_SECRET_LEN] {
        self.secret
    }

    fn remember_token(&self, owner: TokenOwner) -> BoxFuture<'static, Result<(), QueueError>> {
        let queue = Arc::clone(&self.queue);
        blocking(
            move || queue.remember_token(&owner.token, &owner.account, owner.signed),
            queue_task_panicked,
        )
    }

    fn tokens(&self) -> BoxFuture<'static, Result<Vec<TokenOwner>, QueueError>> {
        let result = self.queue.tokens().map(|tokens| {
            tokens
                .into_iter()
                .map(|(token, account, signed)| TokenOwner {
                    token,
                    account,
                    signed,
                })
                .collect()
        });
        async move { result }.boxed()
    }

    fn record_sent(
        &self,
        message_id: &str,
        record: SentRecord,
    ) -> BoxFuture<'static, Result<(), SentLogError>> {
        self.sent.record(message_id, record).boxed()
    }

    fn sent(
        &self,
        message_id: &str,
    ) -> BoxFuture<'static, Result<Option<SentRecord>, SentLogError>> {
        let result = self.sent.get(message_id);
        async move { result }.boxed()
    }

    fn prune_sent(&self, now: SystemTime) -> BoxFuture<'static, Result<usize, SentLogError>> {
        let sent = Arc::clone(&self.sent);
        blocking(move || sent.prune(now), || SentLogError::Closed)
    }
}

fn read_or_create_secret(path: &Path) -> io::Result<[u8; TOKEN_SECRET_LEN]> {
    match fs::read(path) {
        Ok(bytes) => bytes.try_into().map_err(|bytes: Vec<u8>| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("holds {} bytes, expected {TOKEN_SECRET_LEN}", bytes.len()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            let secret: [u8; TOKEN_SECRET_LEN] = rand::random();
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path)?;
            file.write_all(&secret)?;
            file.sync_all()?;
            Ok(secret)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    #[tokio::test]
    async fn the_secret_and_the_tokens_survive_a_restart() {
        let dir = TempDir::new().unwrap();
        let ttl = Duration::from_secs(60);
        let store = Embedded::open(dir.path(), QueueOptions::default(), ttl).unwrap();
        let secret = store.token_secret();
        let owner = TokenOwner {
            token: "t1".into(),
            account: "alpha".into(),
            signed: true,
        };
        store.remember_token(owner.clone()).await.unwrap();
        drop(store);

        let again = Embedded::open(dir.path(), QueueOptions::default(), ttl).unwrap();
        assert_eq!(again.token_secret(), secret);
        assert_eq!(again.tokens().await.unwrap(), [owner]);
    }

    #[tokio::test]
    async fn dead_letters_are_listed_retried_and_dropped_through_the_store() {
        let dir = TempDir::new().unwrap();
        let store =
            Embedded::open(dir.path(), QueueOptions::default(), Duration::from_secs(60)).unwrap();
        let payloads = vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")];
        store.push("alpha", "e1", payloads).await.unwrap();
        for item in store.peek("alpha", 10).await.unwrap() {
            store
                .dead_letter("alpha", item.seq, 0x0B, "refused")
                .await
                .unwrap()
                .unwrap();
        }
        let letters = store.dead_letters("alpha", 10).await.unwrap();
        assert_eq!(letters.len(), 2);
        assert_eq!(
            (letters[0].status, letters[0].reason.as_str()),
            (0x0B, "refused")
        );

        assert_eq!(store.retry_dead_letters("alpha").await.unwrap(), 2);
        let items = store.peek("alpha", 10).await.unwrap();
        assert_eq!(items.len(), 2);
        store
            .dead_letter("alpha", items[0].seq, 0x0B, "refused again")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.drop_dead_letters("alpha").await.unwrap(), 1);
        assert_eq!(store.dead_letter_count().await.unwrap(), 0);
        assert_eq!(store.item_count().await.unwrap(), 1);
    }

    #[test]
    fn a_secret_of_the_wrong_size_is_refused_with_its_path() {
        let dir = TempDir::new().unwrap();
        fs::write(dir.path().join(SECRET_FILE), b"short").unwrap();
        let error = Embedded::open(dir.path(), QueueOptions::default(), Duration::from_secs(1))
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains(SECRET_FILE) && error.contains("expected 32"),
            "{error}"
        );
    }
}
