use crate::cluster::fixture::{
    cluster, fresh, half_migrated, id, lines, master_down, nodes_text, observation,
    replica_beside_master, replica_missing, restarted, seed, seed_lines, topology, Pod,
};
use std::collections::BTreeMap;

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
                vec![
                    (Some(0), Kind::Unreachable, 1),
                    (Some(3), Kind::NoReplica, 1),
                ],
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
                vec![
                    (Some(4), Kind::Unreachable, 1),
                    (Some(1), Kind::NoReplica, 1),
                ],
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
            problems: each([0], Kind::ReplicasOnMasterNode, 1),
            warnings: each([3], Kind::ReplicaSameNode, 1),
            says: says(&[
                "redis-cluster-0: master has no connected replica on another Kubernetes node \
                 (all on node-a)",
                "redis-cluster-3: replicates redis-cluster-0 on the same Kubernetes node \
                 node-a: losing that node loses both",
            ]),
        },
        Case {
            // Nodes a: 0, 2, 3, 4 and b: 1, 5. Masters 0 and 2 share a, and b has one replica
            // (5, of 2): no re-pairing covers 0 as well, so it is a warning, not a problem that
            // apply would wait on forever.
            name: "a replica beside its master that no re-pairing can move",
            pods: {
                let mut pods = seed();
                for (p, node) in pods.iter_mut().zip(["a", "b", "a", "a", "a", "b"]) {
                    p.info.node = Some(format!("node-{node}"));
                }
                pods
            },
            shape: (3, 1),
            problems: vec![],
            warnings: each([3], Kind::ReplicaSameNode, 1),
            says: says(&[
                "Cluster healthy: 3 masters, 3 replicas, 16384/16384 slots covered (1 warning)",
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
