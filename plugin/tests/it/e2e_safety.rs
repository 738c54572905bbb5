//! The unhappy paths of `plan`, `apply` and `destroy`, end to end through the binary against the
//! local test cluster: objects that exist before the spec does, objects of another instance, and
//! a user who may edit one namespace only.

use crate::e2e_support;

use e2e_support::{Env, Output};

const CLUSTER: &str = "specs/redis-cluster.yaml";

/// Writes `files` (name, text) into a new directory `name` of the test's temporary directory:
/// a plain-manifest spec whose instance name is `name`.
fn manifest_dir(env: &Env, name: &str, files: &[(&str, &str)]) -> String {
    let dir = env.dir.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir.to_str().unwrap().to_string()
}

fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.code, code,
        "{what}: exit {}\n{}\n{}",
        out.code, out.stdout, out.stderr
    );
}

/// A plain-manifest spec named `namespace` that declares Namespace `namespace` and a ConfigMap
/// `ours` in it.
fn namespace_spec(env: &Env, namespace: &str) -> String {
    manifest_dir(
        env,
        namespace,
        &[
            ("namespace.yaml", &namespace_doc(namespace)),
            ("config.yaml", &config_doc(namespace)),
        ],
    )
}

fn namespace_doc(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}

fn config_doc(namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ours\n  namespace: {namespace}\ndata:\n  a: b\n"
    )
}

#[test]
fn an_existing_namespace_is_adopted_only_when_asked_and_never_destroyed() {
    let env = Env::start();
    env.kubectl(&["create", "namespace", "team"]);
    env.kubectl(&[
        "-n",
        "team",
        "create",
        "configmap",
        "theirs",
        "--from-literal=x=y",
    ]);
    let spec = namespace_spec(&env, "team");

    let plan = env.run(&["plan", "-f", &spec]);
    assert_code(&plan, 0, "plan");
    assert!(
        plan.stdout.contains(
            "Namespace team exists, not managed by kubectl-redis: will be ADOPTED (apply needs --adopt)"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("Plan: 1 to adopt, 1 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{}",
        plan.stdout
    );

    let refused = env.run(&["apply", "-f", &spec, "--yes"]);
    assert_code(&refused, 1, "apply without --adopt");
    assert!(
        refused.stderr.contains(
            "refusing to adopt Namespace team: they exist and kubectl-redis does not manage them"
        ) && refused.stderr.contains("Re-run with --adopt"),
        "{}",
        refused.stderr
    );
    assert_ne!(
        env.kubectl_status(&["-n", "team", "get", "configmap", "ours"]),
        0,
        "nothing was written"
    );

    env.ok(&["apply", "-f", &spec, "--yes", "--adopt"]);
    let replan = env.run(&["plan", "-f", &spec, "--detailed-exitcode"]);
    assert_code(&replan, 0, "an adopted namespace is ours: no changes");

    let destroyed = env.run(&["destroy", "-f", &spec, "--yes"]);
    assert_code(&destroyed, 0, "destroy");
    assert!(
        destroyed.stdout.contains(
            "Namespace team is kept: kubectl-redis did not create it (it existed and was adopted)"
        ),
        "{}",
        destroyed.stdout
    );
    assert_eq!(env.kubectl_status(&["get", "namespace", "team"]), 0, "kept");
    assert_eq!(
        env.kubectl_status(&["-n", "team", "get", "configmap", "theirs"]),
        0,
        "the object the spec never mentioned is untouched"
    );
    assert_ne!(
        env.kubectl_status(&["-n", "team", "get", "configmap", "ours"]),
        0,
        "the spec's own object is destroyed"
    );
}

#[test]
fn a_namespace_the_spec_created_is_deleted_only_when_nothing_else_lives_in_it() {
    let env = Env::start();
    let spec = namespace_spec(&env, "made");
    let plan = env.run(&["plan", "-f", &spec]);
    assert_code(&plan, 0, "plan");
    assert!(
        plan.stdout.contains("+ Namespace made will be created"),
        "{}",
        plan.stdout
    );
    env.ok(&["apply", "-f", &spec, "--yes"]);
    let replan = env.run(&["plan", "-f", &spec, "--detailed-exitcode"]);
    assert_code(&replan, 0, "the created-by mark is kept by the next plan");

    // Someone else puts an object into the namespace kubectl-redis created.
    env.kubectl(&[
        "-n",
        "made",
        "create",
        "configmap",
        "theirs",
        "--from-literal=x=y",
    ]);
    let destroyed = env.run(&["destroy", "-f", &spec, "--yes"]);
    assert_code(&destroyed, 0, "destroy");
    assert!(
        destroyed.stdout.contains(
            "Namespace made is kept: it holds 1 object(s) that are not part of this spec \
             (ConfigMap made/theirs)"
        ),
        "{}",
        destroyed.stdout
    );
    assert_eq!(
        env.kubectl_status(&["-n", "made", "get", "configmap", "theirs"]),
        0,
        "the foreign object survives"
    );

    // Once it is empty again, the namespace the spec created goes with the spec.
    env.kubectl(&["-n", "made", "delete", "configmap", "theirs"]);
    env.ok(&["apply", "-f", &spec, "--yes"]);
    let destroyed = env.run(&["destroy", "-f", &spec, "--yes", "--timeout", "120s"]);
    assert_code(&destroyed, 0, "destroy of an empty namespace");
    assert!(
        destroyed
            .stdout
            .contains("Namespace made will be destroyed"),
        "{}",
        destroyed.stdout
    );
    assert_ne!(
        env.kubectl_status(&["get", "namespace", "made"]),
        0,
        "deleted"
    );
}

#[test]
fn the_same_spec_in_another_namespace_cannot_take_the_first_ones_volumes() {
    let env = Env::start();
    env.apply_objects(CLUSTER);
    env.kubectl(&["create", "namespace", "b"]);
    for command in ["plan", "apply"] {
        let mut args = vec![command, "-f", CLUSTER, "-n", "b"];
        if command == "apply" {
            args.extend(["--yes", "--adopt", "--force-conflicts"]);
        }
        let out = env.run(&args);
        assert_code(&out, 1, command);
        for expected in [
            "6 object(s) of this spec already belong to another kubectl-redis instance:",
            "PersistentVolume redis01 (specs/redis-cluster.yaml:",
            ") belongs to kubectl-redis instance `redis-cluster` in namespace `default`",
            "This spec is `redis-cluster` in namespace `b`",
            "Nothing was written",
        ] {
            assert!(out.stderr.contains(expected), "{expected}\n{}", out.stderr);
        }
    }
    let claims = env.kubectl(&[
        "get",
        "pv",
        "-o",
        "jsonpath={range .items[*]}{.spec.claimRef.namespace} {end}",
    ]);
    assert_eq!(
        claims.split_whitespace().collect::<Vec<_>>(),
        vec!["default"; 6],
        "every volume still belongs to the first cluster"
    );
    assert_eq!(
        env.kubectl(&["-n", "b", "get", "all,cm", "-o", "name"]),
        "configmap/kube-root-ca.crt",
        "nothing was created in b"
    );
}

/// A kubeconfig for the new ServiceAccount `namespace/account` (its namespace created too), with
/// a token of its own: the account has no permission until a test binds one.
fn service_account_kubeconfig(env: &Env, namespace: &str, account: &str) -> std::path::PathBuf {
    env.kubectl(&["create", "namespace", namespace]);
    env.kubectl(&["-n", namespace, "create", "serviceaccount", account]);
    let token = env.kubectl(&["-n", namespace, "create", "token", account, "--duration=2h"]);
    let admin: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&env.kubeconfig).unwrap()).unwrap();
    let cluster = admin["clusters"][0]["cluster"].clone();
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "local", "user": account, "namespace": namespace}}],
        "current-context": account,
    });
    let path = env.dir.path().join(format!("{account}-kubeconfig"));
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

/// `team/tenant`, bound to the built-in ClusterRole `edit` in namespace `team` only: the usual
/// tenant of a shared cluster.
fn tenant_kubeconfig(env: &Env) -> std::path::PathBuf {
    let path = service_account_kubeconfig(env, "team", "tenant");
    env.kubectl(&[
        "-n",
        "team",
        "create",
        "rolebinding",
        "tenant-edit",
        "--clusterrole=edit",
        "--serviceaccount=team:tenant",
    ]);
    path
}

#[test]
fn the_roles_render_rbac_prints_are_all_a_fresh_service_account_needs() {
    let env = Env::start();
    let deployer = service_account_kubeconfig(&env, "team", "deployer");
    let as_deployer = |args: &[&str]| env.run_with_kubeconfig(&deployer, args);
    let out = as_deployer(&["plan", "-f", CLUSTER]);
    assert_code(&out, 1, "no permission yet");

    let roles = env.ok(&["render", "-f", CLUSTER, "-n", "team", "--rbac"]);
    assert!(
        roles.contains("kind: Role") && roles.contains("kind: ClusterRole"),
        "{roles}"
    );
    // First without port-forward: the Redis step cannot reach the pods, and says why at once
    // instead of waiting for --timeout.
    let as_json = env.ok(&[
        "render", "-f", CLUSTER, "-n", "team", "--rbac", "-o", "json",
    ]);
    let mut list: serde_json::Value = serde_json::from_str(&as_json).unwrap();
    list["items"][0]["rules"]
        .as_array_mut()
        .unwrap()
        .retain(|rule| !rule["resources"].to_string().contains("pods/portforward"));
    let (code, _, stderr) = env.kubectl_stdin(&["apply", "-f", "-"], &list.to_string());
    assert_eq!(code, 0, "{stderr}");
    env.kubectl(&[
        "-n",
        "team",
        "create",
        "rolebinding",
        "deployer",
        "--role=kubectl-redis-redis-cluster",
        "--serviceaccount=team:deployer",
    ]);
    env.kubectl(&[
        "create",
        "clusterrolebinding",
        "deployer",
        "--clusterrole=kubectl-redis-redis-cluster",
        "--serviceaccount=team:deployer",
    ]);

    let plan = as_deployer(&["plan", "-f", CLUSTER, "--detailed-exitcode"]);
    assert_code(&plan, 2, "plan");
    let apply = as_deployer(&["apply", "-f", CLUSTER, "--yes", "--timeout", "600s"]);
    assert_code(&apply, 1, "apply without port-forward");
    assert!(
        apply
            .stderr
            .contains("RBAC forbids `pods/portforward` on pod redis-cluster-")
            && !apply.stderr.contains("deadline"),
        "{}",
        apply.stderr
    );

    let (code, _, stderr) = env.kubectl_stdin(&["apply", "-f", "-"], &roles);
    assert_eq!(code, 0, "{stderr}");
    let apply = as_deployer(&["apply", "-f", CLUSTER, "--yes", "--timeout", "180s"]);
    assert_code(&apply, 0, "apply, Redis step included");
    assert!(
        apply
            .stdout
            .contains("Cluster healthy: 3 masters, 3 replicas, 16384/16384 slots covered"),
        "{}",
        apply.stdout
    );
    assert_code(&as_deployer(&["status"]), 0, "status");
    let destroy = as_deployer(&[
        "destroy",
        "-f",
        CLUSTER,
        "--yes",
        "--delete-volumes",
        "--timeout",
        "120s",
    ]);
    assert_code(&destroy, 0, "destroy");
    assert_eq!(env.owned_objects(), "", "everything the spec made is gone");
}

#[test]
fn a_user_who_may_edit_one_namespace_plans_applies_checks_and_destroys_there() {
    let env = Env::start();
    let tenant = tenant_kubeconfig(&env);
    let as_tenant = |args: &[&str]| env.run_with_kubeconfig(&tenant, args);

    // PersistentVolumes are cluster-scoped: the seed's spec declares them, and the tenant is told
    // at plan time which permission that takes, and where.
    let out = as_tenant(&["plan", "-f", CLUSTER]);
    assert_code(&out, 1, "plan of a spec with PersistentVolumes");
    assert!(
        out.stderr.contains("RBAC forbids it (403 Forbidden)")
            && out.stderr.contains("on `persistentvolumes` cluster-wide")
            && out.stderr.contains("ClusterRole"),
        "{}",
        out.stderr
    );

    // The cluster's admin provides the volumes (unmanaged, pre-bound to the tenant's claims);
    // the tenant's spec leaves provisioning to the storage class.
    let spec = e2e_support::spec_with(
        &env,
        "tenant.yaml",
        &[
            ("name: redis-cluster", "name: tenant-redis"),
            (
                "    hostPathVolumes:\n      namePrefix: redis\n      pathPrefix: /redis\n      reclaimPolicy: Retain\n",
                "    hostPathVolumes: null\n",
            ),
        ],
    );
    let admin_volumes = e2e_support::spec_with(
        &env,
        "admin-volumes.yaml",
        &[
            ("name: redis-cluster", "name: tenant-redis"),
            ("namePrefix: redis", "namePrefix: tenant-pv-"),
            ("pathPrefix: /redis", "pathPrefix: /tenant-pv-"),
        ],
    );
    let rendered = env.ok(&["render", "-f", &admin_volumes, "-n", "team", "-o", "json"]);
    let rendered: serde_json::Value = serde_json::from_str(&rendered).unwrap();
    let volumes: Vec<serde_json::Value> = rendered["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "PersistentVolume")
        .cloned()
        .map(|mut pv| {
            let metadata = pv["metadata"].as_object_mut().unwrap();
            metadata.remove("labels");
            metadata.remove("annotations");
            pv
        })
        .collect();
    assert_eq!(volumes.len(), 6);
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": volumes});
    let (code, _, stderr) = env.kubectl_stdin(&["apply", "-f", "-"], &list.to_string());
    assert_eq!(code, 0, "{stderr}");

    let plan = as_tenant(&["plan", "-f", &spec, "--detailed-exitcode"]);
    assert_code(&plan, 2, "the tenant's plan");
    assert!(
        plan.stdout
            .contains("Plan: 3 to add, 0 to change, 0 to replace, 0 to destroy."),
        "{}",
        plan.stdout
    );
    let apply = as_tenant(&["apply", "-f", &spec, "--yes", "--timeout", "180s"]);
    assert_code(&apply, 0, "the tenant's apply, Redis step included");
    assert!(
        apply
            .stdout
            .contains("Cluster healthy: 3 masters, 3 replicas, 16384/16384 slots covered"),
        "{}",
        apply.stdout
    );
    let status = as_tenant(&["status"]);
    assert_code(&status, 0, "the tenant's status");
    assert!(
        status.stdout.contains("Cluster healthy"),
        "{}",
        status.stdout
    );
    let destroy = as_tenant(&["destroy", "-f", &spec, "--yes", "--timeout", "120s"]);
    assert_code(&destroy, 0, "the tenant's destroy");
    assert_ne!(
        env.kubectl_status(&["-n", "team", "get", "statefulset", "tenant-redis"]),
        0,
        "destroyed"
    );
}

#[test]
fn a_password_redis_asks_for_ends_the_wait_at_once_with_the_pod_and_the_cause() {
    let env = Env::start();
    let spec = e2e_support::spec_with(
        &env,
        "password.yaml",
        &[(
            "cluster-node-timeout: 15000",
            "cluster-node-timeout: 15000\n    requirepass: not-so-secret",
        )],
    );
    // A long --timeout: the error must come from Redis's answer, not from the deadline.
    let out = env.run(&["apply", "-f", &spec, "--yes", "--timeout", "600s"]);
    assert_code(&out, 1, "apply against a password-protected Redis");
    for expected in [
        "refusing to form the Redis Cluster: redis-cluster-",
        "NOAUTH Authentication required.",
        "Redis asks for a password (`requirepass`) and kubectl-redis sent none",
    ] {
        assert!(out.stderr.contains(expected), "{expected}\n{}", out.stderr);
    }
    assert!(!out.stderr.contains("deadline"), "{}", out.stderr);
}
