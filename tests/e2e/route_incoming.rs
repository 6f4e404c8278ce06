//! A route-incoming plugin choosing which SMPP users of one SMSGate account get an incoming
//! SMS: prefix-router's incoming rules send an SMS to a user that SIM matching alone would not
//! pick, drop another, and leave the rest to the SIM matching.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

/// Generous: webhook calls, plugin calls and fsyncs on a loaded two-core machine.
const WAIT: Duration = Duration::from_secs(30);
/// How long "nothing more comes" is watched for.
const QUIET: Duration = Duration::from_secs(2);

/// The phone's number on which shop2's customers write.
const SHOP2_NUMBER: &str = "+4930222222";

/// shop1 and shop2 on the demo SMSGate account (credential-map; shop2 limited to SIM 2), and
/// prefix-router with incoming rules: premium-rate senders are dropped, SMS to shop2's number
/// go to shop2.
fn shops_with_incoming_rules() -> PluginDir {
    let plugins = PluginDir::new();
    plugins.install("credential-map", &shops_on_demo_manifest());
    plugins.install(
        "prefix-router",
        &format!(
            r#"order = 20
timeout = "5s"

[[config.incoming]]
sender = "+4990"
drop = "premium-rate sender"

[[config.incoming]]
recipient = "{SHOP2_NUMBER}"
users = ["shop2"]
"#
        ),
    );
    plugins
}

#[tokio::test]
async fn a_route_incoming_plugin_picks_the_users_of_an_incoming_sms_or_drops_it() {
    let plugins = shops_with_incoming_rules();
    let h = Setup::new()
        .webhooks()
        .plugins(plugins.path())
        .start()
        .await;
    let mut shop1 = h.bound_as("shop1", "shop1pw").await;
    h.wait_for_registrations(WAIT).await;
    let mut shop2 = h.bound_as("shop2", "shop2pw").await;

    // On SIM 1 only shop1 would take it; sent to shop2's number, it is shop2's alone.
    let answer = h
        .inject_mo(json!({
            "from": MO_SENDER, "to": SHOP2_NUMBER, "text": "for shop2", "simNumber": 1,
        }))
        .await;
    assert_eq!(answer["webhooks"], 1, "{answer}");
    let deliver = shop2.receive().await;
    assert_eq!(deliver.text(), "for shop2", "{deliver:?}");
    shop1.expect_no_deliver_sm(QUIET).await;

    // A premium-rate sender: nobody gets it, and the phone is told so with a 2xx, so it does
    // not send it again.
    let answer = h
        .inject_mo(json!({
            "from": "+49900123456", "to": SHOP2_NUMBER, "text": "you won", "simNumber": 2,
        }))
        .await;
    let message_id = answer["messageId"].as_str().expect("a message id");
    h.wait_for_webhook_call("sms:received", message_id, 200, WAIT)
        .await;
    for esme in [&mut shop1, &mut shop2] {
        esme.expect_no_deliver_sm(QUIET).await;
    }
    let log = h.server_log();
    assert!(
        log.contains("incoming SMS dropped by a route-incoming plugin")
            && log.contains("premium-rate sender"),
        "the drop and its reason are not in the log"
    );

    // No rule matches: the SIM matching decides as without the plugin (SIM 1: shop1 only).
    h.inject_mo(json!({
        "from": MO_SENDER, "to": MO_RECIPIENT, "text": "for whoever takes SIM 1", "simNumber": 1,
    }))
    .await;
    let deliver = shop1.receive().await;
    assert_eq!(deliver.text(), "for whoever takes SIM 1", "{deliver:?}");
    shop2.expect_no_deliver_sm(QUIET).await;
}
