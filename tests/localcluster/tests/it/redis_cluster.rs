//! A StatefulSet shaped like the first seed's: 6 real redis-server processes under bubblewrap,
//! pre-bound hostPath volumes, update-node.sh, restarts, recreation with a new IP, exec and
//! port-forward through kube-rs, and a clean shutdown.

use crate::common;

use std::time::{Duration, Instant};

use common::{apply_file, eventually, fixture, redis_cmd, redis_ping};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, AttachParams, ListParams};
use localcluster::{LocalCluster, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(60);

async fn running_pods(pods: &Api<Pod>) -> Vec<Pod> {
    pods.list(&ListParams::default().labels("app=redis-cluster"))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

fn ip(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default()
}

fn ready(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| {
        s.phase.as_deref() == Some("Running")
            && s.conditions
                .as_ref()
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
}

async fn pod_ready(pods: &Api<Pod>, name: &str) -> Option<Pod> {
    pods.get(name).await.ok().filter(ready)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_shaped_redis_cluster_runs_for_real() {
    let t0 = Instant::now();
    let cluster = LocalCluster::start(Options {
        nodes: 3,
        ..Default::default()
    })
    .expect("cluster starts");
    let endpoint_ready = t0.elapsed();
    let client = cluster.client().unwrap();
    let t1 = Instant::now();
    apply_file(&client, &fixture("redis-cluster.yaml"), "kubectl-redis")
        .await
        .expect("fixture applies");
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let sets: Api<StatefulSet> = Api::default_namespaced(client.clone());

    // Six pods, Running and Ready, each answering PING on its own address.
    let all = cluster
        .wait_for_ready_pods("default", "app=redis-cluster", 6, LIMIT)
        .await
        .expect("6 ready pods");
    let six_running = t1.elapsed();
    eprintln!("measured: endpoint ready {endpoint_ready:?}; 6 pods Running+Ready {six_running:?} after apply");
    let mut ips: Vec<String> = all.iter().map(ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 6, "every pod has its own address: {ips:?}");
    for p in &all {
        let addr = ip(p);
        assert!(
            addr.starts_with("10."),
            "an address from the pod CIDR: {addr}"
        );
        assert!(redis_ping(&addr, 6379).await, "{addr} answers PING");
        let info = redis_cmd(&addr, 6379, "INFO cluster").await.unwrap();
        assert!(
            info.contains("cluster_enabled:1"),
            "redis.conf from the ConfigMap is used: {info}"
        );
    }
    // Pods are spread over the fake nodes.
    let mut nodes: Vec<String> = all
        .iter()
        .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
        .collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes, cluster.nodes());

    // Claims from the template, bound to the pre-bound PVs.
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(client.clone());
    for i in 0..6 {
        let pvc = pvcs.get(&format!("data-redis-cluster-{i}")).await.unwrap();
        assert_eq!(
            pvc.spec.unwrap().volume_name.as_deref(),
            Some(format!("redis0{}", i + 1).as_str())
        );
        assert_eq!(pvc.status.unwrap().phase.as_deref(), Some("Bound"));
    }

    // update-node.sh ran in every pod with its POD_IP, with /conf (mode 0755) and /data bound.
    for i in 0..6 {
        let p = pods.get(&format!("redis-cluster-{i}")).await.unwrap();
        let data = cluster.host_path(&format!("/redis0{}", i + 1));
        let ran = std::fs::read_to_string(data.join("update-node.ran"))
            .expect("marker written by update-node.sh");
        assert_eq!(ran.lines().last(), Some(ip(&p).as_str()));
        assert!(
            data.join("nodes.conf").exists(),
            "redis wrote nodes.conf under /data"
        );
    }

    // StatefulSet status is current.
    let sts = eventually("sts status", LIMIT, || async {
        let s = sets.get("redis-cluster").await.ok()?;
        let st = s.status.clone()?;
        (st.ready_replicas == Some(6)).then_some(s)
    })
    .await;
    let st = sts.status.unwrap();
    assert_eq!(st.replicas, 6);
    assert_eq!(st.observed_generation, sts.metadata.generation);
    assert_eq!(st.current_revision, st.update_revision);

    // exec through kube-rs (websocket v5/v4): the process sees the pod's mounts and env.
    let mut att = pods
        .exec(
            "redis-cluster-0",
            vec![
                "sh",
                "-c",
                "echo $POD_IP; stat -c %a /conf/update-node.sh; pwd",
            ],
            &AttachParams::default().stderr(false),
        )
        .await
        .expect("exec");
    let mut out = String::new();
    att.stdout()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    let status = att.take_status().unwrap().await.unwrap();
    att.join().await.unwrap();
    let pod0 = pods.get("redis-cluster-0").await.unwrap();
    assert_eq!(out, format!("{}\n755\n/data\n", ip(&pod0)));
    assert_eq!(status.status.as_deref(), Some("Success"));
    // stdin reaches the command; closing it (v5 close signal) ends `cat`.
    let mut att = pods
        .exec(
            "redis-cluster-0",
            vec!["cat"],
            &AttachParams::default().stdin(true).stderr(false),
        )
        .await
        .unwrap();
    let mut stdin = att.stdin().unwrap();
    stdin.write_all(b"through stdin").await.unwrap();
    drop(stdin);
    let mut echoed = String::new();
    att.stdout()
        .unwrap()
        .read_to_string(&mut echoed)
        .await
        .unwrap();
    att.join().await.unwrap();
    assert_eq!(echoed, "through stdin");
    // A failing command reports its exit code in the error channel.
    let mut att = pods
        .exec(
            "redis-cluster-0",
            vec!["sh", "-c", "exit 7"],
            &AttachParams::default(),
        )
        .await
        .unwrap();
    let status = att.take_status().unwrap().await.unwrap();
    att.join().await.unwrap();
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    assert_eq!(
        status.details.unwrap().causes.unwrap()[0]
            .message
            .as_deref(),
        Some("7")
    );

    // port-forward through kube-rs reaches the pod's Redis.
    let mut pf = pods
        .portforward("redis-cluster-1", &[6379])
        .await
        .expect("portforward");
    let mut stream = pf.take_stream(6379).unwrap();
    stream.write_all(b"PING\r\n").await.unwrap();
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
    drop(stream);
    pf.abort();

    // Killing the process: restarted in the same pod (same IP), restartCount goes up.
    let before = pods.get("redis-cluster-2").await.unwrap();
    cluster
        .kill_pod_process("default", "redis-cluster-2")
        .unwrap();
    let after = eventually("container restart", LIMIT, || async {
        let p = pod_ready(&pods, "redis-cluster-2").await?;
        let rc = p.status.as_ref()?.container_statuses.as_ref()?[0].restart_count;
        (rc >= 1).then_some(p)
    })
    .await;
    assert_eq!(ip(&after), ip(&before));
    assert_eq!(after.metadata.uid, before.metadata.uid);
    // Ready once the process runs; it answers once it has loaded its data.
    eventually("PONG after the restart", LIMIT, || async {
        redis_ping(&ip(&after), 6379).await.then_some(())
    })
    .await;

    // Deleting the pod: recreated with a new IP, same claim, intact data directory, and
    // update-node.sh rewrites the "myself" address in nodes.conf.
    let old = pods.get("redis-cluster-3").await.unwrap();
    let old_ip = ip(&old);
    let myid = myself_id(&old_ip).await;
    // Introduce pod 3 to pod 4 so that both learn their own addresses and write them to
    // nodes.conf (a node that has met no one records ":0"). The handshake only completes if
    // cluster-bus connections originate from the pod's own address (its own network namespace).
    let peer_ip = ip(&pods.get("redis-cluster-4").await.unwrap());
    let met = redis_cmd(&old_ip, 6379, &format!("CLUSTER MEET {peer_ip} 6379"))
        .await
        .unwrap();
    assert!(met.starts_with("+OK"), "{met}");
    let data = cluster.host_path("/redis04");
    eventually(
        "nodes.conf records the pod's own address",
        LIMIT,
        || async {
            let conf = std::fs::read_to_string(data.join("nodes.conf")).ok()?;
            let known = redis_cmd(&peer_ip, 6379, "CLUSTER NODES").await?;
            (conf
                .lines()
                .any(|l| l.contains("myself") && l.contains(&format!("{old_ip}:6379")))
                && known.contains(&format!("{old_ip}:6379")))
            .then_some(())
        },
    )
    .await;
    cluster.delete_pod("default", "redis-cluster-3").unwrap();
    let new = eventually("pod recreated", LIMIT, || async {
        let p = pod_ready(&pods, "redis-cluster-3").await?;
        (p.metadata.uid != old.metadata.uid).then_some(p)
    })
    .await;
    let new_ip = ip(&new);
    assert_ne!(new_ip, old_ip, "a recreated pod gets a new IP");
    assert_eq!(myself_id(&new_ip).await, myid, "same node id: data kept");
    let ran = std::fs::read_to_string(data.join("update-node.ran")).unwrap();
    assert_eq!(
        ran.lines().collect::<Vec<_>>(),
        vec![old_ip.as_str(), new_ip.as_str()]
    );
    let nodes_conf = std::fs::read_to_string(data.join("nodes.conf")).unwrap();
    let myself = nodes_conf.lines().find(|l| l.contains("myself")).unwrap();
    assert!(
        myself.contains(&format!("{new_ip}:6379")),
        "nodes.conf myself line updated: {myself}"
    );

    // Every pod at once (the "whole cluster restarted" case): all come back on new addresses.
    let before: Vec<String> = running_pods(&pods).await.iter().map(ip).collect();
    assert_eq!(cluster.kill_all_pods("default").unwrap(), 6);
    let after = eventually("all pods recreated", LIMIT, || async {
        let ps = running_pods(&pods).await;
        (ps.len() == 6 && ps.iter().all(ready) && ps.iter().all(|p| !before.contains(&ip(p))))
            .then_some(ps)
    })
    .await;
    for p in &after {
        assert!(redis_ping(&ip(p), 6379).await);
    }

    // Scale down.
    let patch = serde_json::json!({"spec": {"replicas": 4}});
    sets.patch(
        "redis-cluster",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    eventually("scaled to 4", LIMIT, || async {
        let ps = running_pods(&pods).await;
        (ps.len() == 4).then_some(())
    })
    .await;

    // Shutdown leaves no process, network namespace or link behind.
    let mut pids = cluster.process_ids();
    pids.extend(cluster.control_plane_pids().iter().map(|(_, p)| *p as i32));
    let links_before = links();
    assert!(
        pids.len() >= 4,
        "the cluster's processes are visible: {pids:?}"
    );
    drop(cluster);
    let alive: Vec<i32> = pids
        .iter()
        .copied()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .map(|s| {
                    !s.rsplit_once(')')
                        .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(false)
        })
        .collect();
    assert!(alive.is_empty(), "processes left after shutdown: {alive:?}");
    let left: Vec<String> = links()
        .into_iter()
        .filter(|l| l.starts_with("lc"))
        .collect();
    assert!(
        left.iter().all(|l| !links_before.contains(l)),
        "links left after shutdown: {left:?}"
    );
}

/// The node id on the `myself` line of CLUSTER NODES (Redis 5.0 has no CLUSTER MYID).
async fn myself_id(ip: &str) -> String {
    let nodes = redis_cmd(ip, 6379, "CLUSTER NODES").await.unwrap();
    nodes
        .lines()
        .find(|l| l.contains("myself"))
        .and_then(|l| {
            l.trim_start_matches(|c: char| !c.is_ascii_hexdigit())
                .split(' ')
                .next()
        })
        .unwrap()
        .to_string()
}

/// Network interfaces on this machine.
fn links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The first seed's own initialisation command, through the real kubectl: `redis-cli --cluster
/// create` inside pod 0 with every pod IP. It only succeeds if the pods' cluster-bus handshakes
/// come from their own addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_cluster_create_through_kubectl_exec() {
    let cluster = LocalCluster::start(Options {
        nodes: 3,
        ..Default::default()
    })
    .unwrap();
    let client = cluster.client().unwrap();
    apply_file(&client, &fixture("redis-cluster.yaml"), "kubectl-redis")
        .await
        .unwrap();
    let ready = cluster
        .wait_for_ready_pods("default", "app=redis-cluster", 6, LIMIT)
        .await
        .unwrap();
    let kc = cluster.kubeconfig_path().to_path_buf();
    let mut args = vec![
        "exec".to_string(),
        "redis-cluster-0".into(),
        "--".into(),
        "redis-cli".into(),
        "--cluster".into(),
        "create".into(),
        "--cluster-replicas".into(),
        "1".into(),
        "--cluster-yes".into(),
    ];
    args.extend(ready.iter().map(|p| format!("{}:6379", ip(p))));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::kubectl(&kc, &args).await;
    assert!(
        out.status.success(),
        "{}{}",
        common::text(&out.stdout),
        common::text(&out.stderr)
    );
    assert!(common::text(&out.stdout).contains("[OK] All 16384 slots covered."));
    // `redis-cli cluster info` without -h, as in the seed's success criteria.
    let info = eventually("cluster_state:ok", LIMIT, || async {
        let out = common::kubectl(
            &kc,
            &[
                "exec",
                "redis-cluster-0",
                "--",
                "redis-cli",
                "cluster",
                "info",
            ],
        )
        .await;
        let text = common::text(&out.stdout);
        text.contains("cluster_state:ok").then_some(text)
    })
    .await;
    assert!(info.contains("cluster_known_nodes:6"), "{info}");
    assert!(info.contains("cluster_size:3"), "{info}");
}
