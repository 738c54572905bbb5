//! Scale 3 → 4 masters and back with 10,000 keys: slots move with their keys, nothing is lost.

use crate::cluster_support;

use cluster_support::{fast, CliTransport, Redis, TestCluster};
use kubectl_redis::cluster::ensure_cluster;
use kubectl_redis::cluster::parse_nodes;
use kubectl_redis::cluster::{cmd, RedisTransport};
use kubectl_redis::cluster::{scale_in, verify_cluster, Kind};

on_redis_5_and_7!(
    three_to_four_masters_and_back_without_losing_a_key,
    a_half_migrated_slot_is_finished_without_losing_keys,
    over_redis_cli_a_cluster_forms_and_a_half_migrated_slot_is_finished,
    a_move_stopped_at_any_step_is_finished_without_losing_keys,
    a_scale_in_stopped_after_some_nodes_forgot_the_departing_ones_finishes,
);

const NODES: [&str; 6] = ["node-a", "node-b", "node-c", "node-a", "node-b", "node-c"];
const KEYS: u32 = 10_000;

async fn three_to_four_masters_and_back_without_losing_a_key(redis: Redis) {
    let mut c = TestCluster::start(redis, &NODES, 3, 1);
    ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let keys = c.write_keys(0..KEYS, false).await;

    // Scale out: two more pods, four masters.
    c.add_pod("node-d");
    c.add_pod("node-a");
    c.topo.masters = 4;
    let out = ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(out.report.healthy, "{}", out.report);
    assert_eq!(out.report.masters, 4, "{}", out.report);
    assert_eq!(out.report.replicas, 4);
    for row in out.report.pods.iter().filter(|r| r.role == "master") {
        assert!(
            (4095..=4097).contains(&row.slots),
            "{} has {} slots:\n{}",
            row.name,
            row.slots,
            out.report
        );
    }
    assert!(
        out.actions.iter().any(|a| a.contains("MIGRATE")),
        "no keys moved? {:?}",
        out.actions.len()
    );
    c.assert_no_keys_lost(&keys, KEYS as u64, "after scale-out")
        .await;
    // Re-running is a no-op.
    assert!(
        ensure_cluster(&c.t, &c.topo, &fast())
            .await
            .unwrap()
            .already_healthy
    );

    // Scale in: drain and forget pods 6 and 7 first, only then shrink.
    let ids: Vec<String> = futures::future::join_all((6..8).map(|i| c.nodes_text(i)))
        .await
        .iter()
        .map(|t| {
            parse_nodes(t)
                .unwrap()
                .into_iter()
                .find(|n| n.is_myself())
                .unwrap()
                .id
        })
        .collect();
    let out = scale_in(&c.t, &c.topo, 6, 3, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(out.report.healthy, "{}", out.report);
    assert_eq!(out.report.masters, 3);
    assert_eq!(
        out.departed,
        vec!["redis-cluster-6".to_string(), "redis-cluster-7".to_string()]
    );
    c.remove_last_pod();
    c.remove_last_pod();
    c.topo.masters = 3;
    let report = verify_cluster(&c.t, &c.topo).await;
    assert!(report.healthy, "{}", report);
    for row in report.pods.iter().filter(|r| r.role == "master") {
        assert!(
            (5460..=5462).contains(&row.slots),
            "{} has {} slots",
            row.name,
            row.slots
        );
    }
    for i in 0..6 {
        let text = c.nodes_text(i).await;
        for id in &ids {
            assert!(
                !text.contains(id.as_str()),
                "pod {i} still knows departed node {id}"
            );
        }
        let info = c.call(i, cmd(["CLUSTER", "INFO"])).await.text().unwrap();
        assert!(info.contains("cluster_known_nodes:6"), "pod {i}: {info}");
    }
    c.assert_no_keys_lost(&keys, KEYS as u64, "after scale-in")
        .await;
}

async fn a_half_migrated_slot_is_finished_without_losing_keys(redis: Redis) {
    half_migrated_slot(redis, false).await
}

/// The same through this version's own redis-cli, as `--via exec` runs it in the pods: forming,
/// `status` and the slot move (GETKEYSINSLOT, MIGRATE … KEYS, SETSLOT) parse its raw output.
async fn over_redis_cli_a_cluster_forms_and_a_half_migrated_slot_is_finished(redis: Redis) {
    half_migrated_slot(redis, true).await
}

async fn half_migrated_slot(redis: Redis, over_cli: bool) {
    let c = TestCluster::start(redis, &NODES, 3, 1);
    let cli = CliTransport { redis };
    let t: &dyn RedisTransport = if over_cli { &cli } else { &c.t };
    // An error reply is one (the formation loop waits on REPLICATE's "Unknown node").
    let err = kubectl_redis::cluster::call(t, &c.addr(0), cmd(["CLUSTER", "REPLICATE", "abc"]))
        .await
        .unwrap_err();
    assert!(format!("{err}").contains("Unknown node abc"), "{err}");
    let out = ensure_cluster(t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let keys = c.write_keys(0..KEYS, false).await;
    // Pick the busiest slot of the first master and move half its keys to the second by hand,
    // then stop, as if a previous run had crashed mid-migration.
    let plan = out.plan.unwrap();
    let (a, b) = (
        c.index_of(&plan.masters[0].pod),
        c.index_of(&plan.masters[1].pod),
    );
    let (lo, hi) = plan.masters[0].ranges[0];
    let mut by_slot: std::collections::BTreeMap<u16, Vec<u32>> = std::collections::BTreeMap::new();
    for k in &keys {
        by_slot
            .entry(kubectl_redis::cluster::key_slot(
                cluster_support::key(*k).as_bytes(),
            ))
            .or_default()
            .push(*k);
    }
    let (slot, slot_keys) = by_slot
        .into_iter()
        .filter(|(s, _)| (lo..=hi).contains(s))
        .max_by_key(|(_, ks)| ks.len())
        .unwrap();
    assert!(slot_keys.len() >= 2);
    let id = |i: usize| {
        let c = &c;
        async move {
            parse_nodes(&c.nodes_text(i).await)
                .unwrap()
                .into_iter()
                .find(|n| n.is_myself())
                .unwrap()
                .id
        }
    };
    let (ida, idb) = (id(a).await, id(b).await);
    let s = slot.to_string();
    c.call(
        b,
        cmd(["CLUSTER", "SETSLOT", s.as_str(), "IMPORTING", ida.as_str()]),
    )
    .await;
    c.call(
        a,
        cmd(["CLUSTER", "SETSLOT", s.as_str(), "MIGRATING", idb.as_str()]),
    )
    .await;
    let ipb = c.procs[b].ip.clone();
    let first = cluster_support::key(slot_keys[0]);
    c.call(
        a,
        cmd(["MIGRATE", ipb.as_str(), "6379", first.as_str(), "0", "5000"]),
    )
    .await;

    let report = verify_cluster(t, &c.topo).await;
    assert!(
        report.problems.iter().any(|p| p.kind == Kind::OpenSlot),
        "{}",
        report
    );
    let t0 = std::time::Instant::now();
    let out = ensure_cluster(t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("ensure took {:?}: {:?}", t0.elapsed(), out.actions);
    assert!(out.report.healthy, "{}", out.report);
    let owner = parse_nodes(&c.nodes_text(0).await)
        .unwrap()
        .into_iter()
        .find(|n| n.slots.iter().any(|&(x, y)| x <= slot && slot <= y))
        .unwrap()
        .id;
    assert_eq!(
        owner, idb,
        "slot {slot} should have finished moving to its target"
    );
    c.assert_no_keys_lost(&keys, KEYS as u64, "finishing the half-migrated slot")
        .await;
}

/// The node id of pod `i`, from its own `myself` line.
async fn node_id(c: &TestCluster, i: usize) -> String {
    parse_nodes(&c.nodes_text(i).await)
        .unwrap()
        .into_iter()
        .find(|n| n.is_myself())
        .unwrap()
        .id
}

/// Where a move of one slot from master A to master B may stop (migrate.rs's order).
#[derive(Debug, Clone, Copy)]
enum Stopped {
    /// B `IMPORTING` from A only.
    AfterImporting,
    /// A `MIGRATING` to B too, one key moved.
    InTheMiddle,
    /// Every key moved and B took the slot (`SETSLOT NODE` on B), A still `MIGRATING`.
    AfterTheTargetClaimedIt,
}

async fn a_move_stopped_at_any_step_is_finished_without_losing_keys(redis: Redis) {
    let c = TestCluster::start(redis, &NODES, 3, 1);
    let out = ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let keys = c.write_keys(0..KEYS, false).await;
    let plan = out.plan.unwrap();
    let (a, b) = (
        c.index_of(&plan.masters[0].pod),
        c.index_of(&plan.masters[1].pod),
    );
    let (ida, idb) = (node_id(&c, a).await, node_id(&c, b).await);
    let (lo, _) = plan.masters[0].ranges[0];
    let ipb = c.procs[b].ip.clone();
    for (n, stopped) in [
        Stopped::AfterImporting,
        Stopped::InTheMiddle,
        Stopped::AfterTheTargetClaimedIt,
    ]
    .into_iter()
    .enumerate()
    {
        // A's slots with keys, one per stage.
        let slot = (lo..)
            .filter(|s| {
                keys.iter().any(|k| {
                    kubectl_redis::cluster::key_slot(cluster_support::key(*k).as_bytes()) == *s
                })
            })
            .nth(n)
            .unwrap();
        let s = slot.to_string();
        let slot_keys: Vec<String> = keys
            .iter()
            .map(|k| cluster_support::key(*k))
            .filter(|k| kubectl_redis::cluster::key_slot(k.as_bytes()) == slot)
            .collect();
        let ok = |r: kubectl_redis::cluster::Reply| assert!(!r.is_error(), "{stopped:?}: {r}");
        ok(c.call(
            b,
            cmd(["CLUSTER", "SETSLOT", s.as_str(), "IMPORTING", ida.as_str()]),
        )
        .await);
        if !matches!(stopped, Stopped::AfterImporting) {
            ok(c.call(
                a,
                cmd(["CLUSTER", "SETSLOT", s.as_str(), "MIGRATING", idb.as_str()]),
            )
            .await);
            let moved = match stopped {
                Stopped::InTheMiddle => &slot_keys[..1],
                _ => &slot_keys[..],
            };
            let mut migrate = cmd([ipb.as_str(), "6379", "", "0", "5000", "KEYS"]);
            migrate.insert(0, b"MIGRATE".to_vec());
            migrate.extend(moved.iter().map(|k| k.as_bytes().to_vec()));
            ok(c.call(a, migrate).await);
        }
        if matches!(stopped, Stopped::AfterTheTargetClaimedIt) {
            ok(c.call(
                b,
                cmd(["CLUSTER", "SETSLOT", s.as_str(), "NODE", idb.as_str()]),
            )
            .await);
        }
        let report = verify_cluster(&c.t, &c.topo).await;
        assert!(
            report.problems.iter().any(|p| p.kind == Kind::OpenSlot),
            "{stopped:?}: {report}"
        );
        let out = ensure_cluster(&c.t, &c.topo, &fast())
            .await
            .unwrap_or_else(|e| panic!("{stopped:?}: {e:#}"));
        assert!(out.report.healthy, "{stopped:?}: {}", out.report);
        let owner = parse_nodes(&c.nodes_text(a).await)
            .unwrap()
            .into_iter()
            .find(|n| n.slots.iter().any(|&(x, y)| x <= slot && slot <= y))
            .unwrap()
            .id;
        assert_eq!(owner, idb, "{stopped:?}: slot {slot} finished moving to B");
        c.assert_no_keys_lost(&keys, KEYS as u64, &format!("{stopped:?}"))
            .await;
    }
}

async fn a_scale_in_stopped_after_some_nodes_forgot_the_departing_ones_finishes(redis: Redis) {
    let mut c = TestCluster::start(redis, &NODES, 3, 1);
    ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let keys = c.write_keys(0..KEYS, false).await;
    c.add_pod("node-d");
    c.add_pod("node-a");
    c.topo.masters = 4;
    ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let departing = node_id(&c, 6).await;
    scale_in(&c.t, &c.topo, 6, 3, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    // As if the run had been killed while it sent CLUSTER FORGET: pod 0 knows pod 6 again,
    // the others (whose FORGET bans it for a minute) do not.
    let ip6 = c.procs[6].ip.clone();
    c.call(0, cmd(["CLUSTER", "MEET", ip6.as_str(), "6379"]))
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !c.nodes_text(0).await.contains(&departing) {
        assert!(
            std::time::Instant::now() < deadline,
            "pod 0 meets pod 6 again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let report = verify_cluster(&c.t, &c.topo).await;
    assert!(
        !report.healthy,
        "the half-forgotten cluster is unhealthy: {report}"
    );

    let out = scale_in(&c.t, &c.topo, 6, 3, &fast())
        .await
        .unwrap_or_else(|e| panic!("the next scale-in finishes the job: {e:#}"));
    assert!(out.report.healthy, "{}", out.report);
    assert_eq!(out.moved_slots, 0, "nothing is left to move");
    for i in 0..6 {
        let text = c.nodes_text(i).await;
        assert!(!text.contains(&departing), "pod {i} forgot pod 6");
    }
    c.remove_last_pod();
    c.remove_last_pod();
    c.topo.masters = 3;
    assert!(verify_cluster(&c.t, &c.topo).await.healthy);
    c.assert_no_keys_lost(&keys, KEYS as u64, "after the resumed scale-in")
        .await;
}
