//! The rendered output, checked by tools outside this crate: `sh` runs the rendered
//! update-node.sh, the independent `kubernetes-validate` checks the objects against the
//! Kubernetes OpenAPI schema, and the real `kubectl` runs the binary as a plugin.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rendered(spec: &str) -> Vec<Value> {
    let output = Command::cargo_bin("kubectl-redis")
        .unwrap()
        .current_dir(repo())
        .args(["render", "-o", "json", "-f", spec])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list: Value = serde_json::from_slice(&output.stdout).unwrap();
    list["items"].as_array().unwrap().clone()
}

fn update_node_script(dir: &Path) -> PathBuf {
    let objects = rendered("specs/redis-cluster.yaml");
    let config = objects.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
    let path = dir.join("update-node.sh");
    std::fs::write(&path, config["data"]["update-node.sh"].as_str().unwrap()).unwrap();
    path
}

/// A Redis 5 nodes.conf after formation, as pod 1 (10.1.0.12) wrote it; Redis 7 adds
/// `,hostname` to the address field, which the script must keep.
const NODES_CONF: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 10.1.0.11:6379@16379 master - 0 1700000000000 1 connected 0-5460
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 10.1.0.12:6379@16379,redis-cluster-1 myself,master - 0 1700000000000 2 connected 5461-10922
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 10.1.0.13:6379@16379 master - 0 1700000000000 3 connected 10923-16383
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 10.1.0.14:6379@16379 slave 07c37dfeb235213a872192d90877d0cd55635b91 0 1700000000000 4 connected
vars currentEpoch 6 lastVoteEpoch 0
";

fn run_script(script: &Path, nodes_conf: &Path, pod_ip: Option<&str>) -> std::process::Output {
    let mut command = Command::new("sh");
    command
        .arg(script)
        .args(["echo", "redis-server", "started"])
        .env("NODES_CONF", nodes_conf)
        .env_remove("POD_IP");
    if let Some(ip) = pod_ip {
        command.env("POD_IP", ip);
    }
    command.output().unwrap()
}

#[test]
fn update_node_rewrites_only_the_myself_address() {
    let dir = tempfile::tempdir().unwrap();
    let script = update_node_script(dir.path());
    let nodes_conf = dir.path().join("nodes.conf");
    std::fs::write(&nodes_conf, NODES_CONF).unwrap();

    let output = run_script(&script, &nodes_conf, Some("10.1.7.99"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "redis-server started\n",
        "execs its arguments"
    );

    let after = std::fs::read_to_string(&nodes_conf).unwrap();
    let before_lines: Vec<&str> = NODES_CONF.lines().collect();
    let after_lines: Vec<&str> = after.lines().collect();
    assert_eq!(before_lines.len(), after_lines.len());
    for (before, after) in before_lines.iter().zip(&after_lines) {
        if before.contains("myself") {
            assert_eq!(
                *after,
                before.replace(
                    "10.1.0.12:6379@16379,redis-cluster-1",
                    "10.1.7.99:6379@16379,redis-cluster-1"
                )
            );
        } else {
            assert_eq!(before, after, "only the myself line may change");
        }
    }
    assert!(
        !dir.path().join("nodes.conf.tmp").exists(),
        "no temp file left behind"
    );
}

#[test]
fn update_node_starts_the_server_without_nodes_conf() {
    let dir = tempfile::tempdir().unwrap();
    let script = update_node_script(dir.path());
    let nodes_conf = dir.path().join("nodes.conf");
    let output = run_script(&script, &nodes_conf, Some("10.1.7.99"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "redis-server started\n"
    );
    assert!(
        !nodes_conf.exists(),
        "the script does not invent a nodes.conf"
    );
}

#[test]
fn update_node_refuses_to_run_without_pod_ip_when_it_has_state() {
    let dir = tempfile::tempdir().unwrap();
    let script = update_node_script(dir.path());
    let nodes_conf = dir.path().join("nodes.conf");
    std::fs::write(&nodes_conf, NODES_CONF).unwrap();
    let output = run_script(&script, &nodes_conf, None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("POD_IP is not set"));
    assert_eq!(
        std::fs::read_to_string(&nodes_conf).unwrap(),
        NODES_CONF,
        "state untouched"
    );
}

/// An independent validator (PyPI `kubernetes-validate`, installed by .ci/run) checks the golden
/// render output of both seeds against the Kubernetes 1.32 OpenAPI schema, strictly.
#[test]
fn rendered_objects_validate_against_the_kubernetes_schema() {
    let golden = repo().join("plugin/tests/golden");
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.32.0"])
        .arg(golden.join("redis-cluster.yaml"))
        .arg(golden.join("redis-single.yaml"))
        .output()
        .expect(
            "kubernetes-validate is not installed: pip install kubernetes-validate (.ci/run does)",
        );
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}");
    assert_eq!(
        report.matches(" passed for resource ").count(),
        14,
        "{report}"
    );
}

/// kubectl finds `kubectl-redis` on PATH and runs it for `kubectl redis ...`.
#[test]
fn kubectl_runs_the_binary_as_a_plugin() {
    let binary = assert_cmd::cargo::cargo_bin("kubectl-redis");
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("kubectl")
        .current_dir(repo())
        .env("PATH", path)
        .args(["redis", "render", "-f", "specs/redis-cluster.yaml"])
        .output()
        .expect("kubectl is not installed (Debian: kubernetes-client)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("name: redis-cluster-service"), "{stdout}");
}
