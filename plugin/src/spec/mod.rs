//! Spec: loads and validates the user's desired state.
//!
//! Two kinds of documents are accepted, mixed freely across files:
//! - the project's own `RedisCluster` document ([`cluster`]), with defaults for everything but
//!   the name;
//! - plain Kubernetes manifests of the kinds a Redis deployment needs ([`manifest`]: so the
//!   single-Redis seed's manifests work as they are).
//!
//! Validation happens while deserializing ([`decode`], and the self-checking scalar types of
//! [`scalars`]), so that every error carries the line, column and field path.

mod cluster;
mod decode;
mod manifest;
mod scalars;

pub use cluster::{
    ClusterMetadata, ClusterSpec, ConfigValue, HostPathVolumes, PullPolicy, ReclaimPolicy,
    RedisCluster, StorageSpec, Waiver,
};
pub use scalars::{
    validate_dns_label, validate_dns_subdomain, validate_quantity, Count, DnsLabel, DnsSubdomain,
    Image, Masters, NonEmpty, Quantity, StatefulSetName,
};

use std::collections::hash_map::{Entry, HashMap};
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Secret, Service,
};
use serde::Deserialize;

use crate::input::{self, Document, Origin, SpecError};
use crate::object::PackedObject;

use cluster::{check_cluster_size, cluster_field_map};
use decode::from_document;
use manifest::{check_replicas, manifest};

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
    /// A plain Kubernetes object, kept packed after it was checked against its typed schema.
    Manifest(PackedObject),
}

/// Loads every document of every input, validating each against its schema.
pub fn load(paths: &[PathBuf]) -> Result<Spec, SpecError> {
    let documents = input::read_inputs(paths)?;
    // Each document is parsed, checked and packed in one step, and its parsed value freed
    // before the next: only the packed objects of a large bundle are ever held all at once.
    let items = crate::parallel::try_map(documents, |document| {
        parse_document(&input::parse(document)?)
    })?;
    check_duplicates(&items)?;
    let name =
        cluster_name(&items).unwrap_or_else(|| name_from_path(paths.first().map(PathBuf::as_path)));
    Ok(Spec { name, items })
}

/// Loads a spec that commands writing to a cluster act on: its instance name (the ApplySet that
/// prune and destroy work from) must be the user's, never a guess. `instance` (`--instance`)
/// names plain manifests; a RedisCluster names itself; a spec read from stdin without either is
/// refused, since two different specs piped in would share one ApplySet and prune each other.
pub fn load_instance(paths: &[PathBuf], instance: Option<&str>) -> Result<Spec, SpecError> {
    let mut spec = load(paths)?;
    match (cluster_name(&spec.items), instance) {
        (Some(name), Some(flag)) if name != flag => Err(SpecError::new(
            "--instance",
            format!(
                "`{flag}` contradicts the RedisCluster's metadata.name `{name}`, which is its \
                 instance name: drop --instance"
            ),
        )),
        (Some(_), _) => Ok(spec),
        (None, Some(flag)) => {
            validate_dns_label(flag, 63).map_err(|why| {
                SpecError::new(
                    "--instance",
                    format!("`{flag}` is not an instance name: {why}"),
                )
            })?;
            spec.name = flag.to_string();
            Ok(spec)
        }
        (None, None) if paths.first().is_some_and(|p| p == Path::new("-")) => Err(SpecError::new(
            "<stdin>",
            "plain manifests read from stdin need an instance name: pass --instance NAME. It \
             names the set of objects that prune and destroy work from, so that two specs piped \
             in cannot prune each other's objects",
        )),
        (None, None) => Ok(spec),
    }
}

/// The name of the spec's RedisCluster, which is its instance name.
fn cluster_name(items: &[SpecItem]) -> Option<String> {
    items.iter().find_map(|item| match &item.kind {
        SpecKind::Cluster(cluster) => Some(cluster.name().to_string()),
        SpecKind::Manifest(_) => None,
    })
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

fn check_duplicates(items: &[SpecItem]) -> Result<(), SpecError> {
    // Hashed and borrowed: a BTreeMap of owned keys spent a quarter of rendering 10,000
    // objects comparing names that share their first characters.
    let mut seen: HashMap<(&str, &str, &str), &Origin> = HashMap::with_capacity(items.len());
    for item in items {
        let key = match &item.kind {
            SpecKind::Cluster(cluster) => (
                KIND,
                cluster
                    .metadata
                    .namespace
                    .as_ref()
                    .map_or("", |n| n.0.as_str()),
                cluster.name(),
            ),
            SpecKind::Manifest(object) => (
                object.kind(),
                object.namespace().unwrap_or_default(),
                object.name(),
            ),
        };
        match seen.entry(key) {
            Entry::Occupied(first) => {
                let first = first.get();
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
            Entry::Vacant(slot) => {
                slot.insert(&item.origin);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
