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
