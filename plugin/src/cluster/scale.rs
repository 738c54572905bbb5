//! Moving slots with their keys (scale-out rebalancing, scale-in draining) using only Redis 5.0
//! commands: `SETSLOT IMPORTING/MIGRATING`, `GETKEYSINSLOT`, `MIGRATE … KEYS`, `SETSLOT NODE`,
//! then `FORGET` for departing nodes. `MIGRATE` runs without `REPLACE`: a key that exists on both
//! sides stops the move with an error instead of overwriting anything.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::fanout;
use crate::wait::{poll_until, Poll};
use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use super::decide::{check_safe, fixed_roles};
use super::exec::{failover, observe_all, wait_converged, ClusterError, Exec, FormOptions};
use super::nodes::even_ranges;
use super::observe::Observation;
use super::plan::plan;
use super::resp::Reply;
use super::topology::Topology;
use super::transport::{cmd, show_cmd, Cmd, RedisTransport};
use super::verify::{verify, Report};

/// One slot to move from one master pod to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotMove {
    pub slot: u16,
    pub from: String,
    pub to: String,
}

fn count(r: &[(u16, u16)]) -> usize {
    r.iter().map(|(a, b)| (*b - *a) as usize + 1).sum()
}

/// Pure: the fewest slot moves that leave `masters` balanced (the even split's sizes) and
/// `departing` masters empty. Donors give from the top of their ranges, so ranges stay contiguous
/// where they can.
pub fn balance_moves(
    owned: &BTreeMap<String, Vec<(u16, u16)>>,
    masters: &[String],
    departing: &[String],
) -> Vec<SlotMove> {
    let sizes: Vec<usize> = {
        let mut s: Vec<usize> = even_ranges(masters.len().max(1))
            .iter()
            .map(|&(a, b)| (b - a) as usize + 1)
            .collect();
        s.sort_unstable_by(|a, b| b.cmp(a));
        s
    };
    let have = |m: &str| owned.get(m).map(|r| count(r)).unwrap_or(0);
    let mut by_size: Vec<&String> = masters.iter().collect();
    by_size.sort_by(|a, b| have(b).cmp(&have(a)).then(a.cmp(b)));
    let mut target: BTreeMap<&str, usize> = BTreeMap::new();
    for (m, size) in by_size.iter().zip(&sizes) {
        target.insert(m.as_str(), *size);
    }
    for d in departing {
        target.insert(d.as_str(), 0);
    }
    // Slots on offer: each donor's excess, highest slots first.
    let mut offered: Vec<(u16, String)> = Vec::new();
    for (m, t) in &target {
        let slots: Vec<u16> = owned
            .get(*m)
            .map(|r| r.iter().flat_map(|&(a, b)| a..=b).collect())
            .unwrap_or_default();
        if slots.len() > *t {
            let excess = slots.len() - t;
            offered.extend(
                slots[slots.len() - excess..]
                    .iter()
                    .map(|s| (*s, m.to_string())),
            );
        }
    }
    offered.sort();
    let mut moves = Vec::new();
    let mut it = offered.into_iter();
    for m in masters {
        let need = target[m.as_str()].saturating_sub(have(m));
        for _ in 0..need {
            match it.next() {
                Some((slot, from)) => moves.push(SlotMove {
                    slot,
                    from,
                    to: m.clone(),
                }),
                None => break,
            }
        }
    }
    moves
}

/// Move slots with their keys. Batches of slots per (source, target) pair, pipelined, so a
/// port-forward's round-trip cost is paid per batch, not per slot.
pub(crate) async fn move_slots(ex: &Exec<'_>, obs: &Observation, moves: &[SlotMove]) -> Result<()> {
    let ids: BTreeMap<String, String> = obs
        .pods
        .iter()
        .filter_map(|p| Some((p.pod.name.clone(), p.id.clone()?)))
        .collect();
    let id = |pod: &str| {
        ids.get(pod)
            .cloned()
            .ok_or_else(|| anyhow!("{pod} has no node id"))
    };
    let masters: Vec<String> = obs
        .pods
        .iter()
        .filter(|p| p.myself().is_some_and(|m| m.is_master()))
        .map(|p| p.pod.name.clone())
        .collect();
    let mut pairs: BTreeMap<(String, String), Vec<u16>> = BTreeMap::new();
    for m in moves {
        pairs
            .entry((m.from.clone(), m.to.clone()))
            .or_default()
            .push(m.slot);
    }
    let port = ex.topo.port.to_string();
    for ((from, to), slots) in pairs {
        let (from_id, to_id) = (id(&from)?, id(&to)?);
        let to_ip = ex
            .topo
            .pod(&to)
            .and_then(|p| p.ip.clone())
            .ok_or_else(|| anyhow!("{to} has no IP"))?;
        for batch in slots.chunks(256) {
            let each = |f: &dyn Fn(String) -> Cmd| {
                batch.iter().map(|s| f(s.to_string())).collect::<Vec<Cmd>>()
            };
            ex.run(
                &to,
                each(&|s| {
                    cmd([
                        "CLUSTER",
                        "SETSLOT",
                        s.as_str(),
                        "IMPORTING",
                        from_id.as_str(),
                    ])
                }),
            )
            .await?;
            ex.run(
                &from,
                each(&|s| {
                    cmd([
                        "CLUSTER",
                        "SETSLOT",
                        s.as_str(),
                        "MIGRATING",
                        to_id.as_str(),
                    ])
                }),
            )
            .await?;
            let mut open: Vec<u16> = batch.to_vec();
            let deadline = Instant::now() + Duration::from_secs(300);
            while !open.is_empty() {
                let gets: Vec<Cmd> = open
                    .iter()
                    .map(|s| cmd(["CLUSTER", "GETKEYSINSLOT", s.to_string().as_str(), "200"]))
                    .collect();
                let replies = ex.raw(&from, &gets).await?;
                let mut migrates: Vec<Cmd> = Vec::new();
                let mut still = Vec::new();
                for (slot, r) in open.iter().zip(replies) {
                    let keys = r
                        .bulk_items()
                        .ok_or_else(|| anyhow!("{from}: GETKEYSINSLOT {slot} failed: {r}"))?;
                    if keys.is_empty() {
                        continue;
                    }
                    still.push(*slot);
                    let mut c = cmd([to_ip.as_str(), port.as_str(), "", "0", "10000", "KEYS"]);
                    c.insert(0, b"MIGRATE".to_vec());
                    c.extend(keys);
                    migrates.push(c);
                }
                for (c, r) in migrates.iter().zip(ex.raw(&from, &migrates).await?) {
                    if let Reply::Error(e) = r {
                        let hint = if e.starts_with("BUSYKEY") {
                            " (the key exists on both sides; nothing was overwritten — resolve it by hand)"
                        } else {
                            ""
                        };
                        bail!(
                            "{from}: MIGRATE to {to} ({} keys) failed: {e}{hint}",
                            c.len() - 7
                        );
                    }
                }
                if !migrates.is_empty() {
                    ex.log(format!(
                        "{from}: MIGRATE {} batch(es) of keys to {to}",
                        migrates.len()
                    ));
                }
                open = still;
                if Instant::now() >= deadline {
                    bail!("{from}: slots {open:?} still hold keys after 300s of MIGRATE to {to}");
                }
            }
            // Target first (it bumps its epoch and claims the slots), then source, then the rest.
            let assign = each(&|s| cmd(["CLUSTER", "SETSLOT", s.as_str(), "NODE", to_id.as_str()]));
            ex.run(&to, assign.clone()).await?;
            tell_new_owner(ex, &from, &assign, &to).await?;
            let others = masters
                .iter()
                .filter(|m| **m != to && **m != from)
                .map(|m| tell_new_owner(ex, m, &assign, &to));
            for r in fanout::all(others).await {
                r?;
            }
        }
    }
    Ok(())
}

/// `SETSLOT … NODE` on a master other than the target. A master that heard by gossip that its
/// last slots went elsewhere has already turned into a replica of the new owner; it knows.
async fn tell_new_owner(ex: &Exec<'_>, pod: &str, assign: &[Cmd], to: &str) -> Result<()> {
    let replies = ex.raw(pod, assign).await?;
    for (c, r) in assign.iter().zip(replies) {
        match r {
            Reply::Error(e) if e.contains("only with masters") => {}
            Reply::Error(e) => bail!("{pod}: {} failed: {e}", show_cmd(c)),
            _ => {}
        }
    }
    ex.log(format!(
        "{pod}: CLUSTER SETSLOT … NODE {to} for {} slot(s)",
        assign.len()
    ));
    Ok(())
}

/// Finish slots a previous run left half-migrated: move them on, from their owner to the node
/// they were migrating to (or importing into).
pub(crate) async fn finish_open_slots(ex: &Exec<'_>, obs: &Observation) -> Result<bool> {
    let pod_of = obs.pod_of_id();
    let mut moves = Vec::new();
    let mut seen = BTreeSet::new();
    for p in &obs.pods {
        let Some(me) = p.myself() else { continue };
        let owner_of = |slot: u16| -> Option<String> {
            p.nodes
                .iter()
                .find(|n| n.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
                .and_then(|n| pod_of.get(&n.id).cloned())
        };
        for (slot, to) in &me.migrating {
            if let Some(to) = pod_of.get(to) {
                if seen.insert(*slot) {
                    moves.push(SlotMove {
                        slot: *slot,
                        from: p.pod.name.clone(),
                        to: to.clone(),
                    });
                }
            }
        }
        for (slot, _) in &me.importing {
            if let Some(owner) = owner_of(*slot) {
                if owner != p.pod.name && seen.insert(*slot) {
                    moves.push(SlotMove {
                        slot: *slot,
                        from: owner,
                        to: p.pod.name.clone(),
                    });
                }
            }
        }
    }
    if moves.is_empty() {
        return Ok(false);
    }
    move_slots(ex, obs, &moves).await?;
    Ok(true)
}

#[derive(Debug, Clone, Serialize)]
pub struct ScaleInOutcome {
    pub departed: Vec<String>,
    pub moved_slots: usize,
    pub actions: Vec<String>,
    /// The staying pods, verified healthy: only now may the StatefulSet shrink.
    pub report: Report,
}

/// Prepare a scale-in to the first `keep` pods with `masters` masters: move every slot off the
/// departing pods (keys included), re-point replicas, and `FORGET` the departing nodes on every
/// staying node. Returns once the staying cluster verifies healthy; the caller shrinks the
/// StatefulSet afterwards, never before.
pub async fn scale_in(
    t: &dyn RedisTransport,
    topo: &Topology,
    keep: usize,
    masters: usize,
    opts: &FormOptions,
) -> Result<ScaleInOutcome> {
    let deadline = opts.deadline()?;
    let obs = observe_all(t, topo, deadline, opts.poll).await?;
    let report = verify(topo, &obs);
    if !report.healthy {
        let list: Vec<String> = report.problems.iter().map(|p| format!("  - {p}")).collect();
        bail!(ClusterError::Refused(format!(
            "the cluster must be healthy before scaling in:\n{}",
            list.join("\n")
        )));
    }
    check_safe(&obs)?;
    let ex = Exec::new(t, topo);
    let staying: Vec<String> = topo
        .pods
        .iter()
        .filter(|p| (p.ordinal as usize) < keep)
        .map(|p| p.name.clone())
        .collect();
    let departing: Vec<String> = topo
        .pods
        .iter()
        .filter(|p| (p.ordinal as usize) >= keep)
        .map(|p| p.name.clone())
        .collect();
    let mut keep_topo = topo.clone();
    keep_topo.pods.retain(|p| staying.contains(&p.name));
    keep_topo.masters = masters;
    keep_topo.validate()?;

    let role_master = |obs: &Observation, p: &str| {
        obs.get(p)
            .and_then(|s| s.myself())
            .is_some_and(|m| m.is_master() && !m.slots.is_empty())
    };
    let master_of = |obs: &Observation, p: &str| -> Option<String> {
        let id = obs.get(p)?.myself()?.master_id.clone()?;
        obs.pod_of_id().get(&id).cloned()
    };

    // 1. A departing master whose replica stays: promote the replica (no keys move) while the
    //    staying side is short of masters.
    let mut obs = obs;
    let mut staying_masters: Vec<String> = staying
        .iter()
        .filter(|p| role_master(&obs, p))
        .cloned()
        .collect();
    for d in departing.iter().filter(|d| role_master(&obs, d)) {
        if staying_masters.len() >= masters {
            break;
        }
        let Some(r) = staying
            .iter()
            .find(|s| master_of(&obs, s).as_deref() == Some(d.as_str()))
        else {
            continue;
        };
        failover(&ex, r, d, deadline).await?;
        staying_masters.push(r.clone());
    }
    obs = observe_all(t, topo, deadline, opts.poll).await?;

    // 2. Drain the departing masters' slots (and balance the rest).
    let (_, owned) = fixed_roles(&obs);
    staying_masters = staying
        .iter()
        .filter(|p| role_master(&obs, p))
        .cloned()
        .collect();
    if staying_masters.len() < masters {
        // Take empty staying pods as new masters (their replicas are re-pointed below).
        let mut fixed = fixed_roles(&obs).0;
        fixed.masters.retain(|m| staying.contains(m));
        fixed
            .replica_of
            .retain(|r, m| staying.contains(r) && staying.contains(m));
        let p = plan(&keep_topo, &fixed, &owned)?;
        staying_masters = p.masters.iter().map(|m| m.pod.clone()).collect();
    }
    let departing_masters: Vec<String> = departing
        .iter()
        .filter(|d| role_master(&obs, d))
        .cloned()
        .collect();
    let moves = balance_moves(&owned, &staying_masters, &departing_masters);
    move_slots(&ex, &obs, &moves).await?;
    obs = wait_slots_settled(t, topo, deadline, opts, &departing).await?;

    // 3. Replicas: every staying pod that is not a staying master replicates a staying master.
    let (mut fixed, owned) = fixed_roles(&obs);
    fixed
        .masters
        .retain(|m| staying.contains(m) && role_master(&obs, m));
    fixed
        .replica_of
        .retain(|r, m| staying.contains(r) && fixed.masters.contains(m));
    let p = plan(&keep_topo, &fixed, &owned)?;
    let ids: BTreeMap<String, String> = obs
        .pods
        .iter()
        .filter_map(|s| Some((s.pod.name.clone(), s.id.clone()?)))
        .collect();
    for r in &p.replicas {
        if master_of(&obs, &r.pod).as_deref() != Some(r.master.as_str()) {
            let mid = ids
                .get(&r.master)
                .ok_or_else(|| anyhow!("{} has no id", r.master))?;
            ex.run(&r.pod, vec![cmd(["CLUSTER", "REPLICATE", mid.as_str()])])
                .await?;
        }
    }

    // 4. Forget the departing nodes everywhere, quickly (FORGET bans a node for 60 s only).
    let gone: Vec<String> = departing
        .iter()
        .filter_map(|d| ids.get(d).cloned())
        .collect();
    let futs = staying.iter().map(|s| {
        let cmds: Vec<Cmd> = gone
            .iter()
            .map(|id| cmd(["CLUSTER", "FORGET", id.as_str()]))
            .collect();
        let ex = &ex;
        async move {
            for (c, r) in cmds.iter().zip(ex.raw(s, &cmds).await?) {
                match r {
                    Reply::Error(e) if e.contains("Unknown node") => {}
                    Reply::Error(e) => bail!(
                        "{s}: CLUSTER FORGET {} failed: {e}",
                        String::from_utf8_lossy(&c[2])
                    ),
                    _ => ex.log(format!(
                        "{s}: CLUSTER FORGET {}",
                        String::from_utf8_lossy(&c[2])
                    )),
                }
            }
            anyhow::Ok(())
        }
    });
    for r in fanout::all(futs).await {
        r?;
    }
    let report = wait_converged(
        t,
        &keep_topo,
        deadline,
        opts.poll,
        "the cluster did not settle after scale-in",
    )
    .await?;
    Ok(ScaleInOutcome {
        departed: departing,
        moved_slots: moves.len(),
        actions: ex.take_actions(),
        report,
    })
}

/// After moves: wait until no departing pod owns a slot in anyone's view.
async fn wait_slots_settled(
    t: &dyn RedisTransport,
    topo: &Topology,
    deadline: Instant,
    opts: &FormOptions,
    departing: &[String],
) -> Result<Observation> {
    poll_until(
        deadline,
        opts.poll,
        "every node to see the departing pods without slots",
        || async move {
            let obs = observe_all(t, topo, deadline, opts.poll).await?;
            let pod_of = obs.pod_of_id();
            let holders: BTreeSet<&String> = obs
                .pods
                .iter()
                .flat_map(|p| &p.nodes)
                .filter(|n| !n.slots.is_empty())
                .filter_map(|n| pod_of.get(&n.id))
                .filter(|name| departing.contains(name))
                .collect();
            if holders.is_empty() {
                return Ok(Poll::Ready(obs));
            }
            let holders: Vec<&str> = holders.into_iter().map(String::as_str).collect();
            Ok(Poll::Pending(format!(
                "some node's view still gives slots to {}",
                holders.join(", ")
            )))
        },
    )
    .await
}

#[cfg(test)]
#[path = "scale_tests.rs"]
mod tests;
