//! The delivery path under load: webhook events posted the way a busy phone posts them, stored
//! in the durable queue and sent as deliver_sm to one bind_receiver. Each window
//! (`DELIVERY__WINDOW`, the deliver_sm a session may have unanswered) gets a fresh server and
//! data directory, and all windows run in the same process and minute because this machine is
//! noisy. Window 1 is lock-step delivery, one deliver_sm at a time, so its rate is bounded by
//! the round trip to the ESME and the queue removal after each answer.
//!
//! `cargo bench --bench deliver_throughput` (env: BENCH_WINDOWS, default "1,16"; BENCH_EVENTS,
//! default 20000; BENCH_CONCURRENCY, default 32: HTTP clients posting at once, each over its
//! own keep-alive connection; BENCH_ESME_DELAY, e.g. "2ms": how long the ESME takes to answer
//! each deliver_sm, as a slower ESME or one across a network does; the answers wait on a thread
//! of their own, so the delay does not hold up reading). With a delay, window 1 takes about
//! BENCH_EVENTS × (delay + 0.9 ms) on the 2-core development machine, a minute for the
//! defaults and 2 ms; BENCH_EVENTS=5000 keeps it short.
//!
//! The events are `sms:received`, posted straight to the URL the server registered with the
//! embedded simulator, so the phone's own pacing is left out. The table shows both ends: how
//! fast webhook calls are taken (each answered 200 "queued" only once on disk; anything else
//! counts as an error) and how fast the deliver_sm reach the ESME, with the latency from the
//! start of an event's POST to the arrival of its deliver_sm (matched by the text "Bench
//! message N"), and whether every event arrived exactly once. "drain s" is how long after the
//! last webhook answer the last deliver_sm came: the backlog the window could not keep up with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use bytes::BytesMut;
use hdrhistogram::Histogram;
use smpp_codec::command::{
    BIND_RECEIVER, BIND_RECEIVER_RESP, DELIVER_SM, DELIVER_SM_RESP, ENQUIRE_LINK, ENQUIRE_LINK_RESP,
};
use smpp_codec::status::{CommandStatus, ESME_ROK};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// What every event's text starts with; the event's number follows.
const MARKER: &[u8] = b"Bench message ";
/// Once all webhook calls are answered, the ESME waits at most this long for the next
/// deliver_sm before it gives up on the missing ones.
const SILENCE: Duration = Duration::from_secs(10);

mod common;

use common::{bind_demo, env_or, free_port, http_get, pdu, wait_ready};

#[tokio::main]
async fn main() {
    let events: usize = env_or("BENCH_EVENTS", 20_000);
    let concurrency: usize = env_or::<usize>("BENCH_CONCURRENCY", 32).max(1);
    let windows: Vec<usize> = std::env::var("BENCH_WINDOWS")
        .unwrap_or_else(|_| "1,16".into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    let delay_text = std::env::var("BENCH_ESME_DELAY").unwrap_or_default();
    let delay = if delay_text.trim().is_empty() {
        Duration::ZERO
    } else {
        humantime::parse_duration(delay_text.trim())
            .expect("BENCH_ESME_DELAY is a duration such as \"2ms\"")
    };

    println!(
        "deliver_sm to one bind_receiver: {events} sms:received webhook events from \
         {concurrency} HTTP clients, ESME answer delay {}, {} logical CPUs",
        if delay.is_zero() {
            "none".to_owned()
        } else {
            humantime::format_duration(delay).to_string()
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>7} {:>10} {:>9} {:>9} {:>7} {:>13} {:>9} {:>9} {:>18} {:>5} {:>8}",
        "window",
        "webhook/s",
        "wh p50ms",
        "wh p99ms",
        "errors",
        "deliver_sm/s",
        "e2e p50ms",
        "e2e p99ms",
        "received/expected",
        "dups",
        "drain s"
    );
    for window in windows {
        let server = Server::start(window).await;
        let run = run(&server, events, concurrency, delay).await;
        server.stop().await;
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{:>7} {:>10.0} {:>9.2} {:>9.2} {:>7} {:>13.0} {:>9.1} {:>9.1} {:>18} {:>5} {:>8.2}",
            window,
            run.ok as f64 / run.posting.as_secs_f64(),
            ms(&run.webhook_latency, 0.5),
            ms(&run.webhook_latency, 0.99),
            run.errors,
            run.esme.unique as f64 / run.delivering.as_secs_f64(),
            ms(&run.esme.end_to_end, 0.5),
            ms(&run.esme.end_to_end, 0.99),
            format!("{}/{}", run.esme.unique, run.ok),
            run.esme.duplicates + run.esme.unmatched,
            run.drain.as_secs_f64(),
        );
    }
}

/// One server process with its own ports and data directory.
struct Server {
    child: Child,
    smpp: SocketAddr,
    simulator: SocketAddr,
    data_dir: PathBuf,
}

impl Server {
    async fn start(window: usize) -> Server {
        let data_dir = std::env::temp_dir().join(format!(
            "deliver-bench-data-{}-{window}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&data_dir);
        let smpp = free_port();
        let http = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_smsgate-smpp"))
            .args(["serve", "--simulate"])
            .env("SMPP__BIND_ADDRESS", smpp.to_string())
            .env("HTTP__ADDRESS", http.to_string())
            .env("DELIVERY__DATA_DIR", &data_dir)
            .env("DELIVERY__WINDOW", window.to_string())
            // Warnings only, but for the line that says where the simulator runs: it takes
            // port 3100 only when that is free.
            .env("RUST_LOG", "warn,smsgate_smpp::server=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the server");
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, simulator) = oneshot::channel();
        tokio::spawn(async move {
            let mut found = Some(found);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = strip_ansi(&line);
                if line.contains("embedded SMSGate simulator running") {
                    let address = line
                        .split("address=")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|a| a.parse::<SocketAddr>().ok());
                    if let (Some(address), Some(found)) = (address, found.take()) {
                        let _ = found.send(address);
                    }
                } else if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("server: {line}");
                }
            }
        });
        wait_ready(http).await;
        let simulator = tokio::time::timeout(Duration::from_secs(10), simulator)
            .await
            .expect("the server logged its simulator's address within 10s")
            .expect("the simulator's address");
        Server {
            child,
            smpp,
            simulator,
            data_dir,
        }
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

struct Run {
    /// Webhook calls answered 200 "queued".
    ok: u64,
    errors: u64,
    webhook_latency: Histogram<u64>,
    /// From the first POST until the last webhook answer.
    posting: Duration,
    /// From the first POST until the last deliver_sm.
    delivering: Duration,
    /// From the last webhook answer until the last deliver_sm.
    drain: Duration,
    esme: Esme,
}

async fn run(server: &Server, events: usize, concurrency: usize, delay: Duration) -> Run {
    let stream = TcpStream::connect(server.smpp).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(&bind_demo(BIND_RECEIVER, 1))
        .await
        .expect("send bind_receiver");
    let mut header = [0u8; 16];
    tokio::time::timeout(Duration::from_secs(30), reader.read_exact(&mut header))
        .await
        .expect("bind answered within 30s")
        .expect("read bind_receiver_resp");
    let word = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    let status = CommandStatus(word(8));
    assert_eq!(
        (word(4), status),
        (BIND_RECEIVER_RESP, ESME_ROK),
        "bind refused ({status})"
    );
    let mut rest = vec![0; word(0) as usize - 16];
    reader.read_exact(&mut rest).await.expect("read bind body");

    let url = webhook_url(server.simulator).await;
    let (host, path) = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once('/'))
        .expect("an http:// webhook URL with a path");
    let target: SocketAddr = host.parse().expect("the webhook URL names an address");
    let path: Arc<str> = format!("/{path}").into();

    let epoch = Instant::now();
    let starts: Arc<Vec<AtomicU64>> = Arc::new((0..events).map(|_| AtomicU64::new(0)).collect());
    let (expected_tx, expected_rx) = watch::channel(u64::MAX);
    let esme = tokio::spawn(esme(
        reader,
        writer,
        delay,
        Arc::clone(&starts),
        epoch,
        expected_rx,
    ));

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            tokio::spawn(client(
                target,
                Arc::clone(&path),
                Arc::clone(&next),
                Arc::clone(&starts),
                epoch,
            ))
        })
        .collect();
    let mut posted = Posted::default();
    for client in clients {
        posted.merge(client.await.expect("client task"));
    }
    let posted_at = Instant::now();
    let _ = expected_tx.send(posted.ok);
    let esme = esme.await.expect("esme task");
    let last = esme.last_arrival.unwrap_or(posted_at);
    Run {
        ok: posted.ok,
        errors: posted.errors,
        webhook_latency: posted.latency,
        posting: posted_at - started,
        delivering: last.saturating_duration_since(started),
        drain: last.saturating_duration_since(posted_at),
        esme,
    }
}

struct Posted {
    ok: u64,
    errors: u64,
    latency: Histogram<u64>,
}

impl Default for Posted {
    fn default() -> Self {
        Posted {
            ok: 0,
            errors: 0,
            latency: histogram(),
        }
    }
}

impl Posted {
    fn merge(&mut self, other: Posted) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latency.add(other.latency).expect("same bounds");
    }
}

/// Posts events (the next number not taken by another client) over one keep-alive connection
/// until all are posted; a broken connection is opened again.
async fn client(
    target: SocketAddr,
    path: Arc<str>,
    next: Arc<AtomicUsize>,
    starts: Arc<Vec<AtomicU64>>,
    epoch: Instant,
) -> Posted {
    let mut posted = Posted::default();
    let mut connection: Option<BufReader<TcpStream>> = None;
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= starts.len() {
            return posted;
        }
        let body = event_body(n);
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {target}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let sent = Instant::now();
        starts[n].store(
            sent.duration_since(epoch).as_nanos() as u64 + 1,
            Ordering::Relaxed,
        );
        match exchange(&mut connection, target, request.as_bytes()).await {
            Ok((200, answer)) if answer.contains("\"status\":\"queued\"") => {
                posted.ok += 1;
                let _ = posted
                    .latency
                    .record(sent.elapsed().as_micros().max(1) as u64);
            }
            Ok((status, answer)) => {
                posted.errors += 1;
                if posted.errors == 1 {
                    eprintln!("webhook call answered {status}: {answer}");
                }
            }
            Err(e) => {
                posted.errors += 1;
                connection = None;
                if posted.errors == 1 {
                    eprintln!("webhook call failed: {e}");
                }
            }
        }
    }
}

/// One HTTP/1.1 request and its answer (status, body).
async fn exchange(
    connection: &mut Option<BufReader<TcpStream>>,
    target: SocketAddr,
    request: &[u8],
) -> std::io::Result<(u16, String)> {
    if connection.is_none() {
        let stream = TcpStream::connect(target).await?;
        stream.set_nodelay(true)?;
        *connection = Some(BufReader::new(stream));
    }
    let stream = connection.as_mut().expect("connected");
    stream.get_mut().write_all(request).await?;
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut length = None;
    let mut close = false;
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
    }
    let length = length.ok_or_else(|| std::io::Error::other("answer without Content-Length"))?;
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    if close {
        *connection = None;
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// What the ESME saw.
struct Esme {
    /// Events whose deliver_sm came, each counted once.
    unique: u64,
    /// deliver_sm for an event that had already come.
    duplicates: u64,
    /// deliver_sm without a bench text.
    unmatched: u64,
    /// From the start of an event's POST to the arrival of its (first) deliver_sm.
    end_to_end: Histogram<u64>,
    last_arrival: Option<Instant>,
}

/// The receiver: reads deliver_sm and answers each ESME_ROK `delay` after it came, until
/// every event posted successfully (`expected`, known once posting is over) has come or
/// nothing comes for [`SILENCE`].
async fn esme(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    writer: OwnedWriteHalf,
    delay: Duration,
    starts: Arc<Vec<AtomicU64>>,
    epoch: Instant,
    mut expected: watch::Receiver<u64>,
) -> Esme {
    let (writes, to_write) = mpsc::unbounded_channel();
    let writing = tokio::spawn(write(writer, to_write));
    // Delayed answers wait on a thread of their own: tokio's timer would make a 2 ms delay
    // about 3 ms.
    let delayed = (!delay.is_zero()).then(|| {
        let (delayed, to_delay) = std::sync::mpsc::channel();
        let writes = writes.clone();
        (
            delayed,
            std::thread::spawn(move || answer_when_due(to_delay, writes)),
        )
    });
    let mut seen = vec![false; starts.len()];
    let mut esme = Esme {
        unique: 0,
        duplicates: 0,
        unmatched: 0,
        end_to_end: histogram(),
        last_arrival: None,
    };
    let mut buffer = BytesMut::with_capacity(64 * 1024);
    let mut wanted = u64::MAX;
    let mut heard = Instant::now();
    while esme.unique < wanted {
        tokio::select! {
            read = reader.read_buf(&mut buffer) => {
                match read {
                    Ok(0) | Err(_) => {
                        eprintln!("the server closed the receiver session");
                        break;
                    }
                    Ok(_) => {}
                }
                let now = Instant::now();
                heard = now;
                while buffer.len() >= 16 {
                    let length = u32::from_be_bytes(buffer[0..4].try_into().expect("4")) as usize;
                    if buffer.len() < length {
                        break;
                    }
                    let pdu = buffer.split_to(length);
                    let id = u32::from_be_bytes(pdu[4..8].try_into().expect("4"));
                    let seq = u32::from_be_bytes(pdu[12..16].try_into().expect("4"));
                    match id {
                        DELIVER_SM => {
                            match event_number(&pdu[16..]).filter(|&n| n < seen.len()) {
                                Some(n) if seen[n] => esme.duplicates += 1,
                                Some(n) => {
                                    seen[n] = true;
                                    esme.unique += 1;
                                    let start = starts[n].load(Ordering::Relaxed);
                                    let arrived = now.duration_since(epoch).as_nanos() as u64 + 1;
                                    let micros = arrived.saturating_sub(start) / 1000;
                                    let _ = esme.end_to_end.record(micros.max(1));
                                }
                                None => esme.unmatched += 1,
                            }
                            esme.last_arrival = Some(now);
                            match &delayed {
                                Some((delayed, _)) => {
                                    let _ = delayed.send((seq, (now + delay).into_std()));
                                }
                                None => {
                                    let _ = writes.send(response(DELIVER_SM_RESP, seq));
                                }
                            }
                        }
                        ENQUIRE_LINK => {
                            let _ = writes.send(response(ENQUIRE_LINK_RESP, seq));
                        }
                        _ => {}
                    }
                }
            }
            changed = expected.changed(), if wanted == u64::MAX => {
                if changed.is_ok() {
                    wanted = *expected.borrow();
                }
            }
            _ = tokio::time::sleep_until(heard + SILENCE), if wanted != u64::MAX => break,
        }
    }
    if let Some((delayed, thread)) = delayed {
        drop(delayed);
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    drop(writes);
    let _ = writing.await;
    esme
}

/// Sends each deliver_sm_resp once it is due, together with those due by then; all delays
/// being the same, they fall due in the order they come.
fn answer_when_due(
    to_delay: std::sync::mpsc::Receiver<(u32, std::time::Instant)>,
    writes: mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut waiting = None;
    loop {
        let next = match waiting.take() {
            Some(next) => Some(next),
            None => to_delay.recv().ok(),
        };
        let Some((seq, due)) = next else {
            return;
        };
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
        let mut batch = response(DELIVER_SM_RESP, seq);
        let now = std::time::Instant::now();
        while let Ok((seq, due)) = to_delay.try_recv() {
            if due > now {
                waiting = Some((seq, due));
                break;
            }
            batch.extend_from_slice(&response(DELIVER_SM_RESP, seq));
        }
        if writes.send(batch).is_err() {
            return;
        }
    }
}

/// Writes what the session has to send, all that is ready at once.
async fn write(mut writer: OwnedWriteHalf, mut to_write: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(mut batch) = to_write.recv().await {
        while let Ok(more) = to_write.try_recv() {
            batch.extend_from_slice(&more);
        }
        if writer.write_all(&batch).await.is_err() {
            return;
        }
    }
}

fn response(id: u32, seq: u32) -> Vec<u8> {
    // deliver_sm_resp carries an empty message_id; enquire_link_resp no body.
    let body: &[u8] = if id == DELIVER_SM_RESP { b"\0" } else { b"" };
    pdu(id, seq, body)
}

/// The N of "Bench message N" anywhere in a deliver_sm body.
fn event_number(body: &[u8]) -> Option<usize> {
    let at = body.windows(MARKER.len()).position(|w| w == MARKER)? + MARKER.len();
    let digits: Vec<u8> = body[at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn event_body(n: usize) -> String {
    format!(
        concat!(
            r#"{{"deviceId":"bench","event":"sms:received","id":"evt-{n}","webhookId":"w","#,
            r#""payload":{{"messageId":"m-{n}","message":"Bench message {n}","#,
            r#""sender":"+4915112345678","recipient":"+4930999999","simNumber":1,"#,
            r#""receivedAt":"2026-11-26T10:00:00.000+01:00"}}}}"#
        ),
        n = n
    )
}

/// The URL the server registered for sms:received with the simulator (the bind starts the
/// registration in the background).
async fn webhook_url(simulator: SocketAddr) -> String {
    let credentials = base64::engine::general_purpose::STANDARD.encode("demo:demo1234");
    for _ in 0..200 {
        let listed = http_get(simulator, "/3rdparty/v1/webhooks", Some(&credentials)).await;
        if let Some(Ok(serde_json::Value::Array(hooks))) =
            listed.map(|body| serde_json::from_str(&body))
        {
            let url = hooks
                .iter()
                .find(|h| h["event"] == "sms:received")
                .and_then(|h| h["url"].as_str());
            if let Some(url) = url {
                return url.to_owned();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no sms:received webhook registered with the simulator at {simulator}");
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

/// Escape sequences, should the log be coloured despite NO_COLOR.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
