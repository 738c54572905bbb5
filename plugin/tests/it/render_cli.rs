//! `kubectl redis render`, through the built binary: golden output of both seeds, the seed's
//! fields, and a clear file:line:column error for every kind of bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn kubectl_redis() -> Command {
    let mut command = Command::cargo_bin("kubectl-redis").unwrap();
    command.current_dir(repo());
    command
}

fn render(spec: &str, format: &str) -> String {
    let output = kubectl_redis()
        .args(["render", "-f", spec, "-o", format])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "render {spec} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Compares with the golden file; `UPDATE_GOLDEN=1 cargo test` rewrites it after a deliberate change.
fn assert_golden(name: &str, actual: &str) {
    let path = repo().join("plugin/tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    similar_asserts_eq(&expected, actual, name);
}

fn similar_asserts_eq(expected: &str, actual: &str, name: &str) {
    if expected != actual {
        let diff = similar::TextDiff::from_lines(expected, actual)
            .unified_diff()
            .header("golden", "rendered")
            .to_string();
        panic!("{name} differs from its golden file:\n{diff}");
    }
}

#[test]
fn cluster_seed_matches_golden() {
    assert_golden(
        "redis-cluster.yaml",
        &render("specs/redis-cluster.yaml", "yaml"),
    );
}

#[test]
fn single_seed_matches_golden() {
    assert_golden("redis-single.yaml", &render("specs/redis-single", "yaml"));
}

fn rendered_objects(spec: &str) -> Vec<Value> {
    let list: Value = serde_json::from_str(&render(spec, "json")).unwrap();
    assert_eq!(list["kind"], "List");
    list["items"].as_array().unwrap().clone()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

/// Every field the first seed lists (design.md repeats them), checked one by one.
#[test]
fn cluster_seed_fields_are_exact() {
    let objects = rendered_objects("specs/redis-cluster.yaml");
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["PersistentVolume"; 6]
            .into_iter()
            .chain(["ConfigMap", "Service", "StatefulSet"])
            .collect::<Vec<_>>(),
        "apply order"
    );

    let sts = find(&objects, "StatefulSet", "redis-cluster");
    assert_eq!(sts["spec"]["replicas"], 6);
    assert_eq!(sts["metadata"]["labels"]["app"], "redis-cluster");
    assert_eq!(
        sts["spec"]["selector"]["matchLabels"]["app"],
        "redis-cluster"
    );
    assert_eq!(sts["spec"]["serviceName"], "redis-cluster-service");
    let pod = &sts["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["app"], "redis-cluster");
    let containers = pod["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let redis = &containers[0];
    assert_eq!(redis["name"], "redis");
    assert_eq!(redis["image"], "redis:5.0.1-alpine");
    assert_eq!(
        redis["command"],
        serde_json::json!(["/conf/update-node.sh", "redis-server", "/conf/redis.conf"])
    );
    assert_eq!(
        redis["env"],
        serde_json::json!([{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}])
    );
    assert_eq!(
        redis["ports"],
        serde_json::json!([
            {"name": "client", "containerPort": 6379},
            {"name": "gossip", "containerPort": 16379}
        ])
    );
    assert_eq!(
        redis["volumeMounts"],
        serde_json::json!([
            {"name": "conf", "mountPath": "/conf", "readOnly": false},
            {"name": "data", "mountPath": "/data", "readOnly": false}
        ])
    );
    assert_eq!(
        pod["spec"]["volumes"],
        serde_json::json!([{"name": "conf", "configMap": {"name": "redis-cluster-configmap", "defaultMode": 493}}])
    );
    let claims = sts["spec"]["volumeClaimTemplates"].as_array().unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0]["metadata"]["name"], "data");
    assert_eq!(
        claims[0]["spec"]["accessModes"],
        serde_json::json!(["ReadWriteOnce"])
    );
    assert_eq!(claims[0]["spec"]["resources"]["requests"]["storage"], "1Gi");
    let claim_class = &claims[0]["spec"]["storageClassName"];
    assert!(claim_class.is_string(), "the claim names its storage class");

    for (index, pv) in objects
        .iter()
        .filter(|o| o["kind"] == "PersistentVolume")
        .enumerate()
    {
        let number = index + 1;
        assert_eq!(pv["metadata"]["name"], format!("redis0{number}"));
        assert_eq!(
            pv["spec"]["accessModes"],
            serde_json::json!(["ReadWriteOnce"])
        );
        assert_eq!(pv["spec"]["capacity"]["storage"], "1Gi");
        assert_eq!(pv["spec"]["hostPath"]["path"], format!("/redis0{number}"));
        assert_eq!(pv["spec"]["hostPath"]["type"], "DirectoryOrCreate");
        assert_eq!(
            &pv["spec"]["storageClassName"], claim_class,
            "PV and PVC classes match"
        );
        assert_eq!(
            pv["spec"]["claimRef"]["name"],
            format!("data-redis-cluster-{index}")
        );
    }

    let service = find(&objects, "Service", "redis-cluster-service");
    assert_eq!(
        service["spec"]["ports"],
        serde_json::json!([
            {"name": "client", "port": 6379, "targetPort": 6379},
            {"name": "gossip", "port": 16379, "targetPort": 16379}
        ])
    );
    assert_eq!(service["spec"]["selector"]["app"], "redis-cluster");

    let config = find(&objects, "ConfigMap", "redis-cluster-configmap");
    let conf = config["data"]["redis.conf"].as_str().unwrap();
    for line in [
        "cluster-enabled yes",
        "cluster-config-file /data/nodes.conf",
        "cluster-node-timeout 15000",
        "cluster-require-full-coverage no",
        "cluster-migration-barrier 1",
        "appendonly yes",
        "protected-mode no",
    ] {
        assert!(
            conf.lines().any(|l| l == line),
            "redis.conf lacks `{line}`:\n{conf}"
        );
    }
    assert!(config["data"]["update-node.sh"]
        .as_str()
        .unwrap()
        .starts_with("#!/bin/sh\n"));

    for object in &objects {
        let labels = &object["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/managed-by"], "kubectl-redis");
        assert_eq!(labels["app.kubernetes.io/instance"], "redis-cluster");
    }
}

#[test]
fn single_seed_manifests_pass_through_unchanged_but_labelled() {
    let objects = rendered_objects("specs/redis-single");
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "PersistentVolume",
            "PersistentVolumeClaim",
            "ConfigMap",
            "Service",
            "StatefulSet"
        ]
    );
    let sts = find(&objects, "StatefulSet", "redis");
    assert_eq!(sts["spec"]["minReadySeconds"], 10);
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "redis:5.0.4"
    );
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
        "0.1"
    );
    assert_eq!(sts["metadata"]["namespace"], "default");
    let pv = find(&objects, "PersistentVolume", "default-pv");
    assert!(
        pv["metadata"].get("namespace").is_none(),
        "PVs are cluster-scoped"
    );
    assert_eq!(pv["metadata"]["labels"]["type"], "local");
    assert_eq!(
        pv["metadata"]["labels"]["app.kubernetes.io/instance"],
        "redis-single"
    );
}

#[test]
fn stdin_is_read_with_a_dash() {
    let spec = std::fs::read(repo().join("specs/redis-cluster.yaml")).unwrap();
    let output = assert_cmd::Command::from_std(kubectl_redis())
        .args(["render", "-f", "-"])
        .write_stdin(spec)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        render("specs/redis-cluster.yaml", "yaml")
    );
}

#[test]
fn namespace_flag_that_contradicts_the_spec_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("ns.yaml");
    std::fs::write(
        &spec,
        "apiVersion: kubectl-redis.io/v1alpha1\nkind: RedisCluster\nmetadata:\n  name: r\n  namespace: prod\n",
    )
    .unwrap();
    let output = kubectl_redis()
        .args(["-n", "dev", "render", "-f"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ns.yaml:5:1"), "{stderr}");
    assert!(
        stderr.contains("`prod`") && stderr.contains("`dev`"),
        "{stderr}"
    );
}

#[test]
fn default_volume_names_and_paths_differ_between_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("r.yaml");
    std::fs::write(
        &spec,
        "apiVersion: kubectl-redis.io/v1alpha1\nkind: RedisCluster\nmetadata:\n  name: r\n",
    )
    .unwrap();
    let volumes = |namespace: &str| -> Vec<(String, String)> {
        let output = kubectl_redis()
            .args(["-n", namespace, "render", "-o", "json", "-f"])
            .arg(&spec)
            .output()
            .unwrap();
        assert!(output.status.success());
        let list: Value = serde_json::from_slice(&output.stdout).unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "PersistentVolume")
            .map(|pv| {
                assert_eq!(
                    pv["metadata"]["annotations"]["kubectl-redis.io/owner-namespace"], namespace,
                    "a cluster-scoped object names its owner's namespace"
                );
                let name = pv["metadata"]["name"].as_str().unwrap().to_string();
                let path = pv["spec"]["hostPath"]["path"].as_str().unwrap().to_string();
                (name, path)
            })
            .collect()
    };
    let (a, b) = (volumes("a"), volumes("b"));
    assert_eq!(a.len(), 6);
    assert_eq!(
        a[0],
        (
            "a-r-01".to_string(),
            "/var/lib/kubectl-redis/a/r/01".to_string()
        )
    );
    assert_eq!(
        b[5],
        (
            "b-r-06".to_string(),
            "/var/lib/kubectl-redis/b/r/06".to_string()
        )
    );
    assert!(a.iter().all(|v| !b.contains(v)), "{a:?} {b:?}");
}

#[test]
fn secrets_are_masked_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("auth.yaml");
    std::fs::write(
        &spec,
        "apiVersion: kubectl-redis.io/v1alpha1\nkind: RedisCluster\nmetadata:\n  name: r\nspec:\n  redisConfig:\n    requirepass: hunter2\n    masterauth: hunter2\n",
    )
    .unwrap();
    let masked = kubectl_redis()
        .args(["render", "-f"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(masked.status.success());
    let stdout = String::from_utf8(masked.stdout).unwrap();
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(String::from_utf8_lossy(&masked.stderr).contains("--show-secrets"));
    let shown = kubectl_redis()
        .args(["render", "--show-secrets", "-f"])
        .arg(&spec)
        .output()
        .unwrap();
    let stdout = String::from_utf8(shown.stdout).unwrap();
    assert!(stdout.contains("requirepass hunter2") && stdout.contains("masterauth hunter2"));
}

/// `render -f FILE_NAME` of a file with `content`.
fn render_file(file_name: &str, content: &[u8]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name);
    std::fs::write(&path, content).unwrap();
    kubectl_redis()
        .args(["render", "-f"])
        .arg(&path)
        .output()
        .unwrap()
}

/// Bad input: exit 1, and a message naming the file, line, column and field. Never a panic.
fn assert_rejected(file_name: &str, content: &[u8], expected: &[&str]) {
    let output = render_file(file_name, content);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{file_name}: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "{file_name}: nothing rendered on error"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in expected {
        assert!(
            stderr.contains(needle),
            "{file_name}: expected `{needle}` in:\n{stderr}"
        );
    }
}

const HEADER: &str =
    "apiVersion: kubectl-redis.io/v1alpha1\nkind: RedisCluster\nmetadata:\n  name: r\n";

fn cluster_with(spec: &str) -> Vec<u8> {
    format!("{HEADER}spec:\n{spec}").into_bytes()
}

#[test]
fn malformed_yaml() {
    assert_rejected(
        "bad.yaml",
        &cluster_with("  masters: [1\n"),
        &["bad.yaml:7:1", "invalid YAML"],
    );
    assert_rejected(
        "tabs.yaml",
        b"a:\n\tb: 1\n",
        &["tabs.yaml:2:2", "invalid YAML", "tabs"],
    );
}

#[test]
fn empty_file() {
    assert_rejected("empty.yaml", b"", &["empty.yaml", "no YAML documents"]);
    assert_rejected(
        "comments.yaml",
        b"# nothing\n---\n\n",
        &["comments.yaml", "no YAML documents"],
    );
}

#[test]
fn binary_file() {
    let mut bytes = b"kind: RedisCluster\n".to_vec();
    bytes.extend([0u8, 159, 146, 150, 255, 0, 1, 2]);
    assert_rejected(
        "binary.yaml",
        &bytes,
        &["binary.yaml:2:1", "not a text file"],
    );
}

#[test]
fn huge_file() {
    let mut bytes = b"a: \"".to_vec();
    bytes.resize(50 * 1024 * 1024, b'x');
    assert_rejected("huge.yaml", &bytes, &["huge.yaml", "larger than 8 MiB"]);
}

#[test]
fn unknown_fields() {
    assert_rejected(
        "typo.yaml",
        &cluster_with("  mastrs: 3\n"),
        &[
            "typo.yaml:6:3",
            "field `spec.mastrs`",
            "unknown field `mastrs`",
            "`masters`",
        ],
    );
    assert_rejected(
        "svc.yaml",
        b"apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  portz: []\n",
        &["svc.yaml:6:1", "field `spec.portz`", "unknown field"],
    );
}

/// serde would keep the last of two equal keys in a map (labels, data) without a word.
#[test]
fn duplicate_keys() {
    assert_rejected(
        "dupkey.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: \"1\"\n  b: \"2\"\n  a: \"3\"\n",
        &[
            "dupkey.yaml:8:3",
            "field `data.a`",
            "duplicate key: `a` is already written at line 6",
        ],
    );
    assert_rejected(
        "dupfield.yaml",
        &cluster_with("  masters: 3\n  masters: 4\n"),
        &["dupfield.yaml:7:3", "field `spec.masters`", "duplicate key"],
    );
}

#[test]
fn wrong_types() {
    assert_rejected(
        "type.yaml",
        &cluster_with("  masters: three\n"),
        &[
            "type.yaml:6:12",
            "field `spec.masters`",
            "expected an integer",
        ],
    );
    assert_rejected(
        "port.yaml",
        b"apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: abc\n",
        &[
            "port.yaml:7:11",
            "field `spec.ports[0].port`",
            "expected an integer",
        ],
    );
}

#[test]
fn bad_quantities() {
    assert_rejected(
        "size.yaml",
        &cluster_with("  storage:\n    size: 1Gb\n"),
        &[
            "size.yaml:7:5",
            "field `spec.storage.size`",
            "`1Gb` is not a Kubernetes quantity",
        ],
    );
}

#[test]
fn too_few_masters_and_negative_counts() {
    assert_rejected(
        "two.yaml",
        &cluster_with("  masters: 2\n"),
        &["two.yaml:6:3", "field `spec.masters`", "at least 3 masters"],
    );
    assert_rejected(
        "neg.yaml",
        &cluster_with("  replicasPerMaster: -1\n"),
        &[
            "neg.yaml:6:3",
            "field `spec.replicasPerMaster`",
            "must not be negative",
        ],
    );
}

#[test]
fn duplicate_object_names() {
    assert_rejected(
        "dup.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
        &["dup.yaml:9:1", "duplicate object: ConfigMap `a`", "already declared at", "dup.yaml:1"],
    );
    // An object is its kind, namespace and name: the same name of another kind, or in another
    // namespace, is another object; the same three twice is a duplicate.
    let object = |kind: &str, namespace: &str| {
        format!("apiVersion: v1\nkind: {kind}\nmetadata:\n  name: a\n  namespace: {namespace}\n")
    };
    let distinct = [
        object("ConfigMap", "one"),
        object("ConfigMap", "two"),
        object("Secret", "one"),
    ]
    .join("---\n");
    let output = render_file("distinct.yaml", distinct.as_bytes());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_rejected(
        "dup-ns.yaml",
        format!("{distinct}---\n{}", object("Secret", "one")).as_bytes(),
        &[
            "dup-ns.yaml:22:1",
            "duplicate object: Secret `a`",
            "dup-ns.yaml:13",
        ],
    );
}

#[test]
fn invalid_kubernetes_names() {
    assert_rejected(
        "name.yaml",
        b"apiVersion: kubectl-redis.io/v1alpha1\nkind: RedisCluster\nmetadata:\n  name: Redis_Cluster\n",
        &["name.yaml:4:3", "field `metadata.name`", "`Redis_Cluster` is not a valid name"],
    );
    assert_rejected(
        "cm.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: My.Config\n",
        &["cm.yaml:4:1", "field `metadata.name`", "not a valid name"],
    );
}

#[test]
fn unsupported_kinds_and_missing_type_fields() {
    assert_rejected(
        "deploy.yaml",
        b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n",
        &[
            "deploy.yaml:2:1",
            "field `kind`",
            "unsupported kind `Deployment`",
        ],
    );
    assert_rejected(
        "nokind.yaml",
        b"apiVersion: v1\nmetadata: {}\n",
        &["nokind.yaml:1:1", "needs a `kind`"],
    );
}

#[test]
fn missing_file_names_the_path() {
    let output = kubectl_redis()
        .args(["render", "-f", "does/not/exist.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does/not/exist.yaml: cannot read"));
}
