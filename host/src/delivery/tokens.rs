//! The per-account token in each webhook URL. It must be unguessable (the URL is the phone's
//! only credential when webhooks are not signed), carry no credentials, and stay the same across
//! restarts (the phone keeps retrying old events against the URL it has): an HMAC of the
//! SMSGate account (`Account::smsgate_account`) under a secret the store generated once — or under `delivery.token_secret`,
//! which instances of one deployment share so each hands out the same URL.

use std::collections::HashMap;
use std::sync::RwLock;

use delivery_store::{DeliveryStore, QueueError, TOKEN_SECRET_LEN, TokenOwner};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// 128 bits of the MAC, as hex.
const TOKEN_HEX_LEN: usize = 32;

/// Whose token it is (an SMSGate account; tokens of older versions name an SMPP user), and
/// whether the account's webhooks are signed: a signed account's events
/// are refused (503, so the phone retries) until its key is known again, rather than taken
/// unverified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub account: String,
    pub signed: bool,
}

pub struct Tokens {
    secret: [u8; TOKEN_SECRET_LEN],
    owners: RwLock<HashMap<String, Owner>>,
    /// Signing keys learnt at bind time (from an authenticate plugin or the config), by account.
    keys: RwLock<HashMap<String, String>>,
}

impl Tokens {
    /// The secret (the configured one, else the store's) and the tokens an earlier run handed
    /// out.
    pub async fn load(
        store: &dyn DeliveryStore,
        configured_secret: Option<&str>,
    ) -> Result<Tokens, QueueError> {
        let owners = store
            .tokens()
            .await?
            .into_iter()
            .map(|t| {
                let owner = Owner {
                    account: t.account,
                    signed: t.signed,
                };
                (t.token, owner)
            })
            .collect();
        let secret = match configured_secret {
            // Hashed to the store secret's length, so any configured text is a full-size key.
            Some(text) => Sha256::digest(text.as_bytes())[..TOKEN_SECRET_LEN]
                .try_into()
                .expect("SHA-256 is at least as long as the token secret"),
            None => store.token_secret(),
        };
        Ok(Tokens {
            secret,
            owners: RwLock::new(owners),
            keys: RwLock::new(HashMap::new()),
        })
    }

    pub fn token_for(&self, account: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(b"smsgate-smpp webhook token\0");
        mac.update(account.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut token = hex::encode(digest);
        token.truncate(TOKEN_HEX_LEN);
        token
    }

    /// Records the token's owner (on disk, for restarts) and the account's current key (in
    /// memory only: secrets are not written to the data directory).
    pub async fn remember(
        &self,
        store: &dyn DeliveryStore,
        token: &str,
        account: &str,
        key: Option<String>,
    ) -> Result<(), QueueError> {
        let owner = Owner {
            account: account.to_owned(),
            signed: key.is_some(),
        };
        {
            let mut keys = self.keys.write().expect("keys lock");
            match key {
                Some(key) => keys.insert(account.to_owned(), key),
                None => keys.remove(account),
            };
        }
        let known = self.owners.read().expect("owners lock").get(token) == Some(&owner);
        if !known {
            store
                .remember_token(TokenOwner {
                    token: token.to_owned(),
                    account: account.to_owned(),
                    signed: owner.signed,
                })
                .await?;
            self.owners
                .write()
                .expect("owners lock")
                .insert(token.to_owned(), owner);
        }
        Ok(())
    }

    pub fn owner(&self, token: &str) -> Option<Owner> {
        self.owners.read().expect("owners lock").get(token).cloned()
    }

    /// The owner of `token`, asking the store when another instance handed it out since.
    pub async fn owner_or_fetch(
        &self,
        store: &dyn DeliveryStore,
        token: &str,
    ) -> Result<Option<Owner>, QueueError> {
        if let Some(owner) = self.owner(token) {
            return Ok(Some(owner));
        }
        let Some(found) = store.token_owner(token).await? else {
            return Ok(None);
        };
        let owner = Owner {
            account: found.account,
            signed: found.signed,
        };
        self.owners
            .write()
            .expect("owners lock")
            .insert(found.token, owner.clone());
        Ok(Some(owner))
    }

    pub fn key_of(&self, account: &str) -> Option<String> {
        self.keys.read().expect("keys lock").get(account).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use delivery_store::embedded::{Embedded, QueueOptions};
    use std::time::Duration;
    use tempfile::TempDir;

    #[tokio::test]
    async fn tokens_are_stable_per_account_and_survive_a_restart() {
        let dir = TempDir::new().unwrap();
        let open = || Embedded::open(dir.path(), QueueOptions::default(), Duration::from_secs(60));
        let store = open().unwrap();
        let tokens = Tokens::load(&store, None).await.unwrap();
        let alpha = tokens.token_for("alpha");
        assert_eq!(alpha.len(), TOKEN_HEX_LEN);
        assert!(alpha.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(alpha, tokens.token_for("beta"));
        assert_eq!(tokens.owner(&alpha), None);
        tokens
            .remember(&store, &alpha, "alpha", Some("key".into()))
            .await
            .unwrap();
        assert_eq!(tokens.key_of("alpha").as_deref(), Some("key"));
        drop((tokens, store));

        let again = Tokens::load(&open().unwrap(), None).await.unwrap();
        assert_eq!(again.token_for("alpha"), alpha);
        assert_eq!(
            again.owner(&alpha),
            Some(Owner {
                account: "alpha".into(),
                signed: true
            })
        );
        assert_eq!(
            again.key_of("alpha"),
            None,
            "keys are never written to disk"
        );
    }

    /// Two instances with their own data directories and one configured secret hand out the
    /// same token, so neither takes the other's registrations for leftovers.
    #[tokio::test]
    async fn a_configured_secret_gives_every_instance_the_same_tokens() {
        let (a, b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
        let open = |dir: &TempDir| {
            Embedded::open(dir.path(), QueueOptions::default(), Duration::from_secs(60)).unwrap()
        };
        let (store_a, store_b) = (open(&a), open(&b));
        let own_a = Tokens::load(&store_a, None).await.unwrap();
        let own_b = Tokens::load(&store_b, None).await.unwrap();
        assert_ne!(own_a.token_for("demo"), own_b.token_for("demo"));
        let shared = "one secret for the deployment";
        let shared_a = Tokens::load(&store_a, Some(shared)).await.unwrap();
        let shared_b = Tokens::load(&store_b, Some(shared)).await.unwrap();
        assert_eq!(shared_a.token_for("demo"), shared_b.token_for("demo"));
        assert_ne!(shared_a.token_for("demo"), own_a.token_for("demo"));
    }
}
