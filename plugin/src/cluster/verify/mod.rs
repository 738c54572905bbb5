//! Verify a cluster from one observation: plain data for `status` (text and `-o json`) and for the
//! formation wait. Every problem names the pod, the reason and, where there is one, the peer it
//! concerns; [`super::diagnose`] groups them into causes with their remedy.
//!
//! The checks, in the order their findings are listed: pods that do not answer, the slot map
//! ([`slots`]), each pod's own view ([`pods`]), masters without a replica ([`replicas`]), and
//! the cluster's shape against the spec.

mod names;
mod pods;
mod replicas;
mod slots;
#[cfg(test)]
mod tests;

use serde::Serialize;

use super::diagnose::{diagnose, Cause};
use super::finding::{count, Finding, Kind};
use super::nodes::SLOTS;
use super::observe::Observation;
use super::topology::Topology;
use names::Names;
use pods::PodCheck;

/// One row of the status table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodRow {
    pub name: String,
    pub ip: Option<String>,
    pub node: Option<String>,
    /// `master`, `replica`, `none` (not in the cluster) or `unreachable`.
    pub role: String,
    /// For a replica, the pod it replicates.
    pub master: Option<String>,
    pub slots: usize,
    pub slot_ranges: String,
    pub keys: Option<u64>,
    /// `ok`, or a short account of its links: `5/5 stale` (peer addresses that are not the
    /// peers' pod IPs), `2/5 down` (cluster bus links disconnected), `1 handshake`,
    /// `misses 2` (pods it does not know), `repl down` (a replica's replication link).
    pub link: String,
    pub pvc: String,
    pub id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub healthy: bool,
    /// The one-line verdict printed first.
    pub headline: String,
    pub masters: usize,
    pub replicas: usize,
    pub slots_covered: usize,
    /// The problems and warnings grouped by what causes them, each with its remedy: problem
    /// causes first.
    pub causes: Vec<Cause>,
    pub pods: Vec<PodRow>,
    /// Failures: any of these makes verify fail (exit 1).
    pub problems: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

/// Judge the cluster as observed.
pub(super) fn verify(topo: &Topology, obs: &Observation) -> Report {
    let names = Names::new(obs);
    let mut problems: Vec<Finding> = obs
        .pods
        .iter()
        .filter_map(|p| {
            let e = p.error.as_ref()?;
            Some(Finding::new(
                Some(&p.pod.name),
                Kind::Unreachable,
                e.to_string(),
            ))
        })
        .collect();
    let live: Vec<_> = obs.pods.iter().filter(|p| p.ok()).collect();
    let slots_covered = slots::check(&live, &names, &mut problems);

    let mut check = PodCheck {
        topo,
        obs,
        names: &names,
        problems,
        warnings: Vec::new(),
        masters: 0,
        replicas: 0,
    };
    let rows = check.rows();
    let PodCheck {
        mut problems,
        mut warnings,
        masters,
        replicas,
        ..
    } = check;

    replicas::check(obs, &live, &names, &mut problems);
    if masters != topo.masters && problems.is_empty() {
        warnings.push(Finding::new(
            None,
            Kind::Shape,
            format!(
                "{masters} masters serve slots, the spec asks for {}",
                topo.masters
            ),
        ));
    }

    let causes = diagnose(obs, &names.pod_of, &problems, &warnings);
    let healthy = problems.is_empty();
    let summary =
        format!("{masters} masters, {replicas} replicas, {slots_covered}/{SLOTS} slots covered");
    let headline = if healthy {
        match warnings.len() {
            0 => format!("Cluster healthy: {summary}"),
            n => format!("Cluster healthy: {summary} ({})", count(n, "warning")),
        }
    } else {
        let problem_causes = causes.iter().filter(|c| !c.problems.is_empty()).count();
        format!(
            "Cluster unhealthy ({}, {}): {summary}",
            count(problem_causes, "cause"),
            count(problems.len(), "problem")
        )
    };
    Report {
        healthy,
        headline,
        masters,
        replicas,
        slots_covered,
        causes,
        pods: rows,
        problems,
        warnings,
    }
}
