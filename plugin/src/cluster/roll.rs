//! Rolling the Redis pods onto a new StatefulSet revision in an order that knows Redis roles.
//! The StatefulSet uses `updateStrategy: OnDelete`; `apply` deletes the out-of-date pods
//! itself, one at a time: replicas first, then for each master a `CLUSTER FAILOVER` on an
//! up-to-date replica, then the former master (by then a replica). A pod is out of date when
//! its `controller-revision-hash` label is not the StatefulSet's `status.updateRevision`, so
//! nothing is kept on disk and an interrupted roll resumes from what the cluster says.
//!
//! This is the pure core: [`next`] decides the next step from one observation, [`order`] the
//! whole remaining sequence (what `plan` shows). The executor is [`super::roll_exec`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::diagnose::{Cause, CauseKind, Severity};
use super::finding::{Finding, Kind};
use super::observe::{Observation, PodState};
use super::topology::{names, PodInfo, Topology};
use super::verify::{verify, Report};

/// How many bytes of replication stream a replica may trail its master and still count as
/// caught up (offsets are read from two nodes one after the other, under live writes).
pub(crate) const MAX_LAG: u64 = 1 << 20;

/// What the user allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollOptions {
    /// Replace masters that hold slots without a failover first (`--unsafe-fast-roll`): their
    /// slots are unavailable until the pod is back or a replica takes over, and writes
    /// acknowledged just before may be lost.
    pub unsafe_fast: bool,
}

/// What a replaced pod was when it was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A replica: its master keeps serving.
    Replica,
    /// A master that was just failed over: a replica by the time it is deleted.
    FormerMaster,
    /// A master without slots, or a pod not in a cluster yet: it serves nothing.
    EmptyMaster,
    /// A master deleted while it holds slots, without a failover (`--unsafe-fast-roll` only).
    Master,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Replica => "replica",
            Role::FormerMaster => "former master, a replica after the failover",
            Role::EmptyMaster => "master without slots",
            Role::Master => "master holding slots, no failover: --unsafe-fast-roll",
        })
    }
}

/// One step of a roll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "action",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RollAction {
    /// Delete the pod; the StatefulSet controller creates it again on the new revision.
    Replace { pod: String, role: Role },
    /// `CLUSTER FAILOVER` on `replica`: it takes over `master`'s slots with no write lost,
    /// and `master` becomes its replica.
    Failover { replica: String, master: String },
}

impl std::fmt::Display for RollAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RollAction::Replace { pod, role } => write!(f, "replace {pod} ({role})"),
            RollAction::Failover { replica, master } => write!(
                f,
                "fail over {master} to {replica} (CLUSTER FAILOVER on {replica})"
            ),
        }
    }
}

/// Why a roll cannot go on; nothing was deleted for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RollError {
    #[error(
        "refusing to roll {master}: it serves {slots} slots and has no replica to take them over \
         first (replicasPerMaster 0, or its replicas are gone); --unsafe-fast-roll replaces it \
         anyway, leaving its slots unavailable while it restarts"
    )]
    NoReplica { master: String, slots: usize },
    #[error(
        "refusing to go on with the roll: {replica} runs Redis {replica_version} on the new \
         revision and replicates from {master}, which runs the newer Redis {master_version}; a \
         replica cannot replicate from a master of a newer version (its RDB format moved on). \
         A downgrade cannot be rolled safely: go back to the image of {master}"
    )]
    VersionInversion {
        replica: String,
        replica_version: String,
        master: String,
        master_version: String,
    },
}

/// What one decision is taken from: the StatefulSet's pods (with their revision and
/// readiness), what their Redis reports, and which pods are out of date.
pub(crate) struct Facts<'a> {
    pub topo: &'a Topology,
    pub obs: &'a Observation,
    pub outdated: BTreeSet<String>,
}

impl<'a> Facts<'a> {
    /// Out of date: pods whose revision is not the StatefulSet's update revision.
    pub(crate) fn new(topo: &'a Topology, obs: &'a Observation) -> Facts<'a> {
        Facts {
            topo,
            obs,
            outdated: outdated_pods(topo),
        }
    }
}

/// The pods whose `controller-revision-hash` is not the StatefulSet's `updateRevision`, in
/// ordinal order.
pub(crate) fn outdated_pods(topo: &Topology) -> BTreeSet<String> {
    let Some(update) = &topo.update_revision else {
        return BTreeSet::new();
    };
    topo.pods
        .iter()
        .filter(|p| p.revision.as_ref() != Some(update))
        .map(|p| p.name.clone())
        .collect()
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Every pod is on the update revision and the cluster has settled.
    Done,
    /// Something is not settled yet (a pod not back, a replica catching up): why.
    Wait(String),
    Act(RollAction),
}

/// The next step of the roll. Nothing is done unless every pod is there, Ready and answering,
/// the cluster agrees and every replica is caught up: so at most one member of a shard is
/// ever down, and a replica is promoted only when it has its master's writes.
pub(crate) fn next(f: &Facts, options: RollOptions) -> Result<Next, RollError> {
    check_versions(f)?;
    if let Some(why) = unsettled(f) {
        return Ok(Next::Wait(why));
    }
    Ok(match order(f, options)?.into_iter().next() {
        Some(action) => Next::Act(action),
        None => Next::Done,
    })
}

/// Every remaining step, in order, from what the pods report now: out-of-date replicas
/// (highest ordinal first), then each out-of-date master — a failover to its most caught-up
/// replica, then the former master. Masters without slots are replaced like replicas.
pub(crate) fn order(f: &Facts, options: RollOptions) -> Result<Vec<RollAction>, RollError> {
    check_versions(f)?;
    let mut pods: Vec<&PodInfo> = f
        .topo
        .pods
        .iter()
        .filter(|p| f.outdated.contains(&p.name))
        .collect();
    pods.sort_by_key(|p| std::cmp::Reverse(p.ordinal));
    let mut out = Vec::new();
    for pod in &pods {
        if state(f, &pod.name)
            .and_then(PodState::myself)
            .is_some_and(|m| m.is_replica())
        {
            out.push(RollAction::Replace {
                pod: pod.name.clone(),
                role: Role::Replica,
            });
        }
    }
    for pod in &pods {
        let Some(me) = state(f, &pod.name).and_then(PodState::myself) else {
            out.push(RollAction::Replace {
                pod: pod.name.clone(),
                role: Role::EmptyMaster,
            });
            continue;
        };
        if me.is_replica() {
            continue;
        }
        let slots = me.slot_count();
        if slots == 0 || options.unsafe_fast {
            let role = if slots == 0 {
                Role::EmptyMaster
            } else {
                Role::Master
            };
            out.push(RollAction::Replace {
                pod: pod.name.clone(),
                role,
            });
            continue;
        }
        let replica = best_replica(f, &pod.name).ok_or_else(|| RollError::NoReplica {
            master: pod.name.clone(),
            slots,
        })?;
        check_promotion(f, &replica, &pod.name)?;
        out.push(RollAction::Failover {
            replica,
            master: pod.name.clone(),
        });
        out.push(RollAction::Replace {
            pod: pod.name.clone(),
            role: Role::FormerMaster,
        });
    }
    Ok(out)
}

fn state<'a>(f: &'a Facts, pod: &str) -> Option<&'a PodState> {
    f.obs.get(pod).filter(|p| p.ok())
}

/// The pod a replica replicates from, by its own `myself` line.
fn master_of(f: &Facts, replica: &str) -> Option<String> {
    let id = state(f, replica)?.myself()?.master_id.clone()?;
    f.obs.pod_of_id().get(&id).cloned()
}

/// The replicas of `master`: pods whose `myself` line follows it.
fn replicas_of(f: &Facts, master: &str) -> Vec<String> {
    f.topo
        .pods
        .iter()
        .filter(|p| master_of(f, &p.name).as_deref() == Some(master))
        .map(|p| p.name.clone())
        .collect()
}

/// Bytes of replication stream `replica` trails its master by; None when unknown.
fn lag(f: &Facts, replica: &str) -> Option<u64> {
    let master = master_of(f, replica)?;
    let theirs = state(f, &master)?.replication_offset?;
    let mine = state(f, replica)?.replication_offset?;
    Some(theirs.saturating_sub(mine))
}

/// The replica to promote: link up, least behind, lowest ordinal.
fn best_replica(f: &Facts, master: &str) -> Option<String> {
    let mut candidates: Vec<(bool, u64, u32, String)> = replicas_of(f, master)
        .into_iter()
        .map(|r| {
            let up = state(f, &r).and_then(|s| s.master_link_up) == Some(true);
            let ordinal = f.topo.pod(&r).map_or(u32::MAX, |p| p.ordinal);
            (!up, lag(f, &r).unwrap_or(u64::MAX), ordinal, r)
        })
        .collect();
    candidates.sort();
    candidates.into_iter().next().map(|(_, _, _, r)| r)
}

/// `major.minor` of a `redis_version`: what decides whether one node can replicate another.
fn version(f: &Facts, pod: &str) -> Option<(u32, u32)> {
    let text = state(f, pod)?.redis_version.as_deref()?;
    let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
}

fn version_text(f: &Facts, pod: &str) -> String {
    state(f, pod)
        .and_then(|s| s.redis_version.clone())
        .unwrap_or_else(|| "?".into())
}

/// A replica older than its master is tolerated only while it is out of date (it is the next
/// to go: a master just failed over, mid-upgrade); on the new revision it means the new
/// image runs an older Redis than the masters, and going on would leave masters whose
/// replicas cannot copy them.
fn check_versions(f: &Facts) -> Result<(), RollError> {
    for pod in &f.topo.pods {
        let Some(master) = master_of(f, &pod.name) else {
            continue;
        };
        let (Some(mine), Some(theirs)) = (version(f, &pod.name), version(f, &master)) else {
            continue;
        };
        if mine < theirs && !f.outdated.contains(&pod.name) {
            return Err(inversion(f, &pod.name, &master));
        }
    }
    Ok(())
}

/// Promoting `replica` must not leave an up-to-date sibling replica older than it.
fn check_promotion(f: &Facts, replica: &str, master: &str) -> Result<(), RollError> {
    let Some(new) = version(f, replica) else {
        return Ok(());
    };
    for sibling in replicas_of(f, master) {
        if sibling == replica || f.outdated.contains(&sibling) {
            continue;
        }
        if version(f, &sibling).is_some_and(|v| v < new) {
            return Err(inversion(f, &sibling, replica));
        }
    }
    Ok(())
}

fn inversion(f: &Facts, replica: &str, master: &str) -> RollError {
    RollError::VersionInversion {
        replica: replica.to_string(),
        replica_version: version_text(f, replica),
        master: master.to_string(),
        master_version: version_text(f, master),
    }
}

/// Why the cluster is not ready for the next step, if it is not: a pod missing, not Ready
/// or not answering; the cluster not agreeing (a replaced pod not rejoined yet); a replica
/// whose replication is down or behind. An out-of-date replica older than its master (a
/// master just failed over, mid-upgrade) is excused from catching up: it cannot, and it is
/// the next to be replaced.
pub(crate) fn unsettled(f: &Facts) -> Option<String> {
    let want = f.topo.replicas.unwrap_or(f.topo.pods.len());
    if f.topo.pods.len() < want {
        let there: BTreeSet<u32> = f.topo.pods.iter().map(|p| p.ordinal).collect();
        let missing = (0..want as u32).find(|o| !there.contains(o)).unwrap_or(0);
        return Some(format!(
            "{}/{want} pods exist (ordinal {missing} is being re-created)",
            f.topo.pods.len()
        ));
    }
    if let Some(p) = f.topo.pods.iter().find(|p| !p.ready || p.ip.is_none()) {
        return Some(format!("{} is not Ready", p.name));
    }
    if let Some(p) = f.obs.pods.iter().find(|p| !p.ok()) {
        let error = p
            .error
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        return Some(format!("{}: {error}", p.pod.name));
    }
    let excused: BTreeSet<String> = f
        .topo
        .pods
        .iter()
        .filter(|p| f.outdated.contains(&p.name))
        .filter_map(|p| {
            let master = master_of(f, &p.name)?;
            (version(f, &p.name)? < version(f, &master)?).then(|| p.name.clone())
        })
        .collect();
    if !f.obs.claimed_slots().is_empty() {
        let report = verify(f.topo, f.obs);
        // A spec without replicas is a master with none by design: [`order`] refuses it.
        let by_design = f.topo.replicas_per_master == 0;
        let excusable = |kind: Kind, pod: Option<&String>, peer: Option<&String>| {
            let about_excused = pod.is_some_and(|p| excused.contains(p))
                || peer.is_some_and(|p| excused.contains(p))
                || pod.is_some_and(|m| replicas_of(f, m).iter().any(|r| excused.contains(r)));
            // Where the scheduler put a replaced pod is for the Redis step after the roll
            // to fix; a roll step does not need it.
            kind == Kind::ReplicasOnMasterNode
                || (kind == Kind::NoReplica && by_design)
                || (matches!(kind, Kind::ReplicaLinkDown | Kind::NoReplica) && about_excused)
        };
        if let Some(problem) = report
            .problems
            .iter()
            .find(|p| !excusable(p.kind, p.pod.as_ref(), p.peer.as_ref()))
        {
            return Some(format!("the cluster has not settled: {problem}"));
        }
    }
    for pod in f.topo.pods.iter().filter(|p| !excused.contains(&p.name)) {
        let Some(master) = master_of(f, &pod.name) else {
            continue;
        };
        if state(f, &pod.name).and_then(|s| s.master_link_up) != Some(true) {
            return Some(format!(
                "{} has no replication link to {master} yet",
                pod.name
            ));
        }
        match lag(f, &pod.name) {
            Some(lag) if lag <= MAX_LAG => {}
            Some(lag) => {
                return Some(format!("{} trails {master} by {lag} bytes", pod.name));
            }
            None => return Some(format!("{} reports no replication offset", pod.name)),
        }
    }
    None
}

/// For `status`: pods on an old revision are a roll in progress, one warning each and one
/// cause with its remedy.
pub(crate) fn note_roll(topo: &Topology, report: &mut Report) {
    let outdated = outdated_pods(topo);
    let Some(update) = topo
        .update_revision
        .as_deref()
        .filter(|_| !outdated.is_empty())
    else {
        return;
    };
    let first = report.warnings.len();
    for pod in topo.pods.iter().filter(|p| outdated.contains(&p.name)) {
        report.warnings.push(Finding {
            pod: Some(pod.name.clone()),
            kind: Kind::OldRevision,
            peer: None,
            slots: None,
            message: format!(
                "on revision {}, not the update revision {update}",
                pod.revision.as_deref().unwrap_or("?")
            ),
        });
    }
    let pods: Vec<String> = outdated.into_iter().collect();
    report.causes.push(Cause {
        kind: CauseKind::RollInProgress,
        severity: Severity::Warning,
        summary: format!(
            "a roll is in progress: {}/{} pods on an old revision ({})",
            pods.len(),
            topo.pods.len(),
            names(&pods)
        ),
        remedy: "`kubectl redis apply -f SPEC` resumes it: replicas first, a CLUSTER FAILOVER \
                 before each master"
            .into(),
        problems: Vec::new(),
        warnings: (first..report.warnings.len()).collect(),
        pods,
    });
}

#[cfg(test)]
#[path = "roll_tests.rs"]
mod tests;
