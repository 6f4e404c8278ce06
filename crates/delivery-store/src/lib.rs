//! Where the delivery path keeps what must survive a restart: the queue of deliver_sm per
//! account (from the webhook's 2xx until an ESME's deliver_sm_resp), the dead letters the ESMEs
//! refused for good, the record of sent messages that asked for receipts, and the webhook
//! tokens handed out.
//!
//! The server talks to a [`DeliveryStore`]; [`embedded::Embedded`] keeps everything in redb
//! files under the data directory, for a single instance; [`shared::Shared`] keeps it on Redis,
//! for several instances behind a load balancer, which also learn there which instance holds
//! which receivers.

pub mod embedded;
pub mod shared;

use std::time::SystemTime;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

pub use embedded::queue::{
    AccountStats, DeadLetter, DeadLettered, Expired, Item, Push, QueueError, Refusals,
};
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

/// Receivers of one SMPP user held by this instance, as the other instances learn of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    /// The SMSGate account the user sends through (`Account::smsgate_account` in the server).
    pub smsgate: String,
    pub user: String,
    /// The SIM and device the user's incoming SMS are limited to, if any.
    pub sim_number: Option<u8>,
    pub device_id: Option<String>,
}

/// An SMPP user that bound as a receiver of an SMSGate account on some instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownUser {
    pub name: String,
    pub sim_number: Option<u8>,
    pub device_id: Option<String>,
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

    /// The account's oldest `limit` items, in arrival order. On a shared store, reading hands
    /// the items to this instance until they are acknowledged or it stops holding receivers of
    /// the account, so only an instance with receivers of the account reads its queue.
    fn peek(
        &self,
        account: &str,
        limit: usize,
    ) -> BoxFuture<'static, Result<Vec<Item>, QueueError>>;

    /// Removes delivered items; returns how many were still queued.
    fn ack(&self, account: &str, seqs: Vec<u64>) -> BoxFuture<'static, Result<usize, QueueError>>;

    /// Counts a failed attempt; returns the attempts so far, `None` when the item is gone.
    fn retry_later(
        &self,
        account: &str,
        seq: u64,
    ) -> BoxFuture<'static, Result<Option<u32>, QueueError>>;

    /// Counts an attempt refused with a status no retry can change; returns the attempts and
    /// the permanent refusals so far, `None` when the item is gone.
    fn refused(
        &self,
        account: &str,
        seq: u64,
    ) -> BoxFuture<'static, Result<Option<Refusals>, QueueError>>;

    /// Moves an item out of the live queue into the dead letters, kept with the ESME's
    /// `status` and the `reason` within the queue's bounds (TTL, items, bytes); `None` when the
    /// item is gone.
    fn dead_letter(
        &self,
        account: &str,
        seq: u64,
        status: u32,
        reason: &str,
    ) -> BoxFuture<'static, Result<Option<DeadLettered>, QueueError>>;

    /// The account's dead letters, oldest (set aside first) first, at most `limit`; for an
    /// operator deciding whether to retry or drop them.
    fn dead_letters(
        &self,
        account: &str,
        limit: usize,
    ) -> BoxFuture<'static, Result<Vec<DeadLetter>, QueueError>>;

    /// Moves the account's dead letters back to the end of its live queue, oldest first, as
    /// fresh items: their attempts and refusals start again from zero, so the ESMEs get
    /// `dead_letter_after` tries again, and so does their TTL, which runs from this call. A dead
    /// letter that would take the queue past the bounds a push is held to (items, bytes) stays
    /// one. Returns how many moved. As after a push, the caller wakes its own dispatcher of the
    /// account; a shared store also wakes the other instances, as a push does.
    fn retry_dead_letters(&self, account: &str) -> BoxFuture<'static, Result<usize, QueueError>>;

    /// Deletes the account's dead letters; returns how many.
    fn drop_dead_letters(&self, account: &str) -> BoxFuture<'static, Result<usize, QueueError>>;

    /// How many dead letters are kept.
    fn dead_letter_count(&self) -> BoxFuture<'static, Result<u64, QueueError>>;

    /// How many items wait in every account's queue together.
    fn item_count(&self) -> BoxFuture<'static, Result<u64, QueueError>>;

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

    /// Whether other instances share this store: then an account's items go to whichever
    /// instance reads them, receivers are announced, and events wake other instances.
    fn is_shared(&self) -> bool {
        false
    }

    /// Tells the other instances which receivers this one holds, for a lease the caller renews.
    fn announce(&self, _present: Vec<Presence>) -> BoxFuture<'static, Result<(), QueueError>> {
        futures::future::ready(Ok(())).boxed()
    }

    /// This instance holds no receiver of `user` any more (nor of the SMSGate account
    /// `smsgate`, when given); another instance may take its unacknowledged items now.
    fn withdraw(
        &self,
        _user: &str,
        _smsgate: Option<&str>,
    ) -> BoxFuture<'static, Result<(), QueueError>> {
        futures::future::ready(Ok(())).boxed()
    }

    /// Whether another instance holds a receiver of the SMSGate account.
    fn receivers_elsewhere(&self, _smsgate: &str) -> BoxFuture<'static, Result<bool, QueueError>> {
        futures::future::ready(Ok(false)).boxed()
    }

    /// The SMPP users that bound as receivers of the SMSGate account on other instances within
    /// the TTL.
    fn known_users(
        &self,
        _smsgate: &str,
    ) -> BoxFuture<'static, Result<Vec<KnownUser>, QueueError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }

    /// The owner of a token another instance handed out since this one loaded the tokens.
    fn token_owner(
        &self,
        _token: &str,
    ) -> BoxFuture<'static, Result<Option<TokenOwner>, QueueError>> {
        futures::future::ready(Ok(None)).boxed()
    }

    /// Takes one of the `max` binds `user` may hold across all instances; `false` when they are
    /// all taken. A killed instance's binds stop counting when its lease ends.
    fn take_bind(&self, _user: &str, _max: u32) -> BoxFuture<'static, Result<bool, QueueError>> {
        futures::future::ready(Ok(true)).boxed()
    }

    /// Gives back a bind taken with [`take_bind`](Self::take_bind).
    fn release_bind(&self, _user: &str) -> BoxFuture<'static, Result<(), QueueError>> {
        futures::future::ready(Ok(())).boxed()
    }

    /// Counts one message of `user` against `per_second` across all instances (one-second
    /// windows); `false` when the second's allowance is used up.
    fn count_message(
        &self,
        _user: &str,
        _per_second: u32,
    ) -> BoxFuture<'static, Result<bool, QueueError>> {
        futures::future::ready(Ok(true)).boxed()
    }

    /// Accounts whose queue got items through another instance, once per push; `None` when
    /// no other instance can push. Taken once.
    fn wakes(&self) -> Option<BoxStream<'static, String>> {
        None
    }
}
