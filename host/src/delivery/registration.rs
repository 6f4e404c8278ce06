//! Keeps an account's webhook registrations on the gateway in step with its receivers: the
//! phone only calls this server for events it has a registration for, so they must exist while
//! an ESME can take deliver_sm, and should go away when none has for a while. Registrations
//! outlive a restart on purpose: the phone's retries then cover the downtime.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use crate::auth::Account;
use crate::gateway::{GatewayError, Webhook};
use crate::shutdown::Shutdown;
use delivery_store::DeliveryStore;

/// The events a receiver needs, one registration each.
pub const EVENTS: [&str; 5] = [
    "sms:received",
    "sms:data-received",
    "sms:sent",
    "sms:delivered",
    "sms:failed",
];

/// Where the phone posts to, below the configured base URL.
const PATH: &str = "/api/smpp/v1/webhooks/";

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A failing grace-period deletion gives up after this many attempts (about four minutes): the
/// leftovers are harmless, and the next bind of the account reuses or cleans them.
const DELETE_ATTEMPTS: u32 = 10;

/// One process, one configuration: repeating the warning on every bind would only add noise.
static NO_BASE_URL_WARNED: AtomicBool = AtomicBool::new(false);

#[derive(Clone)]
pub struct Registrar {
    inner: Arc<Inner>,
}

struct Inner {
    /// Without its trailing '/'.
    base_url: Option<String>,
    grace: Duration,
    shutdown: Shutdown,
    accounts: Mutex<HashMap<String, State>>,
    /// Asked before deleting: another instance may still hold receivers of the account.
    store: Arc<dyn DeliveryStore>,
}

/// Per SMSGate account (`Account::smsgate_account`): its SMPP users share the registrations.
struct State {
    receivers: usize,
    /// Changes whenever the work wanted for the account changes (first receiver bound, last
    /// one gone, another token); a task whose generation is no longer current stops. Drawn from
    /// one counter for all accounts so a forgotten and re-created state never repeats one.
    generation: u64,
    token: String,
    /// Whether the registrations of the current generation are known to be in place.
    registered: bool,
    /// Serialises the gateway work of one account, so a registration round and a deletion never
    /// interleave their list and change calls.
    ops: Arc<tokio::sync::Mutex<()>>,
}

/// What went wrong in one round; `event` is the registration concerned, if any.
struct Failure {
    event: Option<String>,
    error: GatewayError,
}

impl Registrar {
    /// `base_url`: the configured public base URL of this server's webhook endpoint
    /// (gateway.webhook_base_url), None = no webhooks possible. `grace`: how long registrations
    /// stay after the last receiver of an account unbinds.
    pub fn new(
        base_url: Option<String>,
        grace: Duration,
        shutdown: Shutdown,
        store: Arc<dyn DeliveryStore>,
    ) -> Self {
        let base_url = base_url
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty());
        Registrar {
            inner: Arc::new(Inner {
                base_url,
                grace,
                shutdown,
                accounts: Mutex::new(HashMap::new()),
                store,
            }),
        }
    }

    /// The id this server registers `event` under for `token`: stable, so a registration is
    /// replaced rather than duplicated, and derived from a hash so neither the gateway's ids
    /// nor logs that show them reveal any part of the token.
    pub fn registration_id(token: &str, event: &str) -> String {
        let digest = Sha256::digest(token.as_bytes());
        let event = event.strip_prefix("sms:").unwrap_or(event);
        format!("smpp-{}-{event}", hex::encode(&digest[..8]))
    }

    /// Whether the account's registrations are known to be in place for its current receivers.
    #[cfg(test)]
    pub fn is_registered(&self, account: &Account) -> bool {
        self.inner
            .accounts()
            .get(&account.smsgate_account())
            .is_some_and(|state| state.registered)
    }

    /// A receiver (bind_receiver / bind_transceiver) of `account` bound. The account's first
    /// receiver (which also cancels a pending grace-period deletion) or a changed token starts
    /// a background round: leftovers under this server's webhook path are deleted and missing
    /// registrations of [`EVENTS`] are added, retried with back-off while the account has
    /// receivers. Never blocks and never fails: the bind goes on whatever the gateway says.
    pub fn receiver_bound(&self, account: &Arc<Account>, token: &str) {
        if self.inner.base_url.is_none() {
            if !NO_BASE_URL_WARNED.swap(true, Ordering::Relaxed) {
                warn!(
                    "gateway.webhook_base_url is not set: receipts and incoming SMS cannot arrive"
                );
            }
            return;
        }
        let (generation, ops) = {
            let mut accounts = self.inner.accounts();
            let state = accounts
                .entry(account.smsgate_account())
                .or_insert_with(|| State {
                    receivers: 0,
                    generation: 0,
                    token: String::new(),
                    registered: false,
                    ops: Arc::default(),
                });
            state.receivers += 1;
            if state.receivers > 1 && state.token == token {
                return;
            }
            state.generation = next_generation();
            state.token = token.to_owned();
            state.registered = false;
            (state.generation, Arc::clone(&state.ops))
        };
        let inner = Arc::clone(&self.inner);
        let account = Arc::clone(account);
        let token = token.to_owned();
        self.inner
            .spawn(async move { inner.keep_registered(account, token, generation, ops).await });
    }

    /// A receiver of the account unbound/closed. When it was the account's last receiver:
    /// after `grace`, if no receiver has bound since, the account's registrations are deleted.
    /// Not at shutdown: a restarted server reuses them.
    pub fn receiver_unbound(&self, account: &Arc<Account>) {
        if self.inner.base_url.is_none() {
            return;
        }
        let (generation, ops, token) = {
            let mut accounts = self.inner.accounts();
            let Some(state) = accounts.get_mut(&account.smsgate_account()) else {
                debug!(account = %account.name, "unbind of an account without receivers");
                return;
            };
            if state.receivers == 0 {
                debug!(account = %account.name, "unbind of an account without receivers");
                return;
            }
            state.receivers -= 1;
            if state.receivers > 0 {
                return;
            }
            // Also stops a registration round still retrying.
            state.generation = next_generation();
            state.registered = false;
            if self.inner.shutdown.is_cancelled() {
                return;
            }
            (
                state.generation,
                Arc::clone(&state.ops),
                state.token.clone(),
            )
        };
        let inner = Arc::clone(&self.inner);
        let account = Arc::clone(account);
        self.inner.spawn(async move {
            tokio::time::sleep(inner.grace).await;
            inner.unregister(account, token, generation, ops).await;
        });
    }
}

fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Inner {
    /// Nothing awaits under this lock and every update leaves the map consistent, so a
    /// poisoned lock is used as is.
    fn accounts(&self) -> MutexGuard<'_, HashMap<String, State>> {
        self.accounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn url_for(&self, token: &str) -> Option<String> {
        let base = self.base_url.as_ref()?;
        Some(format!("{base}{PATH}{token}"))
    }

    fn prefix(&self) -> Option<String> {
        Some(format!("{}{PATH}", self.base_url.as_ref()?))
    }

    fn is_current(&self, account: &str, generation: u64) -> bool {
        self.accounts()
            .get(account)
            .is_some_and(|state| state.generation == generation)
    }

    /// Registration rounds and deletions must not outlive the server; one cut short at
    /// shutdown leaves registrations the next start reuses or cleans.
    fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = work => {}
            }
        });
    }

    async fn keep_registered(
        &self,
        account: Arc<Account>,
        token: String,
        generation: u64,
        ops: Arc<tokio::sync::Mutex<()>>,
    ) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            {
                let _serial = ops.lock().await;
                if !self.is_current(&account.smsgate_account(), generation) {
                    return;
                }
                let failures = self.register_round(&account, &token).await;
                if failures.is_empty() {
                    if let Some(state) = self.accounts().get_mut(&account.smsgate_account())
                        && state.generation == generation
                    {
                        state.registered = true;
                    }
                    debug!(account = %account.name, "webhook registrations in place");
                    return;
                }
                for failure in failures {
                    self.log_failure(&account, &token, &failure, "registering", backoff);
                }
            }
            // Outside the lock, so a deletion that makes this round obsolete is not held up.
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One pass over the account's registrations; every step is attempted even after one fails,
    /// so a single stubborn registration does not hold back the others.
    async fn register_round(&self, account: &Account, token: &str) -> Vec<Failure> {
        let (Some(url), Some(prefix)) = (self.url_for(token), self.prefix()) else {
            return Vec::new();
        };
        let existing = match account.gateway.list_webhooks(&account.credentials).await {
            Ok(list) => list,
            Err(error) => return vec![Failure { event: None, error }],
        };
        // Per wanted event, the one registration kept: ours by id first, else any other with the
        // current URL (the phone would call twice for the same event if both stayed).
        let mut kept: HashMap<&str, &str> = HashMap::new();
        let current = |w: &Webhook| w.url == url && w.device_id.is_none();
        for w in existing.iter().filter(|w| current(w)) {
            if let (Some(id), Some(event)) = (&w.id, EVENTS.iter().find(|e| **e == w.event))
                && *id == Registrar::registration_id(token, event)
            {
                kept.insert(event, id);
            }
        }
        for w in existing.iter().filter(|w| current(w)) {
            if let (Some(id), Some(event)) = (&w.id, EVENTS.iter().find(|e| **e == w.event)) {
                kept.entry(event).or_insert(id);
            }
        }
        let kept_ids: HashSet<&str> = kept.values().copied().collect();

        let mut failures = Vec::new();
        let mut posted = HashSet::new();
        for event in EVENTS.iter().filter(|event| !kept.contains_key(*event)) {
            let id = Registrar::registration_id(token, event);
            let webhook = Webhook {
                id: Some(id.clone()),
                device_id: None,
                url: url.clone(),
                event: (*event).to_owned(),
            };
            // Attempted ones too: a registration that may have replaced an old one of its id
            // must not be deleted as that old one below.
            posted.insert(id);
            match account
                .gateway
                .register_webhook(&account.credentials, &webhook)
                .await
            {
                Ok(_) => info!(account = %account.name, event, "webhook registered"),
                Err(error) => failures.push(Failure {
                    event: Some((*event).to_owned()),
                    error,
                }),
            }
        }
        // After registering, so a changed token never leaves a moment without registrations.
        let leftovers = existing.iter().filter(|w| {
            w.url.starts_with(&prefix)
                && w.id
                    .as_ref()
                    .is_some_and(|id| !kept_ids.contains(id.as_str()) && !posted.contains(id))
        });
        delete(
            account,
            leftovers,
            "leftover webhook registration deleted",
            &mut failures,
        )
        .await;
        failures
    }

    async fn unregister(
        &self,
        account: Arc<Account>,
        token: String,
        generation: u64,
        ops: Arc<tokio::sync::Mutex<()>>,
    ) {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=DELETE_ATTEMPTS {
            {
                let _serial = ops.lock().await;
                if !self.is_current(&account.smsgate_account(), generation)
                    || self.shutdown.is_cancelled()
                {
                    return;
                }
                let smsgate = account.smsgate_account();
                let elsewhere = self.store.receivers_elsewhere(&smsgate).await;
                if !matches!(elsewhere, Ok(false)) {
                    match elsewhere {
                        Err(e) => {
                            warn!(account = %account.name, error = %e, "cannot tell whether another instance has receivers; webhook registrations kept")
                        }
                        _ => {
                            info!(account = %account.name, "another instance has receivers; webhook registrations kept")
                        }
                    }
                    self.forget(&smsgate, generation);
                    return;
                }
                let failures = self.unregister_round(&account, &token).await;
                if failures.is_empty() {
                    self.forget(&smsgate, generation);
                    return;
                }
                if attempt == DELETE_ATTEMPTS {
                    warn!(
                        account = %account.name,
                        "giving up deleting webhook registrations; the next bind reuses them"
                    );
                    return;
                }
                for failure in failures {
                    self.log_failure(&account, &token, &failure, "deleting", backoff);
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Forgets the account's state, unless something bound meanwhile: it is needed then.
    fn forget(&self, smsgate: &str, generation: u64) {
        let mut accounts = self.accounts();
        if accounts
            .get(smsgate)
            .is_some_and(|state| state.generation == generation)
        {
            accounts.remove(smsgate);
        }
    }

    async fn unregister_round(&self, account: &Account, token: &str) -> Vec<Failure> {
        let Some(url) = self.url_for(token) else {
            return Vec::new();
        };
        let existing = match account.gateway.list_webhooks(&account.credentials).await {
            Ok(list) => list,
            Err(error) => return vec![Failure { event: None, error }],
        };
        let mut failures = Vec::new();
        let current = existing.iter().filter(|w| w.url == url);
        delete(
            account,
            current,
            "webhook registration deleted, no receiver left",
            &mut failures,
        )
        .await;
        failures
    }

    /// The token is the secret in the webhook URL; a gateway error that quotes the URL must
    /// not carry it into the log.
    fn log_failure(
        &self,
        account: &Account,
        token: &str,
        failure: &Failure,
        doing: &str,
        retry_in: Duration,
    ) {
        let mut error = failure.error.to_string();
        if !token.is_empty() {
            error = error.replace(token, "<token>");
        }
        let retry_in = humantime::format_duration(retry_in).to_string();
        match &failure.event {
            Some(event) => warn!(
                account = %account.name, event = %event, error = %error, retry_in,
                "{doing} webhook registration failed"
            ),
            None => warn!(
                account = %account.name, error = %error, retry_in,
                "listing webhook registrations failed"
            ),
        }
    }
}

/// Deletes `webhooks` (those with an id), logging each deletion with `done` and collecting the
/// failures for the caller's retry.
async fn delete<'a>(
    account: &Account,
    webhooks: impl Iterator<Item = &'a Webhook>,
    done: &str,
    failures: &mut Vec<Failure>,
) {
    for w in webhooks {
        let Some(id) = &w.id else { continue };
        match account
            .gateway
            .delete_webhook(&account.credentials, id)
            .await
        {
            Ok(()) => info!(account = %account.name, event = %w.event, "{done}"),
            Err(error) => failures.push(Failure {
                event: Some(w.event.clone()),
                error,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::Value;

    use super::*;
    use crate::gateway::{Credentials, Gateway};
    use smsgate_simulator::{Simulator, SimulatorConfig};

    const BASE: &str = "http://127.0.0.1:9/hooks";
    const TOKEN: &str = "tok-0123456789abcdef0123456789";
    const GRACE: Duration = Duration::from_millis(200);
    const DEADLINE: Duration = Duration::from_secs(10);

    struct Sim {
        root: String,
        http: reqwest::Client,
        account: Arc<Account>,
    }

    impl Sim {
        async fn start() -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let simulator = Simulator::new(SimulatorConfig::default());
            tokio::spawn(simulator.serve(listener, std::future::pending()));
            let root = format!("http://{addr}");
            let gateway =
                Gateway::new(&format!("{root}/3rdparty/v1"), Duration::from_secs(5), 0).unwrap();
            let credentials = Credentials::Basic {
                username: "demo".into(),
                password: "demo1234".into(),
            };
            Sim {
                root,
                http: reqwest::Client::new(),
                account: Arc::new(Account::new("demo", credentials, gateway)),
            }
        }

        /// What the gateway holds, straight from `GET /webhooks`: (url, event, id) sorted.
        async fn webhooks(&self) -> Vec<(String, String, String)> {
            let list: Vec<Value> = self
                .http
                .get(format!("{}/3rdparty/v1/webhooks", self.root))
                .basic_auth("demo", Some("demo1234"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let mut hooks: Vec<_> = list
                .iter()
                .map(|w| {
                    assert!(w["deviceId"].is_null(), "{w}");
                    let text = |key: &str| w[key].as_str().unwrap().to_owned();
                    (text("url"), text("event"), text("id"))
                })
                .collect();
            hooks.sort();
            hooks
        }

        async fn add(&self, url: &str, event: &str) {
            let status = self
                .http
                .post(format!("{}/3rdparty/v1/webhooks", self.root))
                .basic_auth("demo", Some("demo1234"))
                .json(&serde_json::json!({ "deviceId": null, "url": url, "event": event }))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, reqwest::StatusCode::CREATED);
        }

        /// Counts per "METHOD /path STATUS" of the gateway API.
        async fn requests(&self, key: &str) -> u64 {
            let counts: Value = self
                .http
                .get(format!("{}/simulator/v1/requests", self.root))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            counts[key].as_u64().unwrap_or(0)
        }

        async fn wait_for_webhooks(&self, wanted: &[(String, String, String)]) {
            let started = Instant::now();
            loop {
                let now = self.webhooks().await;
                if now == wanted {
                    return;
                }
                assert!(
                    started.elapsed() < DEADLINE,
                    "registrations {now:#?}, wanted {wanted:#?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < DEADLINE, "timed out waiting: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn expected(token: &str) -> Vec<(String, String, String)> {
        let mut hooks: Vec<_> = EVENTS
            .iter()
            .map(|event| {
                (
                    format!("{BASE}/api/smpp/v1/webhooks/{token}"),
                    (*event).to_owned(),
                    Registrar::registration_id(token, event),
                )
            })
            .collect();
        hooks.sort();
        hooks
    }

    /// A registrar of a single instance; the directory holds its store.
    fn new_registrar(base: Option<&str>) -> (Registrar, Shutdown, tempfile::TempDir) {
        let shutdown = Shutdown::new();
        let dir = tempfile::TempDir::new().unwrap();
        let store = delivery_store::embedded::Embedded::open(
            dir.path(),
            Default::default(),
            Duration::from_secs(60),
        )
        .unwrap();
        let registrar = Registrar::new(
            base.map(str::to_owned),
            GRACE,
            shutdown.clone(),
            Arc::new(store),
        );
        (registrar, shutdown, dir)
    }

    #[test]
    fn urls_and_ids() {
        let (registrar, _, _dir) = new_registrar(Some("https://smpp.example.com/base/"));
        assert_eq!(
            registrar.inner.url_for("abc").as_deref(),
            Some("https://smpp.example.com/base/api/smpp/v1/webhooks/abc")
        );
        assert_eq!(new_registrar(None).0.inner.url_for("abc"), None);
        for event in EVENTS {
            let id = Registrar::registration_id(TOKEN, event);
            assert!(id.len() <= 36, "{id}");
            assert!(!id.contains(&TOKEN[..8]), "{id} shows the token");
            assert_eq!(id, Registrar::registration_id(TOKEN, event));
            assert_ne!(id, Registrar::registration_id("other", event));
        }
        assert!(Registrar::registration_id(TOKEN, "sms:data-received").ends_with("-data-received"));
    }

    #[tokio::test]
    async fn first_bind_registers_every_event() {
        let sim = Sim::start().await;
        let (registrar, _shutdown, _dir) = new_registrar(Some(&format!("{BASE}/")));
        registrar.receiver_bound(&sim.account, TOKEN);
        sim.wait_for_webhooks(&expected(TOKEN)).await;
        wait_until("registered", || registrar.is_registered(&sim.account)).await;
        assert_eq!(sim.requests("POST /webhooks 201").await, 5);
    }

    #[tokio::test]
    async fn further_binds_register_nothing_new() {
        let sim = Sim::start().await;
        let (registrar, _shutdown, _dir) = new_registrar(Some(BASE));
        registrar.receiver_bound(&sim.account, TOKEN);
        wait_until("registered", || registrar.is_registered(&sim.account)).await;
        registrar.receiver_bound(&sim.account, TOKEN);
        assert!(registrar.is_registered(&sim.account));

        // A restarted server finds its registrations and leaves them as they are.
        let (restarted, _shutdown, _dir) = new_registrar(Some(BASE));
        restarted.receiver_bound(&sim.account, TOKEN);
        wait_until("registered", || restarted.is_registered(&sim.account)).await;
        assert_eq!(sim.requests("GET /webhooks 200").await, 2);
        assert_eq!(sim.requests("POST /webhooks 201").await, 5);
        assert_eq!(sim.requests("DELETE /webhooks/{id} 204").await, 0);
        assert_eq!(sim.webhooks().await, expected(TOKEN));
    }

    #[tokio::test]
    async fn leftovers_under_this_server_are_deleted_and_foreign_ones_kept() {
        let sim = Sim::start().await;
        let stale = format!("{BASE}/api/smpp/v1/webhooks/old-token");
        let foreign = "http://127.0.0.1:9/someone-else";
        sim.add(&stale, "sms:received").await;
        sim.add(foreign, "sms:received").await;
        let foreign_hook = sim
            .webhooks()
            .await
            .into_iter()
            .find(|w| w.0 == foreign)
            .unwrap();

        let (registrar, _shutdown, _dir) = new_registrar(Some(BASE));
        registrar.receiver_bound(&sim.account, TOKEN);
        let mut wanted = expected(TOKEN);
        wanted.push(foreign_hook);
        wanted.sort();
        sim.wait_for_webhooks(&wanted).await;
        wait_until("registered", || registrar.is_registered(&sim.account)).await;
    }

    #[tokio::test]
    async fn a_new_token_replaces_the_registrations() {
        let sim = Sim::start().await;
        let (registrar, _shutdown, _dir) = new_registrar(Some(BASE));
        registrar.receiver_bound(&sim.account, TOKEN);
        sim.wait_for_webhooks(&expected(TOKEN)).await;
        registrar.receiver_bound(&sim.account, "new-token");
        sim.wait_for_webhooks(&expected("new-token")).await;
    }

    #[tokio::test]
    async fn registrations_go_after_the_grace_period() {
        let sim = Sim::start().await;
        sim.add("http://127.0.0.1:9/someone-else", "sms:sent").await;
        let foreign = sim.webhooks().await;
        let (registrar, _shutdown, _dir) = new_registrar(Some(BASE));
        registrar.receiver_bound(&sim.account, TOKEN);
        registrar.receiver_bound(&sim.account, TOKEN);
        wait_until("registered", || registrar.is_registered(&sim.account)).await;

        let unbound = Instant::now();
        registrar.receiver_unbound(&sim.account);
        registrar.receiver_unbound(&sim.account);
        sim.wait_for_webhooks(&foreign).await;
        assert!(
            unbound.elapsed() >= GRACE,
            "deleted before the grace period"
        );
        assert_eq!(sim.requests("DELETE /webhooks/{id} 204").await, 5);
        // Forgotten once deleted; a later bind starts afresh.
        registrar.receiver_bound(&sim.account, TOKEN);
        let mut wanted = expected(TOKEN);
        wanted.extend(foreign);
        wanted.sort();
        sim.wait_for_webhooks(&wanted).await;
    }

    #[tokio::test]
    async fn a_rebind_within_the_grace_period_keeps_them() {
        let sim = Sim::start().await;
        let (registrar, _shutdown, _dir) = new_registrar(Some(BASE));
        registrar.receiver_bound(&sim.account, TOKEN);
        wait_until("registered", || registrar.is_registered(&sim.account)).await;
        registrar.receiver_unbound(&sim.account);
        registrar.receiver_bound(&sim.account, TOKEN);
        wait_until("registered", || registrar.is_registered(&sim.account)).await;
        // Nothing to poll for when nothing should happen: wait out the grace period.
        tokio::time::sleep(GRACE * 3).await;
        assert_eq!(sim.webhooks().await, expected(TOKEN));
        assert_eq!(sim.requests("DELETE /webhooks/{id} 204").await, 0);
        assert_eq!(sim.requests("POST /webhooks 201").await, 5);
    }

    #[tokio::test]
    async fn shutdown_keeps_them() {
        let sim = Sim::start().await;
        let (registrar, shutdown, _dir) = new_registrar(Some(BASE));
        registrar.receiver_bound(&sim.account, TOKEN);
        wait_until("registered", || registrar.is_registered(&sim.account)).await;
        shutdown.cancel();
        registrar.receiver_unbound(&sim.account);
        tokio::time::sleep(GRACE * 3).await;
        assert_eq!(sim.webhooks().await, expected(TOKEN));
    }

    #[tokio::test]
    async fn without_a_base_url_nothing_is_registered() {
        let sim = Sim::start().await;
        let (registrar, _shutdown, _dir) = new_registrar(None);
        registrar.receiver_bound(&sim.account, TOKEN);
        registrar.receiver_unbound(&sim.account);
        assert!(!registrar.is_registered(&sim.account));
        tokio::time::sleep(GRACE).await;
        assert!(sim.webhooks().await.is_empty());
        assert_eq!(sim.requests("GET /webhooks 200").await, 1);
    }

    #[tokio::test]
    async fn gateway_failures_are_retried() {
        // An unreachable gateway that comes back later.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let gateway = Gateway::new(
            &format!("http://{addr}/3rdparty/v1"),
            Duration::from_secs(1),
            0,
        )
        .unwrap();
        let credentials = Credentials::Basic {
            username: "demo".into(),
            password: "demo1234".into(),
        };
        let account = Arc::new(Account::new("demo", credentials, gateway));
        let (registrar, _shutdown, _dir) = new_registrar(Some(BASE));
        registrar.receiver_bound(&account, TOKEN);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!registrar.is_registered(&account));

        // The simulator's router, served on the address the first attempt failed on.
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let simulator = Simulator::new(SimulatorConfig::default());
        tokio::spawn(simulator.serve(listener, std::future::pending()));
        wait_until("registered after a retry", || {
            registrar.is_registered(&account)
        })
        .await;
    }
}
