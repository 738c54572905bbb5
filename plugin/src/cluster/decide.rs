//! Decisions the executors take from one observation, before they change anything: whether it
//! is safe to act at all ([`check_safe`]), which roles and slots are already fixed
//! ([`fixed_roles`]), and which nodes must be introduced to which ([`missing_meets`]). Pure
//! functions of an [`Observation`], so they are tested from `CLUSTER NODES` text alone.

use std::collections::{BTreeMap, BTreeSet};

use super::exec::ClusterError;
use super::observe::{Observation, PodState};
use super::plan::Fixed;

/// Refuse states that forming would damage or that are not ours to change.
pub(super) fn check_safe(obs: &Observation) -> Result<(), ClusterError> {
    let refuse = |s: String| Err(ClusterError::Refused(s));
    let pod_of = obs.pod_of_id();
    if pod_of.len() != obs.pods.iter().filter(|p| p.id.is_some()).count() {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for p in &obs.pods {
            if let Some(id) = p.id.as_deref() {
                if let Some(other) = seen.insert(id, &p.pod.name) {
                    return refuse(format!(
                        "{} and {} have the same node id {id}: one volume was copied from the other",
                        other, p.pod.name
                    ));
                }
            }
        }
    }
    for p in &obs.pods {
        let name = &p.pod.name;
        for n in p
            .nodes
            .iter()
            .filter(|n| !n.is_myself() && !n.in_handshake())
        {
            if !pod_of.contains_key(&n.id) {
                return refuse(format!(
                    "{name} knows node {} at {}:{} ({}), which is none of this StatefulSet's pods: its nodes.conf \
                     belongs to another cluster, or a pod lost its volume. Nothing was changed; inspect {name}'s \
                     /data/nodes.conf",
                    n.id,
                    n.ip,
                    n.port,
                    n.flags.join(",")
                ));
            }
        }
        let Some(me) = p.myself() else { continue };
        if p.keys > 0 && p.lone() {
            return refuse(format!(
                "{name} holds {} keys but is not part of any cluster: foreign data. Nothing was changed; move the \
                 data away or start {name} with an empty volume",
                p.keys
            ));
        }
        if p.keys > 0 && me.is_master() && me.slots.is_empty() {
            return refuse(format!(
                "{name} holds {} keys but serves no slots: foreign data, nothing was changed",
                p.keys
            ));
        }
    }
    // Pods that know each other form groups; two groups may merge only if they claim disjoint
    // slots and at most one holds data.
    let mut group: BTreeMap<&str, usize> = BTreeMap::new();
    let mut groups: Vec<BTreeSet<&str>> = Vec::new();
    for p in &obs.pods {
        let mut members: BTreeSet<&str> = BTreeSet::from([p.pod.name.as_str()]);
        for n in p.nodes.iter().filter(|n| !n.in_handshake()) {
            if let Some(other) = pod_of.get(&n.id) {
                members.insert(other.as_str());
            }
        }
        let hit: BTreeSet<usize> = members
            .iter()
            .filter_map(|m| group.get(m).copied())
            .collect();
        let mut merged = members;
        for g in hit.iter().rev() {
            merged.extend(groups[*g].iter().copied());
        }
        let idx = groups.len();
        for m in &merged {
            group.insert(m, idx);
        }
        groups.push(merged);
    }
    let finals: BTreeSet<usize> = group.values().copied().collect();
    let finals: Vec<&BTreeSet<&str>> = finals.iter().map(|g| &groups[*g]).collect();
    let mut slot_owner: BTreeMap<u16, usize> = BTreeMap::new();
    let mut with_data: Vec<usize> = Vec::new();
    for (gi, g) in finals.iter().enumerate() {
        let members: Vec<&PodState> = obs
            .pods
            .iter()
            .filter(|p| g.contains(p.pod.name.as_str()))
            .collect();
        if members.iter().any(|p| p.keys > 0) {
            with_data.push(gi);
        }
        let mut claimed: BTreeSet<u16> = BTreeSet::new();
        for p in &members {
            for n in &p.nodes {
                for &(a, b) in &n.slots {
                    claimed.extend(a..=b);
                }
            }
        }
        for s in claimed {
            if let Some(other) = slot_owner.insert(s, gi) {
                if other != gi {
                    let names =
                        |g: &BTreeSet<&str>| g.iter().copied().collect::<Vec<_>>().join(", ");
                    return refuse(format!(
                        "pods [{}] and [{}] are two separate clusters that both claim slot {s}: not merging them",
                        names(finals[other]),
                        names(g)
                    ));
                }
            }
        }
    }
    if with_data.len() > 1 {
        let names: Vec<String> = with_data
            .iter()
            .map(|g| finals[*g].iter().copied().collect::<Vec<_>>().join(", "))
            .collect();
        return refuse(format!(
            "separate clusters hold data: [{}]; not merging them",
            names.join("] and [")
        ));
    }
    Ok(())
}

/// Roles the current state already decides.
pub(super) fn fixed_roles(obs: &Observation) -> (Fixed, BTreeMap<String, Vec<(u16, u16)>>) {
    let pod_of = obs.pod_of_id();
    let mut fixed = Fixed::default();
    let mut owned = BTreeMap::new();
    for p in &obs.pods {
        let Some(me) = p.myself() else { continue };
        if me.is_replica() {
            if let Some(m) = me.master_id.as_ref().and_then(|id| pod_of.get(id)) {
                fixed.replica_of.insert(p.pod.name.clone(), m.clone());
            }
        }
    }
    for p in &obs.pods {
        let Some(me) = p.myself() else { continue };
        let has_replicas = fixed.replica_of.values().any(|m| *m == p.pod.name);
        if me.is_master() && (!me.slots.is_empty() || has_replicas) {
            fixed.masters.push(p.pod.name.clone());
            owned.insert(p.pod.name.clone(), me.slots.clone());
        }
    }
    (fixed, owned)
}

/// MEETs that make every pod know every other at its current address. For a pair that does not
/// know each other, one MEET (from the lower ordinal) introduces both; a stale or missing address
/// is fixed by a MEET from the side that has it wrong: Redis then updates the known node's
/// address during the handshake (this is how the all-pods-restarted case heals).
pub(super) fn missing_meets(obs: &Observation) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let correct = |a: &PodState, b: &PodState| -> bool {
        match (b.id.as_deref(), b.pod.ip.as_deref()) {
            (Some(id), Some(ip)) => a.view_of(id).is_some_and(|n| !n.no_addr() && n.ip == ip),
            _ => true,
        }
    };
    let pending = |a: &PodState, b: &PodState| -> bool {
        b.pod
            .ip
            .as_deref()
            .is_some_and(|ip| a.nodes.iter().any(|n| n.in_handshake() && n.ip == ip))
    };
    for a in obs.pods.iter().filter(|p| p.ok()) {
        for b in obs
            .pods
            .iter()
            .filter(|p| p.ok() && p.pod.name != a.pod.name)
        {
            if correct(a, b) || pending(a, b) {
                continue;
            }
            let b_knows_a = a.id.as_deref().is_some_and(|id| b.view_of(id).is_some());
            let a_knows_b = b.id.as_deref().is_some_and(|id| a.view_of(id).is_some());
            // Neither knows the other: the lower ordinal introduces both.
            if !a_knows_b && !b_knows_a && a.pod.ordinal > b.pod.ordinal {
                continue;
            }
            out.entry(a.pod.name.clone())
                .or_default()
                .push((b.pod.ip.clone().unwrap_or_default(), b.pod.name.clone()));
        }
    }
    out
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
