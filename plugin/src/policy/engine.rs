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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod conform;
mod sandbox;

pub use sandbox::Limits;

use kr_policy_abi::{exports, packed, Input, SettingsAnswer};
use serde_json::value::RawValue;
use serde_json::Value;
use wasmtime::{Engine, Module, Precompiled};

use super::builtin::Builtin;
use super::cache::ModuleCache;
use super::{Finding, Metadata, ModuleSource, PolicyRun, Report};
use crate::render::Bundle;
use conform::parse_findings;

/// How often the epoch advances; the deadline is counted in these ticks.
const TICK: Duration = Duration::from_millis(5);

/// What evaluating one policy gives: its findings and how the run went, or why it failed.
type PolicyResult = Result<(Vec<Finding>, PolicyRun), PolicyError>;

/// The ABI version whose modules get their input as JSON text; later ones get it packed.
const JSON_INPUT_ABI: i32 = 1;

/// An object of the bundle in each form a loaded module reads.
struct EncodedObject<'b> {
    kind: &'b str,
    /// JSON text, for ABI 1 modules (None when no such module is loaded).
    json: Option<Box<RawValue>>,
    /// Packed, for later ABI versions: the bundle's own bytes.
    packed: &'b [u8],
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
    /// Dropping it stops the epoch ticker at once, mid-tick (a sleeping ticker that polled a
    /// flag made every command wait out its last tick, up to 5 ms, on exit).
    stop: Option<mpsc::Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl Drop for PolicyEngine {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

impl PolicyEngine {
    pub fn new(options: EngineOptions) -> anyhow::Result<PolicyEngine> {
        // The configuration build.rs precompiled the built-in policies with.
        let engine = super::engine_config::config(None)
            .and_then(|config| Engine::new(&config))
            .map_err(|e| anyhow::anyhow!("cannot start the WebAssembly engine: {e}"))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let ticker = {
            let engine = engine.clone();
            std::thread::Builder::new()
                .name("policy-epoch".into())
                .spawn(move || {
                    // Ticks until the engine drops its sender, which wakes this wait at once.
                    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                        engine.increment_epoch();
                    }
                })?
        };
        let cache = options.cache_dir.map(|dir| ModuleCache::new(dir, &engine));
        Ok(PolicyEngine {
            engine,
            limits: options.limits,
            cache,
            stop: Some(stop),
            ticker: Some(ticker),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The built-in policies embedded in the binary, as build.rs precompiled them.
    #[allow(unsafe_code)] // loads our own precompiled code: see the SAFETY comment below
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
    #[allow(unsafe_code)] // deserializes precompiled code: see # Safety
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

    /// Asks the module whether `settings` suit it; the error carries the module's explanation.
    pub fn validate_settings(&self, policy: &Policy, settings: &Value) -> Result<(), PolicyError> {
        let input = encode_settings(policy, settings)?;
        let mut call = self.instantiate(&policy.label, &policy.module, input.len())?;
        self.validate_settings_in(policy, &mut call, &input)
    }

    /// [`validate_settings`](Self::validate_settings) in an instance the caller goes on using.
    fn validate_settings_in(
        &self,
        policy: &Policy,
        call: &mut sandbox::Call,
        settings: &[u8],
    ) -> Result<(), PolicyError> {
        let raw = self.call_packed(
            &policy.label,
            call,
            exports::VALIDATE_SETTINGS,
            Some(&[settings]),
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
    /// findings, in policy order. Each policy validates its settings first.
    pub fn evaluate(
        &self,
        bundle: &Bundle,
        policies: &[Policy],
        settings: &super::PolicySettings,
    ) -> Result<Report, PolicyError> {
        settings.check_known(policies)?;
        // The objects are packed already, as later ABI versions read them; JSON text is made
        // once per object, and only when an ABI 1 module is loaded. Every policy then gets the
        // objects of the kinds it reads.
        let json = policies.iter().any(|p| p.metadata.abi == JSON_INPUT_ABI);
        let objects = crate::parallel::try_map(bundle.objects.iter().collect(), |o| {
            let json = match json {
                true => {
                    Some(serde_json::value::to_raw_value(&o.object).map_err(|e| e.to_string())?)
                }
                false => None,
            };
            Ok::<_, String>(EncodedObject {
                kind: o.object.kind(),
                json,
                packed: o.object.bytes(),
            })
        })
        .map_err(|e| {
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
                    let result = self.evaluate_one(p, &objects, &value);
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

    /// One policy over pre-encoded objects (each encoded once for all policies, with its kind):
    /// those of the kinds the policy declares, or all of them.
    fn evaluate_one(
        &self,
        policy: &Policy,
        objects: &[EncodedObject<'_>],
        settings: &Value,
    ) -> Result<(Vec<Finding>, PolicyRun), PolicyError> {
        let label = &policy.label;
        let start = Instant::now();
        let objects = objects_for(&policy.metadata.kinds, objects);
        let sent = objects.len();
        let abi = policy.metadata.abi;
        let error = |e: String| PolicyError::new(label, PolicyErrorKind::Settings, e);
        // The input in parts, which go one after another into the module's memory: packed, the
        // objects are the bundle's own bytes, framed (ABI 1: one JSON text).
        let (json, head, tail);
        let mut input: Vec<&[u8]> = Vec::new();
        if abi == JSON_INPUT_ABI {
            let objects: Vec<_> = objects.iter().filter_map(|o| o.json.as_deref()).collect();
            json = serde_json::to_vec(&Input {
                abi,
                objects,
                settings,
            })
            .map_err(|e| error(e.to_string()))?;
            input.push(&json);
        } else {
            let objects: Vec<&[u8]> = objects.iter().map(|o| o.packed).collect();
            (head, tail) =
                packed::input_frame(abi, &objects, settings).map_err(|e| error(e.to_string()))?;
            input.push(&head);
            input.extend(objects);
            input.push(&tail);
        }
        let input_len = input.iter().map(|part| part.len()).sum();
        // Settings are validated first, in the instance that then evaluates: one instance per
        // policy and run, sized (fuel, deadline, memory) for the bundle.
        let mut call = self.instantiate(label, &policy.module, input_len)?;
        self.validate_settings_in(policy, &mut call, &encode_settings(policy, settings)?)?;
        let raw = self.call_packed(label, &mut call, exports::EVALUATE, Some(&input))?;
        let findings = parse_findings(policy, &raw)?;
        let run = PolicyRun {
            policy: policy.name().to_string(),
            module: label.clone(),
            version: policy.metadata.version.clone(),
            duration: start.elapsed(),
            objects: sent,
            findings: findings.len(),
        };
        Ok((findings, run))
    }
}

fn encode_settings(policy: &Policy, settings: &Value) -> Result<Vec<u8>, PolicyError> {
    serde_json::to_vec(settings)
        .map_err(|e| PolicyError::new(&policy.label, PolicyErrorKind::Settings, e.to_string()))
}

/// The objects of the given kinds (all of them when `kinds` is empty), in bundle order.
fn objects_for<'a, 'b>(
    kinds: &[String],
    objects: &'a [EncodedObject<'b>],
) -> Vec<&'a EncodedObject<'b>> {
    objects
        .iter()
        .filter(|o| kinds.is_empty() || kinds.iter().any(|k| k == o.kind))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_gets_the_objects_of_the_kinds_it_declares_in_bundle_order() {
        let objects: Vec<EncodedObject> = ["ConfigMap", "Service", "StatefulSet", "ConfigMap"]
            .iter()
            .enumerate()
            .map(|(i, kind)| EncodedObject {
                kind,
                json: Some(RawValue::from_string(format!("{i}")).unwrap()),
                packed: &[],
            })
            .collect();
        let sent = |kinds: &[&str]| {
            let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
            objects_for(&kinds, &objects)
                .iter()
                .map(|o| o.json.as_ref().unwrap().get().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(sent(&[]), ["0", "1", "2", "3"]);
        assert_eq!(sent(&["StatefulSet", "ConfigMap"]), ["0", "2", "3"]);
        assert_eq!(sent(&["Service"]), ["1"]);
        assert!(sent(&["PersistentVolume"]).is_empty());
    }
}
