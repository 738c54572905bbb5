//! Rolls of the Redis pods, end to end: `apply` replaces the pods of a new pod template itself
//! (OnDelete), replicas first, a CLUSTER FAILOVER before each master; against a client that
//! writes all the time, a Redis 5.0 → 7.0 upgrade, and a roll killed midway.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use serde_json::Value;

use crate::e2e_support::writer::Writers;
use crate::e2e_support::{block_on, keys, spec_with, Env};

const CLUSTER: &str = "specs/redis-cluster.yaml";
const SELECTOR: &str = "app=redis-cluster";
const NODE_TIMEOUT: &str = "cluster-node-timeout: 15000";

fn form(env: &Env) {
    env.ok(&["apply", "-f", CLUSTER, "--yes", "--timeout", "120s"]);
}

/// The seed's spec with one more redis.conf directive: a new pod template.
fn config_change(env: &Env, name: &str, directive: &str) -> String {
    let with = format!("{NODE_TIMEOUT}\n    {directive}");
    spec_with(env, name, &[(NODE_TIMEOUT, &with)])
}

/// The roll's steps from `apply -o json` lines, as people read them.
fn roll_steps(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| match l["event"].as_str()? {
            "rollReplaced" => Some(format!("replaced {} ({})", l["pod"], l["role"])),
            "rollFailedOver" => Some(format!("failover {} -> {}", l["master"], l["replica"])),
            _ => None,
        })
        .map(|s| s.replace('"', ""))
        .collect()
}

/// Replicas first, then per master a failover followed by its replacement.
fn assert_safe_order(steps: &[String], replaced: usize) {
    let replicas = replaced / 2;
    assert_eq!(steps.len(), replaced + replicas, "{steps:#?}");
    for step in &steps[..replicas] {
        assert!(step.ends_with("(replica)"), "replicas go first: {steps:#?}");
    }
    for pair in steps[replicas..].chunks(2) {
        let master = pair[0]
            .strip_prefix("failover ")
            .and_then(|s| s.split(" -> ").next())
            .unwrap_or_else(|| panic!("a failover before each master: {steps:#?}"));
        assert_eq!(
            pair[1],
            format!("replaced {master} (former-master)"),
            "{steps:#?}"
        );
    }
}

/// Every pod on the StatefulSet's update revision.
fn assert_all_updated(env: &Env) {
    let update = env.kubectl(&[
        "get",
        "sts",
        "redis-cluster",
        "-o",
        "jsonpath={.status.updateRevision}",
    ]);
    let revisions = env.kubectl(&[
        "get",
        "pods",
        "-l",
        SELECTOR,
        "-o",
        "jsonpath={.items[*].metadata.labels.controller-revision-hash}",
    ]);
    let revisions: Vec<&str> = revisions.split_whitespace().collect();
    assert_eq!(revisions.len(), 6, "{revisions:?}");
    assert!(
        revisions.iter().all(|r| *r == update),
        "{revisions:?} vs {update}"
    );
}

/// `status` until it says healthy (a plain RollingUpdate leaves the cluster to heal on its
/// own); false if it does not within `limit`.
fn wait_healthy(env: &Env, limit: Duration) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if env.run(&["status", "--via", "direct"]).code == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

/// The same kind of change as a plain StatefulSet `RollingUpdate`: the rendered ConfigMap and
/// StatefulSet, with the strategy patched, applied by kubectl; then the controller's roll.
fn rolling_update(env: &Env, spec: &str) {
    let rendered: Value = serde_json::from_str(&env.ok(&["render", "-f", spec, "-o", "json"]))
        .expect("render -o json is JSON");
    let mut items: Vec<Value> = rendered["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("ConfigMap" | "StatefulSet")))
        .cloned()
        .collect();
    for item in items.iter_mut().filter(|o| o["kind"] == "StatefulSet") {
        item["spec"]["updateStrategy"] = serde_json::json!({"type": "RollingUpdate"});
    }
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let args = [
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager",
        "kubectl-redis",
        "-f",
        "-",
    ];
    let (code, _, stderr) = env.kubectl_stdin(&args, &list.to_string());
    assert_eq!(code, 0, "kubectl apply: {stderr}");
    env.kubectl(&[
        "rollout",
        "status",
        "statefulset/redis-cluster",
        "--timeout=300s",
    ]);
}

#[test]
fn a_config_change_rolls_with_no_acknowledged_write_lost() {
    let env = Env::start();
    form(&env);
    let changed = config_change(&env, "slowlog-256.yaml", "slowlog-max-len: 256");

    // The plan names every replacement and failover, in order, and counts the roll.
    let plan = env.run(&["plan", "-f", &changed, "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    for expected in [
        "roll 6 pod(s) onto the new revision, one at a time, with 3 CLUSTER FAILOVER(s)",
        "1. replace redis-cluster-5 (replica)",
        "4. fail over redis-cluster-2 to redis-cluster-5 (CLUSTER FAILOVER on redis-cluster-5)",
        "5. replace redis-cluster-2 (former master, a replica after the failover)",
        "Redis: roll 6 pod(s) (3 failover(s)).",
    ] {
        assert!(
            plan.stdout.contains(expected),
            "{expected}\n{}",
            plan.stdout
        );
    }

    let writers = Writers::start(env.pod_ips(SELECTOR, 6));
    std::thread::sleep(Duration::from_secs(1));
    let started = std::time::Instant::now();
    let (code, lines) = env.json_lines(&["apply", "-f", &changed, "--yes", "--timeout", "300s"]);
    let plugin_took = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let plugin = writers.stop();
    assert_eq!(code, 0, "{lines:#?}");
    let steps = roll_steps(&lines);
    assert_safe_order(&steps, 6);
    assert_all_updated(&env);
    let ips = env.pod_ips(SELECTOR, 6);
    let lost = plugin.lost(&ips);
    assert!(
        plugin.acked.len() > 100,
        "the writers wrote: {}",
        plugin.acked.len()
    );
    assert_eq!(lost, Vec::<String>::new(), "acknowledged writes lost");

    // The same kind of change by the StatefulSet controller (RollingUpdate), same client.
    let changed = config_change(&env, "slowlog-512.yaml", "slowlog-max-len: 512");
    let writers = Writers::start(ips);
    std::thread::sleep(Duration::from_secs(1));
    let started = std::time::Instant::now();
    rolling_update(&env, &changed);
    if !wait_healthy(&env, Duration::from_secs(90)) {
        // Left to itself it did not heal: the plugin re-introduces the nodes.
        env.ok(&["apply", "-f", &changed, "--yes", "--timeout", "120s"]);
    }
    let plain_took = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let plain = writers.stop();
    let lost_plain = plain.lost(&env.pod_ips(SELECTOR, 6));
    let ratio =
        plain.longest_failure.as_secs_f64() / plugin.longest_failure.as_secs_f64().max(0.001);
    let refused =
        plain.longest_refusal.as_secs_f64() / plugin.longest_refusal.as_secs_f64().max(0.001);
    println!(
        "ROLL FIGURES: OnDelete roll by the plugin ({:.1} s): longest window of unacknowledged \
         writes {:.2} s, of refused writes {:.2} s ({} writes acknowledged of {} attempted, {} \
         lost); plain RollingUpdate ({:.1} s): {:.2} s, {:.2} s ({} of {}, {} lost); ratio \
         RollingUpdate/plugin: unacknowledged {ratio:.1}, refused {refused:.1}",
        plugin_took.as_secs_f64(),
        plugin.longest_failure.as_secs_f64(),
        plugin.longest_refusal.as_secs_f64(),
        plugin.acked.len(),
        plugin.attempts,
        lost.len(),
        plain_took.as_secs_f64(),
        plain.longest_failure.as_secs_f64(),
        plain.longest_refusal.as_secs_f64(),
        plain.acked.len(),
        plain.attempts,
        lost_plain.len(),
    );
}

#[test]
fn an_upgrade_from_redis_5_0_to_7_0_goes_replicas_first_and_keeps_every_key() {
    let env = Env::start();
    form(&env);
    let ips = env.pod_ips(SELECTOR, 6);
    block_on(keys::write(&ips, 10_000));
    let upgraded = spec_with(
        &env,
        "redis7.yaml",
        &[("image: redis:5.0.1-alpine", "image: redis:7.0")],
    );
    let (code, lines) = env.json_lines(&["apply", "-f", &upgraded, "--yes", "--timeout", "300s"]);
    assert_eq!(code, 0, "{lines:#?}");
    let steps = roll_steps(&lines);
    println!("UPGRADE ORDER:\n  {}", steps.join("\n  "));
    assert_safe_order(&steps, 6);
    let finished = lines
        .iter()
        .find(|l| l["event"] == "rollFinished")
        .expect("the roll finished");
    assert_eq!(finished["replaced"], 6);
    assert!(
        finished["verdict"]
            .as_str()
            .unwrap()
            .starts_with("Cluster healthy"),
        "{finished}"
    );
    assert_all_updated(&env);
    let (code, report) = env.status_json(&[]);
    assert_eq!(code, 0, "{report}");
    let ips = env.pod_ips(SELECTOR, 6);
    for ip in &ips {
        let info = redis_cli(ip, &["INFO", "server"]);
        assert!(info.contains("redis_version:7."), "{ip}: {info}");
    }
    let missing = block_on(keys::missing(&ips, 10_000));
    assert_eq!(missing.len(), 0, "keys lost: {missing:?}");
}

/// One command through the plugin's direct transport, as text.
fn redis_cli(ip: &str, args: &[&str]) -> String {
    use kubectl_redis::cluster::cmd;
    use kubectl_redis::cluster::{direct, PodAddr, RedisTransport};
    block_on(async {
        let pod = PodAddr {
            name: ip.into(),
            ip: ip.into(),
            port: 6379,
        };
        let replies = direct(Duration::from_secs(5))
            .pipeline(&pod, &[cmd(args)])
            .await
            .unwrap();
        replies[0].text().unwrap_or_default()
    })
}

#[test]
fn a_roll_killed_midway_resumes_and_finishes_with_the_next_apply() {
    let env = Env::start();
    form(&env);
    let changed = config_change(&env, "slowlog-128.yaml", "slowlog-max-len: 128");
    let mut child = env.spawn_apply(&changed);
    let mut first = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if line["event"] == "rollReplaced" {
            first.push(line);
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        first.len(),
        1,
        "the first apply replaced a pod before it was killed"
    );
    let first_pod = first[0]["pod"].as_str().unwrap().to_string();

    // Whatever it was doing when it died settles; status names the roll in progress.
    assert!(
        wait_healthy(&env, Duration::from_secs(60)),
        "the cluster settles"
    );
    let (code, report) = env.status_json(&[]);
    assert_eq!(code, 0, "{report}");
    let cause = report["causes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "roll-in-progress")
        .unwrap_or_else(|| panic!("a roll in progress: {report}"));
    let left = cause["pods"].as_array().unwrap().len();
    assert!((4..=5).contains(&left), "{cause}");
    let text = env.ok(&["status"]);
    assert!(text.contains("a roll is in progress"), "{text}");

    // The plan has nothing to write but the rest of the roll: exit 2.
    let plan = env.run(&["plan", "-f", &changed, "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("The live objects match the spec."),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(&format!("Redis: roll {left} pod(s)")),
        "{}",
        plan.stdout
    );

    let (code, lines) = env.json_lines(&["apply", "-f", &changed, "--yes", "--timeout", "300s"]);
    assert_eq!(code, 0, "{lines:#?}");
    let steps = roll_steps(&lines);
    assert!(
        steps
            .iter()
            .all(|s| !s.starts_with(&format!("replaced {first_pod} "))),
        "{first_pod} is not replaced twice: {steps:#?}"
    );
    let finished = lines
        .iter()
        .find(|l| l["event"] == "rollFinished")
        .expect("the roll finished");
    assert_eq!(finished["replaced"], left, "{finished}");
    assert_eq!(finished["failovers"], 3, "{finished}");
    assert_all_updated(&env);
}

#[test]
fn a_revision_redis_refuses_stops_the_roll_at_once_and_a_fixed_spec_rolls_past_it() {
    let env = Env::start();
    form(&env);
    let ips = env.pod_ips(SELECTOR, 6);
    block_on(keys::write(&ips, 2_000));

    // A directive Redis 5.0 refuses at start. The redis-conf-directives policy denies it; with
    // the rule waived (as a user sure of a directive the tables lack would), the first replica
    // the roll replaces crash-loops, and the roll stops there, at once, with the pod's own
    // words, not after --timeout.
    let unwaived = config_change(&env, "unwaived.yaml", "no-such-directive: 'yes'");
    let out = env.run(&["plan", "-f", &unwaived]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    let waiver =
        "\n  waivers:\n  - rule: redis-conf-directives\n    reason: testing what Redis does\n";
    let bad = spec_with(
        &env,
        "bad.yaml",
        &[(
            NODE_TIMEOUT,
            &format!("{NODE_TIMEOUT}\n    no-such-directive: 'yes'{waiver}"),
        )],
    );
    let out = env.run(&["apply", "-f", &bad, "--yes", "--timeout", "600s"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    for expected in [
        "cannot start: container `redis` is in CrashLoopBackOff after",
        "Bad directive or wrong number of arguments",
        "Waiting will not fix this",
    ] {
        assert!(out.stderr.contains(expected), "{expected}\n{}", out.stderr);
    }
    let broken = out
        .stderr
        .split(" cannot start: ")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .unwrap_or_else(|| panic!("{}", out.stderr))
        .to_string();
    assert!(broken.starts_with("redis-cluster-"), "{broken}");

    // The fixed spec (the seed's again) is a third revision: apply replaces the broken pod first
    // instead of waiting for it to become Ready, then finishes.
    let (code, lines) = env.json_lines(&["apply", "-f", CLUSTER, "--yes", "--timeout", "300s"]);
    assert_eq!(code, 0, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l["event"] == "waiting"
            && l["state"].as_str().is_some_and(|s| s.starts_with(&format!(
                "replaced pod {broken}, which is not Ready on an old revision"
            )))),
        "{broken} is replaced before the rest: {lines:#?}"
    );
    assert_all_updated(&env);
    let (code, report) = env.status_json(&[]);
    assert_eq!(code, 0, "{report}");
    let missing = block_on(keys::missing(&env.pod_ips(SELECTOR, 6), 2_000));
    assert_eq!(missing.len(), 0, "keys lost: {missing:?}");
}
