//! `smsgate-smpp`: an SMPP 3.4 server in front of the SMSGate REST API. This file is the
//! command line only: parse it, load the configuration, start, wait for the signal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing::error;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use delivery_store::embedded::{self, OpenError};
use delivery_store::{AccountStats, QueueError};
use serde::Deserialize;
use smsgate_plugin_host::runner::{self, RunHook};
#[cfg(feature = "simulator")]
use smsgate_simulator::{self as simulator, Simulator};
use smsgate_smpp::config::StoreKind;
use smsgate_smpp::config::{AdminConfig, Config};
use smsgate_smpp::gateway::Credentials;
use smsgate_smpp::shutdown::{self, Shutdown};
use smsgate_smpp::{doctor, probe, server, tls};

// Every connection's PDUs, JSON bodies and futures are allocated on whichever worker thread runs
// them; musl's malloc serialises such threads on one lock, and glibc's gains from it too
// (README, "Running in a container", has the figures).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "smsgate-smpp",
    version,
    about = "SMPP 3.4 server in front of the SMSGate REST API",
    long_about = "SMPP 3.4 server in front of the SMSGate REST API (api.sms-gate.app or a private \
                  SMSGate server). ESMEs bind with their SMSGate username and password and send \
                  through the phones.\n\nConfiguration comes from an optional TOML file and from \
                  environment variables named after its keys (SMPP__BIND_ADDRESS, \
                  GATEWAY__API_BASE_URL, ...). Logs: RUST_LOG sets the filter (default info), \
                  LOG_FORMAT=json switches to JSON lines."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args, Clone, Default)]
struct ConfigArg {
    /// TOML configuration file; environment variables override its values.
    #[arg(long, short, env = "CONFIG_PATH", global = true)]
    config: Option<PathBuf>,
}

#[derive(clap::Args, Clone, Default)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Run against the embedded SMSGate simulator instead of a real gateway (no account needed;
    /// the demo credentials are printed at start).
    #[cfg(feature = "simulator")]
    #[arg(long)]
    simulate: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SMPP server (the default command).
    Serve(ServeArgs),
    /// Print the effective configuration (file + environment) with secrets masked.
    Config(ConfigArg),
    #[cfg(feature = "simulator")]
    /// Serve only the SMSGate simulator's REST API, for GATEWAY__API_BASE_URL to point at (the
    /// default), or hand a running simulator an incoming SMS.
    Simulator {
        #[command(subcommand)]
        command: Option<SimulatorCommand>,
        #[command(flatten)]
        serve: SimulatorServeArgs,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Ask the running server (on http.address) whether it is ready; exit status 0 when it
    /// is, 1 otherwise. For container health checks, which need no shell or curl for it.
    Health(ConfigArg),
    /// Check the configuration, the gateway, the account, the webhook URL, TLS, storage, the
    /// plugins and the running server, one line per check with what to fix; exit status 1
    /// when a check fails.
    Doctor(DoctorArgs),
    /// Inspect the delivery queue (receipts and incoming SMS waiting for a receiver).
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Check a policy plugin (a WebAssembly component) or run one of its hooks on a JSON
    /// fixture, with the limits the server would apply ([plugins] defaults and NAME.toml).
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[cfg(feature = "simulator")]
#[derive(clap::Args, Clone)]
struct SimulatorServeArgs {
    /// Address to listen on (default: simulator.listen, 127.0.0.1:3100); the API is under
    /// /3rdparty/v1 (at the root with --mode local) and the inspection API under
    /// /simulator/v1.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Serve an SMSGate server's API (cloud) or the phone's own (local, SMSGate's Local mode);
    /// default: simulator.mode, cloud.
    #[arg(long, value_enum)]
    mode: Option<SimulatorMode>,
}

#[cfg(feature = "simulator")]
#[derive(Clone, Copy, clap::ValueEnum)]
enum SimulatorMode {
    Cloud,
    Local,
}

#[cfg(feature = "simulator")]
impl From<SimulatorMode> for simulator::Personality {
    fn from(mode: SimulatorMode) -> Self {
        match mode {
            SimulatorMode::Cloud => simulator::Personality::Cloud,
            SimulatorMode::Local => simulator::Personality::Local,
        }
    }
}

#[cfg(feature = "simulator")]
#[derive(Subcommand)]
enum SimulatorCommand {
    /// Serve the simulator's REST API (the default).
    Serve(SimulatorServeArgs),
    /// Make an account's simulated phone receive an SMS: the simulator fires sms:received (or
    /// sms:data-received for --data) at the account's webhooks.
    InjectMo(simulator::InjectMo),
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Per account: items waiting, their size, the age of the oldest and the dead letters
    /// (items the ESMEs refused for good). Reads the queue file under delivery.data_dir, or
    /// asks the running server when it holds the file.
    Stats,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Validate FILE.wasm against the plugin contract and print its name, version, contract
    /// version and hooks.
    Check {
        file: PathBuf,
        #[command(flatten)]
        plugin: PluginConfigArg,
    },
    /// Run one hook on a JSON fixture and print the verdict, the time taken and the fuel used
    /// (examples/fixtures/ has one fixture per hook).
    Run {
        file: PathBuf,
        #[arg(long, value_enum)]
        hook: RunHook,
        /// The hook's input as JSON, e.g. {"account": {...}, "message": {...}}.
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        plugin: PluginConfigArg,
    },
}

#[derive(clap::Args)]
struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// An SMSGate account to try as an ESME's bind would (`GET /devices`). Without
    /// `:PASSWORD` the password is read from SMSGATE_PASSWORD, else from the first line of
    /// standard input, so that it stays out of the shell history.
    #[arg(long, value_name = "USER[:PASSWORD]")]
    account: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct PluginConfigArg {
    /// The plugin's NAME.toml (default: the .toml beside FILE.wasm, if there is one).
    /// (`--config` is the server's configuration, which supplies the [plugins] defaults.)
    #[arg(long, value_name = "NAME.toml")]
    plugin_config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Config(args)) => {
            let config = Config::load(args.config.as_deref())?;
            print!("{}", config.to_masked_toml()?);
            Ok(())
        }
        #[cfg(feature = "simulator")]
        Some(Command::Simulator {
            command,
            serve,
            config,
        }) => match command {
            None => serve_simulator(serve, &config).await,
            Some(SimulatorCommand::Serve(args)) => serve_simulator(args, &config).await,
            Some(SimulatorCommand::InjectMo(args)) => {
                println!("{}", simulator::inject_mo(&args).await?);
                Ok(())
            }
        },
        Some(Command::Health(config)) => {
            let config = Config::load(config.config.as_deref())?;
            println!("ready: {}", probe::ready(&config).await?);
            Ok(())
        }
        Some(Command::Doctor(args)) => doctor(args).await,
        Some(Command::Queue {
            command: QueueCommand::Stats,
            config,
        }) => {
            let config = Config::load(config.config.as_deref())?;
            queue_stats(&config).await
        }
        Some(Command::Plugin { command, config }) => {
            let config = Config::load(config.config.as_deref())?;
            let output = match command {
                PluginCommand::Check { file, plugin } => {
                    runner::check(&file, plugin.plugin_config.as_deref(), &config.plugins)?
                }
                PluginCommand::Run {
                    file,
                    hook,
                    input,
                    plugin,
                } => runner::run(
                    &file,
                    hook,
                    &input,
                    plugin.plugin_config.as_deref(),
                    &config.plugins,
                )?,
            };
            print!("{output}");
            Ok(())
        }
    }
}

async fn queue_stats(config: &Config) -> anyhow::Result<()> {
    if config.delivery.store == StoreKind::Redis {
        let stats = config.delivery.open_store().await?.stats().await?;
        print_stats(&stats);
        return Ok(());
    }
    let data_dir = &config.delivery.data_dir;
    let stats = match embedded::stats_from_file(data_dir) {
        Ok(stats) => stats,
        Err(QueueError::Open(OpenError::Locked(path))) => stats_from_server(&config.admin)
            .await
            .map_err(|e| anyhow::anyhow!("{} is held by a running server: {e}", path.display()))?,
        Err(e) => return Err(e.into()),
    };
    print_stats(&stats);
    Ok(())
}

/// `queue stats` for the operator: per-account totals.
fn print_stats(stats: &[AccountStats]) {
    if stats.is_empty() {
        println!("delivery queue is empty");
        return;
    }
    println!(
        "{:<32} {:>8} {:>12} {:>12} {:>12}",
        "account", "items", "bytes", "oldest", "dead_letters"
    );
    for s in stats {
        println!(
            "{:<32} {:>8} {:>12} {:>12} {:>12}",
            s.account,
            s.items,
            s.bytes,
            humantime::format_duration(Duration::from_secs(s.oldest.as_secs())).to_string(),
            s.dead_letters
        );
    }
}

async fn doctor(args: DoctorArgs) -> anyhow::Result<()> {
    let checks = match Config::load(args.config.config.as_deref()) {
        Ok(config) => {
            let account = args.account.as_deref().map(account).transpose()?;
            doctor::examine(&config, account.as_ref()).await
        }
        Err(e) => vec![doctor::Check {
            check: "configuration".into(),
            status: doctor::Status::Failed,
            saw: format!("{e:#}"),
            fix: Some("fix the key it names; `smsgate-smpp config` prints what is read".into()),
        }],
    };
    if args.json {
        println!("{:#}", doctor::to_json(&checks));
    } else {
        for check in &checks {
            println!("{check}");
        }
    }
    let failed = checks
        .iter()
        .filter(|c| c.status == doctor::Status::Failed)
        .count();
    anyhow::ensure!(failed == 0, "{failed} check(s) failed");
    Ok(())
}

/// `USER[:PASSWORD]`; the password from SMSGATE_PASSWORD or standard input when left out.
fn account(given: &str) -> anyhow::Result<Credentials> {
    let (username, password) = match given.split_once(':') {
        Some((user, password)) => (user.to_owned(), password.to_owned()),
        None => match std::env::var("SMSGATE_PASSWORD") {
            Ok(password) => (given.to_owned(), password),
            Err(_) => {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                (
                    given.to_owned(),
                    line.trim_end_matches(['\r', '\n']).to_owned(),
                )
            }
        },
    };
    Ok(Credentials::Basic { username, password })
}

/// Asks the running server (`GET /api/smpp/v1/queue` on `admin.address`, with `admin.token`).
async fn stats_from_server(admin: &AdminConfig) -> anyhow::Result<Vec<AccountStats>> {
    #[derive(Deserialize)]
    struct Answer {
        accounts: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        account: String,
        items: usize,
        bytes: u64,
        oldest_seconds: u64,
        /// Absent from a server older than dead letters.
        #[serde(default)]
        dead_letters: usize,
    }
    let address = probe::reachable(admin.address);
    let mut request = tls::http_client()
        .build()?
        .get(format!("http://{address}/api/smpp/v1/queue"));
    if let Some(token) = &admin.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    if response.status() == reqwest::StatusCode::UNAUTHORIZED {
        match admin.token {
            Some(_) => anyhow::bail!("the server refused admin.token; is it the server's?"),
            None => anyhow::bail!("the server asks for a token: set admin.token (ADMIN__TOKEN)"),
        }
    }
    let answer: Answer = response.error_for_status()?.json().await?;
    Ok(answer
        .accounts
        .into_iter()
        .map(|e| AccountStats {
            account: e.account,
            items: e.items,
            bytes: e.bytes,
            oldest: Duration::from_secs(e.oldest_seconds),
            dead_letters: e.dead_letters,
        })
        .collect())
}

#[cfg(feature = "simulator")]
async fn serve_simulator(args: SimulatorServeArgs, config: &ConfigArg) -> anyhow::Result<()> {
    let mut config = Config::load(config.config.as_deref())?;
    if let Some(mode) = args.mode {
        config.simulator.mode = mode.into();
    }
    let (listen, source) = match args.listen {
        Some(listen) => (listen, "--listen"),
        None => (config.simulator.listen, "simulator.listen"),
    };
    let socket = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("{source}: cannot listen on {listen}: {e}"))?;
    let shutdown = signal_shutdown();
    tracing::info!(
        address = %listen,
        api = %format!("http://{listen}{}", config.simulator.mode.api_prefix()),
        mode = %config.simulator.mode,
        "SMSGate simulator listening"
    );
    Simulator::new(config.simulator)
        .serve(socket, async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.config.as_deref())?;
    let shutdown = signal_shutdown();
    #[cfg(feature = "simulator")]
    if args.simulate {
        return server::run_simulated(config, shutdown).await;
    }
    server::run(config, shutdown).await
}

fn signal_shutdown() -> Shutdown {
    let token = Shutdown::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        shutdown::os_signal().await;
        trigger.cancel();
    });
    token
}

fn init_logging() {
    let default = if std::env::var("DEBUG").is_ok_and(|v| v == "true" || v == "1") {
        "debug"
    } else {
        "info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = if json {
        lines.json().boxed()
    } else {
        lines.boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(smsgate_smpp::recent_errors::layer())
        .init();
}
