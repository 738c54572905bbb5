//! The built-in policy modules, compiled from policies/ by build.rs and embedded in the binary:
//! the wasm, and the native code build.rs compiled it to for this target (see
//! [`engine_config`](super::engine_config)).

/// One built-in policy module.
#[derive(Debug, Clone, Copy)]
pub(super) struct Builtin {
    /// The crate's directory name in policies/ (the label is `builtin:<name>`).
    pub name: &'static str,
    pub wasm: &'static [u8],
    /// `Engine::precompile_module` output for this target, with the engine configuration the
    /// binary runs with; None when build.rs could not produce it (it says why, as a warning).
    pub precompiled: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/builtin_policies.rs"));
