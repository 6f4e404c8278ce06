//! The gateway's API told from its answers: against the phone's own API (SMSGate's Local mode)
//! the server binds with `GET /device`, and a `gateway.mode` that names the wrong API is a
//! precise bind failure rather than a mystery. The other paths run against both APIs through
//! `SMSGATE_E2E_GATEWAY=local` (tests/run).

use smpp_codec::status::{ESME_RBINDFAIL, ESME_ROK};

use crate::client::*;
use crate::support::*;

#[tokio::test]
async fn the_server_tells_the_phone_from_its_health_answer_and_binds_with_get_device() {
    let h = Setup::new().personality(Personality::Local).start().await;
    let mut esme = h.connect().await;
    let resp = esme
        .bind(BindKind::Transmitter, DEMO_USER, DEMO_PASSWORD)
        .await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}");

    let requests = h.sim_requests().await;
    assert_eq!(requests.get("GET /device 200"), Some(&1), "{requests:#?}");
    assert!(
        requests.keys().all(|key| !key.starts_with("GET /devices")),
        "{requests:#?}"
    );
    // Told once, at start-up, from the checks only a phone reports (the other look is the
    // harness's, waiting for the simulator).
    assert_eq!(requests.get("GET /health 200"), Some(&2), "{requests:#?}");
    let log = h.server_log();
    assert!(
        log.lines().any(|line| line.contains("gateway mode")
            && line.contains("mode=local")
            && line.contains("battery:level")),
        "{log}"
    );
}

#[tokio::test]
async fn a_gateway_mode_naming_the_wrong_api_fails_binds_as_a_bind_failure() {
    let h = Setup::new()
        .personality(Personality::Local)
        .env("GATEWAY__MODE", "cloud")
        .start()
        .await;
    let mut esme = h.connect().await;
    let resp = esme
        .bind(BindKind::Transmitter, DEMO_USER, DEMO_PASSWORD)
        .await;
    // The phone has no `GET /devices`: not a password problem, and not an outage.
    assert_eq!(resp.status, ESME_RBINDFAIL, "{resp:?}");
    assert_eq!(h.sim_request_count("GET /devices 404").await, 1);
    // Only the harness's look: a mode that is set is not second-guessed.
    assert_eq!(h.sim_request_count("GET /health 200").await, 1);
}
