//! Apply: converge the live cluster on the plan, in dependency order, with server-side apply,
//! wait until the volumes are bound and the StatefulSet has rolled out, then run the Redis step
//! (form, heal, grow; drain before a shrink). What happens is reported as [`Event`]s.

mod execute;
mod fresh;
mod rollout;

use std::time::Instant;

use crate::cluster::roll::RollOptions;
use crate::cluster::roll_exec::{self, RollRun};
use crate::cluster::target::{self, ClusterTarget, Via};
use crate::k8s::Connection;
use crate::plan::Plan;
use crate::progress::{Event, Events};

/// What `apply` may do, and until when.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Take over fields another field manager owns.
    pub force_conflicts: bool,
    /// Delete and re-create objects whose immutable fields change.
    pub allow_replace: bool,
    /// Take existing objects kubectl-redis does not manage under this spec.
    pub adopt: bool,
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
    #[error(
        "refusing to adopt {}: they exist and kubectl-redis does not manage them. Adopting puts \
         them under this spec, so that a later apply may change them and destroy or prune may \
         delete them (a Namespace only if kubectl-redis created it). Re-run with --adopt to take \
         them over, or give the spec's objects other names. Nothing was written.",
        .0.join(", ")
    )]
    Adopt(Vec<String>),
}

/// Refuses a plan that adopts unmanaged objects without `adopt`, replaces objects without
/// `allow_replace`, or takes over other managers' fields without `force_conflicts`.
pub fn check_allowed(plan: &Plan, options: &ApplyOptions) -> Result<(), Refusal> {
    let adopting: Vec<String> = (plan.objects.iter().filter(|o| o.adopt))
        .map(|o| o.describe())
        .collect();
    if !adopting.is_empty() && !options.adopt {
        return Err(Refusal::Adopt(adopting));
    }
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
        } else {
            // A saved plan may have been made with the Redis step; this apply skips it.
            crate::plan::refuse_undrained_shrinks(connection, plan, options.via).await?;
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
    wait_for_rollout(
        connection,
        plan,
        options.redis_step,
        options.deadline,
        events,
    )
    .await?;
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
    for target in redis_clusters(plan) {
        roll_exec::roll(&connection.client, &target, &run).await?;
    }
    Ok(())
}

/// The Redis Clusters the plan renders: one per StatefulSet that runs one.
fn redis_clusters(plan: &Plan) -> impl Iterator<Item = ClusterTarget> + '_ {
    plan.objects
        .iter()
        .filter(|o| o.kind() == "StatefulSet")
        .filter_map(|o| ClusterTarget::of(&o.desired))
}

/// The final step: form (or verify, resume, heal, grow) each Redis Cluster of the plan.
async fn form_clusters(
    connection: &Connection,
    plan: &Plan,
    options: &ApplyOptions,
    events: &dyn Events,
) -> anyhow::Result<()> {
    for target in redis_clusters(plan) {
        let left = options.deadline.saturating_duration_since(Instant::now());
        let outcome = target::converge(&connection.client, &target, options.via, left).await?;
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
        let outcome = target::drain_before_shrink(
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

pub(crate) use execute::delete_planned;
pub use execute::execute;
pub use fresh::{check_fresh, conflicts, replacements};
pub use rollout::wait_for_rollout;
