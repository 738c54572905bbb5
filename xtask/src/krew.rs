//! Validation of `krew-manifest.yaml`.
//!
//! The rules are krew's own (`krew-index`'s validator and its reviewers' checklist) plus the
//! project's: the version matches Cargo.toml and every URI follows the release naming. Every rule
//! is checked independently, so one run reports everything that is wrong, each finding tagged with
//! its [`Rule`].
//!
//! Until a release is published, the platforms `cargo xtask dist` has not packed carry the
//! placeholder digest [`PLACEHOLDER_SHA256`]. It is well-formed, so the manifest validates; krew
//! would reject the download because the digest does not match. [`placeholder_platforms`] lists
//! them so a release can refuse to ship with any left.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_yaml::{Mapping, Value};

use crate::{Platform, ARCHES, BINARY_NAME, OSES, RELEASE_BASE};

pub const API_VERSION: &str = "krew.googlecontainertools.github.com/v1alpha2";
pub const KIND: &str = "Plugin";
/// krew-index warns about longer short descriptions (they are cut in `kubectl krew search`).
pub const SHORT_DESCRIPTION_MAX: usize = 70;
/// Description lines longer than this wrap badly in `kubectl krew info`.
pub const DESCRIPTION_LINE_MAX: usize = 80;
/// The digest unreleased platforms carry: well-formed, but matches no archive.
pub const PLACEHOLDER_SHA256: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// One rule of the manifest; each finding names the rule it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// The file is YAML and its top level is a mapping.
    Parse,
    /// `apiVersion: krew.googlecontainertools.github.com/v1alpha2`.
    ApiVersion,
    /// `kind: Plugin`.
    Kind,
    /// `metadata.name` is the plugin's name in the index (`redis`).
    Name,
    /// No keys krew does not know (krew parses manifests strictly).
    UnknownField,
    /// `spec.version` is semver with a `v` prefix.
    Version,
    /// `spec.version` is `v` + Cargo.toml's `[workspace.package] version`.
    VersionMatchesCargo,
    /// `spec.shortDescription` is one line of at most [`SHORT_DESCRIPTION_MAX`] characters.
    ShortDescription,
    /// `spec.description` is present and no line is longer than [`DESCRIPTION_LINE_MAX`].
    Description,
    /// `spec.homepage` is an https URL.
    Homepage,
    /// `spec.platforms` covers exactly linux, darwin and windows × amd64 and arm64.
    Platforms,
    /// Selectors use `matchLabels` with exactly `os` and `arch`, in Go's names.
    Selector,
    /// No two platforms' selectors can match the same machine.
    Overlap,
    /// `uri` is the https release URI of that platform's archive for `spec.version`.
    Uri,
    /// `sha256` is a string of 64 lowercase hex digits.
    Sha256,
    /// `files` is a non-empty list of `{from, to}`.
    Files,
    /// `files` extracts the LICENSE from every archive.
    License,
    /// `bin` ends in `.exe` on windows and nowhere else.
    Bin,
    /// `files` extracts the file `bin` names.
    BinExtracted,
}

impl Rule {
    pub const ALL: [Rule; 19] = [
        Rule::Parse,
        Rule::ApiVersion,
        Rule::Kind,
        Rule::Name,
        Rule::UnknownField,
        Rule::Version,
        Rule::VersionMatchesCargo,
        Rule::ShortDescription,
        Rule::Description,
        Rule::Homepage,
        Rule::Platforms,
        Rule::Selector,
        Rule::Overlap,
        Rule::Uri,
        Rule::Sha256,
        Rule::Files,
        Rule::License,
        Rule::Bin,
        Rule::BinExtracted,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::Parse => "parse",
            Rule::ApiVersion => "api-version",
            Rule::Kind => "kind",
            Rule::Name => "name",
            Rule::UnknownField => "unknown-field",
            Rule::Version => "version",
            Rule::VersionMatchesCargo => "version-matches-cargo",
            Rule::ShortDescription => "short-description",
            Rule::Description => "description",
            Rule::Homepage => "homepage",
            Rule::Platforms => "platforms",
            Rule::Selector => "selector",
            Rule::Overlap => "overlap",
            Rule::Uri => "uri",
            Rule::Sha256 => "sha256",
            Rule::Files => "files",
            Rule::License => "license",
            Rule::Bin => "bin",
            Rule::BinExtracted => "bin-extracted",
        }
    }
}

/// One broken rule, with a message saying where and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.rule.id(), self.message)
    }
}

/// What the manifest must agree with outside itself.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The plugin's name in the index: `redis`.
    pub name: &'a str,
    /// Cargo.toml's workspace version, without a `v`.
    pub cargo_version: &'a str,
}

/// Checks every rule; an empty result means the manifest is valid.
pub fn validate(text: &str, expected: &Expected<'_>) -> Vec<Violation> {
    let mut checker = Checker::default();
    match serde_yaml::from_str::<Value>(text) {
        Ok(Value::Mapping(doc)) => checker.document(&doc, expected),
        Ok(_) => checker.fail(Rule::Parse, "the manifest's top level must be a mapping"),
        Err(err) => checker.fail(Rule::Parse, format!("not valid YAML: {err}")),
    }
    checker.found
}

/// Platforms whose `sha256` is still [`PLACEHOLDER_SHA256`], i.e. not packed by `cargo xtask dist`.
pub fn placeholder_platforms(text: &str) -> anyhow::Result<Vec<Platform>> {
    let doc: Value = serde_yaml::from_str(text)?;
    let mut out = Vec::new();
    for platform in platforms(&doc).unwrap_or_default() {
        if platform.get("sha256").and_then(Value::as_str) == Some(PLACEHOLDER_SHA256) {
            if let Some((os, arch)) = selector_os_arch(platform) {
                out.push(Platform::new(&os, &arch)?);
            }
        }
    }
    Ok(out)
}

/// `spec.platforms` of a parsed manifest, if it is a list.
pub fn platforms(doc: &Value) -> Option<Vec<&Value>> {
    doc.get("spec")?
        .get("platforms")?
        .as_sequence()
        .map(|s| s.iter().collect())
}

/// The `os` and `arch` a platform's `selector.matchLabels` names, when it names both as strings.
pub fn selector_os_arch(platform: &Value) -> Option<(String, String)> {
    let labels = platform.get("selector")?.get("matchLabels")?;
    let os = labels.get("os")?.as_str()?;
    let arch = labels.get("arch")?.as_str()?;
    Some((os.to_owned(), arch.to_owned()))
}

/// semver 2.0 (`MAJOR.MINOR.PATCH[-pre][+build]`) with the `v` prefix krew requires.
pub fn is_semver_with_v(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('v') else {
        return false;
    };
    let (rest, build) = match rest.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (rest, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numeric = |part: &str| {
        !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'))
    };
    let ident = |part: &str| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let core: Vec<&str> = core.split('.').collect();
    core.len() == 3
        && core.iter().all(|part| numeric(part))
        && pre.is_none_or(|pre| {
            pre.split('.').all(|part| {
                ident(part) && (!part.bytes().all(|b| b.is_ascii_digit()) || numeric(part))
            })
        })
        && build.is_none_or(|build| build.split('.').all(ident))
}

/// 64 lowercase hex digits.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Shell-style glob with `*` and `?` (what krew's `files.from` allows, minus character classes).
/// `*` and `?` do not match `/`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| go(rest, &n[i..])),
            Some((b'?', rest)) => n.first().is_some_and(|&c| c != b'/') && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// Where a file named `from` lands in the install directory when moved to `to`: `to/<basename>`.
/// `.` and leading `./` are dropped, so `{from: LICENSE, to: .}` installs `LICENSE`.
pub fn installed_path(from: &str, to: &str) -> String {
    let base = from.rsplit('/').next().unwrap_or(from);
    let to = to.trim_start_matches("./").trim_end_matches('/');
    if to.is_empty() || to == "." {
        base.to_owned()
    } else {
        format!("{to}/{base}")
    }
}

const TOP_KEYS: &[&str] = &["apiVersion", "kind", "metadata", "spec"];
const METADATA_KEYS: &[&str] = &["name", "labels", "annotations"];
const SPEC_KEYS: &[&str] = &[
    "version",
    "homepage",
    "shortDescription",
    "description",
    "caveats",
    "platforms",
];
const PLATFORM_KEYS: &[&str] = &["selector", "uri", "sha256", "files", "bin"];
const FILE_KEYS: &[&str] = &["from", "to"];

#[derive(Default)]
struct Checker {
    found: Vec<Violation>,
}

impl Checker {
    fn fail(&mut self, rule: Rule, message: impl Into<String>) {
        self.found.push(Violation {
            rule,
            message: message.into(),
        });
    }

    fn known_keys(&mut self, map: &Mapping, known: &[&str], at: &str) {
        for key in map.keys() {
            match key.as_str() {
                Some(k) if known.contains(&k) => {}
                Some(k) => self.fail(
                    Rule::UnknownField,
                    format!(
                        "{at}: unknown field `{k}` (krew knows {})",
                        known.join(", ")
                    ),
                ),
                None => self.fail(
                    Rule::UnknownField,
                    format!("{at}: keys must be strings, found {key:?}"),
                ),
            }
        }
    }

    fn document(&mut self, doc: &Mapping, expected: &Expected<'_>) {
        self.known_keys(doc, TOP_KEYS, "top level");
        match doc.get("apiVersion").and_then(Value::as_str) {
            Some(API_VERSION) => {}
            other => self.fail(
                Rule::ApiVersion,
                format!("apiVersion must be `{API_VERSION}`, found {}", shown(other)),
            ),
        }
        match doc.get("kind").and_then(Value::as_str) {
            Some(KIND) => {}
            other => self.fail(
                Rule::Kind,
                format!("kind must be `{KIND}`, found {}", shown(other)),
            ),
        }
        let metadata = doc.get("metadata").and_then(Value::as_mapping);
        if let Some(metadata) = metadata {
            self.known_keys(metadata, METADATA_KEYS, "metadata");
        }
        match metadata.and_then(|m| m.get("name")).and_then(Value::as_str) {
            Some(name) if name == expected.name => {}
            other => self.fail(
                Rule::Name,
                format!(
                    "metadata.name must be `{}` (the plugin's file name in the krew index), found {}",
                    expected.name,
                    shown(other)
                ),
            ),
        }
        let empty = Mapping::new();
        let spec = match doc.get("spec").and_then(Value::as_mapping) {
            Some(spec) => spec,
            None => {
                self.fail(Rule::Platforms, "spec is missing or not a mapping");
                &empty
            }
        };
        self.known_keys(spec, SPEC_KEYS, "spec");
        let version = self.version(spec, expected);
        self.descriptions(spec);
        match spec.get("homepage").and_then(Value::as_str) {
            Some(url)
                if url
                    .strip_prefix("https://")
                    .is_some_and(|host| !host.is_empty()) => {}
            other => self.fail(
                Rule::Homepage,
                format!("spec.homepage must be an https URL, found {}", shown(other)),
            ),
        }
        self.platforms(spec, version.as_deref().unwrap_or(expected.cargo_version));
    }

    /// Checks `spec.version`; returns it without the `v` when it is valid semver.
    fn version(&mut self, spec: &Mapping, expected: &Expected<'_>) -> Option<String> {
        let version = match spec.get("version") {
            Some(Value::String(version)) => version.clone(),
            Some(Value::Number(number)) => {
                self.fail(
                    Rule::Version,
                    format!(
                        "spec.version is the number {number}; write it as a string like `v1.2.3`"
                    ),
                );
                number.to_string()
            }
            _ => {
                self.fail(Rule::Version, "spec.version is missing or not a string");
                return None;
            }
        };
        let wanted = format!("v{}", expected.cargo_version);
        if version != wanted {
            self.fail(
                Rule::VersionMatchesCargo,
                format!(
                    "spec.version is `{version}` but Cargo.toml's workspace version is `{}`: \
                     set spec.version to `{wanted}` and the URIs to its release",
                    expected.cargo_version
                ),
            );
        }
        if !matches!(spec.get("version"), Some(Value::String(_))) {
            return None; // already reported as a number
        }
        if !is_semver_with_v(&version) {
            self.fail(
                Rule::Version,
                format!("spec.version `{version}` is not semver with a `v` prefix (e.g. `v1.2.3`)"),
            );
            return None;
        }
        Some(version[1..].to_owned())
    }

    fn descriptions(&mut self, spec: &Mapping) {
        match spec.get("shortDescription").and_then(Value::as_str) {
            None => self.fail(
                Rule::ShortDescription,
                "spec.shortDescription is missing or not a string",
            ),
            Some(short) => {
                if short.trim().is_empty() {
                    self.fail(Rule::ShortDescription, "spec.shortDescription is empty");
                }
                if short.trim_end().contains('\n') {
                    self.fail(
                        Rule::ShortDescription,
                        "spec.shortDescription must be one line",
                    );
                }
                let len = short.trim_end().chars().count();
                if len > SHORT_DESCRIPTION_MAX {
                    self.fail(
                        Rule::ShortDescription,
                        format!(
                            "spec.shortDescription is {len} characters; at most \
                             {SHORT_DESCRIPTION_MAX} fit `kubectl krew search`"
                        ),
                    );
                }
            }
        }
        match spec.get("description").and_then(Value::as_str) {
            None => self.fail(
                Rule::Description,
                "spec.description is missing or not a string",
            ),
            Some(text) if text.trim().is_empty() => {
                self.fail(Rule::Description, "spec.description is empty")
            }
            Some(text) => {
                for (n, line) in text.lines().enumerate() {
                    let len = line.chars().count();
                    if len > DESCRIPTION_LINE_MAX {
                        self.fail(
                            Rule::Description,
                            format!(
                                "spec.description line {} is {len} characters (at most \
                                 {DESCRIPTION_LINE_MAX}): `{line}`",
                                n + 1
                            ),
                        );
                    }
                }
            }
        }
    }

    fn platforms(&mut self, spec: &Mapping, version: &str) {
        let Some(list) = spec
            .get("platforms")
            .and_then(Value::as_sequence)
            .filter(|l| !l.is_empty())
        else {
            self.fail(
                Rule::Platforms,
                "spec.platforms is missing, empty or not a list",
            );
            return;
        };
        let mut selectors: Vec<(String, BTreeMap<String, String>)> = Vec::new();
        let mut covered = BTreeSet::new();
        for (i, platform) in list.iter().enumerate() {
            let Some(map) = platform.as_mapping() else {
                self.fail(
                    Rule::Platforms,
                    format!("spec.platforms[{i}] is not a mapping"),
                );
                continue;
            };
            let at = match selector_os_arch(platform) {
                Some((os, arch)) => format!("spec.platforms[{i}] ({os}/{arch})"),
                None => format!("spec.platforms[{i}]"),
            };
            self.known_keys(map, PLATFORM_KEYS, &at);
            let labels = self.selector(map, &at);
            let os = labels
                .get("os")
                .filter(|os| OSES.contains(&os.as_str()))
                .cloned();
            let arch = labels
                .get("arch")
                .filter(|a| ARCHES.contains(&a.as_str()))
                .cloned();
            let known = match (&os, &arch) {
                (Some(os), Some(arch)) => Some(Platform::new(os, arch).expect("checked names")),
                _ => None,
            };
            if let Some(known) = &known {
                covered.insert(known.clone());
            }
            selectors.push((at.clone(), labels));
            self.uri(map, &at, known.as_ref(), version);
            match map.get("sha256") {
                Some(Value::String(sha)) if is_sha256(sha) => {}
                Some(Value::String(sha)) => self.fail(
                    Rule::Sha256,
                    format!("{at}: sha256 `{sha}` is not 64 lowercase hex digits"),
                ),
                other => self.fail(
                    Rule::Sha256,
                    format!(
                        "{at}: sha256 must be a (quoted) string of 64 lowercase hex digits, found {}",
                        describe(other)
                    ),
                ),
            }
            let files = self.files(map, &at);
            self.bin(map, &at, os.as_deref(), &files);
        }
        let missing: Vec<String> = Platform::all()
            .into_iter()
            .filter(|p| !covered.contains(p))
            .map(|p| p.to_string())
            .collect();
        if !missing.is_empty() {
            self.fail(
                Rule::Platforms,
                format!("spec.platforms has no archive for {}", missing.join(", ")),
            );
        }
        for (i, (at_a, a)) in selectors.iter().enumerate() {
            for (at_b, b) in &selectors[i + 1..] {
                let compatible = a.iter().all(|(k, v)| b.get(k).is_none_or(|w| w == v));
                if compatible {
                    self.fail(
                        Rule::Overlap,
                        format!("{at_a} and {at_b} have overlapping selectors: one machine matches both"),
                    );
                }
            }
        }
    }

    /// Checks the selector; returns its string matchLabels (whatever is there, for the overlap check).
    fn selector(&mut self, platform: &Mapping, at: &str) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        let Some(selector) = platform.get("selector").and_then(Value::as_mapping) else {
            self.fail(
                Rule::Selector,
                format!("{at}: selector is missing or not a mapping"),
            );
            return labels;
        };
        for key in selector.keys() {
            if key.as_str() != Some("matchLabels") {
                self.fail(
                    Rule::Selector,
                    format!(
                        "{at}: selector may only use matchLabels (on os and arch), found {key:?}"
                    ),
                );
            }
        }
        let Some(match_labels) = selector.get("matchLabels").and_then(Value::as_mapping) else {
            self.fail(
                Rule::Selector,
                format!("{at}: selector.matchLabels is missing or not a mapping"),
            );
            return labels;
        };
        for (key, value) in match_labels {
            match (key.as_str(), value.as_str()) {
                (Some(k @ ("os" | "arch")), Some(v)) => {
                    labels.insert(k.to_owned(), v.to_owned());
                }
                (Some(k @ ("os" | "arch")), None) => self.fail(
                    Rule::Selector,
                    format!("{at}: matchLabels.{k} must be a string"),
                ),
                _ => self.fail(
                    Rule::Selector,
                    format!("{at}: matchLabels may only name os and arch, found {key:?}"),
                ),
            }
        }
        for (key, names) in [("os", &OSES[..]), ("arch", &ARCHES[..])] {
            match labels.get(key) {
                None => self.fail(Rule::Selector, format!("{at}: matchLabels has no `{key}`")),
                Some(v) if !names.contains(&v.as_str()) => self.fail(
                    Rule::Selector,
                    format!(
                        "{at}: {key} `{v}` is not one of Go's names {}",
                        names.join(", ")
                    ),
                ),
                Some(_) => {}
            }
        }
        labels
    }

    fn uri(&mut self, platform: &Mapping, at: &str, known: Option<&Platform>, version: &str) {
        let Some(uri) = platform.get("uri").and_then(Value::as_str) else {
            self.fail(Rule::Uri, format!("{at}: uri is missing or not a string"));
            return;
        };
        if !uri.starts_with("https://") {
            self.fail(Rule::Uri, format!("{at}: uri `{uri}` is not https"));
            return;
        }
        let Some(platform) = known else {
            if !(uri.ends_with(".tar.gz") || uri.ends_with(".zip")) {
                self.fail(
                    Rule::Uri,
                    format!("{at}: uri `{uri}` is not a .tar.gz or .zip archive"),
                );
            }
            return;
        };
        let stem = format!(
            "{RELEASE_BASE}/v{version}/{BINARY_NAME}-v{version}-{}-{}",
            platform.os, platform.arch
        );
        let matches = uri
            .strip_prefix(&stem)
            .is_some_and(|ext| ext == ".tar.gz" || ext == ".zip");
        if !matches {
            self.fail(
                Rule::Uri,
                format!("{at}: uri `{uri}` is not the release archive `{stem}.tar.gz` (or .zip)"),
            );
        }
    }

    /// Checks `files`; returns the well-formed `(from, to)` pairs.
    fn files(&mut self, platform: &Mapping, at: &str) -> Vec<(String, String)> {
        let Some(list) = platform
            .get("files")
            .and_then(Value::as_sequence)
            .filter(|l| !l.is_empty())
        else {
            self.fail(
                Rule::Files,
                format!("{at}: files is missing, empty or not a list"),
            );
            self.fail(
                Rule::License,
                format!("{at}: files does not extract the LICENSE"),
            );
            return Vec::new();
        };
        let mut pairs = Vec::new();
        for (j, entry) in list.iter().enumerate() {
            let Some(map) = entry.as_mapping() else {
                self.fail(Rule::Files, format!("{at}: files[{j}] is not a mapping"));
                continue;
            };
            self.known_keys(map, FILE_KEYS, &format!("{at}: files[{j}]"));
            let from = map
                .get("from")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            let to = map
                .get("to")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            match (from, to) {
                (Some(from), Some(to)) => pairs.push((from.to_owned(), to.to_owned())),
                _ => self.fail(
                    Rule::Files,
                    format!("{at}: files[{j}] needs both `from` and `to` as non-empty strings"),
                ),
            }
        }
        if !pairs.iter().any(|(from, _)| glob_match(from, "LICENSE")) {
            self.fail(
                Rule::License,
                format!(
                    "{at}: files does not extract the LICENSE (add `- from: LICENSE` / `to: .`)"
                ),
            );
        }
        pairs
    }

    fn bin(&mut self, platform: &Mapping, at: &str, os: Option<&str>, files: &[(String, String)]) {
        let Some(bin) = platform
            .get("bin")
            .and_then(Value::as_str)
            .filter(|b| !b.is_empty())
        else {
            self.fail(Rule::Bin, format!("{at}: bin is missing or not a string"));
            return;
        };
        match os {
            Some("windows") if !bin.ends_with(".exe") => self.fail(
                Rule::Bin,
                format!("{at}: bin `{bin}` must end in .exe on windows"),
            ),
            Some(os) if os != "windows" && bin.ends_with(".exe") => self.fail(
                Rule::Bin,
                format!("{at}: bin `{bin}` ends in .exe but the os is {os}"),
            ),
            _ => {}
        }
        let bin = bin.trim_start_matches("./");
        if !files
            .iter()
            .any(|(from, to)| glob_match(&installed_path(from, to), bin))
        {
            self.fail(
                Rule::BinExtracted,
                format!("{at}: no files entry installs bin `{bin}` (krew links bin after extracting files)"),
            );
        }
    }
}

fn shown(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("`{v}`"),
        None => "nothing (missing or not a string)".to_owned(),
    }
}

fn describe(value: Option<&Value>) -> String {
    match value {
        None => "nothing".to_owned(),
        Some(Value::Number(n)) => format!("the number {n} (quote it)"),
        Some(other) => format!("{other:?}"),
    }
}
