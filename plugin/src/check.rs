//! `kubectl redis check`: render the spec and run the policies over it, offline.
//!
//! Exit codes: 0 no deny-level finding (warnings and waived findings allowed), 2 deny-level
//! findings, 1 errors (bad spec, a module that fails to load or run, a waiver without a reason).
//! The output format never changes them.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use crate::cli::GlobalArgs;
use crate::error::Outcome;
use crate::output::{self, ReportFormat};
use crate::policy::{waiver, EngineOptions, Policy, PolicyEngine, PolicySettings, Report};
use crate::render::{self, Bundle};
use crate::spec;

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Spec file, directory of manifests, or `-` for stdin. May be repeated.
    #[arg(short = 'f', long = "filename", value_name = "SPEC", required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,
}

/// The policy flags, shared by every command that evaluates policies.
#[derive(Debug, Clone, Default, Args)]
pub struct PolicyArgs {
    /// An extra policy module (wasm32, see policies/README.md). May be repeated.
    #[arg(long = "policy", value_name = "FILE.wasm")]
    pub policies: Vec<PathBuf>,
    /// YAML or JSON mapping each policy name to its settings.
    #[arg(long, value_name = "FILE")]
    pub policy_settings: Option<PathBuf>,
    /// Run only the --policy modules, not the built-in ones.
    #[arg(long)]
    pub no_builtin_policies: bool,
}

/// Loads the policies the flags ask for and evaluates the bundle, waivers applied.
pub fn evaluate(bundle: &Bundle, args: &PolicyArgs) -> anyhow::Result<Report> {
    let settings = match &args.policy_settings {
        Some(path) => PolicySettings::load(path)?,
        None => PolicySettings::default(),
    };
    let engine = PolicyEngine::new(EngineOptions::from_env())?;
    let mut policies: Vec<Policy> = if args.no_builtin_policies {
        Vec::new()
    } else {
        engine.load_builtins()?
    };
    for path in &args.policies {
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

/// `kubectl redis check`.
pub fn run(global: &GlobalArgs, args: &CheckArgs) -> anyhow::Result<Outcome> {
    let spec = spec::load(&args.files)?;
    let bundle = render::render(&spec, global.namespace.as_deref(), "default")?;
    let report = evaluate(&bundle, &args.policy)?;
    let color = args.output == ReportFormat::Text
        && crate::style::use_color(global.color, std::io::stdout().is_terminal());
    let text = output::render(&report, args.output, color)?;
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .context("cannot write the report")?;
    }
    Ok(if report.blocking() > 0 {
        Outcome::Findings
    } else {
        Outcome::Success
    })
}
