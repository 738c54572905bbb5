use super::*;
use crate::cluster::fixture::{
    cluster, fresh, half_migrated, lines, lone, master_down, nodes_text, observation,
    replica_beside_master, replica_missing, restarted, seed, seed_lines, topology, Pod,
};
use crate::cluster::observe::PodError;
use crate::cluster::verify::verify;

/// `(kind, severity, summary, problems explained, warnings explained)`.
type Want<'a> = (CauseKind, Severity, &'a str, usize, usize);

/// `(name, pods, (masters, replicas per master), the causes wanted)`.
type Case = (&'static str, Vec<Pod>, (usize, usize), Vec<Want<'static>>);

#[test]
fn causes_name_the_fault_once() {
    use CauseKind::*;
    use Severity::*;
    let cases: Vec<Case> = vec![
        ("healthy", seed(), (3, 1), vec![]),
        (
            "every pod restarted with a new IP",
            restarted(),
            (3, 1),
            vec![(
                StaleAddresses,
                Problem,
                "all 6 pods came back with new IPs: 30 peer addresses are stale",
                66,
                0,
            )],
        ),
        (
            "every pod restarted, one address learnt already, its link not up yet",
            {
                let mut pods = restarted();
                pods[1].nodes = pods[1].nodes.replace("10.0.0.14", "10.0.1.14");
                pods
            },
            (3, 1),
            vec![(
                StaleAddresses,
                Problem,
                "all 6 pods came back with new IPs: 29 peer addresses are stale",
                65,
                0,
            )],
        ),
        (
            "a master down, its replica not promoted yet",
            master_down(false),
            (3, 1),
            vec![(
                PodDown,
                Problem,
                "master redis-cluster-0 is down (unreachable via direct: connection \
                 refused): its slots 0-5460 are unserved; its replica redis-cluster-3 takes \
                 over once the masters agree it has failed (cluster-node-timeout)",
                18,
                0,
            )],
        ),
        (
            "a master down, its replica promoted",
            master_down(true),
            (3, 1),
            vec![
                (
                    PodDown,
                    Problem,
                    "redis-cluster-0 is down (unreachable via direct: connection refused)",
                    11,
                    0,
                ),
                (
                    NoReplica,
                    Problem,
                    "master redis-cluster-3 has no connected replica",
                    1,
                    0,
                ),
            ],
        ),
        (
            "a replica recreated, no IP yet",
            replica_missing(),
            (3, 1),
            vec![(
                PodDown,
                Problem,
                "replica redis-cluster-4 of redis-cluster-1 is down (no pod IP yet): \
                 redis-cluster-1 has no replica left",
                12,
                0,
            )],
        ),
        (
            "a half-migrated slot",
            half_migrated(),
            (3, 1),
            vec![(
                OpenSlot,
                Problem,
                "slot 5460 is migrating from redis-cluster-0 to redis-cluster-1",
                2,
                0,
            )],
        ),
        (
            "the only replica beside its master",
            replica_beside_master(),
            (3, 1),
            vec![(
                ReplicaSameNode,
                Problem,
                "replica redis-cluster-3 shares Kubernetes node node-a with its master \
                 redis-cluster-0: losing node-a loses slots 0-5460",
                1,
                1,
            )],
        ),
        (
            "a replica beside its master, another elsewhere",
            {
                let pairs = [(3, 0), (4, 1), (5, 2), (6, 0), (7, 1), (8, 2)];
                let mut pods = cluster(&lines(&[0, 1, 2], &pairs));
                pods[3].info.node = Some("node-a".into());
                pods
            },
            (3, 2),
            vec![(
                ReplicaSameNode,
                Warning,
                "replica redis-cluster-3 shares Kubernetes node node-a with its master \
                 redis-cluster-0, which has another replica elsewhere",
                0,
                1,
            )],
        ),
        (
            "every pod on one Kubernetes node",
            {
                let mut pods = seed();
                for p in &mut pods {
                    p.info.node = Some("only".into());
                }
                pods
            },
            (3, 1),
            vec![(
                ReplicaSameNode,
                Warning,
                "every pod runs on Kubernetes node only: each replica shares it with its \
                 master, and losing it loses the cluster",
                0,
                3,
            )],
        ),
        (
            "a fresh, unformed cluster",
            fresh(),
            (3, 1),
            vec![(
                NotFormed,
                Problem,
                "the cluster is not formed: none of the 6 pods knows another or serves a slot",
                43,
                0,
            )],
        ),
        (
            "a new pod after the StatefulSet grew",
            {
                let mut pods = seed();
                pods.push(lone(6));
                pods
            },
            (3, 1),
            vec![(
                NotInCluster,
                Problem,
                "redis-cluster-6 is not part of the cluster yet: a master without slots or \
                 replicas",
                15,
                0,
            )],
        ),
        (
            "a pod with cluster mode off",
            {
                let mut pods = seed();
                pods[5].error = Some(PodError::ClusterModeOff);
                pods
            },
            (3, 1),
            vec![(
                ClusterModeOff,
                Problem,
                "redis-cluster-5 runs Redis with cluster mode off (cluster-enabled no)",
                2,
                0,
            )],
        ),
        (
            "a pod cut off from the cluster bus",
            {
                let mut view = seed_lines();
                view[2].flags = "master,fail?";
                view[2].link = "disconnected";
                let mut pods = seed();
                for p in pods.iter_mut().filter(|p| p.info.ordinal != 2) {
                    p.nodes = nodes_text(p.info.ordinal, &view);
                }
                let mut alone = seed_lines();
                for l in alone.iter_mut().filter(|l| l.node != 2) {
                    l.flags = if l.master.is_some() {
                        "slave,fail?"
                    } else {
                        "master,fail?"
                    };
                    l.link = "disconnected";
                }
                pods[2].nodes = nodes_text(2, &alone);
                pods[2].state = "fail";
                pods[5].master_link_up = Some(false);
                pods
            },
            (3, 1),
            vec![(
                Partitioned,
                Problem,
                "redis-cluster-2 answers, but 5 of its 5 peers cannot reach it over the \
                 cluster bus",
                23,
                0,
            )],
        ),
    ];
    for (name, pods, (masters, replicas), want) in cases {
        let report = verify(&topology(&pods, masters, replicas), &observation(&pods));
        let got: Vec<Want> = report
            .causes
            .iter()
            .map(|c| {
                (
                    c.kind,
                    c.severity,
                    c.summary.as_str(),
                    c.problems.len(),
                    c.warnings.len(),
                )
            })
            .collect();
        assert_eq!(got, want, "{name}");
        // Every finding belongs to exactly one cause.
        let mut problems: Vec<usize> = report
            .causes
            .iter()
            .flat_map(|c| c.problems.clone())
            .collect();
        let mut warnings: Vec<usize> = report
            .causes
            .iter()
            .flat_map(|c| c.warnings.clone())
            .collect();
        problems.sort_unstable();
        warnings.sort_unstable();
        assert_eq!(problems, Vec::from_iter(0..report.problems.len()), "{name}");
        assert_eq!(warnings, Vec::from_iter(0..report.warnings.len()), "{name}");
        for c in &report.causes {
            assert!(!c.remedy.is_empty(), "{name}: {c:?}");
        }
    }
}

#[test]
fn gossip_is_trusted_only_while_some_address_is_right() {
    let remedy = |pods: &[Pod]| {
        let report = verify(&topology(pods, 3, 1), &observation(pods));
        report.causes[0].remedy.clone()
    };
    assert!(remedy(&restarted()).contains("gossip cannot repair this"));
    let mut pods = restarted();
    pods[1].nodes = pods[1].nodes.replace("10.0.0.14", "10.0.1.14");
    assert!(remedy(&pods).contains("usually spread them within seconds"));
}

#[test]
fn lists_stay_short() {
    assert_eq!(list::<&str>(&[]), "");
    assert_eq!(list(&["a"]), "a");
    assert_eq!(list(&["a", "b"]), "a and b");
    assert_eq!(list(&["a", "b", "c", "d"]), "a, b, c and d");
    assert_eq!(list(&["a", "b", "c", "d", "e"]), "a, b, c and 2 more");
}
