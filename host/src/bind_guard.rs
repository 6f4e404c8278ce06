//! Makes guessing SMPP passwords slow and useless, and keeps guesses away from the gateway (every
//! check is an SMSGate call, and a flood of 401s risks the account or this server's address being
//! rate-limited by the cloud). The way mail and SSH servers do it: failed binds are answered late,
//! with a delay that doubles with each recent failure of the address or the system_id; an address
//! with too many recent failures is locked out for a while; a system_id under attack accepts only
//! credentials that have worked before; and a refused password is remembered briefly, so the same
//! guess never reaches the gateway twice. A legitimate ESME from another address, with its usual
//! password, keeps binding throughout.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use smpp_codec::status::*;

/// The policy, from `[smpp]`.
#[derive(Clone, Debug)]
pub struct GuardSettings {
    /// Delay of the first failed bind's answer; it doubles with each recent failure, up to
    /// `MAX_DOUBLINGS` times.
    pub failure_delay: Duration,
    /// Recent failures after which an address is locked out (0: never).
    pub lockout_after: u32,
    /// How long a lockout lasts, and how long failures are remembered.
    pub lockout: Duration,
    /// How long a refused password is answered without asking the gateway (0: never).
    pub refusal_ttl: Duration,
}

const MAX_DOUBLINGS: u32 = 3;
/// Entries per table; a table that fills up with live entries is cleared, so memory stays
/// bounded whatever an attacker sends (at worst it forgets, as after a restart).
const MAX_ENTRIES: usize = 100_000;
/// How long credentials that bound once count as known-good for their system_id.
const KNOWN_GOOD_FOR: Duration = Duration::from_secs(7 * 24 * 3600);
/// Known-good credentials kept per system_id (several ESMEs may share an account).
const KNOWN_GOOD_PER_ACCOUNT: usize = 8;

/// Why a bind was refused without asking the gateway; the label of `smpp_binds_refused_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    AddressLockedOut,
    AccountUnderAttack,
    RecentlyRefused,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::AddressLockedOut => "address_locked_out",
            Refusal::AccountUnderAttack => "account_under_attack",
            Refusal::RecentlyRefused => "recently_refused",
        }
    }
}

/// A salted digest of the bind's system_id and password: what the guard remembers instead of
/// the password itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CredentialKey([u8; 32]);

/// Where failures are counted: one address, or a whole IPv6 /64 (one host's usual share).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Origin(u128);

impl From<IpAddr> for Origin {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Origin(u32::from(v4).into()),
            IpAddr::V6(v6) => Origin(u128::from(v6) & !((1u128 << 64) - 1)),
        }
    }
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

impl Failures {
    /// The count of failures still remembered at `now`.
    fn recent(&self, now: Instant, memory: Duration) -> u32 {
        if now.duration_since(self.last) < memory {
            self.count
        } else {
            0
        }
    }

    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }
}

#[derive(Default)]
struct Tables {
    origins: HashMap<Origin, Failures>,
    accounts: HashMap<String, Failures>,
    refused: HashMap<CredentialKey, (CommandStatus, Instant)>,
    known_good: HashMap<String, Vec<(CredentialKey, Instant)>>,
}

pub struct BindGuard {
    settings: GuardSettings,
    salt: [u8; 16],
    tables: Mutex<Tables>,
}

impl BindGuard {
    pub fn new(settings: GuardSettings) -> Self {
        BindGuard {
            settings,
            salt: rand::random(),
            tables: Mutex::default(),
        }
    }

    pub fn key(&self, system_id: &str, password: &str) -> CredentialKey {
        let mut digest = Sha256::new();
        digest.update(self.salt);
        digest.update((system_id.len() as u64).to_be_bytes());
        digest.update(system_id.as_bytes());
        digest.update(password.as_bytes());
        CredentialKey(digest.finalize().into())
    }

    /// Whether the bind may be checked at all; a refusal comes with the status to answer.
    pub fn admit(
        &self,
        peer: IpAddr,
        system_id: &str,
        key: CredentialKey,
    ) -> Result<(), (Refusal, CommandStatus)> {
        let now = Instant::now();
        let tables = self.lock();
        if tables
            .origins
            .get(&Origin::from(peer))
            .is_some_and(|f| f.locked(now))
        {
            return Err((Refusal::AddressLockedOut, ESME_RBINDFAIL));
        }
        if let Some((status, at)) = tables.refused.get(&key)
            && now.duration_since(*at) < self.settings.refusal_ttl
        {
            return Err((Refusal::RecentlyRefused, *status));
        }
        let known_good = tables
            .known_good
            .get(system_id)
            .is_some_and(|keys| keys.iter().any(|(k, _)| *k == key));
        if !known_good
            && tables
                .accounts
                .get(system_id)
                .is_some_and(|f| f.locked(now))
        {
            return Err((Refusal::AccountUnderAttack, ESME_RBINDFAIL));
        }
        Ok(())
    }

    /// Records a refused bind; returns how long to wait before answering it.
    pub fn failed(
        &self,
        peer: IpAddr,
        system_id: &str,
        key: CredentialKey,
        status: CommandStatus,
    ) -> Duration {
        let now = Instant::now();
        let GuardSettings {
            lockout_after,
            lockout,
            refusal_ttl,
            ..
        } = self.settings;
        let mut guard = self.lock();
        let tables = &mut *guard;
        let lockout_after = (lockout_after > 0).then_some(lockout_after);
        let origin = count_failure(
            &mut tables.origins,
            Origin::from(peer),
            now,
            lockout,
            lockout_after,
        );
        let account = count_failure(
            &mut tables.accounts,
            system_id.to_string(),
            now,
            lockout,
            lockout_after,
        );
        let worst = origin.max(account);
        if !refusal_ttl.is_zero() {
            bounded(&mut tables.refused, |(_, at)| {
                now.duration_since(*at) < refusal_ttl
            })
            .insert(key, (status, now));
        }
        self.settings.failure_delay * 2u32.pow(worst.saturating_sub(1).min(MAX_DOUBLINGS))
    }

    /// A bind that worked: its address starts afresh, and its credentials stay welcome while
    /// the system_id is under attack.
    pub fn succeeded(&self, peer: IpAddr, system_id: &str, key: CredentialKey) {
        let now = Instant::now();
        let mut tables = self.lock();
        tables.origins.remove(&Origin::from(peer));
        tables.refused.remove(&key);
        let known = bounded(&mut tables.known_good, |keys| {
            keys.iter()
                .any(|(_, at)| now.duration_since(*at) < KNOWN_GOOD_FOR)
        })
        .entry(system_id.to_string())
        .or_default();
        known.retain(|(k, at)| *k != key && now.duration_since(*at) < KNOWN_GOOD_FOR);
        if known.len() >= KNOWN_GOOD_PER_ACCOUNT {
            known.remove(0);
        }
        known.push((key, now));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Adds a failure to `key`'s count, which starts again from zero once older than `memory`, and
/// locks `key` out for `memory` when the count reaches `lockout_after`; returns the count.
fn count_failure<K: Eq + std::hash::Hash>(
    table: &mut HashMap<K, Failures>,
    key: K,
    now: Instant,
    memory: Duration,
    lockout_after: Option<u32>,
) -> u32 {
    let table = bounded(table, |f| f.locked(now) || f.recent(now, memory) > 0);
    let failures = table.entry(key).or_insert(Failures {
        count: 0,
        last: now,
        locked_until: None,
    });
    failures.count = failures.recent(now, memory) + 1;
    failures.last = now;
    if lockout_after.is_some_and(|n| failures.count >= n) && !failures.locked(now) {
        failures.locked_until = Some(now + memory);
    }
    failures.count
}

/// `table`, with room for one more entry: what is no longer `live` goes first, everything if
/// that is not enough.
fn bounded<K, V>(table: &mut HashMap<K, V>, live: impl Fn(&V) -> bool) -> &mut HashMap<K, V> {
    if table.len() >= MAX_ENTRIES {
        table.retain(|_, v| live(v));
        if table.len() >= MAX_ENTRIES {
            table.clear();
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(lockout_after: u32) -> BindGuard {
        BindGuard::new(GuardSettings {
            failure_delay: Duration::from_millis(100),
            lockout_after,
            lockout: Duration::from_secs(600),
            refusal_ttl: Duration::from_secs(60),
        })
    }

    const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7));
    const CUSTOMER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1));

    #[test]
    fn the_delay_doubles_with_each_failure_up_to_a_bound() {
        let guard = guard(0);
        let delays: Vec<_> = (0..6)
            .map(|i| {
                let key = guard.key("demo", &format!("guess{i}"));
                guard
                    .failed(ATTACKER, "demo", key, ESME_RINVPASWD)
                    .as_millis()
            })
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 800, 800]);
    }

    #[test]
    fn the_same_wrong_password_is_answered_from_memory() {
        let guard = guard(0);
        let key = guard.key("demo", "wrong");
        assert!(guard.admit(ATTACKER, "demo", key).is_ok());
        guard.failed(ATTACKER, "demo", key, ESME_RINVPASWD);
        assert_eq!(
            guard.admit(CUSTOMER, "demo", key),
            Err((Refusal::RecentlyRefused, ESME_RINVPASWD))
        );
        let right = guard.key("demo", "right");
        assert!(guard.admit(CUSTOMER, "demo", right).is_ok());
        // The digest covers the system_id: the same password of another account is not refused.
        assert!(
            guard
                .admit(CUSTOMER, "other", guard.key("other", "wrong"))
                .is_ok()
        );
    }

    #[test]
    fn an_address_is_locked_out_after_repeated_failures_and_others_keep_binding() {
        let guard = guard(5);
        let right = guard.key("demo", "right");
        guard.succeeded(CUSTOMER, "demo", right);
        for i in 0..5 {
            let key = guard.key("demo", &format!("guess{i}"));
            assert!(guard.admit(ATTACKER, "demo", key).is_ok(), "guess {i}");
            guard.failed(ATTACKER, "demo", key, ESME_RINVPASWD);
        }
        // The attacker's address is out, even with the right password.
        assert_eq!(
            guard.admit(ATTACKER, "demo", right),
            Err((Refusal::AddressLockedOut, ESME_RBINDFAIL))
        );
        // The account is under attack: unknown credentials are not checked at all ...
        let guess = guard.key("demo", "from-elsewhere");
        assert_eq!(
            guard.admit(CUSTOMER, "demo", guess),
            Err((Refusal::AccountUnderAttack, ESME_RBINDFAIL))
        );
        // ... while the customer's own, which worked before, still are.
        assert!(guard.admit(CUSTOMER, "demo", right).is_ok());
        // Other accounts are not affected.
        assert!(
            guard
                .admit(CUSTOMER, "shop", guard.key("shop", "pw"))
                .is_ok()
        );
    }

    #[test]
    fn ipv6_addresses_of_one_host_count_together() {
        let a: IpAddr = "2001:db8:1:2::10".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::10".parse().unwrap();
        assert!(Origin::from(a) == Origin::from(b));
        assert!(Origin::from(a) != Origin::from(c));
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert!(Origin::from(mapped) == Origin::from(ATTACKER));
    }

    #[test]
    fn failures_are_forgotten_after_the_lockout_time() {
        let guard = BindGuard::new(GuardSettings {
            lockout: Duration::from_millis(50),
            ..guard(2).settings
        });
        for i in 0..2 {
            guard.failed(
                ATTACKER,
                "demo",
                guard.key("demo", &i.to_string()),
                ESME_RINVPASWD,
            );
        }
        let key = guard.key("demo", "fresh");
        assert!(guard.admit(ATTACKER, "demo", key).is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(guard.admit(ATTACKER, "demo", key).is_ok());
        let delay = guard.failed(ATTACKER, "demo", key, ESME_RINVPASWD);
        assert_eq!(delay, Duration::from_millis(100), "the count started again");
    }
}
