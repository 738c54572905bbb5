//! What the Redis step of `apply` will do to one cluster, seen read-only at plan time: the same
//! decisions the executors take ([`check_safe`], [`fixed_roles`], the planner, [`missing_meets`],
//! [`balance_moves`]) on one observation, without running anything that changes a node. Keys
//! that slot moves carry are counted with `CLUSTER COUNTKEYSINSLOT` on the slots' owners.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::decide::{check_safe, fixed_roles, missing_meets};
use super::nodes::{even_ranges, ranges_to_string, to_ranges};
use super::observe::{observe, Observation};
use super::plan::plan;
use super::roll::RollAction;
use super::scale::{balance_moves, SlotMove};
use super::topology::{names, PodInfo, Topology};
use super::transport::{cmd, RedisTransport};
use super::verify::verify;

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
pub struct Shape {
    pub pods: usize,
    pub masters: usize,
    pub replicas_per_master: usize,
}

/// The steps for a cluster whose StatefulSet does not exist yet.
pub fn form_after_rollout(namespace: &str, statefulset: &str, shape: Shape) -> RedisPreview {
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
pub async fn preview(
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
    preview.steps = match steps(t, current, &obs, wanted).await {
        Ok(steps) => steps,
        Err(error) => vec![RedisStep::Refused {
            reason: format!("{error:#}"),
        }],
    };
    preview
}

/// The digest of an observation that a saved plan keeps: each pod's id, address, role, master
/// and slots, and the addresses it knows its peers at.
pub fn digest(obs: &Observation) -> String {
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

async fn steps(
    t: &dyn RedisTransport,
    current: &Topology,
    obs: &Observation,
    wanted: Shape,
) -> anyhow::Result<Vec<RedisStep>> {
    if wanted.pods < current.pods.len() {
        return scale_in_steps(t, current, obs, wanted).await;
    }
    let report = verify(current, obs);
    let slotless_master = obs.pods.iter().any(|p| {
        p.myself()
            .is_some_and(|m| m.is_master() && m.slots.is_empty())
    });
    if report.healthy && !slotless_master && wanted.pods == current.pods.len() {
        return Ok(Vec::new());
    }
    check_safe(obs)?;
    let (fixed, owned) = fixed_roles(obs);
    // Pods the StatefulSet will add exist only after the rollout: plan them without an address.
    let mut future = current.clone();
    future.masters = wanted.masters;
    future.replicas_per_master = wanted.replicas_per_master;
    let added: Vec<String> = (current.pods.len()..wanted.pods)
        .map(|ordinal| pod_name(current, ordinal))
        .collect();
    for (i, name) in added.iter().enumerate() {
        future.pods.push(PodInfo {
            name: name.clone(),
            ordinal: (current.pods.len() + i) as u32,
            ip: None,
            node: None,
            pvc: String::new(),
            revision: None,
            ready: false,
        });
    }
    let roles = plan(&future, &fixed, &owned)?;
    let mut steps = Vec::new();

    let claimed = obs.claimed_slots();
    let assign: Vec<MasterSlots> = roles
        .masters
        .iter()
        .filter_map(|m| {
            let free: Vec<u16> = m
                .ranges
                .iter()
                .flat_map(|&(a, b)| a..=b)
                .filter(|s| !claimed.contains(s))
                .collect();
            (!free.is_empty()).then(|| MasterSlots {
                pod: m.pod.clone(),
                slots: free.len(),
                ranges: ranges_to_string(&to_ranges(free)),
            })
        })
        .collect();
    if !assign.is_empty() {
        steps.push(RedisStep::AssignSlots { masters: assign });
    }

    let meets = missing_meets(obs);
    let mut introduced: Vec<String> = meets
        .iter()
        .filter(|(_, to)| !to.is_empty())
        .map(|(pod, _)| pod.clone())
        .collect();
    let mut count: usize = meets.values().map(Vec::len).sum();
    // Each added pod is introduced once it runs (one MEET brings it into the whole cluster).
    count += added.len();
    introduced.extend(added.iter().cloned());
    if count > 0 {
        steps.push(RedisStep::Meet {
            meets: count,
            pods: introduced,
        });
    }

    let follows: Vec<Follow> = roles
        .replicas
        .iter()
        .filter(|r| {
            let master_id = obs.id_of(&r.master);
            let now = obs
                .get(&r.pod)
                .and_then(|p| p.myself())
                .and_then(|m| m.master_id.as_deref());
            master_id.is_none() || now != master_id
        })
        .map(|r| Follow {
            pod: r.pod.clone(),
            master: r.master.clone(),
            node: current.pod(&r.pod).and_then(|p| p.node.clone()),
        })
        .collect();
    if !follows.is_empty() {
        steps.push(RedisStep::Replicate { replicas: follows });
    }

    let open: usize = obs
        .pods
        .iter()
        .filter_map(|p| p.myself())
        .map(|m| m.migrating.len() + m.importing.len())
        .sum();
    if open > 0 {
        steps.push(RedisStep::FinishMigrations { slots: open });
    }

    let masters: Vec<String> = roles.masters.iter().map(|m| m.pod.clone()).collect();
    if masters
        .iter()
        .any(|m| owned.get(m).is_none_or(|r| r.is_empty()))
        && !owned.is_empty()
    {
        let moves = balance_moves(&owned, &masters, &[]);
        if !moves.is_empty() {
            steps.push(move_step(t, current, &moves).await?);
        }
    }
    Ok(steps)
}

/// Before a shrink: failovers where a departing master's replica stays, then the departing
/// masters' slots move to the staying ones, then the departing nodes are forgotten.
async fn scale_in_steps(
    t: &dyn RedisTransport,
    current: &Topology,
    obs: &Observation,
    wanted: Shape,
) -> anyhow::Result<Vec<RedisStep>> {
    let report = verify(current, obs);
    if !report.healthy {
        anyhow::bail!(
            "the cluster must be healthy before scaling in: {}",
            report
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    check_safe(obs)?;
    let staying = |p: &str| {
        current
            .pod(p)
            .is_some_and(|p| (p.ordinal as usize) < wanted.pods)
    };
    let departing: Vec<String> = current
        .pods
        .iter()
        .filter(|p| !staying(&p.name))
        .map(|p| p.name.clone())
        .collect();
    let (_, mut owned) = fixed_roles(obs);
    let pod_of = obs.pod_of_id();
    let master_of = |p: &str| -> Option<String> {
        let id = obs.get(p)?.myself()?.master_id.clone()?;
        pod_of.get(&id).cloned()
    };
    let mut steps = Vec::new();
    let mut staying_masters: Vec<String> = owned
        .iter()
        .filter(|(p, r)| staying(p) && !r.is_empty())
        .map(|(p, _)| p.clone())
        .collect();
    for d in &departing {
        if staying_masters.len() >= wanted.masters || !owned.contains_key(d) {
            continue;
        }
        let replica = current
            .pods
            .iter()
            .map(|p| p.name.clone())
            .find(|p| staying(p) && master_of(p).as_deref() == Some(d.as_str()));
        if let Some(replica) = replica {
            if let Some(ranges) = owned.remove(d) {
                owned.insert(replica.clone(), ranges);
            }
            steps.push(RedisStep::Failover {
                replica: replica.clone(),
                master: d.clone(),
            });
            staying_masters.push(replica);
        }
    }
    let departing_masters: Vec<String> = departing
        .iter()
        .filter(|d| owned.get(*d).is_some_and(|r| !r.is_empty()))
        .cloned()
        .collect();
    let moves = balance_moves(&owned, &staying_masters, &departing_masters);
    if !moves.is_empty() {
        steps.push(move_step(t, current, &moves).await?);
    }
    steps.push(RedisStep::Forget { pods: departing });
    Ok(steps)
}

/// Slot moves as one step, with the keys they carry counted on the slots' owners.
async fn move_step(
    t: &dyn RedisTransport,
    topo: &Topology,
    moves: &[SlotMove],
) -> anyhow::Result<RedisStep> {
    let mut by_owner: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for m in moves {
        by_owner.entry(m.from.as_str()).or_default().push(m.slot);
    }
    let mut keys = 0u64;
    for (owner, slots) in &by_owner {
        let pod = topo
            .pod(owner)
            .ok_or_else(|| anyhow::anyhow!("unknown pod {owner}"))?;
        let cmds: Vec<_> = slots
            .iter()
            .map(|s| cmd(["CLUSTER", "COUNTKEYSINSLOT", &s.to_string()]))
            .collect();
        let replies = t.pipeline(&topo.addr(pod)?, &cmds).await?;
        keys += replies
            .iter()
            .filter_map(|r| r.int())
            .map(|n| n.max(0) as u64)
            .sum::<u64>();
    }
    let mut to: Vec<String> = moves.iter().map(|m| m.to.clone()).collect();
    to.sort();
    to.dedup();
    Ok(RedisStep::MoveSlots {
        slots: moves.len(),
        keys,
        from: by_owner.keys().map(|s| s.to_string()).collect(),
        to,
    })
}

/// `<statefulset>-<ordinal>`, from the name of a pod of the same StatefulSet.
fn pod_name(topo: &Topology, ordinal: usize) -> String {
    let any = &topo.pods[0];
    let prefix = any
        .name
        .strip_suffix(&any.ordinal.to_string())
        .unwrap_or(&any.name);
    format!("{prefix}{ordinal}")
}

impl std::fmt::Display for RedisStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisStep::FormAfterRollout {
                masters,
                replicas_per_master,
                slot_ranges,
            } => write!(
                f,
                "after the rollout: form {masters} masters (slots {}) with {replicas_per_master} \
                 replica(s) each, replicas on other Kubernetes nodes than their masters",
                slot_ranges.join(", ")
            ),
            RedisStep::AssignSlots { masters } => {
                let total: usize = masters.iter().map(|m| m.slots).sum();
                let each: Vec<String> = masters
                    .iter()
                    .take(4)
                    .map(|m| format!("{} {}", m.pod, m.ranges))
                    .collect();
                let more = masters.len().saturating_sub(4);
                write!(
                    f,
                    "assign {total} slots to {} master(s): {}{}",
                    masters.len(),
                    each.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            }
            RedisStep::Meet { meets, pods } => write!(
                f,
                "introduce {} node(s) to their peers ({meets} CLUSTER MEET): {}",
                pods.len(),
                names(pods)
            ),
            RedisStep::Replicate { replicas } => {
                let each: Vec<String> = replicas
                    .iter()
                    .take(4)
                    .map(|r| match &r.node {
                        Some(node) => format!("{} follows {} (on {node})", r.pod, r.master),
                        None => format!("{} follows {}", r.pod, r.master),
                    })
                    .collect();
                let more = replicas.len().saturating_sub(4);
                write!(
                    f,
                    "{} replica(s): {}{}",
                    replicas.len(),
                    each.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            }
            RedisStep::FinishMigrations { slots } => {
                write!(f, "finish {slots} half-migrated slot(s), keys included")
            }
            RedisStep::Failover { replica, master } => write!(
                f,
                "{replica} takes over from departing master {master} (CLUSTER FAILOVER, no keys move)"
            ),
            RedisStep::MoveSlots {
                slots,
                keys,
                from,
                to,
            } => write!(
                f,
                "move {slots} slots ({keys} keys) from {} to {}",
                names(from),
                names(to)
            ),
            RedisStep::Forget { pods } => write!(
                f,
                "the staying nodes forget {} before the StatefulSet shrinks",
                names(pods)
            ),
            RedisStep::Roll {
                pods,
                failovers,
                actions,
            } => {
                write!(
                    f,
                    "roll {pods} pod(s) onto the new revision, one at a time, with {failovers} \
                     CLUSTER FAILOVER(s) before their masters go:"
                )?;
                for (i, action) in actions.iter().enumerate() {
                    write!(f, "\n      {}. {action}", i + 1)?;
                }
                Ok(())
            }
            RedisStep::Unobserved { reason } => write!(
                f,
                "decided after the rollout: not every pod answers now ({})",
                shorten(reason, 120)
            ),
            RedisStep::Refused { reason } => {
                write!(f, "would REFUSE: {}", shorten(reason, 160))
            }
        }
    }
}

/// The first `max` characters of `text`, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The Redis part of the plan's summary line, e.g. `Redis: drain 2 nodes, move 4096 slots
/// (1250 keys).`; None when no cluster has work.
pub fn summary(previews: &[RedisPreview]) -> Option<String> {
    let mut parts = Vec::new();
    let (mut formed, mut assigned, mut introduced, mut followed) = (0, 0, 0, 0);
    let (mut moved, mut keys, mut drained, mut failovers) = (0, 0u64, 0, 0);
    let (mut unobserved, mut refused, mut rolled, mut roll_failovers) = (0, 0, 0, 0);
    for step in previews.iter().flat_map(|p| &p.steps) {
        match step {
            RedisStep::FormAfterRollout { .. } => formed += 1,
            RedisStep::AssignSlots { masters } => {
                assigned += masters.iter().map(|m| m.slots).sum::<usize>()
            }
            RedisStep::Meet { pods, .. } => introduced += pods.len(),
            RedisStep::Replicate { replicas } => followed += replicas.len(),
            RedisStep::FinishMigrations { slots } => moved += slots,
            RedisStep::Failover { .. } => failovers += 1,
            RedisStep::MoveSlots { slots, keys: k, .. } => {
                moved += slots;
                keys += k;
            }
            RedisStep::Forget { pods } => drained += pods.len(),
            RedisStep::Roll {
                pods, failovers, ..
            } => {
                rolled += pods;
                roll_failovers += failovers;
            }
            RedisStep::Unobserved { .. } => unobserved += 1,
            RedisStep::Refused { .. } => refused += 1,
        }
    }
    let mut say = |n: usize, text: String| {
        if n > 0 {
            parts.push(text);
        }
    };
    say(
        formed,
        format!("form {formed} cluster(s) after the rollout"),
    );
    say(refused, format!("{refused} cluster(s) would refuse"));
    say(
        unobserved,
        format!("{unobserved} cluster(s) decided after the rollout"),
    );
    say(drained, format!("drain {drained} node(s)"));
    say(
        rolled,
        format!("roll {rolled} pod(s) ({roll_failovers} failover(s))"),
    );
    say(failovers, format!("{failovers} failover(s)"));
    say(assigned, format!("assign {assigned} slots"));
    say(introduced, format!("introduce {introduced} node(s)"));
    say(followed, format!("point {followed} replica(s)"));
    say(moved, format!("move {moved} slots ({keys} keys)"));
    (!parts.is_empty()).then(|| format!("Redis: {}.", parts.join(", ")))
}

#[cfg(test)]
mod tests {
    use futures::future::BoxFuture;

    use super::super::fixture::{fresh, observation, restarted, seed, topology};
    use super::super::resp::Reply;
    use super::super::transport::{Cmd, PodAddr};
    use super::*;

    /// Answers every `CLUSTER COUNTKEYSINSLOT` with 2 keys; the preview asks nothing else.
    struct TwoKeysPerSlot;

    impl RedisTransport for TwoKeysPerSlot {
        fn pipeline<'a>(
            &'a self,
            _: &'a PodAddr,
            cmds: &'a [Cmd],
        ) -> BoxFuture<'a, anyhow::Result<Vec<Reply>>> {
            Box::pin(async move {
                assert!(cmds
                    .iter()
                    .all(|c| c[0] == b"CLUSTER" && c[1] == b"COUNTKEYSINSLOT"));
                Ok(cmds.iter().map(|_| Reply::Int(2)).collect())
            })
        }
        fn kind(&self) -> &'static str {
            "test"
        }
    }

    fn shape(pods: usize, masters: usize) -> Shape {
        Shape {
            pods,
            masters,
            replicas_per_master: 1,
        }
    }

    async fn steps_of(pods: &[super::super::fixture::Pod], wanted: Shape) -> Vec<RedisStep> {
        let topo = topology(pods, 3, 1);
        steps(&TwoKeysPerSlot, &topo, &observation(pods), wanted)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_healthy_cluster_that_keeps_its_shape_has_no_steps() {
        assert_eq!(steps_of(&seed(), shape(6, 3)).await, Vec::new());
        assert_eq!(summary(&[]), None);
    }

    #[tokio::test]
    async fn a_fresh_cluster_is_formed() {
        let steps = steps_of(&fresh(), shape(6, 3)).await;
        let RedisStep::AssignSlots { masters } = &steps[0] else {
            panic!("{steps:?}")
        };
        assert_eq!(masters.iter().map(|m| m.slots).sum::<usize>(), 16384);
        assert_eq!(masters.len(), 3);
        assert!(
            matches!(&steps[1], RedisStep::Meet { meets: 15, .. }),
            "{steps:?}"
        );
        let RedisStep::Replicate { replicas } = &steps[2] else {
            panic!("{steps:?}")
        };
        assert_eq!(replicas.len(), 3);
        assert_eq!(steps.len(), 3, "{steps:?}");
    }

    #[tokio::test]
    async fn after_every_pod_restarted_only_the_introductions_are_planned() {
        let steps = steps_of(&restarted(), shape(6, 3)).await;
        assert_eq!(steps.len(), 1, "{steps:?}");
        let RedisStep::Meet { meets, pods } = &steps[0] else {
            panic!("{steps:?}")
        };
        assert_eq!((*meets, pods.len()), (30, 6));
        let preview = RedisPreview {
            namespace: "default".into(),
            statefulset: "redis-cluster".into(),
            observed: None,
            steps,
        };
        assert_eq!(
            summary(&[preview]).as_deref(),
            Some("Redis: introduce 6 node(s).")
        );
    }

    #[tokio::test]
    async fn a_fourth_master_gets_a_quarter_of_the_slots_with_their_keys() {
        let steps = steps_of(&seed(), shape(8, 4)).await;
        let moves: Vec<&RedisStep> = steps
            .iter()
            .filter(|s| matches!(s, RedisStep::MoveSlots { .. }))
            .collect();
        let [RedisStep::MoveSlots {
            slots,
            keys,
            from,
            to,
        }] = moves.as_slice()
        else {
            panic!("{steps:?}")
        };
        assert_eq!((*slots, *keys), (4096, 8192));
        assert_eq!(from.len(), 3);
        assert_eq!(to.len(), 1);
        assert!(
            to[0] == "redis-cluster-6" || to[0] == "redis-cluster-7",
            "{to:?}"
        );
        assert!(
            steps
                .iter()
                .any(|s| matches!(s, RedisStep::Meet { pods, .. } if pods.contains(&"redis-cluster-7".to_string()))),
            "{steps:?}"
        );
    }

    #[tokio::test]
    async fn shrinking_moves_the_departing_masters_slots_and_forgets_them() {
        // Grow the fixture's cluster to four masters first, as a scale-out would leave it.
        let pods = seed();
        let steps = steps_of(&pods, shape(4, 3)).await;
        // From 6 pods to 4: pods 4 and 5 depart. Both are replicas in the seed layout, so no
        // slot moves; they are forgotten.
        assert_eq!(
            steps.last(),
            Some(&RedisStep::Forget {
                pods: vec!["redis-cluster-4".into(), "redis-cluster-5".into()]
            }),
            "{steps:?}"
        );
        assert!(steps
            .iter()
            .all(|s| !matches!(s, RedisStep::MoveSlots { .. })));
    }

    #[test]
    fn the_digest_changes_with_an_address() {
        let before = digest(&observation(&seed()));
        assert_eq!(before, digest(&observation(&seed())));
        assert_ne!(before, digest(&observation(&restarted())));
    }

    #[test]
    fn people_read_short_lists() {
        let pods: Vec<String> = (0..7).map(|n| format!("redis-cluster-{n}")).collect();
        assert_eq!(
            names(&pods),
            "redis-cluster-0, redis-cluster-1, redis-cluster-2 and 4 more"
        );
        let step = RedisStep::MoveSlots {
            slots: 4096,
            keys: 1250,
            from: pods[4..].to_vec(),
            to: pods[..3].to_vec(),
        };
        assert_eq!(
            step.to_string(),
            "move 4096 slots (1250 keys) from redis-cluster-4, redis-cluster-5, redis-cluster-6 to \
             redis-cluster-0, redis-cluster-1, redis-cluster-2"
        );
    }
}
