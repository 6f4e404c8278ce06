//! What the benchmarks share: raw SMPP PDUs (the load generators write bytes directly, so the
//! client costs as little as possible), the demo account's bind, and waiting for the server
//! they start.

// Each benchmark compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use smpp_codec::command::{BIND_TRANSCEIVER, BIND_TRANSCEIVER_RESP, SUBMIT_SM};
use smpp_codec::status::{CommandStatus, ESME_ROK};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::{Child, Command};

/// A PDU with `body` after the 16-byte header (command_status ESME_ROK).
pub fn pdu(command_id: u32, sequence: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&(16 + body.len() as u32).to_be_bytes());
    out.extend_from_slice(&command_id.to_be_bytes());
    out.extend_from_slice(&ESME_ROK.0.to_be_bytes());
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A bind of the kind `command_id` as the simulator's demo account.
pub fn bind_demo(command_id: u32, sequence: u32) -> Vec<u8> {
    bind(command_id, sequence, "demo", "demo1234")
}

pub fn bind(command_id: u32, sequence: u32, system_id: &str, password: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for field in [system_id, password, ""] {
        body.extend_from_slice(field.as_bytes());
        body.push(0);
    }
    body.extend_from_slice(&[0x34, 0, 0, 0]);
    pdu(command_id, sequence, &body)
}

/// A connection bound as a transceiver, split for a reader and a writer task.
pub async fn bound_transceiver(
    address: SocketAddr,
    system_id: &str,
    password: &str,
) -> (OwnedReadHalf, OwnedWriteHalf) {
    let stream = TcpStream::connect(address).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(&bind(BIND_TRANSCEIVER, 1, system_id, password))
        .await
        .expect("send bind");
    let (id, status, _, _) = read_pdu(&mut reader).await;
    assert_eq!(
        (id, status),
        (BIND_TRANSCEIVER_RESP, ESME_ROK),
        "bind refused ({status})"
    );
    (reader, writer)
}

/// The body of a successful `GET path` on `address` (HTTP/1.0, optional Basic credentials
/// already base64-encoded), or `None`.
pub async fn http_get(address: SocketAddr, path: &str, basic: Option<&str>) -> Option<String> {
    let mut stream = TcpStream::connect(address).await.ok()?;
    let authorization = basic.map_or(String::new(), |c| format!("Authorization: Basic {c}\r\n"));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n{authorization}\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    let ok = answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200");
    let (_, body) = answer.split_once("\r\n\r\n")?;
    ok.then(|| body.to_owned())
}

/// Waits for the server's readiness endpoint on `http`.
pub async fn wait_ready(http: SocketAddr) {
    for _ in 0..200 {
        if http_get(http, "/health/ready", None).await.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server not ready on {http}");
}

#[path = "../../../tests/free_port.rs"]
mod ports;

pub fn free_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], ports::free_port()))
}

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A realistic 51-character GSM text to an international number.
pub fn submit_sm(sequence: u32, registered_delivery: u8) -> Vec<u8> {
    let text = b"Your verification code is 482915. It expires in 5m.";
    let mut body = Vec::with_capacity(96);
    body.push(0); // service_type
    body.extend_from_slice(&[5, 0]);
    body.extend_from_slice(b"Shop\0");
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(b"491701234567\0");
    // esm_class, protocol_id, priority, schedule, validity, registered_delivery,
    // replace_if_present, data_coding, sm_default_msg_id
    body.extend_from_slice(&[0, 0, 0, 0, 0, registered_delivery, 0, 0, 0]);
    body.push(text.len() as u8);
    body.extend_from_slice(text);
    pdu(SUBMIT_SM, sequence, &body)
}

pub async fn read_pdu(reader: &mut OwnedReadHalf) -> (u32, CommandStatus, u32, Vec<u8>) {
    let mut header = [0u8; 16];
    tokio::time::timeout(Duration::from_secs(30), reader.read_exact(&mut header))
        .await
        .expect("server answered within 30s")
        .expect("read header");
    let word = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    let mut body = vec![0; word(0) as usize - 16];
    reader.read_exact(&mut body).await.expect("read body");
    (word(4), CommandStatus(word(8)), word(12), body)
}

/// User plus system CPU time of process `pid`, all its threads, from /proc/PID/stat.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("stat format") + 2..]
        .split(' ')
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .expect("getconf CLK_TCK");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("CLK_TCK")
    })
}

/// A `serve --simulate` server of `binary` for a benchmark: every listener on a free port, its
/// queue in `data_dir`, `args` after `--simulate` and `env` added; returned once ready, with
/// its pid and SMPP address.
pub async fn serve_simulated(
    binary: &str,
    data_dir: &Path,
    args: &[&std::ffi::OsStr],
    env: &[(&str, String)],
) -> (Child, u32, SocketAddr) {
    let (smpp, http) = (free_port(), free_port());
    let server = Command::new(binary)
        .args(["serve", "--simulate"])
        .args(args)
        .env("SMPP__BIND_ADDRESS", smpp.to_string())
        .env("SMPP__TLS_BIND_ADDRESS", free_port().to_string())
        .env("HTTP__ADDRESS", http.to_string())
        .env("ADMIN__ADDRESS", free_port().to_string())
        .env("SIMULATOR__LISTEN", free_port().to_string())
        .env("DELIVERY__DATA_DIR", data_dir)
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the server");
    let pid = server.id().expect("the server's pid");
    wait_ready(http).await;
    (server, pid, smpp)
}
