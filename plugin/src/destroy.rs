//! Destroy: tear down what a spec created, in reverse dependency order, touching only objects
//! that carry the spec's ownership labels, and keeping the volumes (and their data) unless asked.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::k8s::{self, ConnectOptions, Connection};
use crate::ownership::{self, Owner, INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
use crate::plan::{self, Action, ObjectPlan, Plan};
use crate::progress::Events;
use crate::render::{self, apply_rank};
use crate::spec;
use crate::wait::{poll_until, Poll};

/// What `destroy` would delete (and keep), computed from the live cluster.
pub struct DestroyPlan {
    pub connection: Connection,
    /// The owned objects, in delete order: `Destroy`, or `Keep` for volumes.
    pub plan: Plan,
    /// Objects with a declared name but without the spec's ownership labels: left alone.
    pub foreign: Vec<Value>,
}

impl DestroyPlan {
    /// The volume objects that would be deleted, with their data, for the second question.
    pub fn volumes_to_delete(&self) -> Vec<String> {
        self.plan
            .objects
            .iter()
            .filter(|o| o.action == Action::Destroy && is_volume(&o.desired))
            .map(ObjectPlan::describe)
            .collect()
    }
}

/// Reads what the spec owns in the cluster: the front half of `destroy`.
pub async fn prepare(
    connect: &ConnectOptions,
    namespace: Option<&str>,
    files: &[std::path::PathBuf],
    instance: Option<&str>,
    delete_volumes: bool,
) -> anyhow::Result<DestroyPlan> {
    let spec = spec::load_instance(files, instance)?;
    let connection = k8s::connect(connect).await?;
    let bundle = render::render(spec, namespace, &connection.default_namespace)?;
    let (plan, foreign) = destroy_plan(&connection, &bundle, delete_volumes).await?;
    Ok(DestroyPlan {
        connection,
        plan,
        foreign,
    })
}

/// Deletes what the plan says, in order, waiting for each object (and a StatefulSet's pods) to
/// be gone; the ApplySet parent goes last, unless volumes are kept (it still lists them).
pub async fn execute(
    destroy: &DestroyPlan,
    deadline: Instant,
    events: &dyn Events,
) -> anyhow::Result<()> {
    let connection = &destroy.connection;
    let plan = &destroy.plan;
    for object in plan.objects.iter().filter(|o| o.action == Action::Destroy) {
        crate::apply::delete_planned(connection, plan, object, deadline, events).await?;
        if object.kind() == "StatefulSet" {
            wait_for_pods_gone(connection, &object.desired, deadline).await?;
        }
    }
    // The parent lists the kept volumes, so that a later apply or destroy finds them again; a
    // kept Namespace keeps its labels and needs no parent for that.
    if plan.kept_volumes().is_empty() {
        delete_parent(connection, &plan.spec_name, &plan.namespace).await?;
    }
    Ok(())
}

fn is_volume(object: &Value) -> bool {
    matches!(
        object["kind"].as_str(),
        Some("PersistentVolume" | "PersistentVolumeClaim")
    )
}

/// The spec's objects that are live and owned, the ApplySet's other members, and (with
/// `--delete-volumes`) the claims the StatefulSet created; objects that match a declared name
/// but lack the ownership labels come back separately, to be reported and left alone.
async fn destroy_plan(
    connection: &Connection,
    bundle: &render::Bundle,
    delete_volumes: bool,
) -> anyhow::Result<(Plan, Vec<Value>)> {
    let live = crate::fanout::try_all(bundle.objects.iter().map(|rendered| async move {
        let desired = rendered.object.to_value();
        let api = k8s::api_for(&connection.client, &desired)?;
        let found = api
            .get_opt(rendered.name())
            .await
            .map_err(|e| k8s::explain(e, "get", &desired, &connection.source))?;
        anyhow::Ok(found.map(|o| {
            let mut value = serde_json::to_value(o).expect("API objects serialize");
            value["apiVersion"] = desired["apiVersion"].clone();
            value["kind"] = desired["kind"].clone();
            value
        }))
    }));
    let declared_kinds: BTreeSet<&str> = bundle.objects.iter().map(|o| o.kind()).collect();
    let members =
        ownership::list_members(connection, &bundle.name, &bundle.namespace, &declared_kinds);
    let claims = template_claims(connection, bundle);
    let (live, members, claims) = tokio::try_join!(live, members, claims)?;

    let mut seen = BTreeSet::new();
    let mut owned = Vec::new();
    let mut foreign = Vec::new();
    let declared_live = live.into_iter().flatten();
    for object in
        declared_live
            .chain(members)
            .chain(if delete_volumes { claims } else { Vec::new() })
    {
        if !seen.insert(k8s::describe_object(&object)) {
            continue;
        }
        if ownership::owner_of(&object, &bundle.name, &bundle.namespace) == Owner::ThisSet {
            owned.push(object);
        } else {
            foreign.push(object);
        }
    }
    owned.sort_by_key(|o| std::cmp::Reverse(apply_rank(o["kind"].as_str().unwrap_or_default())));
    let mut objects: Vec<ObjectPlan> = owned
        .into_iter()
        .map(|object| {
            let keep = is_volume(&object) && !delete_volumes;
            ObjectPlan {
                action: if keep { Action::Keep } else { Action::Destroy },
                consequence: is_volume(&object).then(|| plan::volume_fate(&object)),
                live_resource_version: object["metadata"]["resourceVersion"]
                    .as_str()
                    .map(str::to_string),
                live: Some(plan::normalize(&object)),
                desired: plan::normalize(&object),
                planned: None,
                conflicts: Vec::new(),
                drift: Vec::new(),
                source: format!("owned by kubectl-redis ({})", bundle.name),
                adopt: false,
            }
        })
        .collect();
    let applyset = ownership::applyset_id(&bundle.name, &bundle.namespace);
    plan::keep_namespaces(connection, &applyset, &mut objects).await?;
    let plan = Plan {
        format: plan::PLAN_FORMAT.into(),
        spec_name: bundle.name.clone(),
        namespace: bundle.namespace.clone(),
        objects,
        redis: Vec::new(),
    };
    Ok((plan, foreign))
}

/// Claims created from the spec's volumeClaimTemplates carry the managed-by and instance labels
/// (not the ApplySet's, since the StatefulSet controller creates them).
async fn template_claims(
    connection: &Connection,
    bundle: &render::Bundle,
) -> anyhow::Result<Vec<Value>> {
    let selector = format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{INSTANCE_LABEL}={}",
        bundle.name
    );
    ownership::list_labelled(
        connection,
        &bundle.namespace,
        "v1",
        "PersistentVolumeClaim",
        &selector,
    )
    .await
}

/// Waits until no pod of the StatefulSet is left.
async fn wait_for_pods_gone(
    connection: &Connection,
    statefulset: &Value,
    deadline: Instant,
) -> anyhow::Result<()> {
    let namespace = statefulset["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let selector: Vec<String> = statefulset["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(connection.client.clone(), namespace);
    let params = ListParams::default().labels(&selector.join(","));
    let (pods, params) = (&pods, &params);
    poll_until(
        deadline,
        Duration::from_millis(300),
        &format!(
            "the pods of {} to terminate",
            k8s::describe_object(statefulset)
        ),
        move || async move {
            let left = pods.list(params).await?.items.len();
            Ok(if left == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{left} pod(s) left"))
            })
        },
    )
    .await
}

async fn delete_parent(
    connection: &Connection,
    spec_name: &str,
    namespace: &str,
) -> anyhow::Result<()> {
    let probe = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"namespace": namespace, "name": ownership::parent_name(spec_name)}});
    let api = k8s::api_for(&connection.client, &probe)?;
    match api
        .delete(&ownership::parent_name(spec_name), &Default::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if k8s::status_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(k8s::explain(e, "delete", &probe, &connection.source)),
    }
}
