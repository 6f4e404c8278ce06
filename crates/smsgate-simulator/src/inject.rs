//! `smsgate-smpp simulator inject-mo`: hands a running simulator an incoming SMS through
//! `POST /simulator/v1/inbox`, so a mobile-originated message can be tried from a terminal.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(clap::Args, Clone, Debug)]
#[command(group(clap::ArgGroup::new("content").required(true).args(["text", "data"])))]
pub struct InjectMo {
    /// The simulator's address (also the Local personality's API base); the cloud
    /// personality's API base (…/3rdparty/v1) works too.
    #[arg(long, default_value = "http://127.0.0.1:3100")]
    pub api: String,
    /// The simulator account whose phone receives the SMS.
    #[arg(long)]
    pub user: String,
    /// The account's password; when given it is sent as HTTP Basic credentials, which the
    /// simulator checks.
    #[arg(long)]
    pub password: Option<String>,
    /// The sender's number (or alphanumeric name).
    #[arg(long)]
    pub from: String,
    /// The phone's own number, reported as the recipient.
    #[arg(long)]
    pub to: Option<String>,
    /// Text content (fires sms:received).
    #[arg(long)]
    pub text: Option<String>,
    /// Binary content as hex digits (fires sms:data-received).
    #[arg(long)]
    pub data: Option<String>,
    /// The SIM slot the SMS arrives on.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub sim: u8,
}

/// What the simulator made of the SMS.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Injected {
    /// The event id the webhooks carry.
    pub id: String,
    pub event: String,
    pub message_id: String,
    /// How many webhooks the event is being delivered to.
    pub webhooks: usize,
}

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} event {} (message {}) sent to {} webhook(s)",
            self.event, self.id, self.message_id, self.webhooks
        )
    }
}

pub async fn inject_mo(args: &InjectMo) -> anyhow::Result<Injected> {
    let mut body = json!({
        "account": args.user,
        "from": args.from,
        "to": args.to,
        "simNumber": args.sim,
    });
    match (&args.text, &args.data) {
        (Some(text), None) => body["text"] = json!(text),
        (None, Some(hex)) => body["data"] = json!(STANDARD.encode(decode_hex(hex)?)),
        _ => bail!("give exactly one of --text and --data"),
    }
    let base = args.api.trim_end_matches('/');
    let base = base.strip_suffix("/3rdparty/v1").unwrap_or(base);
    let url = format!("{base}/simulator/v1/inbox");

    let client = super::events::http_client(Duration::from_secs(30)).map_err(anyhow::Error::msg)?;
    let mut request = client.post(&url).json(&body);
    if let Some(password) = &args.password {
        request = request.basic_auth(&args.user, Some(password));
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("--api: cannot reach {url}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or(text);
        bail!("{url} answered {status}: {message}");
    }
    serde_json::from_str(&text).with_context(|| format!("{url} answered {text:?}"))
}

fn decode_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.is_empty() {
        bail!("--data: no hex digits");
    }
    hex::decode(&digits).with_context(|| format!("--data: {text:?} is not hex bytes"))
}
