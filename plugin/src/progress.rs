//! What `apply` and `destroy` report while they work: typed events, handed to an [`Events`]
//! sink. The library never prints; the binary turns events into lines, a spinner or JSON.

use serde::Serialize;

use crate::cluster::roll::Role;
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
    /// A roll replaced one pod: deleted, created again on `revision`, back in the cluster and
    /// caught up with its master.
    RollReplaced {
        statefulset: String,
        pod: String,
        role: Role,
        revision: String,
        elapsed_ms: u64,
    },
    /// A roll's `CLUSTER FAILOVER` finished: `replica` serves `master`'s slots and `master`
    /// replicates it.
    RollFailedOver {
        statefulset: String,
        replica: String,
        master: String,
        elapsed_ms: u64,
    },
    /// A roll finished: every pod on `revision`, the cluster verified (`verdict`).
    RollFinished {
        statefulset: String,
        revision: String,
        replaced: usize,
        failovers: usize,
        verdict: String,
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

    #[test]
    fn every_event_matches_the_schema_of_json_lines() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../schemas/events.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
        let text = |s: &str| s.to_string();
        let events = [
            Event::Wrote {
                action: Action::Replace,
                object: text("StatefulSet default/redis-cluster"),
            },
            Event::Waiting {
                object: text("StatefulSet default/redis-cluster"),
                state: text("6/6 claims bound, 2/6 pods ready, 6/6 on the new revision"),
            },
            Event::Waited {
                object: text("StatefulSet default/redis-cluster"),
                state: text("6 claims bound, 6/6 pods ready on revision redis-cluster-1"),
            },
            Event::RedisConverged {
                statefulset: text("redis-cluster"),
                changed: true,
                commands: vec![text("redis-cluster-0: CLUSTER ADDSLOTS 0 1 …(+5459 args)")],
                verdict: text("Cluster healthy: 3 masters, 3 replicas, 16384/16384 slots covered"),
                elapsed_ms: 1200,
            },
            Event::RedisDrained {
                statefulset: text("redis-cluster"),
                departed: vec![text("redis-cluster-6")],
                moved_slots: 4096,
                commands: Vec::new(),
                elapsed_ms: 2100,
            },
            Event::RollReplaced {
                statefulset: text("redis-cluster"),
                pod: text("redis-cluster-5"),
                role: Role::Replica,
                revision: text("redis-cluster-7d4f9"),
                elapsed_ms: 3100,
            },
            Event::RollFailedOver {
                statefulset: text("redis-cluster"),
                replica: text("redis-cluster-5"),
                master: text("redis-cluster-2"),
                elapsed_ms: 900,
            },
            Event::RollFinished {
                statefulset: text("redis-cluster"),
                revision: text("redis-cluster-7d4f9"),
                replaced: 6,
                failovers: 3,
                verdict: text("Cluster healthy: 3 masters, 3 replicas, 16384/16384 slots covered"),
                elapsed_ms: 40_000,
            },
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&json)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{json}: {errors:#?}");
        }
        let unknown = serde_json::json!({"event": "wrote", "action": "upsert", "object": "x"});
        assert!(!validator.is_valid(&unknown));
    }
}
