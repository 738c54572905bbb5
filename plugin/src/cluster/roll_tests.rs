//! The roll's decisions on observations built with the fixture: the order, resuming from a
//! mixed-revision cluster, never two members of a shard down, versions never inverted.

use super::super::fixture::{cluster, fresh, lines, name, observation, seed, topology, Pod};
use super::*;

const NEW: &str = "redis-cluster-new";

/// Pods `new` are on the update revision (running `version`), the others on the old one.
fn facts_of(pods: &mut [Pod], new: &[u32], version: &'static str) -> (Topology, Observation) {
    for p in pods.iter_mut() {
        if new.contains(&p.info.ordinal) {
            p.info.revision = Some(NEW.into());
            p.version = version;
        }
    }
    let masters = pods.len() / 2;
    let mut topo = topology(pods, masters.max(3), usize::from(pods.len() > 3));
    topo.update_revision = Some(NEW.into());
    topo.replicas = Some(pods.len());
    (topo, observation(pods))
}

fn replace(n: u32, role: Role) -> RollAction {
    RollAction::Replace { pod: name(n), role }
}

fn failover(replica: u32, master: u32) -> RollAction {
    RollAction::Failover {
        replica: name(replica),
        master: name(master),
    }
}

/// The seed after the failover of shard 0: redis-cluster-3 serves 0-5460, redis-cluster-0
/// replicates it.
fn swapped() -> Vec<Pod> {
    cluster(&lines(&[3, 1, 2], &[(0, 3), (4, 1), (5, 2)]))
}

#[test]
fn the_order_is_replicas_first_then_a_failover_before_each_master() {
    let mut pods = seed();
    let (topo, obs) = facts_of(&mut pods, &[], "5.0.6");
    let facts = Facts::new(&topo, &obs);
    use Role::*;
    assert_eq!(
        order(&facts, RollOptions::default()).unwrap(),
        vec![
            replace(5, Replica),
            replace(4, Replica),
            replace(3, Replica),
            failover(5, 2),
            replace(2, FormerMaster),
            failover(4, 1),
            replace(1, FormerMaster),
            failover(3, 0),
            replace(0, FormerMaster),
        ]
    );
    let fast = order(&facts, RollOptions { unsafe_fast: true }).unwrap();
    assert_eq!(
        fast,
        vec![
            replace(5, Replica),
            replace(4, Replica),
            replace(3, Replica),
            replace(2, Master),
            replace(1, Master),
            replace(0, Master),
        ]
    );
}

/// Each row: the pods, which are on the new revision (and run which Redis), what to do next.
#[test]
fn the_next_step_comes_from_the_observation_alone() {
    struct Row {
        what: &'static str,
        pods: Vec<Pod>,
        new: &'static [u32],
        version: &'static str,
        next: Next,
    }
    let mut replica_down = seed();
    replica_down[4].info.ready = false;
    let mut lagging = seed();
    lagging[5].offset = 500; // 500 bytes behind: within the bound
    let mut far_behind = seed();
    far_behind[2].offset = MAX_LAG * 4;
    let mut swapped_upgrade = swapped();
    swapped_upgrade[0].master_link_up = Some(false);
    let rows = vec![
        Row {
            what: "a fresh roll starts with the highest replica",
            pods: seed(),
            new: &[],
            version: "5.0.6",
            next: Next::Act(replace(5, Role::Replica)),
        },
        Row {
            what: "every pod on the new revision: done",
            pods: seed(),
            new: &[0, 1, 2, 3, 4, 5],
            version: "5.0.6",
            next: Next::Done,
        },
        Row {
            what: "resume: two replicas done, the third is next",
            pods: seed(),
            new: &[4, 5],
            version: "5.0.6",
            next: Next::Act(replace(3, Role::Replica)),
        },
        Row {
            what: "resume: replicas done, the highest master fails over first",
            pods: seed(),
            new: &[3, 4, 5],
            version: "5.0.6",
            next: Next::Act(failover(5, 2)),
        },
        Row {
            what: "resume after a failover: the former master is a replica now, next to go",
            pods: swapped(),
            new: &[1, 2, 3, 4, 5],
            version: "5.0.6",
            next: Next::Act(replace(0, Role::Replica)),
        },
        Row {
            what: "a replica of another shard is down: nothing happens to anyone",
            pods: replica_down,
            new: &[5],
            version: "5.0.6",
            next: Next::Wait("redis-cluster-4 is not Ready".into()),
        },
        Row {
            what: "a replica within the lag bound does not hold the roll up",
            pods: lagging,
            new: &[],
            version: "5.0.6",
            next: Next::Act(replace(5, Role::Replica)),
        },
        Row {
            what: "a replica far behind its master: wait before any failover",
            pods: far_behind,
            new: &[3, 4, 5],
            version: "5.0.6",
            next: Next::Wait(format!(
                "redis-cluster-5 trails redis-cluster-2 by {} bytes",
                MAX_LAG * 4 - 1000
            )),
        },
        Row {
            what: "upgrade: new replicas run 7.0, their 5.0 masters fail over to them",
            pods: seed(),
            new: &[3, 4, 5],
            version: "7.0.15",
            next: Next::Act(failover(5, 2)),
        },
        Row {
            what: "upgrade after a failover: the 5.0 former master cannot sync from 7.0 and \
                   need not, it goes next",
            pods: swapped_upgrade,
            new: &[1, 2, 3, 4, 5],
            version: "7.0.15",
            next: Next::Act(replace(0, Role::Replica)),
        },
        Row {
            what: "an unformed cluster: pods are replaced one by one",
            pods: fresh(),
            new: &[],
            version: "5.0.6",
            next: Next::Act(replace(5, Role::EmptyMaster)),
        },
    ];
    for mut row in rows {
        let (topo, obs) = facts_of(&mut row.pods, row.new, row.version);
        let facts = Facts::new(&topo, &obs);
        assert_eq!(
            next(&facts, RollOptions::default()),
            Ok(row.next),
            "{}",
            row.what
        );
    }
}

#[test]
fn never_two_members_of_one_shard_down() {
    // Replica redis-cluster-5 was deleted and is not back: its master redis-cluster-2 is the
    // last of shard 2 and nothing else is touched either, whatever is out of date.
    let mut pods = seed();
    pods.remove(5);
    let (mut topo, obs) = facts_of(&mut pods, &[], "5.0.6");
    topo.replicas = Some(6);
    let facts = Facts::new(&topo, &obs);
    let Ok(Next::Wait(why)) = next(&facts, RollOptions { unsafe_fast: true }) else {
        panic!("must wait")
    };
    assert!(why.contains("5/6 pods exist"), "{why}");
}

#[test]
fn a_downgrade_is_refused_after_the_first_replica_shows_it() {
    // redis-cluster-5 came back on the new revision with Redis 5.0 under its 7.0 master.
    let mut pods = seed();
    for p in &mut pods {
        p.version = "7.0.15";
    }
    let (topo, obs) = facts_of(&mut pods, &[5], "5.0.6");
    let facts = Facts::new(&topo, &obs);
    let error = next(&facts, RollOptions::default()).unwrap_err();
    assert_eq!(
        error,
        RollError::VersionInversion {
            replica: name(5),
            replica_version: "5.0.6".into(),
            master: name(2),
            master_version: "7.0.15".into(),
        }
    );
    assert!(error
        .to_string()
        .contains("cannot replicate from a master of a newer version"));
}

#[test]
fn a_master_without_replicas_is_refused_unless_unsafe() {
    let mut pods = cluster(&lines(&[0, 1, 2], &[]));
    let (topo, obs) = facts_of(&mut pods, &[], "5.0.6");
    let facts = Facts::new(&topo, &obs);
    let error = next(&facts, RollOptions::default()).unwrap_err();
    assert_eq!(
        error,
        RollError::NoReplica {
            master: name(2),
            slots: 5461
        }
    );
    assert_eq!(
        next(&facts, RollOptions { unsafe_fast: true }),
        Ok(Next::Act(replace(2, Role::Master)))
    );
}

#[test]
fn out_of_date_means_another_revision_than_the_update_revision() {
    let mut pods = seed();
    let (mut topo, _) = facts_of(&mut pods, &[0, 3], "5.0.6");
    assert_eq!(
        outdated_pods(&topo),
        [1, 2, 4, 5].map(name).into_iter().collect()
    );
    topo.update_revision = None;
    assert!(outdated_pods(&topo).is_empty());
}

#[test]
fn actions_read_well_and_serialize_with_a_tag() {
    assert_eq!(
        failover(3, 0).to_string(),
        "fail over redis-cluster-0 to redis-cluster-3 (CLUSTER FAILOVER on redis-cluster-3)"
    );
    assert_eq!(
        replace(0, Role::FormerMaster).to_string(),
        "replace redis-cluster-0 (former master, a replica after the failover)"
    );
    assert_eq!(
        serde_json::to_value(replace(5, Role::Replica)).unwrap(),
        serde_json::json!({"action": "replace", "pod": "redis-cluster-5", "role": "replica"})
    );
}

#[test]
fn status_names_a_roll_in_progress_as_a_warning() {
    let mut pods = seed();
    let (topo, obs) = facts_of(&mut pods, &[4, 5], "5.0.6");
    let mut report = verify(&topo, &obs);
    note_roll(&topo, &mut report);
    assert!(report.healthy);
    let cause = report.causes.last().unwrap();
    assert_eq!(cause.kind, CauseKind::RollInProgress);
    assert_eq!(cause.severity, Severity::Warning);
    assert_eq!(
        cause.summary,
        "a roll is in progress: 4/6 pods on an old revision (redis-cluster-0, redis-cluster-1, \
         redis-cluster-2, redis-cluster-3)"
    );
    assert_eq!(cause.warnings.len(), 4);
    assert!(report.warnings.iter().all(|w| w.kind == Kind::OldRevision));
}
