//! Formation against real redis-server processes: fresh, idempotent, resumed, refused.

use crate::cluster_support;

use std::collections::BTreeSet;

use cluster_support::{fast, Redis, TestCluster};
use kubectl_redis::cluster::cmd;
use kubectl_redis::cluster::ensure_cluster;
use kubectl_redis::cluster::parse_nodes;
use kubectl_redis::cluster::{verify_cluster, ClusterError, Kind};

on_redis_5_and_7!(
    forms_a_fresh_cluster_then_leaves_it_alone,
    resumes_a_half_formed_cluster,
    resumes_when_replicas_were_not_attached_yet,
    refuses_a_node_holding_foreign_data,
    refuses_a_node_of_another_cluster,
    diagnostics_name_the_node_and_the_reason,
    one_kubernetes_node_forms_with_warnings,
);

const NODES: [&str; 6] = ["node-a", "node-b", "node-c", "node-a", "node-b", "node-c"];

async fn forms_a_fresh_cluster_then_leaves_it_alone(redis: Redis) {
    let c = TestCluster::start(redis, &NODES, 3, 1);
    let out = ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!out.already_healthy);
    assert!(out.report.healthy, "{}", out.report);
    assert_eq!(
        out.report.headline,
        "Cluster healthy: 3 masters, 3 replicas, 16384/16384 slots covered"
    );

    // The even split, on the planned masters, exactly like redis-cli's.
    let plan = out.plan.clone().unwrap();
    let mut ranges: Vec<Vec<(u16, u16)>> = Vec::new();
    for m in &plan.masters {
        let i = c.index_of(&m.pod);
        let nodes = parse_nodes(&c.nodes_text(i).await).unwrap();
        ranges.push(nodes.iter().find(|n| n.is_myself()).unwrap().slots.clone());
    }
    ranges.sort();
    assert_eq!(
        ranges,
        vec![vec![(0, 5460)], vec![(5461, 10922)], vec![(10923, 16383)]]
    );

    // Topology-aware: the naive pairing (pod i+3 → pod i) would share a node every time.
    for row in out.report.pods.iter().filter(|r| r.role == "replica") {
        let master = row.master.as_deref().unwrap();
        let mnode = &c.topo.pod(master).unwrap().node;
        assert_ne!(
            &row.node, mnode,
            "{} replicates {master} on the same node",
            row.name
        );
    }
    assert!(out.report.warnings.is_empty(), "{:?}", out.report.warnings);

    // Every node agrees: same slot map, cluster_state ok, all links connected.
    let mut maps = BTreeSet::new();
    for i in 0..6 {
        let info = c.call(i, cmd(["CLUSTER", "INFO"])).await.text().unwrap();
        assert!(info.contains("cluster_state:ok"), "pod {i}: {info}");
        let nodes = parse_nodes(&c.nodes_text(i).await).unwrap();
        assert_eq!(nodes.len(), 6);
        assert!(nodes.iter().all(|n| n.is_myself() || n.link_connected));
        let mut map: Vec<(String, Vec<(u16, u16)>)> = nodes
            .iter()
            .filter(|n| !n.slots.is_empty())
            .map(|n| (n.id.clone(), n.slots.clone()))
            .collect();
        map.sort();
        maps.insert(map);
    }
    assert_eq!(maps.len(), 1, "nodes disagree on the slot map: {maps:?}");

    // Idempotent: a second run verifies and changes nothing.
    let before: Vec<String> = futures::future::join_all((0..6).map(|i| c.nodes_text(i))).await;
    let again = ensure_cluster(&c.t, &c.topo, &fast()).await.unwrap();
    assert!(again.already_healthy);
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    for (i, b) in before.iter().enumerate() {
        let ids = |t: &str| {
            parse_nodes(t)
                .unwrap()
                .into_iter()
                .map(|n| (n.id, n.flags, n.master_id, n.slots))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(b),
            ids(&c.nodes_text(i).await),
            "pod {i} changed on the second run"
        );
    }

    // Status text: verdict first, one row per pod.
    let text = verify_cluster(&c.t, &c.topo).await.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("Cluster healthy: 3 masters, 3 replicas, 16384/16384"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("NAME") && lines[2].contains("PVC"),
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("redis-cluster-"))
            .count(),
        6,
        "{text}"
    );
    let json = serde_json::to_value(verify_cluster(&c.t, &c.topo).await).unwrap();
    assert_eq!(json["healthy"], true);
    assert_eq!(json["pods"].as_array().unwrap().len(), 6);
    assert_eq!(json["slots_covered"], 16384);
}

async fn resumes_a_half_formed_cluster(redis: Redis) {
    let c = TestCluster::start(redis, &NODES, 3, 1);
    // A previous run got as far as slots on one master, and one introduction.
    let mut add = cmd(["CLUSTER", "ADDSLOTS"]);
    add.extend((0..=5460u16).map(|s| s.to_string().into_bytes()));
    c.call(0, add).await;
    c.call(0, cmd(["CLUSTER", "SET-CONFIG-EPOCH", "1"])).await;
    let ip3 = c.procs[3].ip.clone();
    c.call(0, cmd(["CLUSTER", "MEET", ip3.as_str(), "6379"]))
        .await;
    let id0 = parse_nodes(&c.nodes_text(0).await)
        .unwrap()
        .into_iter()
        .find(|n| n.is_myself())
        .unwrap()
        .id;

    let out = ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(out.report.healthy, "{}", out.report);
    // The slots it had are kept; nothing re-added on pod 0.
    let nodes = parse_nodes(&c.nodes_text(0).await).unwrap();
    let me = nodes.iter().find(|n| n.is_myself()).unwrap();
    assert_eq!(me.id, id0);
    assert_eq!(me.slots, vec![(0, 5460)]);
    assert!(
        !out.actions
            .iter()
            .any(|a| a.starts_with("redis-cluster-0: CLUSTER ADDSLOTS")),
        "{:?}",
        out.actions
    );
}

async fn resumes_when_replicas_were_not_attached_yet(redis: Redis) {
    let c = TestCluster::start(redis, &NODES, 3, 1);
    // Masters formed and met, replicas introduced but never told whom to replicate.
    for (i, r) in [
        (0usize, (0u16, 5460u16)),
        (1, (5461, 10922)),
        (2, (10923, 16383)),
    ] {
        let mut add = cmd(["CLUSTER", "ADDSLOTS"]);
        add.extend((r.0..=r.1).map(|s| s.to_string().into_bytes()));
        c.call(i, add).await;
    }
    for j in 1..6 {
        let ip = c.procs[j].ip.clone();
        c.call(0, cmd(["CLUSTER", "MEET", ip.as_str(), "6379"]))
            .await;
    }
    let out = ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(out.report.healthy, "{}", out.report);
    assert_eq!(out.report.masters, 3);
    assert_eq!(out.report.replicas, 3);
    for i in 0..3 {
        assert_eq!(out.report.pods[i].role, "master");
    }
}

async fn refuses_a_node_holding_foreign_data(redis: Redis) {
    let c = TestCluster::start(redis, &NODES, 3, 1);
    // Pod 4 serves one slot on its own and holds a key there: data from elsewhere.
    let slot = kubectl_redis::cluster::key_slot(b"precious").to_string();
    c.call(4, cmd(["CLUSTER", "ADDSLOTS", slot.as_str()])).await;
    // A fresh master serves nothing for its first seconds (Redis' writable delay): retry.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r =
            kubectl_redis::cluster::call(&c.t, &c.addr(4), cmd(["SET", "precious", "data"])).await;
        match r {
            Ok(_) => break,
            Err(e) => assert!(std::time::Instant::now() < deadline, "{e:#}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let err = ensure_cluster(&c.t, &c.topo, &fast()).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        matches!(
            err.downcast_ref::<ClusterError>(),
            Some(ClusterError::Refused(_))
        ),
        "{msg}"
    );
    assert!(
        msg.contains("redis-cluster-4") && msg.contains("1 keys") && msg.contains("foreign data"),
        "{msg}"
    );
    // Nothing changed anywhere.
    assert_eq!(
        c.call(4, cmd(["GET", "precious"])).await.text().unwrap(),
        "data"
    );
    for i in 0..6 {
        assert_eq!(
            parse_nodes(&c.nodes_text(i).await).unwrap().len(),
            1,
            "pod {i} was touched"
        );
    }
}

async fn refuses_a_node_of_another_cluster(redis: Redis) {
    let c = TestCluster::start(redis, &NODES, 3, 1);
    // Another cluster: pod 5 and an outsider that is none of our pods.
    let other = cluster_support::RedisProc::start(
        redis,
        c.pod_network(),
        &c.tmp.path().join("outsider"),
        &[],
    );
    c.call(5, cmd(["CLUSTER", "MEET", other.ip.as_str(), "6379"]))
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !c
        .nodes_text(5)
        .await
        .contains(&format!("{}:6379@16379 master -", other.ip))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "outsider never joined pod 5"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let err = ensure_cluster(&c.t, &c.topo, &fast()).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("refusing") && msg.contains("redis-cluster-5") && msg.contains(&other.ip),
        "{msg}"
    );
    assert!(msg.contains("none of this StatefulSet's pods"), "{msg}");
    for i in 0..5 {
        assert_eq!(
            parse_nodes(&c.nodes_text(i).await).unwrap().len(),
            1,
            "pod {i} was touched"
        );
    }
}

async fn diagnostics_name_the_node_and_the_reason(redis: Redis) {
    let mut c = TestCluster::start(redis, &NODES, 3, 1);
    let out = ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let victim = out.plan.unwrap().masters[1].pod.clone();
    let vi = c.index_of(&victim);
    c.procs[vi].kill();
    let report = verify_cluster(&c.t, &c.topo).await;
    assert!(!report.healthy);
    assert!(
        report.headline.starts_with("Cluster unhealthy"),
        "{}",
        report.headline
    );
    let unreachable: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.kind == Kind::Unreachable)
        .collect();
    assert_eq!(unreachable.len(), 1, "{:?}", report.problems);
    assert_eq!(unreachable[0].pod.as_deref(), Some(victim.as_str()));
    let row = report.pods.iter().find(|r| r.name == victim).unwrap();
    assert_eq!(row.role, "unreachable");

    // A deadline that passes yields an error listing the same problems.
    let opts = kubectl_redis::cluster::FormOptions {
        timeout: std::time::Duration::from_millis(600),
        poll: std::time::Duration::from_millis(50),
    };
    let err = kubectl_redis::cluster::wait_healthy(&c.t, &c.topo, &opts)
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("{victim}: unreachable")), "{msg}");
    match err.downcast_ref::<ClusterError>() {
        Some(ClusterError::NotConverged { report, .. }) => assert!(!report.healthy),
        other => panic!("expected NotConverged, got {other:?}"),
    }
}

async fn one_kubernetes_node_forms_with_warnings(redis: Redis) {
    let c = TestCluster::start(redis, &["only"; 6], 3, 1);
    let out = ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(out.report.healthy, "{}", out.report);
    assert_eq!(out.plan.unwrap().warnings.len(), 3);
    let same: Vec<_> = out
        .report
        .warnings
        .iter()
        .filter(|w| w.kind == Kind::ReplicaSameNode)
        .collect();
    assert_eq!(same.len(), 3, "{:?}", out.report.warnings);
    let text = out.report.to_string();
    assert!(
        text.contains("! every pod runs on Kubernetes node only: each replica shares it"),
        "{text}"
    );
}
