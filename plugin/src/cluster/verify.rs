//! Verify a cluster from one observation: plain data for `status` (text and `-o json`) and for the
//! formation wait. Every problem names the pod and the reason.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::nodes::{ranges_to_string, to_ranges, SLOTS};
use super::observe::Observation;
use super::topology::Topology;

/// One finding about one pod (or the cluster as a whole when `pod` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub pod: Option<String>,
    /// Stable machine-readable kind: `unreachable`, `uncovered-slots`, `slot-map-disagrees`,
    /// `state-not-ok`, `link-down`, `node-failing`, `stale-address`, `unknown-node`, `missing-node`,
    /// `no-replica`, `replica-link-down`, `replica-same-node`, `not-in-cluster`, `open-slot`, `shape`.
    pub kind: String,
    pub message: String,
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
    /// `ok`, or what is wrong with its links (cluster bus, replication).
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
    pub pods: Vec<PodRow>,
    /// Failures: any of these makes verify fail (exit 1).
    pub problems: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

fn finding(pod: Option<&str>, kind: &str, message: String) -> Finding {
    Finding {
        pod: pod.map(str::to_string),
        kind: kind.into(),
        message,
    }
}

/// Judge the cluster as observed.
pub fn verify(topo: &Topology, obs: &Observation) -> Report {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut pod_of = obs.pod_of_id();
    // A pod that did not answer gave no `myself` line, so no id: know it by the one id its peers
    // have at its IP, or their lines about it would call a pod that is down a foreign node.
    for p in obs.pods.iter().filter(|p| p.id.is_none()) {
        let Some(ip) = p.pod.ip.as_deref() else {
            continue;
        };
        let ids: BTreeSet<&str> = obs
            .pods
            .iter()
            .flat_map(|o| &o.nodes)
            .filter(|n| n.ip == ip && !n.in_handshake() && !pod_of.contains_key(&n.id))
            .map(|n| n.id.as_str())
            .collect();
        if let [id] = Vec::from_iter(ids).as_slice() {
            pod_of.insert(id.to_string(), p.pod.name.clone());
        }
    }
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

    for p in &obs.pods {
        if let Some(e) = &p.error {
            problems.push(finding(Some(&p.pod.name), "unreachable", e.to_string()));
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
        let failed: Vec<u16> = (0..SLOTS)
            .filter(|s| reference[*s as usize].is_some_and(|o| failing.contains(o)))
            .collect();
        slots_covered = SLOTS as usize - uncovered.len() - failed.len();
        if !uncovered.is_empty() {
            problems.push(finding(
                None,
                "uncovered-slots",
                format!(
                    "{} slots have no master: {}",
                    uncovered.len(),
                    ranges_to_string(&to_ranges(uncovered))
                ),
            ));
        }
        if !failed.is_empty() {
            problems.push(finding(
                None,
                "uncovered-slots",
                format!(
                    "{} slots are served by a failed master: {}",
                    failed.len(),
                    ranges_to_string(&to_ranges(failed))
                ),
            ));
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
            problems.push(finding(
                Some(&p.pod.name),
                "slot-map-disagrees",
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
        let mut link_issues: Vec<String> = Vec::new();
        if !p.state_ok() {
            let st = p
                .info
                .get("cluster_state")
                .cloned()
                .unwrap_or_else(|| "?".into());
            problems.push(finding(
                Some(name),
                "state-not-ok",
                format!(
                    "cluster_state:{st} (it knows {} node(s), sees {} slot(s) assigned, {} ok)",
                    p.info
                        .get("cluster_known_nodes")
                        .map(String::as_str)
                        .unwrap_or("?"),
                    p.info
                        .get("cluster_slots_assigned")
                        .map(String::as_str)
                        .unwrap_or("?"),
                    p.info
                        .get("cluster_slots_ok")
                        .map(String::as_str)
                        .unwrap_or("?"),
                ),
            ));
        }
        for (slot, to) in &me.migrating {
            problems.push(finding(
                Some(name),
                "open-slot",
                format!("slot {slot} is half-migrated to {}", name_of(to)),
            ));
        }
        for (slot, from) in &me.importing {
            problems.push(finding(
                Some(name),
                "open-slot",
                format!("slot {slot} is half-imported from {}", name_of(from)),
            ));
        }
        for n in p.nodes.iter().filter(|n| !n.is_myself()) {
            if n.in_handshake() {
                link_issues.push(format!("handshake with {}:{}", n.ip, n.port));
                problems.push(finding(
                    Some(name),
                    "link-down",
                    format!("still in handshake with {}:{}", n.ip, n.port),
                ));
                continue;
            }
            let Some(peer) = pod_of.get(&n.id) else {
                problems.push(finding(
                    Some(name),
                    "unknown-node",
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
            let want_ip = ip_of.get(peer.as_str()).copied();
            if n.no_addr() || want_ip.is_some_and(|ip| ip != n.ip) {
                link_issues.push(format!("stale address for {peer}"));
                problems.push(finding(
                    Some(name),
                    "stale-address",
                    format!(
                        "has {peer} at {} but its pod IP is {}",
                        if n.no_addr() {
                            "no address".to_string()
                        } else {
                            n.ip.clone()
                        },
                        want_ip.unwrap_or("unknown")
                    ),
                ));
            }
            if !n.link_connected {
                link_issues.push(format!("{peer} disconnected"));
                problems.push(finding(
                    Some(name),
                    "link-down",
                    format!("cluster bus link to {peer} is disconnected"),
                ));
            }
            if n.failing() {
                let how = if n.has("fail") {
                    "fail"
                } else {
                    "fail? (pfail)"
                };
                problems.push(finding(
                    Some(name),
                    "node-failing",
                    format!("sees {peer} as {how}"),
                ));
            }
        }
        for other in obs.pods.iter().filter(|o| o.pod.name != name) {
            if let Some(oid) = &other.id {
                if p.view_of(oid).is_none() {
                    link_issues.push(format!("does not know {}", other.pod.name));
                    problems.push(finding(
                        Some(name),
                        "missing-node",
                        format!("does not know {} (node {oid})", other.pod.name),
                    ));
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
                    problems.push(finding(
                        Some(name),
                        "not-in-cluster",
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
                link_issues.push("replication link down".into());
                problems.push(finding(
                    Some(name),
                    "replica-link-down",
                    format!(
                        "replication from {} is not up (master_link_status:down)",
                        row.master.as_deref().unwrap_or("?")
                    ),
                ));
            }
            if let Some(m) = master.as_deref().and_then(|m| topo.pod(m)) {
                if m.node.is_some() && m.node == p.pod.node {
                    warnings.push(finding(
                        Some(name),
                        "replica-same-node",
                        format!(
                            "replicates {} on the same Kubernetes node {}: losing that node loses both",
                            m.name,
                            m.node.as_deref().unwrap_or("")
                        ),
                    ));
                }
            }
        }
        row.link = if link_issues.is_empty() {
            "ok".into()
        } else {
            link_issues.join("; ")
        };
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
        let connected: Vec<_> = reps
            .iter()
            .filter(|o| o.master_link_up == Some(true))
            .collect();
        if connected.is_empty() {
            problems.push(finding(
                Some(&p.pod.name),
                "no-replica",
                if reps.is_empty() {
                    "master has no replica".into()
                } else {
                    format!(
                        "master has no connected replica ({} not in sync yet)",
                        reps.iter()
                            .map(|o| o.pod.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            ));
        } else if distinct_nodes.len() > 1
            && connected
                .iter()
                .all(|o| o.pod.node.is_some() && o.pod.node == p.pod.node)
        {
            problems.push(finding(
                Some(&p.pod.name),
                "no-replica",
                format!(
                    "master has no connected replica on another Kubernetes node (all on {})",
                    p.pod.node.as_deref().unwrap_or("?")
                ),
            ));
        }
    }
    if masters != topo.masters && problems.is_empty() {
        warnings.push(finding(
            None,
            "shape",
            format!(
                "{masters} masters serve slots, the spec asks for {}",
                topo.masters
            ),
        ));
    }

    let healthy = problems.is_empty();
    let summary =
        format!("{masters} masters, {replicas} replicas, {slots_covered}/{SLOTS} slots covered");
    let headline = if healthy {
        format!("Cluster healthy: {summary}")
    } else {
        format!(
            "Cluster unhealthy ({} problem{}): {summary}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        )
    };
    Report {
        healthy,
        headline,
        masters,
        replicas,
        slots_covered,
        pods: rows,
        problems,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{
        cluster, fresh, half_migrated, id, lines, nodes_text, observation, restarted, seed,
        seed_lines, topology, Pod,
    };
    use super::super::observe::PodError;
    use super::*;

    /// `(pod ordinal or None for the cluster, kind, how many)`.
    type Want = Vec<(Option<u32>, &'static str, usize)>;

    fn each(pods: impl IntoIterator<Item = u32>, kind: &'static str, count: usize) -> Want {
        pods.into_iter().map(|n| (Some(n), kind, count)).collect()
    }

    fn tally(findings: &[Finding]) -> BTreeMap<(Option<String>, String), usize> {
        let mut out = BTreeMap::new();
        for f in findings {
            *out.entry((f.pod.clone(), f.kind.clone())).or_default() += 1;
        }
        out
    }

    fn wanted(want: &Want) -> BTreeMap<(Option<String>, String), usize> {
        want.iter()
            .map(|(n, kind, count)| {
                (
                    (n.map(|n| format!("redis-cluster-{n}")), kind.to_string()),
                    *count,
                )
            })
            .collect()
    }

    /// The seed cluster with redis-cluster-0 down: the others see it `fail` and disconnected.
    /// `promoted`: its replica redis-cluster-3 has taken over its slots.
    fn master_down(promoted: bool) -> Vec<Pod> {
        let mut view = seed_lines();
        view[0].flags = "master,fail";
        view[0].link = "disconnected";
        if promoted {
            view[0].slots = String::new();
            view[3].flags = "master";
            view[3].master = None;
            view[3].epoch = 7;
            view[3].slots = "0-5460".into();
        }
        let mut pods = seed();
        for p in pods.iter_mut().skip(1) {
            p.nodes = nodes_text(p.info.ordinal, &view);
            if !promoted {
                p.state = "fail";
            }
        }
        pods[0].error = Some(PodError::Unreachable("direct: connection refused".into()));
        pods[3].master_link_up = if promoted { None } else { Some(false) };
        pods
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
        let cases = vec![
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
                    vec![(None, "uncovered-slots", 1)],
                    each(0..6, "state-not-ok", 1),
                    each(0..6, "missing-node", 5),
                    each(0..6, "not-in-cluster", 1),
                ]
                .concat(),
                warnings: vec![],
                says: says(&[
                    "Cluster unhealthy (43 problems): 0 masters, 0 replicas, 0/16384 slots \
                     covered",
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
                problems: [each([0, 1], "open-slot", 1)].concat(),
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
                    each(0..6, "stale-address", 5),
                    each(0..6, "link-down", 5),
                    each(3..6, "replica-link-down", 1),
                    each(0..3, "no-replica", 1),
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
                        (Some(0), "unreachable", 1),
                        (None, "uncovered-slots", 1),
                        (Some(3), "replica-link-down", 1),
                    ],
                    each(1..6, "link-down", 1),
                    each(1..6, "node-failing", 1),
                    each(1..6, "state-not-ok", 1),
                ]
                .concat(),
                warnings: vec![],
                says: says(&[
                    "Cluster unhealthy (18 problems): 2 masters, 3 replicas, 10923/16384 slots \
                     covered",
                    "redis-cluster-0: unreachable via direct: connection refused",
                    "5461 slots are served by a failed master: 0-5460",
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
                    vec![(Some(0), "unreachable", 1), (Some(3), "no-replica", 1)],
                    each(1..6, "link-down", 1),
                    each(1..6, "node-failing", 1),
                ]
                .concat(),
                warnings: vec![],
                says: says(&[
                    "Cluster unhealthy (12 problems): 3 masters, 2 replicas, 16384/16384 slots \
                     covered",
                    "redis-cluster-3: master has no replica",
                    "redis-cluster-2: sees redis-cluster-0 as fail",
                ]),
            },
            Case {
                name: "the only replica beside its master on one Kubernetes node",
                pods: {
                    let mut pods = seed();
                    pods[3].info.node = Some("node-a".into());
                    pods
                },
                shape: (3, 1),
                problems: each([0], "no-replica", 1),
                warnings: each([3], "replica-same-node", 1),
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
                warnings: each([3], "replica-same-node", 1),
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
                problems: each([1], "slot-map-disagrees", 1),
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
                problems: each([2], "unknown-node", 1),
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
        assert_eq!(
            row(3).link,
            "redis-cluster-0 disconnected; replication link down"
        );
        assert_eq!(row(1).slot_ranges, "5461-10922");
        assert_eq!(row(1).slots, 5462);
        assert_eq!(row(1).keys, Some(0));
    }
}
