//! The executor: form, resume or heal a cluster so it matches the plan, then wait (with a
//! deadline) until every node agrees. It is a reconcile loop over observed state, so the same
//! call forms a fresh cluster, resumes a half-formed one, heals stale addresses after restarts,
//! and leaves a healthy cluster alone.
//!
//! It never runs `CLUSTER RESET` or `FLUSHALL`: anything that would need them is a refusal.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::fanout;
use anyhow::{bail, Result};
use serde::Serialize;

use super::observe::{observe, Observation, PodState};
use super::plan::{plan, Fixed, Plan};
use super::resp::Reply;
use super::scale;
use super::topology::Topology;
use super::transport::{cmd, show_cmd, Cmd, RedisTransport};
use super::verify::{verify, Report};

#[derive(Debug, Clone)]
pub struct FormOptions {
    /// Overall deadline for reaching every pod and for convergence.
    pub timeout: Duration,
    /// How often to re-check while waiting.
    pub poll: Duration,
}

impl Default for FormOptions {
    fn default() -> Self {
        FormOptions {
            timeout: Duration::from_secs(120),
            poll: Duration::from_millis(50),
        }
    }
}

impl FormOptions {
    /// `timeout` from now; the timeout comes from the command line, so the sum is checked.
    pub fn deadline(&self) -> Result<Instant> {
        Instant::now()
            .checked_add(self.timeout)
            .ok_or_else(|| anyhow::anyhow!("a timeout of {:?} cannot be counted to", self.timeout))
    }
}

/// What `ensure_cluster` did.
#[derive(Debug, Clone, Serialize)]
pub struct FormOutcome {
    /// The cluster was healthy already: verified and left alone.
    pub already_healthy: bool,
    /// Commands that changed something, one line each ("redis-cluster-3: CLUSTER REPLICATE …").
    pub actions: Vec<String>,
    pub plan: Option<Plan>,
    /// The final verification (healthy).
    pub report: Report,
    pub elapsed_ms: u128,
}

/// Errors the caller may want to render specially (`-o json`, exit 1).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The pods' state makes forming unsafe; nothing was changed.
    #[error("refusing to form the Redis Cluster: {0}")]
    Refused(String),
    /// The deadline passed; the report says which node disagrees and why.
    #[error("{message}")]
    NotConverged {
        message: String,
        report: Box<Report>,
    },
}

pub(crate) fn not_converged(what: &str, waited: Duration, report: Report) -> anyhow::Error {
    let mut message = format!("{what} within {:.0?}; {}:", waited, report.headline);
    for p in &report.problems {
        message.push_str(&format!("\n  - {p}"));
    }
    ClusterError::NotConverged {
        message,
        report: Box::new(report),
    }
    .into()
}

/// Wait until every pod answers (a restarted pod may still be loading its AOF).
pub(crate) async fn observe_all(
    t: &dyn RedisTransport,
    topo: &Topology,
    deadline: Instant,
    poll: Duration,
) -> Result<Observation> {
    loop {
        let obs = observe(t, topo).await;
        let bad: Vec<&PodState> = obs.pods.iter().filter(|p| !p.ok()).collect();
        if bad.is_empty() {
            return Ok(obs);
        }
        // Cluster mode off will not fix itself by waiting.
        if let Some(p) = bad.iter().find(|p| {
            p.error
                .as_deref()
                .is_some_and(|e| e.contains("cluster mode is off"))
        }) {
            bail!(ClusterError::Refused(format!(
                "{}: {}",
                p.pod.name,
                p.error.as_deref().unwrap_or("")
            )));
        }
        if Instant::now() >= deadline {
            let list: Vec<String> = bad
                .iter()
                .map(|p| format!("  - {}: {}", p.pod.name, p.error.as_deref().unwrap_or("")))
                .collect();
            bail!(
                "pods did not answer before the deadline:\n{}",
                list.join("\n")
            );
        }
        tokio::time::sleep(poll.max(Duration::from_millis(200))).await;
    }
}

/// Refuse states that forming would damage or that are not ours to change.
pub fn check_safe(obs: &Observation) -> Result<(), ClusterError> {
    let refuse = |s: String| Err(ClusterError::Refused(s));
    let pod_of = obs.pod_of_id();
    if pod_of.len() != obs.pods.iter().filter(|p| p.id.is_some()).count() {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for p in &obs.pods {
            if let Some(id) = p.id.as_deref() {
                if let Some(other) = seen.insert(id, &p.pod.name) {
                    return refuse(format!(
                        "{} and {} have the same node id {id}: one volume was copied from the other",
                        other, p.pod.name
                    ));
                }
            }
        }
    }
    for p in &obs.pods {
        let name = &p.pod.name;
        for n in p
            .nodes
            .iter()
            .filter(|n| !n.is_myself() && !n.in_handshake())
        {
            if !pod_of.contains_key(&n.id) {
                return refuse(format!(
                    "{name} knows node {} at {}:{} ({}), which is none of this StatefulSet's pods: its nodes.conf \
                     belongs to another cluster, or a pod lost its volume. Nothing was changed; inspect {name}'s \
                     /data/nodes.conf",
                    n.id,
                    n.ip,
                    n.port,
                    n.flags.join(",")
                ));
            }
        }
        let Some(me) = p.myself() else { continue };
        if p.keys > 0 && p.lone() {
            return refuse(format!(
                "{name} holds {} keys but is not part of any cluster: foreign data. Nothing was changed; move the \
                 data away or start {name} with an empty volume",
                p.keys
            ));
        }
        if p.keys > 0 && me.is_master() && me.slots.is_empty() {
            return refuse(format!(
                "{name} holds {} keys but serves no slots: foreign data, nothing was changed",
                p.keys
            ));
        }
    }
    // Pods that know each other form groups; two groups may merge only if they claim disjoint
    // slots and at most one holds data.
    let mut group: BTreeMap<&str, usize> = BTreeMap::new();
    let mut groups: Vec<BTreeSet<&str>> = Vec::new();
    for p in &obs.pods {
        let mut members: BTreeSet<&str> = BTreeSet::from([p.pod.name.as_str()]);
        for n in p.nodes.iter().filter(|n| !n.in_handshake()) {
            if let Some(other) = pod_of.get(&n.id) {
                members.insert(other.as_str());
            }
        }
        let hit: BTreeSet<usize> = members
            .iter()
            .filter_map(|m| group.get(m).copied())
            .collect();
        let mut merged = members;
        for g in hit.iter().rev() {
            merged.extend(groups[*g].iter().copied());
        }
        let idx = groups.len();
        for m in &merged {
            group.insert(m, idx);
        }
        groups.push(merged);
    }
    let finals: BTreeSet<usize> = group.values().copied().collect();
    let finals: Vec<&BTreeSet<&str>> = finals.iter().map(|g| &groups[*g]).collect();
    let mut slot_owner: BTreeMap<u16, usize> = BTreeMap::new();
    let mut with_data: Vec<usize> = Vec::new();
    for (gi, g) in finals.iter().enumerate() {
        let members: Vec<&PodState> = obs
            .pods
            .iter()
            .filter(|p| g.contains(p.pod.name.as_str()))
            .collect();
        if members.iter().any(|p| p.keys > 0) {
            with_data.push(gi);
        }
        let mut claimed: BTreeSet<u16> = BTreeSet::new();
        for p in &members {
            for n in &p.nodes {
                for &(a, b) in &n.slots {
                    claimed.extend(a..=b);
                }
            }
        }
        for s in claimed {
            if let Some(other) = slot_owner.insert(s, gi) {
                if other != gi {
                    let names =
                        |g: &BTreeSet<&str>| g.iter().copied().collect::<Vec<_>>().join(", ");
                    return refuse(format!(
                        "pods [{}] and [{}] are two separate clusters that both claim slot {s}: not merging them",
                        names(finals[other]),
                        names(g)
                    ));
                }
            }
        }
    }
    if with_data.len() > 1 {
        let names: Vec<String> = with_data
            .iter()
            .map(|g| finals[*g].iter().copied().collect::<Vec<_>>().join(", "))
            .collect();
        return refuse(format!(
            "separate clusters hold data: [{}]; not merging them",
            names.join("] and [")
        ));
    }
    Ok(())
}

/// Roles the current state already decides.
pub fn fixed_roles(obs: &Observation) -> (Fixed, BTreeMap<String, Vec<(u16, u16)>>) {
    let pod_of = obs.pod_of_id();
    let mut fixed = Fixed::default();
    let mut owned = BTreeMap::new();
    for p in &obs.pods {
        let Some(me) = p.myself() else { continue };
        if me.is_replica() {
            if let Some(m) = me.master_id.as_ref().and_then(|id| pod_of.get(id)) {
                fixed.replica_of.insert(p.pod.name.clone(), m.clone());
            }
        }
    }
    for p in &obs.pods {
        let Some(me) = p.myself() else { continue };
        let has_replicas = fixed.replica_of.values().any(|m| *m == p.pod.name);
        if me.is_master() && (!me.slots.is_empty() || has_replicas) {
            fixed.masters.push(p.pod.name.clone());
            owned.insert(p.pod.name.clone(), me.slots.clone());
        }
    }
    (fixed, owned)
}

/// Runs commands on pods by name and logs what it changed.
pub(crate) struct Exec<'a> {
    pub(crate) t: &'a dyn RedisTransport,
    pub(crate) topo: &'a Topology,
    pub(crate) actions: std::sync::Mutex<Vec<String>>,
}

impl<'a> Exec<'a> {
    pub(crate) fn new(t: &'a dyn RedisTransport, topo: &'a Topology) -> Self {
        Exec {
            t,
            topo,
            actions: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn log(&self, line: String) {
        self.actions.lock().expect("action log poisoned").push(line);
    }

    pub(crate) fn take_actions(&self) -> Vec<String> {
        std::mem::take(&mut *self.actions.lock().expect("action log poisoned"))
    }

    /// Run `cmds` on `pod` without judging the replies (the caller handles expected errors).
    pub(crate) async fn raw(&self, pod: &str, cmds: &[Cmd]) -> Result<Vec<Reply>> {
        let info = self
            .topo
            .pod(pod)
            .ok_or_else(|| anyhow::anyhow!("unknown pod {pod}"))?;
        let addr = self.topo.addr(info)?;
        self.t.pipeline(&addr, cmds).await
    }

    /// Run `cmds` on `pod`; every error reply fails with the pod and the command named.
    pub(crate) async fn run(&self, pod: &str, cmds: Vec<Cmd>) -> Result<Vec<Reply>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let info = self
            .topo
            .pod(pod)
            .ok_or_else(|| anyhow::anyhow!("unknown pod {pod}"))?;
        let addr = self.topo.addr(info)?;
        let replies = self.t.pipeline(&addr, &cmds).await?;
        for (c, r) in cmds.iter().zip(&replies) {
            if let Reply::Error(e) = r {
                bail!("{pod}: {} failed: {e}", show_cmd(c));
            }
        }
        let mut log = self.actions.lock().expect("action log poisoned");
        for c in &cmds {
            log.push(format!("{pod}: {}", show_cmd(c)));
        }
        Ok(replies)
    }
}

/// MEETs that make every pod know every other at its current address. For a pair that does not
/// know each other, one MEET (from the lower ordinal) introduces both; a stale or missing address
/// is fixed by a MEET from the side that has it wrong: Redis then updates the known node's
/// address during the handshake (this is how the all-pods-restarted case heals).
pub fn missing_meets(obs: &Observation) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let correct = |a: &PodState, b: &PodState| -> bool {
        match (b.id.as_deref(), b.pod.ip.as_deref()) {
            (Some(id), Some(ip)) => a.view_of(id).is_some_and(|n| !n.no_addr() && n.ip == ip),
            _ => true,
        }
    };
    let pending = |a: &PodState, b: &PodState| -> bool {
        b.pod
            .ip
            .as_deref()
            .is_some_and(|ip| a.nodes.iter().any(|n| n.in_handshake() && n.ip == ip))
    };
    for a in obs.pods.iter().filter(|p| p.ok()) {
        for b in obs
            .pods
            .iter()
            .filter(|p| p.ok() && p.pod.name != a.pod.name)
        {
            if correct(a, b) || pending(a, b) {
                continue;
            }
            let b_knows_a = a.id.as_deref().is_some_and(|id| b.view_of(id).is_some());
            let a_knows_b = b.id.as_deref().is_some_and(|id| a.view_of(id).is_some());
            // Neither knows the other: the lower ordinal introduces both.
            if !a_knows_b && !b_knows_a && a.pod.ordinal > b.pod.ordinal {
                continue;
            }
            out.entry(a.pod.name.clone())
                .or_default()
                .push((b.pod.ip.clone().unwrap_or_default(), b.pod.name.clone()));
        }
    }
    out
}

pub(crate) async fn meet(ex: &Exec<'_>, obs: &Observation) -> Result<()> {
    let meets = missing_meets(obs);
    let port = ex.topo.port.to_string();
    let futs = meets.iter().map(|(from, to)| {
        let cmds = to
            .iter()
            .map(|(ip, _)| cmd(["CLUSTER", "MEET", ip.as_str(), port.as_str()]))
            .collect();
        ex.run(from, cmds)
    });
    for r in fanout::all(futs).await {
        r?;
    }
    Ok(())
}

/// Form, resume or heal the cluster described by `topo`, then wait until it verifies healthy.
/// A healthy cluster is verified and left alone (`already_healthy`).
pub async fn ensure_cluster(
    t: &dyn RedisTransport,
    topo: &Topology,
    opts: &FormOptions,
) -> Result<FormOutcome> {
    let start = Instant::now();
    let deadline = opts.deadline()?;
    topo.validate()?;
    let obs = observe_all(t, topo, deadline, opts.poll).await?;
    let report = verify(topo, &obs);
    // A master with replicas but no slots verifies healthy yet still awaits its share (a
    // scale-out that stopped before moving slots): not "left alone".
    let slotless_master = obs.pods.iter().any(|p| {
        p.myself()
            .is_some_and(|m| m.is_master() && m.slots.is_empty())
    });
    if report.healthy && !slotless_master {
        return Ok(FormOutcome {
            already_healthy: true,
            actions: Vec::new(),
            plan: None,
            report,
            elapsed_ms: start.elapsed().as_millis(),
        });
    }
    check_safe(&obs)?;
    let (fixed, owned) = fixed_roles(&obs);
    let plan = plan(topo, &fixed, &owned)?;
    let ex = Exec::new(t, topo);

    // 1. Slots and config epochs, before any MEET: SET-CONFIG-EPOCH only works on a node that
    //    knows no other, and distinct epochs spare the cluster its epoch-collision dance.
    let claimed = obs.claimed_slots();
    let max_epoch = obs
        .pods
        .iter()
        .flat_map(|p| p.nodes.iter().map(|n| n.config_epoch))
        .max()
        .unwrap_or(0);
    let futs = plan.masters.iter().enumerate().map(|(i, m)| {
        let mut cmds: Vec<Cmd> = Vec::new();
        let add: Vec<u16> = m
            .ranges
            .iter()
            .flat_map(|&(a, b)| a..=b)
            .filter(|s| !claimed.contains(s))
            .collect();
        if !add.is_empty() {
            let mut c = cmd(["CLUSTER", "ADDSLOTS"]);
            c.extend(add.iter().map(|s| s.to_string().into_bytes()));
            cmds.push(c);
        }
        let set_epoch = obs
            .get(&m.pod)
            .is_some_and(|p| p.lone() && p.myself().is_some_and(|me| me.config_epoch == 0));
        let epoch = (max_epoch + 1 + i as u64).to_string();
        let ex = &ex;
        async move {
            ex.run(&m.pod, cmds).await?;
            if set_epoch {
                // Another pod's MEET may have reached this one since we looked; then Redis refuses
                // and its epoch-collision handling assigns one instead, which is fine.
                match ex
                    .run(
                        &m.pod,
                        vec![cmd(["CLUSTER", "SET-CONFIG-EPOCH", epoch.as_str()])],
                    )
                    .await
                {
                    Err(e) if format!("{e}").contains("does not know any other node") => {}
                    other => {
                        other?;
                    }
                }
            }
            anyhow::Ok(())
        }
    });
    for r in fanout::all(futs).await {
        r?;
    }

    // 2. Introductions.
    meet(&ex, &obs).await?;

    // 3. Replicas: REPLICATE as soon as each replica has learnt its master's id.
    let ids: BTreeMap<String, String> = obs
        .pods
        .iter()
        .filter_map(|p| Some((p.pod.name.clone(), p.id.clone()?)))
        .collect();
    let futs = plan.replicas.iter().filter_map(|r| {
        let master_id = ids.get(&r.master)?.clone();
        let current = obs.get(&r.pod)?.myself()?.master_id.clone();
        if current.as_deref() == Some(master_id.as_str()) {
            return None;
        }
        let ex = &ex;
        Some(async move {
            loop {
                let addr = topo.addr(topo.pod(&r.pod).expect("planned pod"))?;
                let c = cmd(["CLUSTER", "REPLICATE", master_id.as_str()]);
                let reply = t.pipeline(&addr, std::slice::from_ref(&c)).await?;
                match &reply[0] {
                    Reply::Error(e) if e.contains("Unknown node") || e.contains("only replicate a master") => {
                        if Instant::now() >= deadline {
                            bail!(
                                "{}: never learnt its master {} ({master_id}) before the deadline: {e}",
                                r.pod,
                                r.master
                            );
                        }
                        tokio::time::sleep(opts.poll).await;
                    }
                    Reply::Error(e) => bail!("{}: CLUSTER REPLICATE {} ({master_id}) failed: {e}", r.pod, r.master),
                    _ => {
                        ex.log(format!("{}: CLUSTER REPLICATE {master_id} ({})", r.pod, r.master));
                        return Ok(());
                    }
                }
            }
        })
    });
    for r in fanout::all(futs).await {
        r?;
    }

    // 4. Slots a previous run left half-migrated: finish moving them (keys included).
    let has_open = obs.pods.iter().any(|p| {
        p.myself()
            .is_some_and(|m| !m.migrating.is_empty() || !m.importing.is_empty())
    });
    if has_open {
        scale::finish_open_slots(&ex, &obs).await?;
    }

    // 5. Wait for agreement; re-introduce pairs whose handshake timed out meanwhile.
    let mut report = wait_formed(&ex, topo, deadline, opts).await?;

    // 6. New masters without slots (scale-out): move slots to them, keys included, until the
    //    masters are balanced.
    let obs = observe(t, topo).await;
    let mut changed = false;
    let (_, owned) = fixed_roles(&obs);
    let masters: Vec<String> = plan.masters.iter().map(|m| m.pod.clone()).collect();
    if masters
        .iter()
        .any(|m| owned.get(m).is_none_or(|r| r.is_empty()))
    {
        let moves = scale::balance_moves(&owned, &masters, &[]);
        scale::move_slots(&ex, &obs, &moves).await?;
        changed = true;
    }
    if changed {
        report = wait_formed(&ex, topo, deadline, opts).await?;
    }
    Ok(FormOutcome {
        already_healthy: false,
        actions: ex.take_actions(),
        plan: Some(plan),
        report,
        elapsed_ms: start.elapsed().as_millis(),
    })
}

async fn wait_formed(
    ex: &Exec<'_>,
    topo: &Topology,
    deadline: Instant,
    opts: &FormOptions,
) -> Result<Report> {
    let start = Instant::now();
    let mut last_meet = Instant::now();
    loop {
        let obs = observe(ex.t, topo).await;
        let report = verify(topo, &obs);
        if report.healthy {
            return Ok(report);
        }
        if Instant::now() >= deadline {
            return Err(not_converged(
                "the Redis Cluster did not converge",
                start.elapsed(),
                report,
            ));
        }
        if last_meet.elapsed() >= Duration::from_secs(1) && obs.pods.iter().all(|p| p.ok()) {
            meet(ex, &obs).await?;
            last_meet = Instant::now();
        }
        tokio::time::sleep(opts.poll).await;
    }
}

/// Observe and verify, for `status` and for the check after `apply`.
pub async fn verify_cluster(t: &dyn RedisTransport, topo: &Topology) -> Report {
    verify(topo, &observe(t, topo).await)
}

/// Wait until the cluster verifies healthy without changing anything (after a single pod
/// restart, update-node.sh and gossip should heal it on their own; this checks that they did).
pub async fn wait_healthy(
    t: &dyn RedisTransport,
    topo: &Topology,
    opts: &FormOptions,
) -> Result<Report> {
    let start = Instant::now();
    loop {
        let report = verify_cluster(t, topo).await;
        if report.healthy {
            return Ok(report);
        }
        if start.elapsed() >= opts.timeout {
            return Err(not_converged(
                "the Redis Cluster did not become healthy",
                opts.timeout,
                report,
            ));
        }
        tokio::time::sleep(opts.poll).await;
    }
}
