//! Destroy: tear down what a spec created, in reverse dependency order, touching only objects
//! that carry the spec's ownership labels, and keeping the volumes (and their data) unless asked.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::bail;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::apply::{confirm, delete_object};
use crate::cli::GlobalArgs;
use crate::error::Outcome;
use crate::kubeapi::{self, Connection};
use crate::ownership;
use crate::plan::{self, Action, ObjectPlan, Plan};
use crate::render::{self, apply_rank, INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
use crate::spec;
use crate::style::{self, Style};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kubectl redis destroy -f specs/redis-cluster.yaml            # keeps the volumes and their data
  kubectl redis destroy -f specs/redis-cluster.yaml --delete-volumes --yes")]
pub struct DestroyArgs {
    /// Spec file, directory of manifests, or `-` for stdin. May be repeated.
    #[arg(short = 'f', long = "filename", value_name = "SPEC", required = true)]
    pub files: Vec<std::path::PathBuf>,
    /// Do not ask for confirmation (neither of the two questions --delete-volumes asks).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Also delete the PersistentVolumeClaims and PersistentVolumes; their data may be erased,
    /// depending on each volume's reclaim policy.
    #[arg(long)]
    pub delete_volumes: bool,
    /// How long to wait for the pods and objects to be gone.
    #[arg(long, default_value = "5m", value_parser = crate::cli::parse_timeout)]
    pub timeout: Duration,
}

/// `kubectl redis destroy`.
pub async fn run(global: &GlobalArgs, args: &DestroyArgs) -> anyhow::Result<Outcome> {
    let deadline = crate::cli::deadline_after(args.timeout)?;
    let spec = spec::load(&args.files)?;
    let connection = kubeapi::connect(global).await?;
    let bundle = render::render(
        &spec,
        global.namespace.as_deref(),
        &connection.default_namespace,
    )?;
    let (plan, foreign) = destroy_plan(&connection, &bundle, args.delete_volumes).await?;
    let style = Style(style::stdout_color(global.color));

    for object in &foreign {
        println!(
            "{} {} is not managed by kubectl-redis for `{}` (ownership labels missing): left alone",
            style.dim("·"),
            kubeapi::describe_object(object),
            bundle.name
        );
    }
    print!(
        "{}",
        plan::show(
            &plan,
            &plan::ShowOptions {
                style,
                show_secrets: false
            }
        )
    );
    if !plan.summary().has_changes() {
        return Ok(Outcome::Success);
    }
    if !confirm("Destroy these objects?", args.yes)? {
        eprintln!("Destroy cancelled; nothing was deleted.");
        return Ok(Outcome::Success);
    }
    let volumes: Vec<String> = plan
        .objects
        .iter()
        .filter(|o| o.action == Action::Destroy && is_volume(&o.desired))
        .map(ObjectPlan::describe)
        .collect();
    if !volumes.is_empty()
        && !confirm(
            &format!(
                "Really delete {} and the data they may hold?",
                volumes.join(", ")
            ),
            args.yes,
        )?
    {
        eprintln!("Destroy cancelled; nothing was deleted.");
        return Ok(Outcome::Success);
    }

    for object in plan.objects.iter().filter(|o| o.action == Action::Destroy) {
        delete_object(&connection, object, deadline).await?;
        eprintln!("destroyed {}", object.describe());
        if object.kind() == "StatefulSet" {
            wait_for_pods_gone(&connection, &object.desired, deadline).await?;
        }
    }
    let kept: Vec<&ObjectPlan> = plan
        .objects
        .iter()
        .filter(|o| o.action == Action::Keep)
        .collect();
    if kept.is_empty() {
        delete_parent(&connection, &bundle.name, &bundle.namespace).await?;
    } else {
        println!("Kept {} volume object(s); the data remains:", kept.len());
        for object in kept {
            println!("  {}", plan::volume_fate(&object.desired));
        }
        println!(
            "Apply the same spec to bring the cluster back on this data, or destroy again with \
             --delete-volumes."
        );
    }
    Ok(Outcome::Success)
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
        let api = kubeapi::api_for(&connection.client, &rendered.object)?;
        let found = kubeapi::with_retries(|| api.get_opt(rendered.name()))
            .await
            .map_err(|e| kubeapi::explain(e, "get", &rendered.object, &connection.source))?;
        anyhow::Ok(found.map(|o| {
            let mut value = serde_json::to_value(o).expect("API objects serialize");
            value["apiVersion"] = rendered.object["apiVersion"].clone();
            value["kind"] = rendered.object["kind"].clone();
            value
        }))
    }));
    let members = ownership::list_members(connection, &bundle.name, &bundle.namespace);
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
        if !seen.insert(kubeapi::describe_object(&object)) {
            continue;
        }
        let from_template = object["kind"] == "PersistentVolumeClaim"
            && object["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY
            && object["metadata"]["labels"][INSTANCE_LABEL] == bundle.name.as_str();
        if ownership::is_owned(&object, &bundle.name, &bundle.namespace) || from_template {
            owned.push(object);
        } else {
            foreign.push(object);
        }
    }
    owned.sort_by_key(|o| std::cmp::Reverse(apply_rank(o["kind"].as_str().unwrap_or_default())));
    let objects = owned
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
            }
        })
        .collect();
    let plan = Plan {
        format: plan::PLAN_FORMAT.into(),
        spec_name: bundle.name.clone(),
        namespace: bundle.namespace.clone(),
        objects,
    };
    Ok((plan, foreign))
}

/// Claims created from the spec's volumeClaimTemplates carry the managed-by and instance labels
/// (not the ApplySet's, since the StatefulSet controller creates them).
async fn template_claims(
    connection: &Connection,
    bundle: &render::Bundle,
) -> anyhow::Result<Vec<Value>> {
    let probe = serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"namespace": bundle.namespace}});
    let api = kubeapi::api_for(&connection.client, &probe)?;
    let params = ListParams::default().labels(&format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{INSTANCE_LABEL}={}",
        bundle.name
    ));
    let list = kubeapi::with_retries(|| api.list(&params))
        .await
        .map_err(|e| kubeapi::explain(e, "list", &probe, &connection.source))?;
    Ok(list
        .items
        .into_iter()
        .map(|item| {
            let mut value = serde_json::to_value(item).expect("API objects serialize");
            value["apiVersion"] = "v1".into();
            value["kind"] = "PersistentVolumeClaim".into();
            value
        })
        .collect())
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
    loop {
        let left = kubeapi::with_retries(|| pods.list(&params))
            .await?
            .items
            .len();
        if left == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out waiting for {left} pod(s) of {} to terminate",
                kubeapi::describe_object(statefulset)
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn delete_parent(
    connection: &Connection,
    spec_name: &str,
    namespace: &str,
) -> anyhow::Result<()> {
    let probe = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"namespace": namespace, "name": ownership::parent_name(spec_name)}});
    let api = kubeapi::api_for(&connection.client, &probe)?;
    match api
        .delete(&ownership::parent_name(spec_name), &Default::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if kubeapi::status_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(kubeapi::explain(e, "delete", &probe, &connection.source)),
    }
}
