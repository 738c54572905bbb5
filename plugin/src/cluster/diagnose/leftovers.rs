//! What no detector explained, grouped by kind into causes of their own.

use std::collections::{BTreeMap, BTreeSet};

use super::ledger::{Diagnosis, Draft};
use super::{list, CauseKind};
use crate::cluster::finding::{count, Finding, Kind};

/// Whatever no detector explained, grouped by kind (uncovered slots one by one: each finding
/// already sums up a range).
pub(super) fn leftovers(d: &mut Diagnosis) {
    let mut by_kind: BTreeMap<Kind, Vec<&Finding>> = BTreeMap::new();
    for f in d.unclaimed() {
        by_kind.entry(f.kind).or_default().push(f);
    }
    for (kind, findings) in by_kind {
        let groups: Vec<Vec<&Finding>> = if kind == Kind::UncoveredSlots {
            findings.iter().map(|f| vec![*f]).collect()
        } else {
            vec![findings]
        };
        for group in groups {
            if let Some(draft) = leftover(kind, &group) {
                d.add(draft, |f| group.iter().any(|g| std::ptr::eq(*g, f)));
            }
        }
    }
}

/// The cause of findings of one kind that no detector explained; `None` for the kinds their
/// detectors always claim.
fn leftover(kind: Kind, findings: &[&Finding]) -> Option<Draft> {
    let distinct = |names: Vec<&str>| -> Vec<String> {
        let set: BTreeSet<&str> = names.into_iter().collect();
        set.into_iter().map(str::to_string).collect()
    };
    let pods = distinct(
        findings
            .iter()
            .flat_map(|f| [f.pod.as_deref(), f.peer.as_deref()])
            .flatten()
            .collect(),
    );
    let reporters = distinct(findings.iter().filter_map(|f| f.pod.as_deref()).collect());
    // `a disagrees`, `a and b disagree`.
    let they = |singular: &str, plural: &str| {
        let verb = if reporters.len() == 1 {
            singular
        } else {
            plural
        };
        format!("{} {verb}", list(&reporters))
    };
    let pairs = || {
        let pairs: Vec<String> = findings
            .iter()
            .map(|f| {
                let end = |p: &Option<String>| p.clone().unwrap_or_else(|| "?".into());
                format!("{} → {}", end(&f.pod), end(&f.peer))
            })
            .collect();
        list(&pairs)
    };
    let bus = "the cluster bus port (16379, `gossip`) must be open between all pods: check \
               NetworkPolicies and firewalls";
    let (kind, summary, remedy) = match kind {
        Kind::UncoveredSlots => (
            CauseKind::UncoveredSlots,
            findings[0].message.clone(),
            if findings[0].peer.is_none() {
                "`kubectl redis apply -f SPEC` assigns them"
            } else {
                "a replica takes over once the masters agree it has failed \
                 (cluster-node-timeout); without one, the master must come back"
            },
        ),
        Kind::SlotMapDisagrees => (
            CauseKind::SlotMapDisagrees,
            format!(
                "{} with the majority's slot map",
                they("disagrees", "disagree")
            ),
            "this usually settles within seconds, as gossip spreads the newest config epoch; \
             if it persists, compare `CLUSTER NODES` on these pods",
        ),
        Kind::StateNotOk => (
            CauseKind::StateNotOk,
            format!(
                "{} a cluster_state other than ok",
                they("reports", "report")
            ),
            "`CLUSTER INFO` on them says how many slots and nodes they see",
        ),
        Kind::LinkDown => (
            CauseKind::LinkDown,
            format!(
                "{} down: {}",
                count(findings.len(), "cluster bus link"),
                pairs()
            ),
            bus,
        ),
        Kind::NodeFailing => (
            CauseKind::NodeFailing,
            format!(
                "{} failing (who sees whom): {}",
                count(findings.len(), "node is seen"),
                pairs()
            ),
            bus,
        ),
        Kind::UnknownNode => (
            CauseKind::UnknownNode,
            format!(
                "{} nodes that are none of this StatefulSet's pods",
                they("knows", "know")
            ),
            "their nodes.conf holds another cluster's nodes, or a pod lost its volume and came \
             back as a new node; `kubectl redis apply` refuses to change such a cluster: \
             inspect /data/nodes.conf, and `CLUSTER FORGET` what does not belong",
        ),
        Kind::MissingNode => (
            CauseKind::MissingNode,
            format!(
                "{} missing (who does not know whom): {}",
                count(findings.len(), "introduction"),
                pairs()
            ),
            "`kubectl redis apply -f SPEC` introduces them (CLUSTER MEET)",
        ),
        Kind::NoReplica => (
            CauseKind::NoReplica,
            if reporters.len() == 1 {
                format!("master {} has no connected replica", reporters[0])
            } else {
                format!("masters {} have no connected replica", list(&reporters))
            },
            "`kubectl redis apply -f SPEC` makes free pods replicas; with none free, raise \
             replicasPerMaster (a master that comes back after a failover rejoins as a replica \
             by itself)",
        ),
        Kind::ReplicaLinkDown => (
            CauseKind::ReplicaLinkDown,
            format!("replication is down on {}", list(&reporters)),
            "a full sync may still be running (large data sets take a while); `INFO \
             replication` on the replica says more",
        ),
        Kind::Shape => (
            CauseKind::Shape,
            findings
                .iter()
                .map(|f| f.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            "`kubectl redis apply -f SPEC` adds masters, or drains the extra ones, moving slots \
             with their keys",
        ),
        // Their detectors above claim every one of these.
        Kind::Unreachable
        | Kind::StaleAddress
        | Kind::NotInCluster
        | Kind::OpenSlot
        | Kind::ReplicaSameNode
        | Kind::ReplicasOnMasterNode => return None,
        // Added after diagnosis, with its own cause (cluster::roll::note_roll).
        Kind::OldRevision => return None,
    };
    Some(Draft {
        kind,
        summary,
        remedy: remedy.to_string(),
        pods,
    })
}
