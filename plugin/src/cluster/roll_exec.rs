//! The roll's executor: observe, let [`super::roll::next`] decide, act, repeat. Every wait
//! goes through [`poll_until`] with the command's deadline; the state is read again from the
//! API and the pods each time, so a roll that was interrupted resumes where the cluster is.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use kube::Client;

use super::exec::{failover, Exec};
use super::form::Remeet;
use super::observe::observe;
use super::roll::{self, outdated_pods, Facts, Next, Role, RollAction, RollOptions};
use super::target::{transport, ClusterTarget, Via};
use super::topology::{PodInfo, Topology};
use super::transport::RedisTransport;
use super::verify::verify;
use crate::progress::{Event, Events};
use crate::wait::{poll_until, Poll};

/// How often the cluster is looked at while a step settles.
const POLL: Duration = Duration::from_millis(250);

/// What a roll needs besides the cluster: how to reach the pods, what the user allows, when
/// to give up, where progress goes.
pub(crate) struct RollRun<'a> {
    pub via: Via,
    pub options: RollOptions,
    pub deadline: Instant,
    pub events: &'a dyn Events,
}

fn ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Replaces every pod of `target` that is not on the StatefulSet's update revision, in the
/// safe order, and reports it as events (`rollFinished` last, with the counts and the verdict);
/// nothing when none is out of date.
pub(crate) async fn roll(
    client: &Client,
    target: &ClusterTarget,
    run: &RollRun<'_>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let redis = transport(run.via, client, &target.namespace);
    let t = redis.as_ref();
    if outdated_pods(&target.topology(client).await?).is_empty() {
        return Ok(());
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &target.namespace);
    let statefulset = target.statefulset.clone();
    let (mut replaced, mut failovers) = (0, 0);
    let mut pending: Option<(String, Role, Instant)> = None;
    let mut failed_over: Option<String> = None;
    loop {
        let (next, topo) = settle(client, target, &pods, t, run).await?;
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
                    revision,
                    replaced,
                    failovers,
                    verdict: report.headline,
                    elapsed_ms: ms(start),
                });
                return Ok(());
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
                failover(&Exec::new(t, &topo), &replica, &master, run.deadline).await?;
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
    pods: &Api<Pod>,
    t: &dyn RedisTransport,
    run: &RollRun<'_>,
) -> anyhow::Result<(Option<RollAction>, Topology)> {
    let object = format!("Redis Cluster {}/{}", target.namespace, target.statefulset);
    let last = Mutex::new(String::new());
    let remeet = Remeet::new();
    let (object_ref, last, remeet) = (&object, &last, &remeet);
    poll_until(
        run.deadline,
        POLL,
        &format!("{object} to settle between two steps of the roll"),
        move || async move {
            let topo = target.topology(client).await?;
            // A pod the roll replaced that cannot start on the new revision stops the roll
            // at once: waiting would not fix it, and the next pod must not follow it.
            let updated = |p: &&PodInfo| p.revision.is_some() && p.revision == topo.update_revision;
            if let Some(pod) = topo.pods.iter().filter(updated).find(|p| p.crash.is_some()) {
                let crash = pod.crash.as_deref().unwrap_or_default();
                return Err(crate::k8s::pods::crash_error(pods, &pod.name, crash).await);
            }
            let obs = observe(t, &topo).await;
            let why = match roll::next(&Facts::new(&topo, &obs), run.options)? {
                Next::Done => return Ok(Poll::Ready((None, topo))),
                Next::Act(action) => return Ok(Poll::Ready((Some(action), topo))),
                Next::Wait(why) => why,
            };
            remeet.if_due(&Exec::new(t, &topo), &obs).await?;
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
