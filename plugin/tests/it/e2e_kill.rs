//! Kill anywhere: `apply` killed with SIGKILL at points spread over its run — masters 3 → 4,
//! 4 → 3, a config roll — and after each kill one plain `apply` converges, with every key still
//! there and the real `redis-cli --cluster check` reporting all slots covered and none open.
//!
//! `KR_KILL_POINTS` sets how many kill points each phase gets (4 by default, so that CI stays
//! within its budget; the dozen is `KR_KILL_POINTS=12`, about 25 minutes).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::e2e_support::{block_on, keys, spec_with, Env};

const CLUSTER: &str = "specs/redis-cluster.yaml";
const SELECTOR: &str = "app=redis-cluster";
const KEYS: u32 = 20_000;

/// `apply --yes` of `spec`, killed with SIGKILL after `after` (or left to finish first).
/// Whether it was still running when killed.
fn apply_killed(env: &Env, spec: &str, after: Duration) -> bool {
    let mut child = env.spawn_apply(spec);
    // Drained, so that a full pipe never holds the apply up; nobody reads it.
    let mut out = child.stdout.take().unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let deadline = Instant::now() + after;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup of any kind.
    child.wait().unwrap();
    true
}

/// One plain apply, which must converge; how long it took.
fn apply(env: &Env, spec: &str, what: &str) -> Duration {
    let start = Instant::now();
    let out = env.run(&["apply", "-f", spec, "--yes", "--timeout", "300s"]);
    assert_eq!(
        out.code, 0,
        "{what}: one apply converges\n{}\n{}",
        out.stdout, out.stderr
    );
    start.elapsed()
}

/// Every key reads back and the real redis-cli finds every slot covered and none open.
fn assert_whole(env: &Env, pods: usize, what: &str) {
    let ips = env.pod_ips(SELECTOR, pods);
    let missing = block_on(keys::missing(&ips, KEYS));
    assert!(missing.is_empty(), "{what}: {} keys lost", missing.len());
    let check = Command::new("redis-cli")
        .args(["--cluster", "check", &format!("{}:6379", ips[0])])
        .output()
        .expect("redis-cli is installed (.ci/setup)");
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        text.contains("[OK] All 16384 slots covered."),
        "{what}: {text}"
    );
    // Open slots, disagreeing nodes and uncovered slots are each a [WARNING] or an [ERR].
    assert!(
        !text.contains("[WARNING]") && !text.contains("[ERR]"),
        "{what}: {text}"
    );
    assert!(check.status.success(), "{what}: {text}");
}

fn kill_points() -> usize {
    std::env::var("KR_KILL_POINTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4)
}

/// The kill times for a run that took `full`: spread evenly over its first 85 % (a later run of
/// the same change can be faster than the measured one), the first early.
fn spread(full: Duration, points: usize) -> Vec<Duration> {
    (0..points)
        .map(|i| full.mul_f64(0.85 * (i as f64 + 0.5) / points as f64))
        .collect()
}

#[test]
fn apply_killed_anywhere_is_finished_by_the_next_apply() {
    let env = Env::start();
    apply(&env, CLUSTER, "formation");
    block_on(keys::write(&env.pod_ips(SELECTOR, 6), KEYS));
    let four = spec_with(&env, "four.yaml", &[("masters: 3", "masters: 4")]);
    let roll = spec_with(
        &env,
        "slowlog.yaml",
        &[(
            "cluster-node-timeout: 15000",
            "cluster-node-timeout: 15000\n    slowlog-max-len: 256",
        )],
    );
    let points = kill_points();
    let mut report = Vec::new();

    // Scale: each kill of a grow is followed by a kill of a shrink, so both directions are
    // killed at every point; a full run of each first gives the durations to spread over.
    let grow = apply(&env, &four, "a full 3 -> 4");
    let shrink = apply(&env, CLUSTER, "a full 4 -> 3");
    for (i, (at_grow, at_shrink)) in spread(grow, points)
        .into_iter()
        .zip(spread(shrink, points))
        .enumerate()
    {
        let killed = apply_killed(&env, &four, at_grow);
        apply(&env, &four, &format!("3 -> 4 killed at {at_grow:?}"));
        assert_whole(&env, 8, &format!("3 -> 4, kill {i} at {at_grow:?}"));
        report.push(format!("3 -> 4 at {at_grow:?}: killed {killed}"));
        let killed = apply_killed(&env, CLUSTER, at_shrink);
        apply(&env, CLUSTER, &format!("4 -> 3 killed at {at_shrink:?}"));
        assert_whole(&env, 6, &format!("4 -> 3, kill {i} at {at_shrink:?}"));
        report.push(format!("4 -> 3 at {at_shrink:?}: killed {killed}"));
    }

    // A config roll, killed, then finished; the next kill rolls back to the seed's config.
    let full = apply(&env, &roll, "a full roll");
    let specs = [CLUSTER, roll.as_str()];
    for (i, at) in spread(full, points).into_iter().enumerate() {
        let spec = specs[i % 2];
        let killed = apply_killed(&env, spec, at);
        apply(&env, spec, &format!("roll killed at {at:?}"));
        assert_whole(&env, 6, &format!("roll, kill {i} at {at:?}"));
        let (code, status) = env.status_json(&[]);
        assert_eq!(code, 0, "roll, kill {i}: {status}");
        report.push(format!("roll at {at:?}: killed {killed}"));
    }
    eprintln!(
        "kill points ({points} per phase), each finished by one apply:\n  {}",
        report.join("\n  ")
    );
}
