//! Server-side apply of the plan's objects, in apply order, and the deletions it plans.

use std::collections::BTreeMap;
use std::time::Instant;

use kube::api::{DeleteParams, Patch, PatchParams};

use crate::k8s::{self, Connection, FIELD_MANAGER};
use crate::ownership;
use crate::plan::{Action, ObjectPlan, Plan};
use crate::progress::{Event, Events};
use crate::render::apply_rank;

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
    // The ApplySet parent lives in the spec's namespace: it is written after the Namespaces the
    // spec creates, and before every other member, so that none is ever left without it.
    let namespaces = groups.remove(&apply_rank("Namespace")).unwrap_or_default();
    let mut writes =
        apply_group(connection, &namespaces, force_conflicts, deadline, events).await?;
    writes += usize::from(
        ownership::ensure_parent(connection, &plan.spec_name, &plan.namespace, members).await?,
    );
    for objects in groups.values() {
        writes += apply_group(connection, objects, force_conflicts, deadline, events).await?;
    }
    // Prune last, in reverse dependency order (the plan lists them that way).
    for object in plan.objects.iter().filter(|o| o.action == Action::Destroy) {
        delete_planned(connection, plan, object, deadline, events).await?;
        writes += 1;
    }
    Ok(writes)
}

/// Applies one group of objects concurrently, a bounded number at a time; returns how many.
async fn apply_group(
    connection: &Connection,
    objects: &[&ObjectPlan],
    force_conflicts: bool,
    deadline: Instant,
    events: &dyn Events,
) -> anyhow::Result<usize> {
    crate::fanout::try_all(
        objects
            .iter()
            .map(|object| apply_object(connection, object, force_conflicts, deadline)),
    )
    .await?;
    for object in objects {
        events.emit(Event::Wrote {
            action: object.action,
            object: object.describe(),
        });
    }
    Ok(objects.len())
}

/// Deletes an object the plan destroys (its dependents as [`k8s::cascade`] says), waits until
/// it is gone, and says so. A Namespace is looked into once more first: whatever appeared in it
/// since the plan would go with it, so it stays ([`ownership::namespace`]).
pub(crate) async fn delete_planned(
    connection: &Connection,
    plan: &Plan,
    object: &ObjectPlan,
    deadline: Instant,
    events: &dyn Events,
) -> anyhow::Result<()> {
    if object.kind() == "Namespace" {
        let applyset = ownership::applyset_id(&plan.spec_name, &plan.namespace);
        let live = object.live.as_ref().unwrap_or(&object.desired);
        let leaving = Default::default();
        if let Some(reason) =
            ownership::namespace::reason_to_keep(connection, live, &applyset, &leaving).await?
        {
            anyhow::bail!(
                "{} was not deleted: {reason}. It changed since the plan; run the command again \
                 to see the new plan",
                object.describe()
            );
        }
    }
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

pub(super) async fn apply_object(
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
