//! Apply: converge the live cluster on the plan, in dependency order, with server-side apply,
//! wait until the volumes are bound and the StatefulSet has rolled out, then run the Redis step
//! (form, heal, grow; drain before a shrink). What happens is reported as [`Event`]s.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

use crate::cluster::roll::RollOptions;
use crate::cluster::roll_exec::{self, RollRun};
use crate::cluster::step::{self, ClusterTarget, Via};
use crate::k8s::{self, Connection, FIELD_MANAGER};
use crate::ownership;
use crate::plan::{Action, ObjectPlan, Plan};
use crate::progress::{Event, Events};
use crate::render::apply_rank;
use crate::wait::{poll_until, Poll, TimedOut};

/// What `apply` may do, and until when.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Take over fields another field manager owns.
    pub force_conflicts: bool,
    /// Delete and re-create objects whose immutable fields change.
    pub allow_replace: bool,
    /// Run the Redis step (form, heal, grow, drain before a shrink) after the rollout.
    pub redis_step: bool,
    /// How the Redis step reaches the pods.
    pub via: Via,
    /// How pods on an old revision are replaced (cluster::roll).
    pub roll: RollOptions,
    /// When every wait (volumes, pods, the Redis step) gives up.
    pub deadline: Instant,
}

/// Why `apply` refuses a plan before writing anything.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "refusing to replace {}: read the consequences above, then re-run with --allow-replace",
        .0.join(", ")
    )]
    Replace(Vec<String>),
    #[error(
        "fields owned by other field managers would change:\n  {}\nRe-run with \
         --force-conflicts to take them over, drop them from the spec, or set them to the live \
         values. Nothing was written.",
        .0.join("\n  ")
    )]
    Conflicts(Vec<String>),
}

/// Refuses a plan that replaces objects without `allow_replace`, or takes over other managers'
/// fields without `force_conflicts`.
pub fn check_allowed(plan: &Plan, options: &ApplyOptions) -> Result<(), Refusal> {
    let replacing = replacements(plan);
    if !replacing.is_empty() && !options.allow_replace {
        return Err(Refusal::Replace(replacing));
    }
    let conflicting = conflicts(plan);
    if !conflicting.is_empty() && !options.force_conflicts {
        return Err(Refusal::Conflicts(conflicting));
    }
    Ok(())
}

/// Carries out a plan the caller has shown and had confirmed: drain departing Redis nodes, write
/// the objects, wait for the rollout, then form or heal each Redis Cluster.
pub async fn converge(
    connection: &Connection,
    plan: &Plan,
    options: &ApplyOptions,
    events: &dyn Events,
) -> anyhow::Result<()> {
    check_allowed(plan, options)?;
    if plan.summary().has_changes() {
        if options.redis_step {
            drain_departing_nodes(connection, plan, options, events).await?;
        }
        execute(
            connection,
            plan,
            options.force_conflicts,
            options.deadline,
            events,
        )
        .await?;
    }
    wait_for_rollout(connection, plan, options.deadline, events).await?;
    if options.redis_step {
        form_clusters(connection, plan, options, events).await?;
        roll_clusters(connection, plan, options, events).await?;
    }
    Ok(())
}

/// After the cluster is formed or verified: replaces the pods a new pod template left on an
/// old revision (the StatefulSet is `OnDelete`), replicas first, a failover before each master.
async fn roll_clusters(
    connection: &Connection,
    plan: &Plan,
    options: &ApplyOptions,
    events: &dyn Events,
) -> anyhow::Result<()> {
    let run = RollRun {
        via: options.via,
        options: options.roll,
        deadline: options.deadline,
        events,
    };
    for object in plan.objects.iter().filter(|o| o.kind() == "StatefulSet") {
        if let Some(target) = ClusterTarget::of(&object.desired) {
            roll_exec::roll(&connection.client, &target, &run).await?;
        }
    }
    Ok(())
}

/// The final step: form (or verify, resume, heal, grow) each Redis Cluster of the plan.
async fn form_clusters(
    connection: &Connection,
    plan: &Plan,
    options: &ApplyOptions,
    events: &dyn Events,
) -> anyhow::Result<()> {
    for object in plan.objects.iter().filter(|o| o.kind() == "StatefulSet") {
        let Some(target) = ClusterTarget::of(&object.desired) else {
            continue;
        };
        let left = options.deadline.saturating_duration_since(Instant::now());
        let outcome = step::converge(&connection.client, &target, options.via, left).await?;
        events.emit(Event::RedisConverged {
            statefulset: target.statefulset.clone(),
            changed: !outcome.already_healthy,
            commands: outcome.actions,
            verdict: outcome.report.headline,
            elapsed_ms: u64::try_from(outcome.elapsed_ms).unwrap_or(u64::MAX),
        });
    }
    Ok(())
}

/// Masters that a smaller StatefulSet would drop hand their slots and keys to the pods that stay
/// before the StatefulSet shrinks; shrinking first would lose those slots.
async fn drain_departing_nodes(
    connection: &Connection,
    plan: &Plan,
    options: &ApplyOptions,
    events: &dyn Events,
) -> anyhow::Result<()> {
    for object in plan.objects.iter().filter(|o| o.kind() == "StatefulSet") {
        let (Some(live), Some(wanted)) = (&object.live, ClusterTarget::of(&object.desired)) else {
            continue;
        };
        let replicas = |o: &serde_json::Value| o["spec"]["replicas"].as_u64().unwrap_or(0) as usize;
        let keep = replicas(&object.desired);
        let Some(current) = ClusterTarget::of(live) else {
            continue;
        };
        if replicas(live) <= keep {
            continue;
        }
        let start = Instant::now();
        let left = options.deadline.saturating_duration_since(start);
        let outcome = step::drain_before_shrink(
            &connection.client,
            &current,
            keep,
            wanted.masters,
            options.via,
            left,
        )
        .await?;
        events.emit(Event::RedisDrained {
            statefulset: current.statefulset.clone(),
            departed: outcome.departed,
            moved_slots: outcome.moved_slots,
            commands: outcome.actions,
            elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
    }
    Ok(())
}

/// How often rollout state is polled while waiting.
const POLL: Duration = Duration::from_millis(300);

/// Applies every object of the plan that changes, grouped by kind in apply order (volumes,
/// config, Service, StatefulSet); objects of one group go out concurrently, a bounded number
/// at a time.
pub async fn execute(
    connection: &Connection,
    plan: &Plan,
    force_conflicts: bool,
    deadline: Instant,
    events: &dyn Events,
) -> anyhow::Result<usize> {
    let mut groups: BTreeMap<u8, Vec<&ObjectPlan>> = BTreeMap::new();
    for object in &plan.objects {
        if matches!(
            object.action,
            Action::Add | Action::Change | Action::Replace
        ) {
            groups
                .entry(apply_rank(object.kind()))
                .or_default()
                .push(object);
        }
    }
    let members = plan.objects.iter().map(|o| &o.desired);
    let mut writes = usize::from(
        ownership::ensure_parent(connection, &plan.spec_name, &plan.namespace, members).await?,
    );
    for objects in groups.values() {
        crate::fanout::try_all(
            objects
                .iter()
                .map(|object| apply_object(connection, object, force_conflicts, deadline)),
        )
        .await?;
        writes += objects.len();
        for object in objects {
            events.emit(Event::Wrote {
                action: object.action,
                object: object.describe(),
            });
        }
    }
    // Prune last, in reverse dependency order (the plan lists them that way).
    for object in plan.objects.iter().filter(|o| o.action == Action::Destroy) {
        delete_planned(connection, object, deadline, events).await?;
        writes += 1;
    }
    Ok(writes)
}

/// Deletes an object the plan destroys (its dependents as [`k8s::cascade`] says), waits until
/// it is gone, and says so.
pub(crate) async fn delete_planned(
    connection: &Connection,
    object: &ObjectPlan,
    deadline: Instant,
    events: &dyn Events,
) -> anyhow::Result<()> {
    k8s::delete_and_wait(
        connection,
        &object.desired,
        &k8s::cascade(object.kind()),
        deadline,
    )
    .await?;
    events.emit(Event::Wrote {
        action: Action::Destroy,
        object: object.describe(),
    });
    Ok(())
}

async fn apply_object(
    connection: &Connection,
    object: &ObjectPlan,
    force_conflicts: bool,
    deadline: Instant,
) -> anyhow::Result<()> {
    let desired = &object.desired;
    let api = k8s::api_for(&connection.client, desired)?;
    let name = desired["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let explain = |error, verb| k8s::explain(error, verb, desired, &connection.source);
    if object.action == Action::Replace {
        // A StatefulSet is deleted with its pods orphaned: they keep serving and the new
        // StatefulSet adopts them. Nothing else the plugin manages has dependents to keep.
        let params = if object.kind() == "StatefulSet" {
            DeleteParams::orphan()
        } else {
            DeleteParams::background()
        };
        k8s::delete_and_wait(connection, desired, &params, deadline).await?;
    }
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if force_conflicts {
        params = params.force();
    }
    let patch = Patch::Apply(desired);
    api.patch(&name, &params, &patch)
        .await
        .map_err(|e| explain(e, "patch"))?;
    Ok(())
}

/// Waits for every StatefulSet of the plan: its claims Bound, then all pods Running and Ready on
/// the current revision. On timeout the error says which pods are not there yet and why.
pub async fn wait_for_rollout(
    connection: &Connection,
    plan: &Plan,
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
        wait_for_statefulset(connection, namespace, name, deadline, events).await?;
    }
    Ok(())
}

async fn wait_for_statefulset(
    connection: &Connection,
    namespace: &str,
    name: &str,
    deadline: Instant,
    events: &dyn Events,
) -> anyhow::Result<()> {
    let statefulsets: Api<StatefulSet> = Api::namespaced(connection.client.clone(), namespace);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(connection.client.clone(), namespace);
    let object = format!("StatefulSet {namespace}/{name}");
    // Only changes of state are events: a poll every 300 ms must not flood a JSON consumer.
    let last = std::sync::Mutex::new(String::new());
    let (statefulsets_ref, claims_ref, object_ref, last) = (&statefulsets, &claims, &object, &last);
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
            if state.done() {
                return Ok(Poll::Ready(state));
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

struct RolloutState {
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

/// One line per pod that is not Running and Ready, with the reason the kubelet gives.
async fn pod_problems(pods: &Api<Pod>, statefulset: &StatefulSet) -> String {
    let selector = statefulset
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await else {
        return String::new();
    };
    let mut lines = String::new();
    for pod in list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
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

/// Refuses a saved plan when any object, or (with `redis_via`) any Redis Cluster it planned for,
/// changed since it was made: applying it would act on a state the plan never showed
/// (Terraform's saved plans miss this).
pub async fn check_fresh(
    connection: &Connection,
    plan: &Plan,
    redis_via: Option<Via>,
) -> anyhow::Result<()> {
    let stale = crate::fanout::try_all(plan.objects.iter().map(|object| async move {
        let api = k8s::api_for(&connection.client, &object.desired)?;
        let name = object.desired["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        let live = api
            .get_opt(name)
            .await
            .map_err(|e| k8s::explain(e, "get", &object.desired, &connection.source))?;
        let now = live.and_then(|l| l.metadata.resource_version);
        anyhow::Ok((now != object.live_resource_version).then(|| {
            format!(
                "{} (resourceVersion {} at plan time, {} now)",
                object.describe(),
                object.live_resource_version.as_deref().unwrap_or("absent"),
                now.as_deref().unwrap_or("absent")
            )
        }))
    }))
    .await?;
    let mut stale: Vec<String> = stale.into_iter().flatten().collect();
    // The Redis step planned against what the pods reported: the same digest, or the plan is
    // stale too (a failover, a restart with new addresses, slots that moved).
    if let Some(via) = redis_via.filter(|_| plan.redis.iter().any(|p| p.observed.is_some())) {
        let now = crate::plan::preview_redis(connection, plan, via).await;
        for saved in plan.redis.iter().filter(|p| p.observed.is_some()) {
            let current = now
                .iter()
                .find(|p| p.namespace == saved.namespace && p.statefulset == saved.statefulset);
            if current.and_then(|p| p.observed.as_ref()) != saved.observed.as_ref() {
                stale.push(format!(
                    "Redis Cluster {}/{} (what its nodes report changed since the plan)",
                    saved.namespace, saved.statefulset
                ));
            }
        }
    }
    if !stale.is_empty() {
        bail!(
            "the saved plan is stale: the live cluster changed since it was made:\n  {}\nRun \
             `kubectl redis plan --out PLANFILE` again and review the new plan",
            stale.join("\n  ")
        );
    }
    Ok(())
}

/// Objects the plan wants to replace, for the refusal message.
pub fn replacements(plan: &Plan) -> Vec<String> {
    plan.objects
        .iter()
        .filter(|o| o.action == Action::Replace)
        .map(ObjectPlan::describe)
        .collect()
}

/// Conflicts the plan found, as `Kind ns/name: field (manager)`.
pub fn conflicts(plan: &Plan) -> Vec<String> {
    plan.objects
        .iter()
        .flat_map(|o| {
            o.conflicts
                .iter()
                .map(move |c| format!("{}: {} (owned by \"{}\")", o.describe(), c.field, c.manager))
        })
        .collect()
}
