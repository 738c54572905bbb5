//! What `apply` and `destroy` report while they work: typed events, handed to an [`Events`]
//! sink. The library never prints; the binary turns events into lines, a spinner or JSON.

use serde::Serialize;

use crate::plan::Action;

/// One step that happened (or a wait that moved on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// An object was written: created, changed, replaced or deleted.
    Wrote { action: Action, object: String },
    /// A wait's state changed, e.g. `2/6 pods ready`.
    Waiting { object: String, state: String },
    /// A wait finished, with the final state.
    Waited { object: String, state: String },
    /// The Redis step of one cluster finished: `changed` is false when it was healthy already
    /// and only verified; `commands` are those that changed something (one per slot for a slot
    /// move, so people see them only when they ask); `verdict` is the final verification.
    RedisConverged {
        statefulset: String,
        changed: bool,
        commands: Vec<String>,
        verdict: String,
        elapsed_ms: u64,
    },
    /// Before a StatefulSet shrinks: the departing masters' slots (and keys) moved to the pods
    /// that stay, and the departing nodes were forgotten.
    RedisDrained {
        statefulset: String,
        departed: Vec<String>,
        moved_slots: usize,
        commands: Vec<String>,
        elapsed_ms: u64,
    },
}

/// Where events go. `Sync` because steps run concurrently.
pub trait Events: Sync {
    fn emit(&self, event: Event);
}

/// Drops every event: for callers that only want the result.
pub struct Quiet;

impl Events for Quiet {
    fn emit(&self, _: Event) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_a_tag_and_camel_case_fields() {
        let event = Event::RedisDrained {
            statefulset: "redis-cluster".into(),
            departed: vec!["redis-cluster-6".into()],
            moved_slots: 4096,
            commands: vec!["redis-cluster-6: CLUSTER SETSLOT 0 MIGRATING x".into()],
            elapsed_ms: 2100,
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"event": "redisDrained", "statefulset": "redis-cluster",
                "departed": ["redis-cluster-6"], "movedSlots": 4096,
                "commands": ["redis-cluster-6: CLUSTER SETSLOT 0 MIGRATING x"], "elapsedMs": 2100})
        );
        let wrote = Event::Wrote {
            action: Action::Add,
            object: "Service default/redis".into(),
        };
        assert_eq!(
            serde_json::to_value(&wrote).unwrap(),
            serde_json::json!({"event": "wrote", "action": "add", "object": "Service default/redis"})
        );
    }
}
