//! How the node agent turns a pod's spec into processes: the container's argv, its environment,
//! its volumes as host directories, and the bubblewrap sandbox that mounts them.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::images::Image;

/// Everything needed to start a process inside a pod's sandbox.
#[derive(Clone, Debug)]
pub(crate) struct Sandbox {
    /// (host directory, mount path, read-only)
    pub mounts: Vec<(PathBuf, String, bool)>,
    pub env: Vec<(String, String)>,
    pub workdir: String,
    pub log: PathBuf,
}

impl Sandbox {
    /// `bwrap` arguments (without the program) that run a command with the host's userland
    /// read-only, the pod's volumes at their mount paths, private /proc, /dev, /tmp and /run,
    /// and exactly the container's environment. The network namespace is the caller's to set.
    pub(crate) fn bwrap_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["--unshare-pid".into(), "--die-with-parent".into()];
        for top in [
            "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "opt",
        ] {
            let p = Path::new("/").join(top);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(t) = std::fs::read_link(&p) {
                        a.extend([
                            "--symlink".into(),
                            t.display().to_string(),
                            p.display().to_string(),
                        ]);
                    }
                }
                Ok(m) if m.is_dir() => {
                    a.extend([
                        "--ro-bind".into(),
                        p.display().to_string(),
                        p.display().to_string(),
                    ]);
                }
                _ => {}
            }
        }
        for x in [
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run", "--dir",
            "/root",
        ] {
            a.push(x.into());
        }
        for (src, dst, ro) in &self.mounts {
            a.extend([
                if *ro { "--ro-bind" } else { "--bind" }.to_string(),
                src.display().to_string(),
                dst.clone(),
            ]);
        }
        if !self.mounts.iter().any(|(_, d, _)| *d == self.workdir) && self.workdir != "/" {
            a.extend(["--dir".into(), self.workdir.clone()]);
        }
        a.extend(["--chdir".into(), self.workdir.clone(), "--clearenv".into()]);
        for (k, v) in &self.env {
            a.extend(["--setenv".into(), k.clone(), v.clone()]);
        }
        a.push("--".into());
        a
    }
}

/// The process a container runs: `command` + `args`, with the redis image's entrypoint
/// behaviour (`docker-entrypoint.sh`) when `command` is empty.
pub(crate) fn container_argv(c: &Value, image: &Image) -> Result<Vec<String>, String> {
    let command = strings(&c["command"]);
    let args = strings(&c["args"]);
    if !command.is_empty() {
        return Ok(command.into_iter().chain(args).collect());
    }
    match image {
        Image::Redis { .. } => {
            // No args, or flags / a .conf file first, means redis-server.
            if args.is_empty() || args[0].starts_with('-') || args[0].ends_with(".conf") {
                Ok(std::iter::once("redis-server".to_string())
                    .chain(args)
                    .collect())
            } else {
                Ok(args)
            }
        }
        Image::Host if !args.is_empty() => Ok(args),
        Image::Host => Err(format!(
            "image {:?} has no known entrypoint; set command",
            c["image"].as_str().unwrap_or_default()
        )),
    }
}

/// The image's working directory unless the container sets one.
pub(crate) fn workdir(c: &Value, image: &Image) -> String {
    match (c["workingDir"].as_str(), image) {
        (Some(w), _) if !w.is_empty() => w.to_string(),
        // The redis image's WORKDIR.
        (_, Image::Redis { .. }) => "/data".to_string(),
        _ => "/".to_string(),
    }
}

pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `files` (relative path → bytes, mode) into `dir`, as the kubelet's atomic writer
/// leaves a ConfigMap, Secret or projected volume (without its symlink dance).
pub(crate) fn write_files(
    dir: &Path,
    files: &BTreeMap<String, (Vec<u8>, u32)>,
) -> Result<(), String> {
    mkdir(dir)?;
    for (path, (bytes, mode)) in files {
        if path.split('/').any(|s| s == "..") || path.starts_with('/') {
            return Err(format!("invalid volume path {path:?}"));
        }
        let dest = dir.join(path);
        if let Some(parent) = dest.parent() {
            mkdir(parent)?;
        }
        std::fs::write(&dest, bytes).map_err(|e| format!("writing {}: {e}", dest.display()))?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| format!("chmod {}: {e}", dest.display()))?;
    }
    Ok(())
}

pub(crate) fn mkdir(d: &Path) -> Result<(), String> {
    std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))
}

/// The files a ConfigMap or Secret volume (or projected source) shows: every key, or `items`
/// key → path, each with `defaultMode` or the item's `mode`.
pub(crate) fn key_files(
    data: &BTreeMap<String, Vec<u8>>,
    source: &Value,
    default_mode: u32,
    optional: bool,
    what: &str,
) -> Result<BTreeMap<String, (Vec<u8>, u32)>, String> {
    let mut out = BTreeMap::new();
    match source["items"].as_array() {
        Some(items) => {
            for it in items {
                let key = it["key"].as_str().unwrap_or_default();
                let path = it["path"].as_str().unwrap_or(key);
                let mode = it["mode"]
                    .as_u64()
                    .map(|m| m as u32)
                    .unwrap_or(default_mode);
                match data.get(key) {
                    Some(b) => {
                        out.insert(path.to_string(), (b.clone(), mode));
                    }
                    None if optional => {}
                    None => return Err(format!("{what} references non-existent key: {key}")),
                }
            }
        }
        None => {
            for (k, b) in data {
                out.insert(k.clone(), (b.clone(), default_mode));
            }
        }
    }
    Ok(out)
}

/// A `fieldRef` of the downward API, for env and downwardAPI volumes.
pub(crate) fn field_ref(
    pod: &Value,
    path: &str,
    ip: &str,
    host_ip: &str,
) -> Result<String, String> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Ok(match path {
        "status.podIP" | "status.podIPs" => ip.to_string(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        "metadata.name" => s(&pod["metadata"]["name"]),
        "metadata.namespace" => s(&pod["metadata"]["namespace"]),
        "metadata.uid" => s(&pod["metadata"]["uid"]),
        "spec.nodeName" => s(&pod["spec"]["nodeName"]),
        "spec.serviceAccountName" => pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .to_string(),
        other => {
            let map = |field: &str| {
                other
                    .strip_prefix(&format!("metadata.{field}['"))
                    .and_then(|k| k.strip_suffix("']"))
                    .map(|k| s(&pod["metadata"][field][k]))
            };
            match map("labels").or_else(|| map("annotations")) {
                Some(v) => v,
                None => return Err(format!("unsupported fieldRef {other}")),
            }
        }
    })
}
