//! The detectors of faults between pods: a pod down (or with cluster mode off), stale
//! addresses, a cluster not (fully) formed, half-moved slots, a pod cut off from the bus.

use std::collections::{BTreeMap, BTreeSet};

use super::ledger::{has_problem, symptom, Diagnosis, Draft, Views};
use super::{answering, list, CauseKind};
use crate::cluster::finding::{Finding, Kind};
use crate::cluster::nodes::ranges_to_string;
use crate::cluster::observe::{Observation, PodError, PodState};

/// A pod that did not answer: what it was, what its absence costs, what takes over.
pub(super) fn pod_down(d: &mut Diagnosis, view: &Views, p: &PodState) {
    let x = p.pod.name.as_str();
    let reason = p
        .error
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let claims = |f: &Finding| {
        (f.kind == Kind::Unreachable && f.pod.as_deref() == Some(x))
            || (symptom(f.kind) && f.peer.as_deref() == Some(x))
    };
    if p.error == Some(PodError::ClusterModeOff) {
        let draft = Draft {
            kind: CauseKind::ClusterModeOff,
            summary: format!("{x} runs Redis with cluster mode off (cluster-enabled no)"),
            remedy: "its redis.conf must say `cluster-enabled yes`, as a RedisCluster spec \
                     renders it: fix the spec, then `kubectl redis apply -f SPEC`"
                .into(),
            pods: vec![x.to_string()],
        };
        d.add(draft, claims);
        return;
    }
    let why = match &p.error {
        Some(PodError::NoIp) => format!("`kubectl describe pod {x}` says why it is not running"),
        _ => {
            format!("`kubectl describe pod {x}` and `kubectl logs {x}` say why it does not answer")
        }
    };
    let line = view.line(x);
    let (summary, remedy) = match line {
        Some(l) if l.is_master() && !l.slots.is_empty() => {
            let replicas = view.replicas_of(x);
            let takeover = match replicas.as_slice() {
                [] => "it has no replica to take over".to_string(),
                [r] => format!(
                    "its replica {r} takes over once the masters agree it has failed \
                     (cluster-node-timeout)"
                ),
                rs => format!(
                    "one of its replicas {} takes over once the masters agree it has failed \
                     (cluster-node-timeout)",
                    list(rs)
                ),
            };
            (
                format!(
                    "master {x} is down ({reason}): its slots {} are unserved; {takeover}",
                    ranges_to_string(&l.slots)
                ),
                format!("{why}; once back, it rejoins (as a replica if another took over)"),
            )
        }
        Some(l) if l.is_replica() => {
            let master = l
                .master_id
                .as_ref()
                .and_then(|id| view.pod_of.get(id))
                .map_or("its master", String::as_str);
            let left = if has_problem(d, Kind::NoReplica, master) {
                format!(": {master} has no replica left")
            } else {
                String::new()
            };
            (
                format!("replica {x} of {master} is down ({reason}){left}"),
                format!("{why}; once back, it resyncs from {master}"),
            )
        }
        _ => (
            format!("{x} is down ({reason})"),
            format!("{why}; once back, it rejoins the cluster"),
        ),
    };
    let draft = Draft {
        kind: CauseKind::PodDown,
        summary,
        remedy,
        pods: vec![x.to_string()],
    };
    d.add(draft, claims);
}

/// Peers that have a pod at an address that is not its pod IP: the pods came back with new
/// IPs. When all did, no node can reach another to tell it, so only a MEET repairs it. The
/// symptoms of those pods (links, replication, `cluster_state`) are part of it.
pub(super) fn stale_addresses(d: &mut Diagnosis, pods: usize) {
    let stale: Vec<&Finding> = d
        .unclaimed()
        .filter(|f| f.kind == Kind::StaleAddress)
        .collect();
    if stale.is_empty() {
        return;
    }
    let moved: BTreeSet<&str> = stale.iter().filter_map(|f| f.peer.as_deref()).collect();
    let moved: Vec<&str> = moved.into_iter().collect();
    let addresses = if stale.len() == 1 {
        "1 peer address is stale".to_string()
    } else {
        format!("{} peer addresses are stale", stale.len())
    };
    let summary = if moved.len() == pods && pods > 1 {
        format!("all {pods} pods came back with new IPs: {addresses}")
    } else {
        let ips = if moved.len() == 1 {
            "a new IP"
        } else {
            "new IPs"
        };
        format!("{} came back with {ips}: {addresses}", list(&moved))
    };
    let apply = "`kubectl redis apply -f SPEC` re-introduces the nodes at their current IPs \
                 (CLUSTER MEET), data kept";
    let remedy = if stale.len() == pods * pods.saturating_sub(1) {
        format!("no node can reach another to tell it, so gossip cannot repair this: {apply}")
    } else {
        format!(
            "nodes that know the new addresses usually spread them within seconds; if this \
             persists, {apply}"
        )
    };
    let draft = Draft {
        kind: CauseKind::StaleAddresses,
        summary,
        remedy,
        pods: moved.iter().map(|p| p.to_string()).collect(),
    };
    // A pod with a new IP has just restarted: its links and replication are being set up
    // again, whatever its peers' addresses for it.
    let restarted = |p: &Option<String>| p.as_deref().is_some_and(|p| moved.contains(&p));
    d.add(draft, |f| {
        f.kind == Kind::StaleAddress
            || (symptom(f.kind) && (restarted(&f.pod) || restarted(&f.peer)))
    });
}

/// A cluster never formed (every pod alone, no slot assigned), or pods that are not part of
/// it yet (masters without slots or replicas, e.g. after the StatefulSet grew).
pub(super) fn not_formed(d: &mut Diagnosis, obs: &Observation) {
    let live = answering(obs);
    if !live.is_empty()
        && obs.pods.iter().filter(|p| p.ok()).all(PodState::lone)
        && obs.claimed_slots().is_empty()
    {
        let draft = Draft {
            kind: CauseKind::NotFormed,
            summary: format!(
                "the cluster is not formed: none of the {} pods knows another or serves a slot",
                live.len()
            ),
            remedy: "`kubectl redis apply -f SPEC` forms it (slots, config epochs, MEET, \
                     REPLICATE)"
                .into(),
            pods: live.iter().map(|p| p.to_string()).collect(),
        };
        d.add(draft, |f| f.kind == Kind::NotInCluster || symptom(f.kind));
        return;
    }
    let joining: Vec<String> = d
        .unclaimed()
        .filter(|f| f.kind == Kind::NotInCluster)
        .filter_map(|f| f.pod.clone())
        .collect();
    if joining.is_empty() {
        return;
    }
    let summary = match joining.as_slice() {
        [one] => {
            format!("{one} is not part of the cluster yet: a master without slots or replicas")
        }
        many => format!(
            "{} pods are not part of the cluster yet: {}",
            many.len(),
            list(many)
        ),
    };
    let among = |p: &Option<String>| p.as_ref().is_some_and(|p| joining.contains(p));
    let claims = |f: &Finding| match f.kind {
        Kind::NotInCluster | Kind::StateNotOk | Kind::SlotMapDisagrees => among(&f.pod),
        Kind::MissingNode => among(&f.pod) || among(&f.peer),
        _ => false,
    };
    let draft = Draft {
        kind: CauseKind::NotInCluster,
        summary,
        remedy: "`kubectl redis apply -f SPEC` adds them as the spec's shape asks: masters get \
                 a share of the slots (keys moved along), the others become replicas"
            .into(),
        pods: joining.clone(),
    };
    d.add(draft, claims);
}

/// Slots a move left half-done, one cause per slot, with both ends named.
pub(super) fn open_slots(d: &mut Diagnosis, obs: &Observation) {
    // Slot → (from, to); keyed by (length, text) so that numbers sort as numbers.
    let mut slots: BTreeMap<(usize, String), (Option<String>, Option<String>)> = BTreeMap::new();
    for f in d.unclaimed().filter(|f| f.kind == Kind::OpenSlot) {
        let slot = f.slots.clone().unwrap_or_default();
        let migrating = f
            .pod
            .as_deref()
            .and_then(|p| obs.get(p)?.myself())
            .is_some_and(|me| me.migrating.iter().any(|(s, _)| s.to_string() == slot));
        let (from, to) = slots.entry((slot.len(), slot)).or_default();
        let other = || f.peer.clone().unwrap_or_else(|| "another node".into());
        if migrating {
            *from = f.pod.clone();
            to.get_or_insert_with(other);
        } else {
            *to = f.pod.clone();
            from.get_or_insert_with(other);
        }
    }
    for ((_, slot), (from, to)) in slots {
        let (from, to) = (from.unwrap_or_default(), to.unwrap_or_default());
        let draft = Draft {
            kind: CauseKind::OpenSlot,
            summary: format!("slot {slot} is migrating from {from} to {to}"),
            remedy: "`kubectl redis apply -f SPEC` finishes the move, keys included".into(),
            pods: vec![from, to],
        };
        d.add(draft, |f| {
            f.kind == Kind::OpenSlot && f.slots.as_deref() == Some(slot.as_str())
        });
    }
}

/// A pod that answers but that most of its peers see disconnected or failing: its cluster bus
/// port is blocked.
pub(super) fn partitioned(d: &mut Diagnosis, obs: &Observation) {
    let live = answering(obs);
    let others = live.len().saturating_sub(1);
    for x in live {
        let reporters: BTreeSet<&str> = d
            .unclaimed()
            .filter(|f| matches!(f.kind, Kind::LinkDown | Kind::NodeFailing))
            .filter(|f| f.peer.as_deref() == Some(x))
            .filter_map(|f| f.pod.as_deref())
            .collect();
        if others < 2 || reporters.len() * 2 <= others {
            continue;
        }
        let draft = Draft {
            kind: CauseKind::Partitioned,
            summary: format!(
                "{x} answers, but {} of its {others} peers cannot reach it over the cluster bus",
                reporters.len()
            ),
            remedy: "the cluster bus port (16379, `gossip`) must be open between all pods: \
                     check NetworkPolicies and firewalls"
                .into(),
            pods: vec![x.to_string()],
        };
        d.add(draft, |f| {
            symptom(f.kind) && (f.pod.as_deref() == Some(x) || f.peer.as_deref() == Some(x))
        });
    }
}
