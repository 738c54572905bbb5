//! The ledger of a diagnosis: findings, and the cause each belongs to while detectors claim
//! them; symptoms follow the cause of the pods they are between.

use std::collections::BTreeMap;

use super::{Cause, CauseKind, Severity};
use crate::cluster::finding::{Finding, Kind};
use crate::cluster::nodes::NodeLine;
use crate::cluster::observe::Observation;

/// Findings and the cause each belongs to, while detectors claim them.
pub(super) struct Diagnosis<'a> {
    /// The problems, then the warnings.
    pub(super) findings: Vec<&'a Finding>,
    /// How many of `findings` are problems.
    pub(super) problems: usize,
    pub(super) owner: Vec<Option<usize>>,
    pub(super) drafts: Vec<Draft>,
}

pub(super) struct Draft {
    pub(super) kind: CauseKind,
    pub(super) summary: String,
    pub(super) remedy: String,
    pub(super) pods: Vec<String>,
}

/// Kinds that are symptoms of a fault between two pods (or of unserved slots), never a fault
/// of their own when a cause explains the pair.
pub(super) fn symptom(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::LinkDown
            | Kind::NodeFailing
            | Kind::ReplicaLinkDown
            | Kind::NoReplica
            | Kind::MissingNode
            | Kind::StateNotOk
            | Kind::UncoveredSlots
    )
}

impl<'a> Diagnosis<'a> {
    pub(super) fn unclaimed(&self) -> impl Iterator<Item = &'a Finding> + '_ {
        self.findings
            .iter()
            .zip(&self.owner)
            .filter(|(_, o)| o.is_none())
            .map(|(f, _)| *f)
    }

    /// Adds a cause that claims the unclaimed findings `claims` accepts, then lets symptoms
    /// follow.
    pub(super) fn add(&mut self, draft: Draft, claims: impl Fn(&Finding) -> bool) {
        let cause = self.drafts.len();
        self.drafts.push(draft);
        for (f, owner) in self.findings.iter().zip(&mut self.owner) {
            if owner.is_none() && claims(f) {
                *owner = Some(cause);
            }
        }
        self.follow();
    }

    /// Assigns unclaimed symptoms to the cause of a finding between the same two pods, of
    /// either pod being down, or (for `cluster_state`) of unserved slots or the pod's links.
    pub(super) fn follow(&mut self) {
        loop {
            let mut pair: BTreeMap<(&str, &str), usize> = BTreeMap::new();
            let mut down: BTreeMap<&str, usize> = BTreeMap::new();
            let mut links_of: BTreeMap<&str, usize> = BTreeMap::new();
            let mut unserved = None;
            for (f, owner) in self.findings.iter().zip(&self.owner) {
                let Some(cause) = *owner else { continue };
                match (f.pod.as_deref(), f.peer.as_deref()) {
                    (Some(p), Some(q)) => {
                        pair.entry((p, q)).or_insert(cause);
                        if matches!(
                            f.kind,
                            Kind::LinkDown | Kind::NodeFailing | Kind::StaleAddress
                        ) {
                            links_of.entry(p).or_insert(cause);
                        }
                    }
                    (Some(p), None) if f.kind == Kind::Unreachable => {
                        down.entry(p).or_insert(cause);
                    }
                    _ => {}
                }
                if f.kind == Kind::UncoveredSlots {
                    unserved.get_or_insert(cause);
                }
            }
            let mut changed = false;
            for (f, owner) in self.findings.iter().zip(&mut self.owner) {
                if owner.is_some() || !symptom(f.kind) {
                    continue;
                }
                let found = match (f.pod.as_deref(), f.peer.as_deref()) {
                    (Some(p), Some(q)) => pair
                        .get(&(p, q))
                        .or_else(|| pair.get(&(q, p)))
                        .or_else(|| down.get(q)),
                    (None, Some(q)) => down.get(q),
                    (Some(p), None) if f.kind == Kind::StateNotOk => {
                        unserved.as_ref().or_else(|| links_of.get(p))
                    }
                    _ => None,
                };
                if let Some(cause) = found {
                    *owner = Some(*cause);
                    changed = true;
                }
            }
            if !changed {
                return;
            }
        }
    }

    pub(super) fn finish(self) -> Vec<Cause> {
        let mut causes: Vec<Cause> = self
            .drafts
            .into_iter()
            .enumerate()
            .map(|(c, draft)| {
                let mine = |range: std::ops::Range<usize>, offset: usize| -> Vec<usize> {
                    range
                        .filter(|i| self.owner[*i] == Some(c))
                        .map(|i| i - offset)
                        .collect()
                };
                let problems = mine(0..self.problems, 0);
                let warnings = mine(self.problems..self.owner.len(), self.problems);
                Cause {
                    kind: draft.kind,
                    severity: if problems.is_empty() {
                        Severity::Warning
                    } else {
                        Severity::Problem
                    },
                    summary: draft.summary,
                    remedy: draft.remedy,
                    pods: draft.pods,
                    problems,
                    warnings,
                }
            })
            .filter(|c| !c.problems.is_empty() || !c.warnings.is_empty())
            .collect();
        causes.sort_by_key(|c| c.severity == Severity::Warning);
        causes
    }
}

/// What the pods that answered say about a node, by pod name.
pub(super) struct Views<'a> {
    pub(super) obs: &'a Observation,
    pub(super) pod_of: &'a BTreeMap<String, String>,
}

impl Views<'_> {
    pub(super) fn id_of(&self, pod: &str) -> Option<&str> {
        self.pod_of
            .iter()
            .find(|(_, p)| p.as_str() == pod)
            .map(|(id, _)| id.as_str())
    }

    /// The first answering pod's line for `pod`.
    pub(super) fn line(&self, pod: &str) -> Option<&NodeLine> {
        let id = self.id_of(pod)?;
        self.obs
            .pods
            .iter()
            .filter(|p| p.ok())
            .find_map(|p| p.view_of(id))
    }

    /// Answering pods that replicate `pod`.
    pub(super) fn replicas_of(&self, pod: &str) -> Vec<&str> {
        let Some(id) = self.id_of(pod) else {
            return Vec::new();
        };
        self.obs
            .pods
            .iter()
            .filter(|p| p.ok() && p.myself().and_then(|m| m.master_id.as_deref()) == Some(id))
            .map(|p| p.pod.name.as_str())
            .collect()
    }
}

pub(super) fn has_problem(d: &Diagnosis, kind: Kind, pod: &str) -> bool {
    d.findings[..d.problems]
        .iter()
        .any(|f| f.kind == kind && f.pod.as_deref() == Some(pod))
}
