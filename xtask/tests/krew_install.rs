//! Install the release archive the way krew does, then run the plugin through kubectl.
//!
//! krew downloads the platform's `uri`, checks its `sha256`, extracts it, moves the `files` into
//! `~/.krew/store/<name>/<version>/` and links `bin` as `~/.krew/bin/kubectl-<name>`. This test does
//! the same with an archive packed by `xtask::dist::pack` and the manifest as `cargo xtask dist`
//! rewrites it, in a temporary directory, with a PATH holding only that bin directory and
//! kubectl's own directory, so no other build of the plugin can shadow the one under test.
//!
//! To keep it fast the archive holds the debug build (`cargo build -p kubectl-redis`), stripped of
//! its debug info with `strip` when that is installed (~270 MB down to ~12 MB; the release profile
//! strips too); the real release packs the `--release` build. Set `KUBECTL_REDIS_BIN` to test a
//! prebuilt binary instead, and `KUBECTL` if kubectl is not `/usr/bin/kubectl`.
#![cfg(unix)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flate2::read::GzDecoder;
use serde_yaml::Value;
use xtask::dist::{pack, record_in_manifest, sha256_file, DEFAULT_MTIME};
use xtask::krew::{glob_match, installed_path};
use xtask::workspace::{self, Profile};
use xtask::{Platform, BINARY_NAME, PLUGIN_NAME};

fn plugin_binary() -> PathBuf {
    match std::env::var_os("KUBECTL_REDIS_BIN") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "KUBECTL_REDIS_BIN={} is not a file",
                path.display()
            );
            path
        }
        None => workspace::build_plugin(&workspace::root(), Profile::Debug)
            .unwrap_or_else(|e| panic!("building the plugin: {e:#}")),
    }
}

/// A copy of `binary` without debug info when `strip` is available (packing is then seconds
/// instead of a minute); otherwise `binary` itself.
fn packable(binary: &Path, dir: &Path) -> PathBuf {
    let stripped = dir.join(BINARY_NAME);
    match Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(binary)
        .status()
    {
        Ok(status) if status.success() => stripped,
        _ => binary.to_path_buf(),
    }
}

fn kubectl() -> PathBuf {
    let path = std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/kubectl".into());
    assert!(
        path.is_file(),
        "kubectl not found at {} (set KUBECTL)",
        path.display()
    );
    path
}

fn all_files(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_files(&path, base, out);
        } else {
            out.push(
                path.strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

/// What krew does for `kubectl krew install --manifest=... --archive=...`; returns the bin dir.
fn krew_install(root: &Path, manifest: &str, platform: &Platform, archive: &Path) -> PathBuf {
    let doc: Value = serde_yaml::from_str(manifest).unwrap();
    let item = doc["spec"]["platforms"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| {
            p["selector"]["matchLabels"]["os"].as_str() == Some(&platform.os)
                && p["selector"]["matchLabels"]["arch"].as_str() == Some(&platform.arch)
        })
        .unwrap_or_else(|| panic!("manifest has no {platform} platform"));
    let uri = item["uri"].as_str().unwrap();
    let name = archive.file_name().unwrap().to_string_lossy();
    assert!(
        uri.ends_with(&format!("/{name}")),
        "uri {uri} must name the archive {name}"
    );
    assert_eq!(
        item["sha256"].as_str(),
        Some(sha256_file(archive).unwrap().as_str()),
        "krew checks the digest"
    );

    let staging = root.join("download");
    tar::Archive::new(GzDecoder::new(std::fs::File::open(archive).unwrap()))
        .unpack(&staging)
        .unwrap();
    let mut extracted = Vec::new();
    all_files(&staging, &staging, &mut extracted);

    let version = doc["spec"]["version"].as_str().unwrap();
    let install = root.join("krew/store").join(PLUGIN_NAME).join(version);
    for op in item["files"].as_sequence().unwrap() {
        let (from, to) = (op["from"].as_str().unwrap(), op["to"].as_str().unwrap());
        let matched: Vec<&String> = extracted.iter().filter(|f| glob_match(from, f)).collect();
        assert!(
            !matched.is_empty(),
            "files.from `{from}` matches nothing in the archive ({extracted:?})"
        );
        for file in matched {
            let dest = install.join(installed_path(file, to));
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::rename(staging.join(file), &dest).unwrap();
        }
    }
    assert!(install.join("LICENSE").is_file(), "LICENSE installed");
    let bin = install.join(item["bin"].as_str().unwrap());
    assert!(bin.is_file(), "bin {} installed", bin.display());

    let bin_dir = root.join("krew/bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(&bin, bin_dir.join(format!("kubectl-{PLUGIN_NAME}"))).unwrap();
    bin_dir
}

fn path_of(dirs: &[&Path]) -> OsString {
    std::env::join_paths(dirs).unwrap()
}

fn run(kubectl: &Path, path: &OsString, args: &[&str]) -> Output {
    Command::new(kubectl)
        .args(args)
        .env("PATH", path)
        .output()
        .expect("running kubectl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn archive_installed_like_krew_runs_through_kubectl() {
    let kubectl = kubectl();
    let kubectl_dir = kubectl.parent().unwrap();
    let root_dir = workspace::root();
    let version = workspace::version(&root_dir).unwrap();
    let platform = Platform::host().expect("a platform the manifest covers");
    let tmp = tempfile::tempdir().unwrap();

    // `cargo xtask dist`, with the debug build and a copy of the manifest.
    let binary = packable(&plugin_binary(), tmp.path());
    let artifact = pack(
        &binary,
        &root_dir.join("LICENSE"),
        &platform,
        &version,
        &tmp.path().join("dist"),
        DEFAULT_MTIME,
    )
    .unwrap();
    let manifest = std::fs::read_to_string(root_dir.join("krew-manifest.yaml")).unwrap();
    let manifest = record_in_manifest(&manifest, &artifact, &version).unwrap();

    let bin_dir = krew_install(tmp.path(), &manifest, &platform, &artifact.path);
    let path = path_of(&[&bin_dir, kubectl_dir]);

    let out = run(&kubectl, &path, &["redis", "version"]);
    assert!(
        out.status.success(),
        "`kubectl redis version` failed ({}): stdout {:?} stderr {:?}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), format!("{BINARY_NAME} v{version}\n"));
    assert_eq!(text(&out.stderr), "");

    let out = run(&kubectl, &path, &["plugin", "list"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "`kubectl plugin list` failed: {stdout}{stderr}"
    );
    let listed = bin_dir.join(BINARY_NAME);
    assert!(
        stdout.lines().any(|l| l.trim() == listed.to_string_lossy()),
        "{listed:?} not listed:\n{stdout}"
    );
    assert!(
        !stdout.contains("warning") && stderr.is_empty(),
        "plugin list warned:\n{stdout}{stderr}"
    );

    // The warning check is not vacuous: a second copy later on PATH is reported as shadowed,
    // and a copy that is not executable is reported too.
    let other = tmp.path().join("other-bin");
    std::fs::create_dir_all(&other).unwrap();
    let copy = other.join(BINARY_NAME);
    std::fs::copy(&binary, &copy).unwrap();
    let out = run(
        &kubectl,
        &path_of(&[&bin_dir, &other, kubectl_dir]),
        &["plugin", "list"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("overshadowed"),
        "{}",
        text(&out.stderr)
    );
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = run(
        &kubectl,
        &path_of(&[&other, kubectl_dir]),
        &["plugin", "list"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not executable"),
        "{}",
        text(&out.stderr)
    );
}
