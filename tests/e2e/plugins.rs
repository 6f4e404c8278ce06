//! Policy plugins as an operator deploys them: the bundled components copied into a plugin
//! directory with a NAME.toml, the server started on it, and their effect observed where it
//! matters, in the ESME's answers and in the requests the gateway receives.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rusmpp::pdus::SubmitSm;
use rusmpp::values::{Npi, Ton};
use serde_json::{Value, json};
use smpp_codec::command::SUBMIT_SM_RESP;
use smpp_codec::status::{
    CommandStatus, ESME_RBINDFAIL, ESME_RINVDSTADR, ESME_RINVPASWD, ESME_RINVSRCADR, ESME_ROK,
    ESME_RSUBMITFAIL, ESME_RSYSERR,
};

use crate::client::*;
use crate::support::*;

/// The SMSGate account ESMEs reach through credential-map; its password is far over the 8
/// characters SMPP carries.
const TENANT: &str = "tenant-7";
const TENANT_PASSWORD: &str = "Tn7-SMSGate-pass-24chars";

/// submit_sm of a short text from an alphanumeric sender to `destination` of TON `ton`.
fn text(source: &str, ton: u8, destination: &str) -> SubmitSm {
    submit_sm(destination)
        .source_addr_ton(Ton::from(5u8))
        .source_addr_npi(Npi::from(0u8))
        .source_addr(field(source))
        .dest_addr_ton(Ton::from(ton))
        .short_message(octets(b"policy check"))
        .build()
}

/// Submits, expects ESME_ROK, and returns the simulator's record of the message: the account
/// whose credentials the gateway call carried and the request body as received.
async fn delivered_to_gateway(h: &Harness, esme: &mut Client, pdu: SubmitSm) -> Value {
    let resp = esme.call(pdu).await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
    h.sim_message(&resp.message_id()).await
}

/// Submits and expects a refusal with `status`.
async fn refused(esme: &mut Client, pdu: SubmitSm, status: CommandStatus) {
    let resp = esme.call(pdu).await;
    assert_eq!(resp.status, status, "expected {status}: {resp:?}");
    assert!(resp.body.is_empty(), "{resp:?}");
}

async fn bind_status(h: &Harness, system_id: &str, password: &str) -> CommandStatus {
    let mut esme = h.connect().await;
    esme.bind(BindKind::Transmitter, system_id, password)
        .await
        .status
}

async fn bound_as(h: &Harness, system_id: &str, password: &str) -> Client {
    let mut esme = h.connect().await;
    let resp = esme.bind(BindKind::Transmitter, system_id, password).await;
    assert_eq!(
        resp.status, ESME_ROK,
        "bind as {system_id} refused: {resp:?}"
    );
    esme
}

/// Gateway calls of one kind ("GET /devices", "POST /messages") with any status.
async fn gateway_calls(h: &Harness, call: &str) -> u64 {
    h.sim_requests()
        .await
        .iter()
        .filter(|(key, _)| key.starts_with(&format!("{call} ")))
        .map(|(_, count)| count)
        .sum()
}

/// credential-map mapping shop1/short8ch to the tenant. `tail` follows shop1's entry, so it
/// may add keys to that entry and then tables of other users.
fn credential_map(tail: &str) -> String {
    format!(
        r#"order = 10
failure_policy = "fail-closed"

[config]
unknown = "pass"

[config.users.shop1]
password = "short8ch"
smsgate_username = "{TENANT}"
smsgate_password = "{TENANT_PASSWORD}"
{tail}
"#
    )
}

const E164: &str = r#"order = 10

[config]
default_country = "DE"
"#;

#[tokio::test]
async fn credential_map_binds_short_credentials_as_a_long_password_account() {
    assert_eq!(TENANT_PASSWORD.len(), 24);
    let plugins = PluginDir::new();
    plugins.install(
        "credential-map",
        &credential_map(&format!(
            r#"
[config.users.branch]
password = "branch01"
smsgate_username = "{TENANT}"
smsgate_password = "{TENANT_PASSWORD}"
allowed_peers = ["10.0.0.0/8"]
"#
        )),
    );
    let h = Setup::new()
        .account(TENANT, TENANT_PASSWORD)
        .plugins(plugins.path())
        .start()
        .await;

    let mut esme = bound_as(&h, "shop1", "short8ch").await;
    let message = delivered_to_gateway(&h, &mut esme, text("Shop", 1, "491701234567")).await;
    assert_eq!(message["account"], TENANT, "{message:#}");
    assert_eq!(message["request"]["phoneNumbers"], json!(["+491701234567"]));

    // Both refusals are the plugin's own: the gateway is not asked.
    let checks = gateway_calls(&h, "GET /devices").await;
    assert_eq!(bind_status(&h, "shop1", "short8c!").await, ESME_RINVPASWD);
    // The right password from outside the allowed network.
    assert_eq!(bind_status(&h, "branch", "branch01").await, ESME_RBINDFAIL);
    assert_eq!(gateway_calls(&h, "GET /devices").await, checks);

    // A system_id the table does not know binds the default way, with SMSGate credentials.
    let mut esme = bound_as(&h, DEMO_USER, DEMO_PASSWORD).await;
    let message = delivered_to_gateway(&h, &mut esme, text("Shop", 1, "491701234568")).await;
    assert_eq!(message["account"], DEMO_USER, "{message:#}");
    assert_eq!(bind_status(&h, DEMO_USER, "wrong123").await, ESME_RINVPASWD);
}

#[tokio::test]
async fn e164_rewrites_national_numbers_and_refuses_impossible_ones() {
    let plugins = PluginDir::new();
    plugins.install("e164", E164);
    let h = Setup::new().plugins(plugins.path()).start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;

    let message = delivered_to_gateway(&h, &mut esme, text("Shop", 0, "01701234567")).await;
    assert_eq!(
        message["request"]["phoneNumbers"],
        json!(["+491701234567"]),
        "{message:#}"
    );

    refused(&mut esme, text("Shop", 0, "12"), ESME_RINVDSTADR).await;
    assert_eq!(gateway_calls(&h, "POST /messages").await, 1);
    assert_eq!(h.sim_messages().await.len(), 1);
}

#[tokio::test]
async fn prefix_router_picks_device_and_sim_and_denies_prefixes() {
    let plugins = PluginDir::new();
    let sim = Setup::new().plugins(plugins.path()).start_simulator().await;
    // The simulator refuses a deviceId that is not the account's, so the route must name the
    // real one.
    let device = sim.device_id(DEMO_USER, DEMO_PASSWORD).await;
    plugins.install(
        "prefix-router",
        &format!(
            r#"[config]
deny = ["+7"]
deny_status = "0x45"

[[config.routes]]
prefix = "+49"
device_id = "{device}"

[[config.routes]]
prefix = "+4917"
sim_number = 2
"#
        ),
    );
    let h = sim.start_server().await;
    let mut esme = h.bound(BindKind::Transmitter).await;

    let request =
        delivered_to_gateway(&h, &mut esme, text("Shop", 1, "493012345678")).await["request"]
            .clone();
    assert_eq!(request["deviceId"], device.as_str(), "{request:#}");
    assert!(request.get("simNumber").is_none(), "{request:#}");

    // The longer prefix wins; what it leaves out stays the account's default (none here).
    let request =
        delivered_to_gateway(&h, &mut esme, text("Shop", 1, "491701234567")).await["request"]
            .clone();
    assert_eq!(request["simNumber"], 2, "{request:#}");
    assert!(request.get("deviceId").is_none(), "{request:#}");

    let request =
        delivered_to_gateway(&h, &mut esme, text("Shop", 1, "33612345678")).await["request"]
            .clone();
    assert!(
        request.get("deviceId").is_none() && request.get("simNumber").is_none(),
        "{request:#}"
    );

    refused(&mut esme, text("Shop", 1, "79161234567"), ESME_RSUBMITFAIL).await;
    assert_eq!(h.sim_messages().await.len(), 3);
}

#[tokio::test]
async fn sender_allowlist_refuses_senders_not_on_the_list() {
    let plugins = PluginDir::new();
    plugins.install(
        "sender-allowlist",
        "order = 20\n\n[config]\ndefault = [\"Shop\"]\n",
    );
    let h = Setup::new().plugins(plugins.path()).start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;

    delivered_to_gateway(&h, &mut esme, text("Shop", 1, "491701234567")).await;
    refused(&mut esme, text("Evil", 1, "491701234567"), ESME_RINVSRCADR).await;
    assert_eq!(h.sim_messages().await.len(), 1);
}

#[tokio::test]
async fn a_chain_of_all_four_plugins_acts_on_one_submit() {
    let plugins = PluginDir::new();
    let sim = Setup::new()
        .account(TENANT, TENANT_PASSWORD)
        .plugins(plugins.path())
        .start_simulator()
        .await;
    let device = sim.device_id(TENANT, TENANT_PASSWORD).await;
    // credential-map: the bind becomes tenant-7, with the tenant's device as its default.
    plugins.install(
        "credential-map",
        &credential_map(&format!("device_id = \"{device}\"\n")),
    );
    // e164: the national destination becomes E.164 before the router reads it.
    plugins.install("e164", E164);
    // sender-allowlist: the list of account "shop1" (credential-map's account id) applies, not
    // the default.
    plugins.install(
        "sender-allowlist",
        "order = 20\n\n[config]\ndefault = [\"Nobody\"]\n\n\
         [config.accounts.shop1]\nsenders = [\"ShopOne\"]\n",
    );
    // prefix-router: SIM and priority for the rewritten number; the device stays the account's.
    plugins.install(
        "prefix-router",
        "order = 100\n\n[config]\ndeny = [\"+7\"]\n\n\
         [[config.routes]]\nprefix = \"+4917\"\nsim_number = 2\npriority = 100\n",
    );
    let h = sim.start_server().await;
    let mut esme = bound_as(&h, "shop1", "short8ch").await;

    let message = delivered_to_gateway(&h, &mut esme, text("ShopOne", 0, "01701234567")).await;
    assert_eq!(message["account"], TENANT, "{message:#}");
    let request = &message["request"];
    assert_eq!(
        request["phoneNumbers"],
        json!(["+491701234567"]),
        "{message:#}"
    );
    assert_eq!(request["deviceId"], device.as_str(), "{message:#}");
    assert_eq!(request["simNumber"], 2, "{message:#}");
    assert_eq!(request["priority"], 100, "{message:#}");
    assert_eq!(
        request["textMessage"]["text"], "policy check",
        "{message:#}"
    );

    refused(&mut esme, text("Shop", 0, "01701234567"), ESME_RINVSRCADR).await;
    // Denied only once e164 has made the international form out of "00 7 ...".
    refused(
        &mut esme,
        text("ShopOne", 0, "0079161234567"),
        ESME_RINVDSTADR,
    )
    .await;
    assert_eq!(h.sim_messages().await.len(), 1);
}

/// Submits from sender "Evil" with up to `WINDOW` in flight while the plugin directory changes
/// from e164 (which ignores senders) to sender-allowlist (which refuses "Evil"), reloaded by
/// the directory watch when `watch`, by SIGHUP alone otherwise. Every request must be answered
/// exactly once, and everything submitted after the ESME saw the first refusal must be refused.
async fn reload_under_load(watch: bool) {
    const WINDOW: usize = 16;
    const BEFORE_SWAP: usize = 100;
    const AFTER_REFUSAL: usize = 64;
    const AT_LEAST: usize = 300;

    // On a loaded machine a call can miss the 10ms default deadline; with a fail-open policy
    // that would let "Evil" through. The longest deadline keeps the policy what decides.
    const PATIENT: &str = "timeout = \"5s\"\nfailure_policy = \"fail-closed\"\n";
    let plugins = PluginDir::new();
    plugins.install("e164", &format!("{PATIENT}{E164}"));
    let h = Setup::new()
        // Each gateway call takes a while, so the window is really full when the set changes.
        .rule(".", Outcome::Stall("20ms"))
        .env("PLUGINS__WATCH", if watch { "true" } else { "false" })
        .plugins(plugins.path())
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent: Vec<u32> = Vec::new();
    let mut in_flight: HashSet<u32> = HashSet::new();
    let mut status: HashMap<u32, CommandStatus> = HashMap::new();
    let mut swapped = false;
    let mut first_refusal_after: Option<usize> = None;
    loop {
        let enough = first_refusal_after
            .is_some_and(|n| sent.len() >= n + AFTER_REFUSAL && sent.len() >= AT_LEAST);
        while !enough && in_flight.len() < WINDOW {
            let destination = format!("4917{:08}", sent.len());
            let sequence = esme.send(text("Evil", 1, &destination)).await;
            sent.push(sequence);
            in_flight.insert(sequence);
        }
        if in_flight.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal within the deadline after the swap; {} sent",
            sent.len()
        );
        let resp = esme.read().await;
        assert_eq!(resp.command_id, SUBMIT_SM_RESP, "{resp:?}");
        assert!(
            in_flight.remove(&resp.sequence),
            "a second answer, or one to a request never sent: {resp:?}"
        );
        status.insert(resp.sequence, resp.status);
        if resp.status == ESME_RINVSRCADR && first_refusal_after.is_none() {
            first_refusal_after = Some(sent.len());
        }
        if !swapped && status.len() == BEFORE_SWAP {
            assert!(
                status.values().all(|s| *s == ESME_ROK),
                "refused before the swap: {status:?}"
            );
            plugins.remove("e164");
            plugins.install(
                "sender-allowlist",
                &format!("{PATIENT}[config]\ndefault = [\"Shop\"]\n"),
            );
            if !watch {
                h.sighup();
            }
            swapped = true;
        }
    }
    match esme.try_read(Duration::from_millis(300)).await {
        Err(ReadError::Timeout) => {}
        other => panic!("something after the last answer: {other:?}"),
    }

    assert!(swapped, "the swap happened");
    let first_refusal_after = first_refusal_after.expect("a refusal was seen");
    assert_eq!(status.len(), sent.len());
    // Requests in flight while the set changed may get either answer; once the ESME has seen
    // the new policy, nothing may be decided by the old one.
    for (i, sequence) in sent.iter().enumerate() {
        let got = status[sequence];
        if i >= first_refusal_after {
            assert_eq!(
                got, ESME_RINVSRCADR,
                "request {i} sent after a refusal was seen: {got}"
            );
        } else {
            assert!(
                got == ESME_ROK || got == ESME_RINVSRCADR,
                "request {i}: {got}"
            );
        }
    }
    let accepted = status.values().filter(|s| **s == ESME_ROK).count();
    assert_eq!(
        h.sim_messages().await.len(),
        accepted,
        "the gateway got other messages than the ESME was told were accepted"
    );

    // The new set alone: an allowed sender gets through, and national numbers are no longer
    // rewritten, so the gateway refuses this one.
    delivered_to_gateway(&h, &mut esme, text("Shop", 1, "491701234567")).await;
    refused(&mut esme, text("Shop", 0, "01701234567"), ESME_RINVDSTADR).await;

    let log = h.server_log();
    assert!(log.contains("plugins reloaded"), "no reload logged");
    let cause = if watch { "directory changed" } else { "SIGHUP" };
    assert!(
        log.contains(&format!("reloading plugins cause={cause:?}")),
        "no reload for {cause:?} logged"
    );
    esme.assert_alive().await;
}

#[tokio::test]
async fn sighup_swaps_the_plugins_without_losing_a_submit_in_flight() {
    reload_under_load(false).await;
}

#[tokio::test]
async fn a_changed_plugin_directory_is_reloaded_without_losing_a_submit_in_flight() {
    reload_under_load(true).await;
}

#[test]
fn a_plugin_that_breaks_the_contract_stops_the_start() {
    let plugins = PluginDir::new();
    // A good plugin beside it does not save the set: it loads completely or not at all.
    plugins.install("e164", E164);
    plugins.install("wrong-world", "");
    let mut cmd = command();
    cmd.env("PLUGINS__DIR", plugins.path())
        .env("SMPP__BIND_ADDRESS", format!("127.0.0.1:{}", free_port()))
        .env("HTTP__ADDRESS", format!("127.0.0.1:{}", free_port()))
        .env("GATEWAY__API_BASE_URL", "http://127.0.0.1:9/3rdparty/v1");
    let (status, _, stderr) = run_to_exit(cmd, Duration::from_secs(90));
    assert_eq!(status.code(), Some(1), "{status}; stderr:\n{stderr}");
    assert!(
        stderr.contains("wrong-world.wasm")
            && stderr.contains("does not match the smsgate:smpp-plugin@0.2.0 contract"),
        "stderr:\n{stderr}"
    );
}

fn looping(policy: &str) -> String {
    format!(
        r#"failure_policy = "{policy}"
timeout = "10ms"

[config]
hooks = "transform-submit"
transform-submit = "loop"
"#
    )
}

/// A submit through a transform-submit hook that never returns: answered `status` well within
/// a second, every time, with the server still serving. The plugin directory is returned too,
/// since removing it would make the server reload an empty set.
async fn looping_plugin_answers(policy: &str, status: CommandStatus) -> (Harness, PluginDir) {
    let plugins = PluginDir::new();
    plugins.install("misbehave", &looping(policy));
    let mut h = Setup::new().plugins(plugins.path()).start().await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    for i in 0..3 {
        let started = Instant::now();
        let resp = esme
            .call(text("Shop", 1, &format!("4917012345{i:02}")))
            .await;
        let took = started.elapsed();
        assert_eq!(resp.status, status, "{resp:?}");
        assert!(took < Duration::from_secs(1), "answered after {took:?}");
    }
    esme.assert_alive().await;
    assert!(h.server_alive());
    assert!(
        h.server_log()
            .contains("did not finish within its 10ms deadline"),
        "the deadline was not logged"
    );
    (h, plugins)
}

#[tokio::test]
async fn a_looping_fail_open_plugin_lets_the_message_through_unchanged() {
    let (h, _plugins) = looping_plugin_answers("fail-open", ESME_ROK).await;
    let messages = h.sim_messages().await;
    assert_eq!(messages.len(), 3);
    assert!(
        messages
            .iter()
            .all(|m| m["request"]["textMessage"]["text"] == "policy check"),
        "{messages:#?}"
    );
}

#[tokio::test]
async fn a_looping_fail_closed_plugin_refuses_with_a_system_error() {
    let (h, _plugins) = looping_plugin_answers("fail-closed", ESME_RSYSERR).await;
    assert_eq!(gateway_calls(&h, "POST /messages").await, 0);
}
