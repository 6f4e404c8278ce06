//! The `config` and `health` commands and start-up validation.

use std::fs;
use std::time::Duration;

use crate::support::*;

const SECRET: &str = "NeverPrintThisPassword1";

#[test]
fn config_prints_the_effective_configuration_with_passwords_masked() {
    let dir = TempDir::new("config");
    let file = dir.path().join("server.toml");
    fs::write(
        &file,
        format!(
            "[smpp]\nsystem_id = \"FROMFILE\"\n\n\
             [[simulator.accounts]]\nusername = \"alice\"\npassword = \"{SECRET}\"\n"
        ),
    )
    .unwrap();
    let mut cmd = command();
    cmd.arg("config")
        .arg("--config")
        .arg(&file)
        .env("SMPP__WINDOW", "7");
    let (status, stdout, stderr) = run_to_exit(cmd, Duration::from_secs(20));
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stdout.contains(SECRET), "password printed:\n{stdout}");
    assert!(!stderr.contains(SECRET), "password logged:\n{stderr}");
    let shown: toml::Value = toml::from_str(&stdout).expect("the output is TOML");
    assert_eq!(shown["smpp"]["system_id"].as_str(), Some("FROMFILE"));
    assert_eq!(shown["smpp"]["window"].as_integer(), Some(7));
    let account = &shown["simulator"]["accounts"][0];
    assert_eq!(account["username"].as_str(), Some("alice"));
    assert_eq!(account["password"].as_str(), Some("********"));
}

#[test]
fn a_bad_environment_value_names_its_key() {
    for args in [&["config"][..], &["serve"][..]] {
        let mut cmd = command();
        cmd.args(args).env("SMPP__WINDOW", "0");
        let (status, _, stderr) = run_to_exit(cmd, Duration::from_secs(20));
        assert!(!status.success(), "{args:?} accepted SMPP__WINDOW=0");
        assert!(stderr.contains("smpp.window"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_busy_port_names_its_key() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let mut cmd = command();
    cmd.env("SMPP__BIND_ADDRESS", busy.local_addr().unwrap().to_string())
        .env("HTTP__ADDRESS", format!("127.0.0.1:{}", free_port()))
        .env("GATEWAY__API_BASE_URL", "http://127.0.0.1:9/3rdparty/v1");
    let (status, _, stderr) = run_to_exit(cmd, Duration::from_secs(20));
    assert!(!status.success(), "server started on a busy port");
    assert!(stderr.contains("smpp.bind_address"), "stderr: {stderr}");
}

#[tokio::test]
async fn health_says_whether_the_server_on_http_address_is_ready() {
    let h = Setup::new().start().await;
    let mut cmd = command();
    cmd.arg("health").env("HTTP__ADDRESS", h.web.to_string());
    let (status, stdout, stderr) = run_to_exit(cmd, Duration::from_secs(20));
    assert!(status.success(), "{status}: {stdout}{stderr}");
    assert!(
        stdout.contains(&format!("ready: http://{}/health/ready", h.web)),
        "{stdout}"
    );

    // A server bound to every interface is asked on loopback.
    let mut cmd = command();
    cmd.arg("health")
        .env("HTTP__ADDRESS", format!("0.0.0.0:{}", h.web.port()));
    let (status, stdout, stderr) = run_to_exit(cmd, Duration::from_secs(20));
    assert!(status.success(), "{status}: {stdout}{stderr}");

    let port = free_port();
    let mut cmd = command();
    cmd.arg("health")
        .env("HTTP__ADDRESS", format!("127.0.0.1:{port}"));
    let (status, _, stderr) = run_to_exit(cmd, Duration::from_secs(20));
    assert!(!status.success(), "nothing listens on {port}");
    assert!(
        stderr.contains("http.address") && stderr.contains(&format!("127.0.0.1:{port}")),
        "{stderr}"
    );
}
