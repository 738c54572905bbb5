//! The input of every cluster operation: which pods exist, where they run, and the desired shape.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use serde::Serialize;

use super::transport::PodAddr;

/// One Redis pod of the StatefulSet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodInfo {
    pub name: String,
    pub ordinal: u32,
    /// `status.podIP`; `None` while the pod has no address yet.
    pub ip: Option<String>,
    /// `spec.nodeName`: the Kubernetes node it runs on.
    pub node: Option<String>,
    /// The claim holding its `/data` (`data-<sts>-<ordinal>`).
    pub pvc: String,
    /// Its `controller-revision-hash` label: the StatefulSet revision it was created from.
    pub revision: Option<String>,
    /// Its `Ready` condition is `True`.
    pub ready: bool,
    /// Why its container keeps failing to start, when it does (`k8s::pods::crash_loop`).
    pub crash: Option<String>,
}

impl PodInfo {
    pub fn addr(&self, port: u16) -> Option<PodAddr> {
        self.ip.as_ref().map(|ip| PodAddr {
            name: self.name.clone(),
            ip: ip.clone(),
            port,
        })
    }
}

/// Pods plus the desired shape: `masters` masters with `replicas_per_master` replicas each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub pods: Vec<PodInfo>,
    pub masters: usize,
    pub replicas_per_master: usize,
    pub port: u16,
    /// The StatefulSet's `status.updateRevision`: pods on another revision are out of date.
    pub update_revision: Option<String>,
    /// The StatefulSet's `spec.replicas`, when read from the API.
    pub replicas: Option<usize>,
}

impl Topology {
    /// The seed's shape for `n` pods named `<sts>-<i>`: n / (replicas+1) masters.
    pub fn new(pods: Vec<PodInfo>, masters: usize, replicas_per_master: usize) -> Self {
        let mut pods = pods;
        pods.sort_by_key(|p| p.ordinal);
        Topology {
            pods,
            masters,
            replicas_per_master,
            port: 6379,
            update_revision: None,
            replicas: None,
        }
    }

    pub fn pod(&self, name: &str) -> Option<&PodInfo> {
        self.pods.iter().find(|p| p.name == name)
    }

    pub fn addr(&self, pod: &PodInfo) -> Result<PodAddr> {
        pod.addr(self.port)
            .ok_or_else(|| anyhow!("pod {} has no IP yet (status.podIP is empty)", pod.name))
    }

    /// Shape checks that need no Redis: enough pods, at least three masters, every pod addressable.
    pub fn validate(&self) -> Result<()> {
        if self.masters < 3 {
            bail!(
                "a Redis Cluster needs at least 3 masters, the spec asks for {}",
                self.masters
            );
        }
        // The shape comes from annotations on a live object, which anyone may have edited.
        let want = self
            .replicas_per_master
            .checked_add(1)
            .and_then(|per_shard| per_shard.checked_mul(self.masters))
            .ok_or_else(|| {
                anyhow!(
                    "{} masters with {} replica(s) each is not a shape a Redis Cluster can have",
                    self.masters,
                    self.replicas_per_master
                )
            })?;
        if self.pods.len() < want {
            bail!(
                "{} masters with {} replica(s) each need {want} pods, found {}: {}",
                self.masters,
                self.replicas_per_master,
                self.pods.len(),
                self.pods
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let missing: Vec<&str> = self
            .pods
            .iter()
            .filter(|p| p.ip.is_none())
            .map(|p| p.name.as_str())
            .collect();
        if !missing.is_empty() {
            bail!(
                "pods without an IP (not running yet?): {}",
                missing.join(", ")
            );
        }
        Ok(())
    }
}

/// `redis-cluster-3` → 3.
pub(super) fn ordinal_of(sts: &str, pod: &str) -> Option<u32> {
    pod.strip_prefix(sts)?.strip_prefix('-')?.parse().ok()
}

/// Read the StatefulSet's pods from the API: its selector, each pod's IP, node and ordinal.
/// The claim name follows the StatefulSet's first volumeClaimTemplate (`data` in the seed).
pub async fn topology_from_kube(
    client: Client,
    namespace: &str,
    sts_name: &str,
    masters: usize,
    replicas_per_master: usize,
) -> Result<Topology> {
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let sts = sts_api
        .get(sts_name)
        .await
        .with_context(|| format!("reading StatefulSet {namespace}/{sts_name}"))?;
    let spec = sts
        .spec
        .as_ref()
        .ok_or_else(|| anyhow!("StatefulSet {sts_name} has no spec"))?;
    let labels: BTreeMap<String, String> = spec.selector.match_labels.clone().unwrap_or_default();
    if labels.is_empty() {
        bail!("StatefulSet {sts_name} has no matchLabels selector; cannot find its pods");
    }
    let selector = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let claim = spec
        .volume_claim_templates
        .as_ref()
        .and_then(|v| v.first())
        .and_then(|c| c.metadata.name.clone())
        .unwrap_or_else(|| "data".into());
    let pod_api: Api<Pod> = Api::namespaced(client, namespace);
    let list = pod_api
        .list(&ListParams::default().labels(&selector))
        .await
        .with_context(|| format!("listing pods of {namespace}/{sts_name} ({selector})"))?;
    let mut pods = Vec::new();
    for p in list.items {
        let name = p.metadata.name.clone().unwrap_or_default();
        let Some(ordinal) = ordinal_of(sts_name, &name) else {
            continue;
        };
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let ip = p
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .filter(|ip| !ip.is_empty());
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
        let revision = crate::k8s::pods::revision(&p).map(str::to_string);
        pods.push(PodInfo {
            revision,
            ready: crate::k8s::pods::is_ready(&p),
            crash: crate::k8s::pods::crash_loop(&p),
            pvc: format!("{claim}-{sts_name}-{ordinal}"),
            name,
            ordinal,
            ip,
            node,
        });
    }
    let mut topology = Topology::new(pods, masters, replicas_per_master);
    topology.update_revision = sts.status.as_ref().and_then(|s| s.update_revision.clone());
    topology.replicas = spec.replicas.and_then(|r| usize::try_from(r).ok());
    Ok(topology)
}

/// People's words for a list of pods: at most four names, then a count.
pub fn names(pods: &[String]) -> String {
    const SHOWN: usize = 4;
    if pods.len() <= SHOWN {
        return pods.join(", ");
    }
    format!(
        "{} and {} more",
        pods[..SHOWN - 1].join(", "),
        pods.len() - (SHOWN - 1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals() {
        assert_eq!(ordinal_of("redis-cluster", "redis-cluster-10"), Some(10));
        assert_eq!(ordinal_of("redis-cluster", "redis-cluster-x"), None);
        assert_eq!(ordinal_of("redis", "redis-cluster-1"), None);
    }

    #[test]
    fn an_impossible_shape_is_an_error_not_an_overflow() {
        let topology = Topology::new(Vec::new(), usize::MAX, usize::MAX);
        let error = topology.validate().unwrap_err().to_string();
        assert!(error.contains("is not a shape"), "{error}");
    }
}
