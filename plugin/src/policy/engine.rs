//! The wasmtime host: loads modules, checks they fit the ABI, and runs each call in a fresh,
//! sandboxed store. The built-in modules are loaded as build.rs precompiled them (no compile at
//! run time); `--policy` modules, and built-ins this host cannot load precompiled, are compiled
//! through the on-disk cache.
//!
//! Sandbox: a module may import nothing (no WASI, no host functions), so all it can do is compute
//! on the bytes it is handed. Each store has a fuel budget (deterministic), an epoch deadline
//! (wall clock, for slow machines), a memory cap and a table cap, all scaled with the input size
//! so a large bundle is not mistaken for a hostile module.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kr_policy_abi::{exports, Input, Output, PanicMessage, SettingsAnswer};
use serde_json::value::RawValue;
use serde_json::Value;
use wasmtime::{
    Engine, ExternType, Instance, Module, Precompiled, ResourceLimiter, Store, StoreLimits,
    StoreLimitsBuilder, Trap, ValType,
};

use super::builtin::Builtin;
use super::cache::ModuleCache;
use super::{Finding, Metadata, PolicyRun, Report, RuleInfo, SUPPORTED_ABI};
use crate::render::Bundle;

/// How often the epoch advances; the deadline is counted in these ticks.
const TICK: Duration = Duration::from_millis(5);

/// What evaluating one policy gives: its findings and how the run went, or why it failed.
type PolicyResult = Result<(Vec<Finding>, PolicyRun), PolicyError>;

/// Resource limits for one call into a module.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Fuel (≈ wasm instructions) for a call, plus `fuel_per_input_byte` for each byte of input.
    pub fuel: u64,
    pub fuel_per_input_byte: u64,
    /// Wall-clock deadline for a call, plus `deadline_per_input_mib` for each MiB of input.
    pub deadline: Duration,
    pub deadline_per_input_mib: Duration,
    /// Linear memory cap, or `memory_per_input_byte` × input size when that is larger (a module
    /// must at least hold the bundle and its parsed form).
    pub memory_bytes: usize,
    pub memory_per_input_byte: usize,
    pub table_elements: usize,
    /// The largest result a module may return.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 400_000_000,
            fuel_per_input_byte: 2_000,
            // Fuel is the deterministic bound on a module's work; the wall-clock deadline only
            // catches what fuel cannot (a host stalled on a loaded machine), so it is generous
            // with large bundles: a 10,000-object bundle (~9 MiB) gets ~10 s.
            deadline: Duration::from_millis(1000),
            deadline_per_input_mib: Duration::from_millis(1000),
            memory_bytes: 64 << 20,
            memory_per_input_byte: 12,
            table_elements: 10_000,
            max_output_bytes: 8 << 20,
        }
    }
}

impl Limits {
    fn for_input(&self, len: usize) -> (u64, Duration, usize) {
        let fuel = self
            .fuel
            .saturating_add(self.fuel_per_input_byte.saturating_mul(len as u64));
        let deadline = self.deadline
            + self
                .deadline_per_input_mib
                .mul_f64(len as f64 / (1 << 20) as f64);
        let memory = self
            .memory_bytes
            .max(self.memory_per_input_byte.saturating_mul(len));
        (fuel, deadline, memory)
    }
}

#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub limits: Limits,
    /// Where compiled modules are kept; None compiles every time.
    pub cache_dir: Option<PathBuf>,
}

impl EngineOptions {
    /// Default limits and the default cache directory ([`ModuleCache::default_dir`]).
    pub fn from_env() -> EngineOptions {
        EngineOptions {
            limits: Limits::default(),
            cache_dir: ModuleCache::default_dir(),
        }
    }
}

/// What went wrong with a module. Every variant is an error of `check` (exit 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyErrorKind {
    Read,
    Compile,
    Import,
    Export,
    Abi,
    Instantiate,
    OutOfFuel,
    Deadline,
    Memory,
    Trap,
    Output,
    Settings,
    Reported,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("policy module {module}: {message}")]
pub struct PolicyError {
    /// The module as the user knows it: `builtin:ports` or the path given to --policy.
    pub module: String,
    pub kind: PolicyErrorKind,
    pub message: String,
}

impl PolicyError {
    fn new(module: &str, kind: PolicyErrorKind, message: impl Into<String>) -> PolicyError {
        PolicyError {
            module: module.to_string(),
            kind,
            message: message.into(),
        }
    }
}

/// Where a module's native code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleSource {
    /// Compiled by build.rs and embedded in the binary (the built-in policies).
    Precompiled,
    /// Read from the on-disk cache of compiled modules.
    Cache,
    /// JIT-compiled by this process (then written to the cache, when there is one).
    Compiled,
}

/// A compiled module that fits the ABI.
#[derive(Clone)]
pub struct Policy {
    /// `builtin:NAME` or the file path.
    pub label: String,
    pub metadata: Metadata,
    /// Where its code came from.
    pub source: ModuleSource,
    module: Module,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("label", &self.label)
            .field("metadata", &self.metadata)
            .field("source", &self.source)
            .finish()
    }
}

impl Policy {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}

pub struct PolicyEngine {
    engine: Engine,
    limits: Limits,
    cache: Option<ModuleCache>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Drop for PolicyEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

/// The exports the ABI requires, with their signatures.
const REQUIRED_EXPORTS: &[(&str, &[ValType], &[ValType])] = &[
    (exports::ABI_VERSION, &[], &[ValType::I32]),
    (exports::ALLOC, &[ValType::I32], &[ValType::I32]),
    (exports::METADATA, &[], &[ValType::I64]),
    (
        exports::VALIDATE_SETTINGS,
        &[ValType::I32, ValType::I32],
        &[ValType::I64],
    ),
    (
        exports::EVALUATE,
        &[ValType::I32, ValType::I32],
        &[ValType::I64],
    ),
];

/// A store's limits (wasmtime's [`StoreLimits`]), and what they refused: a module that hits a cap
/// then fails with an error that says which, from the record rather than the error's text.
struct Sandbox {
    limits: StoreLimits,
    refused: Option<Refused>,
}

#[derive(Debug, Clone, Copy)]
enum Refused {
    Memory { desired: usize },
    Table { desired: usize },
}

/// The trap a refused grow turns into; the record in [`Sandbox`] says what it was.
#[derive(Debug, thiserror::Error)]
#[error("a sandbox limit refused to grow {0}")]
struct LimitReached(&'static str);

impl ResourceLimiter for Sandbox {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if self.limits.memory_growing(current, desired, maximum)? {
            return Ok(true);
        }
        self.refused = Some(Refused::Memory { desired });
        Err(LimitReached("memory").into())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if self.limits.table_growing(current, desired, maximum)? {
            return Ok(true);
        }
        self.refused = Some(Refused::Table { desired });
        Err(LimitReached("a table").into())
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// A store with its limits, and the instance once it exists.
struct Call {
    store: Store<Sandbox>,
    instance: Option<Instance>,
    fuel: u64,
    deadline: Duration,
    memory_cap: usize,
}

impl Call {
    fn func<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        label: &str,
        name: &str,
    ) -> Result<wasmtime::TypedFunc<P, R>, PolicyError> {
        let instance = self.instance.ok_or_else(|| {
            PolicyError::new(label, PolicyErrorKind::Instantiate, "is not instantiated")
        })?;
        instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .map_err(|e| PolicyError::new(label, PolicyErrorKind::Export, format!("{name}: {e}")))
    }

    fn memory(&mut self, label: &str) -> Result<wasmtime::Memory, PolicyError> {
        self.instance
            .and_then(|i| i.get_memory(&mut self.store, "memory"))
            .ok_or_else(|| {
                PolicyError::new(label, PolicyErrorKind::Export, "does not export `memory`")
            })
    }
}

impl PolicyEngine {
    pub fn new(options: EngineOptions) -> anyhow::Result<PolicyEngine> {
        // The configuration build.rs precompiled the built-in policies with.
        let engine = super::engine_config::config(None)
            .and_then(|config| Engine::new(&config))
            .map_err(|e| anyhow::anyhow!("cannot start the WebAssembly engine: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("policy-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })?
        };
        let cache = options.cache_dir.map(|dir| ModuleCache::new(dir, &engine));
        Ok(PolicyEngine {
            engine,
            limits: options.limits,
            cache,
            stop,
            ticker: Some(ticker),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The built-in policies embedded in the binary, as build.rs precompiled them.
    pub fn load_builtins(&self) -> Result<Vec<Policy>, PolicyError> {
        let load = |b: &Builtin| {
            let label = format!("builtin:{}", b.name);
            match b.precompiled {
                // SAFETY: the code is build.rs's `Engine::precompile_module` output for these
                // very modules, embedded in this binary at build time: our own build output,
                // never read from outside the binary.
                Some(code) => unsafe { self.load_precompiled(&label, code, b.wasm) },
                None => {
                    tracing::info!(
                        "{label}: this binary was built without its precompiled code; compiling it"
                    );
                    self.load(&label, b.wasm)
                }
            }
        };
        let builtins = super::builtin::BUILTIN;
        if builtins.iter().all(|b| b.precompiled.is_some()) {
            // Loading precompiled code takes microseconds: threads would cost more than they save.
            return builtins.iter().map(load).collect();
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = builtins.iter().map(|b| s.spawn(move || load(b))).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("loading a policy does not panic"))
                .collect()
        })
    }

    /// A module from its precompiled code (`Engine::precompile_module` output), or from `wasm`
    /// when this host cannot load that code (another wasmtime, other engine settings, CPU
    /// features this machine lacks); the fallback is logged at info level (`-v`) and goes
    /// through the on-disk cache.
    ///
    /// # Safety
    ///
    /// `code` is run as machine code without being verified: it must be, byte for byte, what
    /// `Engine::precompile_module` (or `Module::serialize`) produced, or bytes that are not a
    /// precompiled module at all (those are detected and refused). Never pass bytes from outside.
    pub unsafe fn load_precompiled(
        &self,
        label: &str,
        code: &[u8],
        wasm: &[u8],
    ) -> Result<Policy, PolicyError> {
        let module = match Engine::detect_precompiled(code) {
            // SAFETY: the caller vouches that `code` is untampered `precompile_module` output,
            // which is what `Module::deserialize` requires; wasmtime still checks that it was
            // compiled by this wasmtime version, for this target and with settings this engine
            // can run, and refuses it otherwise.
            Some(Precompiled::Module) => unsafe { Module::deserialize(&self.engine, code) },
            _ => Err(wasmtime::Error::msg(
                "the bytes are not a precompiled module",
            )),
        };
        match module {
            Ok(module) => self.check(label, module, ModuleSource::Precompiled),
            Err(e) => {
                tracing::info!(
                    "{label}: cannot use its precompiled code on this host ({e:#}); compiling it{}",
                    match &self.cache {
                        Some(cache) => format!(" (cached in {})", cache.dir().display()),
                        None => String::new(),
                    }
                );
                self.load(label, wasm)
            }
        }
    }

    /// A module from a file (`--policy FILE.wasm`).
    pub fn load_file(&self, path: &Path) -> Result<Policy, PolicyError> {
        let label = path.display().to_string();
        let wasm = std::fs::read(path).map_err(|e| {
            PolicyError::new(&label, PolicyErrorKind::Read, format!("cannot read: {e}"))
        })?;
        self.load(&label, &wasm)
    }

    /// Compiles (or loads from the cache) and checks a module: no imports, the ABI's exports with
    /// their signatures, a supported ABI version and well-formed metadata.
    pub fn load(&self, label: &str, wasm: &[u8]) -> Result<Policy, PolicyError> {
        let (module, source) = match &self.cache {
            Some(cache) => cache.get_or_compile(wasm),
            None => Module::new(&self.engine, wasm).map(|m| (m, ModuleSource::Compiled)),
        }
        .map_err(|e| {
            PolicyError::new(
                label,
                PolicyErrorKind::Compile,
                format!("not a valid WebAssembly module: {e:#}"),
            )
        })?;
        self.check(label, module, source)
    }

    /// Checks that a module fits the ABI and reads its metadata.
    fn check(
        &self,
        label: &str,
        module: Module,
        source: ModuleSource,
    ) -> Result<Policy, PolicyError> {
        let err = |kind, msg: String| PolicyError::new(label, kind, msg);

        if let Some(import) = module.imports().next() {
            let n = module.imports().len();
            return Err(err(
                PolicyErrorKind::Import,
                format!(
                    "imports `{}::{}`{}; policy modules run sandboxed and may import nothing (no WASI, no host functions). Build for wasm32-unknown-unknown with the SDK",
                    import.module(),
                    import.name(),
                    if n > 1 { format!(" and {} more", n - 1) } else { String::new() }
                ),
            ));
        }
        match module.get_export("memory") {
            Some(ExternType::Memory(_)) => {}
            _ => {
                return Err(err(
                    PolicyErrorKind::Export,
                    "does not export its linear memory as `memory`".into(),
                ))
            }
        }
        for (name, params, results) in REQUIRED_EXPORTS {
            let Some(ExternType::Func(ty)) = module.get_export(name) else {
                return Err(err(PolicyErrorKind::Export, format!("lacks the export `{name}` the policy ABI requires (see policies/README.md)")));
            };
            let same = |a: &mut dyn ExactSizeIterator<Item = ValType>, b: &[ValType]| {
                a.len() == b.len() && a.zip(b).all(|(x, y)| ValType::eq(&x, y))
            };
            if !same(&mut ty.params(), params) || !same(&mut ty.results(), results) {
                return Err(err(PolicyErrorKind::Export, format!("export `{name}` has signature {ty}, the ABI says ({params:?}) -> {results:?}")));
            }
        }

        let mut call = self.instantiate(label, &module, 0)?;
        let version = {
            let f = call.func::<(), i32>(label, exports::ABI_VERSION)?;
            f.call(&mut call.store, ())
                .map_err(|e| self.call_error(label, &mut call, e))?
        };
        if !SUPPORTED_ABI.contains(&version) {
            return Err(err(PolicyErrorKind::Abi, format!("speaks policy ABI version {version}; this kubectl-redis supports {SUPPORTED_ABI:?}")));
        }
        let raw = self.call_packed(label, &mut call, exports::METADATA, None)?;
        let metadata: Metadata = serde_json::from_slice(&raw).map_err(|e| {
            err(
                PolicyErrorKind::Output,
                format!("kr_metadata returned malformed JSON: {e}"),
            )
        })?;
        if metadata.abi != version {
            return Err(err(
                PolicyErrorKind::Abi,
                format!(
                    "metadata says ABI {} but kr_abi_version says {version}",
                    metadata.abi
                ),
            ));
        }
        if metadata.name.is_empty()
            || !metadata
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(err(
                PolicyErrorKind::Output,
                format!(
                    "policy name {:?} must be non-empty [A-Za-z0-9_-]",
                    metadata.name
                ),
            ));
        }
        if metadata.rules.is_empty() {
            return Err(err(PolicyErrorKind::Output, "declares no rules".into()));
        }
        if let Some(r) = metadata.rules.iter().find(|r| {
            r.id.is_empty()
                || !r
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        }) {
            return Err(err(PolicyErrorKind::Output, format!("rule id {:?} must be non-empty [A-Za-z0-9._-] (it is used in waiver annotations)", r.id)));
        }
        Ok(Policy {
            label: label.to_string(),
            metadata,
            source,
            module,
        })
    }

    /// Asks the module whether `settings` suit it; the error carries the module's explanation.
    pub fn validate_settings(&self, policy: &Policy, settings: &Value) -> Result<(), PolicyError> {
        let input = serde_json::to_vec(settings).map_err(|e| {
            PolicyError::new(&policy.label, PolicyErrorKind::Settings, e.to_string())
        })?;
        let mut call = self.instantiate(&policy.label, &policy.module, input.len())?;
        let raw = self.call_packed(
            &policy.label,
            &mut call,
            exports::VALIDATE_SETTINGS,
            Some(&input),
        )?;
        let answer: SettingsAnswer = serde_json::from_slice(&raw).map_err(|e| {
            PolicyError::new(
                &policy.label,
                PolicyErrorKind::Output,
                format!("kr_validate_settings returned malformed JSON: {e}"),
            )
        })?;
        if answer.ok {
            Ok(())
        } else {
            Err(PolicyError::new(
                &policy.label,
                PolicyErrorKind::Settings,
                format!(
                    "rejects its settings (--policy-settings, key `{}`): {}",
                    policy.name(),
                    answer.error.unwrap_or_else(|| "no reason given".into())
                ),
            ))
        }
    }

    /// Runs every policy over the bundle (in parallel; each in its own store) and collects the
    /// findings, in policy order. Settings are validated first.
    pub fn evaluate(
        &self,
        bundle: &Bundle,
        policies: &[Policy],
        settings: &super::PolicySettings,
    ) -> Result<Report, PolicyError> {
        settings.check_known(policies)?;
        let objects: Vec<&Value> = bundle.objects.iter().map(|o| &o.object).collect();
        let objects = serde_json::value::to_raw_value(&objects).map_err(|e| {
            PolicyError::new(
                "(host)",
                PolicyErrorKind::Output,
                format!("cannot encode the bundle: {e}"),
            )
        })?;
        // At most one module per core at a time: each call's wall-clock deadline then measures
        // the module's own work, not its wait for a core behind the other modules.
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, policies.len().max(1));
        let next = AtomicUsize::new(0);
        let slots: Mutex<Vec<Option<PolicyResult>>> =
            Mutex::new(policies.iter().map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = policies.get(i) else { break };
                    let value = settings.for_policy(p.name());
                    let result = self
                        .validate_settings(p, &value)
                        .and_then(|()| self.evaluate_one(p, &objects, &value));
                    slots.lock().expect("no worker panics holding the lock")[i] = Some(result);
                });
            }
        });
        let results: Vec<PolicyResult> = slots
            .into_inner()
            .expect("no worker panics holding the lock")
            .into_iter()
            .map(|r| r.expect("every policy was evaluated"))
            .collect();
        let mut report = Report::default();
        for p in policies {
            for r in &p.metadata.rules {
                report.rules.push((p.name().to_string(), r.clone()));
            }
        }
        for r in results {
            let (findings, run) = r?;
            report.findings.extend(findings);
            report.policies.push(run);
        }
        super::location::locate(&mut report, bundle);
        Ok(report)
    }

    /// One policy over pre-encoded objects (a JSON array, encoded once for all policies).
    pub fn evaluate_one(
        &self,
        policy: &Policy,
        objects: &RawValue,
        settings: &Value,
    ) -> Result<(Vec<Finding>, PolicyRun), PolicyError> {
        let label = &policy.label;
        let start = Instant::now();
        let input = Input {
            abi: policy.metadata.abi,
            objects,
            settings,
        };
        let input = serde_json::to_vec(&input)
            .map_err(|e| PolicyError::new(label, PolicyErrorKind::Settings, e.to_string()))?;
        let mut call = self.instantiate(label, &policy.module, input.len())?;
        let raw = self.call_packed(label, &mut call, exports::EVALUATE, Some(&input))?;
        let findings = parse_findings(policy, &raw)?;
        let run = PolicyRun {
            policy: policy.name().to_string(),
            module: label.clone(),
            version: policy.metadata.version.clone(),
            duration: start.elapsed(),
            findings: findings.len(),
        };
        Ok((findings, run))
    }

    fn instantiate(
        &self,
        label: &str,
        module: &Module,
        input_len: usize,
    ) -> Result<Call, PolicyError> {
        let (fuel, deadline, memory_cap) = self.limits.for_input(input_len);
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_cap)
            .table_elements(self.limits.table_elements)
            .instances(1)
            .memories(1)
            .tables(4)
            .build();
        let sandbox = Sandbox {
            limits,
            refused: None,
        };
        let mut store = Store::new(&self.engine, sandbox);
        store.limiter(|s| s);
        store
            .set_fuel(fuel)
            .map_err(|e| PolicyError::new(label, PolicyErrorKind::Instantiate, e.to_string()))?;
        store.set_epoch_deadline((deadline.as_millis() / TICK.as_millis()).max(1) as u64);
        store.epoch_deadline_trap();
        let mut call = Call {
            store,
            instance: None,
            fuel,
            deadline,
            memory_cap,
        };
        // Start functions and data segments run here, under the same limits.
        let instance = Instance::new(&mut call.store, module, &[]).map_err(|e| {
            let mut e = self.call_error(label, &mut call, e);
            if e.kind == PolicyErrorKind::Trap {
                e.kind = PolicyErrorKind::Instantiate;
                e.message = format!("cannot be instantiated: {}", e.message);
            }
            e
        })?;
        call.instance = Some(instance);
        Ok(call)
    }

    /// Calls an export that returns a packed (ptr << 32 | len) result, passing `input` through
    /// `kr_alloc` first when given, and copies the result out of the module's memory.
    fn call_packed(
        &self,
        label: &str,
        call: &mut Call,
        export: &str,
        input: Option<&[u8]>,
    ) -> Result<Vec<u8>, PolicyError> {
        let err = |kind, msg: String| PolicyError::new(label, kind, msg);
        let memory = call.memory(label)?;
        let packed = match input {
            None => {
                let f = call.func::<(), i64>(label, export)?;
                f.call(&mut call.store, ())
                    .map_err(|e| self.call_error(label, call, e))?
            }
            Some(bytes) => {
                let len = i32::try_from(bytes.len()).map_err(|_| {
                    err(
                        PolicyErrorKind::Output,
                        format!(
                            "input of {} bytes is too large for a 32-bit module",
                            bytes.len()
                        ),
                    )
                })?;
                let alloc = call.func::<i32, i32>(label, "kr_alloc")?;
                let ptr = alloc
                    .call(&mut call.store, len)
                    .map_err(|e| self.call_error(label, call, e))?;
                memory
                    .write(&mut call.store, ptr as u32 as usize, bytes)
                    .map_err(|_| err(PolicyErrorKind::Output, format!("kr_alloc({len}) returned {:#x}, which is not a buffer of that size in its memory", ptr as u32)))?;
                let f = call.func::<(i32, i32), i64>(label, export)?;
                f.call(&mut call.store, (ptr, len))
                    .map_err(|e| self.call_error(label, call, e))?
            }
        };
        let (ptr, len) = (
            (packed as u64 >> 32) as usize,
            (packed as u64 & 0xffff_ffff) as usize,
        );
        if len > self.limits.max_output_bytes {
            return Err(err(
                PolicyErrorKind::Output,
                format!(
                    "{export} returned {len} bytes, more than the {} byte limit",
                    self.limits.max_output_bytes
                ),
            ));
        }
        let data = memory.data(&call.store);
        let out = ptr
            .checked_add(len)
            .and_then(|end| data.get(ptr..end))
            .ok_or_else(|| {
                err(
                    PolicyErrorKind::Output,
                    format!(
                        "{export} returned {len} bytes at {ptr:#x}, outside its {} byte memory",
                        data.len()
                    ),
                )
            })?;
        Ok(out.to_vec())
    }

    /// Turns a failed call into an error that says what the module did.
    fn call_error(&self, label: &str, call: &mut Call, e: wasmtime::Error) -> PolicyError {
        let err = |kind, msg: String| PolicyError::new(label, kind, msg);
        if let Some(trap) = e.downcast_ref::<Trap>() {
            return match trap {
                Trap::OutOfFuel => err(
                    PolicyErrorKind::OutOfFuel,
                    format!(
                        "ran out of fuel (limit {} units); is it looping?",
                        call.fuel
                    ),
                ),
                Trap::Interrupt => err(
                    PolicyErrorKind::Deadline,
                    format!("did not finish within its {:?} deadline", call.deadline),
                ),
                Trap::StackOverflow => err(
                    PolicyErrorKind::Trap,
                    "overflowed its stack (unbounded recursion?)".into(),
                ),
                other => {
                    let panic = self
                        .panic_message(call)
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default();
                    err(PolicyErrorKind::Trap, format!("trapped ({other}){panic}"))
                }
            };
        }
        match call.store.data().refused {
            Some(Refused::Memory { desired }) => {
                return err(
                    PolicyErrorKind::Memory,
                    format!(
                        "tried to grow its memory to {} MiB, beyond the {} MiB cap",
                        desired >> 20,
                        call.memory_cap >> 20
                    ),
                )
            }
            Some(Refused::Table { desired }) => {
                return err(
                    PolicyErrorKind::Memory,
                    format!(
                        "tried to grow a table to {desired} elements, beyond the cap of {}",
                        self.limits.table_elements
                    ),
                )
            }
            None => {}
        }
        let text = format!("{e:#}");
        err(PolicyErrorKind::Trap, format!("failed: {text}"))
    }

    /// The SDK's panic hook leaves the message for `kr_panic_message`; modules without it say nothing.
    fn panic_message(&self, call: &mut Call) -> Option<String> {
        let f = call
            .instance?
            .get_typed_func::<(), i64>(&mut call.store, exports::PANIC_MESSAGE)
            .ok()?;
        // A little fresh fuel and time: the store's budget may be what ran out.
        call.store.set_fuel(10_000_000).ok()?;
        call.store
            .set_epoch_deadline((200 / TICK.as_millis()) as u64);
        let packed = f.call(&mut call.store, ()).ok()? as u64;
        let (ptr, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
        let memory = call.instance?.get_memory(&mut call.store, "memory")?;
        let bytes = memory
            .data(&call.store)
            .get(ptr..ptr.checked_add(len.min(64 << 10))?)?;
        let answer: PanicMessage = serde_json::from_slice(bytes).ok()?;
        Some(answer.message).filter(|m| !m.is_empty())
    }
}

fn parse_findings(policy: &Policy, raw: &[u8]) -> Result<Vec<Finding>, PolicyError> {
    let bad = |msg: String| {
        PolicyError::new(
            &policy.label,
            PolicyErrorKind::Output,
            format!("returned malformed output: {msg}"),
        )
    };
    let output = serde_json::from_slice(raw).map_err(|e| {
        bad(format!(
            "{e} (the ABI wants an object with `findings` or `error`)"
        ))
    })?;
    let findings = match output {
        Output::Findings(findings) => findings,
        Output::Error(e) => {
            return Err(PolicyError::new(
                &policy.label,
                PolicyErrorKind::Reported,
                format!("reported an error: {e}"),
            ))
        }
    };
    findings
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let rule: &RuleInfo = policy
                .metadata
                .rules
                .iter()
                .find(|r| r.id == f.rule)
                .ok_or_else(|| {
                    bad(format!(
                        "finding {i} names rule `{}`, which the module does not declare",
                        f.rule
                    ))
                })?;
            if !(f.path.is_empty() || f.path.starts_with('/')) {
                return Err(bad(format!(
                    "finding {i} has path {:?}, not a JSON pointer",
                    f.path
                )));
            }
            if f.object.kind.is_empty() || f.object.name.is_empty() {
                return Err(bad(format!(
                    "finding {i} does not name an object (kind and name)"
                )));
            }
            if let Some(fix) = &f.fix {
                serde_json::from_value::<json_patch::Patch>(Value::Array(fix.clone())).map_err(
                    |e| {
                        bad(format!(
                            "finding {i} has a fix that is not a JSON patch: {e}"
                        ))
                    },
                )?;
            }
            Ok(Finding {
                policy: policy.name().to_string(),
                rule: rule.id.clone(),
                severity: f.severity,
                object: f.object,
                path: f.path,
                message: f.message,
                fix: f.fix.map(Value::Array),
                location: None,
                suppressed: None,
            })
        })
        .collect()
}
