//! The workspace around xtask: its root, version, target directory, and building the plugin.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::BINARY_NAME;

/// The workspace root (the parent of xtask/).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// `[workspace.package] version` from the root Cargo.toml, e.g. `0.1.0` (no `v`).
pub fn version(root: &Path) -> Result<String> {
    let path = root.join("Cargo.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    doc.get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{} has no [workspace.package] version", path.display()))
}

/// The cargo that runs us (`$CARGO`), or `cargo` from PATH.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Cargo's target directory for the workspace (honours `CARGO_TARGET_DIR` and cargo config).
pub fn target_dir(root: &Path) -> Result<PathBuf> {
    let output = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("running `cargo metadata`")?;
    if !output.status.success() {
        bail!("`cargo metadata` failed ({})", output.status);
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parsing `cargo metadata` output")?;
    meta.get("target_directory")
        .and_then(|d| d.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("`cargo metadata` did not report a target_directory"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

/// Builds the `kubectl-redis` binary and returns its path (as cargo reports it).
///
/// Compiler diagnostics go to stderr as usual.
pub fn build_plugin(root: &Path, profile: Profile) -> Result<PathBuf> {
    let mut cmd = Command::new(cargo());
    cmd.args(["build", "--package", "kubectl-redis", "--bin", BINARY_NAME])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    let mut child = cmd.spawn().context("running `cargo build`")?;
    let stdout = child.stdout.take().expect("piped");
    let mut executable = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading `cargo build` output")?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let is_our_bin = message["reason"] == "compiler-artifact"
            && message["target"]["name"] == BINARY_NAME
            && message["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"));
        if is_our_bin {
            if let Some(path) = message["executable"].as_str() {
                executable = Some(PathBuf::from(path));
            }
        }
    }
    let status = child.wait().context("waiting for `cargo build`")?;
    if !status.success() {
        bail!("`cargo build -p kubectl-redis` failed ({status})");
    }
    executable.ok_or_else(|| anyhow!("`cargo build` did not report the {BINARY_NAME} executable"))
}
