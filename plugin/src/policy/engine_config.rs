//! The wasmtime configuration of the policy engine, in one place: `plugin/build.rs` compiles this
//! file as a module of its own (`#[path]`) to precompile the built-in policies, and the engine
//! uses it to run them, so the two cannot drift apart. Every setting that changes how wasmtime
//! compiles or runs a module belongs here. A precompiled module only loads into an engine with
//! the settings it was compiled with; should they differ anyway, the engine falls back to
//! compiling (and says so under `-v`), and the test `builtin_policies_load_precompiled` fails.
//!
//! This file may use `wasmtime` and `std` only: the build script has nothing else.

/// The configuration both the build script and the engine start from. `target` is None for the
/// running host (the engine, which then also uses the CPU features it detects), or the target
/// triple being built (the build script, which then compiles for the baseline CPU of that
/// architecture, so that the embedded code runs on every machine of that target).
// `pub`: this file is also included (`#[path]`) by build.rs and the policy cache test.
#[allow(unreachable_pub)]
pub fn config(target: Option<&str>) -> wasmtime::Result<wasmtime::Config> {
    let mut config = wasmtime::Config::new();
    // Fuel bounds a module's work deterministically; epochs give it a wall-clock deadline.
    config.consume_fuel(true).epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    if let Some(target) = target {
        config.target(target)?;
    }
    Ok(config)
}
