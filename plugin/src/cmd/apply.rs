//! `kubectl redis apply`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use kubectl_redis::apply::{self, ApplyOptions};
use kubectl_redis::cluster::RedisStep;
use kubectl_redis::cluster::RollOptions;
use kubectl_redis::k8s;
use kubectl_redis::plan::{Plan, RedisPlanning, ShowOptions};
use kubectl_redis::wait::deadline_after;

use super::progress::{Ending, Progress, ProgressFormat};
use super::{confirm, parse_timeout, GlobalArgs, Outcome, PolicyArgs, ViaArg};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl redis apply -f specs/redis-cluster.yaml
  kubectl redis apply -f specs/redis-cluster.yaml --yes --timeout 10m
  kubectl redis apply -f specs/redis-cluster.yaml --yes -o json   # JSON lines, for CI
  kubectl redis plan -f specs/redis-cluster.yaml --out cluster.plan && kubectl redis apply cluster.plan

A new pod template (redis.conf, image) is rolled by apply itself: replicas first, one at a time,
each waited for until it is back in the cluster and caught up; then each master hands its slots
to an up-to-date replica (CLUSTER FAILOVER) before it is replaced. An interrupted roll resumes
with the next apply. `kubectl redis plan` lists the order.")]
pub(crate) struct ApplyArgs {
    /// Spec file, directory of manifests, or `-` for stdin. May be repeated.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "SPEC",
        required_unless_present = "plan_file"
    )]
    pub files: Vec<PathBuf>,
    /// The instance name of plain manifests (needed when they come from stdin): what their
    /// ownership labels and ApplySet are named after. Defaults to the first file's name.
    #[arg(long, value_name = "NAME", conflicts_with = "plan_file")]
    pub instance: Option<String>,
    /// A plan saved by `plan --out`: apply exactly that, if the cluster has not changed since.
    #[arg(value_name = "PLANFILE", conflicts_with = "files")]
    pub plan_file: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Take over fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Allow deleting and re-creating objects whose immutable fields change.
    #[arg(long)]
    pub allow_replace: bool,
    /// Take objects that exist but are not managed by kubectl-redis (the plan says "will be
    /// ADOPTED") under this spec: a later apply may change them, destroy and prune may delete
    /// them. An adopted Namespace is never deleted. Objects of another kubectl-redis instance
    /// are never taken over.
    #[arg(long)]
    pub adopt: bool,
    /// How long to wait for volumes, pods and the Redis cluster (e.g. 90s, 5m, 1h).
    #[arg(long, default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Stop after the Kubernetes objects are rolled out; do not form or heal the Redis cluster.
    /// Pods left on an old revision by a new pod template stay until an apply without it.
    #[arg(long)]
    pub skip_cluster_init: bool,
    /// UNSAFE: replace masters that hold slots without a CLUSTER FAILOVER first. Faster, but
    /// each master's slots are unavailable while it restarts (or until a replica takes over
    /// after cluster-node-timeout), and writes acknowledged just before can be lost. By default
    /// pods on an old revision are replaced replicas first, one at a time, and each master
    /// hands its slots to an up-to-date replica before it goes.
    #[arg(long)]
    pub unsafe_fast_roll: bool,
    /// How to reach the pods' Redis for the cluster step.
    #[arg(long, value_enum, default_value_t)]
    pub via: ViaArg,
    /// Print secret values in the plan instead of masking them.
    #[arg(long)]
    pub show_secrets: bool,
    /// Also delete PersistentVolumes and claims the spec no longer declares (their data may go
    /// with them, depending on the reclaim policy).
    #[arg(long)]
    pub delete_volumes: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Output format: text, or json for one JSON object per line — the plan, each step, a
    /// summary (plugin/schemas/events.schema.json). The exit code is the same either way.
    #[arg(short = 'o', long, value_enum, default_value_t = ProgressFormat::Text)]
    pub output: ProgressFormat,
}

pub(crate) async fn run(global: &GlobalArgs, args: &ApplyArgs) -> anyhow::Result<Outcome> {
    let progress = Progress::new(args.output, "apply");
    progress.around(apply(global, args, &progress)).await
}

async fn apply(
    global: &GlobalArgs,
    args: &ApplyArgs,
    progress: &Progress,
) -> anyhow::Result<Ending> {
    let options = ApplyOptions {
        force_conflicts: args.force_conflicts,
        allow_replace: args.allow_replace,
        adopt: args.adopt,
        redis_step: !args.skip_cluster_init,
        via: args.via.into(),
        roll: RollOptions {
            unsafe_fast: args.unsafe_fast_roll,
        },
        deadline: deadline_after(args.timeout)?,
    };
    let (connection, plan) = match &args.plan_file {
        Some(path) => {
            let plan = Plan::load(path)?;
            let connection = k8s::connect(&global.connect_options()).await?;
            apply::check_fresh(
                &connection,
                &plan,
                options.redis_step.then_some(options.via),
            )
            .await?;
            (connection, plan)
        }
        None => {
            let Some(prepared) = super::plan::prepare(
                global,
                &args.files,
                args.instance.as_deref(),
                &args.policy,
                args.delete_volumes,
                RedisPlanning {
                    via: args.via.into(),
                    step: !args.skip_cluster_init,
                },
            )
            .await?
            else {
                return Ok(Ending::Blocked);
            };
            (prepared.connection, prepared.plan)
        }
    };
    progress.plan(
        &plan,
        &[],
        &ShowOptions {
            style: global.style(true),
            show_secrets: args.show_secrets,
        },
    );
    apply::check_allowed(&plan, &options)?;
    let rolls =
        (plan.redis.iter().flat_map(|p| &p.steps)).any(|s| matches!(s, RedisStep::Roll { .. }));
    if (plan.summary().has_changes() || rolls) && !confirm("Apply these changes?", args.yes)? {
        eprintln!("Apply cancelled; nothing was written.");
        return Ok(Ending::Cancelled);
    }
    apply::converge(&connection, &plan, &options, progress.events()).await?;
    Ok(Ending::Succeeded)
}
