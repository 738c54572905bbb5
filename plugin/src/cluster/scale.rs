//! Scaling: which slots move where so that masters are balanced ([`balance_moves`], pure), and
//! the scale-in executor: promote staying replicas, drain the departing masters (keys move with
//! [`super::migrate`]), re-point replicas, then `FORGET` the departing nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::fanout;
use crate::wait::{poll_last, poll_until, Poll};
use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use super::decide::{check_safe, fixed_roles};
use super::exec::{failover, observe_all, wait_converged, ClusterError, Exec, FormOptions};
use super::migrate::{move_slots, SlotMove};
use super::nodes::even_ranges;
use super::observe::{Observation, PodState};
use super::plan::plan;
use super::resp::{RedisError, Reply};
use super::topology::{PodInfo, Topology};
use super::transport::{cmd, Cmd, RedisTransport};
use super::verify::{verify, Report};

fn count(r: &[(u16, u16)]) -> usize {
    r.iter().map(|(a, b)| (*b - *a) as usize + 1).sum()
}

/// Pure: the fewest slot moves that leave `masters` balanced (the even split's sizes) and
/// `departing` masters empty. Donors give from the top of their ranges, so ranges stay contiguous
/// where they can.
pub(super) fn balance_moves(
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

/// Pure: what deleting the pods from ordinal `keep` on would take with it if nothing drained them
/// first, from what the pods report: the slots their masters serve (and the keys they hold), or
/// the slots the staying pods see served by nodes that are not among them. None when they hold
/// nothing only they have; a reason to refuse when nobody who stays could be asked.
pub(crate) fn undrained_loss(obs: &Observation, keep: usize) -> Option<String> {
    let (staying, departing): (Vec<&PodState>, Vec<&PodState>) = obs
        .pods
        .iter()
        .partition(|p| (p.pod.ordinal as usize) < keep);
    let mut losses = Vec::new();
    let mut slots = 0;
    let mut keys = 0;
    let mut holders = Vec::new();
    for pod in departing.iter().filter(|p| p.ok()) {
        if let Some(me) = pod
            .myself()
            .filter(|m| m.is_master() && !m.slots.is_empty())
        {
            slots += count(&me.slots);
            keys += pod.keys;
            holders.push(pod.pod.name.clone());
        }
    }
    if !holders.is_empty() {
        losses.push(format!(
            "{slots} slot(s) with {keys} key(s) live on {}, and no pod that stays has them",
            holders.join(", ")
        ));
    }
    let asked: Vec<&&PodState> = staying.iter().filter(|p| p.ok()).collect();
    if asked.is_empty() {
        losses.push(
            "no pod that stays answered, so losing nothing cannot be shown (apply without \
             --skip-cluster-init waits for them)"
                .into(),
        );
    }
    let staying_ids: BTreeSet<&str> = asked.iter().filter_map(|p| p.id.as_deref()).collect();
    // The most any staying pod sees served by others: a departing master that cannot be asked.
    let elsewhere: usize = asked
        .iter()
        .map(|p| {
            (p.nodes.iter())
                .filter(|n| n.is_master() && !staying_ids.contains(n.id.as_str()))
                .map(|n| n.slot_count())
                .sum()
        })
        .max()
        .unwrap_or(0);
    if holders.is_empty() && elsewhere > 0 {
        losses.push(format!(
            "the pods that stay see {elsewhere} slot(s) served by nodes that are not among them"
        ));
    }
    (!losses.is_empty()).then(|| losses.join("; "))
}

/// Pure: whether slots must move to `masters` before they are balanced: one holds less than half
/// of an even share (a new master, or a scale-out stopped midway). A little imbalance, as an even
/// split and its rounding or a user's own rebalancing leave, is left alone.
pub(super) fn underfilled(owned: &BTreeMap<String, Vec<(u16, u16)>>, masters: &[String]) -> bool {
    let share = usize::from(super::nodes::SLOTS) / masters.len().max(1);
    masters
        .iter()
        .any(|m| owned.get(m).map_or(0, |r| count(r)) * 2 < share)
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
    let (staying, departing): (Vec<&PodInfo>, Vec<&PodInfo>) =
        topo.pods.iter().partition(|p| (p.ordinal as usize) < keep);
    let names =
        |pods: Vec<&PodInfo>| -> Vec<String> { pods.iter().map(|p| p.name.clone()).collect() };
    let (staying, departing) = (names(staying), names(departing));
    let mut keep_topo = topo.clone();
    keep_topo.pods.retain(|p| staying.contains(&p.name));
    keep_topo.masters = masters;
    keep_topo.validate()?;
    let run = ScaleIn {
        ex: Exec::new(t, topo),
        keep_topo,
        staying,
        departing,
        deadline,
    };

    let mut obs = observe_all(t, topo, deadline, opts.poll).await?;
    if obs.has_open_slots() {
        // A previous scale-in stopped in the middle of a move: finish it first, keys included.
        check_safe(&obs)?;
        super::migrate::finish_open_slots(&run.ex, &obs, deadline).await?;
        obs = wait_slots_closed(t, topo, deadline, opts).await?;
    }
    let (obs, resume) = run.settled_resume_point(topo, obs, opts).await?;
    let moved_slots = match resume {
        Resume::Start => {
            check_safe(&obs)?;
            run.promote_staying_replicas(&obs).await?;
            let obs = observe_all(t, topo, deadline, opts.poll).await?;
            run.drain_departing(&obs).await?
        }
        // Drained, and some nodes forgot the departing ones: only the forgetting is left.
        Resume::Forget => 0,
        Resume::Refuse(report) => {
            let list: Vec<String> = report.problems.iter().map(|p| format!("  - {p}")).collect();
            bail!(ClusterError::Refused(format!(
                "the cluster must be healthy before scaling in:\n{}",
                list.join("\n")
            )));
        }
    };
    let obs = wait_slots_settled(t, topo, deadline, opts, &run.departing).await?;
    run.repoint_replicas(&obs).await?;
    run.forget_departed(&obs).await?;
    let report = wait_converged(
        t,
        &run.keep_topo,
        deadline,
        opts.poll,
        "the cluster did not settle after scale-in",
    )
    .await?;
    Ok(ScaleInOutcome {
        actions: run.ex.take_actions(),
        departed: run.departing,
        moved_slots,
        report,
    })
}

/// How long a scale-in waits for an unhealthy cluster to settle before it refuses.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Where a scale-in starts, from what the cluster reports.
enum Resume {
    /// The whole cluster is healthy: from the beginning (drained slots move nothing).
    Start,
    /// A previous run drained the departing pods and some nodes forgot them: the staying pods
    /// are a healthy cluster of their own once the departing nodes are left out.
    Forget,
    /// Neither: nothing is changed.
    Refuse(Report),
}

/// One scale-in: the pods that stay (ordinals below the new size), the ones that go, and the
/// topology of those that stay.
struct ScaleIn<'a> {
    ex: Exec<'a>,
    keep_topo: Topology,
    staying: Vec<String>,
    departing: Vec<String>,
    deadline: Instant,
}

/// A master that serves slots, in the pod's own view.
fn holds_slots(obs: &Observation, pod: &str) -> bool {
    obs.get(pod)
        .and_then(|s| s.myself())
        .is_some_and(|m| m.is_master() && !m.slots.is_empty())
}

impl ScaleIn<'_> {
    /// [`ScaleIn::resume_point`] once the cluster has settled: a run killed during a move leaves
    /// some nodes with the old owner of the slots last assigned until gossip brings them the new
    /// one (a second or two), so a refusal is only given after [`SETTLE`] of asking again.
    async fn settled_resume_point(
        &self,
        topo: &Topology,
        first: Observation,
        opts: &FormOptions,
    ) -> Result<(Observation, Resume)> {
        let resume = self.resume_point(topo, &first);
        if !matches!(resume, Resume::Refuse(_)) {
            return Ok((first, resume));
        }
        let settle_by = self.deadline.min(Instant::now() + SETTLE);
        let t = self.ex.t;
        let settled = poll_last(settle_by, opts.poll, || async move {
            let obs = observe_all(t, topo, self.deadline, opts.poll).await?;
            Ok(match self.resume_point(topo, &obs) {
                Resume::Refuse(report) => Poll::Pending(report),
                resume => Poll::Ready((obs, resume)),
            })
        })
        .await?;
        Ok(settled.unwrap_or_else(|report| (first, Resume::Refuse(report))))
    }

    fn resume_point(&self, topo: &Topology, obs: &Observation) -> Resume {
        let report = verify(topo, obs);
        if report.healthy {
            return Resume::Start;
        }
        let staying_view = obs.among(&self.staying);
        let staying = verify(&self.keep_topo, &staying_view);
        if slot_holders(obs, &self.departing).is_empty()
            && staying.healthy
            && check_safe(&staying_view).is_ok()
        {
            Resume::Forget
        } else {
            Resume::Refuse(report)
        }
    }

    fn masters(&self, obs: &Observation, among: &[String]) -> Vec<String> {
        among
            .iter()
            .filter(|p| holds_slots(obs, p))
            .cloned()
            .collect()
    }

    /// A departing master whose replica stays: promote the replica (no keys move) while the
    /// staying side is short of masters.
    async fn promote_staying_replicas(&self, obs: &Observation) -> Result<()> {
        let mut staying_masters = self.masters(obs, &self.staying).len();
        for d in self.masters(obs, &self.departing) {
            if staying_masters >= self.keep_topo.masters {
                break;
            }
            let Some(r) = self
                .staying
                .iter()
                .find(|s| obs.master_of(s).as_deref() == Some(d.as_str()))
            else {
                continue;
            };
            failover(&self.ex, r, &d, self.deadline).await?;
            staying_masters += 1;
        }
        Ok(())
    }

    /// Drain the departing masters' slots into the staying masters (and balance those); empty
    /// staying pods become masters where too few stay. How many slots moved.
    async fn drain_departing(&self, obs: &Observation) -> Result<usize> {
        let (mut fixed, owned) = fixed_roles(obs);
        let mut staying_masters = self.masters(obs, &self.staying);
        if staying_masters.len() < self.keep_topo.masters {
            // Their replicas are re-pointed afterwards.
            fixed.masters.retain(|m| self.staying.contains(m));
            fixed
                .replica_of
                .retain(|r, m| self.staying.contains(r) && self.staying.contains(m));
            let p = plan(&self.keep_topo, &fixed, &owned)?;
            staying_masters = p.masters.iter().map(|m| m.pod.clone()).collect();
        }
        let moves = balance_moves(
            &owned,
            &staying_masters,
            &self.masters(obs, &self.departing),
        );
        move_slots(&self.ex, obs, &moves, self.deadline).await?;
        Ok(moves.len())
    }

    /// Every staying pod that is not a staying master replicates a staying master.
    async fn repoint_replicas(&self, obs: &Observation) -> Result<()> {
        let (mut fixed, owned) = fixed_roles(obs);
        fixed
            .masters
            .retain(|m| self.staying.contains(m) && holds_slots(obs, m));
        fixed
            .replica_of
            .retain(|r, m| self.staying.contains(r) && fixed.masters.contains(m));
        let p = plan(&self.keep_topo, &fixed, &owned)?;
        for r in &p.replicas {
            if obs.master_of(&r.pod).as_deref() != Some(r.master.as_str()) {
                let master_id = obs
                    .id_of(&r.master)
                    .ok_or_else(|| anyhow!("{} has no id", r.master))?;
                self.ex
                    .run(&r.pod, vec![cmd(["CLUSTER", "REPLICATE", master_id])])
                    .await?;
            }
        }
        Ok(())
    }

    /// Forget the departing nodes on every staying one, all at once: FORGET bans a node for
    /// 60 s only, and a node not yet told would gossip it back.
    async fn forget_departed(&self, obs: &Observation) -> Result<()> {
        let gone: Vec<&str> = self.departing.iter().filter_map(|d| obs.id_of(d)).collect();
        let futs = self.staying.iter().map(|s| {
            let cmds: Vec<Cmd> = gone
                .iter()
                .map(|id| cmd(["CLUSTER", "FORGET", id]))
                .collect();
            let ex = &self.ex;
            async move {
                for (c, r) in cmds.iter().zip(ex.raw(s, &cmds).await?) {
                    let id = String::from_utf8_lossy(&c[2]);
                    match r {
                        Reply::Error(e) if RedisError::of(&e) == RedisError::UnknownNode => {}
                        Reply::Error(e) => bail!("{s}: CLUSTER FORGET {id} failed: {e}"),
                        _ => ex.log(format!("{s}: CLUSTER FORGET {id}")),
                    }
                }
                anyhow::Ok(())
            }
        });
        for r in fanout::all(futs).await {
            r?;
        }
        Ok(())
    }
}

/// The pods among `pods` that own a slot in any node's view.
fn slot_holders(obs: &Observation, pods: &[String]) -> BTreeSet<String> {
    let pod_of = obs.pod_of_id();
    obs.pods
        .iter()
        .flat_map(|p| &p.nodes)
        .filter(|n| !n.slots.is_empty())
        .filter_map(|n| pod_of.get(&n.id))
        .filter(|name| pods.contains(name))
        .cloned()
        .collect()
}

/// After finishing half-moved slots: wait until no node reports a slot open.
async fn wait_slots_closed(
    t: &dyn RedisTransport,
    topo: &Topology,
    deadline: Instant,
    opts: &FormOptions,
) -> Result<Observation> {
    poll_until(
        deadline,
        opts.poll,
        "every node to close the slots a previous run left half-moved",
        || async move {
            let obs = observe_all(t, topo, deadline, opts.poll).await?;
            Ok(if obs.has_open_slots() {
                Poll::Pending("a slot is still migrating or importing".to_string())
            } else {
                Poll::Ready(obs)
            })
        },
    )
    .await
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
            let holders = slot_holders(&obs, departing);
            if holders.is_empty() {
                return Ok(Poll::Ready(obs));
            }
            let holders: Vec<String> = holders.into_iter().collect();
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
