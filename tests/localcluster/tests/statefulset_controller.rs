//! The StatefulSet controller with plain processes: ordered creation, claims from templates,
//! dynamic-less binding by class/capacity/mode, rolling updates and scaling.

mod common;

use std::time::Duration;

use common::eventually;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use localcluster::{LocalCluster, Options};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);

fn sts(replicas: i32, marker: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "w"},
        "spec": {
            "replicas": replicas, "serviceName": "w",
            "selector": {"matchLabels": {"app": "w"}},
            "template": {"metadata": {"labels": {"app": "w"}}, "spec": {
                "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"],
                    "env": [{"name": "MARKER", "value": marker}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "storageClassName": "fast", "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}}]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_creation_binding_rolling_update_and_scaling() {
    let cluster = LocalCluster::start(Options {
        nodes: 2,
        ..Default::default()
    })
    .unwrap();
    let client = cluster.client().unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let sets: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(client.clone());
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let ap = PatchParams::apply("test");

    // Volumes: a too-small one, one of another class, and three that fit.
    for (name, size, class) in [
        ("small", "500Mi", "fast"),
        ("slow", "5Gi", "slow"),
        ("a", "1Gi", "fast"),
        ("b", "2Gi", "fast"),
        ("c", "2Gi", "fast"),
    ] {
        let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"storageClassName": class, "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": format!("/vol-{name}")}}});
        pvs.patch(name, &ap, &Patch::Apply(&pv)).await.unwrap();
    }

    let mut added = pods
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    sets.patch("w", &ap, &Patch::Apply(sts(3, "one")))
        .await
        .unwrap();
    // OrderedReady: pods appear one after another.
    let mut order = Vec::new();
    while order.len() < 3 {
        match tokio::time::timeout(LIMIT, added.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(p)))) => order.push(p.metadata.name.unwrap()),
            Ok(Ok(Some(_))) => {}
            other => panic!("watch ended: {other:?}"),
        }
    }
    assert_eq!(order, ["w-0", "w-1", "w-2"]);
    eventually("3 ready replicas", LIMIT, || async {
        let s = sets.get("w").await.ok()?;
        (s.status?.ready_replicas == Some(3)).then_some(())
    })
    .await;
    // Each claim got a volume of its class with enough capacity; the small and slow ones stay free.
    let mut bound: Vec<String> = Vec::new();
    for i in 0..3 {
        let c = pvcs.get(&format!("data-w-{i}")).await.unwrap();
        bound.push(c.spec.unwrap().volume_name.unwrap());
    }
    bound.sort();
    assert_eq!(bound, ["a", "b", "c"]);
    assert_eq!(
        pvs.get("small")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Available")
    );
    // Pods spread over the fake nodes by ordinal.
    let p1 = pods.get("w-1").await.unwrap();
    assert_eq!(
        p1.spec.unwrap().node_name.as_deref(),
        Some(cluster.nodes()[1].as_str())
    );

    // Rolling update: a template change replaces every pod, and the revisions converge.
    let before = sets.get("w").await.unwrap().status.unwrap().update_revision;
    sets.patch("w", &ap, &Patch::Apply(sts(3, "two")))
        .await
        .unwrap();
    let st = eventually("rolled out", LIMIT, || async {
        let s = sets.get("w").await.ok()?;
        let generation = s.metadata.generation;
        let st = s.status?;
        (st.observed_generation == generation
            && st.updated_replicas == Some(3)
            && st.ready_replicas == Some(3)
            && st.current_revision == st.update_revision)
            .then_some(st)
    })
    .await;
    assert_ne!(st.update_revision, before);
    for p in pods
        .list(&ListParams::default().labels("app=w"))
        .await
        .unwrap()
    {
        let env = &p.spec.unwrap().containers[0].env.clone().unwrap()[0];
        assert_eq!(env.value.as_deref(), Some("two"));
    }

    // Scale down removes the highest ordinals; claims stay (retention policy Retain).
    sets.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    eventually("scaled to 1", LIMIT, || async {
        let l = pods
            .list(&ListParams::default().labels("app=w"))
            .await
            .ok()?;
        let names: Vec<String> = l
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        (names == ["w-0"]).then_some(())
    })
    .await;
    assert!(pvcs.get("data-w-2").await.is_ok());

    // Deleting the StatefulSet garbage-collects its pods.
    sets.delete("w", &Default::default()).await.unwrap();
    eventually("pods collected", LIMIT, || async {
        let l = pods
            .list(&ListParams::default().labels("app=w"))
            .await
            .ok()?;
        l.items.is_empty().then_some(())
    })
    .await;
}
