//! Running the policies a command asks for over a bundle: the built-in modules unless turned
//! off, the user's `--policy` modules, their settings, then the spec's waivers.

use std::path::PathBuf;

use anyhow::bail;

use super::{waiver, EngineOptions, Policy, PolicyEngine, PolicySettings, Report};
use crate::render::Bundle;

/// Which policies to run and with what settings (`--policy`, `--policy-settings`,
/// `--no-builtin-policies`).
#[derive(Debug, Clone, Default)]
pub struct PolicyOptions {
    /// Extra policy modules (wasm32).
    pub modules: Vec<PathBuf>,
    /// YAML or JSON mapping each policy name to its settings.
    pub settings: Option<PathBuf>,
    /// Run only `modules`, not the built-in ones.
    pub no_builtins: bool,
}

/// Loads the policies `options` asks for and evaluates the bundle, waivers applied.
pub fn run(bundle: &Bundle, options: &PolicyOptions) -> anyhow::Result<Report> {
    let settings = match &options.settings {
        Some(path) => PolicySettings::load(path)?,
        None => PolicySettings::default(),
    };
    let engine = PolicyEngine::new(EngineOptions::from_env())?;
    let mut policies: Vec<Policy> = if options.no_builtins {
        Vec::new()
    } else {
        engine.load_builtins()?
    };
    for path in &options.modules {
        let policy = engine.load_file(path)?;
        if let Some(other) = policies.iter().find(|p| p.name() == policy.name()) {
            bail!(
                "policy module {} is named `{}`, like {}; policy names must be unique",
                policy.label,
                policy.name(),
                other.label
            );
        }
        policies.push(policy);
    }
    if policies.is_empty() {
        bail!("no policies to run: --no-builtin-policies needs at least one --policy");
    }
    let mut report = engine.evaluate(bundle, &policies, &settings)?;
    waiver::apply(&mut report, &waiver::from_bundle(bundle))?;
    Ok(report)
}
