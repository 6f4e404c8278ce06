//! The per-account token in each webhook URL. It must be unguessable (the URL is the phone's
//! only credential when webhooks are not signed), carry no credentials, and stay the same across
//! restarts (the phone keeps retrying old events against the URL it has): an HMAC of the
//! account name under a secret generated once and kept in the data directory.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::RwLock;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::queue::{Queue, QueueError};

const SECRET_FILE: &str = "webhook-token.secret";
const SECRET_LEN: usize = 32;
/// 128 bits of the MAC, as hex.
const TOKEN_HEX_LEN: usize = 32;

/// Whose token it is, and whether the account's webhooks are signed: a signed account's events
/// are refused (503, so the phone retries) until its key is known again, rather than taken
/// unverified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub account: String,
    pub signed: bool,
}

pub struct Tokens {
    secret: [u8; SECRET_LEN],
    owners: RwLock<HashMap<String, Owner>>,
    /// Signing keys learnt at bind time (from an authenticate plugin or the config), by account.
    keys: RwLock<HashMap<String, String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("webhook token secret {path}: {source}")]
    Secret { path: String, source: io::Error },
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl Tokens {
    /// Reads (or creates) the secret and the tokens an earlier run handed out.
    pub fn load(data_dir: &Path, queue: &Queue) -> Result<Tokens, TokenError> {
        let path = data_dir.join(SECRET_FILE);
        let secret = read_or_create_secret(&path).map_err(|source| TokenError::Secret {
            path: path.display().to_string(),
            source,
        })?;
        let owners = queue
            .tokens()?
            .into_iter()
            .map(|(token, account, signed)| (token, Owner { account, signed }))
            .collect();
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
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .chars()
            .take(TOKEN_HEX_LEN)
            .collect()
    }

    /// Records the token's owner (on disk, for restarts) and the account's current key (in
    /// memory only: secrets are not written to the data directory).
    pub fn remember(
        &self,
        queue: &Queue,
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
            queue.remember_token(token, account, owner.signed)?;
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

    pub fn key_of(&self, account: &str) -> Option<String> {
        self.keys.read().expect("keys lock").get(account).cloned()
    }
}

fn read_or_create_secret(path: &Path) -> io::Result<[u8; SECRET_LEN]> {
    match fs::read(path) {
        Ok(bytes) => bytes.try_into().map_err(|bytes: Vec<u8>| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("holds {} bytes, expected {SECRET_LEN}", bytes.len()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            let secret: [u8; SECRET_LEN] = rand::random();
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
    use crate::delivery::queue::QueueOptions;
    use tempfile::TempDir;

    #[test]
    fn tokens_are_stable_per_account_and_survive_a_restart() {
        let dir = TempDir::new().unwrap();
        let queue = Queue::open(&dir.path().join("store.redb"), QueueOptions::default()).unwrap();
        let tokens = Tokens::load(dir.path(), &queue).unwrap();
        let alpha = tokens.token_for("alpha");
        assert_eq!(alpha.len(), TOKEN_HEX_LEN);
        assert!(alpha.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(alpha, tokens.token_for("beta"));
        assert_eq!(tokens.owner(&alpha), None);
        tokens
            .remember(&queue, &alpha, "alpha", Some("key".into()))
            .unwrap();
        assert_eq!(tokens.key_of("alpha").as_deref(), Some("key"));
        drop(tokens);

        let again = Tokens::load(dir.path(), &queue).unwrap();
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
}
