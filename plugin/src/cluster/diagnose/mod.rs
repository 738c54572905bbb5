//! From findings to causes. One fault shows as many findings — after every pod restarted with
//! a new IP, six nodes report five stale peers, five dead links, replication down — so
//! [`diagnose`] names the fault once, counts what it explains and says what to do.
//!
//! Detectors run in order, each claiming the findings it explains: pods that do not answer,
//! stale addresses, a cluster not (fully) formed, open slots, replicas beside their master,
//! pods cut off from the cluster bus. After each, the symptoms follow their cause: a link,
//! failure flag, replication link, missing replica or missing introduction between two pods
//! belongs to the cause that already explains something between the same two pods (or that
//! one of them is down), and a `cluster_state` other than `ok` to the cause of unserved slots,
//! else to the cause of the pod's broken links. What no detector explains is grouped by kind.

mod detect;
mod ledger;
mod leftovers;
mod placement;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

use super::finding::Finding;
use super::observe::Observation;
use ledger::{Diagnosis, Views};

/// What a [`Cause`] is: a stable, machine-readable name, kebab-case in JSON. Documented for
/// consumers in `plugin/schemas/status.schema.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CauseKind {
    /// A pod's Redis does not answer, or the pod has no IP yet.
    PodDown,
    /// A pod runs Redis with `cluster-enabled no`.
    ClusterModeOff,
    /// Pods came back with new IPs and their peers still have the old ones.
    StaleAddresses,
    /// No pod knows another or serves a slot: the cluster was never formed.
    NotFormed,
    /// Masters without slots or replicas: pods not part of the cluster yet.
    NotInCluster,
    /// A slot is half-moved between two masters.
    OpenSlot,
    /// A replica shares a Kubernetes node with its master.
    ReplicaSameNode,
    /// A pod answers, but most of its peers cannot reach it over the cluster bus.
    Partitioned,
    // The rest group the findings of one kind that no cause above explains, under the
    // findings' kind.
    /// Slots without a master, or served by a failed master that answers.
    UncoveredSlots,
    /// Pods whose slot map differs from the majority's.
    SlotMapDisagrees,
    /// Pods whose `cluster_state` is not `ok`.
    StateNotOk,
    /// Cluster bus links down between pods that otherwise reach each other.
    LinkDown,
    /// Pods seen failing by some of their peers.
    NodeFailing,
    /// Nodes that are none of the StatefulSet's pods: another cluster's nodes.conf, or a pod
    /// that lost its volume.
    UnknownNode,
    /// Pods that do not know each other: introductions (`CLUSTER MEET`) missing.
    MissingNode,
    /// Masters without a connected replica, and no free pod to become one.
    NoReplica,
    /// Replication links down, e.g. while a full sync runs.
    ReplicaLinkDown,
    /// More or fewer masters serve slots than the spec asks for.
    Shape,
    /// Pods on an old StatefulSet revision: a roll started and has not finished.
    RollInProgress,
}

impl CauseKind {
    /// Every kind, in the order above.
    pub const ALL: [CauseKind; 19] = [
        CauseKind::PodDown,
        CauseKind::ClusterModeOff,
        CauseKind::StaleAddresses,
        CauseKind::NotFormed,
        CauseKind::NotInCluster,
        CauseKind::OpenSlot,
        CauseKind::ReplicaSameNode,
        CauseKind::Partitioned,
        CauseKind::UncoveredSlots,
        CauseKind::SlotMapDisagrees,
        CauseKind::StateNotOk,
        CauseKind::LinkDown,
        CauseKind::NodeFailing,
        CauseKind::UnknownNode,
        CauseKind::MissingNode,
        CauseKind::NoReplica,
        CauseKind::ReplicaLinkDown,
        CauseKind::Shape,
        CauseKind::RollInProgress,
    ];
}

/// Whether a cause makes the cluster unhealthy or only deserves attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Problem,
    Warning,
}

/// One fault, what it explains, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    pub kind: CauseKind,
    /// `problem` when it explains at least one problem, else `warning`.
    pub severity: Severity,
    /// What is wrong, in one line.
    pub summary: String,
    /// What to do about it.
    pub remedy: String,
    /// The pods it is about.
    pub pods: Vec<String>,
    /// Indexes into the report's `problems` that this cause explains.
    pub problems: Vec<usize>,
    /// Indexes into the report's `warnings` that this cause explains.
    pub warnings: Vec<usize>,
}

/// Groups the report's problems and warnings into causes: every finding belongs to exactly
/// one, problem causes come first. `pod_of` maps node ids to pods, down pods included.
pub(super) fn diagnose(
    obs: &Observation,
    pod_of: &BTreeMap<String, String>,
    problems: &[Finding],
    warnings: &[Finding],
) -> Vec<Cause> {
    let mut d = Diagnosis {
        findings: problems.iter().chain(warnings).collect(),
        problems: problems.len(),
        owner: vec![None; problems.len() + warnings.len()],
        drafts: Vec::new(),
    };
    let view = Views { obs, pod_of };
    for p in obs.pods.iter().filter(|p| !p.ok()) {
        detect::pod_down(&mut d, &view, p);
    }
    detect::stale_addresses(&mut d, obs.pods.len());
    detect::not_formed(&mut d, obs);
    detect::open_slots(&mut d, obs);
    placement::same_node(&mut d, &view);
    detect::partitioned(&mut d, obs);
    leftovers::leftovers(&mut d);
    d.finish()
}

/// The pods that answered.
pub(super) fn answering(obs: &Observation) -> Vec<&str> {
    obs.pods
        .iter()
        .filter(|p| p.ok())
        .map(|p| p.pod.name.as_str())
        .collect()
}

/// `a`, `a and b`, `a, b and c`, `a, b, c and 4 more`.
pub(super) fn list<S: AsRef<str>>(items: &[S]) -> String {
    const SHOWN: usize = 3;
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        _ if items.len() > SHOWN + 1 => format!(
            "{} and {} more",
            items[..SHOWN].join(", "),
            items.len() - SHOWN
        ),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
