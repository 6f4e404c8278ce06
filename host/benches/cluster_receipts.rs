//! Receipts end to end, one instance on its embedded store against three instances sharing
//! Redis behind HAProxy, in one run on one machine. In both set-ups three ESMEs (bind
//! transceiver, each its own SMSGate account of the simulator) each submit BENCH_MESSAGES messages asking for a receipt,
//! keeping 64 unanswered; a standalone simulator sends them and posts each message's
//! `sms:delivered`, and the run ends when every ESME has its receipts. With one instance the
//! three ESMEs and the webhooks share it; with three, each ESME binds to its own instance and
//! the webhooks reach the instances round robin through HAProxy, so most receipts cross from
//! the instance that took the webhook to the one the ESME is bound to.
//!
//! `cargo bench --bench cluster_receipts` (env: BENCH_MESSAGES per ESME, default 3000).
//! Needs `redis-server` and `haproxy` (Debian packages; tests/run installs them).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use smpp_codec::command::{DELIVER_SM, DELIVER_SM_RESP, SUBMIT_SM_RESP};
use smpp_codec::status::ESME_ROK;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

mod common;

use base64::Engine;
use common::{
    bound_transceiver, env_or, free_port, http_get, pdu, read_pdu, submit_sm, wait_ready,
};

const ESMES: usize = 3;
const WINDOW: usize = 64;

#[tokio::main]
async fn main() {
    let messages: usize = env_or("BENCH_MESSAGES", 3000);
    let dir = std::env::temp_dir().join(format!("cluster-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench directory");
    println!(
        "receipts end to end: {ESMES} ESMEs × {messages} submit_sm with registered_delivery 1, \
         window {WINDOW}, {} logical CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<34} {:>10} {:>12} {:>12} {:>10}",
        "set-up", "receipts", "receipts/s", "submit_sm/s", "seconds"
    );
    for instances in [1, 3] {
        let run = run(&dir, instances, messages).await;
        let label = match instances {
            1 => "1 instance, embedded store".to_owned(),
            n => format!("{n} instances, Redis, HAProxy"),
        };
        println!(
            "{label:<34} {:>10} {:>12.0} {:>12.0} {:>10.1}",
            format!("{}/{}", run.receipts, ESMES * messages),
            run.receipts as f64 / run.elapsed.as_secs_f64(),
            (ESMES * messages) as f64 / run.submitted.as_secs_f64(),
            run.elapsed.as_secs_f64(),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

struct Run {
    receipts: usize,
    /// Until the last submit_sm_resp.
    submitted: Duration,
    /// Until the last receipt.
    elapsed: Duration,
}

/// Processes of one set-up, killed when dropped.
struct Processes(Vec<Child>);

impl Processes {
    fn spawn(&mut self, command: &mut Command) {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        self.0.push(child);
    }
}

async fn run(dir: &Path, instances: usize, messages: usize) -> Run {
    let mut processes = Processes(Vec::new());
    let simulator = free_port();
    let sim_config = dir.join(format!("simulator-{instances}.toml"));
    let mut accounts = String::from("[simulator]\nstep_delay = \"10ms\"\n");
    for n in 0..ESMES {
        let (user, password) = account(n);
        accounts.push_str(&format!(
            "[[simulator.accounts]]\nusername = \"{user}\"\npassword = \"{password}\"\n"
        ));
    }
    std::fs::write(&sim_config, accounts).expect("write");
    processes.spawn(
        Command::new(env!("CARGO_BIN_EXE_smsgate-smpp"))
            .args(["simulator", "--listen", &simulator.to_string(), "--config"])
            .arg(&sim_config),
    );
    wait_listening(simulator).await;

    let redis = (instances > 1).then(|| {
        let port = free_port();
        processes.spawn(
            Command::new("redis-server")
                .args(["--port", &port.port().to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"]),
        );
        port
    });
    if let Some(redis) = redis {
        wait_listening(redis).await;
    }
    let servers: Vec<(SocketAddr, SocketAddr)> =
        (0..instances).map(|_| (free_port(), free_port())).collect();
    let webhooks = match instances {
        1 => servers[0].1,
        _ => {
            let balancer = free_port();
            let config = haproxy_config(balancer, &servers, dir, instances);
            processes.spawn(Command::new(haproxy()).arg("-db").arg("-f").arg(config));
            wait_listening(balancer).await;
            balancer
        }
    };
    for (n, (smpp, http)) in servers.iter().enumerate() {
        let mut server = Command::new(env!("CARGO_BIN_EXE_smsgate-smpp"));
        server
            .env("SMPP__BIND_ADDRESS", smpp.to_string())
            .env("HTTP__ADDRESS", http.to_string())
            .env("ADMIN__ADDRESS", free_port().to_string())
            .env(
                "GATEWAY__API_BASE_URL",
                format!("http://{simulator}/3rdparty/v1"),
            )
            .env("GATEWAY__WEBHOOK_BASE_URL", format!("http://{webhooks}"))
            .env(
                "DELIVERY__DATA_DIR",
                dir.join(format!("data-{instances}-{n}")),
            )
            .env("DELIVERY__MO_DESTINATION", "491700000000")
            .env("SMPP__WINDOW", "1024")
            .env("RUST_LOG", "warn");
        if let Some(redis) = redis {
            server
                .env("DELIVERY__STORE", "redis")
                .env("DELIVERY__REDIS_URL", format!("redis://{redis}/0"));
        }
        processes.spawn(&mut server);
    }
    for (_, http) in &servers {
        wait_ready(*http).await;
    }

    let mut esmes = Vec::new();
    for n in 0..ESMES {
        let (smpp, _) = servers[n % servers.len()];
        esmes.push(tokio::spawn(esme(smpp, simulator, n, messages)));
    }
    let mut receipts = 0;
    let (mut submitted, mut elapsed) = (Duration::ZERO, Duration::ZERO);
    for esme in esmes {
        let (got, done_submitting, last_receipt) = esme.await.expect("ESME task");
        receipts += got;
        submitted = submitted.max(done_submitting);
        elapsed = elapsed.max(last_receipt);
    }
    Run {
        receipts,
        submitted,
        elapsed,
    }
}

fn account(n: usize) -> (String, String) {
    (format!("bench{n}"), format!("pw{n}"))
}

fn haproxy() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/haproxy");
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from("haproxy")
    }
}

fn haproxy_config(
    listen: SocketAddr,
    servers: &[(SocketAddr, SocketAddr)],
    dir: &Path,
    instances: usize,
) -> PathBuf {
    let mut config = format!(
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 1m\n  timeout server 1m\n\
         frontend webhooks\n  bind {listen}\n  default_backend instances\n\
         backend instances\n  balance roundrobin\n"
    );
    for (n, (_, http)) in servers.iter().enumerate() {
        config.push_str(&format!("  server i{n} {http}\n"));
    }
    let path = dir.join(format!("haproxy-{instances}.cfg"));
    std::fs::write(&path, config).expect("write haproxy.cfg");
    path
}

async fn wait_listening(address: SocketAddr) {
    for _ in 0..200 {
        if TcpStream::connect(address).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nothing listens on {address}");
}

/// Submits `messages` with a receipt each, `WINDOW` at a time, answering the receipts as they
/// come; returns the receipts, and how long after the first submit_sm the submitting and the
/// receipts were done.
async fn esme(
    address: SocketAddr,
    simulator: SocketAddr,
    n: usize,
    messages: usize,
) -> (usize, Duration, Duration) {
    let (user, password) = account(n);
    let (mut reader, mut writer) = bound_transceiver(address, &user, &password).await;
    // The phone calls only the webhooks registered when an event happens; the server
    // registers them in the background after the bind.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    for _ in 0..200 {
        let listed = http_get(simulator, "/3rdparty/v1/webhooks", Some(&basic)).await;
        if listed.is_some_and(|body| body.matches("\"event\"").count() >= 5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let started = Instant::now();
    let (mut sent, mut answered, mut receipts) = (0, 0, 0);
    let (mut submitted, mut last_receipt) = (Duration::ZERO, Duration::ZERO);
    let mut sequence = 1u32;
    while answered < messages || receipts < messages {
        let mut batch = Vec::new();
        while sent < messages && sent - answered < WINDOW {
            sequence += 1;
            sent += 1;
            batch.extend_from_slice(&submit_sm(sequence, 1));
        }
        if !batch.is_empty() {
            writer.write_all(&batch).await.expect("send submit_sm");
        }
        let (id, status, seq, _) = read_pdu(&mut reader).await;
        match id {
            SUBMIT_SM_RESP => {
                assert_eq!(status, ESME_ROK, "submit_sm refused");
                answered += 1;
                submitted = started.elapsed();
            }
            DELIVER_SM => {
                receipts += 1;
                last_receipt = started.elapsed();
                writer
                    .write_all(&pdu(DELIVER_SM_RESP, seq, b"\0"))
                    .await
                    .expect("send deliver_sm_resp");
            }
            _ => {}
        }
    }
    (receipts, submitted, last_receipt)
}
