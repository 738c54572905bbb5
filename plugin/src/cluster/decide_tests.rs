use super::*;
use crate::cluster::fixture::{
    cluster, fresh, half_migrated, id, ip, lines, lone, name, new_ip, nodes_text, observation,
    restarted, seed, seed_lines, Pod,
};
use crate::cluster::observe::PodError;

/// Pods 0, 1, 2 as one formed cluster, 3, 4, 5 as another (masters only, each its own
/// even split): two clusters claiming every slot twice.
fn two_full_clusters() -> Vec<Pod> {
    let mut pods = cluster(&lines(&[0, 1, 2], &[]));
    pods.extend(cluster(&lines(&[3, 4, 5], &[])));
    pods
}

/// Pods 0, 1 own 0-8191 between them, pods 2, 3 own 8192-16383: two clusters with disjoint
/// slots, plus two fresh pods 4, 5. `keys` per pod.
fn two_half_clusters(keys: [u64; 4]) -> Vec<Pod> {
    let mut a = lines(&[0, 1], &[]);
    a[0].slots = "0-4095".into();
    a[1].slots = "4096-8191".into();
    let mut b = lines(&[2, 3], &[]);
    b[0].slots = "8192-12287".into();
    b[1].slots = "12288-16383".into();
    let mut pods = cluster(&a);
    pods.extend(cluster(&b));
    for (p, k) in pods.iter_mut().zip(keys) {
        p.keys = k;
    }
    pods.extend([lone(4), lone(5)]);
    pods
}

#[test]
fn check_safe_cases() {
    struct Case {
        name: &'static str,
        pods: Vec<Pod>,
        /// `None`: safe. Otherwise fragments the refusal must contain.
        refused: Option<Vec<String>>,
    }
    let refused = |parts: &[&str]| Some(parts.iter().map(|s| s.to_string()).collect());
    let cases = vec![
        Case {
            name: "a fresh, unformed cluster",
            pods: fresh(),
            refused: None,
        },
        Case {
            name: "a healthy cluster",
            pods: seed(),
            refused: None,
        },
        Case {
            name: "a half-migrated slot (form finishes it)",
            pods: half_migrated(),
            refused: None,
        },
        Case {
            name: "stale addresses after every pod restarted (MEETs heal them)",
            pods: restarted(),
            refused: None,
        },
        Case {
            name: "one cluster whose views disagree on a slot (gossip after a move)",
            pods: {
                let mut pods = seed();
                let mut view = seed_lines();
                view[0].slots = "0-5459".into();
                view[1].slots = "5460-10922".into();
                pods[1].nodes = nodes_text(1, &view);
                pods
            },
            refused: None,
        },
        Case {
            name: "two clusters with disjoint slots, only one holding data (they may merge)",
            pods: two_half_clusters([100, 0, 0, 0]),
            refused: None,
        },
        Case {
            name: "duplicate node ids: redis-cluster-4's volume is a copy of redis-cluster-1's",
            pods: {
                let mut pods = seed();
                let mut view = seed_lines();
                view[1].ip = ip(4); // update-node.sh wrote its own IP on the `myself` line
                pods[4].nodes = nodes_text(1, &view);
                pods[4].master_link_up = None;
                pods
            },
            refused: refused(&[
                &format!(
                    "redis-cluster-1 and redis-cluster-4 have the same node id {}",
                    id(1)
                ),
                "one volume was copied from the other",
            ]),
        },
        Case {
            name: "two masters claim one slot: two lone pods with overlapping ADDSLOTS",
            pods: {
                let mut pods = fresh();
                pods[0].nodes =
                    "$0 10.0.0.10:6379@16379 myself,master - 0 0 1 connected 0-5460".into();
                pods[1].nodes =
                    "$1 10.0.0.11:6379@16379 myself,master - 0 0 2 connected 5000-10922".into();
                pods
            },
            refused: refused(&[
                "pods [redis-cluster-0] and [redis-cluster-1] are two separate clusters \
                 that both claim slot 5000: not merging them",
            ]),
        },
        Case {
            name: "two separately formed clusters claim every slot",
            pods: two_full_clusters(),
            refused: refused(&[
                "pods [redis-cluster-0, redis-cluster-1, redis-cluster-2] and \
                 [redis-cluster-3, redis-cluster-4, redis-cluster-5] are two separate \
                 clusters that both claim slot 0",
            ]),
        },
        Case {
            name: "two clusters with disjoint slots both holding data",
            pods: two_half_clusters([100, 0, 0, 5]),
            refused: refused(&[
                "separate clusters hold data: [redis-cluster-0, redis-cluster-1] and \
                 [redis-cluster-2, redis-cluster-3]; not merging them",
            ]),
        },
        Case {
            name: "a node none of the pods is (another cluster's nodes.conf)",
            pods: {
                let mut pods = seed();
                pods[2]
                    .nodes
                    .push_str("$e 10.9.9.9:6379@16379 master - 0 1700000000000 9 connected\n");
                pods
            },
            refused: refused(&[&format!(
                "redis-cluster-2 knows node {} at 10.9.9.9:6379 (master), which is none of \
                 this StatefulSet's pods",
                id(14)
            )]),
        },
        Case {
            name: "a lone pod holding keys",
            pods: {
                let mut pods = fresh();
                pods[5].keys = 42;
                pods
            },
            refused: refused(&[
                "redis-cluster-5 holds 42 keys but is not part of any cluster: foreign data",
                "start redis-cluster-5 with an empty volume",
            ]),
        },
        Case {
            name: "a master without slots holding keys",
            pods: {
                let mut view = lines(&[0, 1, 2], &[]);
                let mut extra = view[0].clone();
                extra.node = 3;
                extra.ip = ip(3);
                extra.epoch = 0;
                extra.slots = String::new();
                view.push(extra);
                let mut pods = cluster(&view);
                pods[3].keys = 7;
                pods
            },
            refused: refused(&[
                "redis-cluster-3 holds 7 keys but serves no slots: foreign data, nothing was \
                 changed",
            ]),
        },
    ];
    for case in cases {
        let got = check_safe(&observation(&case.pods));
        match (&case.refused, got) {
            (None, Ok(())) => {}
            (Some(parts), Err(ClusterError::Refused(message))) => {
                for part in parts {
                    assert!(
                        message.contains(part.as_str()),
                        "{}: {message:?} lacks {part:?}",
                        case.name
                    );
                }
            }
            (want, got) => panic!("{}: wanted {want:?}, got {got:?}", case.name),
        }
    }
}

/// Master pod → the slot ranges it owns.
type Owned = BTreeMap<String, Vec<(u16, u16)>>;
/// Pod → the `(ip, pod)` it must MEET.
type Meets = BTreeMap<String, Vec<(String, String)>>;

fn ranges(v: &[(u32, &[(u16, u16)])]) -> Owned {
    v.iter().map(|(n, r)| (name(*n), r.to_vec())).collect()
}

fn replicas(v: &[(u32, u32)]) -> BTreeMap<String, String> {
    v.iter().map(|(r, m)| (name(*r), name(*m))).collect()
}

#[test]
fn fixed_roles_cases() {
    let seed_owned = ranges(&[
        (0, &[(0, 5460)]),
        (1, &[(5461, 10922)]),
        (2, &[(10923, 16383)]),
    ]);
    let cases: Vec<(&str, Vec<Pod>, Fixed, Owned)> = vec![
        (
            "a fresh cluster fixes nothing",
            fresh(),
            Fixed::default(),
            BTreeMap::new(),
        ),
        (
            "a healthy cluster fixes every role",
            seed(),
            Fixed {
                masters: vec![name(0), name(1), name(2)],
                replica_of: replicas(&[(3, 0), (4, 1), (5, 2)]),
            },
            seed_owned.clone(),
        ),
        (
            "a half-migrated slot stays with its owner",
            half_migrated(),
            Fixed {
                masters: vec![name(0), name(1), name(2)],
                replica_of: replicas(&[(3, 0), (4, 1), (5, 2)]),
            },
            seed_owned.clone(),
        ),
        (
            "a master with a replica but no slots yet (scale-out) stays a master",
            {
                let mut view = seed_lines();
                view.extend(lines(&[6], &[(7, 6)]).into_iter().map(|mut l| {
                    l.slots = String::new();
                    l.epoch = 0;
                    l
                }));
                cluster(&view)
            },
            Fixed {
                masters: vec![name(0), name(1), name(2), name(6)],
                replica_of: replicas(&[(3, 0), (4, 1), (5, 2), (7, 6)]),
            },
            {
                let mut owned = seed_owned.clone();
                owned.insert(name(6), Vec::new());
                owned
            },
        ),
        (
            "rotated owners keep their own ranges",
            {
                let mut view = seed_lines();
                view[0].slots = "10923-16383".into();
                view[1].slots = "0-5460".into();
                view[2].slots = "5461-10922".into();
                cluster(&view)
            },
            Fixed {
                masters: vec![name(0), name(1), name(2)],
                replica_of: replicas(&[(3, 0), (4, 1), (5, 2)]),
            },
            ranges(&[
                (0, &[(10923, 16383)]),
                (1, &[(0, 5460)]),
                (2, &[(5461, 10922)]),
            ]),
        ),
    ];
    for (what, pods, fixed, owned) in cases {
        let (got_fixed, got_owned) = fixed_roles(&observation(&pods));
        assert_eq!(got_fixed, fixed, "{what}");
        assert_eq!(got_owned, owned, "{what}");
    }
}

/// `(from, [to, …])` → the expected MEETs, each to the pod's current IP.
fn meets(v: &[(u32, &[u32])], ip_of: impl Fn(u32) -> String) -> Meets {
    v.iter()
        .map(|(from, to)| {
            (
                name(*from),
                to.iter().map(|t| (ip_of(*t), name(*t))).collect(),
            )
        })
        .collect()
}

#[test]
fn missing_meets_cases() {
    let cases: Vec<(&str, Vec<Pod>, Meets)> = vec![
        ("a healthy cluster needs none", seed(), BTreeMap::new()),
        (
            "a fresh cluster: the lower ordinal of every pair introduces both",
            fresh(),
            meets(
                &[
                    (0, &[1, 2, 3, 4, 5]),
                    (1, &[2, 3, 4, 5]),
                    (2, &[3, 4, 5]),
                    (3, &[4, 5]),
                    (4, &[5]),
                ],
                ip,
            ),
        ),
        (
            "a half-formed cluster: the new pods are introduced, the formed pairs left alone",
            {
                let mut pods = cluster(&lines(&[0, 1, 2], &[]));
                pods.extend([lone(3), lone(4), lone(5)]);
                pods
            },
            meets(
                &[
                    (0, &[3, 4, 5]),
                    (1, &[3, 4, 5]),
                    (2, &[3, 4, 5]),
                    (3, &[4, 5]),
                    (4, &[5]),
                ],
                ip,
            ),
        ),
        (
            "a MEET in handshake is not sent again",
            {
                let mut pods = vec![lone(0), lone(1), lone(2)];
                pods[0].nodes.push_str(
                    "\n$e 10.0.0.11:6379@16379 handshake - 1700000000000 0 0 disconnected",
                );
                pods
            },
            meets(&[(0, &[2]), (1, &[2])], ip),
        ),
        (
            "every pod restarted with a new IP: each MEETs every other at its new address",
            restarted(),
            meets(
                &[
                    (0, &[1, 2, 3, 4, 5]),
                    (1, &[0, 2, 3, 4, 5]),
                    (2, &[0, 1, 3, 4, 5]),
                    (3, &[0, 1, 2, 4, 5]),
                    (4, &[0, 1, 2, 3, 5]),
                    (5, &[0, 1, 2, 3, 4]),
                ],
                new_ip,
            ),
        ),
        (
            "one pod restarted with a new IP: only the pods with its old address MEET it",
            {
                let mut pods = seed();
                let mut view = seed_lines();
                view[2].ip = new_ip(2);
                pods[2].nodes = nodes_text(2, &view);
                pods[2].info.ip = Some(new_ip(2));
                pods
            },
            meets(
                &[(0, &[2]), (1, &[2]), (3, &[2]), (4, &[2]), (5, &[2])],
                |_| new_ip(2),
            ),
        ),
        (
            "a node known without an address (noaddr) is MET by the pod that lost it",
            {
                let mut pods = seed();
                let mut view = seed_lines();
                view[1].ip = String::new();
                view[1].flags = "master,noaddr";
                pods[0].nodes = nodes_text(0, &view);
                pods
            },
            meets(&[(0, &[1])], ip),
        ),
        (
            "a master that is down is not MET; the pods that answer know each other",
            {
                let mut pods = seed();
                pods[0].error = Some(PodError::Unreachable("direct: connection refused".into()));
                pods
            },
            BTreeMap::new(),
        ),
    ];
    for (what, pods, want) in cases {
        assert_eq!(missing_meets(&observation(&pods)), want, "{what}");
    }
}
