//! The monitoring that ships with the server (deploy/): every metric its alert rules and its
//! Grafana dashboard name is one a running server exports, and every recording rule the
//! dashboard uses is defined. promtool checks the rules themselves (tests/run).

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

/// The queries of the dashboard's panels.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().expect("targets"))
        .map(|target| target["expr"].as_str().expect("expr").to_owned())
        .collect()
}

fn deploy_file(path: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path);
    fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

#[tokio::test]
async fn every_metric_the_alerts_and_the_dashboard_use_is_exported() {
    let rules = deploy_file("prometheus/smsgate-smpp.rules.yml");
    let dashboard: serde_json::Value =
        serde_json::from_str(&deploy_file("grafana/smsgate-smpp.json")).expect("dashboard JSON");
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 10, "{queries:?}");
    let recorded: BTreeSet<&str> = Regex::new(r"record: (\S+)")
        .expect("regex")
        .captures_iter(&rules)
        .map(|c| c.get(1).expect("name").as_str())
        .collect();
    let recording_use = Regex::new(r"smpp_server:[a-z0-9_:]+").expect("regex");
    for query in &queries {
        for used in recording_use.find_iter(query) {
            assert!(
                recorded.contains(used.as_str()),
                "the dashboard uses {} which no rule records",
                used.as_str()
            );
        }
    }
    let mut names = metric_names(&rules);
    names.extend(queries.iter().flat_map(|q| metric_names(q)));
    assert!(names.len() >= 10, "{names:?}");

    // Traffic that makes every labelled series appear: a bind and a refused one, a submit with
    // a receipt and a refused one, a query and the webhook of the receipt, through a plugin.
    let plugins = PluginDir::new();
    plugins.install(
        "misbehave",
        "[config]\nhooks = \"transform-submit,route\"\n",
    );
    let h = Setup::new()
        .webhooks()
        .step_delay("100ms")
        .plugins(plugins.path())
        .start()
        .await;
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
    // The submit the server refused itself (no text) never reached the plugin.
    for line in [
        "smpp_plugin_calls_total{hook=\"transform-submit\",plugin=\"misbehave\"} 1",
        "smpp_plugin_failures_total{hook=\"transform-submit\",plugin=\"misbehave\"} 0",
    ] {
        assert!(exported.contains(line), "missing {line} in\n{exported}");
    }
}
