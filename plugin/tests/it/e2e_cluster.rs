//! The Redis step of `apply` and `status`, end to end through the binary against the local test
//! cluster, whose pods run real redis-server processes.

use crate::e2e_support;

use e2e_support::{block_on, keys, Env, Output};
use localcluster::Options;

const CLUSTER: &str = "specs/redis-cluster.yaml";
const SELECTOR: &str = "app=redis-cluster";

fn apply(env: &Env) {
    env.ok(&["apply", "-f", CLUSTER, "--yes", "--timeout", "120s"]);
}

/// What a person reads: no line longer than 200 characters (a plan or an apply that dumps an
/// internal structure fails this).
fn assert_readable(out: &Output) {
    for line in out.stdout.lines().chain(out.stderr.lines()) {
        assert!(
            line.chars().count() <= 200,
            "a {}-character line: {}…",
            line.chars().count(),
            line.chars().take(200).collect::<String>()
        );
    }
}

/// `plan --detailed-exitcode`, checked for readability.
fn plan(env: &Env, spec: &str) -> Output {
    let out = env.run(&["plan", "-f", spec, "--detailed-exitcode"]);
    assert_readable(&out);
    out
}

#[test]
fn apply_forms_a_topology_aware_cluster_and_status_reports_it() {
    let env = Env::start_with(Options {
        nodes: 3,
        ..Options::default()
    });
    // Before anything exists, the plan says the Redis step will form the cluster after the
    // rollout, and counts it.
    let before = plan(&env, CLUSTER);
    assert_eq!(before.code, 2, "{}{}", before.stdout, before.stderr);
    for expected in [
        "Redis Cluster default/redis-cluster: the Redis step will",
        "after the rollout: form 3 masters (slots 0-5460, 5461-10922, 10923-16383) with 1 replica(s) each",
        "Plan: 9 to add, 0 to change, 0 to replace, 0 to destroy. Redis: form 1 cluster(s) after the rollout.",
    ] {
        assert!(before.stdout.contains(expected), "{expected}\n{}", before.stdout);
    }

    let out = env.run(&["apply", "-f", CLUSTER, "--yes", "--timeout", "120s"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_readable(&out);
    assert!(
        out.stdout
            .contains("Cluster healthy: 3 masters, 3 replicas, 16384/16384 slots covered"),
        "{}",
        out.stdout
    );
    // One line for the Redis step, commands counted by kind; each command only with -v.
    let step = out
        .stderr
        .lines()
        .find(|l| l.starts_with("Redis Cluster redis-cluster: "))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    for expected in [
        "3 CLUSTER ADDSLOTS",
        "CLUSTER MEET",
        "3 CLUSTER REPLICATE",
        " s",
    ] {
        assert!(step.contains(expected), "{expected}: {step}");
    }
    assert!(
        !out.stderr.contains("CLUSTER ADDSLOTS 0-"),
        "{}",
        out.stderr
    );

    // Formed and healthy: nothing to plan, exit 0.
    let after = plan(&env, CLUSTER);
    assert_eq!(after.code, 0, "{}{}", after.stdout, after.stderr);
    assert!(
        after
            .stdout
            .contains("No changes. The live objects match the spec."),
        "{}",
        after.stdout
    );

    let text = env.ok(&["status"]);
    assert!(
        text.starts_with("Cluster healthy: 3 masters, 3 replicas, 16384/16384 slots covered"),
        "{text}"
    );

    let (code, report) = env.status_json(&[]);
    assert_eq!(code, 0);
    assert_eq!(report["healthy"], true);
    let pods = report["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 6);
    let node_of = |name: &str| pods.iter().find(|p| p["name"] == name).unwrap()["node"].clone();
    let mut slots = 0;
    for pod in pods {
        match pod["role"].as_str().unwrap() {
            "master" => slots += pod["slots"].as_u64().unwrap(),
            "replica" => assert_ne!(
                pod["node"],
                node_of(pod["master"].as_str().unwrap()),
                "a replica never shares its master's Kubernetes node when others exist: {pod}"
            ),
            other => panic!("unexpected role {other}"),
        }
    }
    assert_eq!(slots, 16384);

    // A second apply finds the cluster formed and changes nothing.
    let again = env.run(&["apply", "-f", CLUSTER, "--yes"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("verified, nothing to do"),
        "{}",
        again.stderr
    );
}

#[test]
fn status_works_through_every_transport() {
    let env = Env::start();
    apply(&env);
    for via in ["port-forward", "direct", "exec"] {
        let (code, report) = env.status_json(&["--via", via]);
        assert_eq!(code, 0, "--via {via}: {report}");
        assert_eq!(report["slots_covered"], 16384, "--via {via}");
    }
}

#[test]
fn all_pods_restarting_at_once_is_healed_without_losing_keys() {
    let env = Env::start();
    apply(&env);
    let before = env.pod_ips(SELECTOR, 6);
    block_on(keys::write(&before, 10_000));
    let saved = env.dir.path().join("healthy.plan");
    env.ok(&["plan", "-f", CLUSTER, "--out", saved.to_str().unwrap()]);

    // Every pod comes back at once with a new IP: update-node.sh fixes each pod's own address,
    // but every peer address in every nodes.conf is stale.
    for pod in 0..6 {
        env.cluster
            .delete_pod("default", &format!("redis-cluster-{pod}"))
            .unwrap();
    }
    let after = loop {
        let ips = env.pod_ips(SELECTOR, 6);
        if ips.iter().all(|ip| !before.contains(ip)) {
            break ips;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // Each problem belongs to one cause, listed first with its remedy. (Which causes depends on
    // how far the StatefulSet controller got: it recreates the pods one by one, and the pods
    // that kept their address in the meantime spread the new ones.)
    let (code, report) = env.status_json(&[]);
    assert_eq!(
        code, 1,
        "status fails on a cluster with stale addresses: {report}"
    );
    let explained: usize = report["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["problems"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        explained,
        report["problems"].as_array().unwrap().len(),
        "{report}"
    );
    let text = env.run(&["status"]);
    let lines: Vec<&str> = text.stdout.lines().collect();
    if text.code == 1 {
        assert!(
            lines[0].starts_with("Cluster unhealthy (") && lines[2].starts_with("✗ "),
            "{}",
            text.stdout
        );
        assert!(lines[3].starts_with("  → "), "{}", text.stdout);
    }
    assert!(
        lines.iter().all(|l| l.chars().count() <= 200),
        "short cells: {}",
        text.stdout
    );

    // The objects did not change, but the plan shows the re-introductions apply will make.
    let heal = plan(&env, CLUSTER);
    assert_eq!(heal.code, 2, "{}{}", heal.stdout, heal.stderr);
    // How many MEETs depends on how far gossip got since the restart; that some are planned
    // does not.
    for expected in [
        "The live objects match the spec.",
        "node(s) to their peers (",
        "Plan: 0 to add, 0 to change, 0 to replace, 0 to destroy. Redis: introduce ",
    ] {
        assert!(
            heal.stdout.contains(expected),
            "{expected}\n{}",
            heal.stdout
        );
    }
    // A plan saved before the restart no longer describes the cluster: refused, nothing done.
    let stale = env.run(&["apply", saved.to_str().unwrap(), "--yes"]);
    assert_eq!(stale.code, 1, "{}{}", stale.stdout, stale.stderr);
    assert!(
        stale.stderr.contains(
            "Redis Cluster default/redis-cluster (what its nodes report changed since the plan)"
        ),
        "{}",
        stale.stderr
    );

    apply(&env);
    let (code, report) = env.status_json(&[]);
    assert_eq!(code, 0, "healed: {report}");
    let (code, report) = env.status_json(&[]);
    let missing = block_on(keys::missing(&after, 10_000));
    assert!(
        missing.is_empty(),
        "{} of 10000 keys lost, e.g. {:?}; status {code}: {report}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn one_pod_back_with_a_new_ip_is_fixed_by_update_node() {
    let env = Env::start();
    apply(&env);
    let before = env.pod_ips(SELECTOR, 6);
    block_on(keys::write(&before, 10_000));
    env.cluster
        .delete_pod("default", "redis-cluster-1")
        .unwrap();

    // No plugin action: update-node.sh rewrites the pod's own address and gossip spreads it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (code, report) = env.status_json(&[]);
        if code == 0 {
            let ips = env.pod_ips(SELECTOR, 6);
            assert_ne!(ips[1], before[1], "the pod came back with a new IP");
            let missing = block_on(keys::missing(&ips, 10_000));
            assert!(
                missing.is_empty(),
                "{} of 10000 keys lost, e.g. {:?}; status: {report}",
                missing.len(),
                &missing[..missing.len().min(5)]
            );
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not healthy after a single pod restart: {report}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn destroy_keeps_the_data_and_a_later_apply_brings_the_cluster_back() {
    let env = Env::start();
    apply(&env);
    block_on(keys::write(&env.pod_ips(SELECTOR, 6), 10_000));

    let out = env.ok(&["destroy", "-f", CLUSTER, "--yes"]);
    assert!(
        out.contains("PersistentVolume redis01 has reclaimPolicy Retain"),
        "{out}"
    );
    assert_eq!(env.running_pods(SELECTOR), 0);
    assert_eq!(
        env.kubectl_status(&["get", "statefulset", "redis-cluster"]),
        1
    );
    let claims = env.kubectl(&["get", "pvc", "-o", "name"]);
    assert_eq!(claims.lines().count(), 6, "claims kept: {claims}");

    // The second apply and the final destroy as a CI job runs them: JSON lines, each checked
    // against the schema: the plan first, a line per step, the summary last.
    let (code, lines) = env.json_lines(&["apply", "-f", CLUSTER, "--yes", "--timeout", "120s"]);
    assert_eq!(code, 0, "{lines:#?}");
    assert_steps_add_up(&lines, "apply");
    let event = |name: &str| lines.iter().filter(|l| l["event"] == name).count();
    assert!(event("waited") >= 1, "{lines:#?}");
    assert_eq!(event("redisConverged"), 1, "{lines:#?}");
    let summary = lines.last().unwrap();
    assert!(
        summary["clusters"][0]["verdict"]
            .as_str()
            .unwrap()
            .starts_with("Cluster healthy"),
        "{summary}"
    );
    let (code, report) = env.status_json(&[]);
    assert_eq!(code, 0, "{report}");
    let missing = block_on(keys::missing(&env.pod_ips(SELECTOR, 6), 10_000));
    assert!(
        missing.is_empty(),
        "{} of 10000 keys lost after destroy and re-apply",
        missing.len()
    );

    // Without --yes on a pipe: the plan, then a failed summary, exit 1 as with text output.
    let (code, lines) = env.json_lines(&["destroy", "-f", CLUSTER, "--delete-volumes"]);
    assert_eq!(code, 1, "{lines:#?}");
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(lines[0]["event"], "plan");
    assert_eq!(lines[1]["result"], "failed");
    assert!(
        lines[1]["error"].as_str().unwrap().contains("--yes"),
        "{lines:#?}"
    );

    let (code, lines) = env.json_lines(&["destroy", "-f", CLUSTER, "--yes", "--delete-volumes"]);
    assert_eq!(code, 0, "{lines:#?}");
    assert_steps_add_up(&lines, "destroy");
    assert_eq!(lines.last().unwrap()["kept"], serde_json::json!([]));
    assert_eq!(
        env.owned_objects(),
        "",
        "nothing owned by the plugin is left"
    );
}

/// A successful `-o json` run: the plan first, the summary last, and the objects written are
/// those the plan announced, one `wrote` line each.
fn assert_steps_add_up(lines: &[serde_json::Value], command: &str) {
    let (first, last) = (&lines[0], lines.last().unwrap());
    assert_eq!(first["event"], "plan", "{lines:#?}");
    assert_eq!(last["event"], "summary", "{lines:#?}");
    assert_eq!(last["command"], command);
    assert_eq!(last["result"], "succeeded", "{last}");
    assert_eq!(last["written"], first["plan"]["summary"], "{lines:#?}");
    let wrote = lines.iter().filter(|l| l["event"] == "wrote").count();
    let written: u64 = ["add", "change", "replace", "destroy"]
        .iter()
        .map(|a| last["written"][a].as_u64().unwrap())
        .sum();
    assert_eq!(wrote as u64, written, "{lines:#?}");
    assert!(written > 0, "{lines:#?}");
}

#[test]
fn masters_scale_out_and_back_in_through_apply_without_losing_keys() {
    let env = Env::start();
    apply(&env);
    block_on(keys::write(&env.pod_ips(SELECTOR, 6), 10_000));

    let four = e2e_support::spec_with(&env, "four.yaml", &[("masters: 3", "masters: 4")]);
    let grow = plan(&env, &four);
    assert_eq!(grow.code, 2, "{}{}", grow.stdout, grow.stderr);
    let moved = grow
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("move 4096 slots ("))
        .unwrap_or_else(|| panic!("{}", grow.stdout));
    let moved_keys: u64 = moved
        .trim_start()
        .trim_start_matches("move 4096 slots (")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{moved}"));
    // 10,000 keys spread over 16384 slots: a quarter of the slots hold about a quarter of them.
    assert!((2_000..=3_000).contains(&moved_keys), "{moved}");
    assert!(
        grow.stdout.contains("introduce 2 node(s)") && grow.stdout.contains("redis-cluster-7"),
        "{}",
        grow.stdout
    );
    let out = env.run(&["apply", "-f", &four, "--yes", "--timeout", "120s"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_readable(&out);
    let (code, report) = env.status_json(&[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["masters"], 4);
    let slots: Vec<u64> = report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["role"] == "master")
        .map(|p| p["slots"].as_u64().unwrap())
        .collect();
    assert!(
        slots.iter().all(|s| (4000..=4200).contains(s)),
        "balanced: {slots:?}"
    );
    let missing = block_on(keys::missing(&env.pod_ips(SELECTOR, 8), 10_000));
    assert!(
        missing.is_empty(),
        "{} keys lost scaling out",
        missing.len()
    );

    // Without the Redis step nothing moves the departing master's slots first: a shrink is
    // refused at plan time and at apply, whatever else the flags say, and nothing is deleted.
    let skipping = env.run(&["plan", "-f", CLUSTER, "--skip-cluster-init"]);
    let apply_skipping = env.run(&["apply", "-f", CLUSTER, "--yes", "--skip-cluster-init"]);
    for out in [&skipping, &apply_skipping] {
        assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
        for expected in [
            "refusing to shrink StatefulSet default/redis-cluster from 8 to 6 pods without the \
             Redis step (--skip-cluster-init): 4096 slot(s) with ",
            "key(s) live on redis-cluster-6, and no pod that stays has them",
            "Run without --skip-cluster-init",
            "Nothing was written",
        ] {
            assert!(out.stderr.contains(expected), "{expected}\n{}", out.stderr);
        }
    }
    assert_eq!(env.running_pods(SELECTOR), 8, "no pod was deleted");
    let missing = block_on(keys::missing(&env.pod_ips(SELECTOR, 8), 10_000));
    assert!(missing.is_empty(), "{} keys lost", missing.len());

    let shrink = plan(&env, CLUSTER);
    assert_eq!(shrink.code, 2, "{}{}", shrink.stdout, shrink.stderr);
    for expected in [
        "PersistentVolume redis07 is no longer in the spec but is KEPT",
        "the staying nodes forget redis-cluster-6, redis-cluster-7 before the StatefulSet shrinks",
        "Redis: drain 2 node(s)",
    ] {
        assert!(
            shrink.stdout.contains(expected),
            "{expected}\n{}",
            shrink.stdout
        );
    }
    let out = env.run(&["apply", "-f", CLUSTER, "--yes", "--timeout", "120s"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_readable(&out);
    assert!(
        out.stderr.contains("slots off redis-cluster-") && out.stderr.contains("before shrinking"),
        "{}",
        out.stderr
    );
    let (code, report) = env.status_json(&[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["masters"], 3);
    assert_eq!(report["pods"].as_array().unwrap().len(), 6);
    let missing = block_on(keys::missing(&env.pod_ips(SELECTOR, 6), 10_000));
    assert!(missing.is_empty(), "{} keys lost scaling in", missing.len());
    assert_eq!(
        env.kubectl_status(&["get", "pv", "redis07"]),
        0,
        "the departed pods' volumes are kept"
    );
}
