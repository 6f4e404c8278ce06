//! The delivery path: events the phone reports (receipts, incoming SMS) become deliver_sm for
//! the account's receiver sessions, held in a durable queue from the webhook's 2xx until an ESME
//! answers ESME_ROK.
//!
//! `Delivery` is the one object the rest of the server talks to: sessions announce receivers,
//! the submit pipeline records messages that want receipts, the webhook endpoint hands over
//! events. Behind it, one dispatcher task per account drains that account's queue.

mod compose;
mod dispatch;
pub use dispatch::refusal::is_receipt;
use webhook_events as event;
pub mod receivers;
pub mod registration;
mod tokens;

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};
use tracing::{info, warn};

use crate::auth::Account;
use crate::receipt::LongMessages;
use crate::shutdown::{Shutdown, TaskTracker};
use delivery_store::embedded::{Embedded, QueueOptions};
use delivery_store::shared::{Shared, SharedOptions};
use delivery_store::{
    AccountStats, DeadLetter, DeliveryStore, Presence, Push, QueueError, SentLogError, SentRecord,
};
use event::SignatureError;
use receivers::{Outgoing, Receivers};
use registration::Registrar;
use sms_text::DefaultAlphabet;
use smsgate_plugin_host::Plugins;
use tokens::Tokens;

/// Which part ids of a concatenated message get a receipt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartReceipts {
    /// One per part id the ESME got, as an SMSC that sent each part separately would.
    #[default]
    Each,
    /// Only for the last part's id, for ESMEs that track a long message by that id.
    Last,
}

/// Where the delivery path keeps its state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// redb files under `data_dir`: one instance, no service to run.
    #[default]
    Embedded,
    /// A Redis server at `redis_url`, shared by every instance of a deployment.
    Redis,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    pub store: StoreKind,
    /// redis://[:password@]host:port/db, for `store = "redis"`.
    pub redis_url: Option<String>,
    /// How long an instance keeps the events it took for its receivers when it stops renewing
    /// (killed, cut off from Redis); then another instance's receivers get them.
    #[serde(with = "humantime_serde")]
    pub redis_lease: Duration,
    /// Where the embedded store's queue, record of sent messages and webhook token secret live.
    pub data_dir: PathBuf,
    /// How long an undelivered event, and the record of a sent message, are kept.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Bounds of the queue; beyond them the webhook answers 503 and the phone retries later.
    pub max_items: usize,
    pub max_bytes: u64,
    /// deliver_sm awaiting deliver_sm_resp per receiver session.
    pub window: usize,
    /// Back-off after a failed attempt: doubles from `retry_initial` up to `retry_max`.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// How long a session that answered ESME_RTHROTTLED is left alone.
    #[serde(with = "humantime_serde")]
    pub throttle_pause: Duration,
    /// Refusals with a status no retry can change (`dispatch/refusal.rs`) after which a
    /// deliver_sm leaves the queue for the dead letters.
    pub dead_letter_after: u32,
    /// How long webhooks stay registered after an account's last receiver unbinds.
    #[serde(with = "humantime_serde")]
    pub webhook_grace: Duration,
    pub part_receipts: PartReceipts,
    /// How incoming texts longer than one SMS are sent: "udh" parts or one "payload".
    #[serde(with = "long_messages_text")]
    pub long_messages: LongMessages,
    /// destination_addr of an incoming SMS when the phone does not report its own number and
    /// `sim_numbers` has none for the SIM.
    pub mo_destination: Option<String>,
    /// The phone number of each SIM slot ("1", "2"), for incoming SMS whose event does not
    /// name the phone's own number.
    pub sim_numbers: BTreeMap<String, String>,
    /// The secret webhook tokens derive from. Instances of one deployment set the same, so
    /// they hand out the same webhook URLs; unset, each data directory makes its own.
    pub token_secret: Option<String>,
    /// Webhook signing key of every account without its own.
    pub signing_key: Option<String>,
    /// Signing keys by account name (the system_id, or the id an authenticate plugin gives).
    pub signing_keys: BTreeMap<String, String>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            store: StoreKind::Embedded,
            redis_url: None,
            redis_lease: Duration::from_secs(15),
            data_dir: PathBuf::from("./data"),
            ttl: Duration::from_secs(72 * 3600),
            max_items: 100_000,
            max_bytes: 256 << 20,
            window: 16,
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            throttle_pause: Duration::from_secs(1),
            dead_letter_after: 3,
            webhook_grace: Duration::from_secs(600),
            part_receipts: PartReceipts::Each,
            long_messages: LongMessages::Udh,
            mo_destination: None,
            sim_numbers: BTreeMap::new(),
            token_secret: None,
            signing_key: None,
            signing_keys: BTreeMap::new(),
        }
    }
}

impl DeliveryConfig {
    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                (1..=1024).contains(&self.window),
                "delivery.window",
                "must be between 1 and 1024",
            ),
            (
                self.max_items >= 1,
                "delivery.max_items",
                "must be at least 1",
            ),
            (
                self.max_bytes >= 1024,
                "delivery.max_bytes",
                "must be at least 1024",
            ),
            (
                !self.ttl.is_zero(),
                "delivery.ttl",
                "must be longer than 0s",
            ),
            (
                !self.retry_initial.is_zero(),
                "delivery.retry_initial",
                "must be longer than 0s",
            ),
            (
                self.retry_max >= self.retry_initial,
                "delivery.retry_max",
                "must not be shorter than delivery.retry_initial",
            ),
            (
                self.dead_letter_after >= 1,
                "delivery.dead_letter_after",
                "must be at least 1",
            ),
            (
                !self.data_dir.as_os_str().is_empty(),
                "delivery.data_dir",
                "must not be empty",
            ),
        ];
        for (ok, key, problem) in checks {
            if !ok {
                return Err(format!("{key}: {problem}"));
            }
        }
        let empty_key = self.signing_key.as_ref().is_some_and(|k| k.is_empty());
        if empty_key {
            return Err("delivery.signing_key: must not be empty when set".into());
        }
        if let Some((name, _)) = self.signing_keys.iter().find(|(_, k)| k.is_empty()) {
            return Err(format!("delivery.signing_keys.{name}: must not be empty"));
        }
        match (&self.store, &self.redis_url) {
            (StoreKind::Redis, None) => {
                return Err("delivery.redis_url: required when delivery.store is \"redis\"".into());
            }
            (StoreKind::Redis, Some(url)) if !url.starts_with("redis://") => {
                return Err(format!(
                    "delivery.redis_url: {} is not a redis:// URL",
                    delivery_store::shared::without_password(url)
                ));
            }
            _ => {}
        }
        if self.redis_lease < Duration::from_secs(1) {
            return Err("delivery.redis_lease: must be at least 1s".into());
        }
        if self.token_secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err("delivery.token_secret: must be at least 16 characters".into());
        }
        if let Some(number) = &self.mo_destination
            && !is_phone_number(number)
        {
            return Err(format!(
                "delivery.mo_destination: {number:?} is not a phone number (digits, an optional \
                 leading +, at most 20)"
            ));
        }
        for (slot, number) in &self.sim_numbers {
            if !slot.parse::<u8>().is_ok_and(|n| n >= 1) {
                return Err(format!(
                    "delivery.sim_numbers.{slot}: the key is a SIM slot number, 1 to 255"
                ));
            }
            if !is_phone_number(number) {
                return Err(format!(
                    "delivery.sim_numbers.{slot}: {number:?} is not a phone number (digits, an \
                     optional leading +, at most 20)"
                ));
            }
        }
        Ok(())
    }

    /// The number an incoming SMS went to when the event does not say: the SIM's own, else
    /// the configured default.
    pub fn own_number(&self, sim_number: Option<u8>) -> Option<&str> {
        sim_number
            .and_then(|slot| self.sim_numbers.get(&slot.to_string()))
            .or(self.mo_destination.as_ref())
            .map(String::as_str)
    }

    fn queue_options(&self) -> QueueOptions {
        QueueOptions {
            max_items: self.max_items,
            max_bytes: self.max_bytes,
            ttl: self.ttl,
        }
    }

    /// Opens the configured store; the error names the setting to fix.
    pub async fn open_store(&self) -> anyhow::Result<Arc<dyn DeliveryStore>> {
        Ok(match (&self.store, &self.redis_url) {
            (StoreKind::Redis, Some(url)) => {
                let options = SharedOptions {
                    queue: self.queue_options(),
                    lease: self.redis_lease,
                };
                let store = Shared::open(url, options)
                    .await
                    .map_err(|e| anyhow::anyhow!("delivery.redis_url: {e}"))?;
                info!(
                    redis = %delivery_store::shared::without_password(url),
                    instance = store.instance(),
                    "delivery state is shared on Redis"
                );
                Arc::new(store)
            }
            _ => Arc::new(
                Embedded::open(&self.data_dir, self.queue_options(), self.ttl)
                    .map_err(|e| anyhow::anyhow!("delivery.data_dir: {e}"))?,
            ),
        })
    }
}

/// What the other instances learn of a receiver of `account`.
fn presence(account: &Account) -> Presence {
    Presence {
        smsgate: account.smsgate_account(),
        user: account.name.clone(),
        sim_number: account.sim_number,
        device_id: account.device_id.clone(),
    }
}

/// Whether a token's owner is an SMPP user rather than an SMSGate account: tokens written
/// before registrations belonged to SMSGate accounts name the user. An SMSGate account always
/// starts with its gateway's URL (`Account::smsgate_account`).
fn owner_is_a_user(owner: &str) -> bool {
    !owner.contains("://")
}

/// What fits destination_addr (21 octets with its NUL) as a number an ESME can route on.
fn is_phone_number(text: &str) -> bool {
    let digits = text.strip_prefix('+').unwrap_or(text);
    (1..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

mod long_messages_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::receipt::LongMessages;

    pub fn serialize<S: Serializer>(value: &LongMessages, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match value {
            LongMessages::Udh => "udh",
            LongMessages::Payload => "payload",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LongMessages, D::Error> {
        match String::deserialize(d)?.as_str() {
            "udh" => Ok(LongMessages::Udh),
            "payload" => Ok(LongMessages::Payload),
            other => Err(serde::de::Error::custom(format!(
                "{other:?} is not \"udh\" or \"payload\""
            ))),
        }
    }
}

/// Why a webhook call was not taken; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("unknown webhook token")]
    UnknownToken,
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error(
        "this account's webhooks are signed and its signing key is not known until it binds again"
    )]
    KeyUnknown,
    #[error(
        "no SMPP user of this SMSGate account has bound as a receiver since the server started"
    )]
    NoUserYet,
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Queue(#[from] QueueError),
}

/// An SMPP user an incoming SMS of its SMSGate account may go to.
struct IncomingUser {
    name: String,
    /// Its last bound account, when it bound to this instance since the start.
    account: Option<Arc<Account>>,
    /// The SIM and device its account is limited to.
    sim_number: Option<u8>,
    device_id: Option<String>,
}

impl IncomingUser {
    /// Whether an SMS on `sim` of `device` is this user's when no route-incoming plugin
    /// decides: its account names that SIM and device, or neither.
    fn takes(&self, sim: Option<u8>, device: &str) -> bool {
        self.sim_number.is_none_or(|own| Some(own) == sim)
            && self.device_id.as_deref().is_none_or(|own| own == device)
    }
}

/// What became of an accepted webhook call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Stored for delivery as this many deliver_sm.
    Queued(usize),
    /// The same event arrived before.
    Duplicate,
    /// Nothing to send, and why (a plugin's reason is its own text).
    Ignored(Cow<'static, str>),
}

pub struct Delivery {
    config: DeliveryConfig,
    alphabet: DefaultAlphabet,
    store: Arc<dyn DeliveryStore>,
    receivers: Receivers,
    registrar: Registrar,
    tokens: Tokens,
    plugins: Arc<Plugins>,
    /// The last bound `Account` of each name, so plugins see the account on events that
    /// arrive while it has no session.
    accounts: Mutex<HashMap<String, Arc<Account>>>,
    /// The SMPP users (account names) that bound as receivers, by SMSGate account: who an
    /// incoming SMS may go to.
    users: Mutex<HashMap<String, BTreeSet<String>>>,
    /// The wake-up of each account's dispatcher task.
    dispatchers: Mutex<HashMap<String, Arc<Notify>>>,
    /// The session each queued receipt prefers and how many of its items are left, by
    /// (account, event id); kept in memory only, as sessions end with the process, and
    /// forgotten once the items are delivered or the session is gone.
    preferred: Mutex<HashMap<(String, String), (u64, usize)>>,
    mo_reference: AtomicU8,
    shutdown: Shutdown,
    tasks: TaskTracker,
}

impl Delivery {
    /// Opens the stores under `data_dir` and starts a dispatcher for every account that has
    /// items left from an earlier run.
    pub async fn open(
        config: &DeliveryConfig,
        webhook_base_url: Option<String>,
        alphabet: DefaultAlphabet,
        plugins: Arc<Plugins>,
        shutdown: Shutdown,
        tasks: TaskTracker,
    ) -> anyhow::Result<Arc<Delivery>> {
        let store = config.open_store().await?;
        let store_key = match config.store {
            StoreKind::Embedded => "delivery.data_dir",
            StoreKind::Redis => "delivery.redis_url",
        };
        let tokens = Tokens::load(store.as_ref(), config.token_secret.as_deref())
            .await
            .map_err(|e| anyhow::anyhow!("{store_key}: {e}"))?;
        if webhook_base_url.is_some()
            && config.mo_destination.is_none()
            && config.sim_numbers.is_empty()
        {
            warn!(
                "an incoming SMS whose event does not name the phone's number will have an \
                 empty destination_addr, which many ESMEs refuse: set delivery.mo_destination \
                 or delivery.sim_numbers"
            );
        }
        let registrar = Registrar::new(
            webhook_base_url,
            config.webhook_grace,
            shutdown.clone(),
            Arc::clone(&store),
        );
        let delivery = Arc::new(Delivery {
            config: config.clone(),
            alphabet,
            store,
            receivers: Receivers::default(),
            registrar,
            tokens,
            plugins,
            accounts: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            dispatchers: Mutex::new(HashMap::new()),
            preferred: Mutex::new(HashMap::new()),
            mo_reference: AtomicU8::new(rand::random()),
            shutdown,
            tasks,
        });
        let waiting = delivery.store.accounts_with_items().await?;
        for account in &waiting {
            delivery.wake(account);
        }
        if !waiting.is_empty() {
            info!(
                accounts = waiting.len(),
                "delivery queue has items from an earlier run"
            );
        }
        delivery.tasks.spawn(Arc::clone(&delivery).sweep());
        if delivery.store.is_shared() {
            delivery.tasks.spawn(Arc::clone(&delivery).keep_presence());
        }
        if let Some(wakes) = delivery.store.wakes() {
            delivery
                .tasks
                .spawn(Arc::clone(&delivery).follow_wakes(wakes));
        }
        Ok(delivery)
    }

    /// A bind_receiver or bind_transceiver succeeded: returns the deliver_sm the session must
    /// send. Its webhooks are registered on the account's first receiver.
    pub async fn receiver_bound(
        self: &Arc<Self>,
        account: &Arc<Account>,
        session: u64,
    ) -> mpsc::UnboundedReceiver<Outgoing> {
        let key = self.signing_key(account);
        // One token, and one set of registrations, per SMSGate account, whichever of its SMPP
        // users binds: the users' events all come from the same phones.
        let smsgate = account.smsgate_account();
        let token = self.tokens.token_for(&smsgate);
        if let Err(e) = self
            .tokens
            .remember(self.store.as_ref(), &token, &smsgate, key)
            .await
        {
            warn!(account = %account.name, error = %e, "cannot store the webhook token");
        }
        self.remember_account(account);
        let (outgoing, first) = self
            .receivers
            .add(&account.name, session, self.config.window);
        if first {
            self.registrar.receiver_bound(account, &token);
            if let Err(e) = self.store.announce(vec![presence(account)]).await {
                warn!(account = %account.name, error = %e, "cannot announce the receiver to the other instances");
            }
        }
        self.wake(&account.name);
        outgoing
    }

    pub fn receiver_unbound(&self, account: &Arc<Account>, session: u64) {
        if !self.receivers.remove(&account.name, session) {
            return;
        }
        self.registrar.receiver_unbound(account);
        if self.store.is_shared() {
            let smsgate = account.smsgate_account();
            let last_of_smsgate = !self.local_users().iter().any(|user| {
                self.account_view(user)
                    .is_some_and(|a| a.smsgate_account() == smsgate)
            });
            let withdrawn = self
                .store
                .withdraw(&account.name, last_of_smsgate.then_some(smsgate.as_str()));
            let name = account.name.clone();
            // Tracked, so a shutdown waits for it: the other instances take over at once.
            self.tasks.spawn(async move {
                if let Err(e) = withdrawn.await {
                    warn!(account = %name, error = %e, "cannot withdraw the receiver; the other instances take over when its lease ends");
                }
            });
        }
    }

    /// The session an item of `account` with `event_id` should go to, if one was preferred.
    fn preferred_session(&self, account: &str, event_id: &str) -> Option<u64> {
        let preferred = self.preferred.lock().expect("preferred lock");
        if preferred.is_empty() {
            return None;
        }
        preferred
            .get(&(account.to_owned(), event_id.to_owned()))
            .map(|(session, _)| *session)
    }

    /// An item left the queue (delivered, or set aside for good).
    fn item_done(&self, account: &str, event_id: &str) {
        let mut preferred = self.preferred.lock().expect("preferred lock");
        if preferred.is_empty() {
            return;
        }
        let key = (account.to_owned(), event_id.to_owned());
        if let Some((_, left)) = preferred.get_mut(&key) {
            *left -= 1;
            if *left == 0 {
                preferred.remove(&key);
            }
        }
    }

    /// SMPP users with a receiver session on this instance.
    fn local_users(&self) -> Vec<String> {
        self.receivers.accounts()
    }

    /// Whether this instance may read the account's queue: always on its own store; on a
    /// shared one only while it holds a receiver of the account, as reading takes the items.
    fn may_read(&self, account: &str) -> bool {
        !self.store.is_shared() || self.receivers.has(account)
    }

    /// Remembers a submitted message that asked for receipts. A receipt finds the record from
    /// this call on; the returned future resolves when it is on disk.
    pub fn record_submit(
        &self,
        message_id: &str,
        record: SentRecord,
    ) -> impl Future<Output = Result<(), SentLogError>> + use<> {
        self.store.record_sent(message_id, record)
    }

    /// Takes one webhook call: checks its token and signature, turns the event into the
    /// deliver_sm it means and stores them. `Ok` means the event is safe on disk (or needs
    /// nothing), so the phone may forget it.
    pub async fn take_webhook(
        self: &Arc<Self>,
        token: &str,
        timestamp: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<Taken, Refused> {
        let owner = self
            .tokens
            .owner_or_fetch(self.store.as_ref(), token)
            .await?
            .ok_or(Refused::UnknownToken)?;
        match self
            .tokens
            .key_of(&owner.account)
            .or_else(|| self.configured_key(&owner.account))
        {
            Some(key) => {
                let now = chrono::Utc::now().timestamp();
                event::verify_signature(key.as_bytes(), body, timestamp, signature, now)?;
            }
            None if owner.signed => return Err(Refused::KeyUnknown),
            None => {}
        }
        let event = event::parse(body).map_err(Refused::Malformed)?;
        let composed = match compose::compose(self, &owner.account, &event).await {
            Ok(composed) => composed,
            Err(compose::Skip::Ignored(why)) => return Ok(Taken::Ignored(why.into())),
            Err(compose::Skip::Dropped(why)) => return Ok(Taken::Ignored(why.into())),
            Err(compose::Skip::NoUserYet) => return Err(Refused::NoUserYet),
            Err(compose::Skip::Store(e)) => return Err(Refused::Queue(e)),
        };
        let mut queued = 0;
        for (user, composed) in composed {
            let count = composed.bodies.len();
            // Before the push: the dispatcher may send the items before it returns. A repeat
            // of an event still queued keeps the entry its first arrival made.
            let key = (user.clone(), composed.dedupe_id.clone());
            let entered = composed.prefer.is_some_and(|session| {
                let mut preferred = self.preferred.lock().expect("preferred lock");
                match preferred.entry(key.clone()) {
                    Entry::Vacant(entry) => {
                        entry.insert((session, count));
                        true
                    }
                    Entry::Occupied(_) => false,
                }
            });
            let pushed = self
                .store
                .push(&user, &composed.dedupe_id, composed.bodies)
                .await;
            if entered && !matches!(pushed, Ok(Push::Stored(_))) {
                self.preferred.lock().expect("preferred lock").remove(&key);
            }
            if let Push::Stored(_) = pushed? {
                self.wake(&user);
                queued += count;
            }
        }
        Ok(match queued {
            0 => Taken::Duplicate,
            n => Taken::Queued(n),
        })
    }

    /// Every SMPP user of `smsgate` the server knows, on a shared store also those bound to
    /// other instances, before any SIM or device matching ([`IncomingUser::takes`]): whom an
    /// incoming SMS may go to, and what route-incoming plugins choose from. `None` when no user
    /// is known yet.
    async fn incoming_candidates(
        &self,
        smsgate: &str,
    ) -> Result<Option<Vec<IncomingUser>>, QueueError> {
        if owner_is_a_user(smsgate) {
            // A token naming the user itself predates SIM and device matching: all it
            // receives is that user's.
            return Ok(Some(vec![IncomingUser {
                account: self.account_view(smsgate),
                name: smsgate.to_owned(),
                sim_number: None,
                device_id: None,
            }]));
        }
        let local = self
            .users
            .lock()
            .expect("users lock")
            .get(smsgate)
            .cloned()
            .unwrap_or_default();
        // (sim, device) each user is limited to.
        let mut limits: BTreeMap<String, (Option<u8>, Option<String>)> = local
            .into_iter()
            .map(|name| {
                let limit = self
                    .account_view(&name)
                    .map_or((None, None), |a| (a.sim_number, a.device_id.clone()));
                (name, limit)
            })
            .collect();
        if self.store.is_shared() {
            for user in self.store.known_users(smsgate).await? {
                limits
                    .entry(user.name)
                    .or_insert((user.sim_number, user.device_id));
            }
        }
        if limits.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            limits
                .into_iter()
                .map(|(name, (sim_number, device_id))| IncomingUser {
                    account: self.account_view(&name),
                    name,
                    sim_number,
                    device_id,
                })
                .collect(),
        ))
    }

    /// The store, when several instances share it.
    pub fn shared_store(&self) -> Option<Arc<dyn DeliveryStore>> {
        self.store.is_shared().then(|| Arc::clone(&self.store))
    }

    pub async fn stats(&self) -> Result<Vec<AccountStats>, QueueError> {
        self.store.stats().await
    }

    /// The account's dead letters, oldest first, at most `limit`.
    pub async fn dead_letters(
        &self,
        account: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        self.store.dead_letters(account, limit).await
    }

    /// Queues the account's dead letters again, each with `dead_letter_after` fresh tries, and
    /// wakes its dispatcher (on every instance, with a shared store).
    pub async fn retry_dead_letters(self: &Arc<Self>, account: &str) -> Result<usize, QueueError> {
        let moved = self.store.retry_dead_letters(account).await?;
        self.dead_letters_changed().await;
        if moved > 0 {
            self.wake(account);
        }
        Ok(moved)
    }

    pub async fn drop_dead_letters(&self, account: &str) -> Result<usize, QueueError> {
        let dropped = self.store.drop_dead_letters(account).await?;
        self.dead_letters_changed().await;
        Ok(dropped)
    }

    async fn dead_letters_changed(&self) {
        if let Ok(count) = self.store.dead_letter_count().await {
            crate::metrics::get().set_dead_letters(count);
        }
    }

    /// The key a plugin gave the account at bind time, else the configured one.
    fn signing_key(&self, account: &Account) -> Option<String> {
        account
            .webhook_signing_key
            .clone()
            .or_else(|| self.configured_key(&account.name))
    }

    fn configured_key(&self, account: &str) -> Option<String> {
        self.config
            .signing_keys
            .get(account)
            .or(self.config.signing_key.as_ref())
            .cloned()
    }

    fn remember_account(&self, account: &Arc<Account>) {
        self.users
            .lock()
            .expect("users lock")
            .entry(account.smsgate_account())
            .or_default()
            .insert(account.name.clone());
        let mut accounts = self.accounts.lock().expect("accounts lock");
        match accounts.get(&account.name) {
            Some(known) if Arc::ptr_eq(known, account) => {}
            _ => {
                accounts.insert(account.name.clone(), Arc::clone(account));
            }
        }
    }

    fn account_view(&self, name: &str) -> Option<Arc<Account>> {
        self.accounts
            .lock()
            .expect("accounts lock")
            .get(name)
            .cloned()
    }

    fn next_mo_reference(&self) -> u8 {
        self.mo_reference.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts the account's dispatcher, or wakes it when it runs.
    fn wake(self: &Arc<Self>, account: &str) {
        if !self.may_read(account) {
            return;
        }
        let mut dispatchers = self.dispatchers.lock().expect("dispatchers lock");
        if let Some(notify) = dispatchers.get(account) {
            notify.notify_one();
            return;
        }
        let notify = Arc::new(Notify::new());
        dispatchers.insert(account.to_owned(), Arc::clone(&notify));
        self.tasks
            .spawn(dispatch::run(Arc::clone(self), account.to_owned(), notify));
    }

    /// Called by a dispatcher that found its queue empty: it ends unless replaced meanwhile.
    async fn dispatcher_done(self: &Arc<Self>, account: &str, notify: &Arc<Notify>) -> bool {
        {
            let mut dispatchers = self.dispatchers.lock().expect("dispatchers lock");
            if !dispatchers
                .get(account)
                .is_some_and(|n| Arc::ptr_eq(n, notify))
            {
                return false;
            }
            dispatchers.remove(account);
        }
        // An event stored since the dispatcher's last read woke this dispatcher, which is
        // ending; one more read makes sure its items get a dispatcher of their own.
        if self.may_read(account) && !self.queue_is_empty(account).await {
            self.wake(account);
        }
        true
    }

    /// Renews this instance's liveness and its lease on its receivers in the shared store
    /// (the first tick at once), and wakes their dispatchers, which then take over what
    /// instances whose lease ended left behind.
    async fn keep_presence(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.redis_lease / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let users = self.local_users();
            let present: Vec<Presence> = users
                .iter()
                .filter_map(|user| self.account_view(user))
                .map(|account| presence(&account))
                .collect();
            // Also when empty: it renews this instance's liveness, which its binds count by.
            if let Err(e) = self.store.announce(present).await {
                warn!(error = %e, "cannot renew the receivers' lease in the shared store");
            }
            for user in &users {
                self.wake(user);
            }
        }
    }

    /// Wakes the dispatcher of each account another instance queued items for.
    async fn follow_wakes(self: Arc<Self>, mut wakes: BoxStream<'static, String>) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                woken = wakes.next() => match woken {
                    Some(account) => self.wake(&account),
                    None => return,
                },
            }
        }
    }

    /// Whether the account's queue is known to be empty (a failed read counts as not empty).
    async fn queue_is_empty(&self, account: &str) -> bool {
        self.store
            .peek(account, 1)
            .await
            .is_ok_and(|items| items.is_empty())
    }

    /// Drops what outlived the TTL, with a log line per item, and forgets old sent records.
    async fn sweep(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.preferred
                .lock()
                .expect("preferred lock")
                .retain(|(account, _), (session, _)| self.receivers.contains(account, *session));
            let now = SystemTime::now();
            let (expired, pruned) = (
                self.store.expire(now).await,
                self.store.prune_sent(now).await,
            );
            match expired {
                Ok(expired) => {
                    for item in expired.items {
                        warn!(
                            account = %item.account,
                            event = %item.event_id,
                            attempts = item.attempts,
                            ttl = ?self.config.ttl,
                            "undelivered deliver_sm expired and was dropped"
                        );
                    }
                    if expired.dead_letters > 0 {
                        info!(
                            count = expired.dead_letters,
                            ttl = ?self.config.ttl,
                            "dead letters expired and were dropped"
                        );
                    }
                }
                Err(e) => warn!(error = %e, "delivery queue expiry failed"),
            }
            if let Err(e) = pruned {
                warn!(error = %e, "pruning the sent-message record failed");
            }
            // The stores keep both counts, so this reads two numbers, not the queue.
            let metrics = crate::metrics::get();
            if let Ok(count) = self.store.item_count().await {
                metrics.set_queued(count);
            }
            if let Ok(count) = self.store.dead_letter_count().await {
                metrics.set_dead_letters(count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sims_number_comes_before_the_default_and_numbers_are_checked() {
        let mut config = DeliveryConfig {
            mo_destination: Some("+4930000000".into()),
            ..DeliveryConfig::default()
        };
        config.sim_numbers.insert("2".into(), "4930222222".into());
        assert_eq!(config.own_number(Some(2)), Some("4930222222"));
        assert_eq!(config.own_number(Some(1)), Some("+4930000000"));
        assert_eq!(config.own_number(None), Some("+4930000000"));
        assert!(config.validate().is_ok());

        config.sim_numbers.insert("0".into(), "123".into());
        let error = config.validate().unwrap_err();
        assert!(error.starts_with("delivery.sim_numbers.0:"), "{error}");
        config.sim_numbers.remove("0");
        config.sim_numbers.insert("1".into(), "office".into());
        let error = config.validate().unwrap_err();
        assert!(error.starts_with("delivery.sim_numbers.1:"), "{error}");
        config.sim_numbers.remove("1");
        config.mo_destination = Some(String::new());
        let error = config.validate().unwrap_err();
        assert!(error.starts_with("delivery.mo_destination:"), "{error}");
    }
}
