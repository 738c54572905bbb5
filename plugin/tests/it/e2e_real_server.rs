//! What only a real API server makes meaningful: protobuf clients, OpenAPI schemas, kubectl's own
//! server-side diff against our plan, co-ownership and list merges by the schema's keys, RBAC,
//! and the seed's own formation command on what `apply --skip-cluster-init` made.

use crate::e2e_support;

use e2e_support::Env;

const CLUSTER: &str = "specs/redis-cluster.yaml";

#[test]
fn kubectl_create_explain_and_server_side_diff_agree_with_plan() {
    let env = Env::start();
    // Protobuf bodies (kubectl create) and the OpenAPI schemas (kubectl explain) are served.
    env.kubectl(&[
        "create",
        "configmap",
        "made-by-create",
        "--from-literal=a=b",
    ]);
    let explain = env.kubectl(&["explain", "statefulset.spec.volumeClaimTemplates"]);
    assert!(explain.contains("PersistentVolumeClaim"), "{explain}");
    let version = env.kubectl(&["version", "-o", "json"]);
    assert!(version.contains("\"gitVersion\": \"v1.37.2\""), "{version}");

    env.apply_objects(CLUSTER);
    // A config change: our plan and kubectl's own server-side diff name the same objects.
    let spec = e2e_support::spec_with(
        &env,
        "changed.yaml",
        &[("cluster-node-timeout: 15000", "cluster-node-timeout: 5000")],
    );
    // The objects only: the Redis step (not run by apply_objects) is not what kubectl diffs.
    let plan = env.run(&[
        "plan",
        "-f",
        &spec,
        "--detailed-exitcode",
        "--skip-cluster-init",
    ]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    let planned: Vec<&str> = plan
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("~ "))
        .collect();
    let rendered = env.ok(&["render", "-f", &spec]);
    let (code, diff, stderr) = env.kubectl_stdin(
        &[
            "diff",
            "--server-side",
            "--field-manager",
            "kubectl-redis",
            "-f",
            "-",
        ],
        &rendered,
    );
    assert_eq!(code, 1, "kubectl diff finds changes: {stderr}");
    let mut diffed: Vec<String> = diff
        .lines()
        .filter_map(|l| l.strip_prefix("diff -u -N "))
        .filter_map(|l| l.split_whitespace().last())
        .filter_map(|p| p.rsplit('/').next())
        .map(|s| s.to_string())
        .collect();
    diffed.sort();
    assert_eq!(
        diffed,
        [
            "apps.v1.StatefulSet.default.redis-cluster",
            "v1.ConfigMap.default.redis-cluster-configmap"
        ],
        "kubectl diff: {diff}"
    );
    assert_eq!(planned.len(), 2, "{}", plan.stdout);
    assert!(
        planned
            .iter()
            .any(|l| l.contains("ConfigMap default/redis-cluster-configmap")),
        "{}",
        plan.stdout
    );
    assert!(
        planned
            .iter()
            .any(|l| l.contains("StatefulSet default/redis-cluster ")),
        "{}",
        plan.stdout
    );
}

#[test]
fn co_ownership_with_the_same_value_is_no_conflict_and_one_port_goes_alone() {
    let env = Env::start();
    env.apply_objects(CLUSTER);
    // Another manager applies the same value of a field we own: co-owned, no conflict.
    env.kubectl_apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: redis-cluster-service\nspec:\n  ports:\n  - name: client\n    port: 6379\n    targetPort: 6379\n",
    );
    let plan = env.run(&[
        "plan",
        "-f",
        CLUSTER,
        "--detailed-exitcode",
        "--skip-cluster-init",
    ]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(!plan.stdout.contains("onflict"), "{}", plan.stdout);

    // A plain-manifest Service: dropping one port removes that port only (ports merge by
    // port+protocol in the schema), the other stays as it was.
    let dir = env.dir.path().join("svc");
    std::fs::create_dir_all(&dir).unwrap();
    let two = "apiVersion: v1\nkind: Service\nmetadata:\n  name: two-ports\nspec:\n  selector:\n    app: x\n  ports:\n  - name: client\n    port: 6379\n  - name: gossip\n    port: 16379\n";
    std::fs::write(dir.join("svc.yaml"), two).unwrap();
    let dir_s = dir.to_str().unwrap();
    env.apply_objects(dir_s);
    std::fs::write(
        dir.join("svc.yaml"),
        two.replace("  - name: gossip\n    port: 16379\n", ""),
    )
    .unwrap();
    let plan = env.ok(&["plan", "-f", dir_s]);
    assert!(
        plan.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{plan}"
    );
    env.apply_objects(dir_s);
    let ports = env.kubectl(&[
        "get",
        "svc",
        "two-ports",
        "-o",
        "jsonpath={.spec.ports[*].name}:{.spec.ports[*].port}",
    ]);
    assert_eq!(ports, "client:6379");
    let selector = env.kubectl(&[
        "get",
        "svc",
        "two-ports",
        "-o",
        "jsonpath={.spec.selector.app}",
    ]);
    assert_eq!(selector, "x");
}

#[test]
fn a_read_only_service_account_gets_a_clear_forbidden_from_plan_and_apply() {
    let env = Env::start();
    env.kubectl(&["create", "serviceaccount", "reader"]);
    env.kubectl(&[
        "create",
        "clusterrolebinding",
        "reader-view",
        "--clusterrole=view",
        "--serviceaccount=default:reader",
    ]);
    let token = env.kubectl(&["create", "token", "reader"]);
    let kubeconfig = env.dir.path().join("reader.kubeconfig");
    std::fs::write(
        &kubeconfig,
        env.cluster.kubeconfig_with_token("reader", &token),
    )
    .unwrap();

    env.cluster.reset_request_counts();
    for args in [
        vec!["plan", "-f", CLUSTER],
        vec![
            "apply",
            "-f",
            CLUSTER,
            "--yes",
            "--skip-cluster-init",
            "--timeout",
            "30s",
        ],
    ] {
        let out = env.run_with_kubeconfig(&kubeconfig, &args);
        assert_eq!(out.code, 1, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains("system:serviceaccount:default:reader"),
            "{args:?} names who was refused: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("forbidden") || out.stderr.contains("Forbidden"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(env.cluster.request_counts().writes, 0);
    assert!(env.owned_objects().is_empty());
}

#[test]
fn the_seeds_own_formation_command_works_on_what_apply_made() {
    let env = Env::start_with(localcluster::Options {
        nodes: 3,
        ..Default::default()
    });
    env.apply_objects(CLUSTER);
    let ips = env.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=redis-cluster",
        "-o",
        "jsonpath={range.items[*]}{.status.podIP}:6379 {end}",
    ]);
    let mut args = vec![
        "exec",
        "-i",
        "redis-cluster-0",
        "--",
        "redis-cli",
        "--cluster",
        "create",
        "--cluster-replicas",
        "1",
    ];
    args.extend(ips.split_whitespace());
    // The seed runs it with -it and answers "yes" at the prompt; here stdin is a pipe.
    let (code, out, err) = env.kubectl_stdin(&args, "yes\n");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    // redis-cli pairs replicas with masters by host address only, so with 3 Kubernetes nodes a
    // replica may land beside its master; status then rightly calls the cluster unhealthy (a
    // node failure would lose that shard) and names that as the cause. Once replication is up,
    // any other cause is a failure.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let (code, report) = env.status_json(&[]);
        let formed =
            report["masters"] == 3 && report["replicas"] == 3 && report["slots_covered"] == 16384;
        let causes = report["causes"].as_array().expect("causes");
        if code == 0 {
            assert!(
                report["headline"]
                    .as_str()
                    .unwrap()
                    .starts_with("Cluster healthy: 3 masters, 3 replicas"),
                "{report}"
            );
            break;
        }
        if formed && !causes.is_empty() && causes.iter().all(|c| c["kind"] == "replica-same-node") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{report}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
