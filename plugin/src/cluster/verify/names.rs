//! Who is who: node ids to pods (down pods included, where their peers tell), pods to IPs.

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::observe::Observation;

/// The names `verify` puts on node ids and addresses.
pub(super) struct Names<'a> {
    /// Node id → pod name (see [`pods_by_id`]).
    pub(super) pod_of: BTreeMap<String, String>,
    ip_of: BTreeMap<&'a str, &'a str>,
    pod_at: BTreeMap<&'a str, &'a str>,
}

impl<'a> Names<'a> {
    pub(super) fn new(obs: &'a Observation) -> Names<'a> {
        let ip_of: BTreeMap<&str, &str> = obs
            .pods
            .iter()
            .filter_map(|p| Some((p.pod.name.as_str(), p.pod.ip.as_deref()?)))
            .collect();
        let pod_at = ip_of.iter().map(|(pod, ip)| (*ip, *pod)).collect();
        Names {
            pod_of: pods_by_id(obs),
            ip_of,
            pod_at,
        }
    }

    /// The pod a node id is, if it is one of the StatefulSet's.
    pub(super) fn pod(&self, id: &str) -> Option<&str> {
        self.pod_of.get(id).map(String::as_str)
    }

    /// The pod, or `node 1a2b3c4d` for a node that is none of them.
    pub(super) fn name(&self, id: &str) -> String {
        self.pod(id)
            .map(str::to_string)
            .unwrap_or_else(|| format!("node {}", id.chars().take(8).collect::<String>()))
    }

    /// A pod's IP, as Kubernetes reports it.
    pub(super) fn ip(&self, pod: &str) -> Option<&'a str> {
        self.ip_of.get(pod).copied()
    }

    /// The pod at an IP.
    pub(super) fn pod_at(&self, ip: &str) -> Option<&'a str> {
        self.pod_at.get(ip).copied()
    }
}

/// Node id → pod name from each pod's `myself` line, and for a pod that did not answer (so gave
/// no `myself` line) the one id its peers know at its IP; failing that, when exactly one such
/// pod is left (e.g. recreated, no IP yet) and exactly one unknown node is seen failing or
/// disconnected by everyone who knows it, that node. Without this, peers' lines about a pod
/// that is down would call it a foreign node.
fn pods_by_id(obs: &Observation) -> BTreeMap<String, String> {
    let mut pod_of = obs.pod_of_id();
    let unknown = |pod_of: &BTreeMap<String, String>| -> BTreeMap<String, Vec<bool>> {
        let mut seen: BTreeMap<String, Vec<bool>> = BTreeMap::new();
        for n in obs
            .pods
            .iter()
            .flat_map(|o| &o.nodes)
            .filter(|n| !n.in_handshake() && !pod_of.contains_key(&n.id))
        {
            seen.entry(n.id.clone())
                .or_default()
                .push(n.failing() || !n.link_connected);
        }
        seen
    };
    let mut unmatched = Vec::new();
    for p in obs.pods.iter().filter(|p| p.id.is_none()) {
        let at_ip: BTreeSet<&str> = p.pod.ip.as_deref().map_or_else(BTreeSet::new, |ip| {
            obs.pods
                .iter()
                .flat_map(|o| &o.nodes)
                .filter(|n| n.ip == ip && !n.in_handshake() && !pod_of.contains_key(&n.id))
                .map(|n| n.id.as_str())
                .collect()
        });
        match Vec::from_iter(at_ip).as_slice() {
            [id] => {
                pod_of.insert(id.to_string(), p.pod.name.clone());
            }
            _ => unmatched.push(&p.pod.name),
        }
    }
    if let [pod] = unmatched.as_slice() {
        let unknown = unknown(&pod_of);
        if let [(id, views)] = Vec::from_iter(&unknown).as_slice() {
            if views.iter().all(|down| *down) {
                pod_of.insert(id.to_string(), pod.to_string());
            }
        }
    }
    pod_of
}
