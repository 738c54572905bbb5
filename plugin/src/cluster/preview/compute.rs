//! The steps themselves: forming, healing, scaling out and in, each from one observation.

use std::collections::BTreeMap;

use crate::cluster::decide::{check_safe, fixed_roles, missing_meets};
use crate::cluster::migrate::SlotMove;
use crate::cluster::nodes::{ranges_to_string, to_ranges};
use crate::cluster::observe::Observation;
use crate::cluster::plan::plan;
use crate::cluster::scale::{balance_moves, underfilled};
use crate::cluster::spread::respread;
use crate::cluster::topology::{PodInfo, Topology};
use crate::cluster::transport::{cmd, RedisTransport};
use crate::cluster::verify::verify;

use super::{Follow, MasterSlots, RedisStep, Shape};

pub(super) async fn steps(
    t: &dyn RedisTransport,
    current: &Topology,
    obs: &Observation,
    wanted: Shape,
) -> anyhow::Result<Vec<RedisStep>> {
    if wanted.pods < current.pods.len() {
        return scale_in_steps(t, current, obs, wanted).await;
    }
    let report = verify(current, obs);
    if report.healthy
        && !obs.has_underfilled_master(wanted.masters)
        && wanted.pods == current.pods.len()
    {
        return Ok(Vec::new());
    }
    check_safe(obs)?;
    let (fixed, owned) = fixed_roles(obs);
    // Pods the StatefulSet will add exist only after the rollout: plan them without an address.
    let mut future = current.clone();
    future.masters = wanted.masters;
    future.replicas_per_master = wanted.replicas_per_master;
    let added: Vec<String> = (current.pods.len()..wanted.pods)
        .map(|ordinal| pod_name(current, ordinal))
        .collect();
    for (i, name) in added.iter().enumerate() {
        future.pods.push(PodInfo {
            name: name.clone(),
            ordinal: (current.pods.len() + i) as u32,
            ip: None,
            node: None,
            pvc: String::new(),
            revision: None,
            ready: false,
            crash: None,
        });
    }
    let roles = plan(&future, &fixed, &owned)?;
    let mut steps = Vec::new();

    let claimed = obs.claimed_slots();
    let assign: Vec<MasterSlots> = roles
        .masters
        .iter()
        .filter_map(|m| {
            let free: Vec<u16> = m
                .ranges
                .iter()
                .flat_map(|&(a, b)| a..=b)
                .filter(|s| !claimed.contains(s))
                .collect();
            (!free.is_empty()).then(|| MasterSlots {
                pod: m.pod.clone(),
                slots: free.len(),
                ranges: ranges_to_string(&to_ranges(free)),
            })
        })
        .collect();
    if !assign.is_empty() {
        steps.push(RedisStep::AssignSlots { masters: assign });
    }

    let meets = missing_meets(obs);
    let mut introduced: Vec<String> = meets
        .iter()
        .filter(|(_, to)| !to.is_empty())
        .map(|(pod, _)| pod.clone())
        .collect();
    let mut count: usize = meets.values().map(Vec::len).sum();
    // Each added pod is introduced once it runs (one MEET brings it into the whole cluster).
    count += added.len();
    introduced.extend(added.iter().cloned());
    if count > 0 {
        steps.push(RedisStep::Meet {
            meets: count,
            pods: introduced,
        });
    }

    let follows: Vec<Follow> = roles
        .replicas
        .iter()
        .filter(|r| {
            let master_id = obs.id_of(&r.master);
            let now = obs
                .get(&r.pod)
                .and_then(|p| p.myself())
                .and_then(|m| m.master_id.as_deref());
            master_id.is_none() || now != master_id
        })
        .map(|r| Follow {
            pod: r.pod.clone(),
            master: r.master.clone(),
            node: current.pod(&r.pod).and_then(|p| p.node.clone()),
        })
        .collect();
    if !follows.is_empty() {
        steps.push(RedisStep::Replicate { replicas: follows });
    }

    let open: usize = obs
        .pods
        .iter()
        .filter_map(|p| p.myself())
        .map(|m| m.migrating.len() + m.importing.len())
        .sum();
    if open > 0 {
        steps.push(RedisStep::FinishMigrations { slots: open });
    }

    let moves = respread(obs).moves;
    if !moves.is_empty() {
        steps.push(RedisStep::SpreadReplicas { moves });
    }

    let masters: Vec<String> = roles.masters.iter().map(|m| m.pod.clone()).collect();
    if underfilled(&owned, &masters) && !owned.is_empty() {
        let moves = balance_moves(&owned, &masters, &[]);
        if !moves.is_empty() {
            steps.push(move_step(t, current, &moves).await?);
        }
    }
    Ok(steps)
}

/// Before a shrink: failovers where a departing master's replica stays, then the departing
/// masters' slots move to the staying ones, then the departing nodes are forgotten.
pub(super) async fn scale_in_steps(
    t: &dyn RedisTransport,
    current: &Topology,
    obs: &Observation,
    wanted: Shape,
) -> anyhow::Result<Vec<RedisStep>> {
    let report = verify(current, obs);
    if !report.healthy {
        anyhow::bail!(
            "the cluster must be healthy before scaling in: {}",
            report
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    check_safe(obs)?;
    let staying = |p: &str| {
        current
            .pod(p)
            .is_some_and(|p| (p.ordinal as usize) < wanted.pods)
    };
    let departing: Vec<String> = current
        .pods
        .iter()
        .filter(|p| !staying(&p.name))
        .map(|p| p.name.clone())
        .collect();
    let (_, mut owned) = fixed_roles(obs);
    let mut steps = Vec::new();
    let mut staying_masters: Vec<String> = owned
        .iter()
        .filter(|(p, r)| staying(p) && !r.is_empty())
        .map(|(p, _)| p.clone())
        .collect();
    for d in &departing {
        if staying_masters.len() >= wanted.masters || !owned.contains_key(d) {
            continue;
        }
        let replica = current
            .pods
            .iter()
            .map(|p| p.name.clone())
            .find(|p| staying(p) && obs.master_of(p).as_deref() == Some(d.as_str()));
        if let Some(replica) = replica {
            if let Some(ranges) = owned.remove(d) {
                owned.insert(replica.clone(), ranges);
            }
            steps.push(RedisStep::Failover {
                replica: replica.clone(),
                master: d.clone(),
            });
            staying_masters.push(replica);
        }
    }
    let departing_masters: Vec<String> = departing
        .iter()
        .filter(|d| owned.get(*d).is_some_and(|r| !r.is_empty()))
        .cloned()
        .collect();
    let moves = balance_moves(&owned, &staying_masters, &departing_masters);
    if !moves.is_empty() {
        steps.push(move_step(t, current, &moves).await?);
    }
    steps.push(RedisStep::Forget { pods: departing });
    Ok(steps)
}

/// Slot moves as one step, with the keys they carry counted on the slots' owners.
pub(super) async fn move_step(
    t: &dyn RedisTransport,
    topo: &Topology,
    moves: &[SlotMove],
) -> anyhow::Result<RedisStep> {
    let mut by_owner: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for m in moves {
        by_owner.entry(m.from.as_str()).or_default().push(m.slot);
    }
    let mut keys = 0u64;
    for (owner, slots) in &by_owner {
        let pod = topo
            .pod(owner)
            .ok_or_else(|| anyhow::anyhow!("unknown pod {owner}"))?;
        let cmds: Vec<_> = slots
            .iter()
            .map(|s| cmd(["CLUSTER", "COUNTKEYSINSLOT", &s.to_string()]))
            .collect();
        let replies = t.pipeline(&topo.addr(pod)?, &cmds).await?;
        keys += replies
            .iter()
            .filter_map(|r| r.int())
            .map(|n| n.max(0) as u64)
            .sum::<u64>();
    }
    let mut to: Vec<String> = moves.iter().map(|m| m.to.clone()).collect();
    to.sort();
    to.dedup();
    Ok(RedisStep::MoveSlots {
        slots: moves.len(),
        keys,
        from: by_owner.keys().map(|s| s.to_string()).collect(),
        to,
    })
}

/// `<statefulset>-<ordinal>`, from the name of a pod of the same StatefulSet.
pub(super) fn pod_name(topo: &Topology, ordinal: usize) -> String {
    let any = &topo.pods[0];
    let prefix = any
        .name
        .strip_suffix(&any.ordinal.to_string())
        .unwrap_or(&any.name);
    format!("{prefix}{ordinal}")
}
