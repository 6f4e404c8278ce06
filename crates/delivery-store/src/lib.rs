//! Where the delivery path keeps what must survive a restart: the queue of deliver_sm per
//! account (from the webhook's 2xx until an ESME's deliver_sm_resp), the dead letters the ESMEs
//! refused for good, the record of sent messages that asked for receipts, and the webhook
//! tokens handed out.
//!
//! The server talks to a [`DeliveryStore`]; [`embedded::Embedded`] keeps everything in redb
//! files under the data directory, for a single instance. A shared backend (several instances
//! behind a load balancer) implements the same trait.

pub mod embedded;

use std::time::SystemTime;

use bytes::Bytes;
use futures::future::BoxFuture;

pub use embedded::queue::{AccountStats, DeadLettered, Expired, Item, Push, QueueError, Refusals};
pub use embedded::sent::{SentLogError, SentRecord};

/// Bytes of the secret webhook tokens are derived from.
pub const TOKEN_SECRET_LEN: usize = 32;

/// A token handed out in a webhook URL: whose it is, and whether its events must be signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenOwner {
    pub token: String,
    pub account: String,
    pub signed: bool,
}

/// The delivery path's state. Every method's future is `'static`, so callers can hold it past
/// the borrow (e.g. a receipt record written while the gateway call runs); each resolves only
/// when its change is durable.
pub trait DeliveryStore: Send + Sync {
    /// Stores the deliver_sm bodies one webhook event became, unless the (account, event id)
    /// was seen within the TTL.
    fn push(
        &self,
        account: &str,
        event_id: &str,
        payloads: Vec<Bytes>,
    ) -> BoxFuture<'static, Result<Push, QueueError>>;

    /// The account's oldest `limit` items, in arrival order.
    fn peek(
        &self,
        account: &str,
        limit: usize,
    ) -> BoxFuture<'static, Result<Vec<Item>, QueueError>>;

    /// Removes delivered items; returns how many were still queued.
    fn ack(&self, seqs: Vec<u64>) -> BoxFuture<'static, Result<usize, QueueError>>;

    /// Counts a failed attempt; returns the attempts so far, `None` when the item is gone.
    fn retry_later(&self, seq: u64) -> BoxFuture<'static, Result<Option<u32>, QueueError>>;

    /// Counts an attempt refused with a status no retry can change; returns the attempts and
    /// the permanent refusals so far, `None` when the item is gone.
    fn refused(&self, seq: u64) -> BoxFuture<'static, Result<Option<Refusals>, QueueError>>;

    /// Moves an item out of the live queue into the dead letters, kept with the ESME's
    /// `status` and the `reason` within the queue's bounds (TTL, items, bytes); `None` when the
    /// item is gone.
    fn dead_letter(
        &self,
        seq: u64,
        status: u32,
        reason: &str,
    ) -> BoxFuture<'static, Result<Option<DeadLettered>, QueueError>>;

    /// How many dead letters are kept.
    fn dead_letter_count(&self) -> BoxFuture<'static, Result<u64, QueueError>>;

    /// Accounts with items waiting, e.g. from an earlier run.
    fn accounts_with_items(&self) -> BoxFuture<'static, Result<Vec<String>, QueueError>>;

    /// Drops items, event ids and dead letters older than the TTL; returns what was dropped.
    fn expire(&self, now: SystemTime) -> BoxFuture<'static, Result<Expired, QueueError>>;

    fn stats(&self) -> BoxFuture<'static, Result<Vec<AccountStats>, QueueError>>;

    /// The secret webhook tokens are derived from: created once, the same ever after.
    fn token_secret(&self) -> [u8; TOKEN_SECRET_LEN];

    /// Records a token's owner, so a restarted server still knows its webhook URLs.
    fn remember_token(&self, owner: TokenOwner) -> BoxFuture<'static, Result<(), QueueError>>;

    fn tokens(&self) -> BoxFuture<'static, Result<Vec<TokenOwner>, QueueError>>;

    /// Remembers a submitted message that asked for receipts, under the id its ESME got. The
    /// record must be visible to [`sent`](Self::sent) from this call on, before the returned
    /// future resolves: the server writes it while the gateway call runs, and a receipt can
    /// arrive before the write is durable.
    fn record_sent(
        &self,
        message_id: &str,
        record: SentRecord,
    ) -> BoxFuture<'static, Result<(), SentLogError>>;

    fn sent(
        &self,
        message_id: &str,
    ) -> BoxFuture<'static, Result<Option<SentRecord>, SentLogError>>;

    /// Forgets sent records older than their TTL; returns how many.
    fn prune_sent(&self, now: SystemTime) -> BoxFuture<'static, Result<usize, SentLogError>>;
}
