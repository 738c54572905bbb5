//! A RedisCluster document as the seed's objects: volumes, ConfigMap, Service, StatefulSet.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec,
    PodTemplateSpec, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::spec::RedisCluster;

use super::files::{redis_conf, UPDATE_NODE_SH};
use super::volumes::persistent_volumes;
use super::{
    ownership_labels, CLIENT_PORT, CONFIG_CHECKSUM_ANNOTATION, GOSSIP_PORT, MASTERS_ANNOTATION,
    REPLICAS_PER_MASTER_ANNOTATION,
};

/// The metadata every object of one cluster shares: its labels, and the namespace where the
/// object is namespaced.
struct Meta<'a> {
    namespace: &'a str,
    labels: BTreeMap<String, String>,
}

impl Meta<'_> {
    fn object(&self, name: String, namespaced: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: namespaced.then(|| self.namespace.to_string()),
            labels: Some(self.labels.clone()),
            ..ObjectMeta::default()
        }
    }
}

/// The cluster's objects in apply order: volumes, ConfigMap, Service, StatefulSet.
pub(super) fn render_cluster(cluster: &RedisCluster, namespace: &str) -> Vec<Value> {
    let name = cluster.name();
    let mut labels = cluster.metadata.labels.clone();
    labels.insert("app".into(), name.to_string());
    labels.extend(ownership_labels(name));
    let meta = Meta { namespace, labels };

    let mut objects: Vec<Value> = persistent_volumes(cluster, namespace, &meta.labels)
        .iter()
        .map(to_value)
        .collect();
    let config_map = config_map(cluster, &meta);
    // A config change must roll the pods: the template carries a hash of the ConfigMap's data.
    let checksum = hex::encode(Sha256::digest(
        serde_json::to_vec(&config_map.data).expect("string maps always serialize"),
    ));
    objects.push(to_value(&config_map));
    objects.push(to_value(&service(cluster, &meta)));
    objects.push(to_value(&statefulset(cluster, &meta, checksum)));
    objects
}

/// The `app` label the Service and the StatefulSet select the pods by.
fn selector(cluster: &RedisCluster) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), cluster.name().to_string())])
}

fn config_map(cluster: &RedisCluster, meta: &Meta<'_>) -> ConfigMap {
    ConfigMap {
        metadata: meta.object(cluster.config_map_name(), true),
        data: Some(BTreeMap::from([
            ("redis.conf".to_string(), redis_conf(cluster)),
            ("update-node.sh".to_string(), UPDATE_NODE_SH.to_string()),
        ])),
        ..ConfigMap::default()
    }
}

fn service(cluster: &RedisCluster, meta: &Meta<'_>) -> Service {
    Service {
        metadata: meta.object(cluster.service_name(), true),
        spec: Some(ServiceSpec {
            ports: Some(vec![
                service_port("client", CLIENT_PORT),
                service_port("gossip", GOSSIP_PORT),
            ]),
            selector: Some(selector(cluster)),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn statefulset(cluster: &RedisCluster, meta: &Meta<'_>, config_checksum: String) -> StatefulSet {
    let mut statefulset_meta = meta.object(cluster.name().to_string(), true);
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
    let mut template_meta = meta.object(String::new(), false);
    template_meta.name = None;
    template_meta.annotations = Some(BTreeMap::from([(
        CONFIG_CHECKSUM_ANNOTATION.to_string(),
        config_checksum,
    )]));
    StatefulSet {
        metadata: statefulset_meta,
        spec: Some(StatefulSetSpec {
            replicas: Some(cluster.pods() as i32),
            selector: LabelSelector {
                match_labels: Some(selector(cluster)),
                ..LabelSelector::default()
            },
            service_name: Some(cluster.service_name()),
            template: PodTemplateSpec {
                metadata: Some(template_meta),
                spec: Some(PodSpec {
                    containers: vec![redis_container(cluster)],
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
            volume_claim_templates: Some(vec![claim_template(cluster, meta)]),
            // `apply` replaces the pods itself, in an order that knows Redis roles: replicas
            // first, a CLUSTER FAILOVER before each master (cluster::roll).
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..StatefulSetUpdateStrategy::default()
            }),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// update-node.sh runs first (it needs the pod's IP), then redis-server on the rendered config.
fn redis_container(cluster: &RedisCluster) -> Container {
    Container {
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
    }
}

/// Each pod's `data` claim: ReadWriteOnce, of the spec's size and storage class.
fn claim_template(cluster: &RedisCluster, meta: &Meta<'_>) -> PersistentVolumeClaim {
    let storage = &cluster.spec.storage;
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            labels: Some(meta.labels.clone()),
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
    }
}

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
