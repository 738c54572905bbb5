//! Moving slots with their keys between two masters, using only Redis 5.0 commands:
//! `SETSLOT IMPORTING/MIGRATING`, `GETKEYSINSLOT`, `MIGRATE … KEYS`, `SETSLOT NODE`. `MIGRATE`
//! runs without `REPLACE`: a key that exists on both sides stops the move with an error instead
//! of overwriting anything. Used by scale-out (form), scale-in and the finishing of slots a
//! previous run left half-migrated.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use super::exec::Exec;
use super::observe::Observation;
use super::resp::{RedisError, Reply};
use super::transport::{cmd, show_cmd, Cmd};
use crate::fanout;

/// One slot to move from one master pod to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct SlotMove {
    pub slot: u16,
    pub from: String,
    pub to: String,
}

/// Move slots with their keys, until `deadline` (the step's, from `--timeout`). Batches of slots
/// per (source, target) pair, pipelined, so a port-forward's round-trip cost is paid per batch,
/// not per slot.
pub(crate) async fn move_slots(
    ex: &Exec<'_>,
    obs: &Observation,
    moves: &[SlotMove],
    deadline: Instant,
) -> Result<()> {
    let id = |pod: &str| {
        obs.id_of(pod)
            .map(str::to_string)
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
    for ((from, to), slots) in pairs {
        let pair = Pair {
            from_id: id(&from)?,
            to_id: id(&to)?,
            to_ip: ex
                .topo
                .pod(&to)
                .and_then(|p| p.ip.clone())
                .ok_or_else(|| anyhow!("{to} has no IP"))?,
            from,
            to,
        };
        for batch in slots.chunks(256) {
            pair.open(ex, batch).await?;
            pair.migrate_keys(ex, batch, deadline).await?;
            pair.assign(ex, batch, &masters).await?;
        }
    }
    Ok(())
}

/// A source and a target master, with what the commands between them name.
struct Pair {
    from: String,
    to: String,
    from_id: String,
    to_id: String,
    to_ip: String,
}

impl Pair {
    /// One `CLUSTER SETSLOT <slot> <what> <node>` per slot.
    fn setslot(batch: &[u16], what: &str, node: &str) -> Vec<Cmd> {
        batch
            .iter()
            .map(|s| cmd(["CLUSTER", "SETSLOT", s.to_string().as_str(), what, node]))
            .collect()
    }

    /// IMPORTING on the target, then MIGRATING on the source: from then on, clients that miss a
    /// key on the source are sent to the target (ASK), and no write is lost in between.
    async fn open(&self, ex: &Exec<'_>, batch: &[u16]) -> Result<()> {
        ex.run(&self.to, Self::setslot(batch, "IMPORTING", &self.from_id))
            .await?;
        ex.run(&self.from, Self::setslot(batch, "MIGRATING", &self.to_id))
            .await?;
        Ok(())
    }

    /// GETKEYSINSLOT and MIGRATE until the source's slots are empty, or `deadline`.
    async fn migrate_keys(&self, ex: &Exec<'_>, batch: &[u16], deadline: Instant) -> Result<()> {
        let (from, to) = (&self.from, &self.to);
        let port = ex.topo.port.to_string();
        let mut open: Vec<u16> = batch.to_vec();
        let start = Instant::now();
        while !open.is_empty() {
            let gets: Vec<Cmd> = open
                .iter()
                .map(|s| cmd(["CLUSTER", "GETKEYSINSLOT", s.to_string().as_str(), "200"]))
                .collect();
            let replies = ex.raw(from, &gets).await?;
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
                let mut c = cmd([self.to_ip.as_str(), port.as_str(), "", "0", "10000", "KEYS"]);
                c.insert(0, b"MIGRATE".to_vec());
                c.extend(keys);
                migrates.push(c);
            }
            for (c, r) in migrates.iter().zip(ex.raw(from, &migrates).await?) {
                if let Reply::Error(e) = r {
                    let hint = if RedisError::of(&e) == RedisError::BusyKey {
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
            if !open.is_empty() && Instant::now() >= deadline {
                bail!(
                    "{from}: slots {open:?} still hold keys after {:.0?} of MIGRATE to {to}, at \
                     the deadline (--timeout); the next apply finishes the move",
                    start.elapsed()
                );
            }
        }
        Ok(())
    }

    /// SETSLOT … NODE: the target first (it bumps its epoch and claims the slots), then the
    /// source, then the other masters.
    async fn assign(&self, ex: &Exec<'_>, batch: &[u16], masters: &[String]) -> Result<()> {
        let assign = Self::setslot(batch, "NODE", &self.to_id);
        ex.run(&self.to, assign.clone()).await?;
        tell_new_owner(ex, &self.from, &assign, &self.to).await?;
        let others = masters
            .iter()
            .filter(|m| **m != self.to && **m != self.from)
            .map(|m| tell_new_owner(ex, m, &assign, &self.to));
        for r in fanout::all(others).await {
            r?;
        }
        Ok(())
    }
}

/// `SETSLOT … NODE` on a master other than the target. A master that heard by gossip that its
/// last slots went elsewhere has already turned into a replica of the new owner; it knows.
async fn tell_new_owner(ex: &Exec<'_>, pod: &str, assign: &[Cmd], to: &str) -> Result<()> {
    let replies = ex.raw(pod, assign).await?;
    for (c, r) in assign.iter().zip(replies) {
        match r {
            Reply::Error(e) if RedisError::of(&e) == RedisError::SetslotOnReplica => {}
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
/// they were migrating to (or importing into). A slot whose target already claimed it (the run
/// stopped between `SETSLOT NODE` on the target and on the source) has moved: the source is
/// told the new owner, which ends its MIGRATING state.
pub(crate) async fn finish_open_slots(
    ex: &Exec<'_>,
    obs: &Observation,
    deadline: Instant,
) -> Result<bool> {
    let pod_of = obs.pod_of_id();
    let mut moves = Vec::new();
    let mut closes: BTreeMap<String, Vec<Cmd>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let claims = |pod: &str, slot: u16| {
        obs.get(pod)
            .and_then(|state| state.myself())
            .is_some_and(|m| m.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
    };
    for p in &obs.pods {
        let Some(me) = p.myself() else { continue };
        let owner_of = |slot: u16| -> Option<String> {
            p.nodes
                .iter()
                .find(|n| n.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
                .and_then(|n| pod_of.get(&n.id).cloned())
        };
        for (slot, to) in &me.migrating {
            if let Some(to_pod) = pod_of.get(to) {
                if claims(to_pod, *slot) {
                    let node = cmd(["CLUSTER", "SETSLOT", slot.to_string().as_str(), "NODE", to]);
                    closes.entry(p.pod.name.clone()).or_default().push(node);
                    seen.insert(*slot);
                    continue;
                }
                let to = to_pod;
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
    for (pod, commands) in &closes {
        ex.run(pod, commands.clone()).await?;
    }
    if moves.is_empty() {
        return Ok(!closes.is_empty());
    }
    move_slots(ex, obs, &moves, deadline).await?;
    Ok(true)
}
