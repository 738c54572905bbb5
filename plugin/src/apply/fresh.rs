//! Whether a saved plan still holds, and what it would replace or take over.

use anyhow::bail;

use crate::cluster::target::Via;
use crate::k8s::{self, Connection};
use crate::plan::{Action, ObjectPlan, Plan};

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
