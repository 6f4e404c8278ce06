//! What bound but idle sessions cost: the server's resident memory per session, and how often
//! the process wakes while nothing happens. Aggregators keep hundreds of binds open around the
//! clock, most of them quiet.
//!
//! `cargo bench --bench idle_sessions` (env: BENCH_SESSIONS, default 10000 (the process needs
//! that many file descriptors, and so does this one); BENCH_IDLE_SECONDS, default 10;
//! BENCH_SERVER_BIN: another build of the server to measure). Per bind
//! kind: memory = growth of the server's VmRSS over the binds / sessions; wake-ups = context
//! switches of all the server's threads per second of idleness; CPU = its user + system time
//! over the idle window.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use smpp_codec::command::{BIND_TRANSCEIVER, BIND_TRANSMITTER};
use smpp_codec::status::ESME_ROK;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;

mod common;

use common::{bind_demo, cpu_time, env_or, free_port, serve_simulated};

/// Binds made at once; the kernel's accept backlog is the limit beyond this.
const CONCURRENT_BINDS: usize = 256;

#[tokio::main]
async fn main() {
    let sessions: usize = env_or("BENCH_SESSIONS", 10_000);
    let idle = Duration::from_secs(env_or("BENCH_IDLE_SECONDS", 10));
    let binary = std::env::var("BENCH_SERVER_BIN")
        .ok()
        .filter(|bin| !bin.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_smsgate-smpp").to_owned());
    println!(
        "server: {binary}\n{sessions} bound sessions, idle for {}s; {} logical CPUs",
        idle.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<12} {:>14} {:>16} {:>18}",
        "bind", "KiB/session", "wake-ups/s idle", "CPU ms/s idle"
    );
    for (name, command_id) in [
        ("transmitter", BIND_TRANSMITTER),
        ("transceiver", BIND_TRANSCEIVER),
    ] {
        // A server of its own per kind: memory the allocator kept from the sessions of one
        // kind would otherwise serve the next without growing.
        let (mut server, pid, smpp, data_dir) = start(&binary, sessions).await;
        // The first bind warms the credential cache and the account's state.
        let warm = bind_all(smpp, command_id, 1).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = resident_kib(pid);
        let open = bind_all(smpp, command_id, sessions).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let grown = resident_kib(pid).saturating_sub(before);

        let (switches, cpu) = (context_switches(pid), cpu_time(pid));
        tokio::time::sleep(idle).await;
        let woke = context_switches(pid) - switches;
        let busy = cpu_time(pid) - cpu;
        println!(
            "{:<12} {:>14.1} {:>16.1} {:>18.2}",
            name,
            grown as f64 / sessions as f64,
            woke as f64 / idle.as_secs_f64(),
            busy.as_secs_f64() * 1000.0 / idle.as_secs_f64(),
        );
        drop(open);
        drop(warm);
        let _ = server.start_kill();
        let _ = server.wait().await;
        let _ = std::fs::remove_dir_all(&data_dir);
    }
}

/// `serve --simulate` taking `sessions` connections and some more.
async fn start(binary: &str, sessions: usize) -> (Child, u32, SocketAddr, PathBuf) {
    let data_dir = std::env::temp_dir().join(format!(
        "idle-bench-{}-{}",
        std::process::id(),
        free_port().port()
    ));
    let env = [
        ("SMPP__MAX_CONNECTIONS", (sessions + 100).to_string()),
        ("RUST_LOG", "error".to_owned()),
    ];
    let (server, pid, smpp) = serve_simulated(binary, &data_dir, &[], &env).await;
    (server, pid, smpp, data_dir)
}

/// `count` connections bound as the demo account, kept open by the caller.
async fn bind_all(address: SocketAddr, command_id: u32, count: usize) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(count);
    let mut sequence = 0;
    while open.len() < count {
        let batch = CONCURRENT_BINDS.min(count - open.len());
        let binds = (0..batch).map(|_| {
            sequence += 1;
            bind_one(address, command_id, sequence)
        });
        open.extend(futures::future::join_all(binds).await);
    }
    open
}

async fn bind_one(address: SocketAddr, command_id: u32, sequence: u32) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream
        .write_all(&bind_demo(command_id, sequence))
        .await
        .expect("send bind");
    let mut header = [0u8; 16];
    stream.read_exact(&mut header).await.expect("bind_resp");
    let word = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    assert_eq!(word(8), ESME_ROK.0, "bind refused");
    let mut body = vec![0; word(0) as usize - 16];
    stream.read_exact(&mut body).await.expect("bind_resp body");
    stream
}

fn resident_kib(pid: u32) -> u64 {
    status_field(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Voluntary and involuntary context switches of every thread of `pid`: each is a wake-up.
fn context_switches(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the server's threads")
        .filter_map(Result::ok)
        .map(|task| {
            let status = task.path().join("status");
            let status = status.to_string_lossy();
            status_field(&status, "voluntary_ctxt_switches:")
                + status_field(&status, "nonvoluntary_ctxt_switches:")
        })
        .sum()
}

/// The number after `name` in a /proc status file (0 when the file or the line is gone).
fn status_field(path: &str, name: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
