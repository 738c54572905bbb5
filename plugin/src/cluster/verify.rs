//! Verify a cluster from one observation: plain data for `status` (text and `-o json`) and for the
//! formation wait. Every problem names the pod, the reason and, where there is one, the peer it
//! concerns; [`super::diagnose`] groups them into causes with their remedy.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::diagnose::{diagnose, Cause};
use super::nodes::{ranges_to_string, to_ranges, SLOTS};
use super::observe::Observation;
use super::topology::Topology;

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
    /// A master serving slots has no connected replica (on another Kubernetes node, when the
    /// cluster spans several).
    NoReplica,
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
    pub const ALL: [Kind; 16] = [
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
    fn new(pod: Option<&str>, kind: Kind, message: String) -> Finding {
        Finding {
            pod: pod.map(str::to_string),
            kind,
            peer: None,
            slots: None,
            message,
        }
    }

    fn peer(mut self, peer: Option<&str>) -> Finding {
        self.peer = peer.map(str::to_string);
        self
    }

    fn slots(mut self, slots: String) -> Finding {
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

/// One row of the status table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodRow {
    pub name: String,
    pub ip: Option<String>,
    pub node: Option<String>,
    /// `master`, `replica`, `none` (not in the cluster) or `unreachable`.
    pub role: String,
    /// For a replica, the pod it replicates.
    pub master: Option<String>,
    pub slots: usize,
    pub slot_ranges: String,
    pub keys: Option<u64>,
    /// `ok`, or a short account of its links: `5/5 stale` (peer addresses that are not the
    /// peers' pod IPs), `2/5 down` (cluster bus links disconnected), `1 handshake`,
    /// `misses 2` (pods it does not know), `repl down` (a replica's replication link).
    pub link: String,
    pub pvc: String,
    pub id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub healthy: bool,
    /// The one-line verdict printed first.
    pub headline: String,
    pub masters: usize,
    pub replicas: usize,
    pub slots_covered: usize,
    /// The problems and warnings grouped by what causes them, each with its remedy: problem
    /// causes first.
    pub causes: Vec<Cause>,
    pub pods: Vec<PodRow>,
    /// Failures: any of these makes verify fail (exit 1).
    pub problems: Vec<Finding>,
    pub warnings: Vec<Finding>,
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

/// Judge the cluster as observed.
pub fn verify(topo: &Topology, obs: &Observation) -> Report {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let pod_of = pods_by_id(obs);
    let name_of = |id: &str| {
        pod_of
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("node {}", id.chars().take(8).collect::<String>()))
    };
    let ip_of: BTreeMap<&str, &str> = obs
        .pods
        .iter()
        .filter_map(|p| Some((p.pod.name.as_str(), p.pod.ip.as_deref()?)))
        .collect();
    let pod_at: BTreeMap<&str, &str> = ip_of.iter().map(|(pod, ip)| (*ip, *pod)).collect();

    for p in &obs.pods {
        if let Some(e) = &p.error {
            problems.push(Finding::new(
                Some(&p.pod.name),
                Kind::Unreachable,
                e.to_string(),
            ));
        }
    }
    let live: Vec<_> = obs.pods.iter().filter(|p| p.ok()).collect();

    // Slot maps: the most common one is the reference; others are named with the difference.
    let maps: Vec<Vec<Option<&str>>> = live.iter().map(|p| p.slot_map()).collect();
    let mut counts: BTreeMap<&Vec<Option<&str>>, usize> = BTreeMap::new();
    for m in &maps {
        *counts.entry(m).or_default() += 1;
    }
    let reference = counts
        .iter()
        .max_by_key(|(_, c)| **c)
        .map(|(m, _)| (*m).clone());
    let mut slots_covered = 0;
    if let Some(reference) = &reference {
        // Covered: owned by a node no pod considers failed.
        let failing: BTreeSet<&str> = live
            .iter()
            .flat_map(|p| {
                p.nodes
                    .iter()
                    .filter(|n| n.has("fail"))
                    .map(|n| n.id.as_str())
            })
            .collect();
        let uncovered: Vec<u16> = (0..SLOTS)
            .filter(|s| reference[*s as usize].is_none())
            .collect();
        let mut failed: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
        for s in 0..SLOTS {
            if let Some(owner) = reference[s as usize].filter(|o| failing.contains(o)) {
                failed.entry(owner).or_default().push(s);
            }
        }
        slots_covered =
            SLOTS as usize - uncovered.len() - failed.values().map(Vec::len).sum::<usize>();
        if !uncovered.is_empty() {
            let ranges = ranges_to_string(&to_ranges(uncovered.iter().copied()));
            problems.push(
                Finding::new(
                    None,
                    Kind::UncoveredSlots,
                    format!("{} slots have no master: {ranges}", uncovered.len()),
                )
                .slots(ranges),
            );
        }
        for (owner, slots) in failed {
            let ranges = ranges_to_string(&to_ranges(slots.iter().copied()));
            problems.push(
                Finding::new(
                    None,
                    Kind::UncoveredSlots,
                    format!(
                        "{} slots are served by failed master {}: {ranges}",
                        slots.len(),
                        name_of(owner)
                    ),
                )
                .peer(pod_of.get(owner).map(String::as_str))
                .slots(ranges),
            );
        }
        for (p, m) in live.iter().zip(&maps) {
            if m == reference {
                continue;
            }
            let diff: Vec<u16> = (0..SLOTS)
                .filter(|s| m[*s as usize] != reference[*s as usize])
                .collect();
            let s0 = diff[0] as usize;
            let who = |o: Option<&str>| o.map(&name_of).unwrap_or_else(|| "nobody".into());
            problems.push(Finding::new(
                Some(&p.pod.name),
                Kind::SlotMapDisagrees,
                format!(
                    "its slot map differs from the majority's in {} slots ({}): e.g. slot {s0} is {} here, {} elsewhere",
                    diff.len(),
                    ranges_to_string(&to_ranges(diff.iter().copied().take(2000))),
                    who(m[s0]),
                    who(reference[s0])
                ),
            ));
        }
    }

    let distinct_nodes: BTreeSet<String> = topo
        .pods
        .iter()
        .map(|p| p.node.clone().unwrap_or_else(|| format!("?{}", p.name)))
        .collect();
    let mut rows = Vec::new();
    let mut masters = 0;
    let mut replicas = 0;
    for p in &obs.pods {
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
            rows.push(row);
            continue;
        };
        row.keys = Some(p.keys);
        row.slots = me.slot_count();
        row.slot_ranges = ranges_to_string(&me.slots);
        let mut links = Links::default();
        if !p.state_ok() {
            let info = |key: &str| p.info.get(key).map(String::as_str).unwrap_or("?");
            problems.push(Finding::new(
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
        let open = [
            (&me.migrating, "half-migrated to"),
            (&me.importing, "half-imported from"),
        ];
        for (slots, how) in open {
            for (slot, other) in slots {
                problems.push(
                    Finding::new(
                        Some(name),
                        Kind::OpenSlot,
                        format!("slot {slot} is {how} {}", name_of(other)),
                    )
                    .peer(pod_of.get(other).map(String::as_str))
                    .slots(slot.to_string()),
                );
            }
        }
        for n in p.nodes.iter().filter(|n| !n.is_myself()) {
            if n.in_handshake() {
                links.handshake += 1;
                problems.push(
                    Finding::new(
                        Some(name),
                        Kind::LinkDown,
                        format!("still in handshake with {}:{}", n.ip, n.port),
                    )
                    .peer(pod_at.get(n.ip.as_str()).copied()),
                );
                continue;
            }
            let Some(peer) = pod_of.get(&n.id) else {
                problems.push(Finding::new(
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
            let want_ip = ip_of.get(peer.as_str()).copied();
            let stale = n.no_addr() || want_ip.is_some_and(|ip| ip != n.ip);
            if stale {
                links.stale += 1;
                problems.push(
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
                problems.push(
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
                problems.push(
                    Finding::new(
                        Some(name),
                        Kind::NodeFailing,
                        format!("sees {peer} as {how}"),
                    )
                    .peer(Some(peer)),
                );
            }
        }
        for other in obs.pods.iter().filter(|o| o.pod.name != name) {
            if let Some(oid) = &other.id {
                if p.view_of(oid).is_none() {
                    links.missing += 1;
                    problems.push(
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
        if me.is_master() {
            if me.slots.is_empty() {
                let has_replicas = obs.pods.iter().any(|o| {
                    o.myself().and_then(|m| m.master_id.as_deref()) == Some(me.id.as_str())
                });
                row.role = if has_replicas {
                    "master".into()
                } else {
                    "none".into()
                };
                if !has_replicas {
                    problems.push(Finding::new(
                        Some(name),
                        Kind::NotInCluster,
                        "is a master without slots or replicas".into(),
                    ));
                } else {
                    masters += 1;
                }
            } else {
                row.role = "master".into();
                masters += 1;
            }
        } else if me.is_replica() {
            row.role = "replica".into();
            replicas += 1;
            let master_id = me.master_id.clone().unwrap_or_default();
            let master = pod_of.get(&master_id).cloned();
            row.master = Some(master.clone().unwrap_or_else(|| name_of(&master_id)));
            if p.master_link_up == Some(false) {
                links.replication_down = true;
                problems.push(
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
            if let Some(m) = master.as_deref().and_then(|m| topo.pod(m)) {
                if m.node.is_some() && m.node == p.pod.node {
                    warnings.push(
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
        row.link = links.cell();
        rows.push(row);
    }

    // Every master that serves slots needs a replica that is connected, on another node if the
    // cluster spans more than one.
    for p in &live {
        let Some(me) = p.myself() else { continue };
        if !me.is_master() || me.slots.is_empty() {
            continue;
        }
        let reps: Vec<_> = live
            .iter()
            .filter(|o| o.myself().and_then(|m| m.master_id.as_deref()) == Some(me.id.as_str()))
            .collect();
        // Replicas that did not answer, as this master knows them.
        let down: Vec<&str> = p
            .nodes
            .iter()
            .filter(|n| n.master_id.as_deref() == Some(me.id.as_str()))
            .filter_map(|n| pod_of.get(&n.id))
            .filter(|r| obs.get(r).is_some_and(|o| !o.ok()))
            .map(String::as_str)
            .collect();
        let connected: Vec<_> = reps
            .iter()
            .filter(|o| o.master_link_up == Some(true))
            .collect();
        let names = |pods: &[&str]| pods.join(", ");
        if connected.is_empty() {
            let syncing: Vec<&str> = reps.iter().map(|o| o.pod.name.as_str()).collect();
            let (message, peer) = match (syncing.as_slice(), down.as_slice()) {
                ([], []) => ("master has no replica".to_string(), None),
                ([], down) => (
                    format!("master has no connected replica ({} down)", names(down)),
                    down.first(),
                ),
                (syncing, _) => (
                    format!(
                        "master has no connected replica ({} not in sync yet)",
                        names(syncing)
                    ),
                    syncing.first(),
                ),
            };
            problems.push(
                Finding::new(Some(&p.pod.name), Kind::NoReplica, message).peer(peer.copied()),
            );
        } else if distinct_nodes.len() > 1
            && connected
                .iter()
                .all(|o| o.pod.node.is_some() && o.pod.node == p.pod.node)
        {
            problems.push(
                Finding::new(
                    Some(&p.pod.name),
                    Kind::NoReplica,
                    format!(
                        "master has no connected replica on another Kubernetes node (all on {})",
                        p.pod.node.as_deref().unwrap_or("?")
                    ),
                )
                .peer(Some(&connected[0].pod.name)),
            );
        }
    }
    if masters != topo.masters && problems.is_empty() {
        warnings.push(Finding::new(
            None,
            Kind::Shape,
            format!(
                "{masters} masters serve slots, the spec asks for {}",
                topo.masters
            ),
        ));
    }

    let causes = diagnose(obs, &pod_of, &problems, &warnings);
    let healthy = problems.is_empty();
    let summary =
        format!("{masters} masters, {replicas} replicas, {slots_covered}/{SLOTS} slots covered");
    let headline = if healthy {
        match warnings.len() {
            0 => format!("Cluster healthy: {summary}"),
            n => format!("Cluster healthy: {summary} ({})", count(n, "warning")),
        }
    } else {
        let problem_causes = causes.iter().filter(|c| !c.problems.is_empty()).count();
        format!(
            "Cluster unhealthy ({}, {}): {summary}",
            count(problem_causes, "cause"),
            count(problems.len(), "problem")
        )
    };
    Report {
        healthy,
        headline,
        masters,
        replicas,
        slots_covered,
        causes,
        pods: rows,
        problems,
        warnings,
    }
}

/// `1 problem`, `3 problems`.
pub(crate) fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{
        cluster, fresh, half_migrated, id, lines, master_down, nodes_text, observation,
        replica_beside_master, replica_missing, restarted, seed, seed_lines, topology, Pod,
    };
    use super::*;

    /// `(pod ordinal or None for the cluster, kind, how many)`.
    type Want = Vec<(Option<u32>, Kind, usize)>;

    fn each(pods: impl IntoIterator<Item = u32>, kind: Kind, count: usize) -> Want {
        pods.into_iter().map(|n| (Some(n), kind, count)).collect()
    }

    fn tally(findings: &[Finding]) -> BTreeMap<(Option<String>, Kind), usize> {
        let mut out = BTreeMap::new();
        for f in findings {
            *out.entry((f.pod.clone(), f.kind)).or_default() += 1;
        }
        out
    }

    fn wanted(want: &Want) -> BTreeMap<(Option<String>, Kind), usize> {
        want.iter()
            .map(|(n, kind, count)| ((n.map(|n| format!("redis-cluster-{n}")), *kind), *count))
            .collect()
    }

    #[test]
    fn verify_cases() {
        struct Case {
            name: &'static str,
            pods: Vec<Pod>,
            /// The spec's shape: masters, replicas per master.
            shape: (usize, usize),
            problems: Want,
            warnings: Want,
            /// Fragments of the headline and the findings' text.
            says: Vec<String>,
        }
        let says = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases =
            vec![
            Case {
                name: "a healthy cluster",
                pods: seed(),
                shape: (3, 1),
                problems: vec![],
                warnings: vec![],
                says: says(&["Cluster healthy: 3 masters, 3 replicas, 16384/16384 slots covered"]),
            },
            Case {
                name: "a fresh, unformed cluster",
                pods: fresh(),
                shape: (3, 1),
                problems: [
                    vec![(None, Kind::UncoveredSlots, 1)],
                    each(0..6, Kind::StateNotOk, 1),
                    each(0..6, Kind::MissingNode, 5),
                    each(0..6, Kind::NotInCluster, 1),
                ]
                .concat(),
                warnings: vec![],
                says: says(&[
                    "Cluster unhealthy (1 cause, 43 problems): 0 masters, 0 replicas, 0/16384 \
                     slots covered",
                    "16384 slots have no master: 0-16383",
                    "redis-cluster-0: cluster_state:fail (it knows 1 node(s), sees 0 slot(s) \
                     assigned, 0 ok)",
                    "redis-cluster-5: is a master without slots or replicas",
                ]),
            },
            Case {
                name: "a half-migrated slot",
                pods: half_migrated(),
                shape: (3, 1),
                problems: [each([0, 1], Kind::OpenSlot, 1)].concat(),
                warnings: vec![],
                says: says(&[
                    "redis-cluster-0: slot 5460 is half-migrated to redis-cluster-1",
                    "redis-cluster-1: slot 5460 is half-imported from redis-cluster-0",
                    "3 masters, 3 replicas, 16384/16384 slots covered",
                ]),
            },
            Case {
                name: "every pod restarted with a new IP",
                pods: restarted(),
                shape: (3, 1),
                problems: [
                    each(0..6, Kind::StaleAddress, 5),
                    each(0..6, Kind::LinkDown, 5),
                    each(3..6, Kind::ReplicaLinkDown, 1),
                    each(0..3, Kind::NoReplica, 1),
                ]
                .concat(),
                warnings: vec![],
                says: says(&[
                    "redis-cluster-0: has redis-cluster-1 at 10.0.0.11 but its pod IP is \
                     10.0.1.11",
                    "redis-cluster-5: has redis-cluster-4 at 10.0.0.14 but its pod IP is \
                     10.0.1.14",
                    "redis-cluster-0: master has no connected replica (redis-cluster-3 not in \
                     sync yet)",
                ]),
            },
            Case {
                name: "the same cluster once the MEETs healed it: nothing stale",
                pods: {
                    let mut view = seed_lines();
                    for l in &mut view {
                        l.ip = format!("10.0.1.{}", 10 + l.node);
                    }
                    let mut pods = cluster(&view);
                    for p in &mut pods {
                        p.info.ip = Some(format!("10.0.1.{}", 10 + p.info.ordinal));
                    }
                    pods
                },
                shape: (3, 1),
                problems: vec![],
                warnings: vec![],
                says: says(&["Cluster healthy"]),
            },
            Case {
                name: "a master down, its replica not promoted yet",
                pods: master_down(false),
                shape: (3, 1),
                problems: [
                    vec![
                        (Some(0), Kind::Unreachable, 1),
                        (None, Kind::UncoveredSlots, 1),
                        (Some(3), Kind::ReplicaLinkDown, 1),
                    ],
                    each(1..6, Kind::LinkDown, 1),
                    each(1..6, Kind::NodeFailing, 1),
                    each(1..6, Kind::StateNotOk, 1),
                ]
                .concat(),
                warnings: vec![],
                says: says(&[
                    "Cluster unhealthy (1 cause, 18 problems): 2 masters, 3 replicas, 10923/16384 \
                     slots covered",
                    "redis-cluster-0: unreachable via direct: connection refused",
                    "5461 slots are served by failed master redis-cluster-0: 0-5460",
                    "redis-cluster-4: sees redis-cluster-0 as fail",
                    "redis-cluster-1: cluster bus link to redis-cluster-0 is disconnected",
                    "redis-cluster-3: replication from redis-cluster-0 is not up",
                ]),
            },
            Case {
                name: "a master down, its replica promoted",
                pods: master_down(true),
                shape: (3, 1),
                problems: [
                    vec![(Some(0), Kind::Unreachable, 1), (Some(3), Kind::NoReplica, 1)],
                    each(1..6, Kind::LinkDown, 1),
                    each(1..6, Kind::NodeFailing, 1),
                ]
                .concat(),
                warnings: vec![],
                says: says(&[
                    "Cluster unhealthy (2 causes, 12 problems): 3 masters, 2 replicas, \
                     16384/16384 slots covered",
                    "redis-cluster-3: master has no replica",
                    "redis-cluster-2: sees redis-cluster-0 as fail",
                ]),
            },
            Case {
                name: "a replica recreated, no IP yet",
                pods: replica_missing(),
                shape: (3, 1),
                problems: [
                    vec![(Some(4), Kind::Unreachable, 1), (Some(1), Kind::NoReplica, 1)],
                    each([0, 1, 2, 3, 5], Kind::LinkDown, 1),
                    each([0, 1, 2, 3, 5], Kind::NodeFailing, 1),
                ]
                .concat(),
                warnings: vec![],
                says: says(&[
                    "redis-cluster-4: no pod IP yet",
                    "redis-cluster-1: master has no connected replica (redis-cluster-4 down)",
                    "redis-cluster-0: sees redis-cluster-4 as fail",
                ]),
            },
            Case {
                name: "the only replica beside its master on one Kubernetes node",
                pods: replica_beside_master(),
                shape: (3, 1),
                problems: each([0], Kind::NoReplica, 1),
                warnings: each([3], Kind::ReplicaSameNode, 1),
                says: says(&[
                    "redis-cluster-0: master has no connected replica on another Kubernetes node \
                     (all on node-a)",
                    "redis-cluster-3: replicates redis-cluster-0 on the same Kubernetes node \
                     node-a: losing that node loses both",
                ]),
            },
            Case {
                name: "a replica beside its master while another replica is elsewhere",
                pods: {
                    let pairs = [(3, 0), (4, 1), (5, 2), (6, 0), (7, 1), (8, 2)];
                    let mut pods = cluster(&lines(&[0, 1, 2], &pairs));
                    pods[3].info.node = Some("node-a".into());
                    pods
                },
                shape: (3, 2),
                problems: vec![],
                warnings: each([3], Kind::ReplicaSameNode, 1),
                says: says(&["Cluster healthy: 3 masters, 6 replicas"]),
            },
            Case {
                name: "two masters claim one slot (views disagree)",
                pods: {
                    let mut pods = seed();
                    let mut view = seed_lines();
                    view[0].slots = "0-5459".into();
                    view[1].slots = "5460-10922".into();
                    pods[1].nodes = nodes_text(1, &view);
                    pods
                },
                shape: (3, 1),
                problems: each([1], Kind::SlotMapDisagrees, 1),
                warnings: vec![],
                says: says(&[
                    "redis-cluster-1: its slot map differs from the majority's in 1 slots (5460): \
                     e.g. slot 5460 is redis-cluster-1 here, redis-cluster-0 elsewhere",
                ]),
            },
            Case {
                name: "a node none of the pods is",
                pods: {
                    let mut pods = seed();
                    pods[2]
                        .nodes
                        .push_str("$e 10.9.9.9:6379@16379 master - 0 1700000000000 9 connected\n");
                    pods
                },
                shape: (3, 1),
                problems: each([2], Kind::UnknownNode, 1),
                warnings: vec![],
                says: vec![format!(
                    "redis-cluster-2: knows node {} at 10.9.9.9:6379 (master) which is none of the \
                     pods",
                    id(14)
                )],
            },
        ];
        for case in cases {
            let topo = topology(&case.pods, case.shape.0, case.shape.1);
            let report = verify(&topo, &observation(&case.pods));
            assert_eq!(
                tally(&report.problems),
                wanted(&case.problems),
                "{}: problems",
                case.name
            );
            assert_eq!(
                tally(&report.warnings),
                wanted(&case.warnings),
                "{}: warnings",
                case.name
            );
            assert_eq!(report.healthy, case.problems.is_empty(), "{}", case.name);
            let text: String = std::iter::once(report.headline.clone())
                .chain(
                    report
                        .problems
                        .iter()
                        .chain(&report.warnings)
                        .map(Finding::to_string),
                )
                .collect::<Vec<_>>()
                .join("\n");
            for part in &case.says {
                assert!(
                    text.contains(part.as_str()),
                    "{}: lacks {part:?} in\n{text}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn rows_name_roles_masters_and_links() {
        let pods = master_down(false);
        let report = verify(&topology(&pods, 3, 1), &observation(&pods));
        let row = |n: usize| &report.pods[n];
        assert_eq!(row(0).role, "unreachable");
        assert_eq!(row(0).id, None);
        assert_eq!(row(3).role, "replica");
        assert_eq!(row(3).master.as_deref(), Some("redis-cluster-0"));
        assert_eq!(row(3).link, "1/5 down, repl down");
        assert_eq!(row(1).slot_ranges, "5461-10922");
        assert_eq!(row(1).slots, 5462);
        assert_eq!(row(1).keys, Some(0));
    }
}
