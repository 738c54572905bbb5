//! Render: turns a loaded spec into the Kubernetes objects it stands for, in apply order.
//!
//! A RedisCluster document becomes the seed's objects ([`cluster`]), built as k8s-openapi types:
//! one hostPath PersistentVolume per pod ([`volumes`]: pre-bound to that pod's claim), the
//! ConfigMap with redis.conf and update-node.sh ([`files`]), the Service, and the StatefulSet.
//! Plain manifests pass through, gaining the ownership labels and the namespace. [`text`] prints
//! the result, its YAML with [`yaml`]'s writer (serde_yaml's output, byte for byte, faster).
//! [`rbac`] derives the Role (and ClusterRole) a spec needs from the same bundle.

mod cluster;
mod files;
mod rbac;
mod text;
mod volumes;
mod yaml;

pub use files::{redis_conf, UPDATE_NODE_SH};
pub use rbac::rbac;
pub use text::{to_text, RenderFormat};

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::input::{Location, Origin, SpecError};
use crate::object::PackedObject;
use crate::ownership::{self, INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL, PART_OF_LABEL};
use crate::spec::{Spec, SpecKind};

/// StatefulSet annotations that tell policies and `apply` the intended cluster shape.
pub use kr_policy_abi::annotations::{
    MASTERS as MASTERS_ANNOTATION, REPLICAS_PER_MASTER as REPLICAS_PER_MASTER_ANNOTATION,
};
/// Redis's client port, and the cluster bus (gossip) port: the client port + 10000.
const CLIENT_PORT: i32 = 6379;
const GOSSIP_PORT: i32 = 16379;

/// Pod-template annotation holding a hash of the ConfigMap, so a config change rolls the pods.
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "redis.kubectl-redis.io/config-checksum";

/// One rendered Kubernetes object and where in the user's input it came from.
#[derive(Debug, Clone)]
pub struct RenderedObject {
    /// The full manifest (apiVersion, kind, metadata, spec...) as the API server would receive
    /// it, packed: a bundle can hold many thousands.
    pub object: PackedObject,
    /// The spec document this object was rendered from, for file:line in errors and findings.
    pub origin: Origin,
}

impl RenderedObject {
    pub fn kind(&self) -> &str {
        self.object.kind()
    }
    pub fn name(&self) -> &str {
        self.object.name()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.object.namespace()
    }
}

/// A policy waiver written in the spec (`spec.waivers`), with where it was written.
#[derive(Debug, Clone)]
pub struct SpecWaiver {
    pub rule: String,
    pub reason: String,
    pub location: Location,
}

/// Everything a spec renders to, in apply order (PersistentVolumes, ConfigMap, Service, StatefulSet).
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// The spec's name, carried by the ownership labels.
    pub name: String,
    pub namespace: String,
    pub objects: Vec<RenderedObject>,
    pub waivers: Vec<SpecWaiver>,
}

/// The namespace objects go to: the spec's own, else `-n`, else the fallback (the kubeconfig
/// context's namespace, or `default`). A `-n` that contradicts the spec is refused rather than
/// silently ignored.
pub fn resolve_namespace(
    spec: &Spec,
    flag: Option<&str>,
    fallback: &str,
) -> Result<String, SpecError> {
    for item in &spec.items {
        let written = match &item.kind {
            SpecKind::Cluster(cluster) => cluster.metadata.namespace.as_ref().map(|n| n.0.as_str()),
            SpecKind::Manifest(object) => object.namespace(),
        };
        if let (Some(written), Some(flag)) = (written, flag) {
            if written != flag {
                return Err(SpecError::new(
                    &item.origin.file,
                    format!(
                        "the spec says namespace `{written}` but -n says `{flag}`; drop -n or \
                         change the spec"
                    ),
                )
                .at(item.origin.line_of("/metadata/namespace"), 1)
                .field("metadata.namespace"));
            }
        }
        if let Some(written) = written {
            return Ok(written.to_string());
        }
    }
    Ok(flag.unwrap_or(fallback).to_string())
}

/// Renders every document of the spec, ordered for apply. `fallback_namespace` applies when
/// neither the spec nor `-n` names one. The spec is consumed: its manifests move into the bundle
/// instead of being copied, so that a large bundle is held once, not twice.
pub fn render(
    spec: Spec,
    namespace_flag: Option<&str>,
    fallback_namespace: &str,
) -> Result<Bundle, SpecError> {
    let namespace = resolve_namespace(&spec, namespace_flag, fallback_namespace)?;
    let applyset = ownership::applyset_id(&spec.name, &namespace);
    let mut bundle = Bundle {
        name: spec.name,
        namespace: namespace.clone(),
        ..Bundle::default()
    };
    bundle.objects.reserve(spec.items.len());
    let member = json!({"metadata": {"labels": {PART_OF_LABEL: applyset}}});
    let manifest_labels = manifest_labels(&bundle.name, &applyset);
    // A cluster-scoped member says which namespace's instance owns it, for the plan error that
    // stops another namespace's instance from taking it over.
    let owner_namespace = json!({"metadata": {"annotations": {
        ownership::OWNER_NAMESPACE_ANNOTATION: namespace}}});
    let cluster_scoped_member = merged(&member, &owner_namespace);
    let cluster_scoped_manifest = merged(&manifest_labels, &owner_namespace);
    let pack = |object: &PackedObject, patch: &Value| {
        object
            .merged(patch)
            .map_err(|e| SpecError::new("(render)", format!("cannot pack an object: {e}")))
    };
    for item in spec.items {
        match item.kind {
            SpecKind::Cluster(cluster) => {
                for object in cluster::render_cluster(&cluster, &namespace) {
                    let patch = if is_cluster_scoped(object["kind"].as_str().unwrap_or_default()) {
                        &cluster_scoped_member
                    } else {
                        &member
                    };
                    let object = PackedObject::from_value(&object)
                        .map_err(|e| SpecError::new(&item.origin.file, e.to_string()))?;
                    bundle.objects.push(RenderedObject {
                        object: pack(&object, patch)?,
                        origin: item.origin.clone(),
                    });
                }
                for waiver in &cluster.spec.waivers {
                    bundle.waivers.push(SpecWaiver {
                        rule: waiver.rule.clone(),
                        reason: waiver.reason.0.clone(),
                        location: Location {
                            file: item.origin.file.clone(),
                            line: item.origin.line_of("/spec/waivers"),
                            column: 1,
                        },
                    });
                }
            }
            SpecKind::Manifest(object) => {
                // Namespaced objects that name none get the bundle's.
                let labels = if is_cluster_scoped(object.kind()) {
                    &cluster_scoped_manifest
                } else if object.namespace().is_some() {
                    &manifest_labels
                } else {
                    &with_namespace(&manifest_labels, &namespace)
                };
                let mut origin = item.origin;
                origin.field_map = vec![(String::new(), String::new())];
                bundle.objects.push(RenderedObject {
                    object: pack(&object, labels)?,
                    origin,
                });
            }
        }
    }
    // Stable: objects of a rank keep their input order. Cached: a kind is a lookup in the
    // packed object, once per object rather than once per comparison.
    bundle.objects.sort_by_cached_key(|o| apply_rank(o.kind()));
    Ok(bundle)
}

/// Apply order: what others refer to goes first (volumes before claims, config before the pods
/// that mount it, the Service before the StatefulSet that names it).
pub fn apply_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "PersistentVolume" => 1,
        "PersistentVolumeClaim" => 2,
        "ConfigMap" | "Secret" => 3,
        "Service" => 4,
        "StatefulSet" => 5,
        _ => 6,
    }
}

/// The cluster-scoped kinds a spec may hold.
pub(crate) fn is_cluster_scoped(kind: &str) -> bool {
    matches!(kind, "PersistentVolume" | "Namespace")
}

/// `patch` applied over `base`, both small JSON objects of metadata.
fn merged(base: &Value, patch: &Value) -> Value {
    let mut out = base.clone();
    json_patch::merge(&mut out, patch);
    out
}

fn ownership_labels(instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (INSTANCE_LABEL.to_string(), instance.to_string()),
    ])
}

/// What a plain manifest gains: the ownership labels and the ApplySet membership.
fn manifest_labels(instance: &str, applyset: &str) -> Value {
    let mut labels = ownership_labels(instance);
    labels.insert(PART_OF_LABEL.to_string(), applyset.to_string());
    json!({"metadata": {"labels": labels}})
}

fn with_namespace(labels: &Value, namespace: &str) -> Value {
    let mut patch = labels.clone();
    patch["metadata"]["namespace"] = Value::String(namespace.to_string());
    patch
}
