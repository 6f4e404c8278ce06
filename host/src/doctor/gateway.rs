//! Does the gateway answer, how fast, which API it serves (an SMSGate server, or the phone's own
//! in Local mode), does its clock agree with ours (webhook signatures allow five minutes either
//! way), and does it accept the account an ESME would bind with.

use std::time::{Duration, Instant};

use super::{Check, took};
use crate::config::Config;
use crate::gateway::{Api, Credentials, Decision, Gateway, GatewayError, GatewayMode};

/// Beyond this a gateway answer is slow enough for ESMEs to notice in their submit latency.
const SLOW: Duration = Duration::from_secs(2);
/// SMSGate's webhook signatures carry a timestamp that must be within five minutes.
const SIGNATURE_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
const CLOCK_WARNING: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// The checks, and the API the gateway serves when that could be told (the webhook checks
/// depend on it).
pub async fn check(config: &Config, account: Option<&Credentials>) -> (Vec<Check>, Option<Api>) {
    let base = config.gateway.api_base_url.trim_end_matches('/');
    let mut checks = Vec::new();
    match health(base, config.gateway.timeout).await {
        Ok((answer, clock)) => {
            checks.push(answer);
            checks.push(clock);
        }
        Err(unreachable) => checks.push(unreachable),
    }
    let gateway = match Gateway::new(&config.gateway.api_base_url, config.gateway.timeout, 0) {
        Ok(gateway) => gateway.with_mode(config.gateway.mode),
        Err(e) => {
            checks.push(Check::failed(
                "gateway.api_base_url",
                format!("{e:#}"),
                "set a valid URL",
            ));
            return (checks, None);
        }
    };
    let (mode, api) = mode(config.gateway.mode, gateway.decide().await);
    checks.push(mode);
    if let Some(api) = api {
        checks.push(credentials(&gateway, api, account).await);
    }
    (checks, api)
}

/// What `gateway.mode` says against what the gateway's answers show.
fn mode(setting: GatewayMode, decided: Result<Decision, GatewayError>) -> (Check, Option<Api>) {
    const KEY: &str = "gateway.mode";
    let set = match setting {
        GatewayMode::Auto => None,
        GatewayMode::Cloud => Some(Api::Cloud),
        GatewayMode::Local => Some(Api::Local),
    };
    match (set, decided) {
        (None, Ok(decision)) => (
            Check::ok(KEY, format!("auto: {} — {}", decision.api, decision.reason)),
            Some(decision.api),
        ),
        (None, Err(e)) => (
            Check::failed(
                KEY,
                format!("auto, and the gateway's API could not be told: {e}"),
                "set gateway.mode = \"cloud\" (api.sms-gate.app or a Private server) or \"local\" (the phone's own API)",
            ),
            None,
        ),
        (Some(set), Ok(decision)) if set != decision.api => (
            Check::failed(
                KEY,
                format!(
                    "{set}, but the gateway serves the {} API: {}",
                    decision.api, decision.reason
                ),
                format!(
                    "set gateway.mode = \"{}\" or \"auto\", or point gateway.api_base_url at the gateway meant",
                    decision.api
                ),
            ),
            Some(set),
        ),
        (Some(set), Ok(decision)) => (
            Check::ok(
                KEY,
                format!("{set}, as the gateway shows: {}", decision.reason),
            ),
            Some(set),
        ),
        (Some(set), Err(e)) => (
            Check::ok(
                KEY,
                format!("{set} (set; the gateway's answers could not confirm it: {e})"),
            ),
            Some(set),
        ),
    }
}

/// `GET {api_base_url}/health`, which needs no credentials; any HTTP answer shows the
/// gateway is reachable, and its `Date` header is the gateway's clock.
async fn health(base: &str, timeout: Duration) -> Result<(Check, Check), Check> {
    const KEY: &str = "gateway.api_base_url";
    let client = crate::tls::http_client()
        .timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|e| Check::failed(KEY, e.to_string(), "report this as a bug"))?;
    let url = format!("{base}/health");
    let sent = chrono::Utc::now();
    let started = Instant::now();
    let response = client.get(&url).send().await.map_err(|e| {
        Check::failed(
            KEY,
            format!("{url}: no answer: {}", crate::gateway::error_chain(&e)),
            "check the URL, DNS, and that this host may make outgoing HTTPS connections (firewall, proxy)",
        )
    })?;
    let elapsed = started.elapsed();
    let midway = sent + chrono::TimeDelta::from_std(elapsed / 2).unwrap_or_default();
    let saw = format!(
        "{url}: HTTP {} in {}",
        response.status().as_u16(),
        took(elapsed)
    );
    let answer = if elapsed > SLOW {
        Check::warning(
            KEY,
            saw,
            "every bind and submit waits this long; check the network path to the gateway",
        )
    } else {
        Check::ok(KEY, saw)
    };
    let date = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok());
    Ok((answer, clock(date.map(|d| d.to_utc()), midway)))
}

fn clock(
    gateway: Option<chrono::DateTime<chrono::Utc>>,
    ours: chrono::DateTime<chrono::Utc>,
) -> Check {
    const NAME: &str = "clock";
    let Some(gateway) = gateway else {
        return Check::skipped(
            NAME,
            "the gateway's answer has no Date header",
            "compare this host's clock with NTP by hand",
        );
    };
    let offset = ours - gateway;
    // The Date header has whole seconds.
    let saw = format!(
        "{:+} s against the gateway's Date header",
        offset.num_seconds()
    );
    if offset.abs() > SIGNATURE_SKEW {
        Check::failed(
            NAME,
            saw,
            "webhook signatures more than 5 minutes off are refused: synchronise this host's clock (NTP)",
        )
    } else if offset.abs() > CLOCK_WARNING {
        Check::warning(NAME, saw, "synchronise this host's clock (NTP)")
    } else {
        Check::ok(NAME, saw)
    }
}

/// The bind check itself (`GET /devices`, or `GET /device` on the phone) with the account
/// given by `--account`.
async fn credentials(gateway: &Gateway, api: Api, account: Option<&Credentials>) -> Check {
    const NAME: &str = "account";
    let Some(account) = account else {
        return Check::skipped(
            NAME,
            "no account given",
            "pass --account USER[:PASSWORD] to try the credentials an ESME binds with",
        );
    };
    let user = match account {
        Credentials::Basic { username, .. } => username.as_str(),
        Credentials::Bearer { .. } => "token",
    };
    let (devices, whose) = match api {
        Api::Cloud => (
            "GET /devices",
            "the username and password the SMSGate app shows (Cloud) or your server's account",
        ),
        Api::Local => (
            "GET /device",
            "the username and password the app shows under Local Server",
        ),
    };
    let started = Instant::now();
    match gateway.check_credentials(account).await {
        Ok(()) => Check::ok(
            NAME,
            format!(
                "{user}: accepted by {devices} in {}",
                took(started.elapsed())
            ),
        ),
        Err(GatewayError::Http { status, message })
            if status.as_u16() == 401 || status.as_u16() == 403 =>
        {
            Check::failed(
                NAME,
                format!(
                    "{user}: the gateway refused the credentials ({status}{})",
                    crate::gateway::explained(&message)
                ),
                format!("use {whose}; binds with these fail with ESME_RINVPASWD"),
            )
        }
        Err(e) => Check::failed(NAME, format!("{user}: {e}"), "see the gateway check above"),
    }
}
