//! `kubectl redis plan`, and the front half it shares with `apply`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use kubectl_redis::plan::{self, Preparation, Prepared, RedisPlanning, ShowOptions};

use super::{GlobalArgs, Outcome, PolicyArgs, ViaArg};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl redis plan -f specs/redis-cluster.yaml
  kubectl redis plan -f specs/redis-cluster.yaml --detailed-exitcode   # 0 same, 2 changes, 1 error
  kubectl redis plan -f specs/redis-single/ -o json
  kubectl redis plan -f specs/redis-cluster.yaml --out cluster.plan")]
pub(crate) struct PlanArgs {
    /// Spec file, directory of manifests, or `-` for stdin. May be repeated.
    #[arg(short = 'f', long = "filename", value_name = "SPEC", required = true)]
    pub files: Vec<PathBuf>,
    /// The instance name of plain manifests (needed when they come from stdin): what their
    /// ownership labels and ApplySet are named after. Defaults to the first file's name.
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Save the plan for `kubectl redis apply PLANFILE` (written with mode 0600: it holds secrets).
    #[arg(long, value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when apply would do something (objects or the Redis step), 0 when not (1 stays an
    /// error).
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
    /// How to reach the pods' Redis to plan the Redis step (read-only).
    #[arg(long, value_enum, default_value_t)]
    pub via: ViaArg,
    /// Plan only the Kubernetes objects, not the Redis step (as `apply --skip-cluster-init`).
    #[arg(long)]
    pub skip_cluster_init: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PlanFormat {
    Text,
    Json,
}

/// Load, render, check policies, compute the plan and (with `redis_via`) preview the Redis step;
/// deny-level findings are printed and return `None` (exit 2), warnings are counted in one line.
pub(crate) async fn prepare(
    global: &GlobalArgs,
    files: &[PathBuf],
    instance: Option<&str>,
    policy: &PolicyArgs,
    delete_volumes: bool,
    redis: RedisPlanning,
) -> anyhow::Result<Option<Prepared>> {
    let preparation = plan::prepare(
        &global.connect_options(),
        global.namespace.as_deref(),
        files,
        instance,
        &policy.options(),
        delete_volumes,
        redis,
    )
    .await?;
    let prepared = match preparation {
        Preparation::Ready(prepared) => prepared,
        Preparation::Blocked(report) => {
            eprint!(
                "{}",
                kubectl_redis::report::text(&report, global.style(false).0)
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

pub(crate) async fn run(global: &GlobalArgs, args: &PlanArgs) -> anyhow::Result<Outcome> {
    let redis = RedisPlanning {
        via: args.via.into(),
        step: !args.skip_cluster_init,
    };
    let Some(prepared) = prepare(
        global,
        &args.files,
        args.instance.as_deref(),
        &args.policy,
        args.delete_volumes,
        redis,
    )
    .await?
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
    Ok(if args.detailed_exitcode && plan.has_work() {
        Outcome::Findings
    } else {
        Outcome::Success
    })
}
