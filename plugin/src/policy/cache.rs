//! On-disk cache of compiled modules, so a warm run deserializes instead of JIT-compiling: for
//! `--policy` modules, and for built-in ones whose precompiled code this host cannot load (the
//! built-ins otherwise never touch it).
//!
//! Key: SHA-256 of (the engine's precompile compatibility hash — wasmtime version, target and
//! compiler settings — and the module bytes). Entry: magic, SHA-256 of the artifact, artifact.
//! The digest is checked before wasmtime sees the bytes, because `Module::deserialize` trusts its
//! input; an entry that fails any check is recompiled and rewritten. Writes go to a temporary
//! file in the same directory and are renamed into place, so readers never see half an entry.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use super::ModuleSource;

const MAGIC: &[u8; 8] = b"KRWASMC1";

pub struct ModuleCache {
    dir: PathBuf,
    engine: Engine,
    fingerprint: [u8; 32],
}

/// Feeds `Hash` output into SHA-256: a stable digest, unlike `DefaultHasher`.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ModuleCache {
    /// `$KUBECTL_REDIS_CACHE_DIR`, else `$XDG_CACHE_HOME/kubectl-redis`, else
    /// `~/.cache/kubectl-redis`; None when none of them can be found.
    pub fn default_dir() -> Option<PathBuf> {
        Self::default_dir_in(|key| std::env::var_os(key))
    }

    /// [`default_dir`](Self::default_dir) under an environment given as a lookup, so it is
    /// tested without changing the process's environment under other threads.
    pub fn default_dir_in(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
        let var = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = var("KUBECTL_REDIS_CACHE_DIR") {
            return Some(dir);
        }
        // The XDG spec says relative paths are invalid and must be ignored.
        if let Some(xdg) = var("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
            return Some(xdg.join("kubectl-redis"));
        }
        var("HOME").map(|h| h.join(".cache").join("kubectl-redis"))
    }

    pub fn new(dir: PathBuf, engine: &Engine) -> ModuleCache {
        let mut h = ShaHasher(Sha256::new());
        h.0.update(b"kubectl-redis module cache v1\0");
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        ModuleCache {
            dir,
            engine: engine.clone(),
            fingerprint: h.0.finalize().into(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache file a module compiles to.
    pub fn path_for(&self, wasm: &[u8]) -> PathBuf {
        let key = Sha256::new()
            .chain_update(self.fingerprint)
            .chain_update(wasm)
            .finalize();
        self.dir
            .join("modules")
            .join(format!("{}.cwasm", hex::encode(key)))
    }

    /// The module from its cache entry ([`ModuleSource::Cache`]), else compiled and written to
    /// the cache ([`ModuleSource::Compiled`]).
    pub fn get_or_compile(&self, wasm: &[u8]) -> wasmtime::Result<(Module, ModuleSource)> {
        let path = self.path_for(wasm);
        match self.read(&path) {
            Ok(Some(module)) => return Ok((module, ModuleSource::Cache)),
            Ok(None) => {}
            Err(reason) => tracing::debug!(
                "recompiling: cache entry {} is unusable: {reason}",
                path.display()
            ),
        }
        let module = Module::new(&self.engine, wasm)?;
        if let Err(e) = module
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|artifact| write_atomically(&path, &artifact).map_err(|e| e.to_string()))
        {
            // A read-only or full cache directory only costs the next run a compile.
            tracing::debug!("cannot write cache entry {}: {e}", path.display());
        }
        Ok((module, ModuleSource::Compiled))
    }

    /// Ok(None): no entry. Err: an entry that must not be used.
    #[allow(unsafe_code)] // deserializes a checked cache entry: see the SAFETY comment
    fn read(&self, path: &Path) -> Result<Option<Module>, String> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or("bad magic")?;
        if rest.len() < 32 {
            return Err("truncated".into());
        }
        let (digest, artifact) = rest.split_at(32);
        if Sha256::digest(artifact).as_slice() != digest {
            return Err("checksum mismatch".into());
        }
        // SAFETY: the artifact is byte-for-byte what `Module::serialize` wrote for this engine
        // configuration (the checksum and the key's compatibility hash say so), which is what
        // `deserialize` requires.
        unsafe { Module::deserialize(&self.engine, artifact) }
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

fn write_atomically(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(
        ".{}.{}.{nanos}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id()
    ));
    let mut data = Vec::with_capacity(MAGIC.len() + 32 + artifact.len());
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(&Sha256::digest(artifact));
    data.extend_from_slice(artifact);
    let result = std::fs::write(&tmp, &data).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
