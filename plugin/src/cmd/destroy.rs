//! `kubectl redis destroy`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use kubectl_redis::plan::{self, ShowOptions};
use kubectl_redis::wait::deadline_after;
use kubectl_redis::{destroy, k8s};

use super::events::TextEvents;
use super::{confirm, parse_timeout, GlobalArgs, Outcome};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl redis destroy -f specs/redis-cluster.yaml            # keeps the volumes and their data
  kubectl redis destroy -f specs/redis-cluster.yaml --delete-volumes --yes")]
pub struct DestroyArgs {
    /// Spec file, directory of manifests, or `-` for stdin. May be repeated.
    #[arg(short = 'f', long = "filename", value_name = "SPEC", required = true)]
    pub files: Vec<PathBuf>,
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
}

pub async fn run(global: &GlobalArgs, args: &DestroyArgs) -> anyhow::Result<Outcome> {
    let deadline = deadline_after(args.timeout)?;
    let destroy = destroy::prepare(
        &global.connect_options(),
        global.namespace.as_deref(),
        &args.files,
        args.delete_volumes,
    )
    .await?;
    let style = global.style(true);
    for object in &destroy.foreign {
        println!(
            "{} {} is not managed by kubectl-redis for `{}` (ownership labels missing): left alone",
            style.dim("·"),
            k8s::describe_object(object),
            destroy.plan.spec_name
        );
    }
    print!(
        "{}",
        plan::show(
            &destroy.plan,
            &ShowOptions {
                style,
                show_secrets: false
            }
        )
    );
    if !destroy.plan.summary().has_changes() {
        return Ok(Outcome::Success);
    }
    if !confirm("Destroy these objects?", args.yes)? {
        eprintln!("Destroy cancelled; nothing was deleted.");
        return Ok(Outcome::Success);
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
        return Ok(Outcome::Success);
    }
    destroy::execute(&destroy, deadline, &TextEvents::new()).await?;
    let kept = destroy.kept_volumes();
    if !kept.is_empty() {
        println!("Kept {} volume object(s); the data remains:", kept.len());
        for fate in kept {
            println!("  {fate}");
        }
        println!(
            "Apply the same spec to bring the cluster back on this data, or destroy again with \
             --delete-volumes."
        );
    }
    Ok(Outcome::Success)
}
