//! The proxy in front of the real API server: injected errors and latency, request counting,
//! and callers keep their own identity (RBAC judges them, not the proxy).

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube::Error;
use localcluster::{FailRule, LocalCluster, Options};
use serde_json::json;

fn api_err(e: Error) -> kube::core::Status {
    match e {
        Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn client_for(yaml: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(yaml).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn fault_injection_request_counts_and_identities() {
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
        "a get and a dry-run make no write: {counts:?}"
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

    cluster.set_api_latency(Duration::from_millis(300));
    let t = std::time::Instant::now();
    cms.get("c").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    cluster.clear_faults();

    // The control plane and the node agent bypass the proxy: nothing is counted while idle.
    cluster.reset_request_counts();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cluster.request_counts().by_verb.len(), 0);

    // A user with no role binding is refused by the real RBAC through the proxy, by name.
    let nobody = client_for(&cluster.kubeconfig_for("jane", &[]).unwrap()).await;
    let e = api_err(
        Api::<ConfigMap>::default_namespaced(nobody)
            .get("c")
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 403, "{e:?}");
    assert!(e.message.contains("User \"jane\""), "{}", e.message);
}
