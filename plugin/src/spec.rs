//! Spec: loads and validates the user's desired state.
//!
//! Two kinds of documents are accepted, mixed freely across files:
//! - the project's own `RedisCluster` document, with defaults for everything but the name;
//! - plain Kubernetes manifests of the kinds a Redis deployment needs (so the single-Redis seed's
//!   manifests work as they are).
//!
//! Validation happens while deserializing (see the newtypes at the bottom), so that serde_yaml
//! attaches the line, column and field path to every error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, ResourceRequirements, Secret,
    Service,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::input::{self, Document, Origin, SpecError};

/// The apiVersion of the project's own document.
pub const API_VERSION: &str = "kubectl-redis.io/v1alpha1";
pub const KIND: &str = "RedisCluster";

/// The most Redis nodes (pods) one spec may ask for: Redis Cluster is designed for up to 1000
/// nodes, and everything downstream (volumes, policies, the plan's requests) grows with it.
pub const MAX_NODES: u32 = 1000;

/// Everything the user asked for, in input order.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The name that ownership labels carry: a RedisCluster's name, or for plain manifests the
    /// stem of the first file or directory named on the command line.
    pub name: String,
    pub items: Vec<SpecItem>,
}

#[derive(Debug, Clone)]
pub struct SpecItem {
    pub origin: Origin,
    pub kind: SpecKind,
}

#[derive(Debug, Clone)]
pub enum SpecKind {
    Cluster(Box<RedisCluster>),
    /// A plain Kubernetes object, kept as JSON after it was checked against its typed schema.
    Manifest(Value),
}

/// The project's own document.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedisCluster {
    pub api_version: String,
    pub kind: String,
    pub metadata: ClusterMetadata,
    #[serde(default)]
    pub spec: ClusterSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterMetadata {
    pub name: StatefulSetName,
    #[serde(default)]
    pub namespace: Option<DnsLabel>,
    /// Extra labels for every rendered object (the selector label `app` is always set).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ClusterSpec {
    pub masters: Masters,
    pub replicas_per_master: Count,
    pub image: Image,
    pub image_pull_policy: Option<PullPolicy>,
    /// Defaults to `<name>-service`.
    pub service_name: Option<DnsLabel>,
    /// Defaults to `<name>-configmap`.
    pub config_map_name: Option<DnsSubdomain>,
    pub storage: StorageSpec,
    /// redis.conf directives that override or extend the rendered defaults.
    pub redis_config: BTreeMap<String, ConfigValue>,
    pub resources: Option<ResourceRequirements>,
    /// Policy rules waived for this cluster, each with the reason a reviewer will read.
    pub waivers: Vec<Waiver>,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            masters: Masters(3),
            replicas_per_master: Count(1),
            image: Image("redis:5.0.1-alpine".into()),
            image_pull_policy: None,
            service_name: None,
            config_map_name: None,
            storage: StorageSpec::default(),
            redis_config: BTreeMap::new(),
            resources: None,
            waivers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct StorageSpec {
    /// Size of each pod's volume.
    pub size: Quantity,
    /// Must be the same on the claims and the volumes, or a default StorageClass captures the
    /// claims and the pre-created volumes never bind.
    pub storage_class_name: DnsSubdomain,
    /// Pre-created hostPath PersistentVolumes, one per pod. `null` leaves provisioning to the
    /// storage class.
    pub host_path_volumes: Option<HostPathVolumes>,
}

impl Default for StorageSpec {
    fn default() -> Self {
        StorageSpec {
            size: Quantity("1Gi".into()),
            storage_class_name: DnsSubdomain("manual".into()),
            host_path_volumes: Some(HostPathVolumes::default()),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct HostPathVolumes {
    /// PV names are `<namePrefix>NN` (01, 02, ...). Defaults to `<name>-`.
    pub name_prefix: Option<String>,
    /// hostPath directories are `<pathPrefix>NN`. Defaults to `/var/lib/kubectl-redis/<name>/`.
    pub path_prefix: Option<String>,
    pub reclaim_policy: ReclaimPolicy,
    /// Kubernetes nodes that hold the directories: volume i is pinned to node i mod len. Leave
    /// empty on a single-node cluster.
    pub nodes: Vec<DnsSubdomain>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum ReclaimPolicy {
    #[default]
    Retain,
    Delete,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Waiver {
    /// The rule id, as `check` prints it.
    pub rule: String,
    /// Why this rule does not apply; required, because silent waivers hide risk.
    pub reason: NonEmpty,
}

/// A redis.conf value: YAML scalars of any type are written as they read.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ConfigValue {
    Text(String),
    Number(i64),
    Flag(bool),
}

impl std::fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigValue::Text(text) => f.write_str(text),
            ConfigValue::Number(n) => write!(f, "{n}"),
            ConfigValue::Flag(true) => f.write_str("yes"),
            ConfigValue::Flag(false) => f.write_str("no"),
        }
    }
}

impl RedisCluster {
    pub fn name(&self) -> &str {
        &self.metadata.name.0
    }
    pub fn pods(&self) -> u32 {
        self.spec.masters.0 * (1 + self.spec.replicas_per_master.0)
    }
    pub fn service_name(&self) -> String {
        match &self.spec.service_name {
            Some(name) => name.0.clone(),
            None => format!("{}-service", self.name()),
        }
    }
    pub fn config_map_name(&self) -> String {
        match &self.spec.config_map_name {
            Some(name) => name.0.clone(),
            None => format!("{}-configmap", self.name()),
        }
    }
}

/// Loads every document of every input, validating each against its schema.
pub fn load(paths: &[PathBuf]) -> Result<Spec, SpecError> {
    let documents = input::read_inputs(paths)?;
    let mut items = Vec::with_capacity(documents.len());
    // By value: each document (text, parsed value) is freed once its item is made.
    for document in documents {
        items.push(parse_document(&document)?);
    }
    check_duplicates(&items)?;
    let name = items
        .iter()
        .find_map(|item| match &item.kind {
            SpecKind::Cluster(cluster) => Some(cluster.name().to_string()),
            SpecKind::Manifest(_) => None,
        })
        .unwrap_or_else(|| name_from_path(paths.first().map(PathBuf::as_path)));
    Ok(Spec { name, items })
}

/// `specs/redis-single/` → `redis-single`; stdin → `stdin`.
fn name_from_path(path: Option<&Path>) -> String {
    let stem = path
        .filter(|p| *p != Path::new("-"))
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_else(|| "stdin".into());
    let cleaned: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let trimmed = cleaned.trim_matches('-');
    if trimmed.is_empty() {
        "redis".into()
    } else {
        trimmed.chars().take(63).collect()
    }
}

#[derive(Deserialize)]
struct TypeMeta {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
}

fn parse_document(document: &Document) -> Result<SpecItem, SpecError> {
    let meta: TypeMeta = from_document(document)?;
    let kind = meta
        .kind
        .ok_or_else(|| document.field_error("/kind", "every document needs a `kind`"))?;
    let api_version = meta.api_version.ok_or_else(|| {
        document.field_error("/apiVersion", "every document needs an `apiVersion`")
    })?;
    let mut origin = document.origin();
    let kind = match (api_version.as_str(), kind.as_str()) {
        (API_VERSION, KIND) => {
            let cluster: RedisCluster = from_document(document)?;
            check_cluster_size(document, &cluster)?;
            origin.field_map = cluster_field_map();
            SpecKind::Cluster(Box::new(cluster))
        }
        (_, KIND) => {
            return Err(document.field_error(
                "/apiVersion",
                format!("a RedisCluster has apiVersion `{API_VERSION}`, not `{api_version}`"),
            ))
        }
        ("v1", "Namespace") => manifest::<Namespace>(document)?,
        ("v1", "PersistentVolume") => manifest::<PersistentVolume>(document)?,
        ("v1", "PersistentVolumeClaim") => manifest::<PersistentVolumeClaim>(document)?,
        ("v1", "ConfigMap") => manifest::<ConfigMap>(document)?,
        ("v1", "Secret") => manifest::<Secret>(document)?,
        ("v1", "Service") => manifest::<Service>(document)?,
        ("apps/v1", "StatefulSet") => {
            let statefulset = manifest::<StatefulSet>(document)?;
            check_replicas(document, &statefulset)?;
            statefulset
        }
        _ => {
            return Err(document.field_error(
                "/kind",
                format!(
                    "unsupported kind `{kind}` (apiVersion `{api_version}`): kubectl-redis manages \
                     {KIND} ({API_VERSION}), Namespace, PersistentVolume, PersistentVolumeClaim, \
                     ConfigMap, Secret, Service (v1) and StatefulSet (apps/v1)"
                ),
            ))
        }
    };
    Ok(SpecItem { origin, kind })
}

/// `masters × (1 + replicasPerMaster)` pods, each with its own volume, at most [`MAX_NODES`].
fn check_cluster_size(document: &Document, cluster: &RedisCluster) -> Result<(), SpecError> {
    let pods = cluster.pods();
    if pods <= MAX_NODES {
        return Ok(());
    }
    let pointer = if document.field_lines.contains_key("/spec/replicasPerMaster") {
        "/spec/replicasPerMaster"
    } else {
        "/spec/masters"
    };
    Err(document.field_error(
        pointer,
        format!(
            "{} masters with {} replica(s) each make {pods} Redis nodes; a Redis Cluster has at \
             most {MAX_NODES}",
            cluster.spec.masters.0, cluster.spec.replicas_per_master.0
        ),
    ))
}

/// A plain StatefulSet runs Redis too: the same bound on its pods.
fn check_replicas(document: &Document, statefulset: &SpecKind) -> Result<(), SpecError> {
    let SpecKind::Manifest(object) = statefulset else {
        return Ok(());
    };
    match object.pointer("/spec/replicas").and_then(Value::as_i64) {
        Some(replicas) if replicas > i64::from(MAX_NODES) => Err(document.field_error(
            "/spec/replicas",
            format!("{replicas} replicas are more Redis nodes than the {MAX_NODES} supported"),
        )),
        _ => Ok(()),
    }
}

/// Rendered pointers of a RedisCluster's objects → the spec fields they come from, so findings
/// on rendered objects point at the line the user wrote.
fn cluster_field_map() -> Vec<(String, String)> {
    let container = "/spec/template/spec/containers/0";
    [
        (format!("{container}/image"), "/spec/image"),
        (
            format!("{container}/imagePullPolicy"),
            "/spec/imagePullPolicy",
        ),
        (format!("{container}/resources"), "/spec/resources"),
        ("/spec/replicas".into(), "/spec/masters"),
        (
            "/spec/volumeClaimTemplates/0/spec/resources".into(),
            "/spec/storage/size",
        ),
        (
            "/spec/volumeClaimTemplates/0/spec/storageClassName".into(),
            "/spec/storage/storageClassName",
        ),
        ("/spec/capacity".into(), "/spec/storage/size"),
        (
            "/spec/storageClassName".into(),
            "/spec/storage/storageClassName",
        ),
        ("/spec/hostPath".into(), "/spec/storage/hostPathVolumes"),
        ("/data/redis.conf".into(), "/spec/redisConfig"),
        ("/metadata/name".into(), "/metadata/name"),
    ]
    .into_iter()
    .map(|(rendered, input)| (rendered, input.to_string()))
    .collect()
}

/// Checks a plain manifest against its typed schema, including fields the schema does not know
/// (k8s-openapi ignores those silently; the API server would reject or drop them).
fn manifest<T: DeserializeOwned + Serialize>(document: &Document) -> Result<SpecKind, SpecError> {
    let typed: T = from_document(document)?;
    let written: Value = from_document(document)?;
    let understood = serde_json::to_value(&typed)
        .map_err(|e| SpecError::new(&document.file, format!("cannot re-encode: {e}")))?;
    if let Some(pointer) = first_unknown_field(&written, &understood, "") {
        return Err(document.field_error(&pointer, "unknown field for this kind".to_string()));
    }
    let name = understood.pointer("/metadata/name").and_then(Value::as_str);
    match name {
        None | Some("") => {
            Err(document.field_error("/metadata/name", "`metadata.name` is required"))
        }
        Some(name) => {
            validate_dns_subdomain(name).map_err(|e| document.field_error("/metadata/name", e))?;
            Ok(SpecKind::Manifest(understood))
        }
    }
}

fn first_unknown_field(written: &Value, understood: &Value, pointer: &str) -> Option<String> {
    match (written, understood) {
        (Value::Object(written), Value::Object(understood)) => {
            written.iter().find_map(|(key, value)| {
                let child = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                match understood.get(key) {
                    None if value.is_null() => None,
                    None => Some(child),
                    Some(known) => first_unknown_field(value, known, &child),
                }
            })
        }
        (Value::Array(written), Value::Array(understood)) => written
            .iter()
            .zip(understood)
            .enumerate()
            .find_map(|(i, (w, u))| first_unknown_field(w, u, &format!("{pointer}/{i}"))),
        _ => None,
    }
}

/// Deserializes one document, turning serde_yaml's error into one with the file's line numbers.
/// From the value the source parse already built, when there is one and it fits `T` (no second
/// parse of the text); else, and for every error, with serde_yaml, which knows the positions.
fn from_document<T: DeserializeOwned>(document: &Document) -> Result<T, SpecError> {
    if let Some(Ok(parsed)) = document.value.as_ref().map(T::deserialize) {
        return Ok(parsed);
    }
    serde_yaml::from_str(&document.text).map_err(|error| {
        let mut message = error.to_string();
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
        for integer in ["i64", "i32", "u32", "u64"] {
            message = message.replace(&format!("expected {integer}"), "expected an integer");
        }
        let (field, message) = split_field(&message);
        match error.location() {
            Some(at) => {
                let field = deepest_field_on_line(document, at.line(), field.as_deref()).or(field);
                let mut spec_error = document.error_at(at.line(), at.column(), message);
                spec_error.field = field;
                spec_error
            }
            None => {
                let mut spec_error =
                    SpecError::new(&document.file, message).at(document.content_line, 1);
                spec_error.field = field;
                spec_error
            }
        }
    })
}

/// serde_yaml names the enclosing mapping (`spec`) when a value fails its own check; the field
/// written on the error's line (`spec.masters`) is what the user needs to see.
fn deepest_field_on_line(document: &Document, line: usize, within: Option<&str>) -> Option<String> {
    let line = document.first_line + line - 1;
    document
        .field_lines
        .iter()
        .filter(|(_, field_line)| **field_line == line)
        .map(|(pointer, _)| input::dotted(pointer))
        .filter(|field| within.is_none_or(|parent| field.starts_with(parent)))
        .max_by_key(String::len)
}

/// serde_yaml prefixes messages with the field path (`spec.masters: ...`).
fn split_field(message: &str) -> (Option<String>, String) {
    if let Some((path, rest)) = message.split_once(": ") {
        let is_path = !path.is_empty()
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-[]/".contains(c));
        if is_path {
            return (Some(path.to_string()), rest.to_string());
        }
    }
    (None, message.to_string())
}

fn check_duplicates(items: &[SpecItem]) -> Result<(), SpecError> {
    let mut seen: BTreeMap<(String, String, String), &Origin> = BTreeMap::new();
    for item in items {
        let key = match &item.kind {
            SpecKind::Cluster(cluster) => (
                KIND.to_string(),
                cluster
                    .metadata
                    .namespace
                    .clone()
                    .map(|n| n.0)
                    .unwrap_or_default(),
                cluster.name().to_string(),
            ),
            SpecKind::Manifest(object) => {
                let text = |p: &str| {
                    object
                        .pointer(p)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                (
                    text("/kind"),
                    text("/metadata/namespace"),
                    text("/metadata/name"),
                )
            }
        };
        if let Some(first) = seen.get(&key) {
            return Err(SpecError::new(
                &item.origin.file,
                format!(
                    "duplicate object: {} `{}` is already declared at {}:{}",
                    key.0, key.2, first.file, first.line
                ),
            )
            .at(item.origin.line_of("/metadata/name"), 1)
            .field("metadata.name"));
        }
        seen.insert(key, &item.origin);
    }
    if items
        .iter()
        .filter(|i| matches!(i.kind, SpecKind::Cluster(_)))
        .count()
        > 1
    {
        let second = items
            .iter()
            .filter(|i| matches!(i.kind, SpecKind::Cluster(_)))
            .nth(1);
        let origin = &second.expect("counted above").origin;
        return Err(SpecError::new(
            &origin.file,
            "only one RedisCluster per invocation: plan and apply each cluster on its own",
        )
        .at(origin.line, 1));
    }
    Ok(())
}

// ---- Validated scalar types: each checks itself while serde_yaml still knows the position. ----

macro_rules! validated {
    ($(#[$doc:meta])* $name:ident($inner:ty) from $source:ty, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let check: fn($source) -> Result<$inner, String> = $check;
                let raw = <$source>::deserialize(deserializer)?;
                check(raw).map($name).map_err(serde::de::Error::custom)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }
    };
}

validated!(
    /// Number of masters: a Redis Cluster needs at least 3 to keep a majority when one fails.
    Masters(u32) from i64,
    |n| match n {
        n if n < 0 => Err(format!("must not be negative, got {n}")),
        n if n < 3 => Err(format!(
            "a Redis Cluster needs at least 3 masters so that a majority survives a failure, got {n}"
        )),
        n if n > 1000 => Err(format!("at most 1000 masters are supported, got {n}")),
        n => Ok(n as u32),
    }
);

validated!(
    /// A non-negative count.
    Count(u32) from i64,
    |n| match n {
        n if n < 0 => Err(format!("must not be negative, got {n}")),
        n if n > 100 => Err(format!("at most 100 is supported, got {n}")),
        n => Ok(n as u32),
    }
);

validated!(
    /// A Kubernetes resource quantity such as `1Gi` or `500Mi`.
    Quantity(String) from String,
    |q| validate_quantity(&q).map(|_| q)
);

validated!(
    /// A container image reference.
    Image(String) from String,
    |image| {
        if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
            Err(format!("`{image}` is not an image reference"))
        } else {
            Ok(image)
        }
    }
);

validated!(
    /// An RFC 1123 label: lowercase alphanumerics and '-', at most 63 characters.
    DnsLabel(String) from String,
    |name| validate_dns_label(&name, 63).map(|_| name)
);

validated!(
    /// A StatefulSet name: an RFC 1123 label short enough that its pods' revision-hash labels fit.
    StatefulSetName(String) from String,
    |name| validate_dns_label(&name, 52).map(|_| name)
);

validated!(
    /// An RFC 1123 subdomain: lowercase alphanumerics, '-' and '.', at most 253 characters.
    DnsSubdomain(String) from String,
    |name| validate_dns_subdomain(&name).map(|_| name)
);

validated!(
    /// A string that must say something.
    NonEmpty(String) from String,
    |text| if text.trim().is_empty() { Err("must not be empty".to_string()) } else { Ok(text) }
);

pub fn validate_dns_label(name: &str, max: usize) -> Result<(), String> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let valid_ends = name
        .bytes()
        .next()
        .zip(name.bytes().last())
        .is_some_and(|(first, last)| first != b'-' && last != b'-');
    if name.is_empty() || name.len() > max || !valid_chars || !valid_ends {
        return Err(format!(
            "`{name}` is not a valid name: use at most {max} lowercase letters, digits and '-', \
             starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

pub fn validate_dns_subdomain(name: &str) -> Result<(), String> {
    if name.len() > 253
        || name
            .split('.')
            .any(|part| validate_dns_label(part, 63).is_err())
    {
        return Err(format!(
            "`{name}` is not a valid name: use at most 253 lowercase letters, digits, '-' and '.', \
             each dot-separated part starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A Kubernetes quantity (the grammar of apimachinery's `resource.ParseQuantity`, shared with
/// the policies through `kr_policy_abi::quantity`), not negative. `1Gb` and `1 Gi` are not
/// quantities.
pub fn validate_quantity(quantity: &str) -> Result<(), String> {
    match kr_policy_abi::quantity::parse(quantity) {
        Ok(q) if q.is_negative() => Err(format!("`{quantity}` must not be negative")),
        Ok(_) => Ok(()),
        Err(why) => Err(format!(
            "`{quantity}` is not a Kubernetes quantity ({why}): write a number with a suffix \
             such as `1Gi`, `512Mi` or `10G` (binary suffixes Ki Mi Gi Ti Pi Ei, decimal k M G T P E)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for good in [
            "1Gi", "512Mi", "10G", "1", "0.5Gi", "1e3", "100m", "+1Gi", "100u", ".5Gi",
        ] {
            assert!(validate_quantity(good).is_ok(), "{good}");
        }
        for bad in ["1Gb", "1 Gi", "Gi", "", "1.2.3Gi", "1e", "-1Gi", "1GiB"] {
            assert!(validate_quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(validate_dns_label("redis-cluster", 52).is_ok());
        for bad in ["Redis", "-a", "a-", "a_b", "", &"a".repeat(53)] {
            assert!(validate_dns_label(bad, 52).is_err(), "{bad}");
        }
        assert!(validate_dns_subdomain("redis.conf-map").is_ok());
        assert!(validate_dns_subdomain("a..b").is_err());
    }

    #[test]
    fn name_from_path_is_a_valid_label() {
        assert_eq!(
            name_from_path(Some(Path::new("specs/redis-single/"))),
            "redis-single"
        );
        assert_eq!(name_from_path(Some(Path::new("My_Spec.yaml"))), "my-spec");
        assert_eq!(name_from_path(Some(Path::new("-"))), "stdin");
    }
}
