//! The project's own document, `RedisCluster`: its schema, defaults and size bound.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use serde::{Deserialize, Serialize};

use crate::input::{Document, SpecError};

use super::scalars::{
    Count, DnsLabel, DnsSubdomain, Image, Masters, NonEmpty, Quantity, StatefulSetName,
};
use super::MAX_NODES;

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
    /// PV names are `<namePrefix>NN` (01, 02, ...). Defaults to `<namespace>-<name>-`:
    /// PersistentVolumes are cluster-scoped, so the default must differ between namespaces.
    pub name_prefix: Option<String>,
    /// hostPath directories are `<pathPrefix>NN`. Defaults to
    /// `/var/lib/kubectl-redis/<namespace>/<name>/`.
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

/// `masters × (1 + replicasPerMaster)` pods, each with its own volume, at most [`MAX_NODES`].
pub(super) fn check_cluster_size(
    document: &Document,
    cluster: &RedisCluster,
) -> Result<(), SpecError> {
    let pods = cluster.pods();
    if pods <= MAX_NODES {
        return Ok(());
    }
    let pointer = if document
        .field_lines
        .get("/spec/replicasPerMaster")
        .is_some()
    {
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

/// Rendered pointers of a RedisCluster's objects → the spec fields they come from, so findings
/// on rendered objects point at the line the user wrote.
pub(super) fn cluster_field_map() -> Vec<(String, String)> {
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
