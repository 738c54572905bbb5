//! From findings to causes. One fault shows as many findings — after every pod restarted with
//! a new IP, six nodes report five stale peers, five dead links, replication down — so
//! [`diagnose`] names the fault once, counts what it explains and says what to do.
//!
//! Detectors run in order, each claiming the findings it explains: pods that do not answer,
//! stale addresses, a cluster not (fully) formed, open slots, replicas beside their master,
//! pods cut off from the cluster bus. After each, the symptoms follow their cause: a link,
//! failure flag, replication link, missing replica or missing introduction between two pods
//! belongs to the cause that already explains something between the same two pods (or that
//! one of them is down), and a `cluster_state` other than `ok` to the cause of unserved slots,
//! else to the cause of the pod's broken links. What no detector explains is grouped by kind.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::nodes::ranges_to_string;
use super::observe::{Observation, PodError, PodState};
use super::verify::{count, Finding, Kind};

/// What a [`Cause`] is: a stable, machine-readable name, kebab-case in JSON. Documented for
/// consumers in `plugin/schemas/status.schema.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CauseKind {
    /// A pod's Redis does not answer, or the pod has no IP yet.
    PodDown,
    /// A pod runs Redis with `cluster-enabled no`.
    ClusterModeOff,
    /// Pods came back with new IPs and their peers still have the old ones.
    StaleAddresses,
    /// No pod knows another or serves a slot: the cluster was never formed.
    NotFormed,
    /// Masters without slots or replicas: pods not part of the cluster yet.
    NotInCluster,
    /// A slot is half-moved between two masters.
    OpenSlot,
    /// A replica shares a Kubernetes node with its master.
    ReplicaSameNode,
    /// A pod answers, but most of its peers cannot reach it over the cluster bus.
    Partitioned,
    // The rest group the findings of one kind that no cause above explains, under the
    // findings' kind.
    /// Slots without a master, or served by a failed master that answers.
    UncoveredSlots,
    /// Pods whose slot map differs from the majority's.
    SlotMapDisagrees,
    /// Pods whose `cluster_state` is not `ok`.
    StateNotOk,
    /// Cluster bus links down between pods that otherwise reach each other.
    LinkDown,
    /// Pods seen failing by some of their peers.
    NodeFailing,
    /// Nodes that are none of the StatefulSet's pods: another cluster's nodes.conf, or a pod
    /// that lost its volume.
    UnknownNode,
    /// Pods that do not know each other: introductions (`CLUSTER MEET`) missing.
    MissingNode,
    /// Masters without a connected replica, and no free pod to become one.
    NoReplica,
    /// Replication links down, e.g. while a full sync runs.
    ReplicaLinkDown,
    /// More or fewer masters serve slots than the spec asks for.
    Shape,
    /// Pods on an old StatefulSet revision: a roll started and has not finished.
    RollInProgress,
}

impl CauseKind {
    /// Every kind, in the order above.
    pub const ALL: [CauseKind; 19] = [
        CauseKind::PodDown,
        CauseKind::ClusterModeOff,
        CauseKind::StaleAddresses,
        CauseKind::NotFormed,
        CauseKind::NotInCluster,
        CauseKind::OpenSlot,
        CauseKind::ReplicaSameNode,
        CauseKind::Partitioned,
        CauseKind::UncoveredSlots,
        CauseKind::SlotMapDisagrees,
        CauseKind::StateNotOk,
        CauseKind::LinkDown,
        CauseKind::NodeFailing,
        CauseKind::UnknownNode,
        CauseKind::MissingNode,
        CauseKind::NoReplica,
        CauseKind::ReplicaLinkDown,
        CauseKind::Shape,
        CauseKind::RollInProgress,
    ];
}

/// Whether a cause makes the cluster unhealthy or only deserves attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Problem,
    Warning,
}

/// One fault, what it explains, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    pub kind: CauseKind,
    /// `problem` when it explains at least one problem, else `warning`.
    pub severity: Severity,
    /// What is wrong, in one line.
    pub summary: String,
    /// What to do about it.
    pub remedy: String,
    /// The pods it is about.
    pub pods: Vec<String>,
    /// Indexes into the report's `problems` that this cause explains.
    pub problems: Vec<usize>,
    /// Indexes into the report's `warnings` that this cause explains.
    pub warnings: Vec<usize>,
}

/// Groups the report's problems and warnings into causes: every finding belongs to exactly
/// one, problem causes come first. `pod_of` maps node ids to pods, down pods included.
pub(super) fn diagnose(
    obs: &Observation,
    pod_of: &BTreeMap<String, String>,
    problems: &[Finding],
    warnings: &[Finding],
) -> Vec<Cause> {
    let mut d = Diagnosis {
        findings: problems.iter().chain(warnings).collect(),
        problems: problems.len(),
        owner: vec![None; problems.len() + warnings.len()],
        drafts: Vec::new(),
    };
    let view = Views { obs, pod_of };
    for p in obs.pods.iter().filter(|p| !p.ok()) {
        pod_down(&mut d, &view, p);
    }
    stale_addresses(&mut d, obs.pods.len());
    not_formed(&mut d, obs);
    open_slots(&mut d, obs);
    same_node(&mut d, &view);
    partitioned(&mut d, obs);
    leftovers(&mut d);
    d.finish()
}

/// Findings and the cause each belongs to, while detectors claim them.
struct Diagnosis<'a> {
    /// The problems, then the warnings.
    findings: Vec<&'a Finding>,
    /// How many of `findings` are problems.
    problems: usize,
    owner: Vec<Option<usize>>,
    drafts: Vec<Draft>,
}

struct Draft {
    kind: CauseKind,
    summary: String,
    remedy: String,
    pods: Vec<String>,
}

/// Kinds that are symptoms of a fault between two pods (or of unserved slots), never a fault
/// of their own when a cause explains the pair.
fn symptom(kind: Kind) -> bool {
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
    fn unclaimed(&self) -> impl Iterator<Item = &'a Finding> + '_ {
        self.findings
            .iter()
            .zip(&self.owner)
            .filter(|(_, o)| o.is_none())
            .map(|(f, _)| *f)
    }

    /// Adds a cause that claims the unclaimed findings `claims` accepts, then lets symptoms
    /// follow.
    fn add(&mut self, draft: Draft, claims: impl Fn(&Finding) -> bool) {
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
    fn follow(&mut self) {
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

    fn finish(self) -> Vec<Cause> {
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
struct Views<'a> {
    obs: &'a Observation,
    pod_of: &'a BTreeMap<String, String>,
}

impl Views<'_> {
    fn id_of(&self, pod: &str) -> Option<&str> {
        self.pod_of
            .iter()
            .find(|(_, p)| p.as_str() == pod)
            .map(|(id, _)| id.as_str())
    }

    /// The first answering pod's line for `pod`.
    fn line(&self, pod: &str) -> Option<&super::nodes::NodeLine> {
        let id = self.id_of(pod)?;
        self.obs
            .pods
            .iter()
            .filter(|p| p.ok())
            .find_map(|p| p.view_of(id))
    }

    /// Answering pods that replicate `pod`.
    fn replicas_of(&self, pod: &str) -> Vec<&str> {
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

/// The pods that answered.
fn answering(obs: &Observation) -> Vec<&str> {
    obs.pods
        .iter()
        .filter(|p| p.ok())
        .map(|p| p.pod.name.as_str())
        .collect()
}

/// `a`, `a and b`, `a, b and c`, `a, b, c and 4 more`.
fn list<S: AsRef<str>>(items: &[S]) -> String {
    const SHOWN: usize = 3;
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        _ if items.len() > SHOWN + 1 => format!(
            "{} and {} more",
            items[..SHOWN].join(", "),
            items.len() - SHOWN
        ),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn has_problem(d: &Diagnosis, kind: Kind, pod: &str) -> bool {
    d.findings[..d.problems]
        .iter()
        .any(|f| f.kind == kind && f.pod.as_deref() == Some(pod))
}

/// A pod that did not answer: what it was, what its absence costs, what takes over.
fn pod_down(d: &mut Diagnosis, view: &Views, p: &PodState) {
    let x = p.pod.name.as_str();
    let reason = p
        .error
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let claims = |f: &Finding| {
        (f.kind == Kind::Unreachable && f.pod.as_deref() == Some(x))
            || (symptom(f.kind) && f.peer.as_deref() == Some(x))
    };
    if p.error == Some(PodError::ClusterModeOff) {
        let draft = Draft {
            kind: CauseKind::ClusterModeOff,
            summary: format!("{x} runs Redis with cluster mode off (cluster-enabled no)"),
            remedy: "its redis.conf must say `cluster-enabled yes`, as a RedisCluster spec \
                     renders it: fix the spec, then `kubectl redis apply -f SPEC`"
                .into(),
            pods: vec![x.to_string()],
        };
        d.add(draft, claims);
        return;
    }
    let why = match &p.error {
        Some(PodError::NoIp) => format!("`kubectl describe pod {x}` says why it is not running"),
        _ => {
            format!("`kubectl describe pod {x}` and `kubectl logs {x}` say why it does not answer")
        }
    };
    let line = view.line(x);
    let (summary, remedy) = match line {
        Some(l) if l.is_master() && !l.slots.is_empty() => {
            let replicas = view.replicas_of(x);
            let takeover = match replicas.as_slice() {
                [] => "it has no replica to take over".to_string(),
                [r] => format!(
                    "its replica {r} takes over once the masters agree it has failed \
                     (cluster-node-timeout)"
                ),
                rs => format!(
                    "one of its replicas {} takes over once the masters agree it has failed \
                     (cluster-node-timeout)",
                    list(rs)
                ),
            };
            (
                format!(
                    "master {x} is down ({reason}): its slots {} are unserved; {takeover}",
                    ranges_to_string(&l.slots)
                ),
                format!("{why}; once back, it rejoins (as a replica if another took over)"),
            )
        }
        Some(l) if l.is_replica() => {
            let master = l
                .master_id
                .as_ref()
                .and_then(|id| view.pod_of.get(id))
                .map_or("its master", String::as_str);
            let left = if has_problem(d, Kind::NoReplica, master) {
                format!(": {master} has no replica left")
            } else {
                String::new()
            };
            (
                format!("replica {x} of {master} is down ({reason}){left}"),
                format!("{why}; once back, it resyncs from {master}"),
            )
        }
        _ => (
            format!("{x} is down ({reason})"),
            format!("{why}; once back, it rejoins the cluster"),
        ),
    };
    let draft = Draft {
        kind: CauseKind::PodDown,
        summary,
        remedy,
        pods: vec![x.to_string()],
    };
    d.add(draft, claims);
}

/// Peers that have a pod at an address that is not its pod IP: the pods came back with new
/// IPs. When all did, no node can reach another to tell it, so only a MEET repairs it. The
/// symptoms of those pods (links, replication, `cluster_state`) are part of it.
fn stale_addresses(d: &mut Diagnosis, pods: usize) {
    let stale: Vec<&Finding> = d
        .unclaimed()
        .filter(|f| f.kind == Kind::StaleAddress)
        .collect();
    if stale.is_empty() {
        return;
    }
    let moved: BTreeSet<&str> = stale.iter().filter_map(|f| f.peer.as_deref()).collect();
    let moved: Vec<&str> = moved.into_iter().collect();
    let addresses = if stale.len() == 1 {
        "1 peer address is stale".to_string()
    } else {
        format!("{} peer addresses are stale", stale.len())
    };
    let summary = if moved.len() == pods && pods > 1 {
        format!("all {pods} pods came back with new IPs: {addresses}")
    } else {
        let ips = if moved.len() == 1 {
            "a new IP"
        } else {
            "new IPs"
        };
        format!("{} came back with {ips}: {addresses}", list(&moved))
    };
    let apply = "`kubectl redis apply -f SPEC` re-introduces the nodes at their current IPs \
                 (CLUSTER MEET), data kept";
    let remedy = if stale.len() == pods * pods.saturating_sub(1) {
        format!("no node can reach another to tell it, so gossip cannot repair this: {apply}")
    } else {
        format!(
            "nodes that know the new addresses usually spread them within seconds; if this \
             persists, {apply}"
        )
    };
    let draft = Draft {
        kind: CauseKind::StaleAddresses,
        summary,
        remedy,
        pods: moved.iter().map(|p| p.to_string()).collect(),
    };
    // A pod with a new IP has just restarted: its links and replication are being set up
    // again, whatever its peers' addresses for it.
    let restarted = |p: &Option<String>| p.as_deref().is_some_and(|p| moved.contains(&p));
    d.add(draft, |f| {
        f.kind == Kind::StaleAddress
            || (symptom(f.kind) && (restarted(&f.pod) || restarted(&f.peer)))
    });
}

/// A cluster never formed (every pod alone, no slot assigned), or pods that are not part of
/// it yet (masters without slots or replicas, e.g. after the StatefulSet grew).
fn not_formed(d: &mut Diagnosis, obs: &Observation) {
    let live = answering(obs);
    if !live.is_empty()
        && obs.pods.iter().filter(|p| p.ok()).all(PodState::lone)
        && obs.claimed_slots().is_empty()
    {
        let draft = Draft {
            kind: CauseKind::NotFormed,
            summary: format!(
                "the cluster is not formed: none of the {} pods knows another or serves a slot",
                live.len()
            ),
            remedy: "`kubectl redis apply -f SPEC` forms it (slots, config epochs, MEET, \
                     REPLICATE)"
                .into(),
            pods: live.iter().map(|p| p.to_string()).collect(),
        };
        d.add(draft, |f| f.kind == Kind::NotInCluster || symptom(f.kind));
        return;
    }
    let joining: Vec<String> = d
        .unclaimed()
        .filter(|f| f.kind == Kind::NotInCluster)
        .filter_map(|f| f.pod.clone())
        .collect();
    if joining.is_empty() {
        return;
    }
    let summary = match joining.as_slice() {
        [one] => {
            format!("{one} is not part of the cluster yet: a master without slots or replicas")
        }
        many => format!(
            "{} pods are not part of the cluster yet: {}",
            many.len(),
            list(many)
        ),
    };
    let among = |p: &Option<String>| p.as_ref().is_some_and(|p| joining.contains(p));
    let claims = |f: &Finding| match f.kind {
        Kind::NotInCluster | Kind::StateNotOk | Kind::SlotMapDisagrees => among(&f.pod),
        Kind::MissingNode => among(&f.pod) || among(&f.peer),
        _ => false,
    };
    let draft = Draft {
        kind: CauseKind::NotInCluster,
        summary,
        remedy: "`kubectl redis apply -f SPEC` adds them as the spec's shape asks: masters get \
                 a share of the slots (keys moved along), the others become replicas"
            .into(),
        pods: joining.clone(),
    };
    d.add(draft, claims);
}

/// Slots a move left half-done, one cause per slot, with both ends named.
fn open_slots(d: &mut Diagnosis, obs: &Observation) {
    // Slot → (from, to); keyed by (length, text) so that numbers sort as numbers.
    let mut slots: BTreeMap<(usize, String), (Option<String>, Option<String>)> = BTreeMap::new();
    for f in d.unclaimed().filter(|f| f.kind == Kind::OpenSlot) {
        let slot = f.slots.clone().unwrap_or_default();
        let migrating = f
            .pod
            .as_deref()
            .and_then(|p| obs.get(p)?.myself())
            .is_some_and(|me| me.migrating.iter().any(|(s, _)| s.to_string() == slot));
        let (from, to) = slots.entry((slot.len(), slot)).or_default();
        let other = || f.peer.clone().unwrap_or_else(|| "another node".into());
        if migrating {
            *from = f.pod.clone();
            to.get_or_insert_with(other);
        } else {
            *to = f.pod.clone();
            from.get_or_insert_with(other);
        }
    }
    for ((_, slot), (from, to)) in slots {
        let (from, to) = (from.unwrap_or_default(), to.unwrap_or_default());
        let draft = Draft {
            kind: CauseKind::OpenSlot,
            summary: format!("slot {slot} is migrating from {from} to {to}"),
            remedy: "`kubectl redis apply -f SPEC` finishes the move, keys included".into(),
            pods: vec![from, to],
        };
        d.add(draft, |f| {
            f.kind == Kind::OpenSlot && f.slots.as_deref() == Some(slot.as_str())
        });
    }
}

/// A replica on its master's Kubernetes node: losing the node loses the master's slots unless
/// another replica runs elsewhere. The remedy names a replica to swap masters with, when one
/// fits; a cluster on a single Kubernetes node is one cause.
fn same_node(d: &mut Diagnosis, view: &Views) {
    let pairs: Vec<(String, String)> = d
        .unclaimed()
        .filter(|f| f.kind == Kind::ReplicaSameNode)
        .filter_map(|f| Some((f.pod.clone()?, f.peer.clone()?)))
        .collect();
    if pairs.is_empty() {
        return;
    }
    let node = |pod: &str| view.obs.get(pod).and_then(|p| p.pod.node.clone());
    let nodes: BTreeSet<String> = view
        .obs
        .pods
        .iter()
        .filter_map(|p| p.pod.node.clone())
        .collect();
    let keeps = "`kubectl redis apply` keeps the pairings a cluster has";
    if let [only] = Vec::from_iter(&nodes).as_slice() {
        let draft = Draft {
            kind: CauseKind::ReplicaSameNode,
            summary: format!(
                "every pod runs on Kubernetes node {only}: each replica shares it with its \
                 master, and losing it loses the cluster"
            ),
            remedy: format!(
                "run the pods on more Kubernetes nodes, then pair replicas with masters on \
                 other nodes with `CLUSTER REPLICATE` ({keeps})"
            ),
            pods: pairs.iter().map(|(replica, _)| replica.clone()).collect(),
        };
        d.add(draft, |f| f.kind == Kind::ReplicaSameNode);
        return;
    }
    for (replica, master) in pairs {
        let here = node(&replica);
        let on = here.clone().unwrap_or_default();
        let elsewhere = view
            .replicas_of(&master)
            .iter()
            .any(|r| node(r).is_some() && node(r) != here);
        // Another replica R2 of a master M2 such that both end up away from their master.
        let swap = view.obs.pods.iter().filter(|p| p.ok()).find_map(|p| {
            let other_master = view.pod_of.get(p.myself()?.master_id.as_ref()?)?;
            let fits = *other_master != master
                && node(other_master) != here
                && p.pod.node.is_some()
                && p.pod.node != node(&master);
            fits.then(|| (p.pod.name.clone(), other_master.clone()))
        });
        let repair = match &swap {
            Some((other, other_master)) => format!(
                "swap masters with {other}: make {replica} replicate {other_master} and {other} \
                 replicate {master} (`CLUSTER REPLICATE <master's node id>` on each; {keeps})"
            ),
            None => format!(
                "no other replica can swap masters with it: run pods on more Kubernetes nodes, \
                 then pair it with `CLUSTER REPLICATE` ({keeps})"
            ),
        };
        let (summary, remedy) = if elsewhere {
            (
                format!(
                    "replica {replica} shares Kubernetes node {on} with its master {master}, \
                     which has another replica elsewhere"
                ),
                format!("nothing is at risk yet; to spread them, {repair}"),
            )
        } else {
            let slots = view
                .obs
                .get(&master)
                .and_then(PodState::myself)
                .map(|m| ranges_to_string(&m.slots))
                .unwrap_or_default();
            (
                format!(
                    "replica {replica} shares Kubernetes node {on} with its master {master}: \
                     losing {on} loses slots {slots}"
                ),
                repair,
            )
        };
        let draft = Draft {
            kind: CauseKind::ReplicaSameNode,
            summary,
            remedy,
            pods: vec![replica.clone(), master],
        };
        d.add(draft, |f| {
            f.kind == Kind::ReplicaSameNode && f.pod.as_deref() == Some(replica.as_str())
        });
    }
}

/// A pod that answers but that most of its peers see disconnected or failing: its cluster bus
/// port is blocked.
fn partitioned(d: &mut Diagnosis, obs: &Observation) {
    let live = answering(obs);
    let others = live.len().saturating_sub(1);
    for x in live {
        let reporters: BTreeSet<&str> = d
            .unclaimed()
            .filter(|f| matches!(f.kind, Kind::LinkDown | Kind::NodeFailing))
            .filter(|f| f.peer.as_deref() == Some(x))
            .filter_map(|f| f.pod.as_deref())
            .collect();
        if others < 2 || reporters.len() * 2 <= others {
            continue;
        }
        let draft = Draft {
            kind: CauseKind::Partitioned,
            summary: format!(
                "{x} answers, but {} of its {others} peers cannot reach it over the cluster bus",
                reporters.len()
            ),
            remedy: "the cluster bus port (16379, `gossip`) must be open between all pods: \
                     check NetworkPolicies and firewalls"
                .into(),
            pods: vec![x.to_string()],
        };
        d.add(draft, |f| {
            symptom(f.kind) && (f.pod.as_deref() == Some(x) || f.peer.as_deref() == Some(x))
        });
    }
}

/// Whatever no detector explained, grouped by kind (uncovered slots one by one: each finding
/// already sums up a range).
fn leftovers(d: &mut Diagnosis) {
    let mut by_kind: BTreeMap<Kind, Vec<&Finding>> = BTreeMap::new();
    for f in d.unclaimed() {
        by_kind.entry(f.kind).or_default().push(f);
    }
    for (kind, findings) in by_kind {
        let groups: Vec<Vec<&Finding>> = if kind == Kind::UncoveredSlots {
            findings.iter().map(|f| vec![*f]).collect()
        } else {
            vec![findings]
        };
        for group in groups {
            if let Some(draft) = leftover(kind, &group) {
                d.add(draft, |f| group.iter().any(|g| std::ptr::eq(*g, f)));
            }
        }
    }
}

/// The cause of findings of one kind that no detector explained; `None` for the kinds their
/// detectors always claim.
fn leftover(kind: Kind, findings: &[&Finding]) -> Option<Draft> {
    let distinct = |names: Vec<&str>| -> Vec<String> {
        let set: BTreeSet<&str> = names.into_iter().collect();
        set.into_iter().map(str::to_string).collect()
    };
    let pods = distinct(
        findings
            .iter()
            .flat_map(|f| [f.pod.as_deref(), f.peer.as_deref()])
            .flatten()
            .collect(),
    );
    let reporters = distinct(findings.iter().filter_map(|f| f.pod.as_deref()).collect());
    // `a disagrees`, `a and b disagree`.
    let they = |singular: &str, plural: &str| {
        let verb = if reporters.len() == 1 {
            singular
        } else {
            plural
        };
        format!("{} {verb}", list(&reporters))
    };
    let pairs = || {
        let pairs: Vec<String> = findings
            .iter()
            .map(|f| {
                let end = |p: &Option<String>| p.clone().unwrap_or_else(|| "?".into());
                format!("{} → {}", end(&f.pod), end(&f.peer))
            })
            .collect();
        list(&pairs)
    };
    let bus = "the cluster bus port (16379, `gossip`) must be open between all pods: check \
               NetworkPolicies and firewalls";
    let (kind, summary, remedy) = match kind {
        Kind::UncoveredSlots => (
            CauseKind::UncoveredSlots,
            findings[0].message.clone(),
            if findings[0].peer.is_none() {
                "`kubectl redis apply -f SPEC` assigns them"
            } else {
                "a replica takes over once the masters agree it has failed \
                 (cluster-node-timeout); without one, the master must come back"
            },
        ),
        Kind::SlotMapDisagrees => (
            CauseKind::SlotMapDisagrees,
            format!(
                "{} with the majority's slot map",
                they("disagrees", "disagree")
            ),
            "this usually settles within seconds, as gossip spreads the newest config epoch; \
             if it persists, compare `CLUSTER NODES` on these pods",
        ),
        Kind::StateNotOk => (
            CauseKind::StateNotOk,
            format!(
                "{} a cluster_state other than ok",
                they("reports", "report")
            ),
            "`CLUSTER INFO` on them says how many slots and nodes they see",
        ),
        Kind::LinkDown => (
            CauseKind::LinkDown,
            format!(
                "{} down: {}",
                count(findings.len(), "cluster bus link"),
                pairs()
            ),
            bus,
        ),
        Kind::NodeFailing => (
            CauseKind::NodeFailing,
            format!(
                "{} failing (who sees whom): {}",
                count(findings.len(), "node is seen"),
                pairs()
            ),
            bus,
        ),
        Kind::UnknownNode => (
            CauseKind::UnknownNode,
            format!(
                "{} nodes that are none of this StatefulSet's pods",
                they("knows", "know")
            ),
            "their nodes.conf holds another cluster's nodes, or a pod lost its volume and came \
             back as a new node; `kubectl redis apply` refuses to change such a cluster: \
             inspect /data/nodes.conf, and `CLUSTER FORGET` what does not belong",
        ),
        Kind::MissingNode => (
            CauseKind::MissingNode,
            format!(
                "{} missing (who does not know whom): {}",
                count(findings.len(), "introduction"),
                pairs()
            ),
            "`kubectl redis apply -f SPEC` introduces them (CLUSTER MEET)",
        ),
        Kind::NoReplica => (
            CauseKind::NoReplica,
            if reporters.len() == 1 {
                format!("master {} has no connected replica", reporters[0])
            } else {
                format!("masters {} have no connected replica", list(&reporters))
            },
            "`kubectl redis apply -f SPEC` makes free pods replicas; with none free, raise \
             replicasPerMaster (a master that comes back after a failover rejoins as a replica \
             by itself)",
        ),
        Kind::ReplicaLinkDown => (
            CauseKind::ReplicaLinkDown,
            format!("replication is down on {}", list(&reporters)),
            "a full sync may still be running (large data sets take a while); `INFO \
             replication` on the replica says more",
        ),
        Kind::Shape => (
            CauseKind::Shape,
            findings
                .iter()
                .map(|f| f.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            "`kubectl redis apply -f SPEC` adds masters, or drains the extra ones, moving slots \
             with their keys",
        ),
        // Their detectors above claim every one of these.
        Kind::Unreachable
        | Kind::StaleAddress
        | Kind::NotInCluster
        | Kind::OpenSlot
        | Kind::ReplicaSameNode => return None,
        // Added after diagnosis, with its own cause (cluster::roll::note_roll).
        Kind::OldRevision => return None,
    };
    Some(Draft {
        kind,
        summary,
        remedy: remedy.to_string(),
        pods,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{
        cluster, fresh, half_migrated, lines, lone, master_down, nodes_text, observation,
        replica_beside_master, replica_missing, restarted, seed, seed_lines, topology, Pod,
    };
    use super::super::observe::PodError;
    use super::super::verify::verify;
    use super::*;

    /// `(kind, severity, summary, problems explained, warnings explained)`.
    type Want<'a> = (CauseKind, Severity, &'a str, usize, usize);

    /// `(name, pods, (masters, replicas per master), the causes wanted)`.
    type Case = (&'static str, Vec<Pod>, (usize, usize), Vec<Want<'static>>);

    #[test]
    fn causes_name_the_fault_once() {
        use CauseKind::*;
        use Severity::*;
        let cases: Vec<Case> = vec![
            ("healthy", seed(), (3, 1), vec![]),
            (
                "every pod restarted with a new IP",
                restarted(),
                (3, 1),
                vec![(
                    StaleAddresses,
                    Problem,
                    "all 6 pods came back with new IPs: 30 peer addresses are stale",
                    66,
                    0,
                )],
            ),
            (
                "every pod restarted, one address learnt already, its link not up yet",
                {
                    let mut pods = restarted();
                    pods[1].nodes = pods[1].nodes.replace("10.0.0.14", "10.0.1.14");
                    pods
                },
                (3, 1),
                vec![(
                    StaleAddresses,
                    Problem,
                    "all 6 pods came back with new IPs: 29 peer addresses are stale",
                    65,
                    0,
                )],
            ),
            (
                "a master down, its replica not promoted yet",
                master_down(false),
                (3, 1),
                vec![(
                    PodDown,
                    Problem,
                    "master redis-cluster-0 is down (unreachable via direct: connection \
                     refused): its slots 0-5460 are unserved; its replica redis-cluster-3 takes \
                     over once the masters agree it has failed (cluster-node-timeout)",
                    18,
                    0,
                )],
            ),
            (
                "a master down, its replica promoted",
                master_down(true),
                (3, 1),
                vec![
                    (
                        PodDown,
                        Problem,
                        "redis-cluster-0 is down (unreachable via direct: connection refused)",
                        11,
                        0,
                    ),
                    (
                        NoReplica,
                        Problem,
                        "master redis-cluster-3 has no connected replica",
                        1,
                        0,
                    ),
                ],
            ),
            (
                "a replica recreated, no IP yet",
                replica_missing(),
                (3, 1),
                vec![(
                    PodDown,
                    Problem,
                    "replica redis-cluster-4 of redis-cluster-1 is down (no pod IP yet): \
                     redis-cluster-1 has no replica left",
                    12,
                    0,
                )],
            ),
            (
                "a half-migrated slot",
                half_migrated(),
                (3, 1),
                vec![(
                    OpenSlot,
                    Problem,
                    "slot 5460 is migrating from redis-cluster-0 to redis-cluster-1",
                    2,
                    0,
                )],
            ),
            (
                "the only replica beside its master",
                replica_beside_master(),
                (3, 1),
                vec![(
                    ReplicaSameNode,
                    Problem,
                    "replica redis-cluster-3 shares Kubernetes node node-a with its master \
                     redis-cluster-0: losing node-a loses slots 0-5460",
                    1,
                    1,
                )],
            ),
            (
                "a replica beside its master, another elsewhere",
                {
                    let pairs = [(3, 0), (4, 1), (5, 2), (6, 0), (7, 1), (8, 2)];
                    let mut pods = cluster(&lines(&[0, 1, 2], &pairs));
                    pods[3].info.node = Some("node-a".into());
                    pods
                },
                (3, 2),
                vec![(
                    ReplicaSameNode,
                    Warning,
                    "replica redis-cluster-3 shares Kubernetes node node-a with its master \
                     redis-cluster-0, which has another replica elsewhere",
                    0,
                    1,
                )],
            ),
            (
                "every pod on one Kubernetes node",
                {
                    let mut pods = seed();
                    for p in &mut pods {
                        p.info.node = Some("only".into());
                    }
                    pods
                },
                (3, 1),
                vec![(
                    ReplicaSameNode,
                    Warning,
                    "every pod runs on Kubernetes node only: each replica shares it with its \
                     master, and losing it loses the cluster",
                    0,
                    3,
                )],
            ),
            (
                "a fresh, unformed cluster",
                fresh(),
                (3, 1),
                vec![(
                    NotFormed,
                    Problem,
                    "the cluster is not formed: none of the 6 pods knows another or serves a slot",
                    43,
                    0,
                )],
            ),
            (
                "a new pod after the StatefulSet grew",
                {
                    let mut pods = seed();
                    pods.push(lone(6));
                    pods
                },
                (3, 1),
                vec![(
                    NotInCluster,
                    Problem,
                    "redis-cluster-6 is not part of the cluster yet: a master without slots or \
                     replicas",
                    15,
                    0,
                )],
            ),
            (
                "a pod with cluster mode off",
                {
                    let mut pods = seed();
                    pods[5].error = Some(PodError::ClusterModeOff);
                    pods
                },
                (3, 1),
                vec![(
                    ClusterModeOff,
                    Problem,
                    "redis-cluster-5 runs Redis with cluster mode off (cluster-enabled no)",
                    2,
                    0,
                )],
            ),
            (
                "a pod cut off from the cluster bus",
                {
                    let mut view = seed_lines();
                    view[2].flags = "master,fail?";
                    view[2].link = "disconnected";
                    let mut pods = seed();
                    for p in pods.iter_mut().filter(|p| p.info.ordinal != 2) {
                        p.nodes = nodes_text(p.info.ordinal, &view);
                    }
                    let mut alone = seed_lines();
                    for l in alone.iter_mut().filter(|l| l.node != 2) {
                        l.flags = if l.master.is_some() {
                            "slave,fail?"
                        } else {
                            "master,fail?"
                        };
                        l.link = "disconnected";
                    }
                    pods[2].nodes = nodes_text(2, &alone);
                    pods[2].state = "fail";
                    pods[5].master_link_up = Some(false);
                    pods
                },
                (3, 1),
                vec![(
                    Partitioned,
                    Problem,
                    "redis-cluster-2 answers, but 5 of its 5 peers cannot reach it over the \
                     cluster bus",
                    23,
                    0,
                )],
            ),
        ];
        for (name, pods, (masters, replicas), want) in cases {
            let report = verify(&topology(&pods, masters, replicas), &observation(&pods));
            let got: Vec<Want> = report
                .causes
                .iter()
                .map(|c| {
                    (
                        c.kind,
                        c.severity,
                        c.summary.as_str(),
                        c.problems.len(),
                        c.warnings.len(),
                    )
                })
                .collect();
            assert_eq!(got, want, "{name}");
            // Every finding belongs to exactly one cause.
            let mut problems: Vec<usize> = report
                .causes
                .iter()
                .flat_map(|c| c.problems.clone())
                .collect();
            let mut warnings: Vec<usize> = report
                .causes
                .iter()
                .flat_map(|c| c.warnings.clone())
                .collect();
            problems.sort_unstable();
            warnings.sort_unstable();
            assert_eq!(problems, Vec::from_iter(0..report.problems.len()), "{name}");
            assert_eq!(warnings, Vec::from_iter(0..report.warnings.len()), "{name}");
            for c in &report.causes {
                assert!(!c.remedy.is_empty(), "{name}: {c:?}");
            }
        }
    }

    #[test]
    fn gossip_is_trusted_only_while_some_address_is_right() {
        let remedy = |pods: &[Pod]| {
            let report = verify(&topology(pods, 3, 1), &observation(pods));
            report.causes[0].remedy.clone()
        };
        assert!(remedy(&restarted()).contains("gossip cannot repair this"));
        let mut pods = restarted();
        pods[1].nodes = pods[1].nodes.replace("10.0.0.14", "10.0.1.14");
        assert!(remedy(&pods).contains("usually spread them within seconds"));
    }

    #[test]
    fn lists_stay_short() {
        assert_eq!(list::<&str>(&[]), "");
        assert_eq!(list(&["a"]), "a");
        assert_eq!(list(&["a", "b"]), "a and b");
        assert_eq!(list(&["a", "b", "c", "d"]), "a, b, c and d");
        assert_eq!(list(&["a", "b", "c", "d", "e"]), "a, b, c and 2 more");
    }
}
