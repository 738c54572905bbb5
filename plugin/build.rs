//! Builds the built-in policy modules (policies/, a workspace of its own) for
//! wasm32-unknown-unknown, compiles them ahead of time to native code for the target being built
//! (wasmtime's `Engine::precompile_module`, with the engine configuration of
//! `src/policy/engine_config.rs`, the one the binary runs with), and generates
//! `$OUT_DIR/builtin_policies.rs`, which embeds both. The modules are always built from source,
//! so the embedded bytes cannot drift from it; at run time the precompiled code is loaded as it
//! is, and the wasm is only compiled when the host cannot load it.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The engine configuration, shared with the engine itself so that the two cannot drift.
#[path = "src/policy/engine_config.rs"]
mod engine_config;

const TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let policies = manifest_dir.join("..").join("policies");
    let policies = policies.canonicalize().unwrap_or(policies);

    let names = policy_crates(&policies);
    println!(
        "cargo:rerun-if-changed={}",
        policies.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        policies.join("Cargo.lock").display()
    );
    for dir in names
        .iter()
        .map(String::as_str)
        .chain(["abi", "sdk", "examples"])
    {
        println!("cargo:rerun-if-changed={}", policies.join(dir).display());
    }
    println!("cargo:rerun-if-changed=src/policy/engine_config.rs");

    check_target_installed();

    let target_dir = out_dir.join("policies");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--locked",
        "--target",
        TARGET,
        "--manifest-path",
    ])
    .arg(policies.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir);
    // The nested build is for another target with its own profile: nothing of the outer build's
    // configuration (flags, target, target dir, profile, features) may leak into it.
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let keep = [
            "CARGO_HOME",
            "CARGO_NET_",
            "CARGO_HTTP_",
            "CARGO_REGISTRIES_",
            "CARGO_REGISTRY_",
            "CARGO_TERM_",
        ]
        .iter()
        .any(|k| key.starts_with(k));
        if (key.starts_with("CARGO_") && !keep)
            || matches!(
                key,
                "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "TARGET"
                    | "HOST"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "OUT_DIR"
                    | "NUM_JOBS"
            )
        {
            cmd.env_remove(key);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the policy modules: {e}"));
    if !status.success() {
        panic!("building the policy modules in {} for {TARGET} failed ({status}); see the output above", policies.display());
    }

    let release = target_dir.join(TARGET).join("release");
    let wasm: Vec<PathBuf> = names
        .iter()
        .map(|name| {
            let wasm = release.join(format!("policy_{}.wasm", name.replace('-', "_")));
            if !wasm.is_file() {
                panic!("the policy build did not produce {}", wasm.display());
            }
            wasm
        })
        .collect();
    let precompiled = precompile(&names, &wasm, &out_dir.join("precompiled"));
    let mut generated = String::from(
        "/// The built-in policy modules, built from policies/ by build.rs.\n\
         pub(super) static BUILTIN: &[Builtin] = &[\n",
    );
    for ((name, wasm), cwasm) in names.iter().zip(&wasm).zip(&precompiled) {
        let cwasm = match cwasm {
            Some(path) => format!("Some(include_bytes!({:?}))", path.display().to_string()),
            None => "None".to_string(),
        };
        writeln!(
            generated,
            "    Builtin {{ name: {name:?}, wasm: include_bytes!({:?}), precompiled: {cwasm} }},",
            wasm.display().to_string()
        )
        .expect("writing to a String");
    }
    generated.push_str("];\n");
    // The target precompiled for, for the tests that precompile as build.rs does.
    println!(
        "cargo:rustc-env=KR_TARGET={}",
        env::var("TARGET").expect("cargo sets TARGET")
    );
    // The example user policy (policies/examples), for the tests of `--policy`.
    let example = release.join("policy_forbidden_tags.wasm");
    println!(
        "cargo:rustc-env=KR_EXAMPLE_POLICY_WASM={}",
        example.display()
    );
    // The module that echoes the ABI (policies/examples/abi-echo), for the round-trip test.
    let echo = release.join("policy_abi_echo.wasm");
    println!("cargo:rustc-env=KR_ABI_ECHO_WASM={}", echo.display());
    std::fs::write(out_dir.join("builtin_policies.rs"), generated)
        .expect("cannot write builtin_policies.rs");
}

/// Compiles each module to native code for the target being built, in parallel; None for a module
/// (or all) that cannot be, with a warning: the binary then compiles it when it first runs.
fn precompile(names: &[String], wasm: &[PathBuf], dir: &Path) -> Vec<Option<PathBuf>> {
    // The target's baseline CPU, not this machine's: the binary may run on another one.
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let engine = engine_config::config(Some(&target)).and_then(|c| wasmtime::Engine::new(&c));
    let engine = match engine {
        Ok(engine) => engine,
        Err(e) => {
            println!("cargo:warning=cannot precompile the built-in policies for {target}: {e}; the binary will compile them at run time");
            return names.iter().map(|_| None).collect();
        }
    };
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .zip(wasm)
            .map(|(name, wasm)| {
                let (engine, target) = (&engine, &target);
                s.spawn(move || {
                    let bytes = std::fs::read(wasm)
                        .unwrap_or_else(|e| panic!("cannot read {}: {e}", wasm.display()));
                    match engine.precompile_module(&bytes) {
                        Ok(code) => {
                            let path = dir.join(format!("{name}.cwasm"));
                            std::fs::write(&path, code)
                                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
                            Some(path)
                        }
                        Err(e) => {
                            println!("cargo:warning=cannot precompile the built-in policy {name} for {target}: {e:#}; the binary will compile it at run time");
                            None
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("precompiling does not panic"))
            .collect()
    })
}

/// The policy crates: every directory of policies/ with a Cargo.toml, except the SDK and the ABI
/// crate it is built on.
fn policy_crates(policies: &Path) -> Vec<String> {
    let entries = std::fs::read_dir(policies)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", policies.display()));
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != "sdk" && n != "abi")
        .collect();
    names.sort();
    names
}

fn check_target_installed() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(out) = sysroot {
        let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if !sysroot.join("lib").join("rustlib").join(TARGET).is_dir() {
            panic!("the Rust target {TARGET} is not installed; the built-in policies need it. Run: rustup target add {TARGET}");
        }
    }
}
