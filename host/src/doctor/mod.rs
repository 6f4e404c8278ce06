//! `smsgate-smpp doctor`: the troubleshooting list operators otherwise work through by hand —
//! cannot connect, binds fail, receipts never arrive because the phones cannot reach the
//! webhook URL, TLS fails — checked from the configuration, against the gateway and against the
//! running server. Every check says what it saw and, when something is wrong, how to fix it.

mod gateway;
mod listen;
mod plugins;
mod storage;
mod tls;
mod webhooks;

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::gateway::Credentials;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but not the way a deployment should.
    Warning,
    Failed,
    /// Could not be checked with what was given (e.g. no `--account`).
    Skipped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        })
    }
}

/// One line of the report: `check` names what was looked at, mostly a configuration key.
#[derive(Debug, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub saw: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn ok(check: impl Into<String>, saw: impl Into<String>) -> Check {
        Check::new(check, Status::Ok, saw, None::<String>)
    }

    fn warning(check: impl Into<String>, saw: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(check, Status::Warning, saw, Some(fix))
    }

    fn failed(check: impl Into<String>, saw: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(check, Status::Failed, saw, Some(fix))
    }

    fn skipped(check: impl Into<String>, saw: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(check, Status::Skipped, saw, Some(fix))
    }

    fn new(
        check: impl Into<String>,
        status: Status,
        saw: impl Into<String>,
        fix: Option<impl Into<String>>,
    ) -> Check {
        Check {
            check: check.into(),
            status,
            saw: saw.into(),
            fix: fix.map(Into::into),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<8} {:<28} {}", self.status, self.check, self.saw)?;
        match &self.fix {
            Some(fix) => write!(f, " — {fix}"),
            None => Ok(()),
        }
    }
}

/// Runs every check, in the order an operator would go through them: can ESMEs connect, does
/// TLS work, does the gateway answer and accept the account, can the phones post back, can the
/// server keep what it accepts, do the plugins load, is the server running.
pub async fn examine(config: &Config, account: Option<&Credentials>) -> Vec<Check> {
    let running = crate::probe::ready(config).await;
    let mut checks = listen::check(config, running.is_ok());
    checks.extend(tls::check(config));
    let (gateway, api) = gateway::check(config, account).await;
    checks.extend(gateway);
    checks.extend(webhooks::check(config, api).await);
    checks.extend(storage::check(config).await);
    checks.extend(plugins::check(config));
    checks.push(match running {
        Ok(url) => Check::ok("running server", format!("{url} answers ready")),
        Err(e) => Check::warning(
            "running server",
            format!("{e:#}"),
            "start it (`smsgate-smpp serve`) if it should be running; the other checks stand on their own",
        ),
    });
    checks
}

/// The JSON report of `--json`: the checks and how many of each status.
pub fn to_json(checks: &[Check]) -> serde_json::Value {
    let count = |status| checks.iter().filter(|c| c.status == status).count();
    serde_json::json!({
        "checks": checks,
        "failed": count(Status::Failed),
        "warnings": count(Status::Warning),
    })
}

/// "1.2 s" or "85 ms": what a person reads fastest.
fn took(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{:.1} s", duration.as_secs_f64())
    } else {
        format!("{} ms", duration.as_millis())
    }
}
