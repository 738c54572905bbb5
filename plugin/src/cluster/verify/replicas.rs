//! Every master that serves slots needs a connected replica, and one on another Kubernetes node
//! when re-pairing replicas can give it one ([`crate::cluster::spread`]).

use super::names::Names;
use crate::cluster::finding::{Finding, Kind};
use crate::cluster::observe::{Observation, PodState};
use crate::cluster::spread::respread;

/// Adds a `no-replica` problem for each master that lacks one, and a `replicas-on-master-node`
/// problem for each whose replicas all share its node when a re-pairing exists that fixes it.
pub(super) fn check(
    obs: &Observation,
    live: &[&PodState],
    names: &Names,
    problems: &mut Vec<Finding>,
) {
    let stuck = respread(obs).stuck;
    for p in live {
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
            .filter_map(|n| names.pod(&n.id))
            .filter(|r| obs.get(r).is_some_and(|o| !o.ok()))
            .collect();
        let connected: Vec<_> = reps
            .iter()
            .filter(|o| o.master_link_up == Some(true))
            .collect();
        if connected.is_empty() {
            let syncing: Vec<&str> = reps.iter().map(|o| o.pod.name.as_str()).collect();
            let (message, peer) = match (syncing.as_slice(), down.as_slice()) {
                ([], []) => ("master has no replica".to_string(), None),
                ([], down) => (
                    format!("master has no connected replica ({} down)", down.join(", ")),
                    down.first(),
                ),
                (syncing, _) => (
                    format!(
                        "master has no connected replica ({} not in sync yet)",
                        syncing.join(", ")
                    ),
                    syncing.first(),
                ),
            };
            problems.push(
                Finding::new(Some(&p.pod.name), Kind::NoReplica, message).peer(peer.copied()),
            );
        } else if !stuck.contains(&p.pod.name)
            && connected
                .iter()
                .all(|o| o.pod.node.is_some() && o.pod.node == p.pod.node)
        {
            problems.push(
                Finding::new(
                    Some(&p.pod.name),
                    Kind::ReplicasOnMasterNode,
                    format!(
                        "master has no connected replica on another Kubernetes node (all on {})",
                        p.pod.node.as_deref().unwrap_or("?")
                    ),
                )
                .peer(Some(&connected[0].pod.name)),
            );
        }
    }
}
