//! The plugin host against real components: tests/fixtures/misbehave (contract 0.1.0, behaviour
//! chosen by its configuration or per call), tests/fixtures/route-incoming (contract 0.2.0,
//! built with the SDK, likewise for its one hook) and tests/fixtures/wrong-world (not the
//! contract). The fixtures are
//! taken from target/wasm32-wasip2/{wasm,release} when `tests/run` (or a release build) made
//! them, or built once here into a target directory of their own, so that this build's lock is
//! not needed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::runtime::Failure;
use super::*;

fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target"));
        // tests/run builds every wasm crate with the `wasm` profile; a plain `--release` build
        // of the fixtures does as well.
        for profile in ["wasm", "release"] {
            let prebuilt = target.join("wasm32-wasip2").join(profile);
            if ["misbehave.wasm", "route_incoming.wasm", "wrong_world.wasm"]
                .iter()
                .all(|f| prebuilt.join(f).is_file())
            {
                return prebuilt;
            }
        }
        let own = target.join("plugin-fixtures");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&workspace)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .args([
                "-p",
                "misbehave",
                "-p",
                "route-incoming",
                "-p",
                "wrong-world",
            ])
            .arg("--target-dir")
            .arg(&own)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the fixture plugins failed");
        own.join("wasm32-wasip2/release")
    })
}

/// A plugin directory of its own per test, removed afterwards.
struct TestDir(PathBuf);

impl TestDir {
    fn new(test: &str) -> TestDir {
        let path =
            std::env::temp_dir().join(format!("smsgate-plugins-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TestDir(path)
    }

    /// Installs a fixture as NAME.wasm, with NAME.toml when `toml` is not empty.
    fn add(&self, name: &str, fixture: &str, toml: &str) {
        std::fs::copy(
            fixtures().join(format!("{fixture}.wasm")),
            self.0.join(format!("{name}.wasm")),
        )
        .unwrap();
        self.write(&format!("{name}.toml"), toml);
    }

    fn write(&self, file: &str, content: &str) {
        let path = self.0.join(file);
        if content.is_empty() {
            let _ = std::fs::remove_file(path);
        } else {
            std::fs::write(path, content).unwrap();
        }
    }

    /// Loose deadlines: a debug build on a busy two-core machine must not trip them by accident.
    fn config(&self) -> PluginsConfig {
        PluginsConfig {
            dir: self.0.clone(),
            cache_dir: shared_cache(),
            watch: false,
            default_timeout: Duration::from_secs(2),
            default_memory: 16 << 20,
        }
    }

    fn load(&self) -> Plugins {
        Plugins::load(&self.config()).unwrap()
    }

    fn load_err(&self) -> String {
        match Plugins::load(&self.config()) {
            Ok(_) => panic!("the plugin set loaded"),
            Err(e) => format!("{e:#}"),
        }
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiling the fixture in a debug build takes a while, so the tests share one cache, kept
/// between runs (entries are keyed by engine and component, so a stale one is never used).
fn shared_cache() -> PathBuf {
    std::env::temp_dir().join("smsgate-plugins-test-cache")
}

fn account() -> types::Account {
    types::Account {
        id: "alice".into(),
        credentials: types::Credentials::Basic(types::BasicCredentials {
            username: "alice".into(),
            password: "secret".into(),
        }),
        api_base_url: None,
        device_id: None,
        sim_number: None,
        limits: types::AccountLimits {
            max_binds: None,
            messages_per_second: None,
        },
        labels: Vec::new(),
    }
}

/// A message whose `misbehave` label (when given) replaces the fixture's configured actions.
fn message(actions: Option<&str>) -> types::Message {
    types::Message {
        service_type: String::new(),
        source: address("SENDER"),
        destinations: vec![address("491701234567")],
        esm_class: 0,
        protocol_id: 0,
        priority_flag: 0,
        registered_delivery: 1,
        data_coding: 0,
        content: types::Content::Text("hi".into()),
        validity: None,
        schedule_at: None,
        tlvs: Vec::new(),
        labels: actions
            .map(|a| vec![("misbehave".to_string(), a.to_string())])
            .unwrap_or_default(),
    }
}

fn address(addr: &str) -> types::Address {
    types::Address {
        ton: 1,
        npi: 1,
        addr: addr.into(),
    }
}

fn bind(system_type: &str) -> types::BindRequest {
    types::BindRequest {
        system_id: "alice".into(),
        password: "secret".into(),
        system_type: system_type.into(),
        bind_type: types::BindType::Transceiver,
        peer_address: "127.0.0.1:40000".into(),
        tls: false,
        address_range: String::new(),
    }
}

fn deliver() -> types::Deliver {
    types::Deliver {
        kind: types::DeliverKind::Incoming,
        source: address("491701234567"),
        destination: address("SENDER"),
        content: types::Content::Text("hi".into()),
        message_id: None,
        message_state: None,
        error_code: None,
        labels: Vec::new(),
    }
}

fn text(content: &types::Content) -> &str {
    match content {
        types::Content::Text(text) => text,
        types::Content::Binary(_) => panic!("binary content"),
    }
}

fn label<'a>(message: &'a types::Message, key: &str) -> Option<&'a str> {
    message
        .labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Where the route chain sends a message that asks for `actions` ("": the configured ones).
fn routed_to(plugins: &Plugins, actions: &str) -> Result<Option<String>, CommandStatus> {
    let asked = (!actions.is_empty()).then_some(actions);
    plugins
        .route(&account(), &message(asked))
        .map(|decision| decision.and_then(|d| d.device_id))
}

/// A route call on the first plugin of the set, below the chain, to see the failure itself.
fn route_failure(plugins: &Plugins, actions: &str) -> Failure {
    let chain = plugins.chain.load();
    let (account, message) = (account(), message(Some(actions)));
    match chain.plugins[0]
        .instances
        .call(async |p, store| p.call_route(store, &account, &message).await)
    {
        Ok(_) => panic!("{actions}: the call succeeded"),
        Err(failure) => failure,
    }
}

#[test]
fn an_endless_loop_is_stopped_at_the_deadline_and_the_policy_applies() {
    let dir = TestDir::new("loop");
    dir.add(
        "spin",
        "misbehave",
        "timeout = \"30ms\"\n[failure_policy]\ntransform-submit = \"fail-closed\"\n\
         [config]\nauthenticate = \"loop\"\ntransform-submit = \"loop\"\nroute = \"loop\"\n",
    );
    let plugins = dir.load();

    let started = Instant::now();
    assert_eq!(routed_to(&plugins, "loop"), Ok(None));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(30), "{took:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");

    assert!(matches!(
        plugins.authenticate(&bind("")),
        AuthOutcome::Reject(BIND_FAILED)
    ));
    assert_eq!(
        plugins.transform_submit(&account(), message(None)).err(),
        Some(SYSTEM_ERROR)
    );
    assert!(matches!(
        route_failure(&plugins, "loop"),
        Failure::Deadline(d) if d == Duration::from_millis(30)
    ));
}

#[test]
fn a_memory_grab_hits_the_cap_and_the_next_call_works() {
    let dir = TestDir::new("memory");
    dir.add("greedy", "misbehave", "memory = \"2MiB\"\n");
    let plugins = dir.load();
    assert!(matches!(
        route_failure(&plugins, "grab:8388608"),
        Failure::Memory(cap) if cap == 2 << 20
    ));
    assert_eq!(routed_to(&plugins, "grab:8388608"), Ok(None));
    assert_eq!(
        routed_to(&plugins, "grab:4096;route:small"),
        Ok(Some("small".into()))
    );
}

/// Run on a tokio worker, as the server calls hooks: the guest's panic message goes to its
/// stderr through WASI, which must not need to block on the runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_traps_the_policy_applies_and_the_next_call_gets_a_fresh_instance() {
    let dir = TestDir::new("panic");
    dir.add(
        "fragile",
        "misbehave",
        "[config]\ntransform-submit = \"count\"\n",
    );
    let plugins = Arc::new(dir.load());
    let on_worker = |actions: Option<&'static str>| {
        let plugins = Arc::clone(&plugins);
        tokio::spawn(async move { plugins.transform_submit(&account(), message(actions)) })
    };
    let count = |m: &types::Message| label(m, "count").map(String::from);

    // The instance that answered describe at load serves the calls that follow.
    let first = on_worker(None).await.unwrap().unwrap();
    let second = on_worker(None).await.unwrap().unwrap();
    assert_eq!(count(&first).as_deref(), Some("2"));
    assert_eq!(count(&second).as_deref(), Some("3"));

    let panicked = on_worker(Some("panic")).await.unwrap().unwrap();
    assert_eq!(text(&panicked.content), "hi", "fail-open: unchanged");
    assert_eq!(count(&panicked), None);

    let after = on_worker(None).await.unwrap().unwrap();
    assert_eq!(count(&after).as_deref(), Some("1"), "a fresh instance");

    let usage = plugins.usage();
    let submits = usage.iter().find(|u| u.hook == "transform-submit").unwrap();
    assert_eq!(
        (submits.plugin.as_str(), submits.calls, submits.failures),
        ("fragile", 4, 1)
    );
    assert!(submits.time > Duration::ZERO);
    assert_eq!(submits.latencies.count(), 3, "the calls that returned");
    let median = submits.latencies.quantile(0.5).unwrap();
    assert!(
        median > Duration::ZERO && median <= submits.time,
        "{median:?}"
    );

    let failure = route_failure(&plugins, "panic");
    assert!(
        matches!(&failure, Failure::Trap(reason)
            if reason.contains("unreachable") && reason.contains("misbehave was asked to panic")),
        "{failure}"
    );
    let refused = tokio::task::spawn_blocking({
        let plugins = Arc::clone(&plugins);
        move || plugins.authenticate(&bind("misbehave:panic"))
    })
    .await
    .unwrap();
    assert!(matches!(refused, AuthOutcome::Reject(BIND_FAILED)));
}

#[test]
fn the_chain_runs_by_order_then_name_with_each_hooks_semantics() {
    let dir = TestDir::new("order");
    dir.add(
        "a",
        "misbehave",
        "order = 20\n[config]\ntransform-submit = \"append:A\"\nauthenticate = \"accept:from-a\"\n\
         transform-deliver = \"drop\"\n",
    );
    dir.add(
        "b",
        "misbehave",
        "order = 10\n[config]\ntransform-submit = \"append:B\"\ntransform-deliver = \"append:b\"\n",
    );
    dir.add(
        "c",
        "misbehave",
        "[config]\ntransform-submit = \"append:C\"\nroute = \"route:dev-c\"\nauthenticate = \"reject:0x0e\"\n",
    );
    dir.add(
        "d",
        "misbehave",
        "[config]\ntransform-submit = \"append:D\"\nroute = \"route:dev-d\"\n",
    );
    let plugins = dir.load();
    assert_eq!(plugins.names(), ["b", "a", "c", "d"]);

    let out = plugins.transform_submit(&account(), message(None)).unwrap();
    assert_eq!(text(&out.content), "hiBACD");
    assert_eq!(routed_to(&plugins, ""), Ok(Some("dev-c".into())));
    match plugins.authenticate(&bind("")) {
        AuthOutcome::Accept(account) => assert_eq!(account.id, "from-a"),
        other => panic!("{other:?}"),
    }
    assert!(plugins.transform_deliver(&account(), deliver()).is_none());

    dir.write(
        "a.toml",
        "order = 20\n[config]\ntransform-submit = \"reject:0x45\"\ntransform-deliver = \"append:a\"\n",
    );
    plugins.reload().unwrap();
    assert_eq!(
        plugins.transform_submit(&account(), message(None)).err(),
        Some(smpp_codec::status::ESME_RSUBMITFAIL)
    );
    let delivered = plugins.transform_deliver(&account(), deliver()).unwrap();
    assert_eq!(text(&delivered.content), "hiba");
}

#[test]
fn components_not_matching_the_contract_are_refused_with_the_reason() {
    let dir = TestDir::new("contract");
    dir.add("wrong", "wrong_world", "");
    let err = dir.load_err();
    assert!(err.contains("wrong.wasm"), "{err}");
    assert!(
        err.contains("does not match the smsgate:smpp-plugin@0.2.0 contract (it imports no"),
        "{err}"
    );

    let dir = TestDir::new("core-module");
    std::fs::write(dir.0.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let err = dir.load_err();
    assert!(
        err.contains("core.wasm") && err.contains("core WebAssembly module"),
        "{err}"
    );

    let dir = TestDir::new("junk");
    std::fs::write(dir.0.join("junk.wasm"), b"#!/bin/sh\necho hi\n").unwrap();
    let err = dir.load_err();
    assert!(
        err.contains("junk.wasm") && err.contains("not a WebAssembly component"),
        "{err}"
    );

    let dir = TestDir::new("describe");
    dir.add("broken", "misbehave", "[config]\ndescribe = \"panic\"\n");
    let err = dir.load_err();
    assert!(err.contains("broken.wasm: describe trapped"), "{err}");
}

#[test]
fn a_bad_manifest_key_is_refused_naming_the_file_and_the_key() {
    let dir = TestDir::new("manifest");
    dir.add("typo", "misbehave", "timeot = \"5ms\"\n");
    let err = dir.load_err();
    assert!(err.contains("typo.toml") && err.contains("timeot"), "{err}");

    dir.write("typo.toml", "[capabilities]\nnetwork = true\n");
    let err = dir.load_err();
    assert!(err.contains("capabilities.network"), "{err}");
}

#[test]
fn a_broken_reload_keeps_the_previous_set() {
    let dir = TestDir::new("broken-reload");
    dir.add(
        "keep",
        "misbehave",
        "[config]\ntransform-submit = \"append:!\"\n",
    );
    let plugins = dir.load();
    dir.write("keep.toml", "order = \"first\"\n");
    let err = format!("{:#}", plugins.reload().unwrap_err());
    assert!(err.contains("keep.toml") && err.contains("order"), "{err}");
    let out = plugins.transform_submit(&account(), message(None)).unwrap();
    assert_eq!(text(&out.content), "hi!");
}

#[test]
fn hot_reload_while_calls_are_in_flight_loses_none() {
    let dir = TestDir::new("reload");
    dir.add(
        "swap",
        "misbehave",
        "[config]\ntransform-submit = \"append:X\"\n",
    );
    let plugins = Arc::new(dir.load());
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (plugins, stop, calls) = (plugins.clone(), stop.clone(), calls.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let out = plugins.transform_submit(&account(), message(None)).unwrap();
                    let text = text(&out.content).to_string();
                    assert!(text == "hiX" || text == "hiY", "lost a call: {text:?}");
                    if !seen.contains(&text) {
                        seen.push(text);
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                seen
            })
        })
        .collect();
    for round in 0..6 {
        let suffix = if round % 2 == 0 { "Y" } else { "X" };
        dir.write(
            "swap.toml",
            &format!("[config]\ntransform-submit = \"append:{suffix}\"\n"),
        );
        plugins.reload().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen: Vec<String> = callers
        .into_iter()
        .flat_map(|c| c.join().expect("no caller failed"))
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["hiX", "hiY"]);
    assert!(calls.load(Ordering::Relaxed) > 0);
}

#[test]
fn the_cache_is_used_on_the_second_load_and_a_damaged_entry_is_rebuilt() {
    let dir = TestDir::new("cache");
    dir.add("cached", "misbehave", "");
    let mut config = dir.config();
    config.cache_dir = dir.0.join("cache");
    let from_cache = |config: &PluginsConfig| {
        let plugins = Plugins::load(config).unwrap();
        assert_eq!(routed_to(&plugins, "route:ok"), Ok(Some("ok".into())));
        plugins.chain.load().plugins[0].cached
    };
    assert!(!from_cache(&config));
    let entries: Vec<PathBuf> = std::fs::read_dir(&config.cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(from_cache(&config));

    let entry = &entries[0];
    let mut bytes = std::fs::read(entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(entry, &bytes).unwrap();
    assert!(!from_cache(&config), "a damaged entry is not used");
    assert!(from_cache(&config), "and is rebuilt");

    std::fs::write(entry, b"short").unwrap();
    assert!(!from_cache(&config));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_are_denied_unless_granted() {
    let dir = TestDir::new("capabilities");
    let data = dir.0.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("hello.txt"), "hello").unwrap();
    let probe = "transform-submit = \"env:PATH;read:/data/hello.txt\"";
    dir.add("a-denied", "misbehave", &format!("[config]\n{probe}\n"));
    dir.add(
        "b-granted",
        "misbehave",
        &format!(
            "[capabilities]\nenv = [\"PATH\"]\ndirs = [{{ host = \"data\", guest = \"/data\" }}]\n\
             [config]\n{probe}\n"
        ),
    );
    let plugins = Arc::new(dir.load());
    let out = tokio::spawn({
        let plugins = Arc::clone(&plugins);
        async move { plugins.transform_submit(&account(), message(None)) }
    })
    .await
    .unwrap()
    .unwrap();
    let labels: Vec<(&str, &str)> = out
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(labels.len(), 4, "{labels:?}");
    assert_eq!(labels[0], ("env.PATH", "<unset>"));
    assert!(labels[1].1.starts_with("<error"), "{labels:?}");
    assert_eq!(labels[2].0, "env.PATH");
    assert_eq!(labels[2].1, std::env::var("PATH").unwrap());
    assert_eq!(labels[3], ("read./data/hello.txt", "hello"));
}

#[test]
fn config_reaches_the_plugin_flattened_and_undeclared_hooks_are_not_called() {
    let dir = TestDir::new("config");
    dir.add(
        "conf",
        "misbehave",
        "[config]\nhooks = \"transform-submit\"\nauthenticate = \"panic\"\n\
         transform-submit = \"config:rules;log:hello from the plugin\"\n\
         [[config.rules]]\nprefix = \"49\"\n[[config.rules]]\nprefix = \"33\"\n",
    );
    let plugins = dir.load();
    assert!(matches!(
        plugins.authenticate(&bind("")),
        AuthOutcome::Default
    ));
    let out = plugins.transform_submit(&account(), message(None)).unwrap();
    assert_eq!(
        out.labels,
        [
            ("config.rules.0.prefix".to_string(), "49".to_string()),
            ("config.rules.1.prefix".to_string(), "33".to_string()),
        ]
    );
}

#[test]
fn a_fuel_budget_is_enforced_per_call() {
    let dir = TestDir::new("fuel");
    dir.add("frugal", "misbehave", "fuel = 200000\n");
    let plugins = dir.load();
    assert!(matches!(
        route_failure(&plugins, "spin:100000000"),
        Failure::Fuel(200000)
    ));
    assert_eq!(routed_to(&plugins, "route:ok"), Ok(Some("ok".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reloader_follows_changes_in_the_directory() {
    let dir = TestDir::new("watch");
    dir.add(
        "watched",
        "misbehave",
        "[config]\ntransform-submit = \"append:X\"\n",
    );
    let mut config = dir.config();
    config.watch = true;
    let plugins = Arc::new(Plugins::load(&config).unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    plugins.spawn_reloader(shutdown.clone());
    // Let the reloader take its first look before the change.
    tokio::time::sleep(Duration::from_millis(200)).await;
    dir.write(
        "watched.toml",
        "[config]\ntransform-submit = \"append:Y\"\n",
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = plugins.transform_submit(&account(), message(None)).unwrap();
        if text(&out.content) == "hiY" {
            break;
        }
        assert!(Instant::now() < deadline, "no reload after the change");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
}

#[test]
fn a_missing_or_empty_directory_gives_an_empty_chain() {
    assert!(Plugins::empty().names().is_empty());
    let dir = TestDir::new("empty");
    let plugins = dir.load();
    assert!(plugins.names().is_empty());
    let mut config = dir.config();
    config.dir = dir.0.join("nonexistent");
    let plugins = Plugins::load(&config).unwrap();
    assert!(plugins.names().is_empty());
    assert!(matches!(
        plugins.authenticate(&bind("")),
        AuthOutcome::Default
    ));
    let out = plugins.transform_submit(&account(), message(None)).unwrap();
    assert_eq!(text(&out.content), "hi");
    assert_eq!(routed_to(&plugins, ""), Ok(None));
    assert!(plugins.transform_deliver(&account(), deliver()).is_some());
}

#[test]
fn the_runner_checks_and_runs_the_example_fixtures() {
    let dir = TestDir::new("runner");
    dir.add(
        "example",
        "misbehave",
        "[config]\nauthenticate = \"accept:alice\"\ntransform-submit = \"append: (checked)\"\n\
         route = \"route:phone-1\"\ntransform-deliver = \"drop\"\n",
    );
    let wasm = dir.0.join("example.wasm");
    let defaults = dir.config();
    let described = runner::check(&wasm, None, &defaults).unwrap();
    assert!(described.contains("name: misbehave"), "{described}");
    assert!(
        described.contains("hooks: authenticate, transform-submit, route, transform-deliver"),
        "{described}"
    );

    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fixtures");
    for (hook, file, expected) in [
        (runner::RunHook::Authenticate, "authenticate.json", "accept"),
        (runner::RunHook::Submit, "submit.json", "replace"),
        (runner::RunHook::Route, "route.json", "route"),
        (runner::RunHook::Deliver, "deliver.json", "drop"),
    ] {
        let output = runner::run(&wasm, hook, &examples.join(file), None, &defaults)
            .unwrap_or_else(|e| panic!("{file}: {e:#}"));
        let report: serde_json::Value = serde_json::from_str(&output).unwrap();
        let verdict = &report["verdict"];
        let name = verdict
            .as_str()
            .map(String::from)
            .or_else(|| verdict.as_object().and_then(|o| o.keys().next().cloned()));
        assert_eq!(name.as_deref(), Some(expected), "{file}: {output}");
        assert!(report["fuel_used"].as_u64().unwrap() > 0, "{output}");
        // Whole microseconds, not a float with a tail of noise digits.
        assert!(report["micros"].is_u64(), "{output}");
    }

    dir.write(
        "example.toml",
        "timeout = \"20ms\"\n[config]\nroute = \"loop\"\n",
    );
    let err = runner::run(
        &wasm,
        runner::RunHook::Route,
        &examples.join("route.json"),
        None,
        &defaults,
    )
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("deadline") && err.contains("fail-open"),
        "{err}"
    );
}

/// An SMS to the phone's second number, with `actions` replacing the route-incoming fixture's
/// configured ones when given.
fn incoming_sms(actions: Option<&str>) -> types::IncomingSms {
    types::IncomingSms {
        event_id: "event-1".into(),
        device_id: "device-1".into(),
        sim_number: Some(2),
        sender: "+4915112345678".into(),
        recipient: Some("+4930222222".into()),
        content: types::Content::Text(match actions {
            Some(actions) => format!("misbehave:{actions}"),
            None => "hello".into(),
        }),
        received_at: Some(1_767_225_600_000),
    }
}

fn candidates() -> Vec<types::Account> {
    ["shop1", "shop2", "shop3"]
        .into_iter()
        .map(|id| types::Account {
            id: id.into(),
            ..account()
        })
        .collect()
}

fn route_incoming(plugins: &Plugins, actions: Option<&str>) -> IncomingRoute {
    plugins.route_incoming(&incoming_sms(actions), &candidates())
}

fn deliver_to(users: &[&str]) -> IncomingRoute {
    IncomingRoute::Deliver(users.iter().map(|u| u.to_string()).collect())
}

#[test]
fn a_contract_0_1_0_plugin_loads_and_runs_its_hooks_beside_a_0_2_0_one() {
    let dir = TestDir::new("versions");
    dir.add(
        "old",
        "misbehave",
        "order = 10\n[config]\nauthenticate = \"accept:from-old\"\ntransform-submit = \"append:!\"\n\
         route = \"route:old-phone\"\ntransform-deliver = \"append:?\"\n",
    );
    dir.add(
        "new",
        "route_incoming",
        "order = 20\n[config]\nroute-incoming = \"deliver:shop2\"\n",
    );
    let plugins = dir.load();
    {
        let chain = plugins.chain.load();
        let contracts: Vec<(&str, &str)> = chain
            .plugins
            .iter()
            .map(|p| (p.name.as_str(), p.contract))
            .collect();
        assert_eq!(contracts, [("old", "0.1.0"), ("new", "0.2.0")]);
        // A 0.1.0 plugin cannot declare the hook its contract does not have.
        assert!(!chain.plugins[0].implements(Hook::RouteIncoming));
        assert!(chain.plugins[1].implements(Hook::RouteIncoming));
        assert!(!chain.plugins[1].implements(Hook::Route));
    }

    // Every hook of the old plugin answers through the conversions, in both directions.
    match plugins.authenticate(&bind("")) {
        AuthOutcome::Accept(account) => {
            assert_eq!(account.id, "from-old");
            assert!(
                matches!(&account.credentials, types::Credentials::Basic(basic)
                    if basic.username == "alice" && basic.password == "secret"),
                "{account:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let mut binary = message(None);
    binary.content = types::Content::Binary(types::BinaryContent {
        data: vec![1, 2],
        port: 2948,
    });
    binary.validity = Some(types::Validity::After(3600));
    binary.tlvs = vec![types::Tlv {
        tag: 0x1400,
        value: vec![9],
    }];
    let out = plugins
        .transform_submit(&account(), binary.clone())
        .unwrap();
    let mut expected = binary;
    expected.content = types::Content::Binary(types::BinaryContent {
        data: vec![1, 2, b'!'],
        port: 2948,
    });
    // The generated types have no PartialEq; their Debug form shows every field.
    assert_eq!(format!("{out:?}"), format!("{expected:?}"));
    assert_eq!(routed_to(&plugins, ""), Ok(Some("old-phone".into())));
    let delivered = plugins.transform_deliver(&account(), deliver()).unwrap();
    assert_eq!(text(&delivered.content), "hi?");
    assert_eq!(delivered.kind, types::DeliverKind::Incoming);

    // route-incoming skips the old plugin and asks the new one.
    assert_eq!(route_incoming(&plugins, None), deliver_to(&["shop2"]));
    assert!(plugins.handles(Hook::RouteIncoming));
}

#[test]
fn route_incoming_takes_the_first_answer_that_is_not_continue() {
    let dir = TestDir::new("incoming-chain");
    assert_eq!(route_incoming(&dir.load(), None), IncomingRoute::Default);
    dir.add(
        "a",
        "route_incoming",
        "order = 10\n[config]\nroute-incoming = \"continue\"\n",
    );
    dir.add(
        "b",
        "route_incoming",
        "order = 20\n[config]\nroute-incoming = \"deliver:shop3,ghost,shop1,shop3\"\n",
    );
    dir.add(
        "c",
        "route_incoming",
        "order = 30\n[config]\nroute-incoming = \"drop:never asked\"\n",
    );
    let plugins = dir.load();
    // Ids that are not candidates are left out, and each user gets the SMS once.
    assert_eq!(
        route_incoming(&plugins, None),
        deliver_to(&["shop3", "shop1"])
    );
    // The SMS asks every plugin for the same answer: the first one's counts.
    assert_eq!(
        route_incoming(&plugins, Some("drop:spam")),
        IncomingRoute::Drop {
            plugin: "a".into(),
            reason: "spam".into(),
        }
    );
    assert_eq!(
        route_incoming(&plugins, Some("continue")),
        IncomingRoute::Default
    );
    // The candidates reach the plugin.
    assert_eq!(
        route_incoming(&plugins, Some("candidates")),
        deliver_to(&["shop1", "shop2", "shop3"])
    );
    // Naming only users that are not candidates leaves nobody, which the caller must not
    // take for a drop.
    assert_eq!(
        route_incoming(&plugins, Some("deliver:ghost")),
        IncomingRoute::Deliver(Vec::new())
    );
}

#[test]
fn a_failing_route_incoming_plugin_never_drops_the_sms() {
    let dir = TestDir::new("incoming-failure");
    dir.add(
        "a-open",
        "route_incoming",
        "order = 10\ntimeout = \"30ms\"\n[config]\nroute-incoming = \"continue\"\n",
    );
    dir.add(
        "b-next",
        "route_incoming",
        "order = 20\n[config]\nroute-incoming = \"deliver:shop2\"\n",
    );
    let plugins = dir.load();
    // fail-open (the default): the next plugin decides, after a panic as after a deadline.
    for actions in ["panic", "loop"] {
        let asked = format!("{actions};deliver:shop1");
        let sms = incoming_sms(Some(&asked));
        let chain = plugins.chain.load();
        let failure = chain.plugins[0]
            .instances
            .call(async |p, store| p.call_route_incoming(store, &sms, &candidates()).await)
            .err()
            .unwrap_or_else(|| panic!("{actions}: the call succeeded"));
        match actions {
            "panic" => assert!(matches!(failure, Failure::Trap(_)), "{failure}"),
            _ => assert!(matches!(failure, Failure::Deadline(_)), "{failure}"),
        }
    }
    dir.write(
        "a-open.toml",
        "order = 10\n[config]\nroute-incoming = \"panic\"\n",
    );
    plugins.reload().unwrap();
    assert_eq!(route_incoming(&plugins, None), deliver_to(&["shop2"]));

    // fail-closed: the server's own matching, not the next plugin and never a drop.
    dir.write(
        "a-open.toml",
        "order = 10\ntimeout = \"30ms\"\nfailure_policy = \"fail-closed\"\n\
         [config]\nroute-incoming = \"loop\"\n",
    );
    plugins.reload().unwrap();
    let started = Instant::now();
    assert_eq!(route_incoming(&plugins, None), IncomingRoute::Default);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    dir.write(
        "a-open.toml",
        "order = 10\n[failure_policy]\nroute-incoming = \"fail-closed\"\n\
         [config]\nroute-incoming = \"panic\"\n",
    );
    plugins.reload().unwrap();
    assert_eq!(route_incoming(&plugins, None), IncomingRoute::Default);
    // A fresh instance answers the next call.
    assert_eq!(
        route_incoming(&plugins, Some("deliver:shop3")),
        deliver_to(&["shop3"])
    );
}

#[test]
fn the_runner_runs_route_incoming_on_its_example_fixture() {
    let dir = TestDir::new("runner-incoming");
    dir.add(
        "router",
        "route_incoming",
        "[config]\nroute-incoming = \"candidates\"\n",
    );
    dir.add("old", "misbehave", "");
    let defaults = dir.config();
    let router = dir.0.join("router.wasm");
    let described = runner::check(&router, None, &defaults).unwrap();
    assert!(
        described.contains("contract: smsgate:smpp-plugin@0.2.0\nhooks: route-incoming\n"),
        "{described}"
    );
    let described = runner::check(&dir.0.join("old.wasm"), None, &defaults).unwrap();
    assert!(
        described.contains("contract: smsgate:smpp-plugin@0.1.0\n"),
        "{described}"
    );

    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fixtures/route-incoming.json");
    let output = runner::run(
        &router,
        runner::RunHook::RouteIncoming,
        &example,
        None,
        &defaults,
    )
    .unwrap();
    let report: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(
        report["verdict"],
        serde_json::json!({"deliver": ["shop1", "shop2"]}),
        "{output}"
    );
    assert!(report["fuel_used"].as_u64().unwrap() > 0, "{output}");

    let err = runner::run(
        &dir.0.join("old.wasm"),
        runner::RunHook::RouteIncoming,
        &example,
        None,
        &defaults,
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("does not declare the route-incoming hook"),
        "{err:#}"
    );

    dir.write(
        "router.toml",
        "timeout = \"20ms\"\nfailure_policy = \"fail-closed\"\n[config]\nroute-incoming = \"loop\"\n",
    );
    let err = runner::run(
        &router,
        runner::RunHook::RouteIncoming,
        &example,
        None,
        &defaults,
    )
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("deadline") && err.contains("SIM and device matching"),
        "{err}"
    );
}
