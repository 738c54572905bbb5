//! The pure planner: which pod is a master, which replicates which, and the slot ranges.
//!
//! Topology-aware: masters are spread across Kubernetes nodes, and replicas are assigned with a
//! maximum bipartite matching (replica slot ↔ pod on a different node than the master), so a
//! replica shares its master's node only when no assignment avoids it. redis-cli compares IP
//! strings instead, which on Kubernetes never helps.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};
use serde::Serialize;

use super::nodes::even_ranges;
use super::topology::{PodInfo, Topology};

/// Roles already decided by the cluster's current state; the planner keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Fixed {
    /// Pods that are masters and must stay so (they own slots or have replicas).
    pub masters: Vec<String>,
    /// Pods already replicating a pod: replica → master.
    pub replica_of: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MasterPlan {
    pub pod: String,
    /// The slots this master should own (inclusive ranges).
    pub ranges: Vec<(u16, u16)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaPlan {
    pub pod: String,
    pub master: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub masters: Vec<MasterPlan>,
    pub replicas: Vec<ReplicaPlan>,
    /// Unavoidable compromises, e.g. a replica on its master's Kubernetes node.
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn master_of(&self, replica: &str) -> Option<&str> {
        self.replicas
            .iter()
            .find(|r| r.pod == replica)
            .map(|r| r.master.as_str())
    }
    pub fn is_master(&self, pod: &str) -> bool {
        self.masters.iter().any(|m| m.pod == pod)
    }
}

/// A pod's Kubernetes node; a pod whose node is unknown counts as a node of its own.
fn node_key(p: &PodInfo) -> String {
    p.node.clone().unwrap_or_else(|| format!("?{}", p.name))
}

/// Frees replicas of masters that have more than their share while a master has fewer and no
/// free pod is left to fill its seat, so the planner can re-point them (`CLUSTER REPLICATE`):
/// the pods of a cluster that shrank and grew again come back following the master their old
/// master's slots went to, and a new master would otherwise never get a replica. The replica
/// given up is one beside its master on a Kubernetes node if any, else the highest ordinal.
fn release_surplus_replicas(
    topo: &Topology,
    masters: &[String],
    replica_of: &mut BTreeMap<String, String>,
    by_name: &BTreeMap<&str, &PodInfo>,
) {
    let want = topo.replicas_per_master;
    let count = |m: &str, replica_of: &BTreeMap<String, String>| {
        replica_of.values().filter(|master| *master == m).count()
    };
    let missing: usize = masters
        .iter()
        .map(|m| want.saturating_sub(count(m, replica_of)))
        .sum();
    let free = topo
        .pods
        .iter()
        .filter(|p| !masters.contains(&p.name) && !replica_of.contains_key(&p.name))
        .count();
    for _ in 0..missing.saturating_sub(free) {
        let Some(donor) = masters
            .iter()
            .filter(|m| count(m, replica_of) > want)
            .max_by_key(|m| count(m, replica_of))
            .cloned()
        else {
            return;
        };
        let Some(replica) = replica_of
            .iter()
            .filter(|(_, master)| **master == donor)
            .map(|(replica, _)| replica.clone())
            .max_by_key(|r| {
                let beside = node_key(by_name[r.as_str()]) == node_key(by_name[donor.as_str()]);
                (beside, by_name[r.as_str()].ordinal)
            })
        else {
            return;
        };
        replica_of.remove(&replica);
    }
}

/// Plan roles and slots for `topo`, keeping `fixed` roles. `owned` gives, for masters that
/// already own slots, how many of each planned range they hold, so ranges go to their owners.
pub(super) fn plan(
    topo: &Topology,
    fixed: &Fixed,
    owned: &BTreeMap<String, Vec<(u16, u16)>>,
) -> Result<Plan> {
    let by_name: BTreeMap<&str, &PodInfo> =
        topo.pods.iter().map(|p| (p.name.as_str(), p)).collect();
    for m in fixed
        .masters
        .iter()
        .chain(fixed.replica_of.keys())
        .chain(fixed.replica_of.values())
    {
        if !by_name.contains_key(m.as_str()) {
            bail!("planner: pod {m} is not part of the topology");
        }
    }
    // 1. Masters: keep the fixed ones, add more spread over the nodes with the fewest masters.
    let mut masters: Vec<String> = Vec::new();
    for p in &topo.pods {
        if fixed.masters.contains(&p.name) {
            masters.push(p.name.clone());
        }
    }
    let mut replica_of = fixed.replica_of.clone();
    let taken = |n: &str, masters: &Vec<String>, replica_of: &BTreeMap<String, String>| {
        masters.iter().any(|m| m == n) || replica_of.contains_key(n)
    };
    while masters.len() < topo.masters {
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for m in &masters {
            *per_node.entry(node_key(by_name[m.as_str()])).or_default() += 1;
        }
        let pick = topo
            .pods
            .iter()
            .filter(|p| !taken(&p.name, &masters, &replica_of))
            .min_by_key(|p| (per_node.get(&node_key(p)).copied().unwrap_or(0), p.ordinal));
        match pick {
            Some(p) => masters.push(p.name.clone()),
            None => bail!("not enough free pods to make {} masters", topo.masters),
        }
    }

    release_surplus_replicas(topo, &masters, &mut replica_of, &by_name);

    // 2. Replicas: the fixed ones, then a matching for the missing ones.
    let mut replicas: Vec<ReplicaPlan> = replica_of
        .iter()
        .map(|(r, m)| ReplicaPlan {
            pod: r.clone(),
            master: m.clone(),
        })
        .collect();
    let free: Vec<&PodInfo> = topo
        .pods
        .iter()
        .filter(|p| !taken(&p.name, &masters, &replica_of))
        .collect();
    let count = |m: &str, reps: &Vec<ReplicaPlan>| reps.iter().filter(|r| r.master == m).count();
    // Replica "seats": round by round, so every master gets its first replica before any its second.
    let mut seats: Vec<&str> = Vec::new();
    for round in 0..topo.replicas_per_master {
        for m in &masters {
            if count(m, &replicas) <= round {
                seats.push(m);
            }
        }
    }
    // Pods beyond the shape still replicate someone: add seats round-robin.
    let mut i = 0;
    while seats.len() < free.len() && !masters.is_empty() {
        seats.push(&masters[i % masters.len()]);
        i += 1;
    }
    let ok = |seat: usize, pod: usize| node_key(by_name[seats[seat]]) != node_key(free[pod]);
    // Kuhn's augmenting paths; sizes are tiny (pods of one StatefulSet).
    let mut pod_seat: Vec<Option<usize>> = vec![None; free.len()];
    fn augment(
        seat: usize,
        seen: &mut Vec<bool>,
        pod_seat: &mut Vec<Option<usize>>,
        ok: &dyn Fn(usize, usize) -> bool,
    ) -> bool {
        for pod in 0..pod_seat.len() {
            if seen[pod] || !ok(seat, pod) {
                continue;
            }
            seen[pod] = true;
            if pod_seat[pod].is_none() || augment(pod_seat[pod].unwrap(), seen, pod_seat, ok) {
                pod_seat[pod] = Some(seat);
                return true;
            }
        }
        false
    }
    for seat in 0..seats.len() {
        let mut seen = vec![false; free.len()];
        augment(seat, &mut seen, &mut pod_seat, &ok);
    }
    let mut warnings = Vec::new();
    let mut seat_filled = vec![false; seats.len()];
    for (pod, seat) in pod_seat.iter().enumerate() {
        if let Some(s) = seat {
            seat_filled[*s] = true;
            replicas.push(ReplicaPlan {
                pod: free[pod].name.clone(),
                master: seats[*s].to_string(),
            });
        }
    }
    // Seats nobody on another node could take: fill with what is left, and say so.
    let mut left = (0..free.len()).filter(|p| pod_seat[*p].is_none());
    for (s, filled) in seat_filled.iter().enumerate() {
        if *filled {
            continue;
        }
        let Some(pod) = left.next() else { break };
        warnings.push(format!(
            "{} replicates {} on the same Kubernetes node {}: no pod on another node was free",
            free[pod].name,
            seats[s],
            node_key(free[pod])
        ));
        replicas.push(ReplicaPlan {
            pod: free[pod].name.clone(),
            master: seats[s].to_string(),
        });
    }
    replicas.sort_by_key(|r| by_name[r.pod.as_str()].ordinal);

    // 3. Slot ranges: the even split, each range to the master already holding most of it.
    let ranges = even_ranges(masters.len());
    let overlap = |have: &[(u16, u16)], r: (u16, u16)| -> usize {
        have.iter()
            .map(|&(a, b)| {
                let (lo, hi) = (a.max(r.0), b.min(r.1));
                if lo <= hi {
                    (hi - lo) as usize + 1
                } else {
                    0
                }
            })
            .sum()
    };
    let mut range_owner: Vec<Option<String>> = vec![None; ranges.len()];
    let mut pairs: Vec<(usize, usize, String)> = Vec::new();
    for (ri, r) in ranges.iter().enumerate() {
        for m in &masters {
            let o = owned.get(m).map(|h| overlap(h, *r)).unwrap_or(0);
            if o > 0 {
                pairs.push((o, ri, m.clone()));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut used: BTreeSet<String> = BTreeSet::new();
    for (_, ri, m) in pairs {
        if range_owner[ri].is_none() && !used.contains(&m) {
            range_owner[ri] = Some(m.clone());
            used.insert(m);
        }
    }
    let mut rest = masters.iter().filter(|m| !used.contains(*m));
    for owner in range_owner.iter_mut() {
        if owner.is_none() {
            *owner = rest.next().cloned();
        }
    }
    let master_plans = masters
        .iter()
        .map(|m| MasterPlan {
            pod: m.clone(),
            ranges: ranges
                .iter()
                .zip(&range_owner)
                .filter(|(_, o)| o.as_deref() == Some(m.as_str()))
                .map(|(r, _)| *r)
                .collect(),
        })
        .collect();
    Ok(Plan {
        masters: master_plans,
        replicas,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(nodes: &[&str], masters: usize, reps: usize) -> Topology {
        let pods = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| PodInfo {
                name: format!("redis-cluster-{i}"),
                ordinal: i as u32,
                ip: Some(format!("10.0.0.{i}")),
                node: Some(n.to_string()),
                pvc: format!("data-redis-cluster-{i}"),
                revision: None,
                ready: true,
                crash: None,
            })
            .collect();
        Topology::new(pods, masters, reps)
    }

    fn node_of<'a>(t: &'a Topology, pod: &str) -> &'a str {
        t.pod(pod).unwrap().node.as_deref().unwrap()
    }

    #[test]
    fn a_master_with_one_replica_too_many_gives_it_to_a_new_master_without_one() {
        // Masters 0, 1, 2 with replicas 3, 4, 5, and 7 back from a shrink following 2; pod 6 is
        // the fourth master and no free pod is left for its seat.
        let t = topo(&["a", "b", "c", "d", "e", "f", "a", "b"], 4, 1);
        let name = |i: usize| format!("redis-cluster-{i}");
        let fixed = Fixed {
            masters: vec![name(0), name(1), name(2)],
            replica_of: [(3, 0), (4, 1), (5, 2), (7, 2)]
                .iter()
                .map(|&(r, m)| (name(r), name(m)))
                .collect(),
        };
        let p = plan(&t, &fixed, &BTreeMap::new()).unwrap();
        assert!(p.is_master(&name(6)), "{p:?}");
        assert_eq!(p.master_of(&name(7)), Some(name(6).as_str()), "{p:?}");
        assert_eq!(p.master_of(&name(5)), Some(name(2).as_str()), "{p:?}");
        assert_eq!(p.replicas.len(), 4);
        // With a free pod for the seat, the fixed replicas stay where they are.
        let t = topo(&["a", "b", "c", "d", "e", "f", "a", "b", "c"], 4, 1);
        let p = plan(&t, &fixed, &BTreeMap::new()).unwrap();
        assert_eq!(p.master_of(&name(7)), Some(name(2).as_str()), "{p:?}");
    }

    #[test]
    fn seed_shape_on_distinct_nodes() {
        let t = topo(&["a", "b", "c", "d", "e", "f"], 3, 1);
        let p = plan(&t, &Fixed::default(), &BTreeMap::new()).unwrap();
        let ms: Vec<&str> = p.masters.iter().map(|m| m.pod.as_str()).collect();
        assert_eq!(
            ms,
            ["redis-cluster-0", "redis-cluster-1", "redis-cluster-2"]
        );
        assert_eq!(p.masters[0].ranges, vec![(0, 5460)]);
        assert_eq!(p.masters[1].ranges, vec![(5461, 10922)]);
        assert_eq!(p.masters[2].ranges, vec![(10923, 16383)]);
        assert_eq!(p.replicas.len(), 3);
        assert!(p.warnings.is_empty());
        for r in &p.replicas {
            assert_ne!(node_of(&t, &r.pod), node_of(&t, &r.master));
        }
    }

    #[test]
    fn replicas_avoid_their_masters_node_whenever_possible() {
        // Pods paired on three nodes; the naive "pod i+3 replicates pod i" would put
        // every replica next to its master (0,3 on a; 1,4 on b; 2,5 on c).
        let t = topo(&["a", "b", "c", "a", "b", "c"], 3, 1);
        let p = plan(&t, &Fixed::default(), &BTreeMap::new()).unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        for r in &p.replicas {
            assert_ne!(node_of(&t, &r.pod), node_of(&t, &r.master), "{r:?}");
        }
        // Two nodes only: masters spread, and still no replica beside its master.
        let t = topo(&["a", "a", "a", "b", "b", "b"], 3, 1);
        let p = plan(&t, &Fixed::default(), &BTreeMap::new()).unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        for r in &p.replicas {
            assert_ne!(node_of(&t, &r.pod), node_of(&t, &r.master), "{r:?}");
        }
    }

    #[test]
    fn single_node_cluster_warns_instead_of_failing() {
        let t = topo(&["a"; 6], 3, 1);
        let p = plan(&t, &Fixed::default(), &BTreeMap::new()).unwrap();
        assert_eq!(p.replicas.len(), 3);
        assert_eq!(p.warnings.len(), 3);
    }

    #[test]
    fn keeps_existing_roles_and_gives_ranges_to_their_owners() {
        let t = topo(&["a", "b", "c", "d", "e", "f"], 3, 1);
        let fixed = Fixed {
            masters: vec!["redis-cluster-4".into(), "redis-cluster-5".into()],
            replica_of: BTreeMap::from([("redis-cluster-0".into(), "redis-cluster-5".into())]),
        };
        let owned = BTreeMap::from([("redis-cluster-5".to_string(), vec![(0, 5460)])]);
        let p = plan(&t, &fixed, &owned).unwrap();
        assert!(p.is_master("redis-cluster-4") && p.is_master("redis-cluster-5"));
        assert_eq!(p.masters.len(), 3);
        assert_eq!(p.master_of("redis-cluster-0"), Some("redis-cluster-5"));
        let m5 = p
            .masters
            .iter()
            .find(|m| m.pod == "redis-cluster-5")
            .unwrap();
        assert_eq!(m5.ranges, vec![(0, 5460)]);
        assert_eq!(p.replicas.len(), 3);
        let mut all: Vec<(u16, u16)> = p.masters.iter().flat_map(|m| m.ranges.clone()).collect();
        all.sort();
        assert_eq!(all, even_ranges(3));
    }

    /// Plan from an observation, the way `ensure_cluster` does: the roles and slots it already
    /// fixes, then the planner.
    #[test]
    fn plans_from_observations() {
        use super::super::decide::fixed_roles;
        use super::super::fixture::{
            cluster, fresh, half_migrated, lone, name, observation, seed, seed_lines,
        };
        use super::super::fixture::{topology as fixture_topology, Pod};

        struct Case {
            name: &'static str,
            pods: Vec<Pod>,
            shape: (usize, usize),
            /// Master ordinal → its planned ranges, in plan order.
            masters: Vec<(u32, Vec<(u16, u16)>)>,
            /// `(replica, master)` ordinals, by replica ordinal.
            replicas: Vec<(u32, u32)>,
            /// Every replica on another Kubernetes node than its master.
            spread: bool,
        }
        let seed_masters = || {
            vec![
                (0, vec![(0, 5460)]),
                (1, vec![(5461, 10922)]),
                (2, vec![(10923, 16383)]),
            ]
        };
        let cases = vec![
            Case {
                name: "a fresh cluster on six Kubernetes nodes",
                pods: fresh(),
                shape: (3, 1),
                masters: seed_masters(),
                replicas: vec![(3, 2), (4, 1), (5, 0)],
                spread: true,
            },
            Case {
                name: "a fresh cluster on three nodes, pods i and i+3 side by side",
                pods: {
                    let mut pods = fresh();
                    for p in &mut pods {
                        let letter = char::from(b'a' + (p.info.ordinal % 3) as u8);
                        p.info.node = Some(format!("node-{letter}"));
                    }
                    pods
                },
                shape: (3, 1),
                masters: seed_masters(),
                replicas: vec![(3, 2), (4, 0), (5, 1)],
                spread: true,
            },
            Case {
                name: "a healthy cluster is planned as it is",
                pods: seed(),
                shape: (3, 1),
                masters: seed_masters(),
                replicas: vec![(3, 0), (4, 1), (5, 2)],
                spread: true,
            },
            Case {
                name: "a half-migrated slot stays with its owner",
                pods: half_migrated(),
                shape: (3, 1),
                masters: seed_masters(),
                replicas: vec![(3, 0), (4, 1), (5, 2)],
                spread: true,
            },
            Case {
                name: "rotated owners keep their ranges",
                pods: {
                    let mut view = seed_lines();
                    view[0].slots = "10923-16383".into();
                    view[1].slots = "0-5460".into();
                    view[2].slots = "5461-10922".into();
                    cluster(&view)
                },
                shape: (3, 1),
                masters: vec![
                    (0, vec![(10923, 16383)]),
                    (1, vec![(0, 5460)]),
                    (2, vec![(5461, 10922)]),
                ],
                replicas: vec![(3, 0), (4, 1), (5, 2)],
                spread: true,
            },
            Case {
                name: "a working replica beside its master is kept (verify is what warns)",
                pods: {
                    let mut pods = seed();
                    pods[3].info.node = Some("node-a".into());
                    pods
                },
                shape: (3, 1),
                masters: seed_masters(),
                replicas: vec![(3, 0), (4, 1), (5, 2)],
                spread: false,
            },
            Case {
                name:
                    "scale-out to four masters: the new master gets the range nobody holds most of",
                pods: {
                    let mut pods = seed();
                    pods.extend([lone(6), lone(7)]);
                    pods
                },
                shape: (4, 1),
                masters: vec![
                    (0, vec![(0, 4095)]),
                    (1, vec![(4096, 8191)]),
                    (2, vec![(12288, 16383)]),
                    (6, vec![(8192, 12287)]),
                ],
                replicas: vec![(3, 0), (4, 1), (5, 2), (7, 6)],
                spread: true,
            },
        ];
        for case in cases {
            let t = fixture_topology(&case.pods, case.shape.0, case.shape.1);
            let (fixed, owned) = fixed_roles(&observation(&case.pods));
            let p = plan(&t, &fixed, &owned).unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
            let masters: Vec<(u32, Vec<(u16, u16)>)> =
                case.masters.iter().map(|(n, r)| (*n, r.clone())).collect();
            let got: Vec<(u32, Vec<(u16, u16)>)> = p
                .masters
                .iter()
                .map(|m| (t.pod(&m.pod).unwrap().ordinal, m.ranges.clone()))
                .collect();
            assert_eq!(got, masters, "{}: masters", case.name);
            let want: Vec<ReplicaPlan> = case
                .replicas
                .iter()
                .map(|(r, m)| ReplicaPlan {
                    pod: name(*r),
                    master: name(*m),
                })
                .collect();
            assert_eq!(p.replicas, want, "{}: replicas", case.name);
            assert_eq!(p.warnings, Vec::<String>::new(), "{}: warnings", case.name);
            let beside = p
                .replicas
                .iter()
                .filter(|r| node_of(&t, &r.pod) == node_of(&t, &r.master))
                .count();
            assert_eq!(beside == 0, case.spread, "{}: {beside} beside", case.name);
        }
    }

    #[test]
    fn too_few_pods_is_an_error_not_a_panic() {
        let t = topo(&["a", "b"], 3, 1);
        assert!(plan(&t, &Fixed::default(), &BTreeMap::new()).is_err());
    }
}
