//! Waiting for what was applied: volumes bound, the StatefulSet rolled out, and when it does
//! not, what its pods say.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use std::collections::BTreeSet;

use kube::api::{Api, DeleteParams, ListParams};

use crate::cluster::target::ClusterTarget;
use crate::k8s::{pods, Connection};
use crate::plan::Plan;
use crate::progress::{Event, Events};
use crate::wait::{poll_until, Poll, TimedOut};

/// How often rollout state is polled while waiting.
const POLL: Duration = Duration::from_millis(300);

/// Waits for every StatefulSet of the plan: its claims Bound, then all pods Running and Ready on
/// the current revision. On timeout the error says which pods are not there yet and why; a pod
/// on the new revision whose container keeps crashing ends the wait at once, with its log.
///
/// With `replace_broken` (the Redis step runs), a Redis Cluster's pod that is not Ready and
/// still on an old revision is replaced at once instead of waited for: the roll would replace
/// it anyway, it serves nothing, so its shard loses no member that answers, and its volume
/// stays. A bad revision that left a pod crash-looping is undone by applying a fixed spec.
pub async fn wait_for_rollout(
    connection: &Connection,
    plan: &Plan,
    replace_broken: bool,
    deadline: Instant,
    events: &dyn Events,
) -> anyhow::Result<()> {
    for object in plan.objects.iter().filter(|o| o.kind() == "StatefulSet") {
        let namespace = object.desired["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&plan.namespace);
        let name = object.desired["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        let replace = replace_broken && ClusterTarget::of(&object.desired).is_some();
        wait_for_statefulset(connection, namespace, name, replace, deadline, events).await?;
    }
    Ok(())
}

pub(super) async fn wait_for_statefulset(
    connection: &Connection,
    namespace: &str,
    name: &str,
    replace_broken: bool,
    deadline: Instant,
    events: &dyn Events,
) -> anyhow::Result<()> {
    let statefulsets: Api<StatefulSet> = Api::namespaced(connection.client.clone(), namespace);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(connection.client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(connection.client.clone(), namespace);
    let object = format!("StatefulSet {namespace}/{name}");
    // Only changes of state are events: a poll every 300 ms must not flood a JSON consumer.
    let last = std::sync::Mutex::new(String::new());
    let replaced = std::sync::Mutex::new(BTreeSet::new());
    let (statefulsets_ref, claims_ref, pods_ref, object_ref, last, replaced) =
        (&statefulsets, &claims, &pods, &object, &last, &replaced);
    let waited = poll_until(
        deadline,
        POLL,
        &format!("{object} to roll out"),
        move || async move {
            let statefulset = statefulsets_ref
                .get(name)
                .await
                .with_context(|| format!("cannot read {object_ref}"))?;
            let state = RolloutState::of(&statefulset, claims_ref).await?;
            let pods = list_pods(pods_ref, &statefulset).await?;
            // The StatefulSet's status lags its pods: a pod deleted a moment ago (by a roll that
            // was killed, say) still counts as ready there. The pods themselves have the last word.
            let serving = pods
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none() && pods::is_ready(p))
                .count();
            if state.done() && i32::try_from(serving).is_ok_and(|n| n >= state.replicas) {
                return Ok(Poll::Ready(state));
            }
            for pod in pods {
                let pod_name = pod.metadata.name.clone().unwrap_or_default();
                let current = pods::revision(&pod) == Some(state.revision.as_str());
                if pod.metadata.deletion_timestamp.is_some() || pods::is_ready(&pod) {
                    continue;
                }
                if current {
                    if let Some(crash) = pods::crash_loop(&pod) {
                        return Err(pods::crash_error(pods_ref, &pod_name, &crash).await);
                    }
                } else if replace_broken && state.settled {
                    let uid = pod.metadata.uid.clone().unwrap_or_default();
                    if !replaced
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(uid)
                    {
                        continue;
                    }
                    let why = pods::crash_loop(&pod).unwrap_or_else(|| "not Ready".into());
                    pods_ref
                        .delete(&pod_name, &DeleteParams::default())
                        .await
                        .with_context(|| format!("cannot delete pod {pod_name} to replace it"))?;
                    events.emit(Event::Waiting {
                        object: object_ref.clone(),
                        state: format!(
                            "replaced pod {pod_name}, which is not Ready on an old revision \
                             ({why}): it serves nothing, and it comes back on revision {} with \
                             its volume",
                            state.revision
                        ),
                    });
                }
            }
            let now = state.progress();
            let mut last = last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if *last != now {
                events.emit(Event::Waiting {
                    object: object_ref.clone(),
                    state: now.clone(),
                });
                last.clone_from(&now);
            }
            Ok(Poll::Pending(now))
        },
    )
    .await;
    match waited {
        Ok(state) => {
            let state = if state.updated < state.replicas {
                format!(
                    "{} claims bound, {}/{} pods ready, {}/{} on revision {} (OnDelete: the \
                     Redis step replaces the others one at a time)",
                    state.bound,
                    state.ready,
                    state.replicas,
                    state.updated,
                    state.replicas,
                    state.revision
                )
            } else {
                format!(
                    "{} claims bound, {}/{} pods ready on revision {}",
                    state.bound, state.ready, state.replicas, state.revision
                )
            };
            events.emit(Event::Waited { object, state });
            Ok(())
        }
        Err(error) if error.is::<TimedOut>() => {
            let pods: Api<Pod> = Api::namespaced(connection.client.clone(), namespace);
            let detail = match statefulsets.get(name).await {
                Ok(statefulset) => pod_problems(&pods, &statefulset).await,
                Err(_) => String::new(),
            };
            bail!(
                "{error}.{detail} Raise --timeout, or look at `kubectl -n {namespace} describe pods`"
            )
        }
        Err(error) => Err(error),
    }
}

pub(super) struct RolloutState {
    replicas: i32,
    ready: i32,
    updated: i32,
    claims: usize,
    bound: usize,
    revision: String,
    settled: bool,
    /// `updateStrategy: OnDelete`: the controller replaces no pod, the Redis step does.
    on_delete: bool,
}

impl RolloutState {
    async fn of(
        statefulset: &StatefulSet,
        claims: &Api<PersistentVolumeClaim>,
    ) -> anyhow::Result<RolloutState> {
        let name = statefulset.metadata.name.clone().unwrap_or_default();
        let spec = statefulset.spec.clone().unwrap_or_default();
        let status = statefulset.status.clone().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1);
        let templates: Vec<String> = spec
            .volume_claim_templates
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.metadata.name.clone())
            .collect();
        let wanted: Vec<String> = templates
            .iter()
            .flat_map(|t| {
                let name = &name;
                (0..replicas).map(move |i| format!("{t}-{name}-{i}"))
            })
            .collect();
        let all = ListParams::default();
        let listed = claims.list(&all).await?;
        let bound = listed
            .items
            .iter()
            .filter(|c| wanted.contains(&c.metadata.name.clone().unwrap_or_default()))
            .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
            .count();
        let generation = statefulset.metadata.generation.unwrap_or(0);
        let on_delete = spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref())
            == Some("OnDelete");
        let settled = status.observed_generation.unwrap_or(0) >= generation
            && status.update_revision.is_some()
            && (on_delete || status.current_revision == status.update_revision);
        Ok(RolloutState {
            replicas,
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            claims: wanted.len(),
            bound,
            revision: status.update_revision.unwrap_or_default(),
            settled,
            on_delete,
        })
    }

    fn progress(&self) -> String {
        format!(
            "{}/{} claims bound, {}/{} pods ready, {}/{} on the new revision",
            self.bound, self.claims, self.ready, self.replicas, self.updated, self.replicas
        )
    }

    fn done(&self) -> bool {
        self.settled
            && self.bound == self.claims
            && self.ready == self.replicas
            && (self.on_delete || self.updated == self.replicas)
    }
}

/// The pods of a StatefulSet, by its selector.
async fn list_pods(pods: &Api<Pod>, statefulset: &StatefulSet) -> anyhow::Result<Vec<Pod>> {
    let selector = statefulset
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Ok(pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items)
}

/// One line per pod that is not Running and Ready, with the reason the kubelet gives.
pub(super) async fn pod_problems(pods: &Api<Pod>, statefulset: &StatefulSet) -> String {
    let Ok(list) = list_pods(pods, statefulset).await else {
        return String::new();
    };
    let mut lines = String::new();
    for pod in list {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ready = pods::is_ready(&pod);
        let status = pod.status.unwrap_or_default();
        if !ready {
            let waiting = status
                .container_statuses
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
                .collect::<Vec<_>>()
                .join(", ");
            lines.push_str(&format!(
                " Pod {name}: {}{}.",
                status.phase.unwrap_or_else(|| "Pending".into()),
                if waiting.is_empty() {
                    String::new()
                } else {
                    format!(" ({waiting})")
                }
            ));
        }
    }
    lines
}
