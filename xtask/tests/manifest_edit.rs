//! `cargo xtask dist`'s manifest edit: one platform's uri and sha256, nothing else.

use serde_yaml::Value;
use xtask::dist::{record_in_manifest, Artifact};
use xtask::edit::set_platform_artifact;
use xtask::{workspace, Platform};

fn repo_manifest() -> String {
    std::fs::read_to_string(workspace::root().join("krew-manifest.yaml"))
        .expect("krew-manifest.yaml")
}

fn platform_value<'a>(doc: &'a Value, os: &str, arch: &str) -> &'a Value {
    doc["spec"]["platforms"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| {
            p["selector"]["matchLabels"]["os"].as_str() == Some(os)
                && p["selector"]["matchLabels"]["arch"].as_str() == Some(arch)
        })
        .unwrap_or_else(|| panic!("{os}/{arch} in manifest"))
}

#[test]
fn edit_rewrites_only_the_two_lines_of_that_platform() {
    let good = repo_manifest();
    let linux = Platform::new("linux", "amd64").unwrap();
    let uri = "https://example.com/new/kubectl-redis.tar.gz";
    let sha = "ab".repeat(32);
    let edited = set_platform_artifact(&good, &linux, uri, &sha).unwrap();

    let before: Vec<&str> = good.lines().collect();
    let after: Vec<&str> = edited.lines().collect();
    assert_eq!(before.len(), after.len(), "no lines added or removed");
    let changed: Vec<(&str, &str)> = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (*a, *b))
        .collect();
    assert_eq!(
        changed.iter().map(|(_, b)| b.trim()).collect::<Vec<_>>(),
        vec![format!("uri: {uri}"), format!("sha256: \"{sha}\"")],
        "changed lines: {changed:#?}"
    );
    // Comments survive, and the indentation of the rewritten lines is the original one.
    assert_eq!(
        good.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .collect::<Vec<_>>(),
        edited
            .lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
    );
    for (a, b) in &changed {
        assert_eq!(
            a.len() - a.trim_start().len(),
            b.len() - b.trim_start().len()
        );
    }

    let old: Value = serde_yaml::from_str(&good).unwrap();
    let new: Value = serde_yaml::from_str(&edited).unwrap();
    assert_eq!(
        platform_value(&new, "linux", "amd64")["uri"].as_str(),
        Some(uri)
    );
    assert_eq!(
        platform_value(&new, "linux", "amd64")["sha256"].as_str(),
        Some(sha.as_str())
    );
    for p in Platform::all().into_iter().filter(|p| *p != linux) {
        assert_eq!(
            platform_value(&old, &p.os, &p.arch),
            platform_value(&new, &p.os, &p.arch),
            "{p}"
        );
    }

    // Doing it again changes nothing.
    assert_eq!(
        set_platform_artifact(&edited, &linux, uri, &sha).unwrap(),
        edited
    );
}

#[test]
fn edit_keeps_trailing_comments_and_crlf() {
    let text = "spec:\n  platforms:\n  # comment between\n  - uri: old  # the uri\r\n    sha256: 'x'   # digest\n    selector:\n      matchLabels: {os: linux, arch: arm64}\n  - selector:\n      matchLabels: {os: linux, arch: amd64}\n    uri: keep\n    sha256: keep\n";
    let arm = Platform::new("linux", "arm64").unwrap();
    let edited = set_platform_artifact(text, &arm, "https://x/y.tar.gz", &"c".repeat(64)).unwrap();
    let want = format!(
        "spec:\n  platforms:\n  # comment between\n  - uri: https://x/y.tar.gz  # the uri\r\n    sha256: \"{}\"   # digest\n    selector:\n      matchLabels: {{os: linux, arch: arm64}}\n  - selector:\n      matchLabels: {{os: linux, arch: amd64}}\n    uri: keep\n    sha256: keep\n",
        "c".repeat(64)
    );
    assert_eq!(edited, want);
}

#[test]
fn edit_refuses_what_it_cannot_do_safely() {
    let good = repo_manifest();
    let sha = "ab".repeat(32);
    let text_without = good.replacen(
        "os: windows\n          arch: arm64",
        "os: windows\n          arch: amd64x",
        1,
    );
    let err = set_platform_artifact(
        &text_without,
        &Platform::new("windows", "arm64").unwrap(),
        "https://x",
        &sha,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no platform whose selector is os=windows arch=arm64"),
        "{err}"
    );

    let no_sha = "spec:\n  platforms:\n    - selector:\n        matchLabels: {os: linux, arch: amd64}\n      uri: a\n";
    let err = set_platform_artifact(
        no_sha,
        &Platform::new("linux", "amd64").unwrap(),
        "https://x",
        &sha,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("linux/amd64 has no `sha256:` line"), "{err}");

    let flow = "spec:\n  platforms: [{selector: {matchLabels: {os: linux, arch: amd64}}, uri: a, sha256: b}]\n";
    assert!(set_platform_artifact(
        flow,
        &Platform::new("linux", "amd64").unwrap(),
        "https://x",
        &sha
    )
    .is_err());
}

#[test]
fn recording_validates_the_result() {
    let good = repo_manifest();
    let version = workspace::version(&workspace::root()).unwrap();
    let linux = Platform::new("linux", "amd64").unwrap();
    let artifact = Artifact {
        platform: linux.clone(),
        path: "unused".into(),
        sha256: "ef".repeat(32),
        uri: linux.release_uri(&version),
    };
    let edited = record_in_manifest(&good, &artifact, &version).unwrap();
    assert!(edited.contains(&format!("sha256: \"{}\"", "ef".repeat(32))));

    let wrong_uri = Artifact {
        uri: linux.release_uri("0.0.1"),
        ..artifact.clone()
    };
    let err = format!(
        "{:#}",
        record_in_manifest(&good, &wrong_uri, &version).unwrap_err()
    );
    assert!(err.contains("[uri]") && err.contains("v0.0.1"), "{err}");

    let bad_sha = Artifact {
        sha256: "XYZ".into(),
        ..artifact
    };
    let err = format!(
        "{:#}",
        record_in_manifest(&good, &bad_sha, &version).unwrap_err()
    );
    assert!(err.contains("[sha256]"), "{err}");
}
