//! `smsgate-smpp doctor` beside a running server and its simulator: a sound set-up passes, and
//! each trouble operators ask about — a webhook URL the phones cannot reach, a missing key file,
//! an expired certificate, wrong credentials, a broken plugin — fails its own check, says what
//! it saw and how to fix it, and makes the command exit 1.

use std::fs;
use std::time::Duration;

use chrono::Datelike;
use serde_json::Value;

use crate::support::*;

/// Runs `doctor --json ARGS` with the server's own environment plus `extra`; its success and
/// its report.
fn doctor(h: &Harness, extra: &[(&str, &str)], args: &[&str]) -> (bool, Value) {
    let mut cmd = command();
    for (key, value) in h.server_env() {
        cmd.env(key, value);
    }
    for (key, value) in extra {
        cmd.env(key, value);
    }
    cmd.arg("doctor").arg("--json").args(args);
    let (status, out, err) = run_to_exit(cmd, Duration::from_secs(90));
    let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (status.success(), report)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report:#}"))
}

fn assert_status(report: &Value, name: &str, status: &str) -> String {
    let found = check(report, name);
    assert_eq!(found["status"], status, "{found:#}");
    found["saw"].as_str().expect("saw").to_owned()
}

#[tokio::test]
async fn a_sound_set_up_passes_every_check_that_matters() {
    let h = Setup::new().webhooks().start().await;
    let (passed, report) = doctor(
        &h,
        &[],
        &["--account", &format!("{DEMO_USER}:{DEMO_PASSWORD}")],
    );
    assert!(passed, "{report:#}");
    assert_eq!(report["failed"], 0);
    assert!(assert_status(&report, "account", "ok").starts_with("demo: accepted"));
    assert_status(&report, "gateway.api_base_url", "ok");
    assert_status(&report, "clock", "ok");
    assert_status(&report, "gateway.webhook_base_url", "ok");
    assert_status(&report, "webhook reachability", "ok");
    assert_status(&report, "delivery.data_dir", "ok");
    assert_status(&report, "plugins.dir", "ok");
    assert_status(&report, "running server", "ok");
    // Loopback listeners work here but not for ESMEs elsewhere: a warning, not a failure.
    let smpp = assert_status(&report, "smpp.bind_address", "warning");
    assert!(smpp.contains("in use by the running server"), "{smpp}");
}

#[tokio::test]
async fn a_webhook_url_on_a_private_address_fails_with_the_fix() {
    let h = Setup::new().start().await;
    let (passed, report) = doctor(
        &h,
        &[("GATEWAY__WEBHOOK_BASE_URL", "https://192.168.1.20:8443")],
        &[],
    );
    assert!(!passed);
    let saw = assert_status(&report, "gateway.webhook_base_url", "failed");
    assert!(saw.contains("192.168.1.20"), "{saw}");
    assert!(
        check(&report, "gateway.webhook_base_url")["fix"]
            .as_str()
            .unwrap()
            .contains("public address")
    );
    // Without credentials the account check is skipped, not failed.
    assert_status(&report, "account", "skipped");
}

#[tokio::test]
async fn wrong_credentials_fail_the_account_check() {
    let h = Setup::new().start().await;
    let (passed, report) = doctor(&h, &[], &["--account", "demo:not-the-password"]);
    assert!(!passed);
    let saw = assert_status(&report, "account", "failed");
    assert!(saw.contains("refused the credentials"), "{saw}");
    assert!(
        !saw.contains("not-the-password"),
        "the password is never shown: {saw}"
    );
}

#[tokio::test]
async fn a_missing_key_file_and_an_expired_certificate_fail_the_tls_check() {
    let h = Setup::new().start().await;
    let dir = TempDir::new("doctor-tls");
    let (cert, key) = certificate(&dir, "old", (2020, 1, 1), (2021, 1, 1));

    let missing = dir.path().join("missing.key");
    let (passed, report) = doctor(
        &h,
        &[
            ("SMPP__TLS_CERT", cert.as_str()),
            ("SMPP__TLS_KEY", missing.to_str().unwrap()),
        ],
        &[],
    );
    assert!(!passed);
    let saw = assert_status(&report, "smpp.tls_cert", "failed");
    assert!(
        saw.contains("smpp.tls_key") && saw.contains("missing.key"),
        "{saw}"
    );

    let (passed, report) = doctor(
        &h,
        &[
            ("SMPP__TLS_CERT", cert.as_str()),
            ("SMPP__TLS_KEY", key.as_str()),
        ],
        &[],
    );
    assert!(!passed);
    let saw = assert_status(&report, "smpp.tls_cert", "failed");
    assert!(saw.contains("expired on 2021-01-01"), "{saw}");

    let soon = chrono::Utc::now() + chrono::TimeDelta::days(10);
    let (cert, key) = certificate(
        &dir,
        "soon",
        (2024, 1, 1),
        (soon.year(), soon.month() as u8, soon.day() as u8),
    );
    let (_, report) = doctor(
        &h,
        &[
            ("SMPP__TLS_CERT", cert.as_str()),
            ("SMPP__TLS_KEY", key.as_str()),
        ],
        &[],
    );
    let saw = assert_status(&report, "smpp.tls_cert", "warning");
    assert!(saw.contains("valid until"), "{saw}");
}

#[tokio::test]
async fn a_broken_plugin_fails_the_plugin_check_naming_the_file() {
    let h = Setup::new().start().await;
    let plugins = PluginDir::new();
    fs::write(plugins.path().join("broken.wasm"), b"\0asm but not really").unwrap();
    let (passed, report) = doctor(
        &h,
        &[("PLUGINS__DIR", plugins.path().to_str().unwrap())],
        &[],
    );
    assert!(!passed);
    let saw = assert_status(&report, "plugins.dir", "failed");
    assert!(saw.contains("broken.wasm"), "{saw}");
}

/// A self-signed certificate for localhost valid between the two dates; the PEM files' paths.
fn certificate(
    dir: &TempDir,
    name: &str,
    from: (i32, u8, u8),
    until: (i32, u8, u8),
) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
    let cert = params.self_signed(&key).expect("certificate");
    let cert_path = dir.path().join(format!("{name}.crt"));
    let key_path = dir.path().join(format!("{name}.key"));
    fs::write(&cert_path, cert.pem()).expect("write certificate");
    fs::write(&key_path, key.serialize_pem()).expect("write key");
    (
        cert_path.to_string_lossy().into_owned(),
        key_path.to_string_lossy().into_owned(),
    )
}
