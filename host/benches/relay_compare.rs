//! This server against a baseline relay, side by side in one run, so that the ratio holds on a
//! noisy machine where absolute figures do not. The baseline is the simplest relay one would
//! write with node-smpp (`benches/baseline-relay/relay.js`: one POST per submit_sm, nothing
//! else). Both relay the same submit_sm from the same load generator to the same standalone
//! simulator processes, taking turns round by round; each round starts with the next relay, so
//! that none always runs first or always after the same one (in two runs with two builds
//! swapped, a run after the baseline's measured 0.4–0.6 µs per message worse than the same
//! build's after another).
//!
//! `scripts/bench-relay` installs the baseline and runs this (`cargo bench --bench
//! relay_compare` with BENCH_RELAY_DIR set). Env: BENCH_MESSAGES (default 40000, per run at
//! window 64), BENCH_ROUNDS (default 3; medians are printed), BENCH_LATENCY_MESSAGES (default
//! 1000, per window-1 run against a gateway answering in 5 ms), BENCH_COMPARE_BIN (another
//! build of this server, e.g. of an earlier commit, measured in the same rounds).
//!
//! Printed per relay: submit_sm/s, p50/p99 of submit_sm → submit_sm_resp, and the relay
//! process's CPU time (user + system, from /proc) per relayed message; for window 1, what the
//! relay adds at p50 to the round trip of a gateway answering after 5 ms, asked directly; and
//! the simulator's CPU time per message while that relay ran.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use smpp_codec::command::SUBMIT_SM_RESP;
use smpp_codec::status::ESME_ROK;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

mod common;

use common::{bound_transceiver, cpu_time, env_or, free_port, read_pdu, submit_sm, wait_ready};

/// What the window-1 runs' gateway takes to answer, as a phone gateway in the cloud does.
const GATEWAY_DELAY: Duration = Duration::from_millis(5);

#[tokio::main]
async fn main() {
    let messages: u64 = env_or("BENCH_MESSAGES", 40_000);
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    let latency_messages: u64 = env_or("BENCH_LATENCY_MESSAGES", 1_000);
    let relay_dir = PathBuf::from(std::env::var("BENCH_RELAY_DIR").unwrap_or_else(|_| {
        panic!("BENCH_RELAY_DIR is not set: run scripts/bench-relay, which installs the baseline")
    }));
    let binary = env!("CARGO_BIN_EXE_smsgate-smpp");
    let scratch = std::env::temp_dir().join(format!("relay-compare-{}", std::process::id()));
    std::fs::create_dir_all(scratch.join("no-plugins")).expect("scratch directory");

    let (fast, fast_sim) = simulator(binary, &scratch, "fast", None).await;
    let gateway_pid = fast_sim.id().expect("the simulator runs");
    let (slow, _slow_sim) = simulator(binary, &scratch, "slow", Some(GATEWAY_DELAY)).await;
    let mut relays = vec![(
        "smsgate-smpp".to_owned(),
        server(binary, &scratch, "ours-fast", fast).await,
        server(binary, &scratch, "ours-slow", slow).await,
    )];
    if let Ok(other) = std::env::var("BENCH_COMPARE_BIN") {
        relays.push((
            "smsgate-smpp, BENCH_COMPARE_BIN".to_owned(),
            server(&other, &scratch, "other-fast", fast).await,
            server(&other, &scratch, "other-slow", slow).await,
        ));
    }
    relays.push((
        "node-smpp 0.5.1 baseline".to_owned(),
        baseline(&relay_dir, fast).await,
        baseline(&relay_dir, slow).await,
    ));

    println!(
        "{messages} submit_sm per run at window 64, {rounds} rounds taking turns; \
         window 1: {latency_messages} against a gateway answering in {GATEWAY_DELAY:?}; \
         {} logical CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut runs: Vec<Vec<Run>> = relays.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for turn in 0..relays.len() {
            let relay = (round + turn) % relays.len();
            runs[relay].push(measure(&relays[relay].1, gateway_pid, 64, messages).await);
        }
    }
    // Window 1: each round asks the gateway directly, then through each relay, so that all
    // see the same gateway (its timer rounds the delay up by up to a millisecond).
    let (direct, window_one) = window_one_p50s(&relays, slow, latency_messages).await;
    println!(
        "{:<34} {:>12} {:>9} {:>9} {:>12} {:>16} {:>14}",
        "relay (median of rounds)",
        "submit_sm/s",
        "p50 ms",
        "p99 ms",
        "cpu µs/msg",
        "w1 adds µs p50",
        "gateway µs/msg"
    );
    for (((name, _, _), runs), w1) in relays.iter().zip(&runs).zip(&window_one) {
        println!(
            "{:<34} {:>12.0} {:>9.2} {:>9.2} {:>12.1} {:>16.0} {:>14.1}",
            name,
            median(runs, |r| r.per_second),
            median(runs, |r| r.p50_ms),
            median(runs, |r| r.p99_ms),
            median(runs, |r| r.cpu_micros),
            w1 - direct,
            median(runs, |r| r.gateway_cpu_micros),
        );
    }
    println!(
        "window 1: the gateway answers POST /messages in {:.0} µs at p50 when asked directly",
        direct
    );
    let (ours, baseline) = (&runs[0], &runs[runs.len() - 1]);
    println!(
        "ratio smsgate-smpp / baseline: throughput {:.2}, cpu per message {:.2}",
        median(ours, |r| r.per_second) / median(baseline, |r| r.per_second),
        median(ours, |r| r.cpu_micros) / median(baseline, |r| r.cpu_micros),
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

/// A relay under test: where ESMEs bind, and the process whose CPU time counts.
struct Relay {
    smpp: SocketAddr,
    child: Child,
}

struct Run {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_micros: f64,
    /// The simulator's CPU time per message in the same run: where the relay is cheaper than
    /// its gateway, the gateway bounds the throughput.
    gateway_cpu_micros: f64,
}

fn median(runs: &[Run], figure: impl Fn(&Run) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(figure).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn measure(relay: &Relay, gateway_pid: u32, window: usize, messages: u64) -> Run {
    let pid = relay.child.id().expect("the relay runs");
    let (cpu_before, gateway_before) = (cpu_time(pid), cpu_time(gateway_pid));
    let started = Instant::now();
    let latency = load(relay.smpp, window, messages).await;
    let elapsed = started.elapsed();
    let per_message = |cpu: Duration| cpu.as_secs_f64() * 1e6 / messages as f64;
    Run {
        per_second: messages as f64 / elapsed.as_secs_f64(),
        p50_ms: latency.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: latency.value_at_quantile(0.99) as f64 / 1000.0,
        cpu_micros: per_message(cpu_time(pid) - cpu_before),
        gateway_cpu_micros: per_message(cpu_time(gateway_pid) - gateway_before),
    }
}

/// One bind keeping `window` submit_sm outstanding until `messages` were answered ESME_ROK;
/// any other answer fails the run, since a relay that refuses is not relaying.
async fn load(address: SocketAddr, window: usize, messages: u64) -> Histogram<u64> {
    let (mut reader, mut writer) = bound_transceiver(address, "demo", "demo1234").await;
    let mut latency = Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let mut sent_at: HashMap<u32, Instant> = HashMap::with_capacity(window);
    let (mut sent, mut answered, mut sequence) = (0u64, 0u64, 1u32);
    let mut batch = Vec::with_capacity(window * 100);
    while answered < messages {
        batch.clear();
        while sent < messages && sent_at.len() < window {
            sequence += 1;
            sent += 1;
            batch.extend_from_slice(&submit_sm(sequence, 0));
            sent_at.insert(sequence, Instant::now());
        }
        if !batch.is_empty() {
            writer.write_all(&batch).await.expect("send submit_sm");
        }
        let (id, status, seq, _) = read_pdu(&mut reader).await;
        if id != SUBMIT_SM_RESP {
            continue;
        }
        assert_eq!(status, ESME_ROK, "the relay refused a submit_sm");
        if let Some(at) = sent_at.remove(&seq) {
            answered += 1;
            let _ = latency.record(at.elapsed().as_micros().max(1) as u64);
        }
    }
    latency
}

/// p50 in µs of `POST /messages` sent straight to the gateway (as the relays send it, one at a
/// time on a kept-alive connection), and of a submit_sm through each relay at window 1,
/// taking turns message by message.
async fn window_one_p50s(
    relays: &[(String, Relay, Relay)],
    gateway: SocketAddr,
    messages: u64,
) -> (f64, Vec<f64>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let url = format!("http://{gateway}/3rdparty/v1/messages");
    let histogram = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let mut direct = histogram();
    let mut binds = Vec::new();
    for (_, _, slow) in relays {
        binds.push((
            bound_transceiver(slow.smpp, "demo", "demo1234").await,
            histogram(),
        ));
    }
    for n in 0..messages {
        let body = serde_json::json!({
            "id": format!("direct-{}-{n}", std::process::id()),
            "textMessage": {"text": "Your verification code is 482915. It expires in 5m."},
            "phoneNumbers": ["+491701234567"],
            "withDeliveryReport": false,
        });
        let started = Instant::now();
        let response = client
            .post(&url)
            .basic_auth("demo", Some("demo1234"))
            .json(&body)
            .send()
            .await
            .expect("POST /messages");
        assert_eq!(response.status(), 202, "the simulator refused a message");
        let _ = response.bytes().await;
        let _ = direct.record(started.elapsed().as_micros().max(1) as u64);
        for ((reader, writer), latency) in &mut binds {
            let sequence = n as u32 + 2;
            let started = Instant::now();
            writer
                .write_all(&submit_sm(sequence, 0))
                .await
                .expect("send submit_sm");
            loop {
                let (id, status, seq, _) = read_pdu(reader).await;
                if id == SUBMIT_SM_RESP && seq == sequence {
                    assert_eq!(status, ESME_ROK, "the relay refused a submit_sm");
                    break;
                }
            }
            let _ = latency.record(started.elapsed().as_micros().max(1) as u64);
        }
    }
    let p50 = |h: &Histogram<u64>| h.value_at_quantile(0.5) as f64;
    (p50(&direct), binds.iter().map(|(_, h)| p50(h)).collect())
}

/// A standalone simulator, answering every submit after `delay` when given; it keeps messages
/// Pending for an hour, so that no webhook traffic mixes in.
async fn simulator(
    binary: &str,
    scratch: &std::path::Path,
    name: &str,
    delay: Option<Duration>,
) -> (SocketAddr, Child) {
    let config = scratch.join(format!("simulator-{name}.toml"));
    let mut toml = String::from("[simulator]\nstep_delay = \"1h\"\n");
    if let Some(delay) = delay {
        toml.push_str(&format!(
            "[[simulator.rules]]\npattern = \".\"\noutcome = {{ kind = \"stall\", delay = \"{}ms\" }}\n",
            delay.as_millis()
        ));
    }
    std::fs::write(&config, toml).expect("write the simulator's config");
    let address = free_port();
    let child = Command::new(binary)
        .args(["simulator", "--listen", &address.to_string(), "--config"])
        .arg(&config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the simulator");
    for _ in 0..200 {
        if common::http_get(address, "/3rdparty/v1/health", None)
            .await
            .is_some()
        {
            return (address, child);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the simulator did not start on {address}");
}

async fn server(binary: &str, scratch: &std::path::Path, name: &str, gateway: SocketAddr) -> Relay {
    let (smpp, http, admin) = (free_port(), free_port(), free_port());
    let child = Command::new(binary)
        .arg("serve")
        .env("SMPP__BIND_ADDRESS", smpp.to_string())
        .env("SMPP__TLS_BIND_ADDRESS", free_port().to_string())
        .env("HTTP__ADDRESS", http.to_string())
        .env("ADMIN__ADDRESS", admin.to_string())
        .env("SMPP__WINDOW", "1024")
        .env(
            "GATEWAY__API_BASE_URL",
            format!("http://{gateway}/3rdparty/v1"),
        )
        .env("DELIVERY__DATA_DIR", scratch.join(format!("data-{name}")))
        .env("PLUGINS__DIR", scratch.join("no-plugins"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the server");
    wait_ready(http).await;
    Relay { smpp, child }
}

async fn baseline(dir: &std::path::Path, gateway: SocketAddr) -> Relay {
    let smpp = free_port();
    let mut child = Command::new("node")
        .arg(dir.join("relay.js"))
        .arg(smpp.port().to_string())
        .arg(format!("http://{gateway}/3rdparty/v1"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the baseline relay (node)");
    let stdout = child.stdout.take().expect("the relay's stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the baseline relay listens within 30 s")
        .expect("read the relay's stdout");
    assert_eq!(
        line.as_deref(),
        Some("listening"),
        "the baseline relay did not start"
    );
    Relay { smpp, child }
}
