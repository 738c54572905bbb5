//! `kubectl redis render`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use kubectl_redis::object::PackedObject;
use kubectl_redis::render::{self, RenderFormat};
use kubectl_redis::report;
use kubectl_redis::spec;

use super::{GlobalArgs, Outcome};

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// Spec file, directory of manifests, or `-` for stdin. May be repeated.
    #[arg(short = 'f', long = "filename", value_name = "SPEC", required = true)]
    pub files: Vec<PathBuf>,
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
    let spec = spec::load(&args.files)?;
    let bundle = render::render(spec, global.namespace.as_deref(), "default")?;
    let mut objects: Vec<PackedObject> = bundle.objects.into_iter().map(|o| o.object).collect();
    if !args.show_secrets {
        let masked: usize = objects.iter_mut().map(report::mask_packed_secrets).sum();
        if masked > 0 {
            eprintln!("note: {masked} secret value(s) masked; pass --show-secrets to print them");
        }
    }
    let format = match args.output {
        RenderFormatArg::Yaml => RenderFormat::Yaml,
        RenderFormatArg::Json => RenderFormat::Json,
    };
    print!("{}", render::to_text(&objects, format)?);
    Ok(Outcome::Success)
}
