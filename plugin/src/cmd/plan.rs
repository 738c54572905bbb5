//! `kubectl redis plan`, and the front half it shares with `apply`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use kubectl_redis::plan::{self, Preparation, Prepared, ShowOptions};

use super::{GlobalArgs, Outcome, PolicyArgs};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl redis plan -f specs/redis-cluster.yaml
  kubectl redis plan -f specs/redis-cluster.yaml --detailed-exitcode   # 0 same, 2 changes, 1 error
  kubectl redis plan -f specs/redis-single/ -o json
  kubectl redis plan -f specs/redis-cluster.yaml --out cluster.plan")]
pub struct PlanArgs {
    /// Spec file, directory of manifests, or `-` for stdin. May be repeated.
    #[arg(short = 'f', long = "filename", value_name = "SPEC", required = true)]
    pub files: Vec<PathBuf>,
    /// Save the plan for `kubectl redis apply PLANFILE` (written with mode 0600: it holds secrets).
    #[arg(long, value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when there are changes, 0 when there are none (1 stays an error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Print secret values instead of masking them.
    #[arg(long)]
    pub show_secrets: bool,
    /// Also plan to delete PersistentVolumes and claims the spec no longer declares.
    #[arg(long)]
    pub delete_volumes: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

/// Load, render, check policies and compute the plan; deny-level findings are printed and
/// return `None` (exit 2), warnings are counted in one line.
pub async fn prepare(
    global: &GlobalArgs,
    files: &[PathBuf],
    policy: &PolicyArgs,
    delete_volumes: bool,
) -> anyhow::Result<Option<Prepared>> {
    let preparation = plan::prepare(
        &global.connect_options(),
        global.namespace.as_deref(),
        files,
        &policy.options(),
        delete_volumes,
    )
    .await?;
    let prepared = match preparation {
        Preparation::Ready(prepared) => prepared,
        Preparation::Blocked(report) => {
            eprint!(
                "{}",
                kubectl_redis::output::text(&report, global.style(false).0)
            );
            eprintln!(
                "Policy violations block this change; nothing was planned or written. Fix the \
                 spec, or waive a rule with a written reason (see `kubectl redis check --help`)."
            );
            return Ok(None);
        }
    };
    if prepared.policy_warnings > 0 {
        eprintln!(
            "Policies: {} warning(s); `kubectl redis check -f {}` shows them.",
            prepared.policy_warnings,
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" -f ")
        );
    }
    Ok(Some(prepared))
}

pub async fn run(global: &GlobalArgs, args: &PlanArgs) -> anyhow::Result<Outcome> {
    let Some(prepared) = prepare(global, &args.files, &args.policy, args.delete_volumes).await?
    else {
        return Ok(Outcome::Findings);
    };
    let plan = &prepared.plan;
    match args.output {
        PlanFormat::Text => print!(
            "{}",
            plan::show(
                plan,
                &ShowOptions {
                    style: global.style(true),
                    show_secrets: args.show_secrets
                }
            )
        ),
        PlanFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plan::to_json(plan, args.show_secrets))?
        ),
    }
    if let Some(path) = &args.out {
        plan.save(path)?;
        eprintln!(
            "Saved the plan to {}; apply it with `kubectl redis apply {}`.",
            path.display(),
            path.display()
        );
    }
    Ok(if args.detailed_exitcode && plan.summary().has_changes() {
        Outcome::Findings
    } else {
        Outcome::Success
    })
}
