//! What the Redis step of `apply` will do to one cluster, seen read-only at plan time: the same
//! decisions the executors take ([`check_safe`], [`fixed_roles`], the planner, [`missing_meets`],
//! [`balance_moves`]) on one observation, without running anything that changes a node. Keys
//! that slot moves carry are counted with `CLUSTER COUNTKEYSINSLOT` on the slots' owners.

mod compute;
#[cfg(test)]
mod tests;
mod text;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::nodes::{even_ranges, ranges_to_string};
use super::observe::{observe, Observation};
use super::roll::RollAction;
use super::spread::Repoint;
use super::topology::Topology;
use super::transport::RedisTransport;
pub(crate) use text::summary;

/// The Redis step's plan for one cluster; no steps means it will only verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisPreview {
    pub namespace: String,
    pub statefulset: String,
    /// A digest of what every pod reported (node ids, addresses, roles, slots), for saved plans:
    /// `apply PLANFILE` refuses when the cluster has moved on. None when nothing was observed.
    pub observed: Option<String>,
    pub steps: Vec<RedisStep>,
}

/// One thing the Redis step will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "step",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RedisStep {
    /// The pods do not exist yet: after the rollout the cluster is formed as the spec says.
    FormAfterRollout {
        masters: usize,
        replicas_per_master: usize,
        slot_ranges: Vec<String>,
    },
    /// Masters take slots no node owns yet.
    AssignSlots { masters: Vec<MasterSlots> },
    /// Nodes are introduced to nodes they do not know, or know at a stale address.
    Meet { meets: usize, pods: Vec<String> },
    /// Replicas start following (or follow another) master.
    Replicate { replicas: Vec<Follow> },
    /// Slots a previous run left half-migrated are finished.
    FinishMigrations { slots: usize },
    /// Replicas are re-paired, one full sync at a time, so every master has one on another
    /// Kubernetes node ([`super::spread`]).
    SpreadReplicas { moves: Vec<Repoint> },
    /// A departing master's replica that stays takes over its slots (no key moves).
    Failover { replica: String, master: String },
    /// Slots move between masters with their keys.
    MoveSlots {
        slots: usize,
        keys: u64,
        from: Vec<String>,
        to: Vec<String>,
    },
    /// Departing nodes are forgotten by the ones that stay, before the StatefulSet shrinks.
    Forget { pods: Vec<String> },
    /// Pods on an old revision (all of them, when the pod template changes) are replaced one
    /// at a time in this order ([`super::roll`]): replicas first, a failover before each master.
    Roll {
        pods: usize,
        failovers: usize,
        actions: Vec<RollAction>,
    },
    /// The pods could not all be asked; the step decides after the rollout.
    Unobserved { reason: String },
    /// The step would refuse (nothing is changed): the reason, as apply would give it.
    Refused { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterSlots {
    pub pod: String,
    pub slots: usize,
    pub ranges: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Follow {
    pub pod: String,
    pub master: String,
    /// The Kubernetes node of the replica, when it is running.
    pub node: Option<String>,
}

impl RedisPreview {
    pub fn has_work(&self) -> bool {
        !self.steps.is_empty()
    }
}

/// The shape a cluster is asked to have (from the rendered StatefulSet).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub pods: usize,
    pub masters: usize,
    pub replicas_per_master: usize,
}

/// The steps for a cluster whose StatefulSet does not exist yet.
pub(crate) fn form_after_rollout(namespace: &str, statefulset: &str, shape: Shape) -> RedisPreview {
    RedisPreview {
        namespace: namespace.into(),
        statefulset: statefulset.into(),
        observed: None,
        steps: vec![RedisStep::FormAfterRollout {
            masters: shape.masters,
            replicas_per_master: shape.replicas_per_master,
            slot_ranges: even_ranges(shape.masters.max(1))
                .iter()
                .map(|r| ranges_to_string(std::slice::from_ref(r)))
                .collect(),
        }],
    }
}

/// Observes the running pods (`current`: the live StatefulSet's pods and shape) and plans the
/// step toward `wanted`.
pub(crate) async fn preview(
    t: &dyn RedisTransport,
    current: &Topology,
    wanted: Shape,
    namespace: &str,
    statefulset: &str,
) -> RedisPreview {
    let mut preview = RedisPreview {
        namespace: namespace.into(),
        statefulset: statefulset.into(),
        observed: None,
        steps: Vec::new(),
    };
    if current.pods.is_empty() {
        preview.steps = form_after_rollout(namespace, statefulset, wanted).steps;
        return preview;
    }
    let obs = observe(t, current).await;
    let unanswered: Vec<String> = obs
        .pods
        .iter()
        .filter_map(|p| Some(format!("{}: {}", p.pod.name, p.error.as_ref()?)))
        .collect();
    if !unanswered.is_empty() {
        preview.steps.push(RedisStep::Unobserved {
            reason: unanswered.join("; "),
        });
        return preview;
    }
    preview.observed = Some(digest(&obs));
    preview.steps = match compute::steps(t, current, &obs, wanted).await {
        Ok(steps) => steps,
        Err(error) => vec![RedisStep::Refused {
            reason: format!("{error:#}"),
        }],
    };
    preview
}

/// The digest of an observation that a saved plan keeps: each pod's id, address, role, master
/// and slots, and the addresses it knows its peers at.
pub(crate) fn digest(obs: &Observation) -> String {
    let mut hash = Sha256::new();
    for pod in &obs.pods {
        hash.update(pod.pod.name.as_bytes());
        let mut lines: Vec<String> = pod
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "{} {}:{} {} {} {:?}",
                    n.id,
                    n.ip,
                    n.port,
                    n.is_master(),
                    n.master_id.as_deref().unwrap_or("-"),
                    n.slots
                )
            })
            .collect();
        lines.sort();
        for line in lines {
            hash.update(line.as_bytes());
            hash.update(b"\n");
        }
    }
    hex::encode(hash.finalize())
}
