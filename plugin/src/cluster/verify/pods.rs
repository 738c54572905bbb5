//! One pod at a time: its row of the status table, and what it says of its own state, its open
//! slots, its peers (links, addresses, failure flags), the pods it does not know and its role.

use super::names::Names;
use super::PodRow;
use crate::cluster::finding::{Finding, Kind};
use crate::cluster::nodes::{ranges_to_string, NodeLine};
use crate::cluster::observe::{Observation, PodState};
use crate::cluster::topology::Topology;

/// Checks the pods of one observation, collecting their problems and warnings and counting
/// masters (serving slots, or with replicas) and replicas.
pub(super) struct PodCheck<'a> {
    pub(super) topo: &'a Topology,
    pub(super) obs: &'a Observation,
    pub(super) names: &'a Names<'a>,
    pub(super) problems: Vec<Finding>,
    pub(super) warnings: Vec<Finding>,
    pub(super) masters: usize,
    pub(super) replicas: usize,
}

impl PodCheck<'_> {
    /// Every pod's row of the status table.
    pub(super) fn rows(&mut self) -> Vec<PodRow> {
        let obs = self.obs;
        obs.pods.iter().map(|p| self.row(p)).collect()
    }

    fn row(&mut self, p: &PodState) -> PodRow {
        let name = p.pod.name.as_str();
        let mut row = PodRow {
            name: name.to_string(),
            ip: p.pod.ip.clone(),
            node: p.pod.node.clone(),
            role: "unreachable".into(),
            master: None,
            slots: 0,
            slot_ranges: "-".into(),
            keys: None,
            link: "-".into(),
            pvc: p.pod.pvc.clone(),
            id: p.id.clone(),
        };
        let Some(me) = p.myself().filter(|_| p.ok()) else {
            return row;
        };
        row.keys = Some(p.keys);
        row.slots = me.slot_count();
        row.slot_ranges = ranges_to_string(&me.slots);
        self.state(p);
        self.open_slots(name, me);
        let mut links = Links::default();
        self.peers(p, &mut links);
        self.unknown_to(p, &mut links);
        self.role(p, me, &mut row, &mut links);
        row.link = links.cell();
        row
    }

    /// `cluster_state` other than `ok`.
    fn state(&mut self, p: &PodState) {
        let name = p.pod.name.as_str();
        if !p.state_ok() {
            let info = |key: &str| p.info.get(key).map(String::as_str).unwrap_or("?");
            self.problems.push(Finding::new(
                Some(name),
                Kind::StateNotOk,
                format!(
                    "cluster_state:{} (it knows {} node(s), sees {} slot(s) assigned, {} ok)",
                    info("cluster_state"),
                    info("cluster_known_nodes"),
                    info("cluster_slots_assigned"),
                    info("cluster_slots_ok"),
                ),
            ));
        }
    }

    /// Slots this pod is moving out or in.
    fn open_slots(&mut self, name: &str, me: &NodeLine) {
        let open = [
            (&me.migrating, "half-migrated to"),
            (&me.importing, "half-imported from"),
        ];
        for (slots, how) in open {
            for (slot, other) in slots {
                self.problems.push(
                    Finding::new(
                        Some(name),
                        Kind::OpenSlot,
                        format!("slot {slot} is {how} {}", self.names.name(other)),
                    )
                    .peer(self.names.pod(other))
                    .slots(slot.to_string()),
                );
            }
        }
    }

    /// What this pod says of its peers: handshakes, foreign nodes, stale addresses, dead links,
    /// failure flags.
    fn peers(&mut self, p: &PodState, links: &mut Links) {
        let name = p.pod.name.as_str();
        for n in p.nodes.iter().filter(|n| !n.is_myself()) {
            if n.in_handshake() {
                links.handshake += 1;
                self.problems.push(
                    Finding::new(
                        Some(name),
                        Kind::LinkDown,
                        format!("still in handshake with {}:{}", n.ip, n.port),
                    )
                    .peer(self.names.pod_at(&n.ip)),
                );
                continue;
            }
            let Some(peer) = self.names.pod(&n.id) else {
                self.problems.push(Finding::new(
                    Some(name),
                    Kind::UnknownNode,
                    format!(
                        "knows node {} at {}:{} ({}) which is none of the pods",
                        n.id,
                        n.ip,
                        n.port,
                        n.flags.join(",")
                    ),
                ));
                continue;
            };
            links.peers += 1;
            let want_ip = self.names.ip(peer);
            let stale = n.no_addr() || want_ip.is_some_and(|ip| ip != n.ip);
            if stale {
                links.stale += 1;
                self.problems.push(
                    Finding::new(
                        Some(name),
                        Kind::StaleAddress,
                        format!(
                            "has {peer} at {} but its pod IP is {}",
                            if n.no_addr() { "no address" } else { &n.ip },
                            want_ip.unwrap_or("unknown")
                        ),
                    )
                    .peer(Some(peer)),
                );
            }
            if !n.link_connected {
                if !stale {
                    links.down += 1;
                }
                self.problems.push(
                    Finding::new(
                        Some(name),
                        Kind::LinkDown,
                        format!("cluster bus link to {peer} is disconnected"),
                    )
                    .peer(Some(peer)),
                );
            }
            if n.failing() {
                let how = if n.has("fail") {
                    "fail"
                } else {
                    "fail? (pfail)"
                };
                self.problems.push(
                    Finding::new(
                        Some(name),
                        Kind::NodeFailing,
                        format!("sees {peer} as {how}"),
                    )
                    .peer(Some(peer)),
                );
            }
        }
    }

    /// The other pods this one does not know.
    fn unknown_to(&mut self, p: &PodState, links: &mut Links) {
        let name = p.pod.name.as_str();
        for other in self.obs.pods.iter().filter(|o| o.pod.name != name) {
            if let Some(oid) = &other.id {
                if p.view_of(oid).is_none() {
                    links.missing += 1;
                    self.problems.push(
                        Finding::new(
                            Some(name),
                            Kind::MissingNode,
                            format!("does not know {} (node {oid})", other.pod.name),
                        )
                        .peer(Some(&other.pod.name)),
                    );
                }
            }
        }
    }

    /// Its role: a master (with slots, or replicas), a replica (its replication link, its master's
    /// Kubernetes node), or neither.
    fn role(&mut self, p: &PodState, me: &NodeLine, row: &mut PodRow, links: &mut Links) {
        let name = p.pod.name.as_str();
        if me.is_master() {
            if me.slots.is_empty() {
                let has_replicas = self.obs.pods.iter().any(|o| {
                    o.myself().and_then(|m| m.master_id.as_deref()) == Some(me.id.as_str())
                });
                row.role = if has_replicas {
                    "master".into()
                } else {
                    "none".into()
                };
                if !has_replicas {
                    self.problems.push(Finding::new(
                        Some(name),
                        Kind::NotInCluster,
                        "is a master without slots or replicas".into(),
                    ));
                } else {
                    self.masters += 1;
                }
            } else {
                row.role = "master".into();
                self.masters += 1;
            }
        } else if me.is_replica() {
            row.role = "replica".into();
            self.replicas += 1;
            let master_id = me.master_id.clone().unwrap_or_default();
            let master = self.names.pod(&master_id).map(str::to_string);
            row.master = Some(
                master
                    .clone()
                    .unwrap_or_else(|| self.names.name(&master_id)),
            );
            if p.master_link_up == Some(false) {
                links.replication_down = true;
                self.problems.push(
                    Finding::new(
                        Some(name),
                        Kind::ReplicaLinkDown,
                        format!(
                            "replication from {} is not up (master_link_status:down)",
                            row.master.as_deref().unwrap_or("?")
                        ),
                    )
                    .peer(master.as_deref()),
                );
            }
            if let Some(m) = master.as_deref().and_then(|m| self.topo.pod(m)) {
                if m.node.is_some() && m.node == p.pod.node {
                    self.warnings.push(
                    Finding::new(
                        Some(name),
                        Kind::ReplicaSameNode,
                        format!(
                            "replicates {} on the same Kubernetes node {}: losing that node loses both",
                            m.name,
                            m.node.as_deref().unwrap_or("")
                        ),
                    )
                    .peer(Some(&m.name)),
                );
                }
            }
        }
    }
}

/// Tallies one pod's links for its LINK cell.
#[derive(Default)]
struct Links {
    peers: usize,
    stale: usize,
    down: usize,
    handshake: usize,
    missing: usize,
    replication_down: bool,
}

impl Links {
    fn cell(&self) -> String {
        let mut parts = Vec::new();
        if self.stale > 0 {
            parts.push(format!("{}/{} stale", self.stale, self.peers));
        }
        if self.down > 0 {
            parts.push(format!("{}/{} down", self.down, self.peers));
        }
        if self.handshake > 0 {
            parts.push(format!("{} handshake", self.handshake));
        }
        if self.missing > 0 {
            parts.push(format!("misses {}", self.missing));
        }
        if self.replication_down {
            parts.push("repl down".into());
        }
        if parts.is_empty() {
            "ok".into()
        } else {
            parts.join(", ")
        }
    }
}
