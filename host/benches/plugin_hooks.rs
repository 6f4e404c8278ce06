//! What a plugin hook costs the submit path: one call on a reused instance (a route plugin that
//! answers continue) and a three-plugin chain per submit_sm (transform, route, transform), each
//! through the same `Plugins` API the server uses, with the tests' fixture component. The target
//! is a median of at most 3 µs per hook.
//!
//! `cargo bench --bench plugin_hooks` (env: BENCH_CALLS, default 100000). The fixture is taken
//! from target/wasm32-wasip2/{wasm,release}, or built there first.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use smsgate_plugin_host::{Plugins, PluginsConfig, types};

fn main() {
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let wasm = fixture();
    let root = std::env::temp_dir().join(format!("plugin-bench-{}", std::process::id()));

    let single = install(
        &root.join("single"),
        &wasm,
        &[("noop", "order = 1\n[config]\nhooks = \"route\"\n")],
    );
    let chain = install(
        &root.join("chain"),
        &wasm,
        &[
            (
                "t1",
                "order = 1\n[config]\nhooks = \"transform-submit\"\ntransform-submit = \"append:!\"\n",
            ),
            (
                "r",
                "order = 2\n[config]\nhooks = \"route\"\nroute = \"route:phone-1\"\n",
            ),
            ("t2", "order = 3\n[config]\nhooks = \"transform-submit\"\n"),
        ],
    );
    let account = account();
    let message = message();

    let route = measure(calls, || {
        let decision = single.route(&account, &message).expect("route");
        assert!(decision.is_none());
    });
    report("one hook: no-op route, reused instance", &route);

    let submit = measure(calls, || {
        let transformed = chain
            .transform_submit(&account, message.clone())
            .expect("transform");
        let decision = chain.route(&account, &transformed).expect("route");
        assert!(decision.is_some());
    });
    report(
        "three-plugin chain per submit (transform + route + transform)",
        &submit,
    );
    let per_hook = submit[submit.len() / 2].as_secs_f64() * 1e6 / 3.0;
    println!("  = {per_hook:.2} µs per hook at the median");

    let _ = std::fs::remove_dir_all(&root);
}

/// Per-call durations, sorted, after a warm-up of a tenth as many calls.
fn measure(calls: usize, mut call: impl FnMut()) -> Vec<Duration> {
    for _ in 0..calls / 10 {
        call();
    }
    let mut times: Vec<Duration> = (0..calls)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn report(what: &str, sorted: &[Duration]) {
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    println!(
        "{what}: median {:.2} µs, p90 {:.2} µs, p99 {:.2} µs over {} calls",
        at(0.5),
        at(0.9),
        at(0.99),
        sorted.len()
    );
}

fn install(dir: &Path, wasm: &Path, plugins: &[(&str, &str)]) -> Plugins {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("bench directory");
    for (name, toml) in plugins {
        std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).expect("copy fixture");
        std::fs::write(dir.join(format!("{name}.toml")), toml).expect("write NAME.toml");
    }
    Plugins::load(&PluginsConfig {
        dir: dir.to_path_buf(),
        // Deadlines loose enough that a descheduled thread does not count as a failure.
        default_timeout: Duration::from_secs(1),
        ..PluginsConfig::default()
    })
    .expect("load the bench plugins")
}

fn fixture() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let built = ["wasm", "release"].map(|profile| {
        target
            .join("wasm32-wasip2")
            .join(profile)
            .join("misbehave.wasm")
    });
    if let Some(wasm) = built.iter().find(|wasm| wasm.is_file()) {
        return wasm.clone();
    }
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "misbehave",
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the fixture plugin failed");
    built[1].clone()
}

fn account() -> types::Account {
    types::Account {
        id: "bench".into(),
        credentials: types::Credentials::Basic(types::BasicCredentials {
            username: "bench".into(),
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

fn message() -> types::Message {
    let address = |addr: &str| types::Address {
        ton: 1,
        npi: 1,
        addr: addr.into(),
    };
    types::Message {
        service_type: String::new(),
        source: address("4930123456"),
        destinations: vec![address("491701234567")],
        esm_class: 0,
        protocol_id: 0,
        priority_flag: 0,
        registered_delivery: 1,
        data_coding: 0,
        content: types::Content::Text("Your code is 4711".into()),
        validity: None,
        schedule_at: None,
        tlvs: Vec::new(),
        labels: vec![("campaign".into(), "otp".into())],
    }
}
