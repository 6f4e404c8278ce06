//! The durable queue between the webhook endpoint and the dispatcher.
//!
//! A delivery receipt or incoming message belongs to this queue from the moment the webhook
//! answers 2xx until the ESME answers its deliver_sm with ESME_ROK, so every change is a redb
//! transaction committed with fsync before the call returns: a process killed at any point
//! keeps every item it acknowledged. Items are opaque bytes, kept in arrival order per account,
//! recognised by (account, event id) so that webhook retries are stored once, and dropped
//! after a TTL so that an account whose ESME never binds cannot fill the disk.
//!
//! An item the ESMEs keep refusing for a reason no retry can change leaves the live queue for
//! the dead letters: kept with the ESME's status and the reason, out of the dispatcher's way,
//! within bounds of their own (the TTL, and as many items and bytes as the queue may hold).
//! Once the cause is fixed, an operator moves them back into the live queue, or drops them.

use std::ops::Bound;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{
    Database, ReadableDatabase, ReadableTable, StorageError, Table, TableDefinition, TableError,
    WriteTransaction,
};

use super::file::{self as store, META, OpenError, unix_ms};

/// (account, seq): keyed by account first so that the dispatcher's `peek` is a single range
/// scan in arrival order.
type ItemKey<'a> = (&'a str, u64);
/// (event id, payload, enqueued at in unix ms, attempts).
type ItemValue<'a> = (&'a str, &'a [u8], u64, u32);
/// (event id, payload, enqueued at in unix ms, attempts, set aside at in unix ms, the ESME's
/// last command_status, the reason).
type DeadValue<'a> = (&'a str, &'a [u8], u64, u32, u64, u32, &'a str);

const ITEMS: TableDefinition<ItemKey, ItemValue> = TableDefinition::new("items");
/// seq → (account, enqueued at in unix ms): the dispatcher hands back only the seq.
const SEQS: TableDefinition<u64, (&str, u64)> = TableDefinition::new("seqs");
/// (enqueued at in unix ms, seq): lets `expire` find old items without reading every payload;
/// wall-clock time may step back, so seq order alone does not give age order.
const EXPIRY: TableDefinition<(u64, u64), ()> = TableDefinition::new("expiry");
/// (account, event id) → arrival in unix ms. Outlives the item itself, because a webhook may be
/// retried after the ESME has already acknowledged the first copy.
const SEEN: TableDefinition<(&str, &str), u64> = TableDefinition::new("seen");
/// (arrival in unix ms, account, event id): the pruning order of `SEEN`.
const SEEN_EXPIRY: TableDefinition<(u64, &str, &str), ()> = TableDefinition::new("seen_expiry");
/// seq → permanent refusals of a queued item. A table of its own rather than a field of `ITEMS`,
/// so that files written before it keep their layout and still open.
const REFUSALS: TableDefinition<u64, u32> = TableDefinition::new("refusals");
/// (account, seq) → the item set aside, with why: keyed like `ITEMS` so that the per-account
/// count is one range scan.
const DEAD_LETTERS: TableDefinition<ItemKey, DeadValue> = TableDefinition::new("dead_letters");
/// (set aside at in unix ms, seq) → account: the expiry order of `DEAD_LETTERS`, and which to
/// drop first when they reach their bounds.
const DEAD_LETTER_ORDER: TableDefinition<(u64, u64), &str> =
    TableDefinition::new("dead_letter_order");
/// Webhook token → (account, whether its webhooks are signed). A phone retries an event for
/// days, so after a restart the endpoint must still know whose token it is before that account
/// binds again.
const TOKENS: TableDefinition<&str, (&str, bool)> = TableDefinition::new("tokens");

/// Counters kept in `META` in the same transactions as the items, so that the limits are exact
/// and cost one lookup rather than a scan.
const NEXT_SEQ: &str = "next_seq";
const ITEM_COUNT: &str = "items";
const BYTE_COUNT: &str = "bytes";
const DEAD_COUNT: &str = "dead_letters";
const DEAD_BYTES: &str = "dead_letter_bytes";

/// Bumped when the table layout changes, so an older server refuses a newer file instead of
/// misreading it. Tables added beside the others leave it as it is: an older server reads the
/// file correctly without them.
const SCHEMA_VERSION: u64 = 1;

/// redb defaults to a 1 GiB page cache; the queue is written and read near its tail, and the
/// server has better uses for the memory.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Bounds of the queue. A full queue makes the webhook answer 503, so the phone keeps the event
/// and retries later rather than the server losing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueOptions {
    pub max_items: usize,
    /// Sum of the payload sizes.
    pub max_bytes: u64,
    /// Age after which an undelivered item is dropped and an event id is forgotten; a dead
    /// letter is kept this long after it was set aside.
    pub ttl: Duration,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            max_items: 100_000,
            max_bytes: 256 * 1024 * 1024,
            ttl: Duration::from_secs(72 * 60 * 60),
        }
    }
}

/// One event to store: its account, its id (for dedupe) and the items it became.
#[derive(Clone, Copy)]
pub struct PushRequest<'a> {
    pub account: &'a str,
    pub event_id: &'a str,
    pub payloads: &'a [&'a [u8]],
}

/// Outcome of an accepted `push`; both mean the event is safely held and the webhook may
/// answer 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Stored(u64),
    /// The (account, event id) arrived within the TTL already, whether or not it was delivered.
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub seq: u64,
    pub account: String,
    pub event_id: String,
    pub payload: Vec<u8>,
    pub enqueued_at: SystemTime,
    /// Delivery attempts that did not end in ESME_ROK.
    pub attempts: u32,
}

/// The failed attempts of an item so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusals {
    /// Every attempt that did not end in ESME_ROK.
    pub attempts: u32,
    /// Those refused with a status no retry can change.
    pub permanent: u32,
}

/// An item moved to the dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLettered {
    pub item: Item,
    /// The oldest dead letters dropped to keep them within their bounds.
    pub evicted: usize,
}

/// A dead letter as an operator's console lists it: what the item was, why the ESMEs refused
/// it and when it was set aside. The payload itself is left out; only its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The key the backend keeps it under: the item's seq in the embedded store, the dead
    /// letter's own entry id in the shared one.
    pub seq: u64,
    pub event_id: String,
    /// The ESME's last command_status.
    pub status: u32,
    /// Why it was set aside, as the dispatcher put it.
    pub reason: String,
    /// When it was set aside; it expires a TTL after this.
    pub dead_lettered_at: SystemTime,
    /// Delivery attempts that did not end in ESME_ROK, up to the one that set it aside.
    pub attempts: u32,
    /// Size of the deliver_sm body in bytes.
    pub payload_len: usize,
}

/// What `expire` dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expired {
    /// Undelivered items past the TTL.
    pub items: Vec<Item>,
    /// Dead letters set aside longer than the TTL ago.
    pub dead_letters: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStats {
    pub account: String,
    /// Items waiting for delivery; zero for an account with dead letters only.
    pub items: usize,
    /// Age of the oldest item; zero when the wall clock has stepped back since it arrived.
    pub oldest: Duration,
    pub bytes: u64,
    /// Items set aside because the ESMEs refused them for good.
    pub dead_letters: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("delivery queue is full")]
    Full,
    #[error("payload of {size} bytes exceeds the queue's limit of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("queue file {0}")]
    Open(#[from] OpenError),
    #[error("queue storage: {0}")]
    Storage(#[from] redb::Error),
    /// The transaction this change was part of failed (shared by every change in it).
    #[error("queue storage: {0}")]
    Failed(String),
    #[error("the queue writer has stopped")]
    WriterGone,
    /// The shared store did not answer or refused the command.
    #[error("shared store: {0}")]
    Shared(String),
}

store::from_redb_errors!(QueueError);

/// The queue file. Cheap to share: redb serialises write transactions and lets reads run
/// beside them, so the methods take `&self` and the whole queue can sit in an `Arc`.
pub struct Queue {
    db: Database,
    options: QueueOptions,
}

impl Queue {
    /// Opens the queue file, creating it and its directory on first use and keeping whatever an
    /// earlier run left in it.
    pub fn open(path: &Path, options: QueueOptions) -> Result<Queue, QueueError> {
        let db = store::open(path, CACHE_BYTES, SCHEMA_VERSION, |txn| {
            Tables::open(txn)?;
            DeadLetters::open(txn)?;
            txn.open_table(TOKENS)?;
            Ok(())
        })?;
        Ok(Queue { db, options })
    }

    /// Stores an event; it is on disk when this returns `Ok`.
    #[cfg(test)]
    pub fn push(&self, account: &str, event_id: &str, payload: &[u8]) -> Result<Push, QueueError> {
        self.push_at(account, event_id, &[payload], SystemTime::now())
    }

    /// Stores the items one event became (the parts of a long message, a receipt per part) in
    /// one transaction, so a crash keeps all of them or none and the phone's retry fills the gap.
    /// `Push::Stored` carries the first item's seq.
    #[cfg(test)]
    pub fn push_all(
        &self,
        account: &str,
        event_id: &str,
        payloads: &[&[u8]],
    ) -> Result<Push, QueueError> {
        self.push_at(account, event_id, payloads, SystemTime::now())
    }

    #[cfg(test)]
    fn push_at(
        &self,
        account: &str,
        event_id: &str,
        payloads: &[&[u8]],
        now: SystemTime,
    ) -> Result<Push, QueueError> {
        let request = PushRequest {
            account,
            event_id,
            payloads,
        };
        let (mut results, _) = self.apply_at(&[request], &[], now)?;
        results.pop().expect("one result per request")
    }

    /// Stores events and removes delivered items in ONE transaction: a single fsync for all the
    /// webhook calls and acknowledgements that arrived together. Each push gets its own result
    /// (duplicate, full, too large); `Err` means the transaction failed and nothing changed.
    /// Also returns how many of `acks` were still queued.
    pub fn apply(
        &self,
        pushes: &[PushRequest<'_>],
        acks: &[u64],
    ) -> Result<(Vec<Result<Push, QueueError>>, usize), QueueError> {
        self.apply_at(pushes, acks, SystemTime::now())
    }

    fn apply_at(
        &self,
        pushes: &[PushRequest<'_>],
        acks: &[u64],
        now: SystemTime,
    ) -> Result<(Vec<Result<Push, QueueError>>, usize), QueueError> {
        let txn = self.db.begin_write()?;
        let (results, removed) = {
            let mut tables = Tables::open(&txn)?;
            let mut removed = 0;
            for &seq in acks {
                removed += usize::from(tables.remove(seq)?.is_some());
            }
            let mut results = Vec::with_capacity(pushes.len());
            for push in pushes {
                results.push(self.push_in(&mut tables, push, now)?);
            }
            (results, removed)
        };
        let changed = removed > 0 || results.iter().any(|r| matches!(r, Ok(Push::Stored(_))));
        // Nothing to keep (all duplicates or refused) spares the fsync.
        if changed {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok((results, removed))
    }

    /// One push inside an open transaction. The outer `Result` is a storage failure that aborts
    /// the whole transaction; the inner one is this push's own answer.
    fn push_in(
        &self,
        tables: &mut Tables<'_>,
        push: &PushRequest<'_>,
        now: SystemTime,
    ) -> Result<Result<Push, QueueError>, QueueError> {
        let PushRequest {
            account,
            event_id,
            payloads,
        } = *push;
        let size: u64 = payloads.iter().map(|p| p.len() as u64).sum();
        let count = payloads.len() as u64;
        if size > self.options.max_bytes || count > self.options.max_items as u64 {
            // Would never fit, however long the phone retried.
            return Ok(Err(QueueError::TooLarge {
                size,
                max: self.options.max_bytes,
            }));
        }
        let now_ms = unix_ms(now);
        let seen = tables
            .seen
            .get((account, event_id))?
            .map(|arrival| arrival.value());
        if let Some(arrival) = seen {
            // An entry past the TTL may still wait for `expire` to prune it; it no longer
            // counts, so the answer does not depend on when `expire` last ran.
            if arrival >= self.cutoff(now_ms) {
                return Ok(Ok(Push::Duplicate));
            }
            tables.seen_expiry.remove((arrival, account, event_id))?;
        }

        // A duplicate is answered even when full, since it needs no room.
        let items = counter(&tables.meta, ITEM_COUNT)?;
        let bytes = counter(&tables.meta, BYTE_COUNT)?;
        if items + count > self.options.max_items as u64 || bytes + size > self.options.max_bytes {
            return Ok(Err(QueueError::Full));
        }

        // Persisted rather than derived from the highest key, so a seq is never reused after
        // the queue has drained, and an ack that arrives late cannot hit a newer item.
        let first = counter(&tables.meta, NEXT_SEQ)?.max(1);
        for (seq, payload) in (first..).zip(payloads) {
            tables.insert(account, seq, event_id, payload, now_ms)?;
        }
        tables.seen.insert((account, event_id), now_ms)?;
        tables.seen_expiry.insert((now_ms, account, event_id), ())?;
        tables.meta.insert(NEXT_SEQ, first + count)?;
        tables.meta.insert(ITEM_COUNT, items + count)?;
        tables.meta.insert(BYTE_COUNT, bytes + size)?;
        Ok(Ok(Push::Stored(first)))
    }

    /// Up to `limit` of the account's oldest items, in arrival order, left in the queue.
    pub fn peek(&self, account: &str, limit: usize) -> Result<Vec<Item>, QueueError> {
        let txn = self.db.begin_read()?;
        let items = txn.open_table(ITEMS)?;
        items
            .range((account, 0)..=(account, u64::MAX))?
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                let (account, seq) = key.value();
                Ok(item(seq, account, value.value()))
            })
            .collect()
    }

    /// Removes a delivered item. Returns whether it was still queued: a second ack of the same
    /// seq, or an ack racing `expire`, is harmless.
    #[cfg(test)]
    pub fn ack(&self, seq: u64) -> Result<bool, QueueError> {
        let txn = self.db.begin_write()?;
        let removed = Tables::open(&txn)?.remove(seq)?.is_some();
        if removed {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(removed)
    }

    /// Removes delivered items in one transaction; returns how many were still queued.
    #[cfg(test)]
    pub fn ack_many(&self, seqs: &[u64]) -> Result<usize, QueueError> {
        Ok(self.apply(&[], seqs)?.1)
    }

    /// Remembers whose webhook token this is.
    pub fn remember_token(
        &self,
        token: &str,
        account: &str,
        signed: bool,
    ) -> Result<(), QueueError> {
        let txn = self.db.begin_write()?;
        {
            let mut tokens = txn.open_table(TOKENS)?;
            let known = tokens.get(token)?.map(|entry| {
                let (name, was_signed) = entry.value();
                name == account && was_signed == signed
            });
            if known == Some(true) {
                drop(tokens);
                txn.abort()?;
                return Ok(());
            }
            tokens.insert(token, (account, signed))?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Every remembered token: (token, account, signed).
    pub fn tokens(&self) -> Result<Vec<(String, String, bool)>, QueueError> {
        let txn = self.db.begin_read()?;
        let tokens = txn.open_table(TOKENS)?;
        tokens
            .iter()?
            .map(|entry| {
                let (token, value) = entry?;
                let (account, signed) = value.value();
                Ok((token.value().to_owned(), account.to_owned(), signed))
            })
            .collect()
    }

    /// Counts a failed delivery attempt, keeping the item at its place in the account's order.
    /// Returns the new attempt count, or `None` when the item is no longer queued.
    pub fn retry_later(&self, seq: u64) -> Result<Option<u32>, QueueError> {
        Ok(self
            .count_failure(seq, false)?
            .map(|counts| counts.attempts))
    }

    /// Counts an attempt the ESME refused with a status no retry can change: a failed attempt
    /// as `retry_later` counts it, and one more permanent refusal.
    pub fn refused(&self, seq: u64) -> Result<Option<Refusals>, QueueError> {
        self.count_failure(seq, true)
    }

    fn count_failure(&self, seq: u64, permanent: bool) -> Result<Option<Refusals>, QueueError> {
        let txn = self.db.begin_write()?;
        let counts = {
            let mut tables = Tables::open(&txn)?;
            let Some(account) = tables
                .seqs
                .get(seq)?
                .map(|entry| entry.value().0.to_owned())
            else {
                return Ok(None);
            };
            let key = (account.as_str(), seq);
            let Some((event_id, payload, enqueued_ms, attempts)) =
                tables.items.get(key)?.map(|entry| {
                    let (event_id, payload, enqueued_ms, attempts) = entry.value();
                    (
                        event_id.to_owned(),
                        payload.to_vec(),
                        enqueued_ms,
                        attempts.saturating_add(1),
                    )
                })
            else {
                return Ok(None);
            };
            tables.items.insert(
                key,
                (event_id.as_str(), payload.as_slice(), enqueued_ms, attempts),
            )?;
            let mut refused = tables.refusals.get(seq)?.map_or(0, |count| count.value());
            if permanent {
                refused = refused.saturating_add(1);
                tables.refusals.insert(seq, refused)?;
            }
            Refusals {
                attempts,
                permanent: refused,
            }
        };
        txn.commit()?;
        Ok(Some(counts))
    }

    /// Moves a queued item to the dead letters with the ESME's last `status` and the `reason`,
    /// dropping the oldest dead letters when they would exceed the queue's bounds. `None` when
    /// the item is no longer queued (acknowledged or expired meanwhile). Its event id stays
    /// remembered, so the phone's retry of the event does not bring it back.
    pub fn dead_letter(
        &self,
        seq: u64,
        status: u32,
        reason: &str,
    ) -> Result<Option<DeadLettered>, QueueError> {
        self.dead_letter_at(seq, status, reason, SystemTime::now())
    }

    fn dead_letter_at(
        &self,
        seq: u64,
        status: u32,
        reason: &str,
        now: SystemTime,
    ) -> Result<Option<DeadLettered>, QueueError> {
        let txn = self.db.begin_write()?;
        let moved = {
            let mut tables = Tables::open(&txn)?;
            let Some(item) = tables.remove(seq)? else {
                return Ok(None);
            };
            let mut dead = DeadLetters::open(&txn)?;
            dead.insert(&mut tables.meta, &item, status, reason, unix_ms(now))?;
            let (max_items, max_bytes) = (self.options.max_items as u64, self.options.max_bytes);
            let evicted = dead.drop_oldest_while(&mut tables.meta, u64::MAX, |count, bytes| {
                count > max_items || bytes > max_bytes
            })?;
            DeadLettered { item, evicted }
        };
        txn.commit()?;
        Ok(Some(moved))
    }

    /// Up to `limit` of the account's dead letters, in the order they were set aside. Reads all
    /// of the account's dead letters to order them, so it is meant for the operator's console.
    pub fn dead_letters(&self, account: &str, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let txn = self.db.begin_read()?;
        let letters = letters_of(&txn.open_table(DEAD_LETTERS)?, account)?;
        Ok(letters
            .into_iter()
            .take(limit)
            .map(|(_, letter)| letter)
            .collect())
    }

    /// Moves the account's dead letters, in the order they were set aside, to the end of its
    /// live queue as fresh items: new seqs, no attempts or refusals, enqueued now, so the TTL
    /// starts again. One that would take the queue past its bounds stays a dead letter, as a
    /// push would be refused. Returns how many moved.
    pub fn retry_dead_letters(&self, account: &str) -> Result<usize, QueueError> {
        self.retry_dead_letters_at(account, SystemTime::now())
    }

    fn retry_dead_letters_at(&self, account: &str, now: SystemTime) -> Result<usize, QueueError> {
        let now_ms = unix_ms(now);
        let txn = self.db.begin_write()?;
        let moved = {
            let mut tables = Tables::open(&txn)?;
            let mut dead = DeadLetters::open(&txn)?;
            let mut items = counter(&tables.meta, ITEM_COUNT)?;
            let mut bytes = counter(&tables.meta, BYTE_COUNT)?;
            let mut next = counter(&tables.meta, NEXT_SEQ)?.max(1);
            let mut moved = 0;
            for (set_aside_ms, letter) in letters_of(&dead.letters, account)? {
                let size = letter.payload_len as u64;
                // Each is weighed on its own, like a push: a smaller one after may still fit.
                if items + 1 > self.options.max_items as u64
                    || bytes + size > self.options.max_bytes
                {
                    continue;
                }
                let Some(payload) =
                    dead.remove(&mut tables.meta, account, letter.seq, set_aside_ms)?
                else {
                    continue;
                };
                tables.insert(account, next, &letter.event_id, &payload, now_ms)?;
                next += 1;
                items += 1;
                bytes += size;
                moved += 1;
            }
            if moved > 0 {
                tables.meta.insert(NEXT_SEQ, next)?;
                tables.meta.insert(ITEM_COUNT, items)?;
                tables.meta.insert(BYTE_COUNT, bytes)?;
            }
            moved
        };
        if moved > 0 {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(moved)
    }

    /// Deletes the account's dead letters; returns how many.
    pub fn drop_dead_letters(&self, account: &str) -> Result<usize, QueueError> {
        let txn = self.db.begin_write()?;
        let dropped = {
            let mut meta = txn.open_table(META)?;
            let mut dead = DeadLetters::open(&txn)?;
            let letters = letters_of(&dead.letters, account)?;
            for (set_aside_ms, letter) in &letters {
                dead.remove(&mut meta, account, letter.seq, *set_aside_ms)?;
            }
            letters.len()
        };
        if dropped > 0 {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(dropped)
    }

    /// How many dead letters are kept; one lookup.
    pub fn dead_letter_count(&self) -> Result<u64, QueueError> {
        let txn = self.db.begin_read()?;
        Ok(counter(&txn.open_table(META)?, DEAD_COUNT)?)
    }

    pub fn item_count(&self) -> Result<u64, QueueError> {
        let txn = self.db.begin_read()?;
        Ok(counter(&txn.open_table(META)?, ITEM_COUNT)?)
    }

    /// Accounts with at least one queued item, in name order.
    pub fn accounts_with_items(&self) -> Result<Vec<String>, QueueError> {
        let txn = self.db.begin_read()?;
        let items = txn.open_table(ITEMS)?;
        let mut accounts: Vec<String> = Vec::new();
        loop {
            // Seek past the current account instead of walking all of its items.
            let next = match accounts.last() {
                None => items.first()?,
                Some(last) => items
                    .range::<(&str, u64)>((
                        Bound::Excluded((last.as_str(), u64::MAX)),
                        Bound::Unbounded,
                    ))?
                    .next()
                    .transpose()?,
            };
            let Some((key, _)) = next else {
                return Ok(accounts);
            };
            accounts.push(key.value().0.to_owned());
        }
    }

    /// Removes and returns the items older than the TTL at `now`, forgets event ids that
    /// arrived before then and drops dead letters set aside before then.
    pub fn expire(&self, now: SystemTime) -> Result<Expired, QueueError> {
        let cutoff = self.cutoff(unix_ms(now));
        let txn = self.db.begin_write()?;
        let (expired, forgotten) = {
            let mut tables = Tables::open(&txn)?;
            let due = tables
                .expiry
                .range(..(cutoff, 0))?
                .map(|entry| entry.map(|(key, _)| key.value().1))
                .collect::<Result<Vec<u64>, _>>()?;
            let mut expired = Vec::with_capacity(due.len());
            for seq in due {
                expired.extend(tables.remove(seq)?);
            }

            let stale = tables
                .seen_expiry
                .extract_from_if(..(cutoff, "", ""), |_, _| true)?
                .map(|entry| {
                    entry.map(|(key, _)| {
                        let (_, account, event_id) = key.value();
                        (account.to_owned(), event_id.to_owned())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            for (account, event_id) in &stale {
                tables.seen.remove((account.as_str(), event_id.as_str()))?;
            }
            let dead_letters =
                DeadLetters::open(&txn)?
                    .drop_oldest_while(&mut tables.meta, cutoff, |_, _| true)?;
            (
                Expired {
                    items: expired,
                    dead_letters,
                },
                stale.len(),
            )
        };
        // Most calls find nothing; skipping the commit spares an fsync per tick.
        if expired == Expired::default() && forgotten == 0 {
            txn.abort()?;
        } else {
            txn.commit()?;
        }
        Ok(expired)
    }

    /// Per-account totals, in account order. Reads every item, so it is meant for the operator's
    /// `queue stats`, not for a hot path.
    pub fn stats(&self) -> Result<Vec<AccountStats>, QueueError> {
        let now_ms = unix_ms(SystemTime::now());
        let txn = self.db.begin_read()?;
        let items = txn.open_table(ITEMS)?;
        let mut stats: Vec<AccountStats> = Vec::new();
        for entry in items.iter()? {
            let (key, value) = entry?;
            let (account, _) = key.value();
            let (_, payload, enqueued_ms, _) = value.value();
            let age = Duration::from_millis(now_ms.saturating_sub(enqueued_ms));
            match stats.last_mut() {
                Some(last) if last.account == account => {
                    last.items += 1;
                    last.oldest = last.oldest.max(age);
                    last.bytes += payload.len() as u64;
                }
                _ => stats.push(AccountStats {
                    account: account.to_owned(),
                    items: 1,
                    oldest: age,
                    bytes: payload.len() as u64,
                    dead_letters: 0,
                }),
            }
        }
        let dead = txn.open_table(DEAD_LETTERS)?;
        for entry in dead.iter()? {
            let (key, _) = entry?;
            let (account, _) = key.value();
            match stats.binary_search_by(|s| s.account.as_str().cmp(account)) {
                Ok(at) => stats[at].dead_letters += 1,
                Err(at) => stats.insert(
                    at,
                    AccountStats {
                        account: account.to_owned(),
                        items: 0,
                        oldest: Duration::ZERO,
                        bytes: 0,
                        dead_letters: 1,
                    },
                ),
            }
        }
        Ok(stats)
    }

    /// Arrival time (unix ms) before which items and event ids are past the TTL.
    fn cutoff(&self, now_ms: u64) -> u64 {
        let ttl_ms = u64::try_from(self.options.ttl.as_millis()).unwrap_or(u64::MAX);
        now_ms.saturating_sub(ttl_ms)
    }
}

/// Every table, opened in one write transaction.
struct Tables<'txn> {
    items: Table<'txn, ItemKey<'static>, ItemValue<'static>>,
    refusals: Table<'txn, u64, u32>,
    seqs: Table<'txn, u64, (&'static str, u64)>,
    expiry: Table<'txn, (u64, u64), ()>,
    seen: Table<'txn, (&'static str, &'static str), u64>,
    seen_expiry: Table<'txn, (u64, &'static str, &'static str), ()>,
    meta: Table<'txn, &'static str, u64>,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self, TableError> {
        Ok(Self {
            items: txn.open_table(ITEMS)?,
            refusals: txn.open_table(REFUSALS)?,
            seqs: txn.open_table(SEQS)?,
            expiry: txn.open_table(EXPIRY)?,
            seen: txn.open_table(SEEN)?,
            seen_expiry: txn.open_table(SEEN_EXPIRY)?,
            meta: txn.open_table(META)?,
        })
    }

    /// Adds an item with its index entries; the caller keeps the counters, once per batch.
    fn insert(
        &mut self,
        account: &str,
        seq: u64,
        event_id: &str,
        payload: &[u8],
        enqueued_ms: u64,
    ) -> Result<(), StorageError> {
        self.items
            .insert((account, seq), (event_id, payload, enqueued_ms, 0))?;
        self.seqs.insert(seq, (account, enqueued_ms))?;
        self.expiry.insert((enqueued_ms, seq), ())?;
        Ok(())
    }

    /// Removes an item and its index entries, leaving its event id remembered.
    fn remove(&mut self, seq: u64) -> Result<Option<Item>, StorageError> {
        let Some((account, enqueued_ms)) = self.seqs.remove(seq)?.map(|entry| {
            let (account, enqueued_ms) = entry.value();
            (account.to_owned(), enqueued_ms)
        }) else {
            return Ok(None);
        };
        self.expiry.remove((enqueued_ms, seq))?;
        self.refusals.remove(seq)?;
        let Some(removed) = self
            .items
            .remove((account.as_str(), seq))?
            .map(|entry| item(seq, &account, entry.value()))
        else {
            return Ok(None);
        };
        let items = counter(&self.meta, ITEM_COUNT)?;
        let bytes = counter(&self.meta, BYTE_COUNT)?;
        self.meta.insert(ITEM_COUNT, items.saturating_sub(1))?;
        self.meta.insert(
            BYTE_COUNT,
            bytes.saturating_sub(removed.payload.len() as u64),
        )?;
        Ok(Some(removed))
    }
}

/// The dead-letter tables, opened in one write transaction; their counters live in `META`,
/// which the caller has open already.
struct DeadLetters<'txn> {
    letters: Table<'txn, ItemKey<'static>, DeadValue<'static>>,
    order: Table<'txn, (u64, u64), &'static str>,
}

impl<'txn> DeadLetters<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self, TableError> {
        Ok(Self {
            letters: txn.open_table(DEAD_LETTERS)?,
            order: txn.open_table(DEAD_LETTER_ORDER)?,
        })
    }

    fn insert(
        &mut self,
        meta: &mut Table<'_, &'static str, u64>,
        item: &Item,
        status: u32,
        reason: &str,
        now_ms: u64,
    ) -> Result<(), StorageError> {
        self.letters.insert(
            (item.account.as_str(), item.seq),
            (
                item.event_id.as_str(),
                item.payload.as_slice(),
                unix_ms(item.enqueued_at),
                item.attempts,
                now_ms,
                status,
                reason,
            ),
        )?;
        self.order
            .insert((now_ms, item.seq), item.account.as_str())?;
        let count = counter(meta, DEAD_COUNT)?;
        let bytes = counter(meta, DEAD_BYTES)?;
        meta.insert(DEAD_COUNT, count + 1)?;
        meta.insert(DEAD_BYTES, bytes + item.payload.len() as u64)?;
        Ok(())
    }

    /// Takes one dead letter out, counters and all; returns its payload, `None` when there is
    /// no such dead letter.
    fn remove(
        &mut self,
        meta: &mut Table<'_, &'static str, u64>,
        account: &str,
        seq: u64,
        set_aside_ms: u64,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        self.order.remove((set_aside_ms, seq))?;
        let Some(payload) = self
            .letters
            .remove((account, seq))?
            .map(|letter| letter.value().1.to_vec())
        else {
            return Ok(None);
        };
        let count = counter(meta, DEAD_COUNT)?;
        let bytes = counter(meta, DEAD_BYTES)?;
        meta.insert(DEAD_COUNT, count.saturating_sub(1))?;
        meta.insert(DEAD_BYTES, bytes.saturating_sub(payload.len() as u64))?;
        Ok(Some(payload))
    }

    /// Drops dead letters in the order they were set aside, while `more(count, bytes)` holds
    /// of those kept and the next was set aside before `before` (unix ms); returns how many.
    fn drop_oldest_while(
        &mut self,
        meta: &mut Table<'_, &'static str, u64>,
        before: u64,
        mut more: impl FnMut(u64, u64) -> bool,
    ) -> Result<usize, StorageError> {
        let mut count = counter(meta, DEAD_COUNT)?;
        let mut bytes = counter(meta, DEAD_BYTES)?;
        let mut dropped = 0;
        while more(count, bytes) {
            let Some((key, account)) = self
                .order
                .first()?
                .map(|(key, account)| (key.value(), account.value().to_owned()))
            else {
                break;
            };
            if key.0 >= before {
                break;
            }
            self.order.remove(key)?;
            let size = self
                .letters
                .remove((account.as_str(), key.1))?
                .map_or(0, |letter| letter.value().1.len() as u64);
            count = count.saturating_sub(1);
            bytes = bytes.saturating_sub(size);
            dropped += 1;
        }
        if dropped > 0 {
            meta.insert(DEAD_COUNT, count)?;
            meta.insert(DEAD_BYTES, bytes)?;
        }
        Ok(dropped)
    }
}

fn counter(meta: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64, StorageError> {
    Ok(meta.get(key)?.map_or(0, |value| value.value()))
}

/// The account's dead letters with when each was set aside (unix ms), in that order: the order
/// `DEAD_LETTER_ORDER` expires and evicts them in, rather than the seq order they are keyed by.
fn letters_of(
    letters: &impl ReadableTable<ItemKey<'static>, DeadValue<'static>>,
    account: &str,
) -> Result<Vec<(u64, DeadLetter)>, StorageError> {
    let mut found = letters
        .range((account, 0)..=(account, u64::MAX))?
        .map(|entry| {
            let (key, value) = entry?;
            let (_, seq) = key.value();
            let (event_id, payload, _, attempts, set_aside_ms, status, reason) = value.value();
            let letter = DeadLetter {
                seq,
                event_id: event_id.to_owned(),
                status,
                reason: reason.to_owned(),
                dead_lettered_at: UNIX_EPOCH + Duration::from_millis(set_aside_ms),
                attempts,
                payload_len: payload.len(),
            };
            Ok((set_aside_ms, letter))
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    found.sort_by_key(|(set_aside_ms, letter)| (*set_aside_ms, letter.seq));
    Ok(found)
}

fn item(seq: u64, account: &str, (event_id, payload, enqueued_ms, attempts): ItemValue) -> Item {
    Item {
        seq,
        account: account.to_owned(),
        event_id: event_id.to_owned(),
        payload: payload.to_vec(),
        enqueued_at: UNIX_EPOCH + Duration::from_millis(enqueued_ms),
        attempts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{self, BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    use std::sync::Arc;

    use tempfile::TempDir;

    /// Tells a copy of the test binary to act as the other process of a cross-process test.
    const CHILD_ROLE: &str = "SMSGATE_QUEUE_TEST_CHILD";
    const CHILD_PATH: &str = "SMSGATE_QUEUE_TEST_PATH";
    const CRASH_PUSHES: u64 = 50;
    const HOLDER_READY: &str = "queue holder ready";

    fn open(dir: &TempDir) -> Queue {
        Queue::open(&dir.path().join("store.redb"), QueueOptions::default()).unwrap()
    }

    fn stored(push: Push) -> u64 {
        match push {
            Push::Stored(seq) => seq,
            Push::Duplicate => panic!("expected a stored item, got a duplicate"),
        }
    }

    fn event_ids(items: &[Item]) -> Vec<&str> {
        items.iter().map(|item| item.event_id.as_str()).collect()
    }

    /// The dead letters' byte counter, which bounds them.
    fn dead_bytes(queue: &Queue) -> u64 {
        let txn = queue.db.begin_read().unwrap();
        counter(&txn.open_table(META).unwrap(), DEAD_BYTES).unwrap()
    }

    /// Runs `test` again in a child copy of this binary, with the role it plays there.
    fn child(test: &str, role: &str, path: &Path) -> Command {
        let module = module_path!().split_once("::").unwrap().1;
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([&format!("{module}::{test}"), "--exact", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD_ROLE, role)
            .env(CHILD_PATH, path);
        command
    }

    #[test]
    fn queue_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Queue>();
    }

    #[test]
    fn keeps_arrival_order_per_account() {
        let dir = TempDir::new().unwrap();
        let queue = open(&dir);
        let a1 = stored(queue.push("alpha", "a1", b"one").unwrap());
        stored(queue.push("beta", "b1", b"uno").unwrap());
        let a2 = stored(queue.push("alpha", "a2", b"two").unwrap());
        stored(queue.push("beta", "b2", b"dos").unwrap());
        stored(queue.push("alpha", "a3", b"three").unwrap());

        let alpha = queue.peek("alpha", 10).unwrap();
        assert_eq!(event_ids(&alpha), ["a1", "a2", "a3"]);
        assert!(alpha.windows(2).all(|pair| pair[0].seq < pair[1].seq));
        assert_eq!(alpha[1].payload, b"two");
        assert_eq!(alpha[1].account, "alpha");
        assert_eq!(alpha[1].attempts, 0);
        assert_eq!(event_ids(&queue.peek("beta", 10).unwrap()), ["b1", "b2"]);
        assert_eq!(event_ids(&queue.peek("alpha", 2).unwrap()), ["a1", "a2"]);
        assert!(queue.peek("gamma", 10).unwrap().is_empty());
        assert_eq!(queue.accounts_with_items().unwrap(), ["alpha", "beta"]);

        // Peeking leaves the items in place; acking removes exactly one, once.
        assert_eq!(queue.peek("alpha", 1).unwrap()[0].seq, a1);
        assert!(queue.ack(a1).unwrap());
        assert!(!queue.ack(a1).unwrap());
        assert_eq!(event_ids(&queue.peek("alpha", 10).unwrap()), ["a2", "a3"]);
        assert!(queue.ack(a2).unwrap());

        for item in queue.peek("beta", 10).unwrap() {
            assert!(queue.ack(item.seq).unwrap());
        }
        assert_eq!(queue.accounts_with_items().unwrap(), ["alpha"]);
    }

    #[test]
    fn stores_an_event_once_while_its_id_is_remembered() {
        let dir = TempDir::new().unwrap();
        let queue = open(&dir);
        let t0 = SystemTime::now();
        let seq = stored(queue.push_at("alpha", "e1", &[b"x"], t0).unwrap());
        assert_eq!(
            queue.push_at("alpha", "e1", &[b"x"], t0).unwrap(),
            Push::Duplicate
        );
        // Event ids are per account.
        stored(queue.push_at("beta", "e1", &[b"x"], t0).unwrap());

        // A webhook retried after the ESME got the first copy must not make a second one.
        assert!(queue.ack(seq).unwrap());
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(
            queue.push_at("alpha", "e1", &[b"x"], later).unwrap(),
            Push::Duplicate
        );
        assert!(queue.peek("alpha", 10).unwrap().is_empty());

        // Past the TTL the id is forgotten, whether or not `expire` has pruned it yet.
        let past_ttl = t0 + QueueOptions::default().ttl + Duration::from_millis(1);
        let again = stored(queue.push_at("alpha", "e1", &[b"x"], past_ttl).unwrap());
        assert!(again > seq);
        assert_eq!(
            queue.push_at("alpha", "e1", &[b"x"], past_ttl).unwrap(),
            Push::Duplicate
        );
    }

    #[test]
    fn the_items_of_one_event_are_stored_together_and_acknowledged_in_one_go() {
        let dir = TempDir::new().unwrap();
        let queue = open(&dir);
        let first = stored(
            queue
                .push_all("alpha", "mo", &[b"p1", b"p2", b"p3"])
                .unwrap(),
        );
        assert_eq!(
            queue
                .push_all("alpha", "mo", &[b"p1", b"p2", b"p3"])
                .unwrap(),
            Push::Duplicate
        );
        let items = queue.peek("alpha", 10).unwrap();
        let payloads: Vec<&[u8]> = items.iter().map(|i| i.payload.as_slice()).collect();
        assert_eq!(payloads, [b"p1", b"p2", b"p3"]);
        assert_eq!(items[0].seq, first);
        assert_eq!(queue.ack_many(&[first, first + 2, 999]).unwrap(), 2);
        let left: Vec<u64> = queue
            .peek("alpha", 10)
            .unwrap()
            .iter()
            .map(|i| i.seq)
            .collect();
        assert_eq!(left, [first + 1]);
        assert_eq!(queue.stats().unwrap()[0].items, 1);
    }

    #[test]
    fn tokens_are_remembered_across_reopening() {
        let dir = TempDir::new().unwrap();
        {
            let queue = open(&dir);
            queue.remember_token("t1", "alpha", false).unwrap();
            queue.remember_token("t2", "beta", true).unwrap();
            queue.remember_token("t1", "alpha", true).unwrap();
        }
        let queue = open(&dir);
        assert_eq!(
            queue.tokens().unwrap(),
            [
                ("t1".to_owned(), "alpha".to_owned(), true),
                ("t2".to_owned(), "beta".to_owned(), true)
            ]
        );
    }

    #[test]
    fn reopening_keeps_items_and_the_sequence() {
        let dir = TempDir::new().unwrap();
        let (kept, acked) = {
            let queue = open(&dir);
            let kept = stored(queue.push("alpha", "e1", b"kept").unwrap());
            let acked = stored(queue.push("alpha", "e2", b"acked").unwrap());
            assert!(queue.ack(acked).unwrap());
            (kept, acked)
        };

        let queue = open(&dir);
        let items = queue.peek("alpha", 10).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(
            (items[0].seq, items[0].payload.as_slice()),
            (kept, &b"kept"[..])
        );
        assert_eq!(
            queue.push("alpha", "e2", b"acked").unwrap(),
            Push::Duplicate
        );
        // The acked item had the highest seq; it is not handed out again.
        assert!(stored(queue.push("alpha", "e3", b"new").unwrap()) > acked);
    }

    #[test]
    fn pushes_survive_an_abort_right_after_they_return() {
        if std::env::var(CHILD_ROLE).as_deref() == Ok("abort") {
            let queue = Queue::open(
                Path::new(&std::env::var_os(CHILD_PATH).unwrap()),
                QueueOptions::default(),
            )
            .unwrap();
            for n in 0..CRASH_PUSHES {
                stored(
                    queue
                        .push("alpha", &format!("e{n}"), &n.to_be_bytes())
                        .unwrap(),
                );
            }
            std::process::abort();
        }

        let dir = TempDir::new().unwrap();
        let status = child(
            "pushes_survive_an_abort_right_after_they_return",
            "abort",
            &dir.path().join("store.redb"),
        )
        .stdout(Stdio::null())
        .status()
        .unwrap();
        assert!(!status.success(), "the writer was meant to abort");

        let queue = open(&dir);
        let items = queue.peek("alpha", usize::MAX).unwrap();
        assert_eq!(items.len() as u64, CRASH_PUSHES);
        for (n, item) in (0..CRASH_PUSHES).zip(&items) {
            assert_eq!(item.event_id, format!("e{n}"));
            assert_eq!(item.payload, n.to_be_bytes());
        }
    }

    #[test]
    fn refuses_a_file_another_process_holds() {
        if std::env::var(CHILD_ROLE).as_deref() == Ok("hold") {
            let queue = Queue::open(
                Path::new(&std::env::var_os(CHILD_PATH).unwrap()),
                QueueOptions::default(),
            )
            .unwrap();
            stored(queue.push("alpha", "held", b"x").unwrap());
            println!("{HOLDER_READY}");
            io::stdout().flush().unwrap();
            // Hold the file until the parent kills this process.
            io::stdin().read_line(&mut String::new()).unwrap();
            return;
        }

        let dir = TempDir::new().unwrap();
        let mut holder = child(
            "refuses_a_file_another_process_holds",
            "hold",
            &dir.path().join("store.redb"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        let mut stdout = BufReader::new(holder.stdout.take().unwrap());
        let mut line = String::new();
        // libtest prints the test's name on the same line, before the marker.
        while !line.contains(HOLDER_READY) {
            line.clear();
            assert_ne!(
                stdout.read_line(&mut line).unwrap(),
                0,
                "holder exited early"
            );
        }

        let error = Queue::open(&dir.path().join("store.redb"), QueueOptions::default()).err();
        holder.kill().unwrap();
        holder.wait().unwrap();
        match error {
            Some(QueueError::Open(OpenError::Locked(path))) => {
                assert_eq!(path, dir.path().join("store.redb"))
            }
            other => panic!("expected Locked, got {other:?}"),
        }

        // SIGKILL releases the lock and keeps what the holder pushed.
        let queue = open(&dir);
        assert_eq!(event_ids(&queue.peek("alpha", 10).unwrap()), ["held"]);
    }

    #[test]
    fn is_full_at_max_items() {
        let dir = TempDir::new().unwrap();
        let options = QueueOptions {
            max_items: 2,
            ..QueueOptions::default()
        };
        let queue = Queue::open(&dir.path().join("store.redb"), options).unwrap();
        let first = stored(queue.push("alpha", "e1", b"x").unwrap());
        stored(queue.push("beta", "e2", b"x").unwrap());
        assert!(matches!(
            queue.push("alpha", "e3", b"x"),
            Err(QueueError::Full)
        ));
        // A retry of a held event is still answered as held.
        assert_eq!(queue.push("alpha", "e1", b"x").unwrap(), Push::Duplicate);

        assert!(queue.ack(first).unwrap());
        stored(queue.push("alpha", "e3", b"x").unwrap());
    }

    #[test]
    fn is_full_at_max_bytes() {
        let dir = TempDir::new().unwrap();
        let options = QueueOptions {
            max_bytes: 10,
            ..QueueOptions::default()
        };
        let queue = Queue::open(&dir.path().join("store.redb"), options).unwrap();
        let first = stored(queue.push("alpha", "e1", &[0; 6]).unwrap());
        assert!(matches!(
            queue.push("alpha", "e2", &[0; 5]),
            Err(QueueError::Full)
        ));
        stored(queue.push("alpha", "e3", &[0; 4]).unwrap());
        assert!(matches!(
            queue.push("alpha", "e4", &[0; 11]),
            Err(QueueError::TooLarge { size: 11, max: 10 })
        ));

        assert!(queue.ack(first).unwrap());
        stored(queue.push("alpha", "e2", &[0; 5]).unwrap());
    }

    #[test]
    fn expire_removes_and_returns_items_past_the_ttl() {
        let dir = TempDir::new().unwrap();
        let queue = open(&dir);
        let ttl = QueueOptions::default().ttl;
        let t0 = SystemTime::now() - Duration::from_secs(10);
        let old = stored(queue.push_at("alpha", "old", &[b"old"], t0).unwrap());
        stored(
            queue
                .push_at("beta", "young", &[b"young"], t0 + Duration::from_secs(5))
                .unwrap(),
        );

        assert_eq!(queue.expire(t0 + ttl).unwrap(), Expired::default());
        let expired = queue
            .expire(t0 + ttl + Duration::from_millis(1))
            .unwrap()
            .items;
        assert_eq!(expired.len(), 1);
        assert_eq!(
            (
                expired[0].seq,
                expired[0].account.as_str(),
                expired[0].payload.as_slice()
            ),
            (old, "alpha", &b"old"[..])
        );
        assert_eq!(unix_ms(expired[0].enqueued_at), unix_ms(t0));
        assert!(queue.peek("alpha", 10).unwrap().is_empty());
        assert_eq!(event_ids(&queue.peek("beta", 10).unwrap()), ["young"]);
        assert_eq!(queue.accounts_with_items().unwrap(), ["beta"]);
        assert!(!queue.ack(old).unwrap());
        assert!(
            queue
                .expire(t0 + ttl + Duration::from_millis(1))
                .unwrap()
                .items
                .is_empty()
        );

        // Its event id went with it; the young one is still remembered.
        stored(queue.push("alpha", "old", b"old").unwrap());
        assert_eq!(
            queue.push("beta", "young", b"young").unwrap(),
            Push::Duplicate
        );
        let stats = queue.stats().unwrap();
        assert_eq!(stats.iter().map(|s| s.bytes).sum::<u64>(), 8);
    }

    #[test]
    fn stats_per_account() {
        let dir = TempDir::new().unwrap();
        let queue = open(&dir);
        assert!(queue.stats().unwrap().is_empty());
        let now = SystemTime::now();
        queue
            .push_at("beta", "b1", &[&[0; 7]], now - Duration::from_secs(60))
            .unwrap();
        queue.push_at("alpha", "a1", &[&[0; 3]], now).unwrap();
        queue
            .push_at("alpha", "a2", &[&[0; 4]], now - Duration::from_secs(120))
            .unwrap();

        let stats = queue.stats().unwrap();
        assert_eq!(stats.len(), 2);
        assert_eq!(
            (stats[0].account.as_str(), stats[0].items, stats[0].bytes),
            ("alpha", 2, 7)
        );
        assert_eq!(
            (stats[1].account.as_str(), stats[1].items, stats[1].bytes),
            ("beta", 1, 7)
        );
        // The oldest is the earliest arrival, not the lowest seq.
        assert!(stats[0].oldest >= Duration::from_secs(120));
        assert!(stats[0].oldest < Duration::from_secs(180));
        assert!(stats[1].oldest >= Duration::from_secs(60));
    }

    #[test]
    fn retry_later_counts_attempts_and_keeps_order() {
        let dir = TempDir::new().unwrap();
        let queue = open(&dir);
        let first = stored(queue.push("alpha", "e1", b"one").unwrap());
        stored(queue.push("alpha", "e2", b"two").unwrap());

        assert_eq!(queue.retry_later(first).unwrap(), Some(1));
        assert_eq!(queue.retry_later(first).unwrap(), Some(2));
        let items = queue.peek("alpha", 10).unwrap();
        assert_eq!(event_ids(&items), ["e1", "e2"]);
        assert_eq!((items[0].attempts, items[1].attempts), (2, 0));
        assert_eq!(items[0].payload, b"one");

        assert!(queue.ack(first).unwrap());
        assert_eq!(queue.retry_later(first).unwrap(), None);
        assert_eq!(queue.retry_later(9_999).unwrap(), None);
    }

    #[test]
    fn permanent_refusals_are_counted_apart_from_other_failures() {
        let dir = TempDir::new().unwrap();
        let queue = open(&dir);
        let seq = stored(queue.push("alpha", "e1", b"one").unwrap());

        assert_eq!(queue.retry_later(seq).unwrap(), Some(1));
        let counts = |attempts, permanent| {
            Some(Refusals {
                attempts,
                permanent,
            })
        };
        assert_eq!(queue.refused(seq).unwrap(), counts(2, 1));
        assert_eq!(queue.retry_later(seq).unwrap(), Some(3));
        assert_eq!(queue.refused(seq).unwrap(), counts(4, 2));
        assert_eq!(queue.peek("alpha", 1).unwrap()[0].attempts, 4);

        assert!(queue.ack(seq).unwrap());
        assert_eq!(queue.refused(seq).unwrap(), None);
    }

    #[test]
    fn a_dead_letter_leaves_the_live_queue_and_is_counted_across_reopening() {
        let dir = TempDir::new().unwrap();
        let seq = {
            let queue = open(&dir);
            let seq = stored(queue.push("alpha", "bad", b"refused").unwrap());
            stored(queue.push("alpha", "good", b"fine").unwrap());
            queue.refused(seq).unwrap();

            let moved = queue
                .dead_letter(seq, 0x0B, "destination_addr is empty")
                .unwrap()
                .unwrap();
            assert_eq!(
                (moved.item.event_id.as_str(), moved.item.attempts),
                ("bad", 1)
            );
            assert_eq!(moved.evicted, 0);
            assert_eq!(event_ids(&queue.peek("alpha", 10).unwrap()), ["good"]);
            // Gone from the live queue: a late answer or a second verdict finds nothing.
            assert!(!queue.ack(seq).unwrap());
            assert_eq!(queue.refused(seq).unwrap(), None);
            assert_eq!(queue.dead_letter(seq, 0x0B, "again").unwrap(), None);
            seq
        };

        let queue = open(&dir);
        assert_eq!(queue.dead_letter_count().unwrap(), 1);
        assert_eq!(queue.item_count().unwrap(), 1);
        let stats = queue.stats().unwrap();
        assert_eq!(
            (stats[0].items, stats[0].bytes, stats[0].dead_letters),
            (1, 4, 1)
        );
        // The phone retrying the event does not bring it back.
        assert_eq!(
            queue.push("alpha", "bad", b"refused").unwrap(),
            Push::Duplicate
        );
        assert!(stored(queue.push("alpha", "new", b"x").unwrap()) > seq);
    }

    #[test]
    fn an_account_with_dead_letters_only_is_listed_in_order() {
        let dir = TempDir::new().unwrap();
        let queue = open(&dir);
        stored(queue.push("alpha", "a1", b"x").unwrap());
        let beta = stored(queue.push("beta", "b1", b"yy").unwrap());
        stored(queue.push("gamma", "g1", b"z").unwrap());
        queue.dead_letter(beta, 0x0B, "refused").unwrap().unwrap();

        let stats = queue.stats().unwrap();
        let rows: Vec<(&str, usize, u64, usize)> = stats
            .iter()
            .map(|s| (s.account.as_str(), s.items, s.bytes, s.dead_letters))
            .collect();
        assert_eq!(
            rows,
            [("alpha", 1, 1, 0), ("beta", 0, 0, 1), ("gamma", 1, 1, 0)]
        );
        assert_eq!(stats[1].oldest, Duration::ZERO);
        assert_eq!(queue.accounts_with_items().unwrap(), ["alpha", "gamma"]);
    }

    #[test]
    fn dead_letters_expire_after_the_ttl_and_stay_within_the_queue_bounds() {
        let dir = TempDir::new().unwrap();
        let options = QueueOptions {
            max_items: 2,
            ..QueueOptions::default()
        };
        let queue = Queue::open(&dir.path().join("store.redb"), options).unwrap();
        let t0 = SystemTime::now();
        let dead_letter = |event_id: &str, at: SystemTime| {
            let seq = stored(queue.push(event_id, event_id, b"x").unwrap());
            queue
                .dead_letter_at(seq, 0x0B, "refused", at)
                .unwrap()
                .unwrap()
                .evicted
        };
        assert_eq!(dead_letter("first", t0), 0);
        assert_eq!(dead_letter("second", t0 + Duration::from_secs(1)), 0);
        // A third would exceed max_items: the one set aside first makes room.
        assert_eq!(dead_letter("third", t0 + Duration::from_secs(2)), 1);
        let accounts: Vec<String> = queue
            .stats()
            .unwrap()
            .into_iter()
            .map(|s| s.account)
            .collect();
        assert_eq!(accounts, ["second", "third"]);

        let ttl = options.ttl;
        assert_eq!(
            queue.expire(t0 + Duration::from_secs(1) + ttl).unwrap(),
            Expired::default()
        );
        let expired = queue
            .expire(t0 + Duration::from_secs(1) + ttl + Duration::from_millis(1))
            .unwrap();
        assert_eq!((expired.items.len(), expired.dead_letters), (0, 1));
        assert_eq!(queue.dead_letter_count().unwrap(), 1);
        assert_eq!(queue.stats().unwrap()[0].account, "third");
    }

    #[test]
    fn a_file_written_before_dead_letters_opens_and_gains_them() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("store.redb");
        {
            // The tables and counters of the layout before refusals and dead letters.
            let now_ms = unix_ms(SystemTime::now());
            let db = store::open(&path, CACHE_BYTES, SCHEMA_VERSION, |txn| {
                let mut items = txn.open_table(ITEMS)?;
                items.insert(("alpha", 1), ("old", &b"kept"[..], now_ms, 2))?;
                txn.open_table(SEQS)?.insert(1, ("alpha", now_ms))?;
                txn.open_table(EXPIRY)?.insert((now_ms, 1), ())?;
                txn.open_table(SEEN)?;
                txn.open_table(SEEN_EXPIRY)?;
                txn.open_table(TOKENS)?;
                let mut meta = txn.open_table(META)?;
                meta.insert(NEXT_SEQ, 2)?;
                meta.insert(ITEM_COUNT, 1)?;
                meta.insert(BYTE_COUNT, 4)?;
                Ok(())
            })
            .unwrap();
            let txn = db.begin_read().unwrap();
            assert!(txn.open_table(DEAD_LETTERS).is_err());
        }

        let queue = open(&dir);
        assert_eq!(event_ids(&queue.peek("alpha", 10).unwrap()), ["old"]);
        assert_eq!(queue.dead_letter_count().unwrap(), 0);
        assert_eq!(queue.stats().unwrap()[0].dead_letters, 0);
        let counts = queue.refused(1).unwrap().unwrap();
        assert_eq!((counts.attempts, counts.permanent), (3, 1));
        let moved = queue.dead_letter(1, 0x0B, "refused").unwrap().unwrap();
        assert_eq!(moved.item.payload, b"kept");
        assert_eq!(queue.stats().unwrap()[0].dead_letters, 1);
    }

    #[test]
    fn dead_letters_are_listed_in_the_order_they_were_set_aside_across_reopening() {
        let dir = TempDir::new().unwrap();
        let t0 = SystemTime::now();
        let (first, second) = {
            let queue = open(&dir);
            let first = stored(queue.push("alpha", "e1", b"one").unwrap());
            let second = stored(queue.push("alpha", "e2", b"second").unwrap());
            stored(queue.push("alpha", "live", b"x").unwrap());
            let other = stored(queue.push("beta", "b1", b"x").unwrap());
            queue.refused(second).unwrap();
            // Set aside in the reverse of their arrival: the list follows when, not the seq.
            queue
                .dead_letter_at(second, 0x0B, "invalid destination", t0)
                .unwrap()
                .unwrap();
            queue
                .dead_letter_at(first, 0x45, "submit failed", t0 + Duration::from_secs(1))
                .unwrap()
                .unwrap();
            queue.dead_letter(other, 0x0B, "refused").unwrap().unwrap();
            (first, second)
        };

        let queue = open(&dir);
        let at = |time: SystemTime| UNIX_EPOCH + Duration::from_millis(unix_ms(time));
        let letters = queue.dead_letters("alpha", 10).unwrap();
        assert_eq!(
            letters,
            [
                DeadLetter {
                    seq: second,
                    event_id: "e2".into(),
                    status: 0x0B,
                    reason: "invalid destination".into(),
                    dead_lettered_at: at(t0),
                    attempts: 1,
                    payload_len: 6,
                },
                DeadLetter {
                    seq: first,
                    event_id: "e1".into(),
                    status: 0x45,
                    reason: "submit failed".into(),
                    dead_lettered_at: at(t0 + Duration::from_secs(1)),
                    attempts: 0,
                    payload_len: 3,
                },
            ]
        );
        assert_eq!(queue.dead_letters("alpha", 1).unwrap(), letters[..1]);
        assert!(queue.dead_letters("alpha", 0).unwrap().is_empty());
        assert_eq!(event_ids(&queue.peek("alpha", 10).unwrap()), ["live"]);
    }

    #[test]
    fn retried_dead_letters_rejoin_the_queue_after_the_live_items_as_fresh_items() {
        let dir = TempDir::new().unwrap();
        let queue = open(&dir);
        let ttl = QueueOptions::default().ttl;
        let t0 = SystemTime::now();
        let first = stored(queue.push_at("alpha", "e1", &[b"one"], t0).unwrap());
        let second = stored(queue.push_at("alpha", "e2", &[b"two"], t0).unwrap());
        stored(queue.push_at("alpha", "live", &[b"live"], t0).unwrap());
        queue.refused(first).unwrap();
        queue.dead_letter_at(first, 0x0B, "refused", t0).unwrap();
        queue
            .dead_letter_at(second, 0x0B, "refused", t0 + Duration::from_secs(1))
            .unwrap();

        let retried_at = t0 + Duration::from_secs(3600);
        assert_eq!(queue.retry_dead_letters_at("alpha", retried_at).unwrap(), 2);
        let items = queue.peek("alpha", 10).unwrap();
        assert_eq!(event_ids(&items), ["live", "e1", "e2"]);
        assert!(items[1].seq > items[0].seq && items[1].seq != first);
        assert_eq!(
            (items[1].payload.as_slice(), items[1].attempts),
            (&b"one"[..], 0)
        );
        assert_eq!(unix_ms(items[1].enqueued_at), unix_ms(retried_at));
        // The refusal before it was set aside no longer counts towards setting it aside again.
        assert_eq!(
            queue.refused(items[1].seq).unwrap(),
            Some(Refusals {
                attempts: 1,
                permanent: 1
            })
        );
        assert!(queue.dead_letters("alpha", 10).unwrap().is_empty());
        assert_eq!(
            (queue.dead_letter_count().unwrap(), dead_bytes(&queue)),
            (0, 0)
        );
        assert_eq!(queue.item_count().unwrap(), 3);
        let stats = queue.stats().unwrap();
        assert_eq!(
            (stats[0].items, stats[0].bytes, stats[0].dead_letters),
            (3, 10, 0)
        );

        // Their TTL runs from the retry, not from their first arrival.
        let expired = queue.expire(t0 + ttl + Duration::from_millis(1)).unwrap();
        assert_eq!(event_ids(&expired.items), ["live"]);
        assert_eq!(queue.ack_many(&[items[1].seq, items[2].seq]).unwrap(), 2);
        assert_eq!(queue.item_count().unwrap(), 0);
        assert!(queue.stats().unwrap().is_empty());
    }

    #[test]
    fn retrying_dead_letters_keeps_those_the_queue_has_no_room_for() {
        let dir = TempDir::new().unwrap();
        let options = QueueOptions {
            max_bytes: 10,
            ..QueueOptions::default()
        };
        let queue = Queue::open(&dir.path().join("store.redb"), options).unwrap();
        for (event_id, payload) in [("big", &[0; 6][..]), ("small", &[0; 3])] {
            let seq = stored(queue.push("alpha", event_id, payload).unwrap());
            queue.dead_letter(seq, 0x0B, "refused").unwrap().unwrap();
        }
        let live = stored(queue.push("alpha", "live", &[0; 5]).unwrap());

        // 5 + 6 bytes would not fit; 5 + 3 does.
        assert_eq!(queue.retry_dead_letters("alpha").unwrap(), 1);
        assert_eq!(
            event_ids(&queue.peek("alpha", 10).unwrap()),
            ["live", "small"]
        );
        let left = queue.dead_letters("alpha", 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].event_id, "big");
        assert_eq!(dead_bytes(&queue), 6);
        let stats = queue.stats().unwrap();
        assert_eq!(
            (stats[0].items, stats[0].bytes, stats[0].dead_letters),
            (2, 8, 1)
        );

        assert!(queue.ack(live).unwrap());
        assert_eq!(queue.retry_dead_letters("alpha").unwrap(), 1);
        assert_eq!(
            event_ids(&queue.peek("alpha", 10).unwrap()),
            ["small", "big"]
        );
        assert_eq!(queue.dead_letter_count().unwrap(), 0);
    }

    #[test]
    fn dropped_dead_letters_are_gone_from_the_counts() {
        let dir = TempDir::new().unwrap();
        let queue = open(&dir);
        for (account, event_id) in [("alpha", "a1"), ("alpha", "a2"), ("beta", "b1")] {
            let seq = stored(queue.push(account, event_id, b"xy").unwrap());
            queue.dead_letter(seq, 0x0B, "refused").unwrap().unwrap();
        }
        stored(queue.push("alpha", "live", b"x").unwrap());

        assert_eq!(queue.drop_dead_letters("alpha").unwrap(), 2);
        assert_eq!(queue.drop_dead_letters("alpha").unwrap(), 0);
        assert!(queue.dead_letters("alpha", 10).unwrap().is_empty());
        assert_eq!(
            (queue.dead_letter_count().unwrap(), dead_bytes(&queue)),
            (1, 2)
        );
        let stats = queue.stats().unwrap();
        let rows: Vec<(&str, usize, u64, usize)> = stats
            .iter()
            .map(|s| (s.account.as_str(), s.items, s.bytes, s.dead_letters))
            .collect();
        assert_eq!(rows, [("alpha", 1, 1, 0), ("beta", 0, 0, 1)]);
        // Dropped for good: the phone retrying the event does not bring it back either.
        assert_eq!(queue.push("alpha", "a1", b"xy").unwrap(), Push::Duplicate);
    }

    #[test]
    fn dead_letter_operations_on_an_unknown_account_find_nothing() {
        let dir = TempDir::new().unwrap();
        let queue = open(&dir);
        assert!(queue.dead_letters("nobody", 10).unwrap().is_empty());
        assert_eq!(queue.retry_dead_letters("nobody").unwrap(), 0);
        assert_eq!(queue.drop_dead_letters("nobody").unwrap(), 0);

        let seq = stored(queue.push("alpha", "e1", b"x").unwrap());
        queue.dead_letter(seq, 0x0B, "refused").unwrap().unwrap();
        assert!(queue.dead_letters("nobody", 10).unwrap().is_empty());
        assert_eq!(queue.retry_dead_letters("nobody").unwrap(), 0);
        assert_eq!(queue.drop_dead_letters("nobody").unwrap(), 0);
        assert_eq!(queue.dead_letter_count().unwrap(), 1);
    }

    #[test]
    fn concurrent_pushes_get_distinct_sequences() {
        let dir = TempDir::new().unwrap();
        let queue = Arc::new(open(&dir));
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || {
                    (0..25)
                        .map(|n| {
                            stored(
                                queue
                                    .push("alpha", &format!("t{thread}-{n}"), b"x")
                                    .unwrap(),
                            )
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), 100);
        assert_eq!(queue.peek("alpha", usize::MAX).unwrap().len(), 100);
    }
}
