//! `kubectl redis destroy`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use kubectl_redis::plan::ShowOptions;
use kubectl_redis::wait::deadline_after;
use kubectl_redis::{destroy, k8s};

use super::progress::{Ending, Progress, ProgressFormat};
use super::{confirm, parse_timeout, GlobalArgs, Outcome};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl redis destroy -f specs/redis-cluster.yaml            # keeps the volumes and their data
  kubectl redis destroy -f specs/redis-cluster.yaml --delete-volumes --yes
  kubectl redis destroy -f specs/redis-cluster.yaml --yes -o json  # JSON lines, for CI")]
pub(crate) struct DestroyArgs {
    /// Spec file, directory of manifests, or `-` for stdin. May be repeated.
    #[arg(short = 'f', long = "filename", value_name = "SPEC", required = true)]
    pub files: Vec<PathBuf>,
    /// The instance name of plain manifests (needed when they come from stdin): what their
    /// ownership labels and ApplySet are named after. Defaults to the first file's name.
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Do not ask for confirmation (neither of the two questions --delete-volumes asks).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Also delete the PersistentVolumeClaims and PersistentVolumes; their data may be erased,
    /// depending on each volume's reclaim policy.
    #[arg(long)]
    pub delete_volumes: bool,
    /// How long to wait for the pods and objects to be gone.
    #[arg(long, default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Output format: text, or json for one JSON object per line — the plan, each step, a
    /// summary (plugin/schemas/events.schema.json). The exit code is the same either way.
    #[arg(short = 'o', long, value_enum, default_value_t = ProgressFormat::Text)]
    pub output: ProgressFormat,
}

pub(crate) async fn run(global: &GlobalArgs, args: &DestroyArgs) -> anyhow::Result<Outcome> {
    let progress = Progress::new(args.output, "destroy");
    progress.around(destroy(global, args, &progress)).await
}

async fn destroy(
    global: &GlobalArgs,
    args: &DestroyArgs,
    progress: &Progress,
) -> anyhow::Result<Ending> {
    let deadline = deadline_after(args.timeout)?;
    let destroy = destroy::prepare(
        &global.connect_options(),
        global.namespace.as_deref(),
        &args.files,
        args.instance.as_deref(),
        args.delete_volumes,
    )
    .await?;
    let left_alone: Vec<String> = destroy.foreign.iter().map(k8s::describe_object).collect();
    progress.plan(
        &destroy.plan,
        &left_alone,
        &ShowOptions {
            style: global.style(true),
            show_secrets: false,
        },
    );
    if !destroy.plan.summary().has_changes() {
        return Ok(Ending::Succeeded);
    }
    if !confirm("Destroy these objects?", args.yes)? {
        eprintln!("Destroy cancelled; nothing was deleted.");
        return Ok(Ending::Cancelled);
    }
    let volumes = destroy.volumes_to_delete();
    if !volumes.is_empty()
        && !confirm(
            &format!(
                "Really delete {} and the data they may hold?",
                volumes.join(", ")
            ),
            args.yes,
        )?
    {
        eprintln!("Destroy cancelled; nothing was deleted.");
        return Ok(Ending::Cancelled);
    }
    destroy::execute(&destroy, deadline, progress.events()).await?;
    progress.kept_volumes(&destroy.plan);
    Ok(Ending::Succeeded)
}
