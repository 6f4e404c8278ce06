//! Turns the plugin directory into a checked, ordered set: finds NAME.wasm and NAME.toml, refuses
//! anything that does not match the contract with the file and the reason, compiles each
//! component once (through an on-disk cache of compiled artifacts) and asks it what it
//! implements. A set is either loaded completely or not at all.

use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::anyhow;
use sha2::{Digest, Sha256};
use tracing::{info, warn};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::bindings::PluginPre;
use super::bindings::latest::smsgate::smpp_plugin::types::PluginInfo;
use super::failure_log::FailureLog;
use super::manifest::Manifest;
use super::runtime::{CallLimits, Instances, Runtime, RuntimeOptions, Shared};
use super::settings::PluginsConfig;
use super::usage::Usage;
use super::{Chain, Plugin};

/// A plugin found in the directory, with its settings read but nothing compiled yet.
pub struct Candidate {
    pub name: String,
    pub wasm: PathBuf,
    pub manifest: Manifest,
}

/// Loads every enabled plugin of `config.dir`. A missing or empty directory is an empty set; any
/// broken plugin fails the whole set, with every problem found listed.
pub fn load_set(config: &PluginsConfig) -> anyhow::Result<Chain> {
    let candidates = scan(config)?;
    if candidates.is_empty() {
        return Ok(Chain::empty());
    }
    let runtime = Runtime::new(&RuntimeOptions {
        fuel: candidates.iter().any(|c| c.manifest.fuel.is_some()),
        max_memory: candidates
            .iter()
            .map(|c| c.manifest.memory)
            .max()
            .unwrap_or(config.default_memory),
        plugins: candidates.len(),
    })?;
    let cache = ArtifactCache::open(&config.cache_dir);
    let mut plugins = Vec::with_capacity(candidates.len());
    let mut problems = Vec::new();
    for candidate in candidates {
        match load(&runtime, candidate, cache.as_ref()) {
            Ok(plugin) => plugins.push(plugin),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("; "));
    }
    plugins.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
    Ok(Chain::new(runtime, plugins))
}

fn scan(config: &PluginsConfig) -> anyhow::Result<Vec<Candidate>> {
    let dir = &config.dir;
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            info!(dir = %dir.display(), "plugin directory does not exist; no plugins");
            return Ok(Vec::new());
        }
        Err(e) => anyhow::bail!("plugins.dir {}: {e}", dir.display()),
    };
    let files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    let with_extension = |ext: &str| {
        let mut found: Vec<&PathBuf> = files
            .iter()
            .filter(|path| path.extension().is_some_and(|e| e == ext))
            .collect();
        found.sort();
        found
    };
    let wasm_files = with_extension("wasm");
    // A misspelt NAME.toml would otherwise leave its plugin running with the defaults unnoticed.
    for toml in with_extension("toml") {
        if !toml.with_extension("wasm").is_file() {
            warn!(file = %toml.display(), "no .wasm of the same name beside it; ignored");
        }
    }
    if wasm_files.is_empty() {
        info!(dir = %dir.display(), "plugin directory has no .wasm files; no plugins");
    }
    let mut candidates = Vec::new();
    let mut problems = Vec::new();
    for wasm in wasm_files {
        let name = wasm
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let toml = wasm.with_extension("toml");
        let manifest = if toml.is_file() {
            match Manifest::read(&toml, dir, config) {
                Ok(manifest) => manifest,
                Err(e) => {
                    problems.push(format!("{e:#}"));
                    continue;
                }
            }
        } else {
            Manifest::defaults(config)
        };
        if manifest.enabled {
            candidates.push(Candidate {
                name,
                wasm: wasm.clone(),
                manifest,
            });
        } else {
            info!(plugin = %name, "plugin disabled in its NAME.toml");
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("; "));
    }
    Ok(candidates)
}

/// Compiles, checks against the contract and describes one plugin.
pub fn load(
    runtime: &Runtime,
    candidate: Candidate,
    cache: Option<&ArtifactCache>,
) -> anyhow::Result<Plugin> {
    let file = candidate.wasm.display().to_string();
    let started = Instant::now();
    let bytes = fs::read(&candidate.wasm).map_err(|e| anyhow!("{file}: cannot read: {e}"))?;
    let (component, cached) =
        compile(runtime.engine(), &bytes, cache).map_err(|e| anyhow!("{file}: {e}"))?;
    let pre = PluginPre::new(runtime.linker(), &component).map_err(|e| anyhow!("{file}: {e:#}"))?;
    let contract = pre.version();
    let manifest = candidate.manifest;
    let instances = Instances::new(
        runtime,
        pre,
        Shared {
            name: candidate.name.clone(),
            config: manifest.config,
            capabilities: manifest.capabilities,
        },
        CallLimits {
            timeout: manifest.timeout,
            memory: manifest.memory,
            fuel: manifest.fuel,
        },
    );
    let info: PluginInfo = instances
        .call(async |plugin, store| plugin.call_describe(store).await)
        .map_err(|failure| anyhow!("{file}: describe {failure}"))?
        .value;
    info!(
        plugin = %candidate.name,
        name = %info.name,
        version = %info.version,
        contract = %contract,
        hooks = ?info.hooks,
        order = manifest.order,
        from_cache = cached,
        ms = started.elapsed().as_millis() as u64,
        "plugin loaded"
    );
    Ok(Plugin {
        name: candidate.name,
        info,
        contract,
        order: manifest.order,
        policies: manifest.policies,
        cached,
        instances,
        failures: FailureLog::new(),
        usage: Usage::default(),
    })
}

/// Compiles `bytes`, or takes the compiled artifact from the cache; the flag says which.
fn compile(
    engine: &Engine,
    bytes: &[u8],
    cache: Option<&ArtifactCache>,
) -> anyhow::Result<(Component, bool)> {
    check_header(bytes)?;
    let key = cache.map(|_| ArtifactCache::key(engine, bytes));
    if let (Some(cache), Some(key)) = (cache, &key)
        && let Some(component) = cache.get(engine, key)
    {
        return Ok((component, true));
    }
    let component = Component::new(engine, bytes)
        .map_err(|e| anyhow!("not a valid WebAssembly component: {e:#}"))?;
    if let (Some(cache), Some(key)) = (cache, &key) {
        cache.put(key, &component);
    }
    Ok((component, false))
}

/// Says what the file is when it is not a component, which wasmtime's parser error does not.
fn check_header(bytes: &[u8]) -> anyhow::Result<()> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(anyhow!(
            "a core WebAssembly module, not a component (build it for wasm32-wasip2, or wrap it \
             with `wasm-tools component new`)"
        )),
        _ => Err(anyhow!("not a WebAssembly component (no component header)")),
    }
}

/// Compiled artifacts keyed by the engine's compatibility hash and the component's SHA-256.
/// Loading an artifact runs its machine code without verification, so the directory is only
/// used when this user owns it and nobody else can write to it, and every entry carries its own
/// checksum: a truncated or damaged entry is ignored and rebuilt.
pub struct ArtifactCache {
    dir: PathBuf,
}

/// Feeds `Hash` output into SHA-256: the engine offers its compatibility hash only as `Hash`.
struct Sha(Sha256);

impl Hasher for Sha {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// Unused: the digest is taken from the inner SHA-256.
    fn finish(&self) -> u64 {
        0
    }
}

impl ArtifactCache {
    pub fn open(dir: &Path) -> Option<ArtifactCache> {
        match Self::prepare(dir) {
            Ok(()) => Some(ArtifactCache {
                dir: dir.to_path_buf(),
            }),
            Err(e) => {
                warn!(dir = %dir.display(), "plugin cache not used: {e}");
                None
            }
        }
    }

    fn prepare(dir: &Path) -> anyhow::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = fs::metadata(dir)?;
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            if meta.uid() != me {
                anyhow::bail!("owned by uid {}, not by this user ({me})", meta.uid());
            }
            if meta.mode() & 0o022 != 0 {
                anyhow::bail!("writable by other users (mode {:o})", meta.mode() & 0o777);
            }
        }
        Ok(())
    }

    fn key(engine: &Engine, wasm: &[u8]) -> String {
        let mut hasher = Sha(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.0.update(wasm);
        hex::encode(hasher.0.finalize())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.cwasm"))
    }

    fn get(&self, engine: &Engine, key: &str) -> Option<Component> {
        let bytes = fs::read(self.path(key)).ok()?;
        let (artifact, checksum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
        if Sha256::digest(artifact).as_slice() != checksum {
            warn!(entry = %self.path(key).display(), "damaged plugin cache entry ignored");
            return None;
        }
        // SAFETY: the artifact was written by `put` from `Component::serialize` (checked by its
        // checksum) into a directory only this user can write to, and wasmtime checks that it
        // was compiled for this engine's configuration.
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(component) => Some(component),
            Err(e) => {
                warn!(entry = %self.path(key).display(), "plugin cache entry ignored: {e}");
                None
            }
        }
    }

    fn put(&self, key: &str, component: &Component) {
        let result = component
            .serialize()
            .map_err(anyhow::Error::from)
            .and_then(|mut bytes| {
                let checksum = Sha256::digest(&bytes);
                bytes.extend_from_slice(&checksum);
                // Written aside and renamed, so a concurrent reader never sees half an entry.
                static WRITES: AtomicUsize = AtomicUsize::new(0);
                let partial = self.dir.join(format!(
                    "{key}.{}-{}.partial",
                    std::process::id(),
                    WRITES.fetch_add(1, Ordering::Relaxed)
                ));
                fs::write(&partial, &bytes)?;
                fs::rename(&partial, self.path(key))?;
                Ok(())
            });
        if let Err(e) = result {
            warn!(dir = %self.dir.display(), "cannot write the plugin cache: {e:#}");
        }
    }
}
