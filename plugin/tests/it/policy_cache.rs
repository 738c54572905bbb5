//! The compiled-module cache: a warm load deserializes instead of compiling, and a damaged entry
//! is recompiled and replaced, never trusted. The built-in policies load from the code build.rs
//! precompiled, and never touch the cache unless that code cannot be used.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kubectl_redis::object::PackedObject;
use kubectl_redis::policy::ModuleCache;
use kubectl_redis::policy::{
    engine_config, EngineOptions, Limits, ModuleSource, PolicyEngine, PolicySettings,
};
use kubectl_redis::render::{Bundle, RenderedObject};

const OUT: &str = r#"{"findings":[{"rule":"r","severity":"deny","object":{"apiVersion":"v1","kind":"ConfigMap","name":"cm"},"path":"/data","message":"cached"}]}"#;
const META: &str =
    r#"{"abi":1,"name":"cached","version":"1","rules":[{"id":"r","severity":"deny"}]}"#;

fn module() -> Vec<u8> {
    let esc = |s: &str| s.replace('"', "\\\"");
    let wat = format!(
        r#"(module (memory (export "memory") 2)
  (data (i32.const 0) "{meta}") (data (i32.const 1024) "{{\"ok\":true}}") (data (i32.const 2048) "{out}")
  (func $pack (param i32 i32) (result i64) (i64.or (i64.shl (i64.extend_i32_u (local.get 0)) (i64.const 32)) (i64.extend_i32_u (local.get 1))))
  (func (export "kr_abi_version") (result i32) (i32.const 1))
  (func (export "kr_alloc") (param i32) (result i32) (i32.const 65536))
  (func (export "kr_metadata") (result i64) (call $pack (i32.const 0) (i32.const {ml})))
  (func (export "kr_validate_settings") (param i32 i32) (result i64) (call $pack (i32.const 1024) (i32.const 11)))
  (func (export "kr_evaluate") (param i32 i32) (result i64) (call $pack (i32.const 2048) (i32.const {ol}))))"#,
        meta = esc(META),
        ml = META.len(),
        out = esc(OUT),
        ol = OUT.len()
    );
    wat::parse_str(wat).expect("WAT parses")
}

fn engine(dir: &Path) -> PolicyEngine {
    PolicyEngine::new(EngineOptions {
        limits: Limits::default(),
        cache_dir: Some(dir.to_path_buf()),
    })
    .expect("engine starts")
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("modules"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn bundle() -> Bundle {
    let object =
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}});
    Bundle {
        objects: vec![RenderedObject {
            object: PackedObject::from_value(&object).expect("packs"),
            origin: Default::default(),
        }],
        ..Default::default()
    }
}

/// Loads the module through a fresh engine and checks it still works.
fn load_and_run(dir: &Path) {
    let engine = engine(dir);
    let policy = engine.load("cached.wasm", &module()).expect("loads");
    let report = engine
        .evaluate(&bundle(), &[policy], &PolicySettings::default())
        .expect("evaluates");
    assert_eq!(report.findings[0].message, "cached");
}

/// Everything under the cache directory, temporary files included.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

/// Runs `f` with the info-level log (what `-v` shows) captured; returns its result and the log.
fn info_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let log = Arc::clone(&log);
        move || LogWriter(Arc::clone(&log))
    };
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(writer)
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let log = String::from_utf8(log.lock().expect("log lock").clone()).expect("UTF-8 log");
    (out, log)
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn builtin_policies_load_precompiled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine(dir.path());
    let policies = engine.load_builtins().expect("the built-in policies load");
    assert!(!policies.is_empty());
    for p in &policies {
        // Not compiled here, nor read from the cache: the code build.rs embedded, as it is.
        assert_eq!(
            p.source,
            ModuleSource::Precompiled,
            "{} did not load from its precompiled code; do build.rs and the engine still share \
             engine_config.rs?",
            p.label
        );
    }
    let report = engine
        .evaluate(&bundle(), &policies, &PolicySettings::default())
        .expect("the precompiled policies run");
    assert_eq!(report.policies.len(), policies.len());
    assert_eq!(
        all_files(dir.path()),
        Vec::<PathBuf>::new(),
        "nothing is written to the cache"
    );
}

#[test]
#[allow(unsafe_code)] // loads precompiled code made in the test
fn code_precompiled_with_the_shared_configuration_loads() {
    // What build.rs does: the configuration of engine_config.rs, for the target's baseline CPU.
    let config = engine_config::config(Some(env!("KR_TARGET"))).expect("config");
    let code = wasmtime::Engine::new(&config)
        .expect("engine")
        .precompile_module(&module())
        .expect("precompiles");
    let dir = tempfile::tempdir().expect("tempdir");
    // SAFETY: `code` is `precompile_module` output, made just above.
    let policy = unsafe { engine(dir.path()).load_precompiled("cached.wasm", &code, &module()) }
        .expect("loads");
    assert_eq!(policy.source, ModuleSource::Precompiled);
    assert_eq!(all_files(dir.path()), Vec::<PathBuf>::new());
}

#[test]
#[allow(unsafe_code)] // loads precompiled code made in the test, or garbage it must refuse
fn precompiled_code_the_engine_refuses_falls_back_to_the_cache() {
    // Compiled without fuel and epochs: wasmtime refuses it for this engine, as it would code
    // for CPU features this host lacks. So are bytes that are no precompiled module at all.
    let other = wasmtime::Engine::new(&wasmtime::Config::new())
        .expect("engine")
        .precompile_module(&module())
        .expect("precompiles");
    for code in [other, b"not precompiled".to_vec()] {
        let dir = tempfile::tempdir().expect("tempdir");
        // A fresh engine each time, as each command starts one.
        let fresh = || engine(dir.path());
        // SAFETY: `code` is `precompile_module` output, or not a precompiled module at all.
        let load = |engine: &PolicyEngine| unsafe {
            engine.load_precompiled("cached.wasm", &code, &module())
        };
        let (policy, log) = info_log(|| load(&fresh()));
        let policy = policy.expect("falls back to compiling");
        assert_eq!(policy.source, ModuleSource::Compiled);
        // At info level, which `-v` shows.
        assert!(
            log.contains("cached.wasm: cannot use its precompiled code on this host")
                && log.contains("compiling it (cached in "),
            "{log}"
        );
        assert_eq!(
            entries(dir.path()).len(),
            1,
            "the compiled module is cached"
        );
        let warm = fresh();
        let policy = load(&warm).expect("loads from the cache");
        assert_eq!(policy.source, ModuleSource::Cache);
        let report = warm
            .evaluate(&bundle(), &[policy], &PolicySettings::default())
            .expect("evaluates");
        assert_eq!(report.findings[0].message, "cached");
    }
}

#[test]
fn a_warm_load_uses_the_entry_without_rewriting_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    load_and_run(dir.path());
    let files = entries(dir.path());
    assert_eq!(
        files.len(),
        1,
        "one entry, no temporary files left: {files:?}"
    );
    assert!(files[0].extension().is_some_and(|e| e == "cwasm"));
    let before = std::fs::metadata(&files[0]).expect("entry").ino();
    load_and_run(dir.path());
    // A compile would have written a new file and renamed it over the entry.
    assert_eq!(std::fs::metadata(&files[0]).expect("entry").ino(), before);
    assert_eq!(entries(dir.path()), files);
}

#[test]
fn a_corrupt_entry_is_recompiled_and_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    load_and_run(dir.path());
    let entry = entries(dir.path()).remove(0);
    let good = std::fs::read(&entry).expect("entry");

    // One flipped byte in the compiled code: the checksum catches it.
    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0xff;
    for damaged in [
        flipped,
        good[..good.len() / 3].to_vec(),
        b"garbage".to_vec(),
        Vec::new(),
    ] {
        std::fs::write(&entry, &damaged).expect("damage the entry");
        load_and_run(dir.path());
        let now = std::fs::read(&entry).expect("entry rewritten");
        assert_eq!(now.len(), good.len(), "the entry is rewritten whole");
        assert!(now.starts_with(b"KRWASMC1"));
    }
}

#[test]
fn an_unwritable_cache_only_costs_a_compile() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A file where the cache directory should be: nothing can be written under it.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"not a directory").expect("write");
    load_and_run(&blocked);
}

#[test]
fn the_cache_directory_follows_the_environment() {
    fn env<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
        move |key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| std::ffi::OsString::from(v))
        }
    }
    let home = ("HOME", "/home/someone");
    assert_eq!(
        ModuleCache::default_dir_in(env(&[
            ("KUBECTL_REDIS_CACHE_DIR", "/tmp/kr-cache"),
            ("XDG_CACHE_HOME", "/tmp/xdg"),
            home
        ])),
        Some(PathBuf::from("/tmp/kr-cache"))
    );
    assert_eq!(
        ModuleCache::default_dir_in(env(&[("XDG_CACHE_HOME", "/tmp/xdg"), home])),
        Some(PathBuf::from("/tmp/xdg/kubectl-redis"))
    );
    assert_eq!(
        ModuleCache::default_dir_in(env(&[
            ("KUBECTL_REDIS_CACHE_DIR", ""),
            ("XDG_CACHE_HOME", "relative/ignored"),
            home
        ])),
        Some(PathBuf::from("/home/someone/.cache/kubectl-redis"))
    );
    assert_eq!(ModuleCache::default_dir_in(env(&[])), None);
}
