//! submit_sm throughput of one bind against the embedded simulator, measured the way an
//! aggregator loads an SMSC: a closed loop that keeps `window` requests outstanding. Each run
//! compares windows in the same process and minute (this machine is noisy): window 1 is the
//! lock-step behaviour of the Go server this replaces.
//!
//! `cargo bench --bench submit_throughput` (env: BENCH_SECONDS, default 10; BENCH_WINDOWS,
//! default "1,64"; BENCH_BINDS, default 1; BENCH_GATEWAY_LATENCY, e.g. "50ms", makes the
//! simulator take that long to answer each submit, as a phone gateway in the cloud does;
//! BENCH_RECEIPTS, default "0,1": the registered_delivery values to run each window with;
//! BENCH_SERVER_BIN: another build of the server to measure, e.g. the static musl one).
//! The "cpu µs/msg" column is the server process's CPU time (user + system, its embedded
//! simulator included) over the run and its drain, per accepted message.
//! With receipts the run ends by waiting for every receipt (at most 30 s of silence) and
//! prints how many came and how long after the last submit_sm the last one arrived.
//!
//! With registered_delivery 1 every message is recorded for its receipt before the gateway
//! call, and its receipt comes back through the simulator's webhooks, the durable queue and a
//! deliver_sm, which the load generator answers; both runs share the machine, so the pair shows
//! what asking for receipts costs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use smpp_codec::command::{DELIVER_SM, DELIVER_SM_RESP, SUBMIT_SM_RESP};
use smpp_codec::status::ESME_ROK;
use tokio::io::AsyncWriteExt;

mod common;

use common::{bound_transceiver, cpu_time, env_or, pdu, read_pdu, serve_simulated, submit_sm};

#[tokio::main]
async fn main() {
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let binds: usize = env_or("BENCH_BINDS", 1);
    let windows: Vec<usize> = std::env::var("BENCH_WINDOWS")
        .unwrap_or_else(|_| "1,64".into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    let receipts: Vec<u8> = std::env::var("BENCH_RECEIPTS")
        .unwrap_or_else(|_| "0,1".into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();

    let latency = std::env::var("BENCH_GATEWAY_LATENCY").unwrap_or_default();
    let config = std::env::temp_dir().join(format!("submit-bench-{}.toml", std::process::id()));
    let rules = if latency.is_empty() {
        String::new()
    } else {
        format!(
            "[[simulator.rules]]\npattern = \".\"\noutcome = {{ kind = \"stall\", delay = \"{latency}\" }}\n"
        )
    };
    std::fs::write(&config, rules).expect("write the bench config");

    let data_dir = std::env::temp_dir().join(format!("submit-bench-data-{}", std::process::id()));
    let binary = std::env::var("BENCH_SERVER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_smsgate-smpp").to_owned());
    let env = [
        ("SMPP__WINDOW", "1024".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let (mut server, pid, smpp) = serve_simulated(
        &binary,
        &data_dir,
        &["--config".as_ref(), config.as_ref()],
        &env,
    )
    .await;

    println!("server: {binary}");
    println!(
        "submit_sm against the embedded simulator: {binds} bind(s), {seconds}s per run, \
         gateway latency {}, {} logical CPUs",
        if latency.is_empty() { "none" } else { &latency },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>7} {:>4} {:>12} {:>10} {:>10} {:>10} {:>8} {:>18} {:>9} {:>12}",
        "window",
        "rd",
        "submit_sm/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "receipts/accepted",
        "drain s",
        "cpu µs/msg"
    );
    for window in windows {
        for &registered_delivery in &receipts {
            let cpu_before = cpu_time(pid);
            let mut runs = Vec::new();
            for _ in 0..binds {
                runs.push(tokio::spawn(load(
                    smpp,
                    window,
                    registered_delivery,
                    Duration::from_secs(seconds),
                )));
            }
            let mut total = Outcome::default();
            for run in runs {
                total.merge(run.await.expect("load task"));
            }
            let cpu = cpu_time(pid) - cpu_before;
            println!(
                "{:>7} {:>4} {:>12.0} {:>10.2} {:>10.2} {:>10.2} {:>8} {:>18} {:>9.1} {:>12.1}",
                window,
                registered_delivery,
                total.ok as f64 / seconds as f64,
                total.latency.value_at_quantile(0.5) as f64 / 1000.0,
                total.latency.value_at_quantile(0.99) as f64 / 1000.0,
                total.latency.max() as f64 / 1000.0,
                total.errors,
                format!("{}/{}", total.receipts, total.accepted),
                total.drain.as_secs_f64(),
                cpu.as_secs_f64() * 1e6 / total.accepted.max(1) as f64,
            );
        }
    }
    let _ = server.start_kill();
    let _ = server.wait().await;
    let _ = std::fs::remove_file(&config);
    let _ = std::fs::remove_dir_all(&data_dir);
}

struct Outcome {
    ok: u64,
    errors: u64,
    /// Messages accepted, whenever their answer came.
    accepted: u64,
    /// deliver_sm received (and answered), during the run and the drain after it.
    receipts: u64,
    /// From the end of the run until the last receipt arrived.
    drain: Duration,
    latency: Histogram<u64>,
}

impl Default for Outcome {
    fn default() -> Self {
        Outcome {
            ok: 0,
            errors: 0,
            accepted: 0,
            receipts: 0,
            drain: Duration::ZERO,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        }
    }
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.accepted += other.accepted;
        self.receipts += other.receipts;
        self.drain = self.drain.max(other.drain);
        self.latency.add(other.latency).expect("same bounds");
    }
}

/// One bind keeping `window` submit_sm outstanding until `duration` is over, then draining.
async fn load(
    address: SocketAddr,
    window: usize,
    registered_delivery: u8,
    duration: Duration,
) -> Outcome {
    let (mut reader, mut writer) = bound_transceiver(address, "demo", "demo1234").await;

    let mut outcome = Outcome::default();
    let mut sent_at: HashMap<u32, Instant> = HashMap::with_capacity(window);
    let mut sequence = 1u32;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(window * 80);
    loop {
        let sending = started.elapsed() < duration;
        batch.clear();
        while sending && sent_at.len() < window {
            sequence += 1;
            batch.extend_from_slice(&submit_sm(sequence, registered_delivery));
            sent_at.insert(sequence, Instant::now());
        }
        if !batch.is_empty() {
            writer.write_all(&batch).await.expect("send submit_sm");
        }
        if sent_at.is_empty() {
            break;
        }
        let (id, status, seq, _) = read_pdu(&mut reader).await;
        if id == DELIVER_SM {
            outcome.receipts += 1;
            let answer = pdu(DELIVER_SM_RESP, seq, b"\0");
            writer
                .write_all(&answer)
                .await
                .expect("send deliver_sm_resp");
            continue;
        }
        if id != SUBMIT_SM_RESP {
            continue;
        }
        if let Some(at) = sent_at.remove(&seq) {
            let micros = at.elapsed().as_micros().max(1) as u64;
            let _ = outcome.latency.record(micros);
            if status == ESME_ROK {
                outcome.accepted += 1;
            }
            if status == ESME_ROK && started.elapsed() <= duration {
                outcome.ok += 1;
            } else if status != ESME_ROK {
                outcome.errors += 1;
            }
        }
    }
    // Take the receipts still on their way, so they do not land on the next run's bind, and
    // see how long the last one takes.
    let ended = Instant::now();
    while registered_delivery != 0 && outcome.receipts < outcome.accepted {
        let next = tokio::time::timeout(Duration::from_secs(30), read_pdu(&mut reader)).await;
        let Ok((id, _, seq, _)) = next else {
            break;
        };
        if id == DELIVER_SM {
            outcome.receipts += 1;
            outcome.drain = ended.elapsed();
            let answer = pdu(DELIVER_SM_RESP, seq, b"\0");
            writer
                .write_all(&answer)
                .await
                .expect("send deliver_sm_resp");
        }
    }
    outcome
}
