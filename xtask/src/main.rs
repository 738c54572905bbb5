//! `cargo xtask <command>`: release tooling for kubectl-redis.
//!
//! ```text
//! cargo xtask dist [--binary PATH] [--platform OS/ARCH] [--manifest PATH] [--out-dir DIR]
//! cargo xtask check-manifest [PATH]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use xtask::dist::{archive_mtime, pack, update_manifest};
use xtask::krew::{placeholder_platforms, validate, Expected};
use xtask::workspace::{self, Profile};
use xtask::{Platform, PLUGIN_NAME};

const USAGE: &str = "\
Usage:
  cargo xtask dist [--binary PATH] [--platform OS/ARCH] [--manifest PATH] [--out-dir DIR]
      Build the release binary (cargo build --release -p kubectl-redis), pack
      kubectl-redis-v<version>-<os>-<arch>.tar.gz with the binary and LICENSE into
      <target dir>/dist/, and write that platform's uri and sha256 into krew-manifest.yaml.
      --binary    pack this prebuilt binary instead of building (e.g. a CI cross build)
      --platform  the binary's platform in Go names (default: this machine's, e.g. linux/amd64)
      --manifest  the manifest to update (default: krew-manifest.yaml at the workspace root)
      --out-dir   where to write the archive (default: <target dir>/dist)
      SOURCE_DATE_EPOCH sets the archive entries' mtime (default 2024-01-01T00:00:00Z).

  cargo xtask check-manifest [PATH]
      Check the manifest (default: krew-manifest.yaml) against krew's rules; exit 1 if broken.
      Platforms still carrying the placeholder sha256 are listed but do not fail the check.
";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<ExitCode> {
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    match command.as_str() {
        "dist" => dist(rest),
        "check-manifest" => check_manifest(rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

#[derive(Default)]
struct DistArgs {
    binary: Option<PathBuf>,
    platform: Option<Platform>,
    manifest: Option<PathBuf>,
    out_dir: Option<PathBuf>,
}

fn parse_dist_args(args: &[String]) -> Result<DistArgs> {
    let mut out = DistArgs::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (flag.as_str(), None),
        };
        let mut value = || -> Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .with_context(|| format!("{name} needs a value")),
            }
        };
        match name {
            "--binary" => out.binary = Some(value()?.into()),
            "--platform" => out.platform = Some(Platform::parse(&value()?)?),
            "--manifest" => out.manifest = Some(value()?.into()),
            "--out-dir" => out.out_dir = Some(value()?.into()),
            other => bail!("unknown argument `{other}` for dist\n\n{USAGE}"),
        }
    }
    Ok(out)
}

fn dist(args: &[String]) -> Result<ExitCode> {
    let args = parse_dist_args(args)?;
    let root = workspace::root();
    let version = workspace::version(&root)?;
    let manifest = args
        .manifest
        .unwrap_or_else(|| root.join("krew-manifest.yaml"));

    // Refuse to build when the manifest is already broken (e.g. spec.version not bumped).
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let violations = validate(
        &text,
        &Expected {
            name: PLUGIN_NAME,
            cargo_version: &version,
        },
    );
    if !violations.is_empty() {
        for v in &violations {
            eprintln!("  {v}");
        }
        bail!(
            "{} breaks krew's rules; fix it before packing",
            manifest.display()
        );
    }

    let host = Platform::host();
    let platform = match (args.platform, &host) {
        (Some(p), _) => p,
        (None, Ok(h)) => h.clone(),
        (None, Err(e)) => bail!("{e}; pass --platform and --binary"),
    };
    let binary = match args.binary {
        Some(binary) => binary,
        None => {
            if host.as_ref().ok() != Some(&platform) {
                bail!("can only build for this machine's platform; pass --binary for {platform}");
            }
            eprintln!("building kubectl-redis {version} for {platform} (cargo build --release)...");
            workspace::build_plugin(&root, Profile::Release)?
        }
    };
    let out_dir = match args.out_dir {
        Some(dir) => dir,
        None => workspace::target_dir(&root)?.join("dist"),
    };
    let artifact = pack(
        &binary,
        &root.join("LICENSE"),
        &platform,
        &version,
        &out_dir,
        archive_mtime()?,
    )?;
    let sums = artifact.path.with_file_name(format!(
        "{}.sha256",
        artifact
            .path
            .file_name()
            .expect("archive has a name")
            .to_string_lossy()
    ));
    std::fs::write(
        &sums,
        format!(
            "{}  {}\n",
            artifact.sha256,
            artifact.path.file_name().unwrap().to_string_lossy()
        ),
    )
    .with_context(|| format!("writing {}", sums.display()))?;
    update_manifest(&manifest, &artifact, &version)?;

    println!("packed   {}", artifact.path.display());
    println!("sha256   {}", artifact.sha256);
    println!("uri      {}", artifact.uri);
    println!("manifest {} ({platform} updated)", manifest.display());
    let text = std::fs::read_to_string(&manifest)?;
    let pending = placeholder_platforms(&text)?;
    if !pending.is_empty() {
        let names: Vec<String> = pending.iter().map(ToString::to_string).collect();
        println!(
            "note: still placeholder sha256 (not yet packed): {}",
            names.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check_manifest(args: &[String]) -> Result<ExitCode> {
    let root = workspace::root();
    let path = match args {
        [] => root.join("krew-manifest.yaml"),
        [path] => PathBuf::from(path),
        _ => bail!("check-manifest takes at most one path\n\n{USAGE}"),
    };
    let version = workspace::version(&root)?;
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let violations = validate(
        &text,
        &Expected {
            name: PLUGIN_NAME,
            cargo_version: &version,
        },
    );
    for v in &violations {
        eprintln!("{}: {v}", path.display());
    }
    if !violations.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "{}: valid krew manifest for kubectl-redis v{version}",
        path.display()
    );
    let pending = placeholder_platforms(&text)?;
    if !pending.is_empty() {
        let names: Vec<String> = pending.iter().map(ToString::to_string).collect();
        println!(
            "note: placeholder sha256 (no release archive yet): {}",
            names.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
