//! What `verify` finds: one [`Finding`] per fact about one pod (or the whole cluster), each of a
//! stable [`Kind`]. `verify` makes them, `diagnose` groups them into causes, `status` prints them.

use serde::Serialize;

/// What a [`Finding`] is about: a stable, machine-readable name, kebab-case in JSON (the
/// strings `status -o json` has always written). Documented for consumers in
/// `plugin/schemas/status.schema.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The pod's Redis could not be asked: no pod IP yet, no connection, cluster mode off, or a
    /// command failed.
    Unreachable,
    /// Slots no master serves: unassigned, or owned by a master marked failed.
    UncoveredSlots,
    /// The pod's slot map differs from the one most pods report.
    SlotMapDisagrees,
    /// The pod's `cluster_state` is not `ok`.
    StateNotOk,
    /// A cluster bus link to a peer is disconnected, or still in handshake.
    LinkDown,
    /// The pod sees a peer as failing (`fail?`) or failed (`fail`).
    NodeFailing,
    /// The pod has a peer at an address that is not the peer's pod IP.
    StaleAddress,
    /// The pod knows a node that is none of the StatefulSet's pods.
    UnknownNode,
    /// The pod does not know one of the other pods.
    MissingNode,
    /// A master serving slots has no connected replica.
    NoReplica,
    /// A master serving slots has connected replicas, all on its own Kubernetes node, while
    /// re-pairing replicas would put one elsewhere (`apply` does). Where the pods' nodes leave
    /// no way, only the replicas' `replica-same-node` warnings remain.
    ReplicasOnMasterNode,
    /// A replica's replication link to its master is down.
    ReplicaLinkDown,
    /// A replica runs on the same Kubernetes node as its master.
    ReplicaSameNode,
    /// A master without slots or replicas: the pod is not part of the cluster.
    NotInCluster,
    /// A slot is half-migrated (`MIGRATING`) or half-imported (`IMPORTING`).
    OpenSlot,
    /// More or fewer masters serve slots than the spec asks for.
    Shape,
    /// The pod is on an older StatefulSet revision than the update revision: a roll is in
    /// progress (a warning).
    OldRevision,
}

impl Kind {
    /// Every kind, in the order above.
    pub const ALL: [Kind; 17] = [
        Kind::Unreachable,
        Kind::UncoveredSlots,
        Kind::SlotMapDisagrees,
        Kind::StateNotOk,
        Kind::LinkDown,
        Kind::NodeFailing,
        Kind::StaleAddress,
        Kind::UnknownNode,
        Kind::MissingNode,
        Kind::NoReplica,
        Kind::ReplicasOnMasterNode,
        Kind::ReplicaLinkDown,
        Kind::ReplicaSameNode,
        Kind::NotInCluster,
        Kind::OpenSlot,
        Kind::Shape,
        Kind::OldRevision,
    ];
}

/// One finding about one pod (or the cluster as a whole when `pod` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub pod: Option<String>,
    pub kind: Kind,
    /// The other pod it concerns: the peer of a link, the master of a replica, the replica a
    /// master lacks, the other end of an open slot, the failed owner of uncovered slots.
    pub peer: Option<String>,
    /// The slots it concerns, as ranges (`0-5460,7000`), for uncovered and open slots.
    pub slots: Option<String>,
    pub message: String,
}

impl Finding {
    pub(super) fn new(pod: Option<&str>, kind: Kind, message: String) -> Finding {
        Finding {
            pod: pod.map(str::to_string),
            kind,
            peer: None,
            slots: None,
            message,
        }
    }

    pub(super) fn peer(mut self, peer: Option<&str>) -> Finding {
        self.peer = peer.map(str::to_string);
        self
    }

    pub(super) fn slots(mut self, slots: String) -> Finding {
        self.slots = Some(slots);
        self
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.pod {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// `1 problem`, `3 problems`.
pub(crate) fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}
