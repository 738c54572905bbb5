//! Bad input never panics and never destroys: through the built binary, a change the API server
//! refuses for a reason a replace would not cure stops at plan time with nothing written, an
//! absurd `--timeout` is a flag error, and a spec with more Redis nodes than Redis Cluster
//! supports is refused at load.

use crate::e2e_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use e2e_support::Env;

fn kubectl_redis(args: &[&str]) -> (i32, String, String) {
    let output = Command::cargo_bin("kubectl-redis")
        .unwrap()
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap())
        .args(["--color", "never"])
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    )
}

/// The single-Redis seed's manifests, copied under the same directory name (so the same
/// instance), with the StatefulSet's pod template relabelled: its selector no longer matches.
/// The `selectors` rule, which would catch that offline, is waived so the server gets to judge.
fn relabelled_single_seed(env: &Env) -> String {
    let from = env.repo().join("specs/redis-single");
    let dir = env.dir.path().join("redis-single");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        let mut text = std::fs::read_to_string(entry.path()).unwrap();
        if entry.file_name() == "03-redis.yaml" {
            let waiver = "  annotations:\n    policy.kubectl-redis.io/waive-selectors: testing \
                          what the API server says\n";
            for (from, to) in [
                (
                    "    metadata:\n      labels:\n        app: redis\n",
                    "    metadata:\n      labels:\n        app: redis-canary\n".to_string(),
                ),
                (
                    "metadata:\n  name: redis\nspec:\n  selector:",
                    format!("metadata:\n  name: redis\n{waiver}spec:\n  selector:"),
                ),
                (
                    "metadata:\n  name: redis\n  labels:",
                    format!("metadata:\n  name: redis\n{waiver}  labels:"),
                ),
            ] {
                assert!(text.contains(from), "the seed has {from:?}");
                text = text.replace(from, &to);
            }
        }
        std::fs::write(dir.join(entry.file_name()), text).unwrap();
    }
    dir.to_str().unwrap().to_string()
}

#[test]
fn an_invalid_change_is_a_plan_error_and_apply_writes_nothing() {
    let env = Env::start();
    env.apply_objects("specs/redis-single");
    let spec = relabelled_single_seed(&env);

    let plan = env.run(&["plan", "-f", &spec]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(!plan.stdout.contains("REPLACED"), "{}", plan.stdout);
    for expected in [
        "StatefulSet default/redis (",
        "03-redis.yaml:",
        "field `spec.template.metadata.labels`",
        "`selector` does not match template `labels`",
        "replacing it would not cure",
        "Nothing was written",
    ] {
        assert!(
            plan.stderr.contains(expected),
            "{expected}: {}",
            plan.stderr
        );
    }

    // Even allowed to replace, apply stops before its first write: the StatefulSet survives.
    env.cluster.reset_request_counts();
    let apply = env.run(&[
        "apply",
        "-f",
        &spec,
        "--yes",
        "--allow-replace",
        "--skip-cluster-init",
        "--timeout",
        "60s",
    ]);
    assert_eq!(apply.code, 1, "{}{}", apply.stdout, apply.stderr);
    let counts = env.cluster.request_counts();
    assert_eq!(counts.writes, 0, "nothing is written: {counts:?}");
    assert_eq!(
        env.kubectl(&[
            "get",
            "statefulset",
            "redis",
            "-o",
            "jsonpath={.spec.template.metadata.labels.app}"
        ]),
        "redis"
    );
    assert_eq!(env.running_pods("app=redis"), 1);
}

#[test]
fn a_timeout_beyond_a_day_is_a_flag_error_not_a_panic() {
    for command in ["apply", "destroy"] {
        for timeout in ["18446744073709551615s", "18446744073709551615", "25h"] {
            let (code, _, stderr) = kubectl_redis(&[
                command,
                "-f",
                "specs/redis-cluster.yaml",
                "--timeout",
                timeout,
            ]);
            assert_eq!(code, 1, "{command} --timeout {timeout}: {stderr}");
            assert!(
                stderr.contains("--timeout is at most 24h"),
                "{command} --timeout {timeout}: {stderr}"
            );
            assert!(!stderr.contains("overflow"), "{stderr}");
        }
    }
    let (code, _, stderr) = kubectl_redis(&[
        "apply",
        "-f",
        "specs/redis-cluster.yaml",
        "--timeout",
        "5 fortnights",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is not a duration"), "{stderr}");
    assert!(stderr.contains("--timeout"), "{stderr}");
}

#[test]
fn more_redis_nodes_than_redis_cluster_supports_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("huge.yaml");
    std::fs::write(
        &spec,
        "apiVersion: kubectl-redis.io/v1alpha1\nkind: RedisCluster\nmetadata:\n  name: huge\n\
         spec:\n  masters: 1000\n  replicasPerMaster: 100\n",
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    for command in ["render", "check", "plan"] {
        let started = Instant::now();
        let (code, _, stderr) = kubectl_redis(&[command, "-f", spec]);
        assert_eq!(code, 1, "{command}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{spec}:7:1: field `spec.replicasPerMaster`: 1000 masters with 100 replica(s) \
                 each make 101000 Redis nodes; a Redis Cluster has at most 1000"
            )),
            "{command}: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "refused before rendering: {:?}",
            started.elapsed()
        );
    }

    // At the bound it renders: 500 masters with one replica each.
    std::fs::write(
        dir.path().join("big.yaml"),
        "apiVersion: kubectl-redis.io/v1alpha1\nkind: RedisCluster\nmetadata:\n  name: big\n\
         spec:\n  masters: 500\n",
    )
    .unwrap();
    let big = dir.path().join("big.yaml");
    let (code, stdout, stderr) = kubectl_redis(&["render", "-f", big.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("replicas: 1000"), "{stdout}");

    let statefulset = dir.path().join("sts.yaml");
    std::fs::write(
        &statefulset,
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: r\nspec:\n  replicas: 5000\n  \
         selector:\n    matchLabels: {app: r}\n  serviceName: r\n  template:\n    metadata:\n      \
         labels: {app: r}\n    spec:\n      containers: [{name: r, image: 'redis:7.2'}]\n",
    )
    .unwrap();
    let (code, _, stderr) = kubectl_redis(&["render", "-f", statefulset.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(":6:1: field `spec.replicas`: 5000 replicas are more Redis nodes than the 1000 supported"),
        "{stderr}"
    );
}

/// `kubectl-redis ARGS` with `stdin` piped in, no cluster: (exit code, stdout, stderr).
fn kubectl_redis_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    let output = assert_cmd::Command::cargo_bin("kubectl-redis")
        .unwrap()
        .args([
            "--color",
            "never",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ])
        .args(args)
        .env_remove("KUBECONFIG")
        .write_stdin(stdin)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    )
}

#[test]
fn manifests_from_stdin_need_an_instance_name_before_anything_is_read_from_a_cluster() {
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n";
    for command in ["plan", "apply", "destroy"] {
        let mut args = vec![command, "-f", "-"];
        if command != "plan" {
            args.push("--yes");
        }
        let (code, _, stderr) = kubectl_redis_stdin(&args, manifest);
        assert_eq!(code, 1, "{command}: {stderr}");
        assert!(
            stderr.contains(
                "plain manifests read from stdin need an instance name: pass --instance NAME"
            ),
            "{command}: {stderr}"
        );
        // With a name, loading goes on: the next error is the missing kubeconfig.
        args.extend(["--instance", "piped"]);
        let (code, _, stderr) = kubectl_redis_stdin(&args, manifest);
        assert_eq!(code, 1, "{command}: {stderr}");
        assert!(!stderr.contains("instance name"), "{command}: {stderr}");
        assert!(
            stderr.contains("/nonexistent/kubeconfig"),
            "{command}: {stderr}"
        );
    }
    let (code, _, stderr) =
        kubectl_redis_stdin(&["plan", "-f", "-", "--instance", "Not_A_Name"], manifest);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("`Not_A_Name` is not an instance name"),
        "{stderr}"
    );
    // A RedisCluster names itself; a contradicting --instance is an error, not a silent pick.
    let cluster =
        "apiVersion: kubectl-redis.io/v1alpha1\nkind: RedisCluster\nmetadata:\n  name: r\n";
    let (code, _, stderr) =
        kubectl_redis_stdin(&["plan", "-f", "-", "--instance", "other"], cluster);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("`other` contradicts the RedisCluster's metadata.name `r`"),
        "{stderr}"
    );
}
