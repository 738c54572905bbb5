//! Replicas beside their master on one Kubernetes node, with a swap that fixes each.

use std::collections::BTreeSet;

use super::ledger::{Diagnosis, Draft, Views};
use super::CauseKind;
use crate::cluster::finding::Kind;
use crate::cluster::nodes::ranges_to_string;
use crate::cluster::observe::PodState;

/// A replica on its master's Kubernetes node: losing the node loses the master's slots unless
/// another replica runs elsewhere. The remedy names a replica to swap masters with, when one
/// fits; a cluster on a single Kubernetes node is one cause.
pub(super) fn same_node(d: &mut Diagnosis, view: &Views) {
    let pairs: Vec<(String, String)> = d
        .unclaimed()
        .filter(|f| f.kind == Kind::ReplicaSameNode)
        .filter_map(|f| Some((f.pod.clone()?, f.peer.clone()?)))
        .collect();
    if pairs.is_empty() {
        return;
    }
    let node = |pod: &str| view.obs.get(pod).and_then(|p| p.pod.node.clone());
    let nodes: BTreeSet<String> = view
        .obs
        .pods
        .iter()
        .filter_map(|p| p.pod.node.clone())
        .collect();
    let keeps = "`kubectl redis apply` keeps the pairings a cluster has";
    if let [only] = Vec::from_iter(&nodes).as_slice() {
        let draft = Draft {
            kind: CauseKind::ReplicaSameNode,
            summary: format!(
                "every pod runs on Kubernetes node {only}: each replica shares it with its \
                 master, and losing it loses the cluster"
            ),
            remedy: format!(
                "run the pods on more Kubernetes nodes, then pair replicas with masters on \
                 other nodes with `CLUSTER REPLICATE` ({keeps})"
            ),
            pods: pairs.iter().map(|(replica, _)| replica.clone()).collect(),
        };
        d.add(draft, |f| f.kind == Kind::ReplicaSameNode);
        return;
    }
    for (replica, master) in pairs {
        let here = node(&replica);
        let on = here.clone().unwrap_or_default();
        let elsewhere = view
            .replicas_of(&master)
            .iter()
            .any(|r| node(r).is_some() && node(r) != here);
        // Another replica R2 of a master M2 such that both end up away from their master.
        let swap = view.obs.pods.iter().filter(|p| p.ok()).find_map(|p| {
            let other_master = view.pod_of.get(p.myself()?.master_id.as_ref()?)?;
            let fits = *other_master != master
                && node(other_master) != here
                && p.pod.node.is_some()
                && p.pod.node != node(&master);
            fits.then(|| (p.pod.name.clone(), other_master.clone()))
        });
        let repair = match &swap {
            Some((other, other_master)) => format!(
                "swap masters with {other}: make {replica} replicate {other_master} and {other} \
                 replicate {master} (`CLUSTER REPLICATE <master's node id>` on each; {keeps})"
            ),
            None => format!(
                "no other replica can swap masters with it: run pods on more Kubernetes nodes, \
                 then pair it with `CLUSTER REPLICATE` ({keeps})"
            ),
        };
        let (summary, remedy) = if elsewhere {
            (
                format!(
                    "replica {replica} shares Kubernetes node {on} with its master {master}, \
                     which has another replica elsewhere"
                ),
                format!("nothing is at risk yet; to spread them, {repair}"),
            )
        } else {
            let slots = view
                .obs
                .get(&master)
                .and_then(PodState::myself)
                .map(|m| ranges_to_string(&m.slots))
                .unwrap_or_default();
            (
                format!(
                    "replica {replica} shares Kubernetes node {on} with its master {master}: \
                     losing {on} loses slots {slots}"
                ),
                repair,
            )
        };
        let draft = Draft {
            kind: CauseKind::ReplicaSameNode,
            summary,
            remedy,
            pods: vec![replica.clone(), master],
        };
        d.add(draft, |f| {
            f.kind == Kind::ReplicaSameNode && f.pod.as_deref() == Some(replica.as_str())
        });
    }
}
