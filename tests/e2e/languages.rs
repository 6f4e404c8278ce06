//! Plugins written in three languages in one server: the bundled e164 (Rust), the Python example
//! (text-rewrite, componentize-py) and the JavaScript example (sim-router, ComponentizeJS),
//! chained on one message. The gateway must see the change each one makes.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use rusmpp::values::{Npi, Ton};
use smpp_codec::status::ESME_ROK;

use crate::client::*;
use crate::support::*;

/// A component that carries an interpreter (12-18 MB) compiles in seconds on a quiet machine,
/// but both at once beside the other tests take much longer when the artifact cache is cold
/// (tests/run warms it with `plugin check`).
const START_TIMEOUT: Duration = Duration::from_secs(600);

/// An example's component and NAME.toml, where its `build` script writes them; built once per
/// test process when missing (under a bare `cargo test`).
fn example(name: &str) -> (PathBuf, PathBuf) {
    let dir = target_dir().join("examples");
    let files = |name: &str| {
        (
            dir.join(format!("{name}.wasm")),
            dir.join(format!("{name}.toml")),
        )
    };
    static BUILT: OnceLock<()> = OnceLock::new();
    if !["text-rewrite", "sim-router"]
        .iter()
        .all(|n| files(n).0.is_file())
    {
        BUILT.get_or_init(|| {
            let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            for script in ["examples/python-plugin/build", "examples/js-plugin/build"] {
                let status = Command::new(repo.join(script))
                    .arg(&dir)
                    .status()
                    .unwrap_or_else(|e| panic!("{script}: {e}"));
                assert!(status.success(), "{script}: {status}");
            }
        });
    }
    files(name)
}

/// What an author gets who builds the JavaScript example with ComponentizeJS's defaults: the
/// runner refuses it, naming the import and the build option that avoids it.
#[test]
fn a_javascript_plugin_importing_wasi_http_is_refused_with_the_way_out() {
    let (wasm, _) = example("sim-router");
    let toolchain = target_dir().join("plugin-toolchains/js/componentize.mjs");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = TempDir::new("js-default-features");
    let out = dir.path().join("sim-router.wasm");
    let status = Command::new("node")
        .arg(&toolchain)
        .arg(repo.join("examples/js-plugin/plugin.js"))
        .arg(repo.join("wit/v0.2.0"))
        .arg(&out)
        .arg("--default-features")
        .status()
        .expect("node");
    assert!(status.success(), "componentize: {status}");
    assert_ne!(std::fs::read(&out).unwrap(), std::fs::read(wasm).unwrap());

    let (status, stdout, stderr) = run_to_exit(
        {
            let mut cmd = command();
            cmd.args(["plugin", "check"]).arg(&out);
            cmd
        },
        START_TIMEOUT,
    );
    assert!(!status.success(), "{stdout}");
    for part in [
        "imports wasi:http/",
        "disableFeatures",
        "'http', 'fetch-event'",
    ] {
        assert!(stderr.contains(part), "{part:?} missing in:\n{stderr}");
    }
}

#[tokio::test]
async fn a_rust_a_python_and_a_javascript_plugin_each_change_the_message() {
    let plugins = PluginDir::new();
    plugins.install(
        "e164",
        "order = 10\nfailure_policy = \"fail-closed\"\ntimeout = \"5s\"\n\
         [config]\ndefault_country = \"FR\"\n",
    );
    for name in ["text-rewrite", "sim-router"] {
        let (wasm, manifest) = example(name);
        // Generous deadlines: a loaded machine must not turn a slow call into a skipped hook.
        let manifest = std::fs::read_to_string(manifest)
            .unwrap()
            .replace("timeout = \"50ms\"", "timeout = \"5s\"")
            .replace(
                "failure_policy = \"fail-open\"",
                "failure_policy = \"fail-closed\"",
            );
        std::fs::write(plugins.path().join(format!("{name}.toml")), manifest).unwrap();
        std::fs::copy(wasm, plugins.path().join(format!("{name}.wasm"))).unwrap();
    }
    let h = Setup::new()
        .plugins(plugins.path())
        .start_within(START_TIMEOUT)
        .start()
        .await;
    let mut esme = h.bound(BindKind::Transmitter).await;
    let resp = esme
        .call(
            submit_sm("06 12 34 56 78")
                .dest_addr_ton(Ton::from(2u8))
                .dest_addr_npi(Npi::from(1u8))
                .short_message(octets(b"u are gr8"))
                .build(),
        )
        .await;
    assert_eq!(resp.status, ESME_ROK, "{resp:?}\n{}", h.server_log());
    let request = h.sim_message(&resp.message_id()).await["request"].clone();
    // e164 (Rust): the national number in E.164.
    assert_eq!(request["phoneNumbers"][0], "+33612345678", "{request:#}");
    // text-rewrite (Python): the configured words.
    assert_eq!(
        request["textMessage"]["text"], "you are great",
        "{request:#}"
    );
    // sim-router (JavaScript): prefix 33 goes through SIM 2.
    assert_eq!(request["simNumber"], 2, "{request:#}");
}
