//! Packing a release archive and recording it in the krew manifest.
//!
//! The archive is a gzip'd tar holding exactly two regular files, in this order: the executable
//! (`kubectl-redis`, or `kubectl-redis.exe` on windows; mode 0755) and `LICENSE` (mode 0644). Every
//! header field that could vary between machines is fixed: mtime (`SOURCE_DATE_EPOCH`, else
//! [`DEFAULT_MTIME`]), uid/gid 0, empty owner names, no directory entries; the gzip header carries
//! no name and mtime 0. The same inputs therefore give the same bytes and the same sha256.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

use crate::edit::set_platform_artifact;
use crate::krew::{validate, Expected};
use crate::{Platform, PLUGIN_NAME};

/// Archive entries' mtime when `SOURCE_DATE_EPOCH` is not set: 2024-01-01T00:00:00Z.
pub const DEFAULT_MTIME: u64 = 1_704_067_200;

/// A packed archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub platform: Platform,
    pub path: PathBuf,
    /// Lowercase hex sha256 of the archive file.
    pub sha256: String,
    /// Where the release publishes it.
    pub uri: String,
}

/// The mtime for archive entries: `SOURCE_DATE_EPOCH` if set, else [`DEFAULT_MTIME`].
pub fn archive_mtime() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH `{value}` is not a number of seconds")),
        Err(_) => Ok(DEFAULT_MTIME),
    }
}

/// Packs `binary` and `license` into `out_dir/kubectl-redis-v<version>-<os>-<arch>.tar.gz`.
///
/// `binary` is any build of the plugin for `platform`: the release uses `cargo build --release`,
/// tests pass the debug build. `version` is Cargo's, without the `v`. An existing archive of the
/// same name is replaced.
pub fn pack(
    binary: &Path,
    license: &Path,
    platform: &Platform,
    version: &str,
    out_dir: &Path,
    mtime: u64,
) -> Result<Artifact> {
    for (what, path) in [("binary", binary), ("LICENSE", license)] {
        if !path.is_file() {
            bail!("the {what} to pack, {}, is not a file", path.display());
        }
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let path = out_dir.join(platform.archive_name(version));
    let partial = out_dir.join(format!(".{}.partial", platform.archive_name(version)));
    write_archive(
        &partial,
        &[
            (&platform.binary_name(), binary, 0o755),
            ("LICENSE", license, 0o644),
        ],
        mtime,
    )
    .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &path).with_context(|| format!("renaming to {}", path.display()))?;
    let sha256 = sha256_file(&path)?;
    Ok(Artifact {
        platform: platform.clone(),
        path,
        sha256,
        uri: platform.release_uri(version),
    })
}

fn write_archive(path: &Path, entries: &[(&str, &Path, u32)], mtime: u64) -> Result<()> {
    let file = File::create(path)?;
    let gz = GzBuilder::new()
        .mtime(0)
        .write(BufWriter::new(file), Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for &(name, source, mode) in entries {
        let file = File::open(source).with_context(|| format!("opening {}", source.display()))?;
        let size = file.metadata()?.len();
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        header.set_mode(mode);
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("")?;
        header.set_groupname("")?;
        tar.append_data(&mut header, name, file)
            .with_context(|| format!("adding {} as {name}", source.display()))?;
    }
    let gz = tar.into_inner()?;
    let mut out = gz.finish()?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Lowercase hex sha256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Returns the manifest text with `artifact`'s platform pointing at it, after checking that the
/// result passes every krew rule (so a broken manifest is never written).
pub fn record_in_manifest(
    manifest: &str,
    artifact: &Artifact,
    cargo_version: &str,
) -> Result<String> {
    let edited = set_platform_artifact(
        manifest,
        &artifact.platform,
        &artifact.uri,
        &artifact.sha256,
    )?;
    let violations = validate(
        &edited,
        &Expected {
            name: PLUGIN_NAME,
            cargo_version,
        },
    );
    if !violations.is_empty() {
        let list: Vec<String> = violations.iter().map(|v| format!("  {v}")).collect();
        bail!(
            "the manifest would not pass krew's rules:\n{}",
            list.join("\n")
        );
    }
    Ok(edited)
}

/// [`record_in_manifest`] on a file, rewriting it in place.
pub fn update_manifest(path: &Path, artifact: &Artifact, cargo_version: &str) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let edited = record_in_manifest(&text, artifact, cargo_version)
        .with_context(|| format!("updating {}", path.display()))?;
    std::fs::write(path, edited).with_context(|| format!("writing {}", path.display()))
}
