//! The hostPath PersistentVolumes a RedisCluster pre-creates, one per pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference,
    PersistentVolume, PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::spec::{ReclaimPolicy, RedisCluster};

/// One hostPath volume per pod, pre-bound to that pod's claim so that pod N always finds its own
/// data again, whichever order the claims are created in. PersistentVolumes are cluster-scoped:
/// the default names and paths carry the namespace, so that the same spec in two namespaces gets
/// two sets of volumes instead of fighting over one.
pub(super) fn persistent_volumes(
    cluster: &RedisCluster,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<PersistentVolume> {
    let storage = &cluster.spec.storage;
    let Some(host_paths) = &storage.host_path_volumes else {
        return Vec::new();
    };
    let name = cluster.name();
    let name_prefix = host_paths
        .name_prefix
        .clone()
        .unwrap_or_else(|| format!("{namespace}-{name}-"));
    let path_prefix = host_paths
        .path_prefix
        .clone()
        .unwrap_or_else(|| format!("/var/lib/kubectl-redis/{namespace}/{name}/"));
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
                metadata: ObjectMeta {
                    name: Some(format!("{name_prefix}{number}")),
                    labels: Some(labels.clone()),
                    ..ObjectMeta::default()
                },
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
