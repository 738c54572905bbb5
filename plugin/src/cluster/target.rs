//! The Kubernetes side of the Redis step, for `apply`, `plan` and `status`: find the cluster-mode
//! StatefulSets ([`ClusterTarget`]), pick a transport, and form / heal / scale / verify through it.

use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::Client;
use serde_json::Value;

use super::exec::FormOptions;
use super::form::{ensure_cluster, verify_cluster, FormOutcome};
use super::observe::{observe, Observation};
use super::preview::{form_after_rollout, RedisPreview, RedisStep, Shape};
use super::roll::{order, Facts, RollAction, RollOptions};
use super::scale::{scale_in, ScaleInOutcome};
use super::topology::{topology_from_kube, Topology};
use super::transport::{direct, port_forward, ExecTransport, RedisTransport};
use super::verify::Report;
use crate::ownership::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::render::{MASTERS_ANNOTATION, REPLICAS_PER_MASTER_ANNOTATION};

/// How commands reach the pods' Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Via {
    /// Port-forward through the API server: works from a laptop.
    #[default]
    PortForward,
    /// Connect to pod IPs directly: for running inside the cluster.
    Direct,
    /// Run redis-cli in each pod, as the seed's own command does.
    Exec,
}

/// Per-command time limit of a transport; the overall deadline is the caller's.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

pub fn transport(via: Via, client: &Client, namespace: &str) -> Box<dyn RedisTransport> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match via {
        Via::PortForward => Box::new(port_forward(pods, COMMAND_TIMEOUT)),
        Via::Direct => Box::new(direct(COMMAND_TIMEOUT)),
        Via::Exec => Box::new(ExecTransport {
            pods,
            container: Some("redis".into()),
            timeout: COMMAND_TIMEOUT,
        }),
    }
}

/// A StatefulSet that runs a Redis Cluster, with the shape its spec asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTarget {
    pub namespace: String,
    pub statefulset: String,
    pub masters: usize,
    pub replicas_per_master: usize,
}

impl ClusterTarget {
    /// Reads the shape from the annotations `render` puts on a RedisCluster's StatefulSet; plain
    /// StatefulSets (the single-Redis seed) have none and are not clusters.
    pub fn of(statefulset: &Value) -> Option<ClusterTarget> {
        let annotations = &statefulset["metadata"]["annotations"];
        let number = |key: &str| annotations[key].as_str()?.parse::<usize>().ok();
        Some(ClusterTarget {
            namespace: statefulset["metadata"]["namespace"].as_str()?.to_string(),
            statefulset: statefulset["metadata"]["name"].as_str()?.to_string(),
            masters: number(MASTERS_ANNOTATION)?,
            replicas_per_master: number(REPLICAS_PER_MASTER_ANNOTATION)?,
        })
    }

    pub async fn topology(&self, client: &Client) -> anyhow::Result<Topology> {
        topology_from_kube(
            client.clone(),
            &self.namespace,
            &self.statefulset,
            self.masters,
            self.replicas_per_master,
        )
        .await
        .with_context(|| {
            format!(
                "cannot read the pods of StatefulSet {}/{}",
                self.namespace, self.statefulset
            )
        })
    }
}

/// Forms, resumes, heals or grows the cluster until it is healthy.
pub async fn converge(
    client: &Client,
    target: &ClusterTarget,
    via: Via,
    timeout: Duration,
) -> anyhow::Result<FormOutcome> {
    let topology = target.topology(client).await?;
    let transport = transport(via, client, &target.namespace);
    let options = FormOptions {
        timeout,
        ..FormOptions::default()
    };
    ensure_cluster(transport.as_ref(), &topology, &options).await
}

/// Before a StatefulSet shrinks: moves the departing masters' slots (with their keys) to the
/// pods that stay and makes every node forget the departing ones.
pub async fn drain_before_shrink(
    client: &Client,
    current: &ClusterTarget,
    keep_pods: usize,
    masters: usize,
    via: Via,
    timeout: Duration,
) -> anyhow::Result<ScaleInOutcome> {
    let topology = current.topology(client).await?;
    let transport = transport(via, client, &current.namespace);
    let options = FormOptions {
        timeout,
        ..FormOptions::default()
    };
    scale_in(transport.as_ref(), &topology, keep_pods, masters, &options).await
}

/// What the Redis step will do to the cluster a rendered StatefulSet describes (None for a
/// plain StatefulSet), read-only: `live` is the StatefulSet as it is now, if it exists.
pub async fn preview(
    client: &Client,
    desired: &Value,
    live: Option<&Value>,
    planned: Option<&Value>,
    via: Via,
) -> Option<RedisPreview> {
    let wanted = ClusterTarget::of(desired)?;
    let shape = Shape {
        pods: desired["spec"]["replicas"].as_u64().unwrap_or(0) as usize,
        masters: wanted.masters,
        replicas_per_master: wanted.replicas_per_master,
    };
    let Some(live) = live else {
        return Some(form_after_rollout(
            &wanted.namespace,
            &wanted.statefulset,
            shape,
        ));
    };
    // The pods run the live shape; a StatefulSet without the annotations has the wanted one.
    let current = ClusterTarget::of(live).unwrap_or_else(|| wanted.clone());
    let unobserved = |reason: String| RedisPreview {
        namespace: wanted.namespace.clone(),
        statefulset: wanted.statefulset.clone(),
        observed: None,
        steps: vec![RedisStep::Unobserved { reason }],
    };
    let topology = match current.topology(client).await {
        Ok(topology) => topology,
        Err(error) => return Some(unobserved(format!("{error:#}"))),
    };
    let transport = transport(via, client, &current.namespace);
    let mut preview = super::preview::preview(
        transport.as_ref(),
        &topology,
        shape,
        &wanted.namespace,
        &wanted.statefulset,
    )
    .await;
    if preview.observed.is_some() {
        // A new pod template puts every pod on an old revision once it is applied.
        let template = |o: Option<&Value>| o.map(|o| o["spec"]["template"].clone());
        let all = planned.is_some() && template(planned) != template(Some(live));
        let observed = observe(transport.as_ref(), &topology).await;
        preview.steps.extend(roll_step(&topology, &observed, all));
    }
    Some(preview)
}

/// What shrinking the StatefulSet `live` to `desired` would destroy if the pods went without the
/// Redis step's drain, read-only ([`super::scale::undrained_loss`]). None when nothing shrinks,
/// the StatefulSet is not a Redis Cluster, or the departing pods hold nothing only they have.
pub async fn undrained_loss(
    client: &Client,
    desired: &Value,
    live: &Value,
    via: Via,
) -> Option<String> {
    let pods = |o: &Value| o["spec"]["replicas"].as_u64().unwrap_or(0) as usize;
    if pods(live) <= pods(desired) {
        return None;
    }
    let wanted = ClusterTarget::of(desired)?;
    let current = ClusterTarget::of(live).unwrap_or(wanted);
    let topology = match current.topology(client).await {
        Ok(topology) => topology,
        Err(error) => {
            return Some(format!(
                "its pods could not be listed, so losing nothing cannot be shown ({error:#})"
            ))
        }
    };
    let transport = transport(via, client, &current.namespace);
    let observed = observe(transport.as_ref(), &topology).await;
    super::scale::undrained_loss(&observed, pods(desired))
}

/// The roll `apply` will make, from what the pods report now; `all` when every pod will be
/// out of date (the pod template changes).
fn roll_step(topology: &Topology, observed: &Observation, all: bool) -> Option<RedisStep> {
    let mut facts = Facts::new(topology, observed);
    if all {
        facts.outdated = topology.pods.iter().map(|p| p.name.clone()).collect();
    }
    if facts.outdated.is_empty() {
        return None;
    }
    Some(match order(&facts, RollOptions::default()) {
        Ok(actions) => RedisStep::Roll {
            pods: facts.outdated.len(),
            failovers: actions
                .iter()
                .filter(|a| matches!(a, RollAction::Failover { .. }))
                .count(),
            actions,
        },
        Err(error) => RedisStep::Refused {
            reason: error.to_string(),
        },
    })
}

/// Verifies without changing anything.
pub async fn verify(client: &Client, target: &ClusterTarget, via: Via) -> anyhow::Result<Report> {
    let topology = target.topology(client).await?;
    let transport = transport(via, client, &target.namespace);
    let mut report = verify_cluster(transport.as_ref(), &topology).await;
    super::roll::note_roll(&topology, &mut report);
    Ok(report)
}

/// Verifies each Redis Cluster kubectl-redis manages in `namespace` (or only `name`), read-only.
pub async fn verify_all(
    client: &Client,
    namespace: &str,
    name: Option<&str>,
    via: Via,
) -> anyhow::Result<Vec<(ClusterTarget, Report)>> {
    let targets = find_targets(client, namespace, name).await?;
    let mut reports = Vec::with_capacity(targets.len());
    for target in targets {
        let report = verify(client, &target, via).await?;
        reports.push((target, report));
    }
    Ok(reports)
}

/// The cluster-mode StatefulSets kubectl-redis manages in a namespace, optionally by name.
pub async fn find_targets(
    client: &Client,
    namespace: &str,
    name: Option<&str>,
) -> anyhow::Result<Vec<ClusterTarget>> {
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let candidates: Vec<StatefulSet> = match name {
        Some(name) => vec![api
            .get_opt(name)
            .await?
            .with_context(|| format!("there is no StatefulSet {namespace}/{name}"))?],
        None => {
            api.list(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")))
                .await?
                .items
        }
    };
    let targets: Vec<ClusterTarget> = candidates
        .iter()
        .filter_map(|sts| {
            let mut value = serde_json::to_value(sts).ok()?;
            value["metadata"]["namespace"] = namespace.into();
            ClusterTarget::of(&value)
        })
        .collect();
    if let (Some(name), true) = (name, targets.is_empty()) {
        anyhow::bail!(
            "StatefulSet {namespace}/{name} is not a Redis Cluster managed by kubectl-redis (it has \
             no {MASTERS_ANNOTATION} annotation)"
        );
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cluster_shape_comes_from_the_rendered_annotations() {
        let sts = json!({"metadata": {"name": "r", "namespace": "ns", "annotations": {
            MASTERS_ANNOTATION: "3", REPLICAS_PER_MASTER_ANNOTATION: "1"}}});
        assert_eq!(
            ClusterTarget::of(&sts),
            Some(ClusterTarget {
                namespace: "ns".into(),
                statefulset: "r".into(),
                masters: 3,
                replicas_per_master: 1
            })
        );
        assert_eq!(
            ClusterTarget::of(&json!({"metadata": {"name": "redis", "namespace": "ns"}})),
            None
        );
    }
}
