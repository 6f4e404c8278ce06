//! Which API stands behind `gateway.api_base_url`: an SMSGate server (Cloud, or a Private server
//! running the same software) or the phone's own (Local mode). They share most routes and bodies
//! but not all, and the phone serves no cancel; `gateway.mode` names it, or the server tells
//! them apart from the unauthenticated health answer, once per base URL.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use reqwest::Url;
use serde::{Deserialize, Serialize};

/// `gateway.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayMode {
    /// Told from the gateway's answers the first time it is needed.
    #[default]
    Auto,
    /// SMSGate's server: api.sms-gate.app, or a Private server (`…/3rdparty/v1`).
    Cloud,
    /// The phone's own API on the LAN (`http://<phone-ip>:8080`).
    Local,
}

impl fmt::Display for GatewayMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            GatewayMode::Auto => "auto",
            GatewayMode::Cloud => "cloud",
            GatewayMode::Local => "local",
        })
    }
}

/// The API a gateway serves, once known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    Cloud,
    Local,
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Api::Cloud => "cloud",
            Api::Local => "local",
        })
    }
}

/// The API and what showed it, for the start-up log and `doctor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub api: Api,
    pub reason: String,
}

/// Check names only the phone's health answer has (the app's `HealthService`); an SMSGate
/// server reports on itself (`db:ping`).
const PHONE_CHECKS: [&str; 3] = ["battery:", "connection:", "messages:"];

/// SMSGate servers serve their API under this path; the phone serves it at the root.
const SERVER_API_PATH: &str = "/3rdparty/v1";

/// What the base URL alone tells: only SMSGate servers put their API under `/3rdparty/v1`.
pub(super) fn from_url(base: &Url) -> Option<Decision> {
    base.path()
        .trim_end_matches('/')
        .ends_with(SERVER_API_PATH)
        .then(|| Decision {
            api: Api::Cloud,
            reason: format!(
                "the URL's path ends in {SERVER_API_PATH}, where SMSGate servers serve their API"
            ),
        })
}

/// What `GET /health` answered (any status: a phone in trouble answers 500 with the same
/// body). `None` when the answer names no checks to tell by.
pub(super) fn from_health(body: &[u8]) -> Option<Decision> {
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    let checks: Vec<&str> = answer
        .get("checks")?
        .as_object()?
        .keys()
        .map(String::as_str)
        .collect();
    let phone: Vec<&str> = checks
        .iter()
        .copied()
        .filter(|name| PHONE_CHECKS.iter().any(|prefix| name.starts_with(prefix)))
        .collect();
    if !phone.is_empty() {
        return Some(Decision {
            api: Api::Local,
            reason: format!(
                "GET /health lists the phone's checks ({})",
                phone.join(", ")
            ),
        });
    }
    (!checks.is_empty()).then(|| Decision {
        api: Api::Cloud,
        reason: format!(
            "GET /health lists a server's checks ({})",
            checks.join(", ")
        ),
    })
}

/// Decisions by base URL, shared by every client made from one configuration: the accounts a
/// plugin points at other gateways each get a client of their own, and one look per gateway is
/// enough.
#[derive(Clone, Default)]
pub(super) struct Decided(Arc<Mutex<HashMap<Url, Api>>>);

impl Decided {
    pub(super) fn get(&self, base: &Url) -> Option<Api> {
        self.lock().get(base).copied()
    }

    pub(super) fn insert(&self, base: &Url, api: Api) {
        self.lock().insert(base.clone(), api);
    }

    /// Nothing can leave the map half-changed, so a poisoned lock is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Url, Api>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_known_by_their_path() {
        for url in [
            "https://api.sms-gate.app/3rdparty/v1",
            "https://sms.example.com/api/3rdparty/v1/",
        ] {
            let decision = from_url(&Url::parse(url).unwrap()).expect(url);
            assert_eq!(decision.api, Api::Cloud);
        }
        assert_eq!(
            from_url(&Url::parse("http://192.168.1.20:8080").unwrap()),
            None
        );
    }

    #[test]
    fn the_health_answer_tells_a_phone_from_a_server() {
        let phone = br#"{"status":"pass","version":"1.40.0","releaseId":1,
            "checks":{"battery:level":{"observedValue":94,"status":"pass"},
                      "connection:status":{"observedValue":1,"status":"pass"}}}"#;
        let decision = from_health(phone).unwrap();
        assert_eq!(decision.api, Api::Local);
        assert!(
            decision.reason.contains("battery:level"),
            "{}",
            decision.reason
        );

        let server = br#"{"status":"pass","version":"v1.17.0","checks":{"db:ping":{"observedValue":0,"status":"pass"}}}"#;
        assert_eq!(from_health(server).unwrap().api, Api::Cloud);

        for unknown in [
            &b"{}"[..],
            b"not json",
            br#"{"checks":{}}"#,
            br#"{"checks":[]}"#,
        ] {
            assert_eq!(from_health(unknown), None);
        }
    }
}
