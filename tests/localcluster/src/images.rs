//! Which local binaries stand in for a container image.
//!
//! The local cluster pulls no images: a pod whose image is Redis runs a Redis server of the same
//! release line that is on this machine, and any other image runs its command on the host's
//! userland. By tag:
//!
//! | image | runs |
//! | --- | --- |
//! | `redis:5.0*`, `redis:5`, `*/redis:5.0*` (`docker.io/library/redis:5.0.1-alpine`) | the Redis 5.0 build of `tests/redis5/build.sh`, in `<target dir>/redis-5.0/bin` |
//! | `redis:6*`, `redis:7*`, `redis:latest`, `redis` (no tag), `redis:alpine` | Debian's `redis-server` 7.x in `/usr/bin` |
//! | any other Redis version (`redis:4.0`, `redis:8`), or `redis:5.0*` before the build | an [`ImageError`]: the pod cannot start (`ErrImagePull`) |
//! | anything else (`busybox`, `alpine:3`) | [`Image::Host`]: the command as given |
//!
//! `valkey` and `redis-stack-server` images follow the same rules by their tags.
//!
//! Inside a pod, `redis-cli` must be the server's own version: put [`Image::bin_dir`] first on
//! the pod's `PATH`.

use std::path::{Path, PathBuf};

/// Where Debian's `redis-server` and `redis-cli` (7.x) are.
pub const SYSTEM_REDIS_BIN: &str = "/usr/bin";

/// The release line `tests/redis5/build.sh` builds (Redis 5.0.6).
pub const REDIS5_VERSION: &str = "5.0";

/// What runs a container of some image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// A Redis image: `redis-server` and `redis-cli` of release line `version` ("5.0", "7") are
    /// in `bin_dir`.
    Redis { version: String, bin_dir: PathBuf },
    /// Not a Redis image: run the container's command as given, on the host's userland.
    Host,
}

impl Image {
    /// The directory to put first on a container's `PATH` (`None` for [`Image::Host`]).
    pub fn bin_dir(&self) -> Option<&Path> {
        match self {
            Image::Redis { bin_dir, .. } => Some(bin_dir),
            Image::Host => None,
        }
    }

    /// `bin_dir` ahead of `path` (a `PATH` value), for the container's environment.
    pub fn path_env(&self, path: &str) -> String {
        match self.bin_dir() {
            Some(dir) if path.is_empty() => dir.display().to_string(),
            Some(dir) => format!("{}:{path}", dir.display()),
            None => path.to_string(),
        }
    }
}

/// Why no local binaries can stand in for an image. The message suits a container's `Waiting`
/// state (reason `ErrImagePull`) and an Event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// A Redis version the machine has no server for.
    #[error(
        "image {image:?}: no local Redis server for version {version}; the local cluster runs \
         redis:5.0* on the Redis 5.0 build (bash tests/redis5/build.sh) and redis:6*, redis:7*, \
         redis:latest on Debian's redis-server 7.x"
    )]
    UnsupportedVersion { image: String, version: String },
    /// `redis:5.0*` before `tests/redis5/build.sh` has run.
    #[error(
        "image {image:?} needs the local Redis 5.0 build, which is not in {}: build it with \
         `bash tests/redis5/build.sh`",
        bin_dir.display()
    )]
    Redis5NotBuilt { image: String, bin_dir: PathBuf },
    /// `redis:6*`/`redis:7*`/`latest` without Debian's redis-server.
    #[error(
        "image {image:?} needs Debian's redis-server and redis-cli in {}: install the packages \
         redis-server and redis-tools",
        bin_dir.display()
    )]
    SystemRedisMissing { image: String, bin_dir: PathBuf },
}

impl ImageError {
    /// The container `Waiting` reason a kubelet reports for it.
    pub fn reason(&self) -> &'static str {
        "ErrImagePull"
    }
}

/// `<target dir>/redis-5.0/bin`, where `tests/redis5/build.sh` puts Redis 5.0.
pub fn redis5_bin_dir(target_dir: &Path) -> PathBuf {
    target_dir.join("redis-5.0").join("bin")
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (relative to the workspace root if relative),
/// else the workspace's `target/`. The same rule as tests/redis5/build.sh.
pub fn cargo_target_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(d) => root.join(d),
        None => root.join("target"),
    }
}

/// The repository's last path component and its tag, digest dropped:
/// `docker.io/library/redis:5.0.1-alpine` → (`redis`, `Some("5.0.1-alpine")`),
/// `localhost:5000/redis` → (`redis`, `None`).
fn name_and_tag(image: &str) -> (&str, Option<&str>) {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        Some((name, tag)) => (name, Some(tag)),
        None => (last, None),
    }
}

/// The local release line for a Redis image tag, or `Err(version)` when there is none.
fn release_line(tag: Option<&str>) -> Result<&'static str, String> {
    let Some(tag) = tag else { return Ok("7") };
    // The leading version: "5.0.1-alpine" → "5.0.1"; "latest", "alpine", "bookworm" → "".
    let version: &str = tag
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap_or("");
    if version.is_empty() {
        return Ok("7");
    }
    let mut parts = version.split('.').filter(|p| !p.is_empty());
    let major = parts.next().unwrap_or("");
    let minor = parts.next();
    match (major, minor) {
        // Redis 5 had only the 5.0 line: "redis:5" is 5.0 too.
        ("5", None | Some("0")) => Ok(REDIS5_VERSION),
        ("6" | "7", _) => Ok("7"),
        _ => Err(version.to_string()),
    }
}

/// Maps an image reference to what runs it here. Looks only at the reference and at whether the
/// binaries exist (`target_dir` is the cargo target directory, see [`cargo_target_dir`]).
pub fn resolve_image(image: &str, target_dir: &Path) -> Result<Image, ImageError> {
    resolve_image_in(image, target_dir, Path::new(SYSTEM_REDIS_BIN))
}

/// [`resolve_image`] with Debian's Redis looked for in `system_bin` instead of `/usr/bin`.
pub fn resolve_image_in(
    image: &str,
    target_dir: &Path,
    system_bin: &Path,
) -> Result<Image, ImageError> {
    let (name, tag) = name_and_tag(image.trim());
    // The kubelet has always treated these as Redis images too.
    if !matches!(name, "redis" | "valkey" | "redis-stack-server") {
        return Ok(Image::Host);
    }
    let has_binaries = |dir: &Path| {
        ["redis-server", "redis-cli"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    match release_line(tag) {
        Ok(REDIS5_VERSION) => {
            let bin_dir = redis5_bin_dir(target_dir);
            if !has_binaries(&bin_dir) {
                return Err(ImageError::Redis5NotBuilt {
                    image: image.to_string(),
                    bin_dir,
                });
            }
            Ok(Image::Redis {
                version: REDIS5_VERSION.to_string(),
                bin_dir,
            })
        }
        Ok(line) => {
            if !has_binaries(system_bin) {
                return Err(ImageError::SystemRedisMissing {
                    image: image.to_string(),
                    bin_dir: system_bin.to_path_buf(),
                });
            }
            Ok(Image::Redis {
                version: line.to_string(),
                bin_dir: system_bin.to_path_buf(),
            })
        }
        Err(version) => Err(ImageError::UnsupportedVersion {
            image: image.to_string(),
            version,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target dir with (or without) a Redis 5.0 build, and a fake /usr/bin with redis.
    fn dirs(with_redis5: bool) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        let system = tmp.path().join("usr-bin");
        let mut bins = vec![system.clone()];
        if with_redis5 {
            bins.push(redis5_bin_dir(&target));
        }
        for dir in bins {
            std::fs::create_dir_all(&dir).unwrap();
            for b in ["redis-server", "redis-cli"] {
                std::fs::write(dir.join(b), "").unwrap();
            }
        }
        (tmp, target, system)
    }

    #[test]
    fn redis_5_0_tags_map_to_the_5_0_build() {
        let (_tmp, target, system) = dirs(true);
        for image in [
            "redis:5.0.1-alpine",
            "redis:5.0",
            "redis:5.0.14",
            "redis:5",
            "redis:5-alpine",
            "docker.io/library/redis:5.0.1-alpine",
            "registry.example:5000/mirror/redis:5.0.4",
            "redis:5.0.1-alpine@sha256:0123abcd",
        ] {
            assert_eq!(
                resolve_image_in(image, &target, &system),
                Ok(Image::Redis {
                    version: "5.0".into(),
                    bin_dir: target.join("redis-5.0/bin")
                }),
                "{image}"
            );
        }
    }

    #[test]
    fn redis_6_7_and_latest_map_to_debian_7() {
        let (_tmp, target, system) = dirs(true);
        for image in [
            "redis",
            "redis:latest",
            "redis:alpine",
            "redis:6",
            "redis:6.2.14-alpine",
            "redis:7.0",
            "redis:7.2.4-bookworm",
            "docker.io/library/redis:7",
            "localhost:5000/redis",
            "valkey/valkey:7.2",
            "redis/redis-stack-server:7.2.0-v9",
        ] {
            let got = resolve_image_in(image, &target, &system).unwrap();
            assert_eq!(
                got,
                Image::Redis {
                    version: "7".into(),
                    bin_dir: system.clone()
                },
                "{image}"
            );
        }
    }

    #[test]
    fn versions_without_a_local_server_are_pull_errors() {
        let (_tmp, target, system) = dirs(true);
        for (image, version) in [
            ("redis:4.0", "4.0"),
            ("redis:8", "8"),
            ("redis:8.0.2-alpine", "8.0.2"),
            ("redis:3.2.12", "3.2.12"),
            ("redis:5.1", "5.1"),
        ] {
            let err = resolve_image_in(image, &target, &system).unwrap_err();
            assert_eq!(
                err,
                ImageError::UnsupportedVersion {
                    image: image.into(),
                    version: version.into()
                }
            );
            assert_eq!(err.reason(), "ErrImagePull");
            let msg = err.to_string();
            assert!(
                msg.contains(image) && msg.contains("bash tests/redis5/build.sh"),
                "{msg}"
            );
        }
    }

    #[test]
    fn redis_5_0_without_the_build_says_how_to_build_it() {
        let (_tmp, target, system) = dirs(false);
        let err = resolve_image_in("redis:5.0.1-alpine", &target, &system).unwrap_err();
        assert!(matches!(err, ImageError::Redis5NotBuilt { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("redis:5.0.1-alpine")
                && msg.contains("`bash tests/redis5/build.sh`")
                && msg.contains(&target.join("redis-5.0/bin").display().to_string()),
            "{msg}"
        );
        // 7.x still works.
        assert!(resolve_image_in("redis:7", &target, &system).is_ok());
    }

    #[test]
    fn debian_redis_missing_is_an_error_too() {
        let (_tmp, target, _) = dirs(true);
        let err = resolve_image_in("redis:7", &target, Path::new("/nonexistent")).unwrap_err();
        assert!(
            err.to_string().contains("redis-server and redis-tools"),
            "{err}"
        );
    }

    #[test]
    fn other_images_run_on_the_host() {
        let (_tmp, target, system) = dirs(false);
        for image in [
            "busybox",
            "alpine:3.19",
            "bitnami/redis-cluster:7.2",
            "redis/redis-stack:latest",
            "myredis:5.0",
        ] {
            assert_eq!(
                resolve_image_in(image, &target, &system),
                Ok(Image::Host),
                "{image}"
            );
        }
    }

    #[test]
    fn bin_dir_goes_first_on_path() {
        let img = Image::Redis {
            version: "5.0".into(),
            bin_dir: PathBuf::from("/t/redis-5.0/bin"),
        };
        assert_eq!(
            img.path_env("/usr/bin:/bin"),
            "/t/redis-5.0/bin:/usr/bin:/bin"
        );
        assert_eq!(img.path_env(""), "/t/redis-5.0/bin");
        assert_eq!(Image::Host.path_env("/usr/bin"), "/usr/bin");
        assert_eq!(Image::Host.bin_dir(), None);
    }

    #[test]
    fn the_default_target_dir_is_the_workspace_target() {
        // CARGO_TARGET_DIR may be set by whoever runs the tests; either way it ends in a dir
        // under which build.sh puts redis-5.0/.
        let dir = cargo_target_dir();
        if std::env::var_os("CARGO_TARGET_DIR").is_none() {
            assert!(dir.ends_with("target"), "{}", dir.display());
            assert!(dir.parent().unwrap().join("Cargo.lock").is_file());
        }
    }
}
