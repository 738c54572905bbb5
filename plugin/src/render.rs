//! Render: turns a loaded spec into the Kubernetes objects it stands for, in apply order.
//!
//! A RedisCluster document becomes the seed's objects, built as k8s-openapi types: one hostPath
//! PersistentVolume per pod (pre-bound to that pod's claim), the ConfigMap with redis.conf and
//! update-node.sh, the Service, and the StatefulSet. Plain manifests pass through, gaining the
//! ownership labels and the namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HostPathVolumeSource, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    ObjectFieldSelector, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeSpec, PodSpec, PodTemplateSpec, Service,
    ServicePort, ServiceSpec, Volume, VolumeMount, VolumeNodeAffinity, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::input::{Location, Origin, SpecError};
use crate::ownership::{self, INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
use crate::spec::{ReclaimPolicy, RedisCluster, Spec, SpecKind};

/// StatefulSet annotations that tell policies and `apply` the intended cluster shape.
pub use kr_policy_abi::annotations::{
    MASTERS as MASTERS_ANNOTATION, REPLICAS_PER_MASTER as REPLICAS_PER_MASTER_ANNOTATION,
};
/// Pod-template annotation holding a hash of the ConfigMap, so a config change rolls the pods.
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "redis.kubectl-redis.io/config-checksum";

const CLIENT_PORT: i32 = 6379;
const GOSSIP_PORT: i32 = 16379;

/// One rendered Kubernetes object and where in the user's input it came from.
#[derive(Debug, Clone)]
pub struct RenderedObject {
    /// The full manifest (apiVersion, kind, metadata, spec...) as the API server would receive it.
    pub object: Value,
    /// The spec document this object was rendered from, for file:line in errors and findings.
    pub origin: Origin,
}

impl RenderedObject {
    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.object["metadata"]["namespace"].as_str()
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

/// How `render` prints objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderFormat {
    /// A multi-document YAML stream, as `kubectl apply -f` reads it.
    Yaml,
    /// A `v1 List`.
    Json,
}

/// Serializes objects as a multi-document YAML stream or a `v1 List`.
pub fn to_text(objects: &[Value], format: RenderFormat) -> anyhow::Result<String> {
    Ok(match format {
        RenderFormat::Yaml => {
            let mut out = String::new();
            for object in objects {
                out.push_str("---\n");
                out.push_str(&serde_yaml::to_string(object)?);
            }
            out
        }
        RenderFormat::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            format!("{}\n", serde_json::to_string_pretty(&list)?)
        }
    })
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
            SpecKind::Manifest(object) => object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
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
    let mut bundle = Bundle {
        name: spec.name,
        namespace: namespace.clone(),
        ..Bundle::default()
    };
    bundle.objects.reserve(spec.items.len());
    for item in spec.items {
        match item.kind {
            SpecKind::Cluster(cluster) => {
                for object in render_cluster(&cluster, &namespace)? {
                    bundle.objects.push(RenderedObject {
                        object,
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
            SpecKind::Manifest(mut object) => {
                label_manifest(&mut object, &bundle.name, &namespace);
                let mut origin = item.origin;
                origin.field_map = vec![(String::new(), String::new())];
                bundle.objects.push(RenderedObject { object, origin });
            }
        }
    }
    // Stable: objects of a rank keep their input order.
    bundle.objects.sort_by_key(|o| apply_rank(o.kind()));
    let applyset = ownership::applyset_id(&bundle.name, &bundle.namespace);
    for rendered in &mut bundle.objects {
        ownership::label_member(&mut rendered.object, &applyset);
    }
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

fn ownership_labels(instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (INSTANCE_LABEL.to_string(), instance.to_string()),
    ])
}

fn label_manifest(object: &mut Value, instance: &str, namespace: &str) {
    let cluster_scoped = matches!(
        object["kind"].as_str(),
        Some("PersistentVolume" | "Namespace")
    );
    let metadata = &mut object["metadata"];
    if !cluster_scoped && metadata.get("namespace").is_none() {
        metadata["namespace"] = Value::String(namespace.to_string());
    }
    if !metadata["labels"].is_object() {
        metadata["labels"] = Value::Object(Default::default());
    }
    for (key, value) in ownership_labels(instance) {
        metadata["labels"][key] = Value::String(value);
    }
}

fn render_cluster(cluster: &RedisCluster, namespace: &str) -> Result<Vec<Value>, SpecError> {
    let name = cluster.name();
    let mut labels = cluster.metadata.labels.clone();
    labels.insert("app".into(), name.to_string());
    labels.extend(ownership_labels(name));
    let selector = BTreeMap::from([("app".to_string(), name.to_string())]);
    let meta = |object_name: String, namespaced: bool| ObjectMeta {
        name: Some(object_name),
        namespace: namespaced.then(|| namespace.to_string()),
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    };

    let mut objects = Vec::new();
    for volume in persistent_volumes(cluster, namespace, &meta) {
        objects.push(to_value(&volume));
    }
    let config_map = ConfigMap {
        metadata: meta(cluster.config_map_name(), true),
        data: Some(BTreeMap::from([
            ("redis.conf".to_string(), redis_conf(cluster)),
            ("update-node.sh".to_string(), UPDATE_NODE_SH.to_string()),
        ])),
        ..ConfigMap::default()
    };
    let checksum = hex::encode(Sha256::digest(
        serde_json::to_vec(&config_map.data).expect("string maps always serialize"),
    ));
    objects.push(to_value(&config_map));

    let service = Service {
        metadata: meta(cluster.service_name(), true),
        spec: Some(ServiceSpec {
            ports: Some(vec![
                service_port("client", CLIENT_PORT),
                service_port("gossip", GOSSIP_PORT),
            ]),
            selector: Some(selector.clone()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    objects.push(to_value(&service));

    let mut statefulset_meta = meta(name.to_string(), true);
    statefulset_meta.annotations = Some(BTreeMap::from([
        (
            MASTERS_ANNOTATION.to_string(),
            cluster.spec.masters.0.to_string(),
        ),
        (
            REPLICAS_PER_MASTER_ANNOTATION.to_string(),
            cluster.spec.replicas_per_master.0.to_string(),
        ),
    ]));
    let mut template_meta = meta(String::new(), false);
    template_meta.name = None;
    template_meta.annotations = Some(BTreeMap::from([(
        CONFIG_CHECKSUM_ANNOTATION.to_string(),
        checksum,
    )]));
    let container = Container {
        name: "redis".into(),
        image: Some(cluster.spec.image.0.clone()),
        image_pull_policy: cluster.spec.image_pull_policy.map(|p| format!("{p:?}")),
        command: Some(
            ["/conf/update-node.sh", "redis-server", "/conf/redis.conf"]
                .map(String::from)
                .to_vec(),
        ),
        env: Some(vec![EnvVar {
            name: "POD_IP".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "status.podIP".into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }]),
        ports: Some(vec![
            container_port("client", CLIENT_PORT),
            container_port("gossip", GOSSIP_PORT),
        ]),
        volume_mounts: Some(vec![
            volume_mount("conf", "/conf"),
            volume_mount("data", "/data"),
        ]),
        resources: cluster.spec.resources.clone(),
        ..Container::default()
    };
    let storage = &cluster.spec.storage;
    let claim_template = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(storage.size.0.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            storage_class_name: Some(storage.storage_class_name.0.clone()),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    let statefulset = StatefulSet {
        metadata: statefulset_meta,
        spec: Some(StatefulSetSpec {
            replicas: Some(cluster.pods() as i32),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            service_name: Some(cluster.service_name()),
            template: PodTemplateSpec {
                metadata: Some(template_meta),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(vec![Volume {
                        name: "conf".into(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: cluster.config_map_name(),
                            default_mode: Some(0o755),
                            ..ConfigMapVolumeSource::default()
                        }),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![claim_template]),
            // `apply` replaces the pods itself, in an order that knows Redis roles: replicas
            // first, a CLUSTER FAILOVER before each master (cluster::roll).
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..StatefulSetUpdateStrategy::default()
            }),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    };
    objects.push(to_value(&statefulset));
    Ok(objects)
}

/// One hostPath volume per pod, pre-bound to that pod's claim so that pod N always finds its own
/// data again, whichever order the claims are created in.
fn persistent_volumes(
    cluster: &RedisCluster,
    namespace: &str,
    meta: &dyn Fn(String, bool) -> ObjectMeta,
) -> Vec<PersistentVolume> {
    let storage = &cluster.spec.storage;
    let Some(host_paths) = &storage.host_path_volumes else {
        return Vec::new();
    };
    let name = cluster.name();
    let name_prefix = host_paths
        .name_prefix
        .clone()
        .unwrap_or_else(|| format!("{name}-"));
    let path_prefix = host_paths
        .path_prefix
        .clone()
        .unwrap_or_else(|| format!("/var/lib/kubectl-redis/{name}/"));
    (0..cluster.pods())
        .map(|ordinal| {
            let number = format!("{:02}", ordinal + 1);
            let node_affinity = (!host_paths.nodes.is_empty()).then(|| {
                let node = &host_paths.nodes[ordinal as usize % host_paths.nodes.len()];
                VolumeNodeAffinity {
                    required: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: Some(vec![NodeSelectorRequirement {
                                key: "kubernetes.io/hostname".into(),
                                operator: "In".into(),
                                values: Some(vec![node.0.clone()]),
                            }]),
                            ..NodeSelectorTerm::default()
                        }],
                    }),
                }
            });
            PersistentVolume {
                metadata: meta(format!("{name_prefix}{number}"), false),
                spec: Some(PersistentVolumeSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    capacity: Some(BTreeMap::from([(
                        "storage".to_string(),
                        Quantity(storage.size.0.clone()),
                    )])),
                    host_path: Some(HostPathVolumeSource {
                        path: format!("{path_prefix}{number}"),
                        // Creates the directory on the node when it is missing.
                        type_: Some("DirectoryOrCreate".into()),
                    }),
                    storage_class_name: Some(storage.storage_class_name.0.clone()),
                    persistent_volume_reclaim_policy: Some(
                        match host_paths.reclaim_policy {
                            ReclaimPolicy::Retain => "Retain",
                            ReclaimPolicy::Delete => "Delete",
                        }
                        .into(),
                    ),
                    claim_ref: Some(ObjectReference {
                        namespace: Some(namespace.to_string()),
                        name: Some(format!("data-{name}-{ordinal}")),
                        ..ObjectReference::default()
                    }),
                    node_affinity,
                    ..PersistentVolumeSpec::default()
                }),
                ..PersistentVolume::default()
            }
        })
        .collect()
}

/// redis.conf for cluster mode; `spec.redisConfig` overrides a default in place or appends.
pub fn redis_conf(cluster: &RedisCluster) -> String {
    let defaults: [(&str, String); 9] = [
        ("port", CLIENT_PORT.to_string()),
        ("cluster-enabled", "yes".into()),
        ("cluster-config-file", "/data/nodes.conf".into()),
        ("cluster-node-timeout", "15000".into()),
        ("cluster-require-full-coverage", "no".into()),
        ("cluster-migration-barrier", "1".into()),
        ("appendonly", "yes".into()),
        ("protected-mode", "no".into()),
        ("dir", "/data".into()),
    ];
    let overrides = &cluster.spec.redis_config;
    let mut out = format!(
        "# Rendered by kubectl-redis for RedisCluster {}.\n",
        cluster.name()
    );
    for (key, default) in &defaults {
        let value = overrides
            .get(*key)
            .map(ToString::to_string)
            .unwrap_or_else(|| default.clone());
        out.push_str(&format!("{key} {value}\n"));
    }
    for (key, value) in overrides {
        if !defaults.iter().any(|(k, _)| k == key) {
            out.push_str(&format!("{key} {value}\n"));
        }
    }
    out
}

/// Runs before redis-server. A recreated pod gets a new IP, but nodes.conf on its volume still
/// holds the old one on the `myself` line; peers would keep gossiping to the dead address. The
/// script rewrites only the host part of that line's address field, keeping `:port@cport` (and
/// Redis 7's `,hostname`), then execs its arguments.
pub const UPDATE_NODE_SH: &str = r#"#!/bin/sh
# Rendered by kubectl-redis.
set -e
NODES_CONF="${NODES_CONF:-/data/nodes.conf}"
if [ -f "$NODES_CONF" ]; then
  if [ -z "$POD_IP" ]; then
    echo "update-node.sh: POD_IP is not set; cannot update $NODES_CONF" >&2
    exit 1
  fi
  awk -v ip="$POD_IP" '
    $3 ~ /(^|,)myself(,|$)/ {
      at = match($2, /:[0-9]+@[0-9]+/)
      if (at) $2 = ip substr($2, at)
    }
    { print }
  ' "$NODES_CONF" > "$NODES_CONF.tmp"
  mv "$NODES_CONF.tmp" "$NODES_CONF"
fi
exec "$@"
"#;

fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::Int(port)),
        ..ServicePort::default()
    }
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        ..ContainerPort::default()
    }
}

fn volume_mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(false),
        ..VolumeMount::default()
    }
}

fn to_value<T: Serialize + k8s_openapi::Resource>(object: &T) -> Value {
    serde_json::to_value(object).expect("k8s-openapi objects always serialize")
}
