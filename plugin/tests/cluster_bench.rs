//! Formation and heal timings against `redis-cli --cluster create`. Ignored by default; run with
//! plugin/benches/formation.sh (release build, one at a time). Prints figures, asserts only correctness.

mod cluster_support;

use std::process::Command;
use std::time::{Duration, Instant};

use cluster_support::{RedisProc, TestCluster};
use kubectl_redis::cluster::form::ensure_cluster;
use kubectl_redis::cluster::transport::{call, cmd};
use kubectl_redis::cluster::FormOptions;

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

fn start(net: &str) -> TestCluster {
    let mut c = TestCluster::start(net, &NODES, 3, 1);
    let nt = node_timeout();
    for p in c.procs.iter_mut() {
        let ip = p.ip.clone();
        let dir = p.dir.clone();
        p.kill();
        *p = RedisProc::start(&ip, &dir, &["--cluster-node-timeout", &nt]);
    }
    // "All six nodes running": past Redis' 2 s writable delay after start, as pods that have
    // been up for a while are when formation begins.
    std::thread::sleep(Duration::from_millis(2500));
    c
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn formation_vs_redis_cli() {
    let runs = 5;
    let (mut ours_ok, mut ours_done, mut cli_ok) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..runs {
        let c = start(&format!("127.79.{}", 10 + r));
        let t0 = Instant::now();
        let o = opts();
        let (out, ok_at) = tokio::join!(ensure_cluster(&c.t, &c.topo, &o), async {
            all_ok(&c).await;
            t0.elapsed()
        });
        let done = t0.elapsed();
        let out = out.unwrap_or_else(|e| panic!("{e:#}"));
        assert!(out.report.healthy);
        ours_ok.push(ok_at);
        ours_done.push(done);
        drop(c);

        let c = start(&format!("127.79.{}", 40 + r));
        let addrs: Vec<String> = c.procs.iter().map(|p| format!("{}:6379", p.ip)).collect();
        let t0 = Instant::now();
        let st = Command::new("redis-cli")
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
        all_ok(&c).await;
        cli_ok.push(t0.elapsed());
        eprintln!(
            "run {r}: plugin all-ok {:?} (ensure_cluster returned, replicas in sync: {:?}); redis-cli all-ok {:?}",
            ours_ok[r as usize], ours_done[r as usize], cli_ok[r as usize]
        );
    }
    let (o, d, c) = (median(ours_ok), median(ours_done), median(cli_ok));
    eprintln!(
        "FORMATION median of {runs} (cluster-node-timeout {} ms): plugin {:?} to cluster_state:ok on all 6, {:?} to \
         fully verified; redis-cli --cluster create {:?}; ratio {:.2}x (fully verified {:.2}x)",
        node_timeout(),
        o,
        d,
        c,
        o.as_secs_f64() / c.as_secs_f64(),
        d.as_secs_f64() / c.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn heal_after_all_pods_restart() {
    let runs = 3;
    let mut times = Vec::new();
    for r in 0..runs {
        let mut c = start(&format!("127.79.{}", 70 + r));
        ensure_cluster(&c.t, &c.topo, &opts())
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let keys = c.write_keys(0..10_000, false).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let nt = node_timeout();
        for p in c.procs.iter_mut() {
            p.kill();
        }
        let t0 = Instant::now();
        for i in 0..6 {
            let ip = format!("127.79.{}.{}", 70 + r, 100 + i);
            let dir = c.procs[i].dir.clone();
            // restart_at rewrites nodes.conf like update-node.sh; keep the bench's node timeout.
            c.procs[i].restart_at(&ip);
            c.procs[i].kill();
            c.procs[i] = RedisProc::start(&ip, &dir, &["--cluster-node-timeout", &nt]);
            c.topo.pods[i].ip = Some(ip);
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
        "HEAL median of {runs} (cluster-node-timeout {} ms): {:?} from all pods running to healthy",
        node_timeout(),
        median(times)
    );
}
