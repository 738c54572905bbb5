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
pub struct Fixed {
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

/// Plan roles and slots for `topo`, keeping `fixed` roles. `owned` gives, for masters that
/// already own slots, how many of each planned range they hold, so ranges go to their owners.
pub fn plan(
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
    let taken = |n: &str, masters: &Vec<String>| {
        masters.iter().any(|m| m == n) || fixed.replica_of.contains_key(n)
    };
    while masters.len() < topo.masters {
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for m in &masters {
            *per_node.entry(node_key(by_name[m.as_str()])).or_default() += 1;
        }
        let pick = topo
            .pods
            .iter()
            .filter(|p| !taken(&p.name, &masters))
            .min_by_key(|p| (per_node.get(&node_key(p)).copied().unwrap_or(0), p.ordinal));
        match pick {
            Some(p) => masters.push(p.name.clone()),
            None => bail!("not enough free pods to make {} masters", topo.masters),
        }
    }

    // 2. Replicas: the fixed ones, then a matching for the missing ones.
    let mut replicas: Vec<ReplicaPlan> = fixed
        .replica_of
        .iter()
        .map(|(r, m)| ReplicaPlan {
            pod: r.clone(),
            master: m.clone(),
        })
        .collect();
    let free: Vec<&PodInfo> = topo
        .pods
        .iter()
        .filter(|p| !taken(&p.name, &masters))
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
            })
            .collect();
        Topology::new(pods, masters, reps)
    }

    fn node_of<'a>(t: &'a Topology, pod: &str) -> &'a str {
        t.pod(pod).unwrap().node.as_deref().unwrap()
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

    #[test]
    fn too_few_pods_is_an_error_not_a_panic() {
        let t = topo(&["a", "b"], 3, 1);
        assert!(plan(&t, &Fixed::default(), &BTreeMap::new()).is_err());
    }
}
