//! Who may bind. By default an ESME's system_id/password are its SMSGate username/password,
//! checked with one gateway call. A success is remembered briefly so a reconnect storm of many
//! binds does not turn into as many gateway calls; a failure is never remembered, so a fixed
//! password works at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::codec::pdu::Bind;
use crate::codec::status::*;
use crate::gateway::{self, Credentials, Gateway};

/// The SMSGate account a bound session acts for.
#[derive(Debug)]
pub struct Account {
    /// The name used in logs and to keep accounts apart (the bind's system_id).
    pub name: String,
    pub credentials: Credentials,
}

impl Account {
    pub fn new(name: &str, credentials: Credentials) -> Self {
        Account {
            name: name.to_string(),
            credentials,
        }
    }
}

pub struct Authenticator {
    gateway: Gateway,
    ttl: Duration,
    verified: Mutex<HashMap<Credentials, Instant>>,
}

/// Why a bind was refused: the status for the ESME, a reason for the log.
#[derive(Debug)]
pub struct Refusal {
    pub status: u32,
    pub reason: String,
}

impl Authenticator {
    pub fn new(gateway: Gateway, ttl: Duration) -> Self {
        Authenticator {
            gateway,
            ttl,
            verified: Mutex::new(HashMap::new()),
        }
    }

    pub async fn authenticate(&self, bind: &Bind) -> Result<Arc<Account>, Refusal> {
        if bind.system_id.is_empty() {
            return Err(Refusal {
                status: ESME_RINVSYSID,
                reason: "empty system_id".into(),
            });
        }
        if bind.password.is_empty() {
            return Err(Refusal {
                status: ESME_RINVPASWD,
                reason: "empty password".into(),
            });
        }
        let credentials = Credentials::Basic {
            username: bind.system_id.clone(),
            password: bind.password.clone(),
        };
        if !self.recently_verified(&credentials) {
            self.gateway
                .check_credentials(&credentials)
                .await
                .map_err(|e| Refusal {
                    status: gateway::bind_status(&e),
                    // Clients that cut passwords to 8 characters are the usual cause of a
                    // refusal; the length (never the password) tells an operator so.
                    reason: format!("{e} (password length {})", bind.password.chars().count()),
                })?;
            self.remember(&credentials);
        }
        Ok(Arc::new(Account::new(&bind.system_id, credentials)))
    }

    fn recently_verified(&self, credentials: &Credentials) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified
            .get(credentials)
            .is_some_and(|at| at.elapsed() < self.ttl)
    }

    fn remember(&self, credentials: &Credentials) {
        if self.ttl.is_zero() {
            return;
        }
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        let ttl = self.ttl;
        verified.retain(|_, at| at.elapsed() < ttl);
        verified.insert(credentials.clone(), Instant::now());
    }
}
