//! Replicas re-paired so that every master has one on another Kubernetes node.
//!
//! The planner spreads a new cluster's replicas (see [`super::plan`]), but Kubernetes moves pods
//! afterwards: when every pod restarts at once or a node is drained, the scheduler can put a
//! master and its only replica on one node, and losing that node then loses the master's slots.
//! Redis does not care where its nodes run, so nothing puts it right by itself. This module
//! finds the `CLUSTER REPLICATE`s that do, from one observation and without touching anything:
//! a replica a master can spare moves to a master that needs one, or two replicas swap masters.
//! `verify` uses it to tell a placement `apply` can fix (a problem) from one the pods' nodes
//! leave no way out of (a warning), `diagnose` to name the remedy, the executor in
//! [`super::form`] to run the moves one at a time, each after the previous replica's full sync.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::observe::Observation;

/// One replica to point at another master (`CLUSTER REPLICATE <to's node id>` on `replica`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repoint {
    pub replica: String,
    pub from: String,
    pub to: String,
}

/// The moves, in the order they are to run, and the masters no move found a way for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Respread {
    pub moves: Vec<Repoint>,
    pub stuck: BTreeSet<String>,
}

/// The pairings as observed: masters that serve slots, each connected replica's master, and
/// each pod's Kubernetes node. Replicas whose link is down are left out (they are not yet
/// protecting anyone, and one that is mid-sync must not be moved).
pub(crate) fn respread(obs: &Observation) -> Respread {
    let pod_of = obs.pod_of_id();
    let masters: Vec<String> = obs
        .pods
        .iter()
        .filter(|p| p.ok())
        .filter(|p| {
            p.myself()
                .is_some_and(|m| m.is_master() && !m.slots.is_empty())
        })
        .map(|p| p.pod.name.clone())
        .collect();
    let replica_of: BTreeMap<String, String> = obs
        .pods
        .iter()
        .filter(|p| p.ok() && p.master_link_up == Some(true))
        .filter_map(|p| {
            let master = pod_of.get(p.myself()?.master_id.as_deref()?)?;
            masters
                .contains(master)
                .then(|| (p.pod.name.clone(), master.clone()))
        })
        .collect();
    let node: BTreeMap<String, Option<String>> = obs
        .pods
        .iter()
        .map(|p| (p.pod.name.clone(), p.pod.node.clone()))
        .collect();
    moves(&masters, replica_of, &node)
}

/// The pure core of [`respread`]. A master *needs* a replica when it has none on another node;
/// a pod whose node is unknown counts as elsewhere (as `verify` counts it). Each round takes
/// the first master in need and either moves a replica another master can spare (one that
/// keeps a replica elsewhere after) or swaps one of its own replicas with another master's, so
/// that both end up away from their master. Every round fixes one master and breaks none, so
/// it ends. On a single node every master in need is stuck.
pub(crate) fn moves(
    masters: &[String],
    mut replica_of: BTreeMap<String, String>,
    node: &BTreeMap<String, Option<String>>,
) -> Respread {
    let mut out = Respread::default();
    let same = |a: &str, b: &str| {
        let na = node.get(a).and_then(Option::as_ref);
        na.is_some() && na == node.get(b).and_then(Option::as_ref)
    };
    let replicas_of = |pairs: &BTreeMap<String, String>, m: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(_, master)| *master == m)
            .map(|(r, _)| r.clone())
            .collect()
    };
    let protected_without = |pairs: &BTreeMap<String, String>, m: &str, gone: &str| {
        replicas_of(pairs, m)
            .iter()
            .any(|r| r != gone && !same(r, m))
    };
    let needs = |pairs: &BTreeMap<String, String>, m: &str| {
        !replicas_of(pairs, m).iter().any(|r| !same(r, m))
    };
    loop {
        let Some(m1) = masters
            .iter()
            .find(|m| !out.stuck.contains(*m) && needs(&replica_of, m))
        else {
            return out;
        };
        let others: Vec<&String> = masters.iter().filter(|m| *m != m1).collect();
        // A replica another master can spare: it keeps one elsewhere without it.
        let spare = others.iter().find_map(|m2| {
            replicas_of(&replica_of, m2)
                .into_iter()
                .find(|r| !same(r, m1) && protected_without(&replica_of, m2, r))
                .map(|r| (r, (*m2).clone()))
        });
        if let Some((r, m2)) = spare {
            replica_of.insert(r.clone(), m1.clone());
            out.moves.push(Repoint {
                replica: r,
                from: m2,
                to: m1.clone(),
            });
            continue;
        }
        // A swap: R2 (of M2) comes to M1 first, so M1 is covered before R1 leaves it.
        let swap = replicas_of(&replica_of, m1).into_iter().find_map(|r1| {
            others.iter().find_map(|m2| {
                replicas_of(&replica_of, m2)
                    .into_iter()
                    .find(|r2| !same(r2, m1) && !same(&r1, m2))
                    .map(|r2| (r1.clone(), r2, (*m2).clone()))
            })
        });
        match swap {
            Some((r1, r2, m2)) => {
                replica_of.insert(r2.clone(), m1.clone());
                replica_of.insert(r1.clone(), m2.clone());
                out.moves.push(Repoint {
                    replica: r2,
                    from: m2.clone(),
                    to: m1.clone(),
                });
                out.moves.push(Repoint {
                    replica: r1,
                    from: m1.clone(),
                    to: m2,
                });
            }
            None => {
                out.stuck.insert(m1.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pods`: (name, node); `pairs`: (replica, master).
    fn run(masters: &[&str], pairs: &[(&str, &str)], pods: &[(&str, &str)]) -> Respread {
        let node = pods
            .iter()
            .map(|(p, n)| (p.to_string(), (!n.is_empty()).then(|| n.to_string())))
            .collect();
        let pairs = pairs
            .iter()
            .map(|(r, m)| (r.to_string(), m.to_string()))
            .collect();
        let masters: Vec<String> = masters.iter().map(|m| m.to_string()).collect();
        moves(&masters, pairs, &node)
    }

    fn mv(replica: &str, from: &str, to: &str) -> Repoint {
        Repoint {
            replica: replica.into(),
            from: from.into(),
            to: to.into(),
        }
    }

    /// The quickstart's case: after every pod restarted, m0 and its only replica r3 share node
    /// a. m1's replica r4 on c can swap with r3: r4 comes to m0 first, then r3 goes to m1.
    #[test]
    fn swaps_two_replicas_so_both_masters_are_covered_elsewhere() {
        let pods = [
            ("m0", "a"),
            ("m1", "b"),
            ("m2", "c"),
            ("r3", "a"),
            ("r4", "c"),
            ("r5", "b"),
        ];
        let got = run(
            &["m0", "m1", "m2"],
            &[("r3", "m0"), ("r4", "m1"), ("r5", "m2")],
            &pods,
        );
        assert_eq!(got.moves, vec![mv("r4", "m1", "m0"), mv("r3", "m0", "m1")]);
        assert!(got.stuck.is_empty());
    }

    #[test]
    fn a_spread_cluster_needs_no_move() {
        let pods = [("m0", "a"), ("m1", "b"), ("r2", "b"), ("r3", "a")];
        let got = run(&["m0", "m1"], &[("r2", "m0"), ("r3", "m1")], &pods);
        assert_eq!(got, Respread::default());
    }

    /// m1 has two replicas elsewhere and can spare one; m0 has none at all (its replica is
    /// another master's now): one move, no swap.
    #[test]
    fn a_spare_replica_moves_to_the_master_without_one() {
        let pods = [("m0", "a"), ("m1", "b"), ("r2", "a"), ("r3", "c")];
        let got = run(&["m0", "m1"], &[("r2", "m1"), ("r3", "m1")], &pods);
        assert_eq!(got.moves, vec![mv("r3", "m1", "m0")]);
    }

    /// A master beside its own replica spares the one that is not: m1's replica r2 shares
    /// node b with m1 but not m0's node a, so it moves; m1 keeps r3 on c.
    #[test]
    fn the_spared_replica_is_one_its_master_can_do_without() {
        let pods = [
            ("m0", "a"),
            ("m1", "b"),
            ("r2", "b"),
            ("r3", "c"),
            ("r4", "a"),
        ];
        let got = run(
            &["m0", "m1"],
            &[("r2", "m1"), ("r3", "m1"), ("r4", "m0")],
            &pods,
        );
        assert_eq!(got.moves, vec![mv("r2", "m1", "m0")]);
        assert!(got.stuck.is_empty());
    }

    /// A replica is not taken from a master whose only replica elsewhere it is: m0 and m1 both
    /// run on b, and r3 on c is the only replica off b.
    #[test]
    fn a_master_keeps_its_only_replica_elsewhere() {
        let pods = [
            ("m0", "b"),
            ("m1", "b"),
            ("r2", "b"),
            ("r3", "c"),
            ("r4", "b"),
        ];
        let got = run(
            &["m0", "m1"],
            &[("r2", "m1"), ("r3", "m1"), ("r4", "m0")],
            &pods,
        );
        assert!(got.moves.is_empty());
        assert_eq!(got.stuck, BTreeSet::from(["m0".to_string()]));
    }

    /// Four pods on node a, two on b: two masters on a need a replica on b, and b holds one
    /// master and one replica. One of them can be fixed, the other is stuck.
    #[test]
    fn masters_the_nodes_leave_no_way_for_are_stuck() {
        let pods = [
            ("m0", "a"),
            ("m1", "b"),
            ("m2", "a"),
            ("r3", "a"),
            ("r4", "a"),
            ("r5", "b"),
        ];
        let got = run(
            &["m0", "m1", "m2"],
            &[("r3", "m0"), ("r4", "m1"), ("r5", "m2")],
            &pods,
        );
        // m2 already has r5 on b; m0 needs one on b, where only m1 and r5 run: r5 is m2's
        // only replica elsewhere, so nothing can move.
        assert!(got.moves.is_empty());
        assert_eq!(got.stuck, BTreeSet::from(["m0".to_string()]));
    }

    #[test]
    fn on_one_node_every_master_is_stuck() {
        let pods = [("m0", "a"), ("m1", "a"), ("r2", "a"), ("r3", "a")];
        let got = run(&["m0", "m1"], &[("r2", "m0"), ("r3", "m1")], &pods);
        assert!(got.moves.is_empty());
        assert_eq!(got.stuck, BTreeSet::from(["m0".into(), "m1".into()]));
    }

    /// A replica whose node is unknown (not scheduled yet as seen) counts as elsewhere.
    #[test]
    fn an_unknown_node_counts_as_elsewhere() {
        let pods = [("m0", "a"), ("m1", "b"), ("r2", ""), ("r3", "a")];
        let got = run(&["m0", "m1"], &[("r2", "m0"), ("r3", "m1")], &pods);
        assert_eq!(got, Respread::default());
    }
}
