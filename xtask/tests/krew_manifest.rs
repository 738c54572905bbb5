//! krew-manifest.yaml against krew's rules, and the rules against manifests broken on purpose.

use std::collections::BTreeSet;

use serde_yaml::Value;
use xtask::krew::{
    glob_match, is_semver_with_v, is_sha256, placeholder_platforms, validate, Expected, Rule,
};
use xtask::{workspace, Platform, PLUGIN_NAME};

fn repo_manifest() -> String {
    let path = workspace::root().join("krew-manifest.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn cargo_version() -> String {
    workspace::version(&workspace::root()).expect("workspace version")
}

fn rules_broken(text: &str, cargo_version: &str) -> BTreeSet<Rule> {
    validate(
        text,
        &Expected {
            name: PLUGIN_NAME,
            cargo_version,
        },
    )
    .iter()
    .map(|v| v.rule)
    .collect()
}

fn report(text: &str, cargo_version: &str) -> String {
    validate(
        text,
        &Expected {
            name: PLUGIN_NAME,
            cargo_version,
        },
    )
    .iter()
    .map(|v| format!("  {v}\n"))
    .collect()
}

/// Replaces exactly one occurrence of `from` (panics when it is absent or ambiguous, so a
/// mutation can never silently do nothing).
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "`{from}` must occur exactly once in the manifest"
    );
    text.replacen(from, to, 1)
}

/// Applies `f` to the text of one platform's list item.
fn edit_platform(text: &str, os: &str, arch: &str, f: impl FnOnce(&str) -> String) -> String {
    const ITEM: &str = "    - selector:\n";
    let mut parts: Vec<String> = text.split(ITEM).map(str::to_owned).collect();
    let labels = format!("os: {os}\n          arch: {arch}\n");
    let hits: Vec<usize> = (1..parts.len())
        .filter(|&i| parts[i].contains(&labels))
        .collect();
    assert_eq!(hits.len(), 1, "exactly one platform item for {os}/{arch}");
    parts[hits[0]] = f(&parts[hits[0]]);
    parts.join(ITEM)
}

/// Drops one platform's list item.
fn remove_platform(text: &str, os: &str, arch: &str) -> String {
    const ITEM: &str = "    - selector:\n";
    let labels = format!("os: {os}\n          arch: {arch}\n");
    let parts: Vec<&str> = text.split(ITEM).collect();
    let kept: Vec<&str> = parts
        .iter()
        .enumerate()
        .filter(|(i, p)| *i == 0 || !p.contains(&labels))
        .map(|(_, p)| *p)
        .collect();
    assert_eq!(
        kept.len() + 1,
        parts.len(),
        "exactly one platform item for {os}/{arch}"
    );
    kept.join(ITEM)
}

#[test]
fn repo_manifest_passes_every_rule() {
    let text = repo_manifest();
    let version = cargo_version();
    let found = report(&text, &version);
    assert!(
        found.is_empty(),
        "krew-manifest.yaml breaks krew's rules:\n{found}"
    );
}

/// The same facts read straight from the YAML, so a validator that checks nothing cannot pass.
#[test]
fn repo_manifest_content_checked_directly() {
    let doc: Value = serde_yaml::from_str(&repo_manifest()).expect("YAML");
    assert_eq!(
        doc["apiVersion"].as_str(),
        Some("krew.googlecontainertools.github.com/v1alpha2")
    );
    assert_eq!(doc["kind"].as_str(), Some("Plugin"));
    assert_eq!(doc["metadata"]["name"].as_str(), Some("redis"));
    let version = cargo_version();
    assert_eq!(
        doc["spec"]["version"].as_str(),
        Some(format!("v{version}").as_str())
    );
    let short = doc["spec"]["shortDescription"]
        .as_str()
        .expect("shortDescription");
    assert!(
        !short.contains('\n') && short.chars().count() <= 70,
        "{short:?}"
    );
    let description = doc["spec"]["description"].as_str().expect("description");
    assert!(description.lines().all(|l| l.chars().count() <= 80));
    assert!(doc["spec"]["homepage"]
        .as_str()
        .unwrap()
        .starts_with("https://"));

    let platforms = doc["spec"]["platforms"].as_sequence().expect("platforms");
    let mut seen = BTreeSet::new();
    for p in platforms {
        let labels = p["selector"]["matchLabels"]
            .as_mapping()
            .expect("matchLabels");
        assert_eq!(labels.len(), 2, "only os and arch: {labels:?}");
        assert_eq!(
            p["selector"].as_mapping().unwrap().len(),
            1,
            "matchLabels only"
        );
        let platform = Platform::new(
            labels["os"].as_str().unwrap(),
            labels["arch"].as_str().unwrap(),
        )
        .expect("Go names");
        assert!(seen.insert(platform.clone()), "{platform} listed twice");
        assert_eq!(
            p["uri"].as_str(),
            Some(platform.release_uri(&version).as_str())
        );
        assert!(is_sha256(p["sha256"].as_str().expect("quoted sha256")));
        let files = p["files"].as_sequence().expect("files");
        assert!(
            files
                .iter()
                .any(|f| f["from"].as_str() == Some("LICENSE") && f["to"].as_str() == Some(".")),
            "{platform} must extract LICENSE"
        );
        assert!(files
            .iter()
            .any(|f| f["from"].as_str() == Some(platform.binary_name().as_str())));
        assert_eq!(p["bin"].as_str(), Some(platform.binary_name().as_str()));
        assert_eq!(
            platform.is_windows(),
            p["bin"].as_str().unwrap().ends_with(".exe")
        );
    }
    assert_eq!(seen, Platform::all().into_iter().collect::<BTreeSet<_>>());
}

/// A manifest that breaks every rule at once (except `parse`): each rule must report it.
const BROKEN: &str = r#"
apiVersion: krew.googlecontainertools.github.com/v1alpha1
kind: Plugins
metadata:
  name: kubectl-redis
spec:
  version: 0.1
  homepage: http://example.com
  shortDescription: |
    Two lines
    are not a short description, and this one is far too long besides that.
  description: |
    This line is fine.
    This line, however, goes on and on and on well past the eighty characters allowed.
  caveat: misspelt key
  platforms:
    - selector:
        matchLabels:
          os: linux
          arch: amd64
      uri: http://example.com/kubectl-redis.tar.gz
      sha256: "ABCDEF"
      files:
        - from: kubectl-redis
      bin: kubectl-redis.exe
    - selector:
        matchLabels:
          os: linux
        matchExpressions:
          - {key: os, operator: In, values: [linux]}
      uri: https://github.com/kubectl-redis/kubectl-redis/releases/download/v9.9.9/other.tar.gz
      sha256: 1234
      files:
        - from: kubectl-redis
          to: .
      bin: bin/kubectl-redis
    - selector:
        matchLabels:
          os: windows
          arch: x86_64
      uri: https://example.com/kubectl-redis.zip
      sha256: "0000000000000000000000000000000000000000000000000000000000000000"
      files:
        - from: LICENSE
          to: .
      bin: kubectl-redis
"#;

#[test]
fn broken_manifest_reports_every_rule() {
    let found = rules_broken(BROKEN, "0.1.0");
    let expected: BTreeSet<Rule> = Rule::ALL
        .iter()
        .copied()
        .filter(|r| *r != Rule::Parse)
        .collect();
    let missing: Vec<&str> = expected.difference(&found).map(|r| r.id()).collect();
    assert!(
        missing.is_empty(),
        "rules that did not report:\n{missing:?}\nreport:\n{}",
        report(BROKEN, "0.1.0")
    );
    assert_eq!(found, expected, "report:\n{}", report(BROKEN, "0.1.0"));
}

#[test]
fn unparsable_manifest_reports_parse() {
    assert_eq!(
        rules_broken("spec: [unclosed\n", "0.1.0"),
        BTreeSet::from([Rule::Parse])
    );
    assert_eq!(
        rules_broken("- just\n- a list\n", "0.1.0"),
        BTreeSet::from([Rule::Parse])
    );
}

/// One mutation of the real manifest per rule; each must be reported by exactly the rules listed.
#[test]
fn each_rule_catches_its_own_breakage() {
    let good = repo_manifest();
    let version = cargo_version();
    let v = format!("v{version}");
    let linux_uri = Platform::new("linux", "arm64")
        .unwrap()
        .release_uri(&version);
    let cases: Vec<(&str, String, Vec<Rule>)> = vec![
        (
            "old apiVersion",
            replace_once(&good, "/v1alpha2", "/v1alpha1"),
            vec![Rule::ApiVersion],
        ),
        (
            "wrong kind",
            replace_once(&good, "kind: Plugin\n", "kind: Plugins\n"),
            vec![Rule::Kind],
        ),
        (
            "name is not the index file name",
            replace_once(&good, "  name: redis\n", "  name: kubectl-redis\n"),
            vec![Rule::Name],
        ),
        (
            "misspelt spec key",
            replace_once(&good, "spec:\n", "spec:\n  caveat: typo of caveats\n"),
            vec![Rule::UnknownField],
        ),
        (
            "version without v",
            replace_once(
                &good,
                &format!("version: {v}\n"),
                &format!("version: {version}\n"),
            ),
            vec![Rule::Version, Rule::VersionMatchesCargo],
        ),
        (
            "version not semver",
            replace_once(&good, &format!("version: {v}\n"), "version: v1.2\n"),
            vec![Rule::Version, Rule::VersionMatchesCargo],
        ),
        (
            "short description over 70",
            replace_once(
                &good,
                "shortDescription: ",
                &format!("shortDescription: {} ", "x".repeat(70)),
            ),
            vec![Rule::ShortDescription],
        ),
        (
            "short description on two lines",
            replace_once(
                &good,
                "shortDescription: ",
                "shortDescription: |\n    Two\n    lines ",
            ),
            vec![Rule::ShortDescription],
        ),
        (
            "description line over 80",
            replace_once(
                &good,
                "  description: |\n",
                &format!("  description: |\n    {}\n", "y".repeat(81)),
            ),
            vec![Rule::Description],
        ),
        (
            "no description",
            {
                let start = good.find("  description: |\n").unwrap();
                let end = good.find("  platforms:\n").unwrap();
                format!("{}{}", &good[..start], &good[end..])
            },
            vec![Rule::Description],
        ),
        (
            "http homepage",
            replace_once(&good, "homepage: https://", "homepage: http://"),
            vec![Rule::Homepage],
        ),
        (
            "windows/arm64 missing",
            remove_platform(&good, "windows", "arm64"),
            vec![Rule::Platforms],
        ),
        (
            "matchExpressions",
            edit_platform(&good, "linux", "arm64", |item| {
                item.replacen(
                    "        matchLabels:\n",
                    "        matchExpressions: []\n        matchLabels:\n",
                    1,
                )
            }),
            vec![Rule::Selector],
        ),
        (
            "extra label",
            edit_platform(&good, "linux", "arm64", |item| {
                item.replacen(
                    "          arch: arm64\n",
                    "          arch: arm64\n          libc: gnu\n",
                    1,
                )
            }),
            vec![Rule::Selector],
        ),
        (
            "non-Go os name",
            edit_platform(&good, "darwin", "amd64", |item| {
                item.replacen("os: darwin", "os: macos", 1)
            }),
            vec![Rule::Selector, Rule::Platforms],
        ),
        (
            "duplicate platform",
            {
                let item_start = good.find("    - selector:\n").unwrap();
                let first_end =
                    good[item_start + 1..].find("    - selector:\n").unwrap() + item_start + 1;
                format!("{good}{}", &good[item_start..first_end])
            },
            vec![Rule::Overlap],
        ),
        (
            "selector without arch overlaps both arches",
            edit_platform(&good, "darwin", "arm64", |item| {
                item.replacen("          arch: arm64\n", "", 1)
            }),
            vec![Rule::Selector, Rule::Overlap, Rule::Platforms],
        ),
        (
            "uri of another version",
            replace_once(&good, &linux_uri, &linux_uri.replace(&v, "v0.0.9")),
            vec![Rule::Uri],
        ),
        (
            "http uri",
            replace_once(&good, &linux_uri, &linux_uri.replace("https://", "http://")),
            vec![Rule::Uri],
        ),
        (
            "uppercase sha256",
            edit_platform(&good, "linux", "arm64", |item| {
                let start = item.find("sha256: ").unwrap() + "sha256: ".len();
                let end = start + item[start..].find('\n').unwrap();
                format!("{}\"{}\"{}", &item[..start], "AB".repeat(32), &item[end..])
            }),
            vec![Rule::Sha256],
        ),
        (
            "unquoted numeric sha256",
            edit_platform(&good, "linux", "arm64", |item| {
                let start = item.find("sha256: ").unwrap() + "sha256: ".len();
                let end = start + item[start..].find('\n').unwrap();
                format!("{}{}{}", &item[..start], "1".repeat(64), &item[end..])
            }),
            vec![Rule::Sha256],
        ),
        (
            "files entry without to",
            edit_platform(&good, "linux", "arm64", |item| {
                item.replacen("      bin:", "        - from: README.md\n      bin:", 1)
            }),
            vec![Rule::Files],
        ),
        (
            "files missing",
            edit_platform(&good, "darwin", "amd64", |item| {
                let start = item.find("      files:\n").unwrap();
                let end = item.find("      bin:").unwrap();
                format!("{}{}", &item[..start], &item[end..])
            }),
            vec![Rule::Files, Rule::License, Rule::BinExtracted],
        ),
        (
            "LICENSE not extracted",
            edit_platform(&good, "darwin", "arm64", |item| {
                item.replacen("        - from: LICENSE\n          to: .\n", "", 1)
            }),
            vec![Rule::License],
        ),
        (
            "windows bin without .exe",
            edit_platform(&good, "windows", "amd64", |item| {
                item.replace("kubectl-redis.exe", "kubectl-redis")
            }),
            vec![Rule::Bin],
        ),
        (
            "linux bin with .exe",
            edit_platform(&good, "linux", "amd64", |item| {
                item.replace("kubectl-redis\n", "kubectl-redis.exe\n")
            }),
            vec![Rule::Bin],
        ),
        (
            "bin not extracted",
            edit_platform(&good, "linux", "amd64", |item| {
                item.replacen(
                    "      bin: kubectl-redis\n",
                    "      bin: bin/kubectl-redis\n",
                    1,
                )
            }),
            vec![Rule::BinExtracted],
        ),
    ];
    let covered: BTreeSet<Rule> = cases
        .iter()
        .flat_map(|(_, _, rules)| rules.iter().copied())
        .collect();
    let uncovered: Vec<&str> = Rule::ALL
        .iter()
        .filter(|r| **r != Rule::Parse && !covered.contains(r))
        .map(|r| r.id())
        .collect();
    assert!(
        uncovered.is_empty(),
        "rules without a mutation case: {uncovered:?}"
    );
    let mut failures = Vec::new();
    for (name, text, rules) in cases {
        assert_ne!(text, good, "case `{name}` did not change the manifest");
        let found = rules_broken(&text, &version);
        let wanted: BTreeSet<Rule> = rules.into_iter().collect();
        if found != wanted {
            failures.push(format!(
                "{name}: wanted {:?}, got {:?}\n{}",
                wanted.iter().map(|r| r.id()).collect::<Vec<_>>(),
                found.iter().map(|r| r.id()).collect::<Vec<_>>(),
                report(&text, &version)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unknown_platform_key_and_incomplete_files_entry_are_reported() {
    let good = repo_manifest();
    let version = cargo_version();
    let typo = edit_platform(&good, "darwin", "arm64", |item| {
        item.replacen("      bin:", "      bins: x\n      bin:", 1)
    });
    assert_eq!(
        rules_broken(&typo, &version),
        BTreeSet::from([Rule::UnknownField]),
        "{}",
        report(&typo, &version)
    );
    let no_to = edit_platform(&good, "linux", "arm64", |item| {
        item.replacen("      bin:", "        - from: README.md\n      bin:", 1)
    });
    assert_eq!(
        rules_broken(&no_to, &version),
        BTreeSet::from([Rule::Files]),
        "{}",
        report(&no_to, &version)
    );
}

#[test]
fn version_must_match_cargo() {
    let good = repo_manifest();
    assert_eq!(
        rules_broken(&good, "99.0.0"),
        BTreeSet::from([Rule::VersionMatchesCargo])
    );
}

#[test]
fn description_limits_are_inclusive() {
    let good = repo_manifest();
    let version = cargo_version();
    let long_short = good.replacen(
        &format!("shortDescription: {}\n", short_description(&good)),
        &format!("shortDescription: {}\n", "s".repeat(70)),
        1,
    );
    assert_ne!(long_short, good);
    assert!(
        rules_broken(&long_short, &version).is_empty(),
        "{}",
        report(&long_short, &version)
    );
    let long_line = good.replacen(
        "  description: |\n",
        &format!("  description: |\n    {}\n", "d".repeat(80)),
        1,
    );
    assert!(
        rules_broken(&long_line, &version).is_empty(),
        "{}",
        report(&long_line, &version)
    );
}

fn short_description(text: &str) -> String {
    let doc: Value = serde_yaml::from_str(text).unwrap();
    doc["spec"]["shortDescription"].as_str().unwrap().to_owned()
}

#[test]
fn placeholders_are_listed() {
    let good = repo_manifest();
    let pending = placeholder_platforms(&good).unwrap();
    let real = edit_platform(&good, "linux", "arm64", |item| {
        item.replacen(&"0".repeat(64), &"ab".repeat(32), 1)
    });
    let after = placeholder_platforms(&real).unwrap();
    if pending.contains(&Platform::new("linux", "arm64").unwrap()) {
        assert_eq!(after.len() + 1, pending.len());
        assert!(!after.contains(&Platform::new("linux", "arm64").unwrap()));
    } else {
        assert_eq!(after, pending);
    }
}

#[test]
fn semver_sha_and_glob_helpers() {
    for ok in [
        "v0.1.0",
        "v1.2.3",
        "v10.20.30",
        "v1.0.0-rc.1",
        "v1.0.0-alpha-2.x",
        "v1.0.0+build.5",
        "v1.0.0-0.3.7",
    ] {
        assert!(is_semver_with_v(ok), "{ok} is semver");
    }
    for bad in [
        "0.1.0",
        "v1.2",
        "v1.2.3.4",
        "v01.2.3",
        "v1.2.3-",
        "v1.2.3-01",
        "v1.2.3+",
        "v1.x.3",
        "V1.2.3",
        "",
    ] {
        assert!(!is_semver_with_v(bad), "{bad} is not semver with v");
    }
    assert!(is_sha256(&"0123456789abcdef".repeat(4)));
    assert!(!is_sha256(&"0123456789ABCDEF".repeat(4)));
    assert!(!is_sha256(&"a".repeat(63)));
    assert!(!is_sha256(&"g".repeat(64)));
    assert!(glob_match("LICENSE", "LICENSE"));
    assert!(glob_match("*", "LICENSE"));
    assert!(glob_match("LIC?NSE", "LICENSE"));
    assert!(glob_match("*/LICENSE", "dir/LICENSE"));
    assert!(!glob_match("*", "dir/LICENSE"));
    assert!(!glob_match("LICENSE.txt", "LICENSE"));
    assert!(!glob_match("README*", "LICENSE"));
}
