//! Formation and heal timings against `redis-cli --cluster create` of the same Redis version, on
//! Redis 5.0 and 7.x. Ignored by default; run with plugin/benches/formation.sh (release build, one
//! at a time). Prints figures, asserts only correctness.

use crate::cluster_support;

use std::process::Command;
use std::time::{Duration, Instant};

use cluster_support::{Redis, TestCluster};
use kubectl_redis::cluster::ensure_cluster;
use kubectl_redis::cluster::FormOptions;
use kubectl_redis::cluster::{call, cmd};

on_redis_5_and_7!(
    #[ignore]
    formation_vs_redis_cli,
    heal_after_all_pods_restart
);

const NODES: [&str; 6] = ["node-a", "node-b", "node-c", "node-a", "node-b", "node-c"];

fn opts() -> FormOptions {
    FormOptions {
        timeout: Duration::from_secs(120),
        poll: Duration::from_millis(20),
    }
}

fn node_timeout() -> String {
    std::env::var("BENCH_NODE_TIMEOUT").unwrap_or_else(|_| "15000".into())
}

fn start(redis: Redis) -> TestCluster {
    let nt = node_timeout();
    let c = TestCluster::start_with(redis, &NODES, 3, 1, &["--cluster-node-timeout", &nt]);
    settle();
    c
}

/// "All six nodes running": past Redis' 2 s writable delay after start, as pods that have been
/// up for a while are when formation begins.
fn settle() {
    std::thread::sleep(Duration::from_millis(2500));
}

/// Back to six fresh, empty nodes on the same processes: `CLUSTER RESET HARD` (new node ids,
/// epochs 0) on the replicas, which empties them, then `FLUSHALL` and the same on the masters; so
/// the next formation starts where the first one did.
async fn reset(c: &TestCluster) {
    let mut masters = Vec::new();
    for i in 0..6 {
        let info = c
            .call(i, cmd(["INFO", "replication"]))
            .await
            .text()
            .unwrap();
        if info.contains("role:master") {
            masters.push(i);
        } else {
            c.call(i, cmd(["CLUSTER", "RESET", "HARD"])).await;
        }
    }
    for i in masters {
        c.call(i, cmd(["FLUSHALL"])).await;
        c.call(i, cmd(["CLUSTER", "RESET", "HARD"])).await;
    }
    for i in 0..6 {
        let info = c.call(i, cmd(["CLUSTER", "INFO"])).await.text().unwrap();
        assert!(info.contains("cluster_known_nodes:1"), "pod {i}: {info}");
        assert_eq!(c.call(i, cmd(["DBSIZE"])).await.int(), Some(0), "pod {i}");
    }
    settle();
}

async fn form_with_plugin(c: &TestCluster) -> (Duration, Duration) {
    let t0 = Instant::now();
    let o = opts();
    let (out, ok_at) = tokio::join!(ensure_cluster(&c.t, &c.topo, &o), async {
        all_ok(c).await;
        t0.elapsed()
    });
    let done = t0.elapsed();
    let out = out.unwrap_or_else(|e| panic!("{e:#}"));
    assert!(out.report.healthy);
    (ok_at, done)
}

async fn form_with_redis_cli(c: &TestCluster) -> Duration {
    let addrs: Vec<String> = c.procs.iter().map(|p| format!("{}:6379", p.ip)).collect();
    let t0 = Instant::now();
    let st = Command::new(c.redis.cli())
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stdout)
    );
    all_ok(c).await;
    t0.elapsed()
}

/// Until every node reports cluster_state:ok and knows all six nodes.
async fn all_ok(c: &TestCluster) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut ok = true;
        for i in 0..6 {
            let info = call(&c.t, &c.addr(i), cmd(["CLUSTER", "INFO"]))
                .await
                .unwrap()
                .text()
                .unwrap();
            ok &= info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:6");
        }
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cluster never reached cluster_state:ok"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Both formers on the same six pods in each run, taking turns at going first.
async fn formation_vs_redis_cli(redis: Redis) {
    let runs = 5;
    let (mut ours_ok, mut ours_done, mut cli_ok) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..runs {
        let c = start(redis);
        let ((ok, done), cli) = if r % 2 == 0 {
            let ours = form_with_plugin(&c).await;
            reset(&c).await;
            (ours, form_with_redis_cli(&c).await)
        } else {
            let cli = form_with_redis_cli(&c).await;
            reset(&c).await;
            (form_with_plugin(&c).await, cli)
        };
        ours_ok.push(ok);
        ours_done.push(done);
        cli_ok.push(cli);
        eprintln!(
            "run {r} (Redis {}): plugin all-ok {ok:?} (ensure_cluster returned, replicas in sync: {done:?}); \
             redis-cli all-ok {cli:?}",
            redis.line()
        );
    }
    let (o, d, c) = (median(ours_ok), median(ours_done), median(cli_ok));
    eprintln!(
        "FORMATION Redis {} median of {runs} (cluster-node-timeout {} ms): plugin {:?} to cluster_state:ok on all 6, {:?} to \
         fully verified; redis-cli {} --cluster create {:?}; ratio {:.2}x (fully verified {:.2}x)",
        redis.line(),
        node_timeout(),
        o,
        d,
        redis.line(),
        c,
        o.as_secs_f64() / c.as_secs_f64(),
        d.as_secs_f64() / c.as_secs_f64()
    );
}

async fn heal_after_all_pods_restart(redis: Redis) {
    let runs = 3;
    let mut times = Vec::new();
    for r in 0..runs {
        let mut c = start(redis);
        ensure_cluster(&c.t, &c.topo, &opts())
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let keys = c.write_keys(0..10_000, false).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        for p in c.procs.iter_mut() {
            p.kill();
        }
        let t0 = Instant::now();
        for i in 0..6 {
            // New namespaces and IPs; update-node.sh first; the bench's node timeout kept.
            c.restart_pod(i);
        }
        let started = t0.elapsed();
        let out = ensure_cluster(&c.t, &c.topo, &opts())
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(out.report.healthy);
        let healed = t0.elapsed();
        assert!(c.missing_keys(&keys).await.is_empty());
        eprintln!(
            "heal run {r}: processes back after {started:?}; healthy {healed:?} after the kill ({} ms plugin run)",
            out.elapsed_ms
        );
        times.push(Duration::from_millis(out.elapsed_ms as u64));
    }
    eprintln!(
        "HEAL Redis {} median of {runs} (cluster-node-timeout {} ms): {:?} from all pods running to healthy",
        redis.line(),
        node_timeout(),
        median(times)
    );
}
