//! The executor: form, resume or heal a cluster so it matches the plan, then wait (with a
//! deadline) until every node agrees. It is a reconcile loop over observed state, so the same
//! call forms a fresh cluster, resumes a half-formed one, heals stale addresses after restarts,
//! re-pairs replicas the scheduler put beside their master, and leaves a healthy cluster alone.
//!
//! It never runs `CLUSTER RESET` or `FLUSHALL`: anything that would need them is a refusal.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::fanout;
use crate::wait::{deadline_after, poll_last, poll_until, Poll};
use anyhow::{bail, Result};
use serde::Serialize;

use super::decide::{check_safe, fixed_roles, missing_meets};
use super::exec::{not_converged, observe_all, wait_converged, Exec, FormOptions};
use super::finding::Kind;
use super::observe::{observe, observe_pod, Observation};
use super::plan::{plan, Plan};
use super::resp::{RedisError, Reply};
use super::spread::respread;
use super::topology::Topology;
use super::transport::{cmd, show_cmd, Cmd, RedisTransport};
use super::verify::{verify, Report};
use super::{migrate, scale};

/// What `ensure_cluster` did.
#[derive(Debug, Clone, Serialize)]
pub struct FormOutcome {
    /// The cluster was healthy already: verified and left alone.
    pub already_healthy: bool,
    /// Commands that changed something, one line each ("redis-cluster-3: CLUSTER REPLICATE …").
    pub actions: Vec<String>,
    pub plan: Option<Plan>,
    /// The final verification (healthy).
    pub report: Report,
    pub elapsed_ms: u128,
}

/// `meet`, repeated while gossip settles: at most once a second, and only when every pod answers
/// (a pod still starting would be met at an address it does not serve yet).
pub(crate) struct Remeet {
    last: Mutex<Instant>,
}

impl Remeet {
    pub(crate) fn new() -> Remeet {
        Remeet {
            last: Mutex::new(Instant::now()),
        }
    }

    pub(crate) async fn if_due(&self, ex: &Exec<'_>, obs: &Observation) -> Result<()> {
        let due = {
            let mut at = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let due = at.elapsed() >= Duration::from_secs(1) && obs.pods.iter().all(|p| p.ok());
            if due {
                *at = Instant::now();
            }
            due
        };
        if due {
            meet(ex, obs).await?;
        }
        Ok(())
    }
}

pub(crate) async fn meet(ex: &Exec<'_>, obs: &Observation) -> Result<()> {
    let meets = missing_meets(obs);
    let port = ex.topo.port.to_string();
    let futs = meets.iter().map(|(from, to)| {
        let cmds = to
            .iter()
            .map(|(ip, _)| cmd(["CLUSTER", "MEET", ip.as_str(), port.as_str()]))
            .collect();
        ex.run(from, cmds)
    });
    for r in fanout::all(futs).await {
        r?;
    }
    Ok(())
}

/// Form, resume or heal the cluster described by `topo`, then wait until it verifies healthy.
/// A healthy cluster is verified and left alone (`already_healthy`).
pub async fn ensure_cluster(
    t: &dyn RedisTransport,
    topo: &Topology,
    opts: &FormOptions,
) -> Result<FormOutcome> {
    let start = Instant::now();
    let deadline = opts.deadline()?;
    topo.validate()?;
    let obs = observe_all(t, topo, deadline, opts.poll).await?;
    let report = verify(topo, &obs);
    // A master with replicas but no slots verifies healthy yet still awaits its share (a
    // scale-out that stopped before moving slots): not "left alone".
    if report.healthy && !obs.has_underfilled_master(topo.masters) {
        return Ok(FormOutcome {
            already_healthy: true,
            actions: Vec::new(),
            plan: None,
            report,
            elapsed_ms: start.elapsed().as_millis(),
        });
    }
    check_safe(&obs)?;
    let (fixed, owned) = fixed_roles(&obs);
    let plan = plan(topo, &fixed, &owned)?;
    let ex = Exec::new(t, topo);

    assign_slots_and_epochs(&ex, &obs, &plan).await?;
    meet(&ex, &obs).await?;
    replicate(&ex, &obs, &plan, deadline, opts.poll).await?;
    if obs.has_open_slots() {
        // A previous run left them half-migrated: finish moving them, keys included.
        migrate::finish_open_slots(&ex, &obs, deadline).await?;
    }
    let mut report = wait_formed(&ex, topo, deadline, opts, Settled::ButPlacement).await?;
    if !report.healthy {
        spread_replicas(&ex, deadline, opts.poll).await?;
        report = wait_formed(&ex, topo, deadline, opts, Settled::Healthy).await?;
    }
    if share_slots_with_new_masters(&ex, &plan, deadline).await? {
        report = wait_formed(&ex, topo, deadline, opts, Settled::Healthy).await?;
    }
    Ok(FormOutcome {
        already_healthy: false,
        actions: ex.take_actions(),
        plan: Some(plan),
        report,
        elapsed_ms: start.elapsed().as_millis(),
    })
}

/// Slots and config epochs, before any MEET: SET-CONFIG-EPOCH only works on a node that knows
/// no other, and distinct epochs spare the cluster its epoch-collision dance.
async fn assign_slots_and_epochs(ex: &Exec<'_>, obs: &Observation, plan: &Plan) -> Result<()> {
    let claimed = obs.claimed_slots();
    let max_epoch = obs
        .pods
        .iter()
        .flat_map(|p| p.nodes.iter().map(|n| n.config_epoch))
        .max()
        .unwrap_or(0);
    let futs = plan.masters.iter().enumerate().map(|(i, m)| {
        let mut cmds: Vec<Cmd> = Vec::new();
        let add: Vec<u16> = m
            .ranges
            .iter()
            .flat_map(|&(a, b)| a..=b)
            .filter(|s| !claimed.contains(s))
            .collect();
        if !add.is_empty() {
            let mut c = cmd(["CLUSTER", "ADDSLOTS"]);
            c.extend(add.iter().map(|s| s.to_string().into_bytes()));
            cmds.push(c);
        }
        let set_epoch = obs
            .get(&m.pod)
            .is_some_and(|p| p.lone() && p.myself().is_some_and(|me| me.config_epoch == 0));
        let epoch = (max_epoch + 1 + i as u64).to_string();
        async move {
            ex.run(&m.pod, cmds).await?;
            if set_epoch {
                // Another pod's MEET may have reached this one since we looked; then Redis refuses
                // and its epoch-collision handling assigns one instead, which is fine.
                let set = cmd(["CLUSTER", "SET-CONFIG-EPOCH", epoch.as_str()]);
                match ex.raw(&m.pod, std::slice::from_ref(&set)).await?.first() {
                    Some(Reply::Error(e)) if RedisError::of(e) == RedisError::KnowsOtherNodes => {}
                    Some(Reply::Error(e)) => {
                        bail!("{}: {} failed: {e}", m.pod, show_cmd(&set))
                    }
                    _ => ex.log(format!("{}: {}", m.pod, show_cmd(&set))),
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

/// REPLICATE, as soon as each replica has learnt its master's id by gossip.
async fn replicate(
    ex: &Exec<'_>,
    obs: &Observation,
    plan: &Plan,
    deadline: Instant,
    poll: Duration,
) -> Result<()> {
    let (t, topo) = (ex.t, ex.topo);
    let futs = plan.replicas.iter().filter_map(|r| {
        let master_id = obs.id_of(&r.master)?.to_string();
        let current = obs.get(&r.pod)?.myself()?.master_id.clone();
        if current.as_deref() == Some(master_id.as_str()) {
            return None;
        }
        Some(async move {
            let what = format!("{} to learn its master {} ({master_id})", r.pod, r.master);
            let master_id = master_id.as_str();
            poll_until(deadline, poll, &what, || async move {
                let addr = topo.addr(topo.pod(&r.pod).expect("planned pod"))?;
                let c = cmd(["CLUSTER", "REPLICATE", master_id]);
                let reply = t.pipeline(&addr, std::slice::from_ref(&c)).await?;
                match &reply[0] {
                    // Gossip has not brought the master's id here yet.
                    Reply::Error(e)
                        if matches!(
                            RedisError::of(e),
                            RedisError::UnknownNode | RedisError::ReplicateAReplica
                        ) =>
                    {
                        Ok(Poll::Pending(e.clone()))
                    }
                    Reply::Error(e) => bail!(
                        "{}: CLUSTER REPLICATE {} ({master_id}) failed: {e}",
                        r.pod,
                        r.master
                    ),
                    _ => {
                        ex.log(format!(
                            "{}: CLUSTER REPLICATE {master_id} ({})",
                            r.pod, r.master
                        ));
                        Ok(Poll::Ready(()))
                    }
                }
            })
            .await
        })
    });
    for r in fanout::all(futs).await {
        r?;
    }
    Ok(())
}

/// New masters without slots (a scale-out), or with too few (one that stopped midway): move
/// slots to them, keys included, until the masters are balanced. Whether anything moved.
async fn share_slots_with_new_masters(
    ex: &Exec<'_>,
    plan: &Plan,
    deadline: Instant,
) -> Result<bool> {
    let obs = observe(ex.t, ex.topo).await;
    let (_, owned) = fixed_roles(&obs);
    let masters: Vec<String> = plan.masters.iter().map(|m| m.pod.clone()).collect();
    if !scale::underfilled(&owned, &masters) {
        return Ok(false);
    }
    let moves = scale::balance_moves(&owned, &masters, &[]);
    migrate::move_slots(ex, &obs, &moves, deadline).await?;
    Ok(true)
}

/// What [`wait_formed`] waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// The cluster verifies healthy.
    Healthy,
    /// Healthy but for masters whose replicas share their node, which [`spread_replicas`]
    /// fixes (its moves need a cluster that agrees on everything else).
    ButPlacement,
}

/// Waits until every node agrees (and verifies healthy, or as `settled` says), re-introducing
/// pairs whose handshake timed out meanwhile.
async fn wait_formed(
    ex: &Exec<'_>,
    topo: &Topology,
    deadline: Instant,
    opts: &FormOptions,
    settled: Settled,
) -> Result<Report> {
    let start = Instant::now();
    // Meets are repeated until gossip has joined everyone.
    let remeet = &Remeet::new();
    let waited = poll_last(deadline, opts.poll, || async move {
        let obs = observe(ex.t, topo).await;
        let report = verify(topo, &obs);
        let placement_only = settled == Settled::ButPlacement
            && report
                .problems
                .iter()
                .all(|p| p.kind == Kind::ReplicasOnMasterNode);
        if report.healthy || placement_only {
            return Ok(Poll::Ready(report));
        }
        remeet.if_due(ex, &obs).await?;
        Ok(Poll::Pending(report))
    })
    .await?;
    waited.map_err(|report| {
        not_converged(
            "the Redis Cluster did not converge",
            start.elapsed(),
            report,
        )
    })
}

/// Re-pairs replicas so every master has one on another Kubernetes node
/// ([`super::spread`]), one `CLUSTER REPLICATE` at a time, each only after the previous moved
/// replica has finished its full sync from its new master: a swap leaves one master without a
/// replica for two syncs, never two masters at once. Observes again before every move, and moves
/// only while every pod answers and every replica's link is up.
async fn spread_replicas(ex: &Exec<'_>, deadline: Instant, poll: Duration) -> Result<()> {
    let (t, topo) = (ex.t, ex.topo);
    // Each move fixes a master or completes a swap: more than two per pod means the cluster
    // changes under us.
    for _ in 0..2 * topo.pods.len() {
        let obs = observe(t, topo).await;
        let Some(next) = respread(&obs).moves.into_iter().next() else {
            return Ok(());
        };
        if let Some(p) = obs
            .pods
            .iter()
            .find(|p| !p.ok() || p.master_link_up == Some(false))
        {
            bail!(
                "not re-pairing replicas while {} is not in sync: {}",
                p.pod.name,
                p.error
                    .as_ref()
                    .map_or("replication link down".to_string(), ToString::to_string)
            );
        }
        let Some(to_id) = obs.id_of(&next.to).map(str::to_string) else {
            bail!("{} reported no node id", next.to);
        };
        ex.run(&next.replica, vec![cmd(["CLUSTER", "REPLICATE", &to_id])])
            .await?;
        let pod = topo
            .pod(&next.replica)
            .ok_or_else(|| anyhow::anyhow!("unknown pod {}", next.replica))?;
        let what = format!("{} to finish its full sync from {}", next.replica, next.to);
        let to_id = to_id.as_str();
        poll_until(deadline, poll, &what, || async move {
            let st = observe_pod(t, topo, pod).await;
            let follows = st.myself().and_then(|m| m.master_id.as_deref()) == Some(to_id);
            Ok(if follows && st.master_link_up == Some(true) {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{} is syncing", pod.name))
            })
        })
        .await?;
    }
    bail!(
        "re-pairing replicas did not settle after {} moves",
        2 * topo.pods.len()
    )
}

/// Observe and verify, for `status` and for the check after `apply`.
pub async fn verify_cluster(t: &dyn RedisTransport, topo: &Topology) -> Report {
    verify(topo, &observe(t, topo).await)
}

/// Wait until the cluster verifies healthy without changing anything (after a single pod
/// restart, update-node.sh and gossip should heal it on their own; this checks that they did).
pub async fn wait_healthy(
    t: &dyn RedisTransport,
    topo: &Topology,
    opts: &FormOptions,
) -> Result<Report> {
    wait_converged(
        t,
        topo,
        deadline_after(opts.timeout)?,
        opts.poll,
        "the Redis Cluster did not become healthy",
    )
    .await
}
