//! The shared backend, on Redis, for several instances of the server behind a load balancer.
//! Whichever instance a webhook reaches stores the event in the SMPP user's stream; the
//! instances holding receivers of that user read it through one consumer group, each entry
//! held by the instance that read it until its ESME answers ESME_ROK. An instance renews a
//! lease on the users it holds receivers of; entries held by an instance whose lease ended
//! (killed, or its receivers gone) are claimed by the next instance that reads. Every change
//! is one Lua script, so concurrent instances never see half of one.
//!
//! A single Redis server (or a replicated primary), not Redis Cluster: the scripts touch keys
//! of several users at once.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, FromRedisValue, Script, ToRedisArgs};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::warn;

use crate::embedded::queue::{QueueOptions, Refusals};
use crate::embedded::sent;
use crate::{
    AccountStats, DeadLetter, DeadLettered, DeliveryStore, Expired, Item, KnownUser, Presence,
    Push, QueueError, SentLogError, SentRecord, TOKEN_SECRET_LEN, TokenOwner,
};

/// Every key of the server starts with it, so one Redis database can hold other data too.
const PREFIX: &str = "smsgate-smpp:";
/// Bits of a stream entry id's sequence number in a `seq`: ids are `{ms}-{n}`, and Redis
/// numbers entries within one millisecond from 0, far below a million.
const SEQ_BITS: u32 = 20;
/// How long a command may take before it counts as failed (Redis is down or unreachable).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the claim of entries of ended leases runs per user, at most.
const CLAIM_EVERY: Duration = Duration::from_secs(1);

fn script(body: &str) -> Script {
    Script::new(&format!("{}\n{body}", include_str!("prelude.lua")))
}

static PUSH: LazyLock<Script> = LazyLock::new(|| script(include_str!("push.lua")));
static PEEK: LazyLock<Script> = LazyLock::new(|| script(include_str!("peek.lua")));
static ACK: LazyLock<Script> = LazyLock::new(|| script(include_str!("ack.lua")));
static FAILED: LazyLock<Script> = LazyLock::new(|| script(include_str!("failed.lua")));
static DEAD: LazyLock<Script> = LazyLock::new(|| script(include_str!("dead.lua")));
static DEAD_LIST: LazyLock<Script> = LazyLock::new(|| script(include_str!("dead_list.lua")));
static DEAD_RETRY: LazyLock<Script> = LazyLock::new(|| script(include_str!("dead_retry.lua")));
static DEAD_DROP: LazyLock<Script> = LazyLock::new(|| script(include_str!("dead_drop.lua")));
static EXPIRE: LazyLock<Script> = LazyLock::new(|| script(include_str!("expire.lua")));
static STATS: LazyLock<Script> = LazyLock::new(|| script(include_str!("stats.lua")));
static ANNOUNCE: LazyLock<Script> = LazyLock::new(|| script(include_str!("announce.lua")));
static WITHDRAW: LazyLock<Script> = LazyLock::new(|| script(include_str!("withdraw.lua")));
static BINDS: LazyLock<Script> = LazyLock::new(|| script(include_str!("binds.lua")));
static RATE: LazyLock<Script> = LazyLock::new(|| script(include_str!("rate.lua")));

/// Why the shared store cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0} is not a Redis URL: {1}")]
    Url(String, String),
    #[error("cannot reach Redis at {0}: {1}")]
    Unreachable(String, String),
}

/// Settings of the shared store besides the URL.
#[derive(Clone, Copy, Debug)]
pub struct SharedOptions {
    pub queue: QueueOptions,
    /// How long an instance's hold on its receivers' entries lasts unless renewed; the server
    /// renews it at a third of that.
    pub lease: Duration,
}

pub struct Shared {
    redis: ConnectionManager,
    /// This instance's consumer name: unique per process start, so a restarted instance's
    /// leftovers are claimed like any dead instance's.
    me: String,
    options: SharedOptions,
    secret: [u8; TOKEN_SECRET_LEN],
    /// Records written but maybe not yet on Redis: a receipt may race its record.
    unwritten: Arc<Mutex<HashMap<String, SentRecord>>>,
    /// When entries of ended leases were last claimed, per user.
    claimed_at: Mutex<HashMap<String, tokio::time::Instant>>,
    wakes: Mutex<Option<BoxStream<'static, String>>>,
}

impl Shared {
    /// Connects to `url` (redis://[:password@]host:port/db) and reads or creates the token
    /// secret. Errors show the URL without its password.
    pub async fn open(url: &str, options: SharedOptions) -> Result<Shared, OpenError> {
        let shown = without_password(url);
        let client =
            redis::Client::open(url).map_err(|e| OpenError::Url(shown.clone(), e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let unreachable = |e: String| OpenError::Unreachable(shown.clone(), e);
        let mut redis = tokio::time::timeout(
            COMMAND_TIMEOUT * 3,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| unreachable("no answer".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        let key = format!("{PREFIX}token-secret");
        let created: [u8; TOKEN_SECRET_LEN] = rand::random();
        let _: bool = redis
            .set_nx(&key, hex(&created))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let stored: String = redis
            .get(&key)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let secret = unhex(&stored).ok_or_else(|| {
            unreachable(format!("{key} holds no secret of {TOKEN_SECRET_LEN} bytes"))
        })?;
        let me = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        let wakes = Mutex::new(Some(subscribe(client.clone())));
        Ok(Shared {
            redis,
            me,
            options,
            secret,
            unwritten: Arc::default(),
            claimed_at: Mutex::new(HashMap::new()),
            wakes,
        })
    }

    /// This instance's name among the consumers, as Redis' XINFO shows it.
    pub fn instance(&self) -> &str {
        &self.me
    }

    fn conn(&self) -> ConnectionManager {
        self.redis.clone()
    }

    fn claim_due(&self, account: &str) -> bool {
        let now = tokio::time::Instant::now();
        let mut claimed = self.claimed_at.lock().expect("claimed lock");
        match claimed.get(account) {
            Some(at) if now.duration_since(*at) < CLAIM_EVERY => false,
            _ => {
                claimed.insert(account.to_owned(), now);
                true
            }
        }
    }
}

/// Forwards the `wake` channel's messages (users whose queue got items) until the receiver is
/// dropped, subscribing again after a lost connection.
fn subscribe(client: redis::Client) -> BoxStream<'static, String> {
    let (tx, rx) = mpsc::unbounded();
    tokio::spawn(async move {
        let channel = format!("{PREFIX}wake");
        while !tx.is_closed() {
            match client.get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if pubsub.subscribe(&channel).await.is_ok() {
                        // Entries pushed while unsubscribed are found by the next renewal.
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            if let Ok(account) = message.get_payload::<String>()
                                && tx.unbounded_send(account).is_err()
                            {
                                return;
                            }
                        }
                    }
                }
                Err(e) => warn!(error = %e, "cannot subscribe to the shared store's wake-ups"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    rx.boxed()
}

/// A script's ARGV, the key prefix first.
struct Args(Vec<Vec<u8>>);

impl Args {
    fn new() -> Self {
        Args(vec![PREFIX.as_bytes().to_vec()])
    }

    fn with(mut self, arg: impl ToRedisArgs) -> Self {
        self.0.extend(arg.to_redis_args());
        self
    }
}

async fn eval<T: FromRedisValue>(
    mut conn: ConnectionManager,
    script: &'static Script,
    args: Args,
) -> Result<T, redis::RedisError> {
    let mut invocation = script.prepare_invoke();
    for arg in &args.0 {
        invocation.arg(arg.as_slice());
    }
    invocation.invoke_async(&mut conn).await
}

fn shared_error(e: redis::RedisError) -> QueueError {
    QueueError::Shared(e.to_string())
}

fn sent_error(e: redis::RedisError) -> SentLogError {
    SentLogError::Shared(e.to_string())
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A stream entry id (`{ms}-{n}`) as the `seq` the server handles.
fn seq_of(id: &str) -> Option<u64> {
    let (ms, n) = id.split_once('-')?;
    let (ms, n): (u64, u64) = (ms.parse().ok()?, n.parse().ok()?);
    (n < 1 << SEQ_BITS).then_some((ms << SEQ_BITS) | n)
}

fn id_of(seq: u64) -> String {
    format!("{}-{}", seq >> SEQ_BITS, seq & ((1 << SEQ_BITS) - 1))
}

fn time_of(seq: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(seq >> SEQ_BITS)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; TOKEN_SECRET_LEN]> {
    if text.len() != TOKEN_SECRET_LEN * 2 {
        return None;
    }
    let mut out = [0; TOKEN_SECRET_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The URL as logs and errors may show it: a password is replaced by `***`.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn number<T: std::str::FromStr + Default>(bytes: &[u8]) -> T {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_default()
}

/// How a token's owner is kept in the `tokens` hash.
#[derive(Serialize, Deserialize)]
struct StoredOwner {
    account: String,
    signed: bool,
}

impl DeliveryStore for Shared {
    fn push(
        &self,
        account: &str,
        event_id: &str,
        payloads: Vec<Bytes>,
    ) -> BoxFuture<'static, Result<Push, QueueError>> {
        let conn = self.conn();
        let options = self.options.queue;
        let size: u64 = payloads.iter().map(|p| p.len() as u64).sum();
        let args = payloads.iter().fold(
            Args::new()
                .with(account)
                .with(event_id)
                .with(millis(options.ttl))
                .with(options.max_items)
                .with(options.max_bytes),
            |args, payload| args.with(payload.as_ref()),
        );
        async move {
            if size > options.max_bytes {
                return Err(QueueError::TooLarge {
                    size,
                    max: options.max_bytes,
                });
            }
            let answer: String = eval(conn, &PUSH, args).await.map_err(shared_error)?;
            match answer.as_str() {
                "duplicate" => Ok(Push::Duplicate),
                "full" => Err(QueueError::Full),
                id => seq_of(id)
                    .map(Push::Stored)
                    .ok_or_else(|| QueueError::Shared(format!("unexpected entry id {id:?}"))),
            }
        }
        .boxed()
    }

    fn peek(
        &self,
        account: &str,
        limit: usize,
    ) -> BoxFuture<'static, Result<Vec<Item>, QueueError>> {
        let conn = self.conn();
        let args = Args::new()
            .with(account)
            .with(&self.me)
            .with(limit.max(1))
            .with(if self.claim_due(account) { "1" } else { "0" })
            .with(unix_ms(SystemTime::now()));
        let account = account.to_owned();
        async move {
            let flat: Vec<Vec<u8>> = eval(conn, &PEEK, args).await.map_err(shared_error)?;
            Ok(flat
                .chunks_exact(4)
                .filter_map(|entry| {
                    let seq = seq_of(&text(&entry[0]))?;
                    Some(Item {
                        seq,
                        account: account.clone(),
                        event_id: text(&entry[1]),
                        payload: entry[2].clone(),
                        enqueued_at: time_of(seq),
                        attempts: number(&entry[3]),
                    })
                })
                .collect())
        }
        .boxed()
    }

    fn ack(&self, account: &str, seqs: Vec<u64>) -> BoxFuture<'static, Result<usize, QueueError>> {
        let args = seqs
            .into_iter()
            .fold(Args::new().with(account), |args, seq| args.with(id_of(seq)));
        eval(self.conn(), &ACK, args)
            .map(|r| r.map_err(shared_error))
            .boxed()
    }

    fn retry_later(
        &self,
        account: &str,
        seq: u64,
    ) -> BoxFuture<'static, Result<Option<u32>, QueueError>> {
        let counted = failed(self.conn(), account, seq, false);
        async move { Ok(counted.await?.map(|r| r.attempts)) }.boxed()
    }

    fn refused(
        &self,
        account: &str,
        seq: u64,
    ) -> BoxFuture<'static, Result<Option<Refusals>, QueueError>> {
        failed(self.conn(), account, seq, true)
    }

    fn dead_letter(
        &self,
        account: &str,
        seq: u64,
        status: u32,
        reason: &str,
    ) -> BoxFuture<'static, Result<Option<DeadLettered>, QueueError>> {
        let conn = self.conn();
        let args = Args::new()
            .with(account)
            .with(id_of(seq))
            .with(status)
            .with(reason)
            .with(self.options.queue.max_items);
        let account = account.to_owned();
        async move {
            let moved: Option<Vec<Vec<u8>>> =
                eval(conn, &DEAD, args).await.map_err(shared_error)?;
            Ok(moved.filter(|m| m.len() == 4).map(|m| DeadLettered {
                item: Item {
                    seq,
                    account,
                    event_id: text(&m[0]),
                    payload: m[1].clone(),
                    enqueued_at: time_of(seq),
                    attempts: number(&m[2]),
                },
                evicted: number(&m[3]),
            }))
        }
        .boxed()
    }

    fn dead_letters(
        &self,
        account: &str,
        limit: usize,
    ) -> BoxFuture<'static, Result<Vec<DeadLetter>, QueueError>> {
        // XRANGE refuses a COUNT beyond a signed 64-bit number.
        let args = Args::new().with(account).with(limit.min(i64::MAX as usize));
        let conn = self.conn();
        async move {
            let flat: Vec<Vec<u8>> = eval(conn, &DEAD_LIST, args).await.map_err(shared_error)?;
            Ok(flat
                .chunks_exact(6)
                .filter_map(|letter| {
                    let seq = seq_of(&text(&letter[0]))?;
                    Some(DeadLetter {
                        seq,
                        event_id: text(&letter[1]),
                        status: number(&letter[2]),
                        reason: text(&letter[3]),
                        // The entry id is the time Redis set it aside.
                        dead_lettered_at: time_of(seq),
                        attempts: number(&letter[4]),
                        payload_len: number(&letter[5]),
                    })
                })
                .collect())
        }
        .boxed()
    }

    fn retry_dead_letters(&self, account: &str) -> BoxFuture<'static, Result<usize, QueueError>> {
        let args = Args::new()
            .with(account)
            .with(self.options.queue.max_items)
            .with(self.options.queue.max_bytes);
        eval(self.conn(), &DEAD_RETRY, args)
            .map(|r| r.map_err(shared_error))
            .boxed()
    }

    fn drop_dead_letters(&self, account: &str) -> BoxFuture<'static, Result<usize, QueueError>> {
        eval(self.conn(), &DEAD_DROP, Args::new().with(account))
            .map(|r| r.map_err(shared_error))
            .boxed()
    }

    fn dead_letter_count(&self) -> BoxFuture<'static, Result<u64, QueueError>> {
        let stats = self.stats();
        async move { Ok(stats.await?.iter().map(|s| s.dead_letters as u64).sum()) }.boxed()
    }

    fn item_count(&self) -> BoxFuture<'static, Result<u64, QueueError>> {
        let mut conn = self.conn();
        async move {
            let items: Option<u64> = conn
                .hget(format!("{PREFIX}size"), "items")
                .await
                .map_err(shared_error)?;
            Ok(items.unwrap_or(0))
        }
        .boxed()
    }

    fn accounts_with_items(&self) -> BoxFuture<'static, Result<Vec<String>, QueueError>> {
        let stats = self.stats();
        async move {
            Ok(stats
                .await?
                .into_iter()
                .filter(|s| s.items > 0)
                .map(|s| s.account)
                .collect())
        }
        .boxed()
    }

    fn expire(&self, now: SystemTime) -> BoxFuture<'static, Result<Expired, QueueError>> {
        let conn = self.conn();
        let cutoff = unix_ms(now).saturating_sub(millis(self.options.queue.ttl));
        async move {
            let flat: Vec<Vec<u8>> = eval(conn, &EXPIRE, Args::new().with(cutoff))
                .await
                .map_err(shared_error)?;
            let Some((dead, entries)) = flat.split_first() else {
                return Ok(Expired::default());
            };
            Ok(Expired {
                dead_letters: number(dead),
                items: entries
                    .chunks_exact(4)
                    .filter_map(|e| {
                        let seq = seq_of(&text(&e[1]))?;
                        Some(Item {
                            seq,
                            account: text(&e[0]),
                            event_id: text(&e[2]),
                            payload: Vec::new(),
                            enqueued_at: time_of(seq),
                            attempts: number(&e[3]),
                        })
                    })
                    .collect(),
            })
        }
        .boxed()
    }

    fn stats(&self) -> BoxFuture<'static, Result<Vec<AccountStats>, QueueError>> {
        let conn = self.conn();
        async move {
            let flat: Vec<Vec<u8>> = eval(conn, &STATS, Args::new())
                .await
                .map_err(shared_error)?;
            let now = SystemTime::now();
            let mut stats: Vec<AccountStats> = flat
                .chunks_exact(5)
                .map(|s| AccountStats {
                    account: text(&s[0]),
                    items: number(&s[1]),
                    oldest: seq_of(&text(&s[2]))
                        .and_then(|seq| now.duration_since(time_of(seq)).ok())
                        .unwrap_or_default(),
                    bytes: number(&s[3]),
                    dead_letters: number(&s[4]),
                })
                .collect();
            stats.sort_by(|a, b| a.account.cmp(&b.account));
            Ok(stats)
        }
        .boxed()
    }

    fn token_secret(&self) -> [u8; TOKEN_SECRET_LEN] {
        self.secret
    }

    fn remember_token(&self, owner: TokenOwner) -> BoxFuture<'static, Result<(), QueueError>> {
        let mut conn = self.conn();
        async move {
            let stored = serde_json::to_string(&StoredOwner {
                account: owner.account,
                signed: owner.signed,
            })
            .map_err(|e| QueueError::Shared(e.to_string()))?;
            conn.hset::<_, _, _, ()>(format!("{PREFIX}tokens"), owner.token, stored)
                .await
                .map_err(shared_error)
        }
        .boxed()
    }

    fn tokens(&self) -> BoxFuture<'static, Result<Vec<TokenOwner>, QueueError>> {
        let mut conn = self.conn();
        async move {
            let all: HashMap<String, String> = conn
                .hgetall(format!("{PREFIX}tokens"))
                .await
                .map_err(shared_error)?;
            Ok(all
                .into_iter()
                .filter_map(|(token, stored)| owner_of(token, &stored))
                .collect())
        }
        .boxed()
    }

    fn token_owner(
        &self,
        token: &str,
    ) -> BoxFuture<'static, Result<Option<TokenOwner>, QueueError>> {
        let mut conn = self.conn();
        let token = token.to_owned();
        async move {
            let stored: Option<String> = conn
                .hget(format!("{PREFIX}tokens"), &token)
                .await
                .map_err(shared_error)?;
            Ok(stored.and_then(|stored| owner_of(token, &stored)))
        }
        .boxed()
    }

    fn record_sent(
        &self,
        message_id: &str,
        record: SentRecord,
    ) -> BoxFuture<'static, Result<(), SentLogError>> {
        let encoded = match sent::encode(message_id, &record) {
            Ok(encoded) => encoded,
            Err(e) => return futures::future::ready(Err(e)).boxed(),
        };
        self.unwritten
            .lock()
            .expect("unwritten lock")
            .insert(message_id.to_owned(), record);
        // Written by a task of its own, so the record lands even if the caller stops waiting.
        let (done, written) = oneshot::channel();
        let (mut conn, unwritten) = (self.conn(), Arc::clone(&self.unwritten));
        let (key, id) = (format!("{PREFIX}sent:{message_id}"), message_id.to_owned());
        let ttl = millis(self.options.queue.ttl);
        tokio::spawn(async move {
            let result = redis::cmd("SET")
                .arg(&key)
                .arg(encoded)
                .arg("PX")
                .arg(ttl)
                .query_async::<()>(&mut conn)
                .await
                .map_err(sent_error);
            unwritten.lock().expect("unwritten lock").remove(&id);
            let _ = done.send(result);
        });
        async move { written.await.unwrap_or(Err(SentLogError::Closed)) }.boxed()
    }

    fn sent(
        &self,
        message_id: &str,
    ) -> BoxFuture<'static, Result<Option<SentRecord>, SentLogError>> {
        if let Some(record) = self
            .unwritten
            .lock()
            .expect("unwritten lock")
            .get(message_id)
        {
            return futures::future::ready(Ok(Some(record.clone()))).boxed();
        }
        let mut conn = self.conn();
        let id = message_id.to_owned();
        async move {
            let stored: Option<Vec<u8>> = conn
                .get(format!("{PREFIX}sent:{id}"))
                .await
                .map_err(sent_error)?;
            stored.map(|s| sent::decode(&id, &s)).transpose()
        }
        .boxed()
    }

    /// Redis drops each record at the end of its TTL by itself.
    fn prune_sent(&self, _now: SystemTime) -> BoxFuture<'static, Result<usize, SentLogError>> {
        futures::future::ready(Ok(0)).boxed()
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn announce(&self, present: Vec<Presence>) -> BoxFuture<'static, Result<(), QueueError>> {
        let now = unix_ms(SystemTime::now());
        let args = Args::new()
            .with(&self.me)
            .with(now + millis(self.options.lease))
            .with(now)
            .with(millis(self.options.queue.ttl));
        let args = present.into_iter().fold(args, |args, p| {
            args.with(p.smsgate)
                .with(p.user)
                .with(p.sim_number.map(|n| n.to_string()).unwrap_or_default())
                .with(p.device_id.unwrap_or_default())
        });
        eval::<()>(self.conn(), &ANNOUNCE, args)
            .map(|r| r.map_err(shared_error))
            .boxed()
    }

    fn withdraw(
        &self,
        user: &str,
        smsgate: Option<&str>,
    ) -> BoxFuture<'static, Result<(), QueueError>> {
        let args = Args::new()
            .with(&self.me)
            .with(user)
            .with(smsgate.unwrap_or(""));
        eval::<()>(self.conn(), &WITHDRAW, args)
            .map(|r| r.map_err(shared_error))
            .boxed()
    }

    fn receivers_elsewhere(&self, smsgate: &str) -> BoxFuture<'static, Result<bool, QueueError>> {
        let mut conn = self.conn();
        let (key, me) = (format!("{PREFIX}here:{smsgate}"), self.me.clone());
        async move {
            let leases: HashMap<String, u64> = conn.hgetall(key).await.map_err(shared_error)?;
            let now = unix_ms(SystemTime::now());
            Ok(leases
                .iter()
                .any(|(instance, until)| *instance != me && *until >= now))
        }
        .boxed()
    }

    fn known_users(&self, smsgate: &str) -> BoxFuture<'static, Result<Vec<KnownUser>, QueueError>> {
        let mut conn = self.conn();
        let key = format!("{PREFIX}users:{smsgate}");
        let since = unix_ms(SystemTime::now()).saturating_sub(millis(self.options.queue.ttl));
        async move {
            let users: HashMap<String, String> = conn.hgetall(key).await.map_err(shared_error)?;
            let mut known: Vec<KnownUser> = users
                .into_iter()
                .filter_map(|(name, value)| {
                    let mut parts = value.splitn(3, '|');
                    let (sim, seen, device) = (parts.next()?, parts.next()?, parts.next()?);
                    (seen.parse::<u64>().ok()? >= since).then(|| KnownUser {
                        name,
                        sim_number: sim.parse().ok(),
                        device_id: (!device.is_empty()).then(|| device.to_owned()),
                    })
                })
                .collect();
            known.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(known)
        }
        .boxed()
    }

    fn take_bind(&self, user: &str, max: u32) -> BoxFuture<'static, Result<bool, QueueError>> {
        let args = Args::new().with(user).with(&self.me).with(max).with("take");
        eval::<bool>(self.conn(), &BINDS, args)
            .map(|r| r.map_err(shared_error))
            .boxed()
    }

    fn release_bind(&self, user: &str) -> BoxFuture<'static, Result<(), QueueError>> {
        let args = Args::new()
            .with(user)
            .with(&self.me)
            .with(0)
            .with("release");
        eval::<()>(self.conn(), &BINDS, args)
            .map(|r| r.map_err(shared_error))
            .boxed()
    }

    fn count_message(
        &self,
        user: &str,
        per_second: u32,
    ) -> BoxFuture<'static, Result<bool, QueueError>> {
        let second = unix_ms(SystemTime::now()) / 1000;
        let args = Args::new().with(user).with(second).with(per_second);
        eval::<bool>(self.conn(), &RATE, args)
            .map(|r| r.map_err(shared_error))
            .boxed()
    }

    fn wakes(&self) -> Option<BoxStream<'static, String>> {
        self.wakes.lock().expect("wakes lock").take()
    }
}

fn failed(
    conn: ConnectionManager,
    account: &str,
    seq: u64,
    permanent: bool,
) -> BoxFuture<'static, Result<Option<Refusals>, QueueError>> {
    let args = Args::new()
        .with(account)
        .with(id_of(seq))
        .with(if permanent { "1" } else { "0" });
    async move {
        let counts: Option<(u32, u32)> = eval(conn, &FAILED, args).await.map_err(shared_error)?;
        Ok(counts.map(|(attempts, permanent)| Refusals {
            attempts,
            permanent,
        }))
    }
    .boxed()
}

fn owner_of(token: String, stored: &str) -> Option<TokenOwner> {
    let StoredOwner { account, signed } = serde_json::from_str(stored).ok()?;
    Some(TokenOwner {
        token,
        account,
        signed,
    })
}

#[cfg(test)]
mod tests;
