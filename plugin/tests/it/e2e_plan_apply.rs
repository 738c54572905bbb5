//! `plan`, `apply` and `destroy` end to end: the real binary against the local test cluster
//! (tests/localcluster: the real Kubernetes control plane, pods run by our node agent).

use crate::e2e_support;

use e2e_support::{spec_with, Env};
use localcluster::FailRule;

const CLUSTER: &str = "specs/redis-cluster.yaml";
const SINGLE: &str = "specs/redis-single";

#[test]
fn cluster_seed_plans_applies_and_replans_clean() {
    let env = Env::start();
    let plan = env.ok(&["plan", "-f", CLUSTER]);
    assert!(
        plan.contains("Plan: 9 to add, 0 to change, 0 to replace, 0 to destroy."),
        "{plan}"
    );
    assert!(
        plan.contains("+ PersistentVolume redis01 will be created"),
        "{plan}"
    );

    env.apply_objects(CLUSTER);
    assert_eq!(env.running_pods("app=redis-cluster"), 6);

    // The objects match; the Redis step has not run (apply_objects skips it), and the plan says
    // so: "No changes" only when apply would do nothing at all.
    let replan = env.run(&["plan", "-f", CLUSTER, "--detailed-exitcode"]);
    assert_eq!(replan.code, 2, "{}{}", replan.stdout, replan.stderr);
    for expected in [
        "The live objects match the spec.",
        "assign 16384 slots to 3 master(s)",
        "Plan: 0 to add, 0 to change, 0 to replace, 0 to destroy. Redis: assign 16384 slots,",
    ] {
        assert!(
            replan.stdout.contains(expected),
            "{expected}\n{}",
            replan.stdout
        );
    }
    let objects_only = env.run(&[
        "plan",
        "-f",
        CLUSTER,
        "--detailed-exitcode",
        "--skip-cluster-init",
    ]);
    assert_eq!(objects_only.code, 0, "{}", objects_only.stderr);
    assert!(
        objects_only.stdout.contains("No changes."),
        "{}",
        objects_only.stdout
    );

    // A second apply converges without writing anything.
    env.cluster.reset_request_counts();
    env.ok(&["apply", "-f", CLUSTER, "--yes", "--skip-cluster-init"]);
    let counts = env.cluster.request_counts();
    assert_eq!(
        counts.writes, 0,
        "a converged apply writes nothing: {counts:?}"
    );
    assert!(
        counts.dry_run_writes > 0,
        "the plan still asked the server: {counts:?}"
    );
}

#[test]
fn single_seed_plans_and_applies_as_given() {
    let env = Env::start();
    let plan = env.ok(&["plan", "-f", SINGLE]);
    assert!(
        plan.contains("Plan: 5 to add, 0 to change, 0 to replace, 0 to destroy."),
        "{plan}"
    );
    env.apply_objects(SINGLE);
    assert_eq!(env.running_pods("app=redis"), 1);
    let replan = env.run(&["plan", "-f", SINGLE, "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "{}{}", replan.stdout, replan.stderr);
}

#[test]
fn image_change_is_one_change_and_storage_change_is_a_refused_replace() {
    let env = Env::start();
    env.apply_objects(CLUSTER);

    let image = spec_with(
        &env,
        "image.yaml",
        &[("redis:5.0.1-alpine", "redis:5.0.2-alpine")],
    );
    let plan = env.run(&["plan", "-f", &image, "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "changes exit 2 under --detailed-exitcode");
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("-        image: redis:5.0.1-alpine"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("+        image: redis:5.0.2-alpine"),
        "{}",
        plan.stdout
    );

    // The storage policy wants 1Gi; a written waiver lets the plan go ahead (and shows up).
    let size = spec_with(
        &env,
        "size.yaml",
        &[
            ("size: 1Gi", "size: 2Gi"),
            (
                "  redisConfig:",
                "  waivers:\n  - rule: storage\n    reason: this cluster needs 2Gi\n  redisConfig:",
            ),
        ],
    );
    let plan = env.ok(&["plan", "-f", &size]);
    assert!(plan.contains("1 to replace"), "{plan}");
    assert!(
        plan.contains("StatefulSet default/redis-cluster must be REPLACED"),
        "{plan}"
    );
    assert!(
        plan.contains("kept with all their data"),
        "the consequence is spelled out: {plan}"
    );
    let refused = env.run(&["apply", "-f", &size, "--yes", "--skip-cluster-init"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("--allow-replace"),
        "{}",
        refused.stderr
    );
    let sts = env.kubectl(&[
        "get",
        "statefulset",
        "redis-cluster",
        "-o",
        "jsonpath={.spec.volumeClaimTemplates[0].spec.resources.requests.storage}",
    ]);
    assert_eq!(sts, "1Gi", "nothing was written");
}

#[test]
fn fields_edited_by_another_manager_show_as_conflict_and_drift() {
    let env = Env::start();
    env.apply_objects(CLUSTER);
    env.kubectl(&[
        "patch",
        "statefulset",
        "redis-cluster",
        "--type",
        "merge",
        "--field-manager",
        "kubectl-edit",
        "-p",
        r#"{"spec":{"replicas":7,"template":{"spec":{"terminationGracePeriodSeconds":5}}}}"#,
    ]);
    let plan = env.ok(&["plan", "-f", CLUSTER]);
    assert!(
        plan.contains(r#"conflict: .spec.replicas is owned by field manager "kubectl-edit""#),
        "{plan}"
    );
    assert!(plan.contains(r#"drift: "kubectl-edit" (Update)"#), "{plan}");
    assert!(
        plan.contains(".spec.template.spec.terminationGracePeriodSeconds"),
        "{plan}"
    );

    let refused = env.run(&["apply", "-f", CLUSTER, "--yes", "--skip-cluster-init"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("--force-conflicts"),
        "{}",
        refused.stderr
    );
    env.ok(&[
        "apply",
        "-f",
        CLUSTER,
        "--yes",
        "--skip-cluster-init",
        "--force-conflicts",
        "--timeout",
        "60s",
    ]);
    let replicas = env.kubectl(&[
        "get",
        "statefulset",
        "redis-cluster",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas, "6");
}

#[test]
fn a_stale_saved_plan_is_refused() {
    let env = Env::start();
    let plan_file = env.dir.path().join("cluster.plan");
    let plan_file = plan_file.to_str().unwrap();
    env.ok(&["plan", "-f", CLUSTER, "--out", plan_file]);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(plan_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "plan files may hold secrets");
    env.ok(&[
        "apply",
        plan_file,
        "--yes",
        "--skip-cluster-init",
        "--timeout",
        "60s",
    ]);

    env.ok(&["plan", "-f", CLUSTER, "--out", plan_file]);
    env.kubectl(&[
        "label",
        "configmap",
        "redis-cluster-configmap",
        "touched=yes",
    ]);
    let stale = env.run(&["apply", plan_file, "--yes", "--skip-cluster-init"]);
    assert_eq!(stale.code, 1);
    assert!(
        stale.stderr.contains("the saved plan is stale"),
        "{}",
        stale.stderr
    );
    assert!(
        stale
            .stderr
            .contains("ConfigMap default/redis-cluster-configmap"),
        "{}",
        stale.stderr
    );
}

#[test]
fn secrets_are_masked_in_plans_unless_asked() {
    let env = Env::start();
    let spec = spec_with(
        &env,
        "auth.yaml",
        &[(
            "cluster-node-timeout: 15000",
            "cluster-node-timeout: 15000\n    requirepass: hunter2",
        )],
    );
    let plan = env.ok(&["plan", "-f", &spec]);
    assert!(!plan.contains("hunter2"), "{plan}");
    assert!(
        plan.contains("requirepass (sensitive value hidden"),
        "{plan}"
    );
    let json = env.ok(&["plan", "-f", &spec, "-o", "json"]);
    assert!(!json.contains("hunter2"), "{json}");
    let shown = env.ok(&["plan", "-f", &spec, "--show-secrets"]);
    assert!(shown.contains("requirepass hunter2"), "{shown}");
}

#[test]
fn plan_json_lists_json_patch_operations() {
    let env = Env::start();
    let json = env.ok(&["plan", "-f", CLUSTER, "-o", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(plan["summary"]["add"], 9);
    let objects = plan["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 9);
    let sts = objects.iter().find(|o| o["kind"] == "StatefulSet").unwrap();
    assert_eq!(sts["action"], "add");
    assert!(
        sts["patch"]
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"] == "/spec"),
        "{sts}"
    );
}

#[test]
fn server_errors_are_retried_and_forbidden_names_the_missing_permission() {
    let env = Env::start();
    env.cluster.fail_requests(
        FailRule::new(500)
            .verb("get")
            .resource("statefulsets")
            .times(2),
    );
    let plan = env.run(&["plan", "-f", CLUSTER]);
    assert_eq!(plan.code, 0, "two 500s are retried: {}", plan.stderr);
    assert!(plan.stdout.contains("Plan: 9 to add"));

    env.cluster.clear_faults();
    env.cluster
        .fail_requests(FailRule::new(403).verb("patch").resource("statefulsets"));
    let forbidden = env.run(&["plan", "-f", CLUSTER]);
    assert_eq!(forbidden.code, 1);
    assert!(
        forbidden.stderr.contains("RBAC forbids it (403 Forbidden)")
            && forbidden
                .stderr
                .contains("`patch` on `statefulsets` in namespace `default`"),
        "{}",
        forbidden.stderr
    );
    assert!(!forbidden.stderr.contains("panicked"));
}

#[test]
fn unreachable_api_server_is_a_clear_error() {
    let env = Env::start();
    let kubeconfig = env.dir.path().join("dead.kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster:\n    server: http://127.0.0.1:9\ncontexts:\n- name: dead\n  context:\n    cluster: dead\n    user: dead\ncurrent-context: dead\nusers:\n- name: dead\n  user: {}\n",
    )
    .unwrap();
    let out = env.run_with_kubeconfig(&kubeconfig, &["plan", "-f", CLUSTER]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("the API server is unreachable"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("dead.kubeconfig"),
        "names the kubeconfig: {}",
        out.stderr
    );
}

#[test]
fn removed_objects_are_pruned_and_foreign_ones_left_alone() {
    let env = Env::start();
    let dir = env.dir.path().join("single");
    std::fs::create_dir(&dir).unwrap();
    for file in std::fs::read_dir(env.repo().join(SINGLE)).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, dir.join(file.file_name().unwrap())).unwrap();
    }
    let spec = dir.to_str().unwrap();
    env.apply_objects(spec);
    // An object nobody told kubectl-redis about, sharing the spec's naming.
    env.kubectl_apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: redis-extra\n  namespace: default\ndata:\n  a: b\n");

    std::fs::remove_file(dir.join("redis-cm.yaml")).unwrap();
    let plan = env.ok(&["plan", "-f", spec]);
    assert!(
        plan.contains("Plan: 0 to add, 0 to change, 0 to replace, 1 to destroy."),
        "{plan}"
    );
    assert!(
        plan.contains("- ConfigMap default/redis-config will be destroyed"),
        "{plan}"
    );
    assert!(
        !plan.contains("redis-extra"),
        "unlabelled objects are not members: {plan}"
    );
    env.apply_objects(spec);
    assert!(
        env.kubectl_status(&["get", "configmap", "redis-config"]) != 0,
        "pruned"
    );
    assert_eq!(
        env.kubectl_status(&["get", "configmap", "redis-extra"]),
        0,
        "left alone"
    );

    // Volumes are kept unless asked.
    std::fs::remove_file(dir.join("02-persistent-volume-claim.yaml")).unwrap();
    let plan = env.ok(&["plan", "-f", spec]);
    assert!(
        plan.contains("PersistentVolumeClaim default/redis is no longer in the spec but is KEPT"),
        "{plan}"
    );
    assert!(plan.contains("0 to destroy"), "{plan}");
}

#[test]
fn destroy_keeps_volumes_and_leaves_foreign_objects() {
    let env = Env::start();
    env.apply_objects(SINGLE);
    // Replace the Service with one the plugin does not own, under the same name.
    env.kubectl(&["delete", "service", "redis"]);
    env.kubectl_apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: redis\n  namespace: default\nspec:\n  ports:\n  - port: 6379\n",
    );

    let out = env.ok(&["destroy", "-f", SINGLE, "--yes"]);
    assert!(
        out.contains("Service default/redis is not managed by kubectl-redis"),
        "{out}"
    );
    assert!(
        out.contains("PersistentVolume default-pv has reclaimPolicy Retain"),
        "{out}"
    );
    assert_eq!(
        env.kubectl_status(&["get", "service", "redis"]),
        0,
        "foreign Service left alone"
    );
    assert!(env.kubectl_status(&["get", "statefulset", "redis"]) != 0);
    assert_eq!(env.running_pods("app=redis"), 0, "pods are gone");
    assert_eq!(
        env.kubectl_status(&["get", "pvc", "redis"]),
        0,
        "claim kept"
    );
    assert_eq!(
        env.kubectl_status(&["get", "pv", "default-pv"]),
        0,
        "volume kept"
    );

    env.ok(&["destroy", "-f", SINGLE, "--yes", "--delete-volumes"]);
    assert_eq!(
        env.owned_objects(),
        "",
        "nothing owned by the plugin is left"
    );
}

#[test]
fn a_config_change_rolls_the_pods() {
    let env = Env::start();
    env.apply_objects(CLUSTER);
    let revision = |env: &Env| {
        env.kubectl(&[
            "get",
            "statefulset",
            "redis-cluster",
            "-o",
            "jsonpath={.status.updateRevision}",
        ])
    };
    let before = revision(&env);
    let spec = spec_with(
        &env,
        "timeout.yaml",
        &[("cluster-node-timeout: 15000", "cluster-node-timeout: 5000")],
    );
    let plan = env.ok(&["plan", "-f", &spec]);
    assert!(
        plan.contains("Plan: 0 to add, 2 to change"),
        "the ConfigMap and the pod template: {plan}"
    );
    assert!(
        plan.contains("redis.kubectl-redis.io/config-checksum"),
        "{plan}"
    );
    env.apply_objects(&spec);
    assert_ne!(
        revision(&env),
        before,
        "a new pod-template revision rolled out"
    );
    assert_eq!(env.running_pods("app=redis-cluster"), 6);
}

#[test]
fn an_apply_killed_midway_converges_on_the_next_run() {
    let env = Env::start();
    // Slow every API call down so that the kill lands after some writes and before the rest.
    env.cluster
        .set_api_latency(std::time::Duration::from_millis(150));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-redis"))
        .current_dir(env.repo())
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .args(["apply", "-f", CLUSTER, "--yes", "--skip-cluster-init"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while env.cluster.request_counts().writes == 0 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let written = env.cluster.request_counts().writes;
    assert!(written < 9, "killed midway, after {written} of 9 writes");
    env.cluster.set_api_latency(std::time::Duration::ZERO);

    env.apply_objects(CLUSTER);
    assert_eq!(env.running_pods("app=redis-cluster"), 6);
    let replan = env.run(&[
        "plan",
        "-f",
        CLUSTER,
        "--detailed-exitcode",
        "--skip-cluster-init",
    ]);
    assert_eq!(replan.code, 0, "{}{}", replan.stdout, replan.stderr);
}

#[test]
fn kubeconfig_flags_and_variable_work_like_kubectl() {
    let env = Env::start();
    // Several files in KUBECONFIG, one of them missing: kubectl skips it, and so do we.
    let missing = env.dir.path().join("missing.kubeconfig");
    let list = format!("{}:{}", missing.display(), env.kubeconfig.display());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-redis"))
        .current_dir(env.repo())
        .env("KUBECONFIG", list)
        .args(["plan", "-f", CLUSTER, "--color", "never"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let wrong = env.run(&["--context", "nope", "plan", "-f", CLUSTER]);
    assert_eq!(wrong.code, 1);
    assert!(
        wrong
            .stderr
            .contains("--context `nope` is not in the kubeconfig"),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains("it has: localcluster"),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains(env.kubeconfig.to_str().unwrap()),
        "names the file: {}",
        wrong.stderr
    );

    let contradicting = env.run(&[
        "-n",
        "other",
        "plan",
        "-f",
        &spec_with(
            &env,
            "ns.yaml",
            &[(
                "name: redis-cluster\n",
                "name: redis-cluster\n  namespace: prod\n",
            )],
        ),
    ]);
    assert_eq!(contradicting.code, 1);
    assert!(
        contradicting
            .stderr
            .contains("the spec says namespace `prod` but -n says `other`"),
        "{}",
        contradicting.stderr
    );
}

#[test]
fn deny_findings_block_plan_and_apply_before_any_write() {
    let env = Env::start();
    let spec = spec_with(
        &env,
        "latest.yaml",
        &[("redis:5.0.1-alpine", "redis:latest")],
    );
    env.cluster.reset_request_counts();
    let plan = env.run(&["plan", "-f", &spec]);
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    assert!(plan.stderr.contains("image-pinned"), "{}", plan.stderr);
    let apply = env.run(&["apply", "-f", &spec, "--yes"]);
    assert_eq!(apply.code, 2, "{}", apply.stderr);
    let counts = env.cluster.request_counts();
    assert_eq!(
        counts.writes + counts.dry_run_writes,
        0,
        "policies run before the cluster is touched: {counts:?}"
    );
}
