use futures::future::BoxFuture;

use super::compute::steps;
use super::*;
use crate::cluster::fixture::{fresh, observation, restarted, seed, topology};
use crate::cluster::resp::Reply;
use crate::cluster::topology::names;
use crate::cluster::transport::{Cmd, PodAddr};

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
