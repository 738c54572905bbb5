//! `kubectl redis render`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use kubectl_redis::object::PackedObject;
use kubectl_redis::render::{self, RenderFormat};
use kubectl_redis::report;
use kubectl_redis::spec;

use super::{GlobalArgs, Outcome};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl redis render -f specs/redis-cluster.yaml
  kubectl redis render -f specs/redis-single/ -o json
  kubectl redis render -f specs/redis-cluster.yaml -n team --rbac | kubectl apply -f -
      # the Role (and ClusterRole) plan/apply/status/destroy need; bind it to the user yourself")]
pub(crate) struct RenderArgs {
    /// Spec file, directory of manifests, or `-` for stdin. May be repeated.
    #[arg(short = 'f', long = "filename", value_name = "SPEC", required = true)]
    pub files: Vec<PathBuf>,
    /// The instance name of plain manifests (what their ownership labels are named after).
    /// Defaults to the first file's name, `stdin` for `-`.
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Print the least-privilege Role `kubectl-redis-<instance>` (and a ClusterRole, only when
    /// the spec has PersistentVolumes or a Namespace) that plan, apply, status and destroy need
    /// for this spec, instead of the spec's objects. Bind it with a RoleBinding (and a
    /// ClusterRoleBinding) to the user or ServiceAccount.
    #[arg(long)]
    pub rbac: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = RenderFormatArg::Yaml)]
    pub output: RenderFormatArg,
    /// Print secret values (requirepass, masterauth, Secret data) instead of masking them.
    #[arg(long)]
    pub show_secrets: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RenderFormatArg {
    /// A multi-document YAML stream, as `kubectl apply -f` reads it.
    Yaml,
    /// A `v1 List`.
    Json,
}

pub(crate) fn run(global: &GlobalArgs, args: &RenderArgs) -> anyhow::Result<Outcome> {
    let spec = match &args.instance {
        Some(instance) => spec::load_instance(&args.files, Some(instance))?,
        None => spec::load(&args.files)?,
    };
    let bundle = render::render(spec, global.namespace.as_deref(), "default")?;
    let format = match args.output {
        RenderFormatArg::Yaml => RenderFormat::Yaml,
        RenderFormatArg::Json => RenderFormat::Json,
    };
    if args.rbac {
        let roles = render::rbac(&bundle)
            .iter()
            .map(PackedObject::from_value)
            .collect::<Result<Vec<_>, _>>()?;
        print!("{}", render::to_text(&roles, format)?);
        return Ok(Outcome::Success);
    }
    let mut objects: Vec<PackedObject> = bundle.objects.into_iter().map(|o| o.object).collect();
    if !args.show_secrets {
        let masked: usize = objects.iter_mut().map(report::mask_packed_secrets).sum();
        if masked > 0 {
            eprintln!("note: {masked} secret value(s) masked; pass --show-secrets to print them");
        }
    }
    print!("{}", render::to_text(&objects, format)?);
    Ok(Outcome::Success)
}
