//! Computing the plan: the live object and a server-side dry run per rendered object, the
//! decision to replace where an immutable field changes, and the prune of what the spec no
//! longer declares.

use std::collections::BTreeSet;

use kube::api::{Patch, PatchParams};
use serde_json::Value;

use super::drift::drift_of;
use super::guards::{
    keep_namespaces, refuse_undrained_shrinks, ForeignObject, OwnedElsewhere, RedisPlanning,
};
use super::model::{normalize, volume_fate, Action, Conflict, ObjectPlan, Plan, PLAN_FORMAT};
use crate::cluster::preview::RedisPreview;
use crate::cluster::target::{self, Via};
use crate::k8s::{self, ConnectOptions, Connection, InvalidCause, FIELD_MANAGER};
use crate::ownership::{self, namespace as owned_namespace, Owner};
use crate::policy::{PolicyOptions, Report};
use crate::render::{self, Bundle, RenderedObject};
use crate::spec;

/// A plan ready to show or apply, with the connection it was computed over.
pub struct Prepared {
    pub connection: Connection,
    pub plan: Plan,
    /// Warn-level policy findings (they do not block; `check` lists them).
    pub policy_warnings: usize,
}

/// How far [`prepare`] got.
pub enum Preparation {
    Ready(Prepared),
    /// Deny-level policy findings: nothing was planned, the cluster was not read.
    Blocked(Report),
}

/// The shared front half of `plan` and `apply`: load, render, check policies, compute the plan
/// and, with `redis_via`, preview the Redis step through that transport. Deny-level findings
/// stop it before it reads the cluster.
pub async fn prepare(
    connect: &ConnectOptions,
    namespace: Option<&str>,
    files: &[std::path::PathBuf],
    instance: Option<&str>,
    policy: &PolicyOptions,
    delete_volumes: bool,
    redis: RedisPlanning,
) -> anyhow::Result<Preparation> {
    let spec = spec::load_instance(files, instance)?;
    let connection = k8s::connect(connect).await?;
    let bundle = render::render(spec, namespace, &connection.default_namespace)?;
    let report = crate::policy::run(&bundle, policy)?;
    if report.blocking() > 0 {
        return Ok(Preparation::Blocked(report));
    }
    let policy_warnings = report.count(crate::policy::Severity::Warn);
    let mut plan = compute(&connection, &bundle, delete_volumes).await?;
    if redis.step {
        plan.redis = preview_redis(&connection, &plan, redis.via).await;
    } else {
        refuse_undrained_shrinks(&connection, &plan, redis.via).await?;
    }
    Ok(Preparation::Ready(Prepared {
        connection,
        plan,
        policy_warnings,
    }))
}

/// The Redis step's preview for every cluster-mode StatefulSet of the plan.
pub async fn preview_redis(connection: &Connection, plan: &Plan, via: Via) -> Vec<RedisPreview> {
    let mut previews = Vec::new();
    for object in plan.objects.iter().filter(|o| o.kind() == "StatefulSet") {
        if object.action == Action::Destroy {
            continue;
        }
        let live = object.live.as_ref();
        if let Some(preview) = target::preview(
            &connection.client,
            &object.desired,
            live,
            object.planned.as_ref(),
            via,
        )
        .await
        {
            previews.push(preview);
        }
    }
    previews
}

/// Computes the plan for every object of the bundle, and the prune of owned objects the spec no
/// longer declares, all at once. A declared object that belongs to another kubectl-redis
/// instance stops the plan ([`OwnedElsewhere`]).
pub async fn compute(
    connection: &Connection,
    bundle: &Bundle,
    delete_volumes: bool,
) -> anyhow::Result<Plan> {
    let declared = crate::fanout::try_all(
        bundle
            .objects
            .iter()
            .map(|object| plan_object(connection, bundle, object)),
    );
    let declared_kinds: BTreeSet<&str> = bundle.objects.iter().map(|o| o.kind()).collect();
    let members =
        ownership::list_members(connection, &bundle.name, &bundle.namespace, &declared_kinds);
    let (planned, members) = tokio::try_join!(declared, members)?;
    let mut objects = Vec::with_capacity(planned.len());
    let mut elsewhere = Vec::new();
    for object in planned {
        match object {
            Planned::Object(object) => objects.push(object),
            Planned::Elsewhere(foreign) => elsewhere.push(foreign),
        }
    }
    if !elsewhere.is_empty() {
        return Err(OwnedElsewhere {
            spec_name: bundle.name.clone(),
            namespace: bundle.namespace.clone(),
            objects: elsewhere,
        }
        .into());
    }
    let key = |o: &Value| k8s::describe_object(o);
    let declared_keys: BTreeSet<String> = bundle
        .objects
        .iter()
        .map(|o| key(&o.object.to_value()))
        .collect();
    let mut pruned: Vec<ObjectPlan> = members
        .into_iter()
        .filter(|member| !declared_keys.contains(&key(member)))
        .map(|member| prune_plan(member, delete_volumes))
        .collect();
    // Reverse dependency order: the StatefulSet goes before what it uses.
    pruned.sort_by_key(|o| std::cmp::Reverse(render::apply_rank(o.kind())));
    let applyset = ownership::applyset_id(&bundle.name, &bundle.namespace);
    keep_namespaces(connection, &applyset, &mut pruned).await?;
    objects.extend(pruned);
    Ok(Plan {
        format: PLAN_FORMAT.into(),
        spec_name: bundle.name.clone(),
        namespace: bundle.namespace.clone(),
        objects,
        redis: Vec::new(),
    })
}

/// What planning one declared object found.
enum Planned {
    Object(ObjectPlan),
    /// It exists and another instance owns it: not planned at all.
    Elsewhere(ForeignObject),
}

/// The plan of one declared object, or who else owns it.
async fn plan_object(
    connection: &Connection,
    bundle: &Bundle,
    rendered: &RenderedObject,
) -> anyhow::Result<Planned> {
    // A Value for the API client: a spec talks to a cluster with a handful of objects.
    let mut desired = rendered.object.to_value();
    let api = k8s::api_for(&connection.client, &desired)?;
    let name = rendered.name().to_string();
    let origin = format!("{}:{}", rendered.origin.file, rendered.origin.line);
    let explain =
        |error, verb, object: &Value| k8s::explain(error, verb, object, &connection.source);

    // A Namespace is marked as created by this set when it is (namespace.rs), which depends on
    // the live object: read it first. Every other kind is read and dry-run at once.
    let dry_run_params = PatchParams::apply(FIELD_MANAGER).dry_run();
    let (live, dry_run) = if rendered.kind() == "Namespace" {
        let live = api.get_opt(&name).await;
        let applyset = ownership::applyset_id(&bundle.name, &bundle.namespace);
        if let Ok(found) = &live {
            let found = found
                .as_ref()
                .map(|o| serde_json::to_value(o).expect("API objects serialize"));
            if found.is_none_or(|o| owned_namespace::created_by(&o, &applyset)) {
                owned_namespace::mark_created(&mut desired, &applyset);
            }
        }
        let dry_run = api
            .patch(&name, &dry_run_params, &Patch::Apply(&desired))
            .await;
        (live, dry_run)
    } else {
        let patch = Patch::Apply(&desired);
        tokio::join!(
            api.get_opt(&name),
            api.patch(&name, &dry_run_params, &patch)
        )
    };
    let desired = &desired;
    let live = live.map_err(|e| explain(e, "get", desired))?;
    let live = live
        .map(|object| serde_json::to_value(object).expect("API objects serialize"))
        .map(|object| {
            let version = object["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string);
            (object, version)
        });
    let owner = live
        .as_ref()
        .map(|(object, _)| ownership::owner_of(object, &bundle.name, &bundle.namespace));
    let adopt = match owner {
        None | Some(Owner::ThisSet) => false,
        Some(Owner::Unmanaged) => true,
        Some(Owner::OtherInstance {
            instance,
            namespace,
        }) => {
            return Ok(Planned::Elsewhere(ForeignObject {
                object: k8s::describe_object(desired),
                origin,
                instance,
                namespace,
            }));
        }
    };

    let mut conflicts = Vec::new();
    let mut consequence = None;
    let planned = match dry_run {
        Ok(object) => Some(serde_json::to_value(object).expect("API objects serialize")),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            conflicts = conflicts_of(&status);
            // Ask again with force to learn what the apply would store if the user takes over.
            let forced = api
                .patch(
                    &name,
                    &dry_run_params.clone().force(),
                    &Patch::Apply(desired),
                )
                .await
                .map_err(|e| explain(e, "patch", desired))?;
            Some(serde_json::to_value(forced).expect("API objects serialize"))
        }
        Err(kube::Error::Api(status)) if status.code == 422 => {
            let causes = k8s::invalid_causes(&status);
            let (immutable, invalid): (Vec<_>, Vec<_>) =
                causes.into_iter().partition(InvalidCause::is_immutable);
            // Only an immutable field is cured by deleting and creating the object; any other
            // cause (or none given) would fail the create just the same, after the delete.
            if live.is_none() || immutable.is_empty() || !invalid.is_empty() {
                return Err(InvalidObject {
                    object: k8s::describe_object(desired),
                    origin,
                    live: live.is_some(),
                    server_message: status.message.clone(),
                    causes: invalid,
                    immutable: immutable.len(),
                }
                .into());
            }
            consequence = Some(replace_consequence(desired, &immutable));
            None
        }
        // Its namespace does not exist yet and the spec creates it: the server cannot dry-run
        // into it, so the plan shows the object as the spec writes it.
        Err(kube::Error::Api(status))
            if status.code == 404 && live.is_none() && namespace_declared(bundle, desired) =>
        {
            None
        }
        Err(error) => return Err(explain(error, "patch", desired)),
    };

    let (live, live_resource_version) = match live {
        Some((object, version)) => (Some(object), version),
        None => (None, None),
    };
    let drift = live
        .as_ref()
        .map(|l| drift_of(l, desired))
        .unwrap_or_default();
    let live = live.map(|l| normalize(&l));
    let planned = planned.map(|p| normalize(&p));
    let action = match (&live, &planned) {
        (None, _) => Action::Add,
        (Some(_), None) => Action::Replace,
        (Some(live), Some(planned)) if live == planned => Action::Unchanged,
        (Some(_), Some(_)) => Action::Change,
    };
    let plan = ObjectPlan {
        action,
        desired: desired.clone(),
        live,
        planned,
        live_resource_version,
        conflicts,
        drift,
        consequence,
        source: origin,
        adopt,
    };
    Ok(Planned::Object(plan))
}

/// Whether the spec declares the Namespace `object` lives in.
fn namespace_declared(bundle: &Bundle, object: &Value) -> bool {
    let Some(namespace) = object["metadata"]["namespace"].as_str() else {
        return false;
    };
    (bundle.objects.iter()).any(|o| o.kind() == "Namespace" && o.name() == namespace)
}

/// The plan entry for an owned object the spec no longer declares.
fn prune_plan(member: Value, delete_volumes: bool) -> ObjectPlan {
    let is_volume = matches!(
        member["kind"].as_str(),
        Some("PersistentVolume" | "PersistentVolumeClaim")
    );
    let (action, consequence) = if is_volume && !delete_volumes {
        (
            Action::Keep,
            Some(format!(
                "{} Pass --delete-volumes to delete it.",
                volume_fate(&member)
            )),
        )
    } else if is_volume {
        (Action::Destroy, Some(volume_fate(&member)))
    } else {
        (Action::Destroy, None)
    };
    let source = format!(
        "owned by kubectl-redis ({})",
        member["metadata"]["labels"][crate::ownership::INSTANCE_LABEL]
            .as_str()
            .unwrap_or_default()
    );
    ObjectPlan {
        action,
        live_resource_version: member["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string),
        live: Some(normalize(&member)),
        desired: normalize(&member),
        planned: None,
        conflicts: Vec::new(),
        drift: Vec::new(),
        consequence,
        source,
        adopt: false,
    }
}

/// Reads the conflicting managers and fields out of a 409's causes, as the API server words
/// them (`conflict with "other": .spec.replicas`).
fn conflicts_of(status: &kube::core::Status) -> Vec<Conflict> {
    let causes = status
        .details
        .as_ref()
        .map(|d| d.causes.clone())
        .unwrap_or_default();
    let mut conflicts: Vec<Conflict> = causes
        .iter()
        .map(|cause| {
            let manager = cause
                .message
                .split('"')
                .nth(1)
                .unwrap_or("another field manager")
                .to_string();
            Conflict {
                manager,
                field: cause.field.clone(),
            }
        })
        .collect();
    if conflicts.is_empty() {
        conflicts.push(Conflict {
            manager: "another field manager".into(),
            field: status.message.clone(),
        });
    }
    conflicts
}

/// The API server refuses an object for a reason a replace would not cure: the plan stops
/// before anything is written, naming the object, the fields and the server's words.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct InvalidObject {
    /// `StatefulSet default/redis`.
    pub object: String,
    /// `file:line` of the spec document.
    pub origin: String,
    /// Whether the object exists, so that a replace was a possibility.
    pub live: bool,
    /// The Status message, for a 422 that gives no causes.
    pub server_message: String,
    /// The causes that are not immutable fields.
    pub causes: Vec<InvalidCause>,
    /// How many causes were immutable fields (which alone would plan a replace).
    pub immutable: usize,
}

impl InvalidObject {
    fn describe(&self) -> String {
        let reasons = if self.causes.is_empty() {
            self.server_message.clone()
        } else {
            self.causes
                .iter()
                .map(InvalidCause::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        let replace = if self.live {
            " for a reason that replacing it would not cure"
        } else {
            ""
        };
        let immutable = match self.immutable {
            0 => String::new(),
            n => format!("\n  (and {n} change(s) to immutable fields, which would need a replace)"),
        };
        format!(
            "{} ({}) is invalid: the API server refuses it (422){replace}:\n  {reasons}{immutable}\n\
             Nothing was written; fix the spec and plan again",
            self.object, self.origin
        )
    }
}

/// What replacing an object does to the data it stands for, in words.
fn replace_consequence(desired: &Value, immutable: &[InvalidCause]) -> String {
    let what = k8s::describe_object(desired);
    let fields = immutable
        .iter()
        .map(InvalidCause::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let why = format!("the API server refuses an in-place update ({fields})");
    match desired["kind"].as_str().unwrap_or_default() {
        "StatefulSet" => format!(
            "{why}. {what} will be deleted with its pods orphaned (they keep running) and created \
             again; the new StatefulSet adopts the pods and then rolls them. Existing claims and \
             their volumes are kept with all their data at their current size: a new \
             volumeClaimTemplate applies only to claims created from now on."
        ),
        "PersistentVolume" => format!(
            "{why}. {what} will be deleted and created again. With reclaimPolicy Retain the data \
             stays where it is on the node (hostPath) or in the backing store, and the new volume \
             must point at it; with Delete it is erased."
        ),
        "PersistentVolumeClaim" => format!(
            "{why}. {what} will be deleted and created again: with its volume's reclaimPolicy \
             Delete its DATA IS LOST; with Retain the old volume is released and must be bound \
             again by hand."
        ),
        _ => format!("{why}. {what} will be deleted and created again; it holds no data."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_object_names_its_fields_and_the_immutable_ones_it_also_changes() {
        let cause = InvalidCause {
            reason: k8s::CauseReason::Invalid,
            field: "spec.template.metadata.labels".into(),
            message: "Invalid value: {}: `selector` does not match template `labels`".into(),
        };
        let error = InvalidObject {
            object: "StatefulSet default/redis".into(),
            origin: "specs/redis-single/03-redis.yaml:14".into(),
            live: true,
            server_message: "StatefulSet.apps \"redis\" is invalid: [...]".into(),
            causes: vec![cause],
            immutable: 1,
        };
        assert_eq!(
            error.to_string(),
            "StatefulSet default/redis (specs/redis-single/03-redis.yaml:14) is invalid: the API \
             server refuses it (422) for a reason that replacing it would not cure:\n  field \
             `spec.template.metadata.labels`: Invalid value: {}: `selector` does not match \
             template `labels`\n  (and 1 change(s) to immutable fields, which would need a \
             replace)\nNothing was written; fix the spec and plan again"
        );
        let bare = InvalidObject {
            live: false,
            causes: Vec::new(),
            immutable: 0,
            ..error
        };
        assert!(
            bare.to_string()
                .contains("refuses it (422):\n  StatefulSet.apps \"redis\" is invalid"),
            "without causes, the server's message: {bare}"
        );
    }
}
