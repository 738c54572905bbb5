//! The Kubernetes-facing parts against the local cluster (tests/localcluster, a real control plane): the
//! topology read from the API, and formation / verification through port-forward and exec.

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::PostParams;
use kube::Api;
use kubectl_redis::cluster::ensure_cluster;
use kubectl_redis::cluster::{
    direct, port_forward, topology_from_kube, verify_cluster, ExecTransport, FormOptions,
};
use serde_json::json;

const REDIS_CONF: &str = "cluster-enabled yes
cluster-config-file /data/nodes.conf
cluster-node-timeout 2000
cluster-require-full-coverage no
cluster-migration-barrier 1
appendonly yes
protected-mode no
dir /data
repl-diskless-sync no
";

const UPDATE_NODE: &str = r#"#!/bin/sh
CLUSTER_CONFIG="/data/nodes.conf"
if [ -f "${CLUSTER_CONFIG}" ]; then
  sed -i -e "/myself/ s/[0-9]\{1,3\}\.[0-9]\{1,3\}\.[0-9]\{1,3\}\.[0-9]\{1,3\}/${POD_IP}/" "${CLUSTER_CONFIG}"
fi
exec "$@"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_through_port_forward_and_verifies_through_exec() {
    let lc = localcluster::LocalCluster::start(localcluster::Options {
        nodes: 3,
        ..Default::default()
    })
    .expect("local cluster");
    let client = lc.client().unwrap();
    let ns = "default";
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "redis-cluster-configmap"},
        "data": {"redis.conf": REDIS_CONF, "update-node.sh": UPDATE_NODE}
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "redis-cluster"},
        "spec": {
            "serviceName": "redis-cluster-service",
            "replicas": 6,
            "selector": {"matchLabels": {"app": "redis-cluster"}},
            "template": {
                "metadata": {"labels": {"app": "redis-cluster"}},
                "spec": {
                    "containers": [{
                        "name": "redis",
                        "image": "redis:5.0.1-alpine",
                        "command": ["/conf/update-node.sh", "redis-server", "/conf/redis.conf"],
                        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                        "ports": [{"containerPort": 6379, "name": "client"}, {"containerPort": 16379, "name": "gossip"}],
                        "volumeMounts": [{"name": "conf", "mountPath": "/conf"}, {"name": "data", "mountPath": "/data"}]
                    }],
                    "volumes": [
                        {"name": "conf", "configMap": {"name": "redis-cluster-configmap", "defaultMode": 493}},
                        {"name": "data", "emptyDir": {}}
                    ]
                }
            }
        }
    }))
    .unwrap();
    Api::<StatefulSet>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sts)
        .await
        .unwrap();
    lc.wait_for_ready_pods(ns, "app=redis-cluster", 6, Duration::from_secs(60))
        .await
        .unwrap();

    let topo = topology_from_kube(client.clone(), ns, "redis-cluster", 3, 1)
        .await
        .unwrap();
    assert_eq!(topo.pods.len(), 6);
    for (i, p) in topo.pods.iter().enumerate() {
        assert_eq!(p.name, format!("redis-cluster-{i}"));
        assert_eq!(p.ordinal, i as u32);
        assert!(p.ip.is_some() && p.node.is_some(), "{p:?}");
        assert_eq!(p.pvc, "data-redis-cluster-".to_string() + &i.to_string());
    }
    let nodes: std::collections::BTreeSet<_> =
        topo.pods.iter().filter_map(|p| p.node.clone()).collect();
    assert!(nodes.len() > 1, "pods all on one node: {nodes:?}");

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let opts = FormOptions {
        timeout: Duration::from_secs(90),
        poll: Duration::from_millis(100),
    };
    let pf = port_forward(pods.clone(), Duration::from_secs(10));
    let out = ensure_cluster(&pf, &topo, &opts)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(out.report.healthy, "{}", out.report);
    assert!(out.report.warnings.is_empty(), "{:?}", out.report.warnings);

    // The same cluster seen through redis-cli exec'd in the pods, and directly.
    let exec = ExecTransport {
        pods: pods.clone(),
        container: Some("redis".into()),
        timeout: Duration::from_secs(20),
    };
    let report = verify_cluster(&exec, &topo).await;
    assert!(report.healthy, "{}", report);
    assert_eq!(
        report.headline,
        "Cluster healthy: 3 masters, 3 replicas, 16384/16384 slots covered"
    );
    let again = ensure_cluster(&exec, &topo, &opts)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(again.already_healthy && again.actions.is_empty());
    let report = verify_cluster(&direct(Duration::from_secs(5)), &topo).await;
    assert!(report.healthy, "{}", report);
}
