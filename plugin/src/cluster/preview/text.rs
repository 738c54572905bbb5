//! A preview as people read it: one line per step, and the summary line of a plan.

use crate::cluster::topology::names;

use super::{RedisPreview, RedisStep};

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
            RedisStep::SpreadReplicas { moves } => {
                let each: Vec<String> = moves
                    .iter()
                    .map(|m| format!("{} replicates {} (was {})", m.replica, m.to, m.from))
                    .collect();
                write!(
                    f,
                    "re-pair {} replica(s) so every master has one on another Kubernetes node, \
                     one full sync at a time: {}",
                    moves.len(),
                    each.join(", then ")
                )
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
pub(crate) fn summary(previews: &[RedisPreview]) -> Option<String> {
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
            RedisStep::SpreadReplicas { moves } => followed += moves.len(),
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
