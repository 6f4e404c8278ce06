//! Several SMPP users on one SMSGate account, as the credential-map plugin sets them up: one
//! set of webhook registrations for the account, each user's receipts to that user only, and
//! incoming SMS to every user of the account.

use std::time::Duration;

use serde_json::json;

use crate::client::*;
use crate::support::*;

/// Generous: webhook calls, plugin calls and fsyncs on a loaded two-core machine.
const WAIT: Duration = Duration::from_secs(30);
/// How long "nothing more comes" is watched for.
const QUIET: Duration = Duration::from_secs(2);

#[tokio::test]
async fn users_of_one_smsgate_account_share_its_webhooks_and_get_their_own_receipts() {
    let plugins = PluginDir::new();
    plugins.install("credential-map", &shops_on_demo_manifest());
    let h = Setup::new()
        .webhooks()
        .step_delay("200ms")
        .plugins(plugins.path())
        .start()
        .await;
    let mut shop1 = h.bound_as("shop1", "shop1pw").await;
    let url = h.wait_for_registrations(WAIT).await;
    let mut shop2 = h.bound_as("shop2", "shop2pw").await;
    // shop2's bind keeps shop1's registrations: they are the account's, and the same.
    shop2.assert_alive().await;
    assert_eq!(h.wait_for_registrations(WAIT).await, url);
    assert_eq!(
        h.sim_requests_starting("DELETE /webhooks").await,
        0,
        "a registration was deleted"
    );

    let id1 = submit_with_receipt(&mut shop1, "491701234567").await;
    let id2 = submit_with_receipt(&mut shop2, "491701234568").await;
    for (esme, id) in [(&mut shop1, &id1), (&mut shop2, &id2)] {
        let receipt = esme.receive().await;
        assert_eq!(&receipted_id(&receipt), id, "{receipt:?}");
        esme.expect_no_deliver_sm(QUIET).await;
    }

    // An incoming SMS reaches every user of the account that takes its SIM: shop1 takes all,
    // shop2 only SIM 2.
    for (sim, shops) in [(2, 2), (1, 1)] {
        let answer = h
            .inject_mo(json!({
                "from": MO_SENDER, "to": MO_RECIPIENT, "text": format!("on SIM {sim}"),
                "simNumber": sim,
            }))
            .await;
        assert_eq!(answer["webhooks"], 1, "{answer}");
        for esme in [&mut shop1, &mut shop2].into_iter().take(shops) {
            let deliver = esme.receive().await;
            assert_eq!(deliver.text(), format!("on SIM {sim}"), "{deliver:?}");
        }
    }
    shop2.expect_no_deliver_sm(QUIET).await;
}
