//! Healing after pods come back with new IPs, and the failover drill, with real data.

use crate::cluster_support;

use std::time::{Duration, Instant};

use cluster_support::{fast, Redis, TestCluster};
use kubectl_redis::cluster::ensure_cluster;
use kubectl_redis::cluster::parse_nodes;
use kubectl_redis::cluster::{call, cmd};
use kubectl_redis::cluster::{verify_cluster, wait_healthy, CauseKind, Kind};

on_redis_5_and_7!(
    one_pod_back_with_a_new_ip_heals_itself_and_loses_nothing,
    all_pods_back_with_new_ips_are_reintroduced_and_lose_nothing,
    failover_drill_loses_no_acknowledged_write,
    update_node_rewrites_the_nodes_conf_the_server_wrote,
    a_replica_rescheduled_beside_its_master_is_re_paired_and_loses_nothing,
);

const NODES: [&str; 6] = ["node-a", "node-b", "node-c", "node-a", "node-b", "node-c"];
const KEYS: u32 = 10_000;

async fn formed_with_keys(redis: Redis) -> (TestCluster, Vec<u32>) {
    let c = TestCluster::start(redis, &NODES, 3, 1);
    let out = ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(out.report.healthy);
    let written = c.write_keys(0..KEYS, false).await;
    assert_eq!(written.len(), KEYS as usize);
    // Spread across slots and masters.
    let slots: std::collections::BTreeSet<u16> = (0..KEYS)
        .map(|k| kubectl_redis::cluster::key_slot(cluster_support::key(k).as_bytes()))
        .collect();
    assert!(slots.len() > 7000, "only {} slots used", slots.len());
    // Let the replicas catch up before anything is killed.
    wait_healthy(&c.t, &c.topo, &fast()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut synced = true;
        for i in 0..6 {
            let n = c.call(i, cmd(["DBSIZE"])).await.int().unwrap();
            synced &= n > 0;
        }
        let total: i64 = futures::future::join_all((0..6).map(|i| c.call(i, cmd(["DBSIZE"]))))
            .await
            .iter()
            .map(|r| r.int().unwrap())
            .sum();
        if synced && total == 2 * KEYS as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas never caught up: {total} keys in total"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (c, written)
}

async fn one_pod_back_with_a_new_ip_heals_itself_and_loses_nothing(redis: Redis) {
    let (mut c, keys) = formed_with_keys(redis).await;
    // A master is recreated with a new IP; update-node.sh fixes its own line, gossip the rest.
    let master = c
        .topo
        .pods
        .iter()
        .position(|p| verify_rows_role(&c, &p.name) == "master");
    let i = master.unwrap();
    let new_ip = c.restart_pod(i);
    let report = wait_healthy(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(report.healthy, "{}", report);
    // Every other node has the new address.
    for j in (0..6).filter(|j| *j != i) {
        let text = c.nodes_text(j).await;
        assert!(
            text.contains(&format!("{new_ip}:6379")),
            "pod {j} does not know the new address:\n{text}"
        );
    }
    c.assert_no_keys_lost(&keys, KEYS as u64, "after one pod restart")
        .await;
}

fn verify_rows_role(c: &TestCluster, pod: &str) -> String {
    let rt = tokio::runtime::Handle::current();
    let report = tokio::task::block_in_place(|| rt.block_on(verify_cluster(&c.t, &c.topo)));
    report
        .pods
        .iter()
        .find(|r| r.name == pod)
        .unwrap()
        .role
        .clone()
}

async fn all_pods_back_with_new_ips_are_reintroduced_and_lose_nothing(redis: Redis) {
    let (mut c, keys) = formed_with_keys(redis).await;
    // Every pod is recreated at once. The new addresses reuse old ones in a rotation (pod i gets
    // pod i+1's old IP) plus fresh ones, the nasty case where a stale address now answers with
    // another node's id.
    let mut old: Vec<Option<cluster_support::PodNetwork>> =
        c.procs.iter_mut().map(|p| Some(p.take_network())).collect();
    let restarted = Instant::now();
    for i in 0..6 {
        let netns = if i % 2 == 0 {
            old[(i + 1) % 6].take().unwrap()
        } else {
            c.pod_network()
        };
        c.restart_pod_in(i, netns);
    }
    drop(old);
    // update-node.sh alone is not enough: peers are stale everywhere.
    let report = verify_cluster(&c.t, &c.topo).await;
    assert!(!report.healthy);
    // ... and status says so as a cause, with its remedy.
    let stale = report
        .causes
        .iter()
        .find(|c| c.kind == CauseKind::StaleAddresses);
    assert!(
        stale.is_some_and(|c| c.remedy.contains("kubectl redis apply")),
        "{}",
        report
    );

    let out = ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let healed = restarted.elapsed();
    assert!(out.report.healthy, "{}", out.report);
    assert!(
        out.actions.iter().any(|a| a.contains("CLUSTER MEET")),
        "{:?}",
        out.actions
    );
    assert!(
        !out.actions
            .iter()
            .any(|a| a.contains("ADDSLOTS") || a.contains("RESET")),
        "{:?}",
        out.actions
    );
    eprintln!(
        "all-pods-restart heal: {healed:?} from restart to healthy (plugin run {} ms)",
        out.elapsed_ms
    );
    for i in 0..6 {
        let nodes = parse_nodes(&c.nodes_text(i).await).unwrap();
        for n in nodes {
            assert!(
                c.procs.iter().any(|p| p.ip == n.ip),
                "pod {i} still has a stale address {}",
                n.ip
            );
        }
    }
    c.assert_no_keys_lost(&keys, KEYS as u64, "after all pods restarted")
        .await;
}

async fn failover_drill_loses_no_acknowledged_write(redis: Redis) {
    let c = TestCluster::start(redis, &NODES, 3, 1);
    let out = ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let plan = out.plan.unwrap();
    let acked = c.write_keys(0..3000, true).await;
    assert!(!acked.is_empty());

    let victim = plan.masters[0].pod.clone();
    let replica = plan
        .replicas
        .iter()
        .find(|r| r.master == victim)
        .unwrap()
        .pod
        .clone();
    let (vi, ri) = (c.index_of(&victim), c.index_of(&replica));
    let mut c = c;
    c.procs[vi].kill();
    let killed = Instant::now();
    // The replica must take over; deadline well past cluster-node-timeout plus the election.
    let deadline = killed + Duration::from_millis(cluster_support::NODE_TIMEOUT_MS * 10);
    loop {
        let role = call(&c.t, &c.addr(ri), cmd(["INFO", "replication"]))
            .await
            .unwrap()
            .text()
            .unwrap();
        let info = call(&c.t, &c.addr(ri), cmd(["CLUSTER", "INFO"]))
            .await
            .unwrap()
            .text()
            .unwrap();
        if role.contains("role:master") && info.contains("cluster_state:ok") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{replica} never took over from {victim}:\n{role}\n{info}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "failover: {replica} took over {:?} after {victim} was killed (cluster-node-timeout {} ms)",
        killed.elapsed(),
        cluster_support::NODE_TIMEOUT_MS
    );
    let missing = c.missing_keys(&acked).await;
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// The rendered update-node.sh against the nodes.conf that this Redis version itself wrote after
/// formation: only the `myself` address changes, the server starts from the rewritten file with
/// the same node id at the new address.
async fn update_node_rewrites_the_nodes_conf_the_server_wrote(redis: Redis) {
    let mut c = TestCluster::start(redis, &NODES, 3, 1);
    let out = ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(out.report.healthy, "{}", out.report);
    let i = c.index_of(&out.plan.unwrap().replicas[0].pod);
    let id = parse_nodes(&c.nodes_text(i).await)
        .unwrap()
        .into_iter()
        .find(|n| n.is_myself())
        .unwrap()
        .id;
    c.procs[i].kill();
    let conf = c.procs[i].dir.join("nodes.conf");
    let before = std::fs::read_to_string(&conf).unwrap();
    let netns = c.pod_network();
    let (old_ip, new_ip) = (c.procs[i].ip.clone(), netns.ip.to_string());
    cluster_support::update_node(&conf, &new_ip);
    let after = std::fs::read_to_string(&conf).unwrap();
    assert_eq!(before.lines().count(), after.lines().count(), "{after}");
    assert!(before.contains("vars currentEpoch"), "{before}");
    for (b, a) in before.lines().zip(after.lines()) {
        let fields: Vec<&str> = b.split(' ').collect();
        if fields
            .get(2)
            .is_some_and(|f| f.split(',').any(|f| f == "myself"))
        {
            // 5.0: `ip:port@cport`; 7.x may add `,hostname`: only the ip part changes.
            assert!(
                fields[1].starts_with(&format!("{old_ip}:6379@16379")),
                "{b}"
            );
            assert_eq!(
                a,
                b.replacen(&format!("{old_ip}:"), &format!("{new_ip}:"), 1)
            );
        } else {
            assert_eq!(a, b, "only the myself line may change");
        }
    }
    // Runs update-node.sh once more (a no-op now), then the server.
    c.restart_pod_in(i, netns);
    // Redis 5.0 refuses CLUSTER (no `loading` flag in its command table) until its AOF is read.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        match call(&c.t, &c.addr(i), cmd(["CLUSTER", "NODES"])).await {
            Ok(reply) => break reply.text().unwrap(),
            Err(e) if format!("{e}").contains("LOADING") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e:#}"),
        }
    };
    let me = parse_nodes(&text)
        .unwrap()
        .into_iter()
        .find(|n| n.is_myself())
        .unwrap();
    assert_eq!(
        (me.id.as_str(), me.ip.as_str()),
        (id.as_str(), new_ip.as_str())
    );
    let report = wait_healthy(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(report.healthy, "{}", report);
}

/// The quickstart's case: every pod restarted at once and the scheduler put a replica on its
/// master's Kubernetes node, so losing that node would lose the master's slots. `status` says
/// so as a problem; the Redis step re-pairs two replicas (one full sync at a time) and loses no
/// key; a second run leaves the cluster alone.
async fn a_replica_rescheduled_beside_its_master_is_re_paired_and_loses_nothing(redis: Redis) {
    let (mut c, keys) = formed_with_keys(redis).await;
    let report = verify_cluster(&c.t, &c.topo).await;
    let row = report.pods.iter().find(|r| r.role == "replica").unwrap();
    let (replica, master) = (row.name.clone(), row.master.clone().unwrap());
    let master_node = c.topo.pod(&master).unwrap().node.clone();
    let i = c.index_of(&replica);
    c.topo.pods[i].node = master_node.clone();

    let report = verify_cluster(&c.t, &c.topo).await;
    assert!(!report.healthy, "{report}");
    let kinds: Vec<Kind> = report.problems.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, vec![Kind::ReplicasOnMasterNode], "{report}");
    let cause = &report.causes[0];
    assert_eq!(cause.kind, CauseKind::ReplicaSameNode, "{report}");
    assert!(
        cause.remedy.contains("re-pairs replicas"),
        "{}",
        cause.remedy
    );

    let out = ensure_cluster(&c.t, &c.topo, &fast())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(out.report.healthy, "{}", out.report);
    let repoints: Vec<&String> = out
        .actions
        .iter()
        .filter(|a| a.contains("CLUSTER REPLICATE"))
        .collect();
    assert_eq!(repoints.len(), 2, "a swap: {:?}", out.actions);
    assert!(
        repoints[1].starts_with(&format!("{replica}: ")),
        "the replica beside its master moves last, once its master has another: {:?}",
        out.actions
    );
    for row in out.report.pods.iter().filter(|r| r.role == "replica") {
        let m = row.master.as_deref().unwrap();
        assert_ne!(
            c.topo.pod(&row.name).unwrap().node,
            c.topo.pod(m).unwrap().node,
            "{} replicates {m} on its node:\n{}",
            row.name,
            out.report
        );
    }
    assert!(out.report.warnings.is_empty(), "{:?}", out.report.warnings);
    c.assert_no_keys_lost(&keys, KEYS as u64, "after re-pairing replicas")
        .await;
    let again = ensure_cluster(&c.t, &c.topo, &fast()).await.unwrap();
    assert!(again.already_healthy, "{:?}", again.actions);
}
