//! Process harness: a standalone simulator and the server, each on ports of its own, with their
//! logs kept in a scratch directory and printed when a test fails.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smpp_codec::status::ESME_ROK;
pub use smsgate_simulator::Personality;
use tokio::net::TcpStream;

use crate::client::{BindKind, Client};

pub const BIN: &str = env!("CARGO_BIN_EXE_smsgate-smpp");

pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "demo1234";
/// SMSGate passwords are at least 14 characters, far over SMPP's 8.
pub const LONG_USER: &str = "longuser";
pub const LONG_PASSWORD: &str = "Lp9-xT2#qW7!mZ4$vB8k";

/// A process that has not become ready by then is broken, not slow.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// The debug build compiles each plugin with unoptimised Cranelift, seconds per component when
/// the artifact cache is cold, and parallel tests compete for the same cores.
const PLUGIN_START_TIMEOUT: Duration = Duration::from_secs(90);
/// Another test may take a port between our probe and the process binding it.
const START_ATTEMPTS: usize = 3;

/// Variables that would let the caller's environment reconfigure the processes under test.
const CONFIG_PREFIXES: [&str; 7] = [
    "SMPP__",
    "GATEWAY__",
    "HTTP__",
    "ADMIN__",
    "DELIVERY__",
    "SIMULATOR__",
    "PLUGINS__",
];

/// Which API the simulator serves when a test does not say: `SMSGATE_E2E_GATEWAY=local` runs
/// the tests against the phone's own API (SMSGate's Local mode), anything else against an
/// SMSGate server's. The server is left to tell which from the answers (`gateway.mode` auto).
pub fn personality_from_env() -> Personality {
    match std::env::var("SMSGATE_E2E_GATEWAY").as_deref() {
        Ok("local") => Personality::Local,
        _ => Personality::Cloud,
    }
}

/// What the simulator does with messages to numbers matching a rule's pattern.
pub enum Outcome {
    Reject { status: u16, message: &'static str },
    Stall(&'static str),
    Fail(&'static str),
}

impl Outcome {
    fn to_toml(&self) -> String {
        match self {
            Outcome::Reject { status, message } => {
                format!("{{ kind = \"reject\", status = {status}, message = {message:?} }}")
            }
            Outcome::Stall(delay) => format!("{{ kind = \"stall\", delay = {delay:?} }}"),
            Outcome::Fail(reason) => format!("{{ kind = \"fail\", reason = {reason:?} }}"),
        }
    }
}

/// A fresh directory under the system temp dir, removed with everything in it on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "smsgate-e2e-{}-{}-{tag}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create scratch directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub use crate::free_port::free_port;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A `Command` for the binary whose environment carries no configuration of the caller's.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if CONFIG_PREFIXES.iter().any(|p| key.starts_with(p)) || key == "CONFIG_PATH" {
            cmd.env_remove(key.as_ref());
        }
    }
    // Every server a test starts needs an admin port of its own; the default is shared.
    cmd.env("ADMIN__ADDRESS", local(free_port()).to_string());
    // Logs go to files that a failing test prints; colour codes would only garble them.
    cmd.env(
        "RUST_LOG",
        "info,smsgate_smpp=debug,smsgate_plugin_host=debug,smsgate_simulator=debug",
    )
    .env("NO_COLOR", "1")
    .env_remove("LOG_FORMAT")
    .stdin(Stdio::null());
    cmd
}

/// A child process that is killed when dropped.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, log: &Path) -> Proc {
        let out = File::create(log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        cmd.stdout(out).stderr(err);
        let child = cmd.spawn().expect("spawn smsgate-smpp");
        Proc {
            child,
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the processes of one test are configured.
pub struct Setup {
    step_delay: String,
    rules: Vec<(String, Outcome)>,
    accounts: Vec<(String, String)>,
    env: Vec<(String, String)>,
    tls: bool,
    webhooks: bool,
    signing_key: Option<String>,
    start_timeout: Duration,
    personality: Personality,
}

impl Default for Setup {
    fn default() -> Self {
        Setup::new()
    }
}

impl Setup {
    pub fn new() -> Self {
        Setup {
            step_delay: "50ms".into(),
            rules: Vec::new(),
            accounts: Vec::new(),
            env: Vec::new(),
            tls: false,
            webhooks: false,
            signing_key: None,
            start_timeout: START_TIMEOUT,
            personality: personality_from_env(),
        }
    }

    /// The simulator serves this API whatever `SMSGATE_E2E_GATEWAY` says.
    pub fn personality(mut self, personality: Personality) -> Self {
        self.personality = personality;
        self
    }

    /// Time the simulator keeps a message in each of Pending, Processed and Sent.
    pub fn step_delay(mut self, delay: &str) -> Self {
        self.step_delay = delay.into();
        self
    }

    /// `pattern` is a regular expression searched in the E.164 recipient.
    pub fn rule(mut self, pattern: &str, outcome: Outcome) -> Self {
        self.rules.push((pattern.into(), outcome));
        self
    }

    /// A simulator account besides the demo and long-password ones.
    pub fn account(mut self, username: &str, password: &str) -> Self {
        self.accounts.push((username.into(), password.into()));
        self
    }

    /// An environment variable for the server (not the simulator).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The server loads its policy plugins from `dir`.
    pub fn plugins(mut self, dir: &Path) -> Self {
        self.start_timeout = PLUGIN_START_TIMEOUT;
        let dir = dir.to_str().expect("plugin directory path is UTF-8");
        self.env("PLUGINS__DIR", dir)
    }

    /// Waits up to `timeout` for the server to get ready, for plugins that take longer to
    /// compile than the bundled ones.
    pub fn start_within(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Also serve SMPP over TLS with a freshly generated self-signed certificate.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// The server registers webhooks on the simulator for its receivers, at its own HTTP
    /// address, so receipts and incoming SMS come back as deliver_sm. Off by default, so the
    /// gateway traffic that other tests count stays free of webhook calls.
    pub fn webhooks(mut self) -> Self {
        self.webhooks = true;
        self
    }

    /// The simulator signs the demo account's webhook calls with `key` and the server checks
    /// them with it.
    pub fn signing_key(mut self, key: &str) -> Self {
        self.signing_key = Some(key.into());
        self.env("DELIVERY__SIGNING_KEY", key)
    }

    fn simulator_toml(&self) -> String {
        let demo_key = self
            .signing_key
            .as_ref()
            .map(|key| format!("signing_key = {key:?}\n"))
            .unwrap_or_default();
        let mut toml = format!(
            "[simulator]\nmode = \"{}\"\nstep_delay = {:?}\n\n\
             [[simulator.accounts]]\nusername = {DEMO_USER:?}\npassword = {DEMO_PASSWORD:?}\n\
             {demo_key}\n\
             [[simulator.accounts]]\nusername = {LONG_USER:?}\npassword = {LONG_PASSWORD:?}\n",
            self.personality, self.step_delay
        );
        for (username, password) in &self.accounts {
            let _ = write!(
                toml,
                "\n[[simulator.accounts]]\nusername = {username:?}\npassword = {password:?}\n"
            );
        }
        for (pattern, outcome) in &self.rules {
            // Literal strings keep regex backslashes as they are.
            let _ = write!(
                toml,
                "\n[[simulator.rules]]\npattern = '{pattern}'\noutcome = {}\n",
                outcome.to_toml()
            );
        }
        toml
    }

    pub async fn start(self) -> Harness {
        self.start_simulator().await.start_server().await
    }

    /// Starts only the simulator, for tests that need to ask it something (a device id) before
    /// the server is configured.
    pub async fn start_simulator(self) -> SimulatorOnly {
        install_crypto_provider();
        let dir = TempDir::new("harness");
        let config = dir.path().join("simulator.toml");
        fs::write(&config, self.simulator_toml()).expect("write simulator config");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");

        let api = self.personality.api_prefix();
        let (simulator, sim) = start_with_retry("simulator", &dir, &http, START_TIMEOUT, |log| {
            let port = free_port();
            let mut cmd = command();
            cmd.arg("simulator")
                .arg("--listen")
                .arg(local(port).to_string())
                .arg("--config")
                .arg(&config);
            let url = format!("http://{}{api}/health", local(port));
            (Proc::spawn(cmd, log), url, local(port))
        })
        .await;
        SimulatorOnly {
            setup: self,
            sim,
            http,
            simulator,
            dir,
        }
    }
}

/// A running simulator whose server has not been started yet.
pub struct SimulatorOnly {
    setup: Setup,
    pub sim: SocketAddr,
    http: reqwest::Client,
    simulator: Proc,
    dir: TempDir,
}

impl SimulatorOnly {
    /// An environment variable for the server, set once the simulator's address is known.
    pub fn server_env(mut self, key: &str, value: &str) -> Self {
        self.setup = self.setup.env(key, value);
        self
    }

    /// The id of the account's one device, as `GET /devices` (the phone: `GET /device`)
    /// lists it.
    pub async fn device_id(&self, username: &str, password: &str) -> String {
        let url = match self.setup.personality {
            Personality::Cloud => format!("http://{}/3rdparty/v1/devices", self.sim),
            Personality::Local => format!("http://{}/device", self.sim),
        };
        let devices: Value = self
            .http
            .get(&url)
            .basic_auth(username, Some(password))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("GET {url} as {username}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: body is not JSON: {e}"));
        devices[0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("GET {url}: no device id in {devices}"))
            .to_string()
    }

    pub async fn start_server(self) -> Harness {
        let SimulatorOnly {
            setup,
            sim,
            http,
            simulator,
            dir,
        } = self;
        let tls_files = setup.tls.then(|| write_certificate(dir.path()));
        let (server, (addrs, server_env)) =
            start_with_retry("server", &dir, &http, setup.start_timeout, |log| {
                let (smpp, tls, web, admin) = (free_port(), free_port(), free_port(), free_port());
                let mut env: Vec<(String, OsString)> = vec![
                    ("SMPP__BIND_ADDRESS".into(), local(smpp).to_string().into()),
                    (
                        "SMPP__TLS_BIND_ADDRESS".into(),
                        local(tls).to_string().into(),
                    ),
                    ("HTTP__ADDRESS".into(), local(web).to_string().into()),
                    ("ADMIN__ADDRESS".into(), local(admin).to_string().into()),
                    (
                        "GATEWAY__API_BASE_URL".into(),
                        format!("http://{sim}{}", setup.personality.api_prefix()).into(),
                    ),
                    ("GATEWAY__TIMEOUT".into(), "5s".into()),
                    (
                        "DELIVERY__DATA_DIR".into(),
                        dir.path().join("data").into_os_string(),
                    ),
                ];
                // The webhook port is only known here, once the HTTP port is picked.
                if setup.webhooks {
                    env.push((
                        "GATEWAY__WEBHOOK_BASE_URL".into(),
                        format!("http://{}", local(web)).into(),
                    ));
                }
                if let Some(files) = &tls_files {
                    env.push(("SMPP__TLS_CERT".into(), files.cert.clone().into_os_string()));
                    env.push(("SMPP__TLS_KEY".into(), files.key.clone().into_os_string()));
                }
                for (key, value) in &setup.env {
                    env.push((key.clone(), value.into()));
                }
                let mut cmd = command();
                cmd.envs(env.iter().map(|(k, v)| (k, v)));
                let url = format!("http://{}/health/ready", local(web));
                (
                    Proc::spawn(cmd, log),
                    url,
                    ((local(smpp), local(tls), local(web), local(admin)), env),
                )
            })
            .await;

        Harness {
            personality: setup.personality,
            smpp: addrs.0,
            tls: tls_files.as_ref().map(|_| addrs.1),
            certificate: tls_files.map(|f| f.der),
            sim,
            web: addrs.2,
            admin: addrs.3,
            http,
            server: Some(server),
            server_env,
            start_timeout: setup.start_timeout,
            restarts: 0,
            earlier_server_logs: String::new(),
            simulator,
            dir,
        }
    }
}

/// A `serve --simulate` server: the SMPP server on its embedded simulator, as the quick start
/// runs it. Killed when dropped; a failing test prints its log.
pub struct Simulated {
    pub smpp: SocketAddr,
    server: Proc,
    _dir: TempDir,
}

impl Drop for Simulated {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("===== simulated server log =====\n{}", self.server.log());
        }
    }
}

/// Starts `serve --simulate` on ports of its own with `SIMULATOR__LISTEN=simulator_listen`.
pub async fn start_simulated(simulator_listen: SocketAddr) -> Simulated {
    start_simulated_with(simulator_listen, &[]).await
}

/// [`start_simulated`] with more environment for the server.
pub async fn start_simulated_with(simulator_listen: SocketAddr, env: &[(&str, &str)]) -> Simulated {
    install_crypto_provider();
    let dir = TempDir::new("simulated");
    let http = reqwest::Client::new();
    let (server, smpp) = start_with_retry("server", &dir, &http, START_TIMEOUT, |log| {
        let (smpp, web) = (local(free_port()), local(free_port()));
        let mut cmd = command();
        cmd.args(["serve", "--simulate"])
            .env("SMPP__BIND_ADDRESS", smpp.to_string())
            .env("HTTP__ADDRESS", web.to_string())
            .env("DELIVERY__DATA_DIR", dir.path().join("data"))
            .env("SIMULATOR__LISTEN", simulator_listen.to_string())
            .envs(env.iter().copied());
        (
            Proc::spawn(cmd, log),
            format!("http://{web}/health/ready"),
            smpp,
        )
    })
    .await;
    Simulated {
        smpp,
        server,
        _dir: dir,
    }
}

/// Starts a process and waits for its readiness URL, with fresh ports when it died at start.
async fn start_with_retry<T>(
    name: &str,
    dir: &TempDir,
    http: &reqwest::Client,
    timeout: Duration,
    mut spawn: impl FnMut(&Path) -> (Proc, String, T),
) -> (Proc, T) {
    let mut failures = String::new();
    for attempt in 0..START_ATTEMPTS {
        let log = dir.path().join(format!("{name}-{attempt}.log"));
        let (mut proc, url, extra) = spawn(&log);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = proc.child.try_wait() {
                let _ = writeln!(failures, "{name} exited with {status}:\n{}", proc.log());
                break;
            }
            if Instant::now() > deadline {
                panic!("{name} not ready within {timeout:?}:\n{}", proc.log());
            }
            if let Ok(resp) = http.get(&url).send().await
                && resp.status().is_success()
            {
                return (proc, extra);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    panic!("{name} did not start:\n{failures}");
}

/// reqwest and the TLS client are built without a default crypto provider.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

struct CertificateFiles {
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

fn write_certificate(dir: &Path) -> CertificateFiles {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("generate a certificate");
    let files = CertificateFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        der: cert.der().to_vec(),
    };
    fs::write(&files.cert, cert.pem()).expect("write certificate");
    fs::write(&files.key, signing_key.serialize_pem()).expect("write key");
    files
}

/// A running simulator and server. Both are killed on drop; a failing test prints their logs.
pub struct Harness {
    /// The API the simulator serves.
    pub personality: Personality,
    pub smpp: SocketAddr,
    pub tls: Option<SocketAddr>,
    /// DER of the server's self-signed certificate when TLS is on.
    pub certificate: Option<Vec<u8>>,
    pub sim: SocketAddr,
    /// The server's HTTP side (health, metrics).
    pub web: SocketAddr,
    /// The server's admin endpoints (queue statistics, metrics).
    pub admin: SocketAddr,
    http: reqwest::Client,
    server: Option<Proc>,
    /// What the server was started with, for a restart on the same ports and data.
    server_env: Vec<(String, OsString)>,
    start_timeout: Duration,
    restarts: u32,
    /// Logs of server processes killed before the current one.
    earlier_server_logs: String,
    simulator: Proc,
    dir: TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("===== server log =====\n{}", self.server_log());
            eprintln!("===== simulator log =====\n{}", self.simulator.log());
        }
    }
}

impl Harness {
    pub async fn connect(&self) -> Client {
        connect_smpp(self.smpp).await
    }

    /// A connection bound as a transceiver with these credentials, which must be accepted.
    pub async fn bound_as(&self, system_id: &str, password: &str) -> Client {
        let mut esme = self.connect().await;
        let resp = esme.bind(BindKind::Transceiver, system_id, password).await;
        assert_eq!(resp.status, ESME_ROK, "{system_id}: {resp:?}");
        esme
    }

    /// The simulator's counter key of the bind check answered `status`: `GET /devices 200` on
    /// an SMSGate server, `GET /device 200` on the phone.
    pub fn bind_check(&self, status: u16) -> String {
        match self.personality {
            Personality::Cloud => format!("GET /devices {status}"),
            Personality::Local => format!("GET /device {status}"),
        }
    }

    /// A connection bound with the demo account.
    pub async fn bound(&self, kind: BindKind) -> Client {
        let mut client = self.connect().await;
        let resp = client.bind(kind, DEMO_USER, DEMO_PASSWORD).await;
        assert_eq!(resp.status, ESME_ROK, "bind refused: {resp:?}");
        client
    }

    pub fn server_log(&self) -> String {
        let current = self.server.as_ref().map(Proc::log).unwrap_or_default();
        format!("{}{current}", self.earlier_server_logs)
    }

    pub fn server_pid(&self) -> u32 {
        self.server.as_ref().expect("server running").child.id()
    }

    /// Kills the simulator, so the gateway becomes unreachable.
    pub fn stop_simulator(&mut self) {
        let _ = self.simulator.child.kill();
        let _ = self.simulator.child.wait();
    }

    /// Whether the server process is still running.
    pub fn server_alive(&mut self) -> bool {
        let server = self.server.as_mut().expect("server started");
        matches!(server.child.try_wait(), Ok(None))
    }

    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Asks the server to reload its plugins.
    pub fn sighup(&self) {
        self.signal("HUP");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.server_pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the server to exit on its own.
    pub async fn server_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            let server = self.server.as_mut().expect("server started");
            if let Some(status) = server.child.try_wait().expect("wait for the server") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server still running {within:?} after being asked to stop"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's Prometheus exposition.
    pub async fn metrics(&self) -> String {
        get_text(&self.http, &format!("http://{}/metrics", self.web)).await
    }

    async fn get_json(&self, path: &str) -> Value {
        let url = format!("http://{}{path}", self.sim);
        self.http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: body is not JSON: {e}"))
    }

    /// Every message the simulator accepted, oldest first, with the request body as received.
    pub async fn sim_messages(&self) -> Vec<Value> {
        match self.get_json("/simulator/v1/messages").await {
            Value::Array(items) => items,
            other => panic!("/simulator/v1/messages: {other}"),
        }
    }

    /// The simulator's message with this id.
    pub async fn sim_message(&self, id: &str) -> Value {
        let messages = self.sim_messages().await;
        messages
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("the simulator has no message {id:?}: {messages:#?}"))
    }

    /// Waits until the simulator holds at least `count` messages.
    pub async fn wait_for_messages(&self, count: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let messages = self.sim_messages().await;
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "the simulator got {} messages within {within:?}, expected {count}: {messages:#?}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Calls per "METHOD /path STATUS" as the simulator counted them.
    pub async fn sim_requests(&self) -> BTreeMap<String, u64> {
        let value = self.get_json("/simulator/v1/requests").await;
        serde_json::from_value(value).expect("request counters")
    }

    /// Requests the simulator got whose key (`METHOD /path STATUS`) starts with `prefix`,
    /// whatever it answered.
    pub async fn sim_requests_starting(&self, prefix: &str) -> u64 {
        self.sim_requests()
            .await
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    pub async fn sim_request_count(&self, key: &str) -> u64 {
        self.sim_requests().await.get(key).copied().unwrap_or(0)
    }

    /// For requests the helpers here do not make (hand-made webhook calls).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The environment the server runs with (ports, data dir, the test's own variables).
    pub fn server_env(&self) -> impl Iterator<Item = (&str, &OsString)> {
        self.server_env.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// SIGKILL: no shutdown code runs, as in a crash or an OOM kill.
    pub fn kill_server(&mut self) {
        let mut server = self.server.take().expect("server running");
        server.child.kill().expect("SIGKILL the server");
        let status = server.child.wait().expect("reap the server");
        assert!(!status.success(), "the killed server exited with {status}");
        let _ = writeln!(
            self.earlier_server_logs,
            "{}----- server killed ({status}) -----",
            server.log()
        );
    }

    /// Starts the server again with the same ports, environment and data directory, so the
    /// webhook URLs registered on the simulator stay valid.
    pub async fn restart_server(&mut self) {
        assert!(self.server.is_none(), "kill_server first");
        self.restarts += 1;
        let name = format!("server-restart{}", self.restarts);
        let url = format!("http://{}/health/ready", self.web);
        let env = self.server_env.clone();
        let (server, ()) =
            start_with_retry(&name, &self.dir, &self.http, self.start_timeout, |log| {
                let mut cmd = command();
                cmd.envs(env.iter().map(|(k, v)| (k, v)));
                (Proc::spawn(cmd, log), url.clone(), ())
            })
            .await;
        self.server = Some(server);
    }

    /// Starts one more server on the same simulator, as another instance of a deployment:
    /// the first server's environment with ports and data directory of its own, then
    /// `overrides`. Killed when dropped.
    pub async fn start_instance(&mut self, overrides: &[(&str, &str)]) -> Instance {
        self.restarts += 1;
        let name = format!("instance{}", self.restarts);
        let data = self.dir.path().join(&name);
        let (base, http) = (self.server_env.clone(), self.http.clone());
        let (proc, (smpp, web)) =
            start_with_retry(&name, &self.dir, &http, self.start_timeout, |log| {
                let (smpp, tls, web, admin) = (free_port(), free_port(), free_port(), free_port());
                let mut env = base.clone();
                let mut set = |key: &str, value: OsString| {
                    env.retain(|(k, _)| k != key);
                    env.push((key.to_owned(), value));
                };
                set("SMPP__BIND_ADDRESS", local(smpp).to_string().into());
                set("SMPP__TLS_BIND_ADDRESS", local(tls).to_string().into());
                set("HTTP__ADDRESS", local(web).to_string().into());
                set("ADMIN__ADDRESS", local(admin).to_string().into());
                set("DELIVERY__DATA_DIR", data.clone().into_os_string());
                for (key, value) in overrides {
                    set(key, value.into());
                }
                let address = |key: &str| -> SocketAddr {
                    let (_, value) = env.iter().find(|(k, _)| k == key).expect("set above");
                    value.to_string_lossy().parse().expect("an address")
                };
                let addrs = (address("SMPP__BIND_ADDRESS"), address("HTTP__ADDRESS"));
                let mut cmd = command();
                cmd.envs(env.iter().map(|(k, v)| (k, v)));
                let url = format!("http://{}/health/ready", addrs.1);
                (Proc::spawn(cmd, log), url, addrs)
            })
            .await;
        Instance {
            smpp,
            web,
            http,
            proc: Some(proc),
        }
    }

    /// The server's own JSON at `path` on its admin listener.
    pub async fn server_json(&self, path: &str) -> Value {
        let url = format!("http://{}{path}", self.admin);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "GET {url}: {status} {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
    }

    /// `GET /api/smpp/v1/queue`: the deliver_sm waiting per account.
    pub async fn queue(&self) -> Value {
        self.server_json("/api/smpp/v1/queue").await
    }

    /// Items waiting for `account`; an account with none is not listed at all.
    pub async fn queued_items(&self, account: &str) -> u64 {
        let queue = self.queue().await;
        let accounts = queue["accounts"]
            .as_array()
            .unwrap_or_else(|| panic!("no accounts array in {queue}"));
        accounts
            .iter()
            .find(|a| a["account"] == account)
            .map_or(0, |a| {
                a["items"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no item count in {queue}"))
            })
    }

    /// Waits until exactly `items` wait for `account`.
    pub async fn wait_for_queued(&self, account: &str, items: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let queued = self.queued_items(account).await;
            if queued == items {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{account} has {queued} queued items after {within:?}, expected {items}: {}",
                self.queue().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The webhooks registered on the simulator for the demo account.
    pub async fn registered_webhooks(&self) -> Vec<Value> {
        let url = format!(
            "http://{}{}/webhooks",
            self.sim,
            self.personality.api_prefix()
        );
        let value: Value = self
            .http
            .get(&url)
            .basic_auth(DEMO_USER, Some(DEMO_PASSWORD))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: body is not JSON: {e}"));
        match value {
            Value::Array(items) => items,
            other => panic!("GET {url}: {other}"),
        }
    }

    /// Waits for the server's five registrations of the demo account (they are made in the
    /// background after the first receiver's bind_resp) and returns the URL they share.
    pub async fn wait_for_registrations(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let webhooks = self.registered_webhooks().await;
            if webhooks.len() >= 5 {
                assert_eq!(webhooks.len(), 5, "{webhooks:#?}");
                let url = webhooks[0]["url"]
                    .as_str()
                    .expect("webhook url")
                    .to_string();
                assert!(
                    webhooks.iter().all(|w| w["url"] == url.as_str()),
                    "{webhooks:#?}"
                );
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "{} webhooks registered within {within:?}: {webhooks:#?}",
                webhooks.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every webhook call the simulator made, oldest first.
    pub async fn webhook_deliveries(&self) -> Vec<Value> {
        match self.get_json("/simulator/v1/webhook-deliveries").await {
            Value::Array(items) => items,
            other => panic!("/simulator/v1/webhook-deliveries: {other}"),
        }
    }

    /// Waits until the server has answered the simulator's `event` call about `message_id`
    /// with `status`, and returns that attempt.
    pub async fn wait_for_webhook_call(
        &self,
        event: &str,
        message_id: &str,
        status: u16,
        within: Duration,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let calls = self.webhook_deliveries().await;
            if let Some(call) = calls.iter().find(|c| {
                c["event"] == event && c["messageId"] == message_id && c["status"] == status
            }) {
                return call.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {event} call for {message_id} answered {status} within {within:?}: \
                 {calls:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `POST /simulator/v1/inbox` for the demo account's phone: `sms` holds from, to and text
    /// or base64 data. Returns the simulator's answer.
    pub async fn inject_mo(&self, mut sms: Value) -> Value {
        sms["account"] = Value::from(DEMO_USER);
        let url = format!("http://{}/simulator/v1/inbox", self.sim);
        let resp = self
            .http
            .post(&url)
            .json(&sms)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(status.as_u16(), 202, "POST {url} {sms}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("POST {url}: {e}: {body}"))
    }
}

pub async fn connect_smpp(address: SocketAddr) -> Client {
    let stream = TcpStream::connect(address)
        .await
        .unwrap_or_else(|e| panic!("connect to the SMPP port {address}: {e}"));
    Client::new(stream)
}

/// The body of `GET url`, which must succeed.
async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// A further server process of a deployment (see [`Harness::start_instance`]).
pub struct Instance {
    pub smpp: SocketAddr,
    pub web: SocketAddr,
    http: reqwest::Client,
    proc: Option<Proc>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("===== instance log =====\n{}", self.log());
        }
    }
}

impl Instance {
    pub async fn connect(&self) -> Client {
        connect_smpp(self.smpp).await
    }

    pub fn log(&self) -> String {
        self.proc.as_ref().map(Proc::log).unwrap_or_default()
    }

    /// SIGTERM, and waits for the exit.
    pub async fn stop(&mut self) {
        let mut proc = self.proc.take().expect("instance running");
        let status = Command::new("kill")
            .args(["-TERM", &proc.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while proc.child.try_wait().expect("wait").is_none() {
            assert!(
                Instant::now() < deadline,
                "instance still running after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, as in a crash: no shutdown code runs.
    pub fn kill(&mut self) {
        let mut proc = self.proc.take().expect("instance running");
        proc.child.kill().expect("SIGKILL the instance");
        proc.child.wait().expect("reap the instance");
    }

    pub async fn metrics(&self) -> String {
        get_text(&self.http, &format!("http://{}/metrics", self.web)).await
    }
}

/// Runs the binary to completion with its output in files, killing it after `within`.
pub fn run_to_exit(mut cmd: Command, within: Duration) -> (ExitStatus, String, String) {
    let dir = TempDir::new("run");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    cmd.stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"));
    let mut child = cmd.spawn().expect("spawn smsgate-smpp");
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {within:?}; stderr:\n{}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        fs::read_to_string(&out_path).unwrap_or_default(),
        fs::read_to_string(&err_path).unwrap_or_default(),
    )
}

/// Every wasm crate the tests load, built together so that cargo runs once.
const PLUGIN_PACKAGES: [&str; 6] = [
    "credential-map",
    "e164",
    "prefix-router",
    "sender-allowlist",
    "misbehave",
    "wrong-world",
];

/// A scratch plugin directory, laid out as `plugins.dir` is in production.
pub struct PluginDir(TempDir);

impl PluginDir {
    pub fn new() -> Self {
        PluginDir(TempDir::new("plugins"))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Installs a plugin crate's component as `<package>.wasm` with `manifest` beside it.
    /// The manifest goes first so that the directory watch never sees the component with
    /// default settings.
    pub fn install(&self, package: &str, manifest: &str) {
        fs::write(self.path().join(format!("{package}.toml")), manifest).expect("write NAME.toml");
        fs::copy(
            plugin_wasm(package),
            self.path().join(format!("{package}.wasm")),
        )
        .expect("copy NAME.wasm");
    }

    pub fn remove(&self, package: &str) {
        for ext in ["wasm", "toml"] {
            fs::remove_file(self.path().join(format!("{package}.{ext}")))
                .expect("remove a plugin file");
        }
    }
}

/// credential-map's NAME.toml for two SMPP users, shop1 and shop2, on the demo SMSGate
/// account, shop2 limited to the phone's SIM 2.
pub fn shops_on_demo_manifest() -> String {
    format!(
        r#"order = 10
failure_policy = "fail-closed"
timeout = "5s"

[config.users.shop1]
password = "shop1pw"
smsgate_username = "{DEMO_USER}"
smsgate_password = "{DEMO_PASSWORD}"

[config.users.shop2]
password = "shop2pw"
smsgate_username = "{DEMO_USER}"
smsgate_password = "{DEMO_PASSWORD}"
sim_number = "2"
"#
    )
}

/// The component of a plugin crate (`e164`, `credential-map`) in the workspace's target
/// directory, where tests/run builds it. When one is missing, for instance under a bare
/// `cargo test --test e2e`, the crates are built once per test process with the flags tests/run
/// uses, so both share one target directory and one build.
pub fn plugin_wasm(package: &str) -> PathBuf {
    assert!(
        PLUGIN_PACKAGES.contains(&package),
        "{package} is not in PLUGIN_PACKAGES"
    );
    static BUILT: OnceLock<()> = OnceLock::new();
    let path = |package: &str| wasm_dir().join(format!("{}.wasm", package.replace('-', "_")));
    if !PLUGIN_PACKAGES.iter().all(|p| path(p).is_file()) {
        BUILT.get_or_init(build_plugins);
    }
    let wasm = path(package);
    assert!(wasm.is_file(), "{} was not built", wasm.display());
    wasm
}

fn wasm_dir() -> PathBuf {
    target_dir().join("wasm32-wasip2").join("wasm")
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn build_plugins() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "wasm"]);
    for package in PLUGIN_PACKAGES {
        cmd.args(["-p", package]);
    }
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .expect("run cargo to build the plugins");
    assert!(
        output.status.success(),
        "building the plugins failed ({}); `rustup target add wasm32-wasip2` may be missing:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The sender and recipient of the incoming SMS the tests make the phone receive.
pub const MO_SENDER: &str = "+4915112345678";
pub const MO_RECIPIENT: &str = "+4930999999";

/// A hand-made sms:received as the phone would post it (unsigned), with its own event id.
pub fn received_event(event_id: &str, text: &str) -> Value {
    json!({
        "deviceId": "e2e-device",
        "event": "sms:received",
        "id": event_id,
        "payload": {
            "messageId": format!("msg-{event_id}"),
            "message": text,
            "sender": MO_SENDER,
            "recipient": MO_RECIPIENT,
            "phoneNumber": MO_SENDER,
            "simNumber": 1,
            "receivedAt": chrono::Utc::now().to_rfc3339(),
        },
        "webhookId": "e2e-webhook",
    })
}
