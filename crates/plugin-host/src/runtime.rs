//! The wasmtime side of the plugin host: one engine per loaded plugin set (its limits depend on
//! the set), the OS thread that advances the epoch for deadlines, the per-instance limits, and
//! the small pool of ready instances each plugin keeps so that a hook call costs microseconds
//! rather than an instantiation.
//!
//! Exports are bound `async` and driven to completion on the calling thread (`block_on`):
//! wasmtime-wasi's synchronous adapters run their I/O through `Handle::block_on`, which panics on
//! a tokio worker, and a plugin's panic message written to stderr would take that path. The
//! public API stays synchronous; the cost is one fiber switch per call.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::executor::block_on;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::latest::smsgate::smpp_plugin::{host, types};
use super::bindings::{self, Plugin, PluginPre};
use super::manifest::Capabilities;

/// Epoch tick; deadlines are whole ticks, so this is their resolution.
const TICK: Duration = Duration::from_millis(1);
/// Idle instances kept per plugin; more concurrent calls instantiate extra ones, dropped after.
const IDLE_PER_PLUGIN: usize = 16;
/// Longest host.log line kept, so a plugin cannot flood the log with one call.
const MAX_LOG_LINE: usize = 4096;
/// How much of a plugin's latest stderr output is kept to explain a trap.
const STDERR_TAIL: usize = 512;

pub struct RuntimeOptions {
    /// Whether stores count fuel (needed when any plugin of the set has a fuel budget, and by
    /// the runner to report fuel used).
    pub fuel: bool,
    /// The largest memory cap of the set; the pool reserves slots of this size.
    pub max_memory: usize,
    pub plugins: usize,
}

/// An engine, its linker and the epoch ticker: everything a set of plugins shares.
pub struct Runtime {
    linker: Linker<HostState>,
    fuel: bool,
    _ticker: Ticker,
}

impl Runtime {
    pub fn new(options: &RuntimeOptions) -> anyhow::Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(true).consume_fuel(options.fuel);
        // Every concurrent call holds one instance; the pool must have a slot for each caller
        // thread per plugin, or instantiation fails under load.
        let per_plugin = std::thread::available_parallelism()
            .map_or(8, |n| n.get() * 2)
            .max(64);
        let instances = u32::try_from(options.plugins.max(1) * per_plugin).unwrap_or(u32::MAX);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(8))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(4))
            .total_stacks(instances)
            .max_memory_size(options.max_memory);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::add_to_linker(&mut linker)?;
        Ok(Runtime {
            linker,
            fuel: options.fuel,
            _ticker: Ticker::start(engine)?,
        })
    }

    pub fn engine(&self) -> &Engine {
        self.linker.engine()
    }

    pub fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    pub fn fuel(&self) -> bool {
        self.fuel
    }
}

/// Advances the engine's epoch every tick from its own OS thread: a CPU-bound guest never
/// yields, so a tick driven by the async runtime could starve behind it.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    fn start(engine: Engine) -> anyhow::Result<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker { stop })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What one plugin's instances share: its name for logs, its configuration and what it may
/// reach.
pub struct Shared {
    pub name: String,
    pub config: BTreeMap<String, String>,
    pub capabilities: Capabilities,
}

#[derive(Clone, Copy, Debug)]
pub struct CallLimits {
    pub timeout: Duration,
    pub memory: usize,
    pub fuel: Option<u64>,
}

pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limits,
    shared: Arc<Shared>,
    /// The plugin's stderr when stdio is not granted.
    stderr: Option<StderrTail>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: host::Level, mut message: String) {
        if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        let plugin = self.shared.name.as_str();
        // A fixed target lets operators filter plugin output: RUST_LOG=info,plugin=debug.
        match level {
            host::Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            host::Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            host::Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            host::Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            host::Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.shared.config.get(&key).cloned()
    }

    fn config_keys(&mut self, prefix: String) -> Vec<String> {
        self.shared
            .config
            .keys()
            .filter(|key| key.starts_with(&prefix))
            .cloned()
            .collect()
    }

    fn now_millis(&mut self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// `StoreLimits` plus a note of whether it refused a growth, so that the trap which follows
/// (a guest usually aborts when allocation fails) is reported as the memory cap it was.
struct Limits {
    inner: StoreLimits,
    refused: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum);
        if !matches!(allowed, Ok(true)) {
            self.refused = true;
        }
        allowed
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }
}

/// Why a call produced no answer; the plugin's failure policy decides what happens next.
#[derive(Debug)]
pub enum Failure {
    Deadline(Duration),
    Fuel(u64),
    Memory(usize),
    Trap(String),
    Instantiate(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Deadline(limit) => write!(f, "did not finish within its {limit:?} deadline"),
            Failure::Fuel(budget) => write!(f, "ran out of its fuel budget of {budget}"),
            Failure::Memory(cap) => write!(
                f,
                "reached its memory cap of {}",
                super::settings::format_size(*cap)
            ),
            Failure::Trap(reason) => write!(f, "trapped: {reason}"),
            Failure::Instantiate(reason) => write!(f, "could not be instantiated: {reason}"),
        }
    }
}

/// The value of a call plus what it cost.
pub struct Called<R> {
    pub value: R,
    pub elapsed: Duration,
    pub fuel_used: Option<u64>,
}

struct Instance {
    store: Store<HostState>,
    plugin: Plugin,
}

/// One plugin's instances: a pre-instantiated component and the idle ones ready for a call.
/// Each call checks one out, so a store never serves two calls at once; a trapped instance is
/// dropped (wasmtime refuses to enter it again) and the next call gets a fresh one.
pub struct Instances {
    pre: PluginPre,
    shared: Arc<Shared>,
    limits: CallLimits,
    fuel: bool,
    idle: Mutex<Vec<Instance>>,
}

impl Instances {
    pub fn new(runtime: &Runtime, pre: PluginPre, shared: Shared, limits: CallLimits) -> Instances {
        Instances {
            pre,
            shared: Arc::new(shared),
            limits,
            fuel: runtime.fuel(),
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn call<R>(
        &self,
        f: impl AsyncFnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<Called<R>, Failure> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => self.instantiate()?,
        };
        self.arm(&mut instance.store);
        let started = Instant::now();
        let result = block_on(f(&instance.plugin, &mut instance.store));
        let elapsed = started.elapsed();
        match result {
            Ok(value) => {
                let fuel_used = self
                    .fuel
                    .then(|| self.fuel_budget() - instance.store.get_fuel().unwrap_or_default());
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < IDLE_PER_PLUGIN {
                    idle.push(instance);
                }
                Ok(Called {
                    value,
                    elapsed,
                    fuel_used,
                })
            }
            Err(error) => Err(self.failure(&error, &instance.store)),
        }
    }

    fn instantiate(&self) -> Result<Instance, Failure> {
        let (wasi, stderr) = wasi_ctx(&self.shared.capabilities)
            .map_err(|e| Failure::Instantiate(format!("{e:#}")))?;
        let state = HostState {
            stderr,
            wasi,
            table: ResourceTable::new(),
            limits: Limits {
                inner: StoreLimitsBuilder::new()
                    .memory_size(self.limits.memory)
                    .build(),
                refused: false,
            },
            shared: Arc::clone(&self.shared),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        // Start functions run guest code too, under the same limits as a call.
        self.arm(&mut store);
        match block_on(self.pre.instantiate_async(&mut store)) {
            Ok(plugin) => Ok(Instance { store, plugin }),
            Err(error) => match self.failure(&error, &store) {
                Failure::Trap(reason) => Err(Failure::Instantiate(reason)),
                other => Err(other),
            },
        }
    }

    fn arm(&self, store: &mut Store<HostState>) {
        let ticks = self.limits.timeout.as_micros().div_ceil(TICK.as_micros());
        // The current tick may end at once, so one more keeps the deadline at least `timeout`.
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1));
        if self.fuel {
            // Setting fuel cannot fail on a store whose engine counts it.
            let _ = store.set_fuel(self.fuel_budget());
        }
        store.data_mut().limits.refused = false;
    }

    fn fuel_budget(&self) -> u64 {
        self.limits.fuel.unwrap_or(u64::MAX)
    }

    fn failure(&self, error: &wasmtime::Error, store: &Store<HostState>) -> Failure {
        if store.data().limits.refused {
            return Failure::Memory(self.limits.memory);
        }
        let reason = match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => return Failure::Deadline(self.limits.timeout),
            Some(Trap::OutOfFuel) => return Failure::Fuel(self.fuel_budget()),
            Some(Trap::UnreachableCodeReached) => {
                "wasm `unreachable` executed (a panic or abort in the plugin)".to_string()
            }
            Some(trap) => trap.to_string(),
            None => error.root_cause().to_string(),
        };
        // A Rust plugin's panic message is on its stderr just before the trap.
        match store.data().stderr.as_ref().map(StderrTail::text) {
            Some(said) if !said.is_empty() => Failure::Trap(format!("{reason}; stderr: {said}")),
            _ => Failure::Trap(reason),
        }
    }
}

/// Denies everything the manifest does not grant; the sockets interfaces stay linked so that
/// plugins built with them still load, but every socket use is refused.
fn wasi_ctx(capabilities: &Capabilities) -> anyhow::Result<(WasiCtx, Option<StderrTail>)> {
    let mut builder = WasiCtxBuilder::new();
    builder
        // File operations then run on the calling thread instead of needing a tokio blocking
        // task; they are bounded like any other work a hook does.
        .allow_blocking_current_thread(true)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for (name, value) in &capabilities.env {
        builder.env(name, value);
    }
    let stderr = if capabilities.stdio {
        builder.inherit_stdout().inherit_stderr();
        None
    } else {
        let tail = StderrTail::default();
        builder.stderr(tail.clone());
        Some(tail)
    };
    for dir in &capabilities.dirs {
        let perms = if dir.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.host.display()))?;
    }
    Ok((builder.build(), stderr))
}

/// The last bytes a plugin without stdio wrote to stderr. Nothing is logged from it unless a
/// call traps; it never blocks and never fails, so a chatty plugin costs only a copy.
#[derive(Clone, Default)]
struct StderrTail(Arc<Mutex<Vec<u8>>>);

impl StderrTail {
    /// The tail as one line, without Rust's hint about RUST_BACKTRACE.
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("note: run with `RUST_BACKTRACE"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    /// Only WASIp3 asks for this, and p3 is not linked.
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }
}

impl OutputStream for StderrTail {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        let mut tail = self.0.lock().unwrap_or_else(|e| e.into_inner());
        tail.extend_from_slice(&bytes);
        let excess = tail.len().saturating_sub(STDERR_TAIL);
        tail.drain(..excess);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}
