//! kubectl of the cluster's release (built with it) against the local cluster: server-side apply of the second seed's
//! manifests, get, diff, exec, port-forward, the 409 field-manager conflict, and delete.

use crate::common;

use common::{fixture, kubectl, text};
use localcluster::{LocalCluster, Options};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

#[tokio::test]
async fn kubectl_server_side_apply_get_diff_conflict_delete() {
    let cluster = LocalCluster::start(Options::default()).expect("cluster starts");
    let kc = cluster.kubeconfig_path().to_path_buf();
    let seed = fixture("seed2-redis-statefulset.yaml");
    let seed = seed.to_str().unwrap();

    let out = kubectl(&kc, &["apply", "--server-side", "-f", seed]).await;
    assert!(out.status.success(), "apply failed: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for obj in [
        "persistentvolume/default-pv serverside-applied",
        "persistentvolumeclaim/redis serverside-applied",
        "service/redis serverside-applied",
        "statefulset.apps/redis serverside-applied",
        "configmap/redis-config serverside-applied",
    ] {
        assert!(stdout.contains(obj), "missing {obj:?} in {stdout}");
    }

    // Read back what was applied.
    let out = kubectl(
        &kc,
        &[
            "get",
            "statefulset",
            "redis",
            "-o",
            "json",
            "--show-managed-fields",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sts: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(sts["spec"]["serviceName"], "redis");
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "redis:5.0.4"
    );
    let managers: Vec<&str> = sts["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["operation"] == "Apply")
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["kubectl"]);
    let out = kubectl(
        &kc,
        &[
            "get",
            "configmap",
            "redis-config",
            "-o",
            "jsonpath={.data.redis-config}",
        ],
    )
    .await;
    assert!(text(&out.stdout).contains("maxmemory-policy allkeys-lru"));
    // The real PV binder binds asynchronously.
    let bound = common::eventually(
        "the claim binds",
        std::time::Duration::from_secs(60),
        || async {
            let out = kubectl(
                &kc,
                &["get", "pvc", "redis", "-o", "jsonpath={.spec.volumeName}"],
            )
            .await;
            let v = text(&out.stdout);
            (!v.is_empty()).then_some(v)
        },
    )
    .await;
    assert_eq!(bound, "default-pv", "the claim binds to the seed's PV");

    exec_and_port_forward(&common::kubectl_bin(), &kc).await;

    // Unchanged manifests: no diff.
    let out = kubectl(&kc, &["diff", "--server-side", "-f", seed]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "diff: {} {}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Another manager changing a field kubectl owns: 409 with the manager and the field.
    let changed = std::env::temp_dir().join(format!("seed2-changed-{}.yaml", std::process::id()));
    std::fs::write(
        &changed,
        std::fs::read_to_string(seed)
            .unwrap()
            .replace("replicas: 1", "replicas: 3"),
    )
    .unwrap();
    let changed_s = changed.to_str().unwrap();
    let out = kubectl(&kc, &["diff", "--server-side", "-f", changed_s]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "diff sees the change: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("replicas: 3"));

    let out = kubectl(
        &kc,
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "other-manager",
            "-f",
            changed_s,
        ],
    )
    .await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    // The real server also reports `resources.limits.cpu`: it stores `0.1` as `100m`, and
    // another manager applying `0.1` is a different value to it.
    assert!(
        err.contains("conflicts with \"kubectl\"") && err.contains("- .spec.replicas"),
        "unexpected error: {err}"
    );
    let out = kubectl(
        &kc,
        &[
            "get",
            "statefulset",
            "redis",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
    )
    .await;
    assert_eq!(
        text(&out.stdout),
        "1",
        "a conflicting apply changes nothing"
    );

    // --force-conflicts takes the field over.
    let out = kubectl(
        &kc,
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "other-manager",
            "--force-conflicts",
            "-f",
            changed_s,
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = kubectl(
        &kc,
        &[
            "get",
            "statefulset",
            "redis",
            "-o",
            "json",
            "--show-managed-fields",
        ],
    )
    .await;
    let sts: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sts["spec"]["replicas"], 3);
    let owner_of_replicas: Vec<&str> = sts["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["fieldsV1"]["f:spec"].get("f:replicas").is_some())
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(owner_of_replicas, ["other-manager"]);

    let out = kubectl(&kc, &["delete", "-f", seed]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = kubectl(&kc, &["get", "statefulset", "redis"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("NotFound"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_file(&changed);
}

/// The machine's own kubectl (Debian's 1.32 in CI) against the 1.37 server: the version skew an
/// older kubectl would hit, through the same apply, exec, port-forward and logs.
#[tokio::test]
async fn an_older_kubectl_works_against_the_cluster() {
    let system = std::path::PathBuf::from("/usr/bin/kubectl");
    let out = tokio::process::Command::new(&system)
        .args(["version", "--client", "-o", "json"])
        .output()
        .await
        .expect(
            "the machine has kubectl (Debian package kubernetes-client; .ci/setup installs it)",
        );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let minor = v["clientVersion"]["minor"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(
        minor, "37",
        "this test is about an older kubectl than the cluster's"
    );
    let cluster = LocalCluster::start(Options::default()).expect("cluster starts");
    let kc = cluster.kubeconfig_path().to_path_buf();
    let seed = fixture("seed2-redis-statefulset.yaml");
    let out = tokio::process::Command::new(&system)
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["apply", "--server-side", "-f", seed.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl 1.{minor} apply: {}",
        text(&out.stderr)
    );
    exec_and_port_forward(&system, &kc).await;
}

async fn exec_and_port_forward(kubectl_bin: &std::path::Path, kc: &std::path::Path) {
    let kc = kc.to_path_buf();
    let kubectl = |kc: &std::path::Path, args: &[&str]| {
        let mut cmd = tokio::process::Command::new(kubectl_bin);
        cmd.arg("--kubeconfig").arg(kc).args(args);
        async move { cmd.output().await.expect("running kubectl") }
    };
    // kubectl exec (websocket v5): the ConfigMap item key->path mapping reached redis-server.
    let out = common::eventually(
        "redis-0 answers",
        std::time::Duration::from_secs(60),
        || async {
            let out = kubectl(
                &kc,
                &[
                    "exec",
                    "redis-0",
                    "--",
                    "redis-cli",
                    "config",
                    "get",
                    "maxmemory-policy",
                ],
            )
            .await;
            out.status.success().then_some(out)
        },
    )
    .await;
    assert_eq!(text(&out.stdout), "maxmemory-policy\nallkeys-lru\n");
    let out = kubectl(
        &kc,
        &[
            "exec",
            "-i",
            "redis-0",
            "--",
            "sh",
            "-c",
            "cat > /redis-master-data/x; ls /redis-master-data; exit 4",
        ],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(4),
        "exit codes come through: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains('x'));

    // kubectl port-forward (SPDY/3.1 tunnelled in a websocket) to the pod's Redis.
    let mut pf = tokio::process::Command::new(kubectl_bin)
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["port-forward", "pod/redis-0", ":6379"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(pf.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("kubectl port-forward reports its local port")
        .unwrap()
        .unwrap();
    // "Forwarding from 127.0.0.1:PORT -> 6379"
    let port: u16 = first
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected port-forward output {first:?}"));
    for _ in 0..2 {
        // Two connections through one tunnel.
        assert!(
            common::redis_ping("127.0.0.1", port).await,
            "PING through kubectl port-forward"
        );
    }
    let reply = common::redis_cmd("127.0.0.1", port, "CONFIG GET maxmemory")
        .await
        .unwrap();
    assert!(reply.contains("2097152"), "{reply}");
    pf.kill().await.unwrap();

    // kubectl logs reaches the container's output through the kubelet API.
    let out = kubectl(&kc, &["logs", "redis-0", "--tail", "50"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Ready to accept connections"),
        "{}",
        text(&out.stdout)
    );
}
