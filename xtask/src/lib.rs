//! Release tooling for kubectl-redis.
//!
//! * [`krew`] validates `krew-manifest.yaml` against krew's rules (and the project's own: the
//!   version matches Cargo.toml, URIs follow the release naming, the LICENSE ships in every archive).
//! * [`dist`] packs a release archive deterministically and records its URI and sha256 in the
//!   manifest; `cargo xtask dist` drives it (see `main.rs`).
//! * [`edit`] rewrites one platform's `uri`/`sha256` in the manifest text, keeping comments and order.
//! * [`workspace`] finds the workspace root, its version, the target directory and builds the plugin.

pub mod dist;
pub mod edit;
pub mod krew;
pub mod workspace;

use std::fmt;

use anyhow::{bail, Result};

/// The plugin's name in the krew index (`kubectl krew install redis`, `kubectl redis`).
pub const PLUGIN_NAME: &str = "redis";
/// The executable kubectl dispatches `kubectl redis` to.
pub const BINARY_NAME: &str = "kubectl-redis";
/// Where release archives are published; `v<version>/<archive>` is appended.
pub const RELEASE_BASE: &str = "https://github.com/kubectl-redis/kubectl-redis/releases/download";
/// Operating systems (Go `GOOS` names) the manifest must cover.
pub const OSES: [&str; 3] = ["linux", "darwin", "windows"];
/// Architectures (Go `GOARCH` names) the manifest must cover.
pub const ARCHES: [&str; 2] = ["amd64", "arm64"];

/// One os/arch pair in krew's (Go's) naming.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub arch: String,
}

impl Platform {
    /// A platform the manifest must cover; anything else is an error naming the valid values.
    pub fn new(os: &str, arch: &str) -> Result<Self> {
        if !OSES.contains(&os) {
            bail!(
                "unknown os `{os}`: krew uses Go's names, one of {}",
                OSES.join(", ")
            );
        }
        if !ARCHES.contains(&arch) {
            bail!(
                "unknown arch `{arch}`: krew uses Go's names, one of {}",
                ARCHES.join(", ")
            );
        }
        Ok(Platform {
            os: os.to_owned(),
            arch: arch.to_owned(),
        })
    }

    /// Parses `os/arch`, e.g. `linux/amd64`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.split_once('/') {
            Some((os, arch)) => Platform::new(os, arch),
            None => bail!("expected a platform as `os/arch` (e.g. `linux/amd64`), got `{text}`"),
        }
    }

    /// The platform this program was compiled for, in Go's naming.
    pub fn host() -> Result<Self> {
        let os = match std::env::consts::OS {
            "linux" => "linux",
            "macos" => "darwin",
            "windows" => "windows",
            other => bail!("host os `{other}` is not one the krew manifest covers"),
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => bail!("host arch `{other}` is not one the krew manifest covers"),
        };
        Platform::new(os, arch)
    }

    /// Every platform the manifest must cover, in the manifest's order.
    pub fn all() -> Vec<Platform> {
        OSES.iter()
            .flat_map(|os| {
                ARCHES
                    .iter()
                    .map(move |arch| Platform::new(os, arch).expect("known"))
            })
            .collect()
    }

    pub fn is_windows(&self) -> bool {
        self.os == "windows"
    }

    /// The executable's name inside the archive (`kubectl-redis`, or `kubectl-redis.exe` on windows).
    pub fn binary_name(&self) -> String {
        if self.is_windows() {
            format!("{BINARY_NAME}.exe")
        } else {
            BINARY_NAME.to_owned()
        }
    }

    /// `kubectl-redis-v<version>-<os>-<arch>.tar.gz`; `version` is Cargo's, without the `v`.
    pub fn archive_name(&self, version: &str) -> String {
        format!("{BINARY_NAME}-v{version}-{}-{}.tar.gz", self.os, self.arch)
    }

    /// The URI the release workflow publishes this platform's archive under.
    pub fn release_uri(&self, version: &str) -> String {
        format!("{RELEASE_BASE}/v{version}/{}", self.archive_name(version))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)
    }
}
