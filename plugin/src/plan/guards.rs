//! The plan's refusals and keeps, apart from computing it: declared objects another instance
//! owns ([`OwnedElsewhere`]), a shrink that would skip the Redis step's drain
//! ([`UndrainedShrink`]), and the Namespaces that `destroy` and prune must keep.

use std::collections::BTreeSet;

use serde_json::Value;

use super::model::{Action, ObjectPlan, Plan};
use crate::cluster::target::{self, Via};
use crate::k8s::Connection;
use crate::ownership::namespace as owned_namespace;

/// Whether the plan covers the Redis step, and how it reaches the pods (also used without the
/// step, to see what a shrink would delete).
#[derive(Debug, Clone, Copy)]
pub struct RedisPlanning {
    pub via: Via,
    /// False under `--skip-cluster-init`.
    pub step: bool,
}

/// A StatefulSet would shrink without the Redis step's drain, and its departing pods hold data.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to shrink StatefulSet {statefulset} from {from} to {to} pods without the Redis \
     step (--skip-cluster-init): {loss}. Deleting those pods first would lose that data. Run \
     without --skip-cluster-init: the Redis step moves the slots and their keys to the pods that \
     stay, then shrinks. Nothing was written"
)]
pub struct UndrainedShrink {
    /// `default/redis-cluster`.
    pub statefulset: String,
    pub from: u64,
    pub to: u64,
    /// What would be lost, as the preview counts it.
    pub loss: String,
}

/// Refuses a plan that shrinks a Redis Cluster's StatefulSet when the Redis step, which drains
/// the departing pods first, will not run: whatever flag skips the drain, the data stays.
pub async fn refuse_undrained_shrinks(
    connection: &Connection,
    plan: &Plan,
    via: Via,
) -> Result<(), UndrainedShrink> {
    for object in plan.objects.iter().filter(|o| o.kind() == "StatefulSet") {
        let Some(live) = &object.live else { continue };
        if object.action == Action::Destroy {
            continue;
        }
        if let Some(loss) =
            target::undrained_loss(&connection.client, &object.desired, live, via).await
        {
            let pods = |o: &Value| o["spec"]["replicas"].as_u64().unwrap_or(0);
            return Err(UndrainedShrink {
                statefulset: object.describe().trim_start_matches("StatefulSet ").into(),
                from: pods(live),
                to: pods(&object.desired),
                loss,
            });
        }
    }
    Ok(())
}

/// Turns the deletion of each Namespace in `doomed` into a keep when [`owned_namespace`]'s rule
/// says so, with the reason as its consequence. The other deletions of `doomed` happen first.
pub(crate) async fn keep_namespaces(
    connection: &Connection,
    applyset: &str,
    doomed: &mut [ObjectPlan],
) -> anyhow::Result<()> {
    let leaving: BTreeSet<String> = doomed
        .iter()
        .filter(|o| o.action == Action::Destroy)
        .map(ObjectPlan::describe)
        .collect();
    for object in doomed
        .iter_mut()
        .filter(|o| o.action == Action::Destroy && o.kind() == "Namespace")
    {
        let live = object.live.as_ref().unwrap_or(&object.desired);
        if let Some(reason) =
            owned_namespace::reason_to_keep(connection, live, applyset, &leaving).await?
        {
            object.action = Action::Keep;
            object.consequence = Some(format!("{} is kept: {reason}.", object.describe()));
        }
    }
    Ok(())
}

/// A declared object that exists and belongs to another kubectl-redis instance.
#[derive(Debug, Clone)]
pub struct ForeignObject {
    /// `PersistentVolume redis01`.
    pub object: String,
    /// `file:line` of the spec document.
    pub origin: String,
    /// The owner's instance name.
    pub instance: String,
    /// The owner's namespace, when the object says.
    pub namespace: Option<String>,
}

/// Declared objects exist and belong to another kubectl-redis instance: the plan stops before
/// anything is written. Taking them over would hand one cluster's volumes (and data) to another,
/// and the other instance's next apply would take them back.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct OwnedElsewhere {
    pub spec_name: String,
    pub namespace: String,
    pub objects: Vec<ForeignObject>,
}

impl OwnedElsewhere {
    fn describe(&self) -> String {
        let lines: Vec<String> = self
            .objects
            .iter()
            .map(|o| {
                let place = match &o.namespace {
                    Some(namespace) => format!("in namespace `{namespace}`"),
                    None => "in another namespace".into(),
                };
                format!(
                    "{} ({}) belongs to kubectl-redis instance `{}` {place}",
                    o.object, o.origin, o.instance
                )
            })
            .collect();
        format!(
            "{} object(s) of this spec already belong to another kubectl-redis instance:\n  {}\n\
             This spec is `{}` in namespace `{}`; applying it would take them over (a volume \
             would be handed to this cluster with the other one's data). Give them names of \
             their own (for a RedisCluster, leave spec.storage.hostPathVolumes.namePrefix unset \
             or change it), or destroy the other instance first. Nothing was written",
            self.objects.len(),
            lines.join("\n  "),
            self.spec_name,
            self.namespace
        )
    }
}
