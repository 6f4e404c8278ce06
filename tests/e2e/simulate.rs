//! `serve --simulate`: the server on its embedded simulator, where `simulator.listen` says.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use smpp_codec::status::ESME_ROK;

use crate::client::BindKind;
use crate::support::*;

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn bind_demo(server: &Simulated) {
    let mut esme = connect_smpp(server.smpp).await;
    let resp = esme
        .bind(BindKind::Transmitter, DEMO_USER, DEMO_PASSWORD)
        .await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");
}

/// A bind's credentials are checked with `GET /devices` on the server's gateway, so the
/// simulator that counts the check is the one the server uses.
async fn credential_checks_at(simulator: SocketAddr) -> u64 {
    requests_at(simulator, "GET /devices 200").await
}

async fn requests_at(simulator: SocketAddr, key: &str) -> u64 {
    let url = format!("http://{simulator}/simulator/v1/requests");
    let requests: BTreeMap<String, u64> = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    requests.get(key).copied().unwrap_or(0)
}

#[tokio::test]
async fn serve_simulate_can_play_the_phone_of_local_mode() {
    let address = loopback(free_port());
    let server = start_simulated_with(address, &[("SIMULATOR__MODE", "local")]).await;
    // The phone's API is at the root and reports the phone's checks.
    let health: serde_json::Value = reqwest::get(format!("http://{address}/health"))
        .await
        .and_then(|r| r.error_for_status())
        .expect("GET /health")
        .json()
        .await
        .expect("health is JSON");
    assert!(health["checks"]["battery:level"].is_object(), "{health}");
    bind_demo(&server).await;
    assert_eq!(requests_at(address, "GET /device 200").await, 1);
    assert_eq!(requests_at(address, "GET /devices 200").await, 0);
}

#[tokio::test]
async fn two_servers_serve_their_simulators_on_their_own_simulator_listen() {
    let (a, b) = (loopback(free_port()), loopback(free_port()));
    let (first, second) = tokio::join!(start_simulated(a), start_simulated(b));
    for address in [a, b] {
        let health = format!("http://{address}/3rdparty/v1/health");
        let status = reqwest::get(&health).await.expect(&health).status();
        assert!(status.is_success(), "{health}: {status}");
    }
    bind_demo(&first).await;
    assert_eq!(
        (credential_checks_at(a).await, credential_checks_at(b).await),
        (1, 0)
    );
    bind_demo(&second).await;
    assert_eq!(
        (credential_checks_at(a).await, credential_checks_at(b).await),
        (1, 1)
    );

    // As before the setting existed: a taken address gives way to a free port.
    let third = start_simulated(a).await;
    bind_demo(&third).await;
    assert_eq!(credential_checks_at(a).await, 1);
}
