//! The monitoring that ships with the server (deploy/prometheus): every metric its rules name
//! is one a running server exports. promtool checks the rules themselves (tests/run).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use regex::Regex;
use smpp_codec::command::{QUERY_SM_RESP, SUBMIT_SM_RESP};
use smpp_codec::status::{ESME_RINVMSGLEN, ESME_ROK};

use crate::client::*;
use crate::support::*;

/// The metric names an expression file uses: recording rules (names with a colon) left out.
fn metric_names(rules: &str) -> BTreeSet<String> {
    let name = Regex::new(r"\b((?:smpp|smsgate|process)_[a-z0-9_]+)\b(:?)").expect("regex");
    name.captures_iter(rules)
        .filter(|c| c[2].is_empty())
        .map(|c| c[1].to_owned())
        .collect()
}

#[tokio::test]
async fn every_metric_the_alert_rules_use_is_exported() {
    let rules_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/smsgate-smpp.rules.yml");
    let rules = fs::read_to_string(&rules_file).expect("read the rules");
    let names = metric_names(&rules);
    assert!(names.len() >= 10, "{names:?}");

    // Traffic that makes every labelled series appear: a bind and a refused one, a submit with
    // a receipt and a refused one, a query and the webhook of the receipt.
    let h = Setup::new().webhooks().step_delay("100ms").start().await;
    let mut esme = h.bound(BindKind::Transceiver).await;
    let mut guesser = h.connect().await;
    let guess = guesser
        .bind(BindKind::Transmitter, DEMO_USER, "wrong-pw")
        .await;
    assert_ne!(guess.status, ESME_ROK, "{guess:?}");
    h.wait_for_registrations(std::time::Duration::from_secs(30))
        .await;
    let id = submit_with_receipt(&mut esme, "491701234567").await;
    let refused = esme.call(submit_sm("491701234567").build()).await;
    refused.expect(SUBMIT_SM_RESP, ESME_RINVMSGLEN, refused.sequence);
    let queried = esme.call(query_sm(&id)).await;
    queried.expect(QUERY_SM_RESP, ESME_ROK, queried.sequence);
    let receipt = esme.receive().await;
    assert_eq!(receipted_id(&receipt), id);

    let exported = h.metrics().await;
    let missing: Vec<_> = names
        .iter()
        .filter(|name| {
            !exported.lines().any(|line| {
                line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
            })
        })
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}\n{exported}");
}
