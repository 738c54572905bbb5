//! The roll's executor: observe, let [`super::roll::next`] decide, act, repeat. Every wait
//! goes through [`poll_until`] with the command's deadline; the state is read again from the
//! API and the pods each time, so a roll that was interrupted resumes where the cluster is.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use kube::Client;

use super::exec::Exec;
use super::form::meet;
use super::observe::{observe, observe_pod, PodState};
use super::roll::{self, outdated_pods, Facts, Next, Role, RollAction, RollOptions};
use super::step::{transport, ClusterTarget, Via};
use super::topology::Topology;
use super::transport::{cmd, RedisTransport};
use super::verify::{verify, Report};
use crate::progress::{Event, Events};
use crate::wait::{poll_until, Poll, TimedOut};

/// How often the cluster is looked at while a step settles.
const POLL: Duration = Duration::from_millis(250);
/// How long one `CLUSTER FAILOVER` may take before it is asked again (Redis gives a manual
/// failover 5 s before it gives up on its own).
const FAILOVER_WAIT: Duration = Duration::from_secs(12);
/// How many times a failover is asked before the roll gives up.
const FAILOVER_ATTEMPTS: usize = 3;

/// What a finished roll did.
#[derive(Debug, Clone)]
pub struct RollOutcome {
    pub revision: String,
    pub replaced: usize,
    pub failovers: usize,
    /// The verification after the last pod settled.
    pub report: Report,
    pub elapsed_ms: u64,
}

/// What a roll needs besides the cluster: how to reach the pods, what the user allows, when
/// to give up, where progress goes.
pub struct RollRun<'a> {
    pub via: Via,
    pub options: RollOptions,
    pub deadline: Instant,
    pub events: &'a dyn Events,
}

fn ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Replaces every pod of `target` that is not on the StatefulSet's update revision, in the
/// safe order, and reports it (`rollFinished` last); None when none is out of date.
pub async fn roll(
    client: &Client,
    target: &ClusterTarget,
    run: &RollRun<'_>,
) -> anyhow::Result<Option<RollOutcome>> {
    let start = Instant::now();
    let redis = transport(run.via, client, &target.namespace);
    let t = redis.as_ref();
    if outdated_pods(&target.topology(client).await?).is_empty() {
        return Ok(None);
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &target.namespace);
    let statefulset = target.statefulset.clone();
    let (mut replaced, mut failovers) = (0, 0);
    let mut pending: Option<(String, Role, Instant)> = None;
    let mut failed_over: Option<String> = None;
    loop {
        let (next, topo) = settle(client, target, t, run).await?;
        let revision = topo.update_revision.clone().unwrap_or_default();
        if let Some((pod, role, since)) = pending.take() {
            run.events.emit(Event::RollReplaced {
                statefulset: statefulset.clone(),
                pod,
                role,
                revision: revision.clone(),
                elapsed_ms: ms(since),
            });
            replaced += 1;
        }
        match next {
            None => {
                let report = verify(&topo, &observe(t, &topo).await);
                run.events.emit(Event::RollFinished {
                    statefulset,
                    revision: revision.clone(),
                    replaced,
                    failovers,
                    verdict: report.headline.clone(),
                    elapsed_ms: ms(start),
                });
                return Ok(Some(RollOutcome {
                    revision,
                    replaced,
                    failovers,
                    report,
                    elapsed_ms: ms(start),
                }));
            }
            Some(RollAction::Replace { pod, role }) => {
                let role = match failed_over.take() {
                    Some(master) if master == pod => Role::FormerMaster,
                    _ => role,
                };
                // The decision came from this very listing; still, never delete a pod the
                // revision does not call out of date.
                if !outdated_pods(&topo).contains(&pod) {
                    bail!("internal error: the roll chose {pod}, which is on the update revision");
                }
                pods.delete(&pod, &DeleteParams::default())
                    .await
                    .with_context(|| format!("cannot delete pod {pod} to replace it"))?;
                pending = Some((pod, role, Instant::now()));
            }
            Some(RollAction::Failover { replica, master }) => {
                let since = Instant::now();
                failover(t, &topo, &replica, &master, run.deadline).await?;
                run.events.emit(Event::RollFailedOver {
                    statefulset: statefulset.clone(),
                    replica,
                    master: master.clone(),
                    elapsed_ms: ms(since),
                });
                failovers += 1;
                failed_over = Some(master);
            }
        }
    }
}

/// Waits until the roll may take its next step, and says which (None: done). While it waits,
/// pods whose peers have not learnt their new address are introduced again (`CLUSTER MEET`),
/// and each change of what it waits for is a `waiting` event.
async fn settle(
    client: &Client,
    target: &ClusterTarget,
    t: &dyn RedisTransport,
    run: &RollRun<'_>,
) -> anyhow::Result<(Option<RollAction>, Topology)> {
    let object = format!("Redis Cluster {}/{}", target.namespace, target.statefulset);
    let last = Mutex::new(String::new());
    let last_meet = Mutex::new(Instant::now());
    let (object_ref, last, last_meet) = (&object, &last, &last_meet);
    poll_until(
        run.deadline,
        POLL,
        &format!("{object} to settle between two steps of the roll"),
        move || async move {
            let topo = target.topology(client).await?;
            let obs = observe(t, &topo).await;
            let why = match roll::next(&Facts::new(&topo, &obs), run.options)? {
                Next::Done => return Ok(Poll::Ready((None, topo))),
                Next::Act(action) => return Ok(Poll::Ready((Some(action), topo))),
                Next::Wait(why) => why,
            };
            let heal = {
                let mut at = last_meet.lock().unwrap_or_else(|p| p.into_inner());
                let due = at.elapsed() >= Duration::from_secs(1) && obs.pods.iter().all(|p| p.ok());
                if due {
                    *at = Instant::now();
                }
                due
            };
            if heal {
                meet(&Exec::new(t, &topo), &obs).await?;
            }
            let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
            if *last != why {
                run.events.emit(Event::Waiting {
                    object: object_ref.clone(),
                    state: format!("rolling: {why}"),
                });
                last.clone_from(&why);
            }
            Ok(Poll::Pending(why))
        },
    )
    .await
}

/// `CLUSTER FAILOVER` on `replica` (the Redis 5.0 manual failover: its master stops taking
/// writes until the replica has them all, then the replica takes over), then waits until both
/// report the swap; asked again when Redis gave up on it.
async fn failover(
    t: &dyn RedisTransport,
    topo: &Topology,
    replica: &str,
    master: &str,
    deadline: Instant,
) -> anyhow::Result<()> {
    let ex = Exec::new(t, topo);
    let (Some(r), Some(m)) = (topo.pod(replica), topo.pod(master)) else {
        bail!("internal error: {replica} or {master} is not a pod of the StatefulSet");
    };
    let what = format!("{replica} to take over from {master} (CLUSTER FAILOVER)");
    for attempt in 1..=FAILOVER_ATTEMPTS {
        ex.run(replica, vec![cmd(["CLUSTER", "FAILOVER"])]).await?;
        let until = deadline.min(Instant::now() + FAILOVER_WAIT);
        let swapped = poll_until(until, POLL, &what, move || async move {
            let (new, old) = tokio::join!(observe_pod(t, topo, r), observe_pod(t, topo, m));
            Ok(if swapped(&new, &old) {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{replica} is not master of {master}'s slots yet"))
            })
        })
        .await;
        match swapped {
            Ok(()) => return Ok(()),
            Err(e)
                if e.is::<TimedOut>()
                    && attempt < FAILOVER_ATTEMPTS
                    && Instant::now() < deadline =>
            {
                tracing::info!("{e}; asking {replica} again");
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

/// The role swap, as both report it: `new` is a master with slots, `old` replicates it.
fn swapped(new: &PodState, old: &PodState) -> bool {
    let (Some(n), Some(o)) = (new.myself(), old.myself()) else {
        return false;
    };
    n.is_master() && !n.slots.is_empty() && o.is_replica() && o.master_id.as_ref() == Some(&n.id)
}
