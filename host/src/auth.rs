//! Who may bind, and as which SMSGate account. The authenticate plugins decide first; when none
//! has an opinion, the ESME's system_id/password are its SMSGate username/password. Either way
//! the resulting credentials are checked with one gateway call. A success is remembered briefly
//! so a reconnect storm of many binds does not turn into as many gateway calls; a refusal is
//! remembered only for the very credentials refused (by the bind guard, `bind_guard.rs`, which
//! also slows and locks out guessing), so a corrected password works at once. The per-account
//! limits a plugin sets (binds at once, messages per second) are enforced here for every
//! session of the account.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sha2::Digest as _;
use tracing::{debug, info, warn};

use crate::bind_guard::{BindGuard, GuardSettings, Refusal};
use crate::config::SmppConfig;
use crate::gateway::{self, Credentials, Gateway};
use crate::metrics;
use delivery_store::DeliveryStore;
use smpp_codec::pdu::{Bind, BindKind};
use smpp_codec::status::*;
use smsgate_plugin_host::{AuthOutcome, Plugins, types};

/// The account label by which an authenticate plugin passes the webhook signing key.
pub const SIGNING_KEY_LABEL: &str = "webhook-signing-key";

/// The SMSGate account a bound session acts for.
pub struct Account {
    /// The name used in logs and to keep accounts apart.
    pub name: String,
    pub credentials: Credentials,
    /// The gateway of this account (a tenant may live on a private SMSGate server).
    pub gateway: Gateway,
    /// Device and SIM slot used when no route chooses.
    pub device_id: Option<String>,
    pub sim_number: Option<u8>,
    pub max_binds: Option<u32>,
    pub messages_per_second: Option<u32>,
    pub labels: Vec<(String, String)>,
    /// The key this account's phones sign webhooks with, when an authenticate plugin knows it
    /// (label `webhook-signing-key`, which is taken out of the labels so that no later hook
    /// sees it).
    pub webhook_signing_key: Option<String>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("credentials", &self.credentials)
            .field("gateway", &self.gateway.base_url())
            .finish_non_exhaustive()
    }
}

impl Account {
    /// The SMSGate account this account sends through: its gateway and user (a token by its
    /// digest, never itself). Several SMPP users may share one; webhooks belong to it.
    pub fn smsgate_account(&self) -> String {
        let base = self.gateway.base_url().trim_end_matches('/');
        match &self.credentials {
            Credentials::Basic { username, .. } => format!("{base}|{username}"),
            Credentials::Bearer { token } => {
                let digest = sha2::Sha256::digest(token.as_bytes());
                format!("{base}|token:{}", hex::encode(&digest[..8]))
            }
        }
    }

    /// The default account: system_id and password are the SMSGate credentials.
    pub fn new(name: &str, credentials: Credentials, gateway: Gateway) -> Self {
        Account {
            name: name.to_string(),
            credentials,
            gateway,
            device_id: None,
            sim_number: None,
            max_binds: None,
            messages_per_second: None,
            labels: Vec::new(),
            webhook_signing_key: None,
        }
    }
}

/// A bound session's hold on its account; dropping it frees the bind slot.
pub struct BoundAccount {
    pub account: Arc<Account>,
    /// The session bound with it; its messages' receipts prefer it.
    pub session: u64,
    registry: Arc<Registry>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// The store of a deployment of several instances, where the limits hold across them.
    shared: Option<SharedLimits>,
}

struct SharedLimits {
    store: Arc<dyn DeliveryStore>,
    /// Whether this bind took one of the account's binds there, to give back when it ends.
    holds_bind: bool,
}

impl BoundAccount {
    /// Whether one more message fits the account's messages-per-second limit now: this
    /// instance's share first, then, with several instances, the whole deployment's. When the
    /// shared store does not answer, this instance's limit is all that holds.
    pub async fn admit_message(&self) -> bool {
        if self.limiter.as_ref().is_some_and(|l| l.check().is_err()) {
            return false;
        }
        let (Some(shared), Some(rate)) = (&self.shared, self.account.messages_per_second) else {
            return true;
        };
        match shared.store.count_message(&self.account.name, rate).await {
            Ok(fits) => fits,
            Err(e) => {
                debug!(account = %self.account.name, error = %e, "cannot count the message across instances");
                true
            }
        }
    }
}

impl Drop for BoundAccount {
    fn drop(&mut self) {
        self.registry.release(&self.account.name);
        if let Some(shared) = self.shared.as_ref().filter(|s| s.holds_bind)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (released, name) = (
                shared.store.release_bind(&self.account.name),
                self.account.name.clone(),
            );
            runtime.spawn(async move {
                if let Err(e) = released.await {
                    warn!(account = %name, error = %e, "cannot give back the bind across instances; it counts until this instance's lease ends");
                }
            });
        }
    }
}

#[derive(Default)]
struct Registry {
    accounts: Mutex<HashMap<String, AccountState>>,
}

struct AccountState {
    binds: u32,
    limiter: Option<(u32, Arc<DefaultDirectRateLimiter>)>,
}

impl Registry {
    fn admit(&self, account: &Account) -> Result<Option<Arc<DefaultDirectRateLimiter>>, SmppError> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let state = accounts
            .entry(account.name.clone())
            .or_insert(AccountState {
                binds: 0,
                limiter: None,
            });
        if let Some(max) = account.max_binds
            && state.binds >= max
        {
            return Err(SmppError::new(
                ESME_RBINDFAIL,
                format!("account already has {max} binds, its limit"),
            ));
        }
        state.binds += 1;
        // The newest bind's limit wins, so a changed plugin configuration applies without
        // waiting for every session to go away.
        let limiter = match (
            account.messages_per_second.and_then(NonZeroU32::new),
            &state.limiter,
        ) {
            (None, _) => None,
            (Some(rate), Some((current, limiter))) if *current == rate.get() => {
                Some(Arc::clone(limiter))
            }
            (Some(rate), _) => {
                let limiter = Arc::new(RateLimiter::direct(Quota::per_second(rate)));
                state.limiter = Some((rate.get(), Arc::clone(&limiter)));
                Some(limiter)
            }
        };
        Ok(limiter)
    }

    fn release(&self, name: &str) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = accounts.get_mut(name) {
            state.binds = state.binds.saturating_sub(1);
            if state.binds == 0 {
                accounts.remove(name);
            }
        }
    }
}

/// The bind as an authenticate plugin sees it.
pub fn bind_request(bind: &Bind, peer: SocketAddr, tls: bool) -> types::BindRequest {
    types::BindRequest {
        system_id: bind.system_id.clone(),
        password: bind.password.clone(),
        system_type: bind.system_type.clone(),
        bind_type: match bind.kind {
            BindKind::Transmitter => types::BindType::Transmitter,
            BindKind::Receiver => types::BindType::Receiver,
            BindKind::Transceiver => types::BindType::Transceiver,
        },
        peer_address: peer.to_string(),
        tls,
        address_range: bind.address_range.clone(),
    }
}

/// The account as transform and route plugins see it: secrets blanked, so plugins other than
/// authenticate see who an account is, never its secret.
pub fn account_view(account: &Account) -> types::Account {
    let credentials = match &account.credentials {
        Credentials::Basic { username, .. } => types::Credentials::Basic(types::BasicCredentials {
            username: username.clone(),
            password: String::new(),
        }),
        Credentials::Bearer { .. } => types::Credentials::Bearer(String::new()),
    };
    types::Account {
        id: account.name.clone(),
        credentials,
        api_base_url: Some(account.gateway.base_url().to_string()),
        device_id: account.device_id.clone(),
        sim_number: account.sim_number,
        limits: types::AccountLimits {
            max_binds: account.max_binds,
            messages_per_second: account.messages_per_second,
        },
        labels: account.labels.clone(),
    }
}

impl From<types::Credentials> for Credentials {
    fn from(credentials: types::Credentials) -> Self {
        match credentials {
            types::Credentials::Basic(basic) => Credentials::Basic {
                username: basic.username,
                password: basic.password,
            },
            types::Credentials::Bearer(token) => Credentials::Bearer { token },
        }
    }
}

pub struct Authenticator {
    gateway: Gateway,
    plugins: Arc<Plugins>,
    ttl: Duration,
    verified: Mutex<HashMap<(String, Credentials), Instant>>,
    registry: Arc<Registry>,
    guard: BindGuard,
    /// With several instances: where binds and messages are counted across them.
    shared: Option<Arc<dyn DeliveryStore>>,
}

/// Binds refused for their credentials; other refusals (a gateway outage, a bind limit) say
/// nothing about guessing.
fn is_credential_refusal(status: CommandStatus) -> bool {
    status == ESME_RINVPASWD || status == ESME_RINVSYSID
}

impl Authenticator {
    pub fn new(
        gateway: Gateway,
        plugins: Arc<Plugins>,
        smpp: &SmppConfig,
        shared: Option<Arc<dyn DeliveryStore>>,
    ) -> Self {
        Authenticator {
            shared,
            gateway,
            plugins,
            ttl: smpp.bind_cache_ttl,
            verified: Mutex::new(HashMap::new()),
            registry: Arc::default(),
            guard: BindGuard::new(GuardSettings {
                failure_delay: smpp.bind_failure_delay,
                lockout_after: smpp.bind_lockout_after,
                lockout: smpp.bind_lockout,
                refusal_ttl: smpp.bind_cache_ttl,
            }),
        }
    }

    /// The bind check, behind the guard: a refusal for the credentials is answered only after
    /// the guard's delay, and one the guard makes itself never reaches plugins or gateway.
    /// The bind check of `session`'s bind, behind the guard.
    pub async fn authenticate(
        &self,
        bind: &Bind,
        peer: SocketAddr,
        tls: bool,
        session: u64,
    ) -> Result<BoundAccount, SmppError> {
        let key = self.guard.key(&bind.system_id, &bind.password);
        let refusal = match self.guard.admit(peer.ip(), &bind.system_id, key) {
            Ok(()) => match self.check_bind(bind, peer, tls, session).await {
                Ok(bound) => {
                    self.guard.succeeded(peer.ip(), &bind.system_id, key);
                    return Ok(bound);
                }
                Err(e) if is_credential_refusal(e.status) => {
                    metrics::get()
                        .binds_refused
                        .with_label_values(&["credentials"])
                        .inc();
                    e
                }
                Err(e) => return Err(e),
            },
            Err((refusal, status)) => {
                metrics::get()
                    .binds_refused
                    .with_label_values(&[refusal.label()])
                    .inc();
                if refusal != Refusal::RecentlyRefused {
                    info!(reason = refusal.label(), "bind refused without a check");
                    return Err(SmppError::new(status, refusal.label()));
                }
                SmppError::new(status, "the same credentials were refused moments ago")
            }
        };
        let delay = self
            .guard
            .failed(peer.ip(), &bind.system_id, key, refusal.status);
        tokio::time::sleep(delay).await;
        Err(refusal)
    }

    async fn check_bind(
        &self,
        bind: &Bind,
        peer: SocketAddr,
        tls: bool,
        session: u64,
    ) -> Result<BoundAccount, SmppError> {
        let request = bind_request(bind, peer, tls);
        let account = match self.plugins.authenticate(&request) {
            AuthOutcome::Accept(account) => self.plugin_account(account)?,
            AuthOutcome::Reject(status) => {
                return Err(SmppError::new(status, "refused by an authenticate plugin"));
            }
            AuthOutcome::Default => self.default_account(bind)?,
        };
        self.check(&account, bind).await?;
        let limiter = self.registry.admit(&account)?;
        let shared = match &self.shared {
            Some(store) => Some(SharedLimits {
                store: Arc::clone(store),
                holds_bind: self.take_shared_bind(store.as_ref(), &account).await?,
            }),
            None => None,
        };
        Ok(BoundAccount {
            account: Arc::new(account),
            session,
            registry: Arc::clone(&self.registry),
            limiter,
            shared,
        })
    }

    /// Takes one of the account's `max_binds` across the instances; when the store does not
    /// answer, this instance's count is all that holds (binds must not depend on Redis).
    async fn take_shared_bind(
        &self,
        store: &dyn DeliveryStore,
        account: &Account,
    ) -> Result<bool, SmppError> {
        let Some(max) = account.max_binds else {
            return Ok(false);
        };
        match store.take_bind(&account.name, max).await {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.registry.release(&account.name);
                Err(SmppError::new(
                    ESME_RBINDFAIL,
                    format!("account already has {max} binds across the instances, its limit"),
                ))
            }
            Err(e) => {
                warn!(account = %account.name, error = %e, "cannot count the bind across instances; only this instance's count holds");
                Ok(false)
            }
        }
    }

    fn default_account(&self, bind: &Bind) -> Result<Account, SmppError> {
        if bind.system_id.is_empty() {
            return Err(SmppError::new(ESME_RINVSYSID, "empty system_id"));
        }
        if bind.password.is_empty() {
            return Err(SmppError::new(ESME_RINVPASWD, "empty password"));
        }
        let credentials = Credentials::Basic {
            username: bind.system_id.clone(),
            password: bind.password.clone(),
        };
        Ok(Account::new(
            &bind.system_id,
            credentials,
            self.gateway.clone(),
        ))
    }

    fn plugin_account(&self, account: types::Account) -> Result<Account, SmppError> {
        let gateway = match &account.api_base_url {
            None => self.gateway.clone(),
            Some(url) => self.gateway.with_base_url(url).map_err(|e| {
                SmppError::new(
                    ESME_RBINDFAIL,
                    format!(
                        "plugin gave account {:?} a bad api-base-url: {e}",
                        account.id
                    ),
                )
            })?,
        };
        let credentials = Credentials::from(account.credentials);
        let (keys, labels): (Vec<_>, Vec<_>) = account
            .labels
            .into_iter()
            .partition(|(name, _)| name == SIGNING_KEY_LABEL);
        Ok(Account {
            name: account.id,
            credentials,
            gateway,
            device_id: account.device_id,
            sim_number: account.sim_number,
            max_binds: account.limits.max_binds,
            messages_per_second: account.limits.messages_per_second,
            labels,
            webhook_signing_key: keys.into_iter().next().map(|(_, key)| key),
        })
    }

    /// One gateway call proves the credentials work (for that account's gateway).
    async fn check(&self, account: &Account, bind: &Bind) -> Result<(), SmppError> {
        let key = (
            account.gateway.base_url().to_string(),
            account.credentials.clone(),
        );
        if self.recently_verified(&key) {
            debug!("credentials verified recently; no gateway call");
            return Ok(());
        }
        account
            .gateway
            .check_credentials(&account.credentials)
            .await
            .map_err(|e| {
                SmppError::new(
                    gateway::bind_status(&e),
                    // Clients that cut passwords to 8 characters are the usual cause of a
                    // refusal; the length (never the password) tells an operator so.
                    format!(
                        "{e} (bind password length {})",
                        bind.password.chars().count()
                    ),
                )
            })?;
        self.remember(key);
        Ok(())
    }

    fn recently_verified(&self, key: &(String, Credentials)) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified.get(key).is_some_and(|at| at.elapsed() < self.ttl)
    }

    fn remember(&self, key: (String, Credentials)) {
        if self.ttl.is_zero() {
            return;
        }
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        let ttl = self.ttl;
        verified.retain(|_, at| at.elapsed() < ttl);
        verified.insert(key, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(max_binds: Option<u32>, rate: Option<u32>) -> Account {
        let gateway =
            Gateway::new("http://127.0.0.1:9/3rdparty/v1", Duration::from_secs(1), 0).unwrap();
        Account {
            max_binds,
            messages_per_second: rate,
            ..Account::new("acct", Credentials::Bearer { token: "t".into() }, gateway)
        }
    }

    #[test]
    fn bind_limit_counts_live_binds_only() {
        let registry = Arc::new(Registry::default());
        let acct = account(Some(2), None);
        let hold = |registry: &Arc<Registry>| BoundAccount {
            limiter: registry.admit(&acct).unwrap(),
            account: Arc::new(account(Some(2), None)),
            session: 1,
            registry: Arc::clone(registry),
            shared: None,
        };
        let first = hold(&registry);
        let _second = hold(&registry);
        assert_eq!(registry.admit(&acct).unwrap_err().status, ESME_RBINDFAIL);
        drop(first);
        assert!(registry.admit(&acct).is_ok());
    }

    #[test]
    fn messages_per_second_is_shared_by_the_account() {
        let registry = Arc::new(Registry::default());
        let acct = account(None, Some(3));
        let a = registry.admit(&acct).unwrap().unwrap();
        let b = registry.admit(&acct).unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let admitted = (0..10).filter(|_| a.check().is_ok()).count();
        assert_eq!(admitted, 3);
    }
}
