//! The API server's semantics through kube-rs: CRUD, server-side apply (ownership, list
//! merging, co-ownership, conflicts, force), dry-run, optimistic concurrency, immutable fields,
//! watch, Status errors, fault injection and request counting.

mod common;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::Error;
use localcluster::{FailRule, LocalCluster, Options};
use serde_json::{json, Value};

fn sts(replicas: i32, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas, "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                // A pod that never becomes ready keeps the controller from starting others.
                "containers": [{"name": "main", "image": image, "command": ["sleep", "3600"],
                    "ports": [{"containerPort": 8080}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }
    })
}

fn api_err(e: Error) -> kube::core::Status {
    match e {
        Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn server_side_apply_semantics() {
    let cluster = LocalCluster::start(Options::default()).unwrap();
    let client = cluster.client().unwrap();
    let sets: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let pp = |m: &str| PatchParams::apply(m);

    // Apply creates; managedFields record the manager with operation Apply.
    let s = sets
        .patch("web", &pp("alpha"), &Patch::Apply(sts(2, "busybox")))
        .await
        .unwrap();
    let mf = s.metadata.managed_fields.clone().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("alpha"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    let fields = serde_json::to_value(&mf[0].fields_v1).unwrap();
    assert!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"main\"}"]
            ["f:image"]
            .is_object()
    );

    // A fieldManager is required.
    let e = api_err(
        sets.patch(
            "web",
            &PatchParams::default(),
            &Patch::Apply(sts(2, "busybox")),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));

    // Re-applying the same config changes nothing (the controller may have written status).
    let again = sets
        .patch("web", &pp("alpha"), &Patch::Apply(sts(2, "busybox")))
        .await
        .unwrap();
    assert_eq!(again.metadata.generation, s.metadata.generation);
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "same"}, "data": {"a": "b"}});
    let first = cms
        .patch("same", &pp("alpha"), &Patch::Apply(&cm))
        .await
        .unwrap();
    let second = cms
        .patch("same", &pp("alpha"), &Patch::Apply(&cm))
        .await
        .unwrap();
    assert_eq!(
        first.metadata.resource_version,
        second.metadata.resource_version
    );

    // A second manager setting the same value co-owns the field: no conflict.
    let same = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    sets.patch("web", &pp("beta"), &Patch::Apply(&same))
        .await
        .expect("same value: co-owned");

    // A different value conflicts: 409 in the real server's shape.
    let other = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"}, "spec": {"replicas": 5}});
    let e = api_err(
        sets.patch("web", &pp("gamma"), &Patch::Apply(&other))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(
        e.message.starts_with("Apply failed with 2 conflicts: "),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains("conflict with \"alpha\": .spec.replicas"),
        "{}",
        e.message
    );
    let causes = e.details.as_ref().expect("details").causes.clone();
    assert_eq!(causes.len(), 2);
    assert!(causes
        .iter()
        .all(|c| c.field == ".spec.replicas" && c.reason == "FieldManagerConflict"));
    assert!(causes
        .iter()
        .any(|c| c.message == "conflict with \"alpha\""));

    // force takes the field from both.
    let forced = sets
        .patch("web", &pp("gamma").force(), &Patch::Apply(&other))
        .await
        .unwrap();
    assert_eq!(forced.spec.as_ref().unwrap().replicas, Some(5));
    let owners: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter(|m| {
            serde_json::to_value(&m.fields_v1).unwrap()["f:spec"]
                .get("f:replicas")
                .is_some()
        })
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(owners, ["gamma"]);

    // Lists merge by key: a second manager adding a container keeps alpha's container.
    let sidecar = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox", "command": ["sleep", "1"]}]}}}});
    let merged = sets
        .patch("web", &pp("delta"), &Patch::Apply(&sidecar))
        .await
        .unwrap();
    let names: Vec<String> = merged
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["main", "sidecar"]);

    // A manager dropping a field it alone owned removes it.
    let without_labels = {
        let mut v = sts(2, "busybox");
        v["metadata"].as_object_mut().unwrap().remove("labels");
        v["spec"]["replicas"] = json!(5);
        v
    };
    let s = sets
        .patch("web", &pp("alpha").force(), &Patch::Apply(&without_labels))
        .await
        .unwrap();
    assert!(!s.metadata.labels.unwrap_or_default().contains_key("app"));

    // dryRun=All changes nothing.
    let generation = s.metadata.generation;
    let dry = sets
        .patch(
            "web",
            &pp("alpha").force().dry_run(),
            &Patch::Apply(&sts(9, "busybox")),
        )
        .await
        .unwrap();
    assert_eq!(dry.spec.unwrap().replicas, Some(9));
    let live = sets.get("web").await.unwrap();
    assert_eq!(live.spec.unwrap().replicas, Some(5));
    assert_eq!(live.metadata.generation, generation);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "dry"}, "data": {"a": "b"}})).unwrap();
    cms.create(
        &PostParams {
            dry_run: true,
            ..Default::default()
        },
        &cm,
    )
    .await
    .unwrap();
    assert_eq!(api_err(cms.get("dry").await.unwrap_err()).code, 404);

    // Immutable fields: 422 Invalid.
    let mut bad = sts(5, "busybox");
    bad["spec"]["serviceName"] = json!("elsewhere");
    let e = api_err(
        sets.patch("web", &pp("alpha").force(), &Patch::Apply(&bad))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message
            .contains("spec: Forbidden: updates to statefulset spec for fields other than"),
        "{}",
        e.message
    );
    let mut bad = sts(5, "busybox");
    bad["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] =
        json!("2Gi");
    let e = api_err(
        sets.patch("web", &pp("alpha").force(), &Patch::Apply(&bad))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/a"}}});
    pvs.patch("pv1", &pp("alpha"), &Patch::Apply(&pv))
        .await
        .unwrap();
    let mut pv2 = pv.clone();
    pv2["spec"]["hostPath"]["path"] = json!("/b");
    let e = api_err(
        pvs.patch("pv1", &pp("alpha"), &Patch::Apply(&pv2))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message.contains("spec.persistentvolumesource: Forbidden"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn crud_concurrency_watch_and_errors() {
    let cluster = LocalCluster::start(Options::default()).unwrap();
    let client = cluster.client().unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c1"}, "data": {"k": "v"}})).unwrap();

    let mut events = cms
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let e = api_err(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));

    // Replace with a stale resourceVersion: 409 Conflict.
    let mut fresh = created.clone();
    fresh.data = Some([("k".to_string(), "v2".to_string())].into());
    let updated = cms
        .replace("c1", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    let e = api_err(
        cms.replace("c1", &PostParams::default(), &fresh)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(e.message.contains("the object has been modified"));

    // Merge, JSON and strategic patches.
    cms.patch(
        "c1",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"m": "1"}})),
    )
    .await
    .unwrap();
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "add", "path": "/data/j", "value": "2"}])).unwrap();
    cms.patch("c1", &PatchParams::default(), &Patch::Json::<()>(jp))
        .await
        .unwrap();
    let s = cms
        .patch(
            "c1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"data": {"k": null}})),
        )
        .await
        .unwrap();
    let data = s.data.unwrap();
    assert_eq!(data.keys().cloned().collect::<Vec<_>>(), ["j", "m"]);

    cms.delete("c1", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_err(cms.get("c1").await.unwrap_err()).code, 404);

    // The watch saw every change, in order.
    let mut kinds = Vec::new();
    while kinds.len() < 6 {
        match tokio::time::timeout(Duration::from_secs(10), events.try_next()).await {
            Ok(Ok(Some(ev))) => kinds.push(match ev {
                WatchEvent::Added(_) => "ADDED",
                WatchEvent::Modified(_) => "MODIFIED",
                WatchEvent::Deleted(_) => "DELETED",
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => panic!("watch error {e:?}"),
            }),
            other => panic!("watch ended early: {other:?} after {kinds:?}"),
        }
    }
    assert_eq!(
        kinds,
        ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]
    );

    // Bad requests get Status bodies, never a hang or a crash.
    let bad = client
        .request_text(
            http::Request::post("/api/v1/namespaces/default/configmaps")
                .header("Content-Type", "application/json")
                .body(b"{not json".to_vec())
                .unwrap(),
        )
        .await;
    assert_eq!(api_err(bad.unwrap_err()).code, 400);
    for (path, body) in [
        (
            "/api/v1/namespaces/default/services",
            r#"{"metadata":{"name":"s"},"spec":"oops"}"#,
        ),
        (
            "/api/v1/namespaces/default/services",
            r#"{"metadata":{"name":"s"},"spec":{"ports":[7]}}"#,
        ),
        (
            "/api/v1/namespaces/default/configmaps",
            r#"{"metadata":"oops"}"#,
        ),
        (
            "/api/v1/namespaces/default/secrets",
            r#"{"metadata":{"name":"x"},"data":{"k":"not base64!"}}"#,
        ),
        ("/api/v1/namespaces/default/configmaps", "[]"),
    ] {
        let r = client
            .request_text(
                http::Request::post(path)
                    .header("Content-Type", "application/json")
                    .body(body.as_bytes().to_vec())
                    .unwrap(),
            )
            .await;
        let e = api_err(r.unwrap_err());
        assert_eq!(
            (e.code, e.reason.as_str()),
            (400, "BadRequest"),
            "{body}: {}",
            e.message
        );
    }
    let nameless = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"}, "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"image": "x"}]}}}});
    let sets: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let e = api_err(
        sets.create(
            &PostParams::default(),
            &serde_json::from_value(nameless).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message
            .contains("spec.template.spec.containers[0].name: Required value"),
        "{}",
        e.message
    );
    // The same shapes through patches: still 400, and the server keeps serving.
    let e = api_err(
        cms.patch(
            "c2",
            &PatchParams::apply("t"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 400);
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let e = api_err(
        cms.patch(
            "c1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": 5, "data": [1]})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 400);
    let missing_ns: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    let e = api_err(
        missing_ns
            .create(&PostParams::default(), &cm)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    let e = api_err(
        client
            .request_text(
                http::Request::get("/api/v1/namespaces/default/widgets")
                    .body(vec![])
                    .unwrap(),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 404);
}

#[tokio::test]
async fn fault_injection_and_request_counts() {
    let cluster = LocalCluster::start(Options::default()).unwrap();
    let client = cluster.client().unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});

    cms.patch("c", &PatchParams::apply("t"), &Patch::Apply(&cm))
        .await
        .unwrap();
    cluster.reset_request_counts();
    cms.get("c").await.unwrap();
    cms.patch("c", &PatchParams::apply("t").dry_run(), &Patch::Apply(&cm))
        .await
        .unwrap();
    let counts = cluster.request_counts();
    assert_eq!(
        counts.writes, 0,
        "a get and a dry-run make no write call: {counts:?}"
    );
    assert_eq!(counts.dry_run_writes, 1);
    assert_eq!(counts.verb("get"), 1);
    cms.patch("c", &PatchParams::apply("t"), &Patch::Apply(&cm))
        .await
        .unwrap();
    assert_eq!(cluster.request_counts().writes, 1);
    assert_eq!(cluster.request_counts().verb("patch"), 2);

    // 500 for the next patch only, then 403 for any get of this name.
    cluster.fail_requests(
        FailRule::new(500)
            .verb("patch")
            .resource("configmaps")
            .times(1),
    );
    let e = api_err(
        cms.patch("c", &PatchParams::apply("t"), &Patch::Apply(&cm))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    cms.patch("c", &PatchParams::apply("t"), &Patch::Apply(&cm))
        .await
        .expect("the rule was used up");
    cluster.fail_requests(FailRule::new(403).verb("get").name("c"));
    let e = api_err(cms.get("c").await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    let failed = cluster
        .requests()
        .into_iter()
        .filter(|r| r.status >= 400)
        .count();
    assert_eq!(failed, 2);
    cluster.clear_faults();
    cms.get("c").await.unwrap();

    // Latency applies to every call.
    cluster.set_api_latency(Duration::from_millis(300));
    let t = std::time::Instant::now();
    cms.get("c").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    cluster.clear_faults();

    // Controllers and the kubelet write to the store directly: only client requests count.
    cluster.reset_request_counts();
    assert_eq!(cluster.request_counts().by_verb.len(), 0);
}
