//! Container images map to programs on this machine: there is no image store. Redis images map
//! to a local Redis of the same major.minor version; any other image runs the host's userland.

use std::path::{Path, PathBuf};

/// What an image runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Image {
    /// A Redis image: `bin_dir` holds `redis-server` and `redis-cli` of `version`.
    Redis { version: String, bin_dir: PathBuf },
    /// Anything else: the container's command runs with the host's programs.
    Host,
}

/// An image this machine has no local program for (shown as the pod's `ErrImagePull`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ImageError(pub String);

/// Resolves `image` (e.g. `redis:5.0.1-alpine`, `docker.io/library/redis:7.2`) to local programs.
pub fn resolve_image(image: &str, target_dir: &Path) -> Result<Image, ImageError> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let (repo, tag) = match without_digest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (without_digest, "latest"),
    };
    let name = repo.rsplit('/').next().unwrap_or(repo);
    if name != "redis" {
        return Ok(Image::Host);
    }
    if tag.starts_with("5.0") {
        let bin_dir = target_dir.join("redis-5.0/bin");
        if !bin_dir.join("redis-server").is_file() {
            return Err(ImageError(format!(
                "image {image:?} needs Redis 5.0, which is not built on this machine: run `bash tests/redis5/build.sh`"
            )));
        }
        return Ok(Image::Redis {
            version: "5.0".into(),
            bin_dir,
        });
    }
    if tag == "latest" || tag.starts_with('6') || tag.starts_with('7') {
        return Ok(Image::Redis {
            version: "7".into(),
            bin_dir: PathBuf::from("/usr/bin"),
        });
    }
    Err(ImageError(format!(
        "image {image:?}: no local Redis of that version"
    )))
}
