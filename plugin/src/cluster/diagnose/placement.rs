//! Replicas beside their master on one Kubernetes node, with the re-pairing that fixes each
//! master ([`crate::cluster::spread`]), which `kubectl redis apply` runs.

use std::collections::{BTreeMap, BTreeSet};

use super::ledger::{Diagnosis, Draft, Views};
use super::{list, CauseKind};
use crate::cluster::finding::Kind;
use crate::cluster::nodes::ranges_to_string;
use crate::cluster::observe::PodState;
use crate::cluster::spread::{respread, Repoint};

/// A replica on its master's Kubernetes node: losing the node loses the master's slots unless
/// another replica runs elsewhere. One cause per master, naming the moves that fix it when
/// there are some; a cluster on a single Kubernetes node is one cause.
pub(super) fn same_node(d: &mut Diagnosis, view: &Views) {
    let mut beside: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in d.unclaimed().filter(|f| f.kind == Kind::ReplicaSameNode) {
        if let (Some(replica), Some(master)) = (&f.pod, &f.peer) {
            beside
                .entry(master.clone())
                .or_default()
                .push(replica.clone());
        }
    }
    if beside.is_empty() {
        return;
    }
    let ours = |f: &crate::cluster::finding::Finding, master: &str, replicas: &[String]| {
        let pod = f.pod.as_deref().unwrap_or_default();
        (f.kind == Kind::ReplicaSameNode && replicas.iter().any(|r| r == pod))
            || (f.kind == Kind::ReplicasOnMasterNode && pod == master)
    };
    let node = |pod: &str| view.obs.get(pod).and_then(|p| p.pod.node.clone());
    let nodes: BTreeSet<String> = view
        .obs
        .pods
        .iter()
        .filter_map(|p| p.pod.node.clone())
        .collect();
    if let [only] = Vec::from_iter(&nodes).as_slice() {
        let draft = Draft {
            kind: CauseKind::ReplicaSameNode,
            summary: format!(
                "every pod runs on Kubernetes node {only}: each replica shares it with its \
                 master, and losing it loses the cluster"
            ),
            remedy: "run the pods on more Kubernetes nodes, then `kubectl redis apply -f SPEC` \
                     pairs replicas with masters on other nodes"
                .to_string(),
            pods: beside.values().flatten().cloned().collect(),
        };
        d.add(draft, |f| {
            matches!(f.kind, Kind::ReplicaSameNode | Kind::ReplicasOnMasterNode)
        });
        return;
    }
    let fix = respread(view.obs);
    for (master, replicas) in beside {
        let on = node(&master).unwrap_or_default();
        let who = if let [one] = replicas.as_slice() {
            format!("replica {one} shares")
        } else {
            format!("replicas {} share", list(&replicas))
        };
        let elsewhere = view
            .replicas_of(&master)
            .iter()
            .any(|r| node(r).is_some() && node(r).as_deref() != Some(on.as_str()));
        let (summary, remedy) = if elsewhere {
            (
                format!(
                    "{who} Kubernetes node {on} with its master {master}, which has another \
                     replica elsewhere"
                ),
                "nothing is at risk yet: losing the node, the master fails over to its other \
                 replica"
                    .to_string(),
            )
        } else {
            let slots = view
                .obs
                .get(&master)
                .and_then(PodState::myself)
                .map(|m| ranges_to_string(&m.slots))
                .unwrap_or_default();
            let moves: Vec<&Repoint> = fix
                .moves
                .iter()
                .filter(|m| m.to == master || m.from == master)
                .collect();
            let remedy = if fix.stuck.contains(&master) || moves.is_empty() {
                format!(
                    "no re-pairing of replicas puts one of {master}'s on another node: run the \
                     pods on more Kubernetes nodes (or spread them with a pod anti-affinity), \
                     then `kubectl redis apply -f SPEC` re-pairs them"
                )
            } else {
                let steps: Vec<String> = moves
                    .iter()
                    .map(|m| format!("{} replicates {}", m.replica, m.to))
                    .collect();
                format!(
                    "`kubectl redis apply -f SPEC` re-pairs replicas, one full sync at a time: {}",
                    steps.join(", then ")
                )
            };
            (
                format!(
                    "{who} Kubernetes node {on} with its master {master}: losing {on} loses \
                     slots {slots}"
                ),
                remedy,
            )
        };
        let mut pods = replicas.clone();
        pods.push(master.clone());
        let draft = Draft {
            kind: CauseKind::ReplicaSameNode,
            summary,
            remedy,
            pods,
        };
        d.add(draft, |f| ours(f, &master, &replicas));
    }
}
