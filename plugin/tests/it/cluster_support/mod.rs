//! Real redis-server processes standing in for the pods of a StatefulSet, on Redis 5.0 (the
//! seed's image, built by tests/redis5/build.sh) or Debian's 7.x. Each runs in its own network
//! namespace with its own address, on a bridge per test (`localcluster::net`, as the local
//! cluster's pods), so Redis needs no help to know its address (5.0 has no `bind-source-addr`)
//! and tests in parallel never collide.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kubectl_redis::cluster::Reply;
use kubectl_redis::cluster::{
    call, cmd, direct, parse_cli_output, BoxFuture, Cmd, DirectConnector, RedisTransport,
    StreamTransport,
};
use kubectl_redis::cluster::{key_slot, parse_nodes};
use kubectl_redis::cluster::{PodAddr, PodInfo, Topology};
pub(crate) use localcluster::net::{Network, PodNetwork};

/// Which Redis the "pods" run: the image a spec names, mapped to local binaries the way the
/// local test cluster maps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Redis {
    /// `redis:5.0.1-alpine`, the seed's: Redis 5.0.6 from tests/redis5/build.sh.
    V5,
    /// `redis:7`: Debian's redis-server 7.x.
    V7,
}

impl Redis {
    pub(crate) fn image(self) -> &'static str {
        match self {
            Redis::V5 => "redis:5.0.1-alpine",
            Redis::V7 => "redis:7",
        }
    }

    /// The directory holding this version's redis-server and redis-cli.
    pub(crate) fn bin_dir(self) -> PathBuf {
        match localcluster::resolve_image(self.image(), &localcluster::cargo_target_dir()) {
            Ok(image) => image.bin_dir().expect("a Redis image").to_path_buf(),
            Err(e) => panic!("{e}"),
        }
    }

    pub(crate) fn server(self) -> PathBuf {
        self.bin_dir().join("redis-server")
    }

    pub(crate) fn cli(self) -> PathBuf {
        self.bin_dir().join("redis-cli")
    }

    /// "5.0" or "7", for messages.
    pub(crate) fn line(self) -> &'static str {
        match self {
            Redis::V5 => "5.0",
            Redis::V7 => "7",
        }
    }
}

/// Instantiates each `async fn NAME(redis: Redis)` of a test file as two tests, `redis5::NAME`
/// and `redis7::NAME`, so every cluster test runs on both versions by default. Attributes given
/// first (`#[ignore]`) go on every instance.
#[macro_export]
macro_rules! on_redis_5_and_7 {
    ($(#[$meta:meta])* $($name:ident),+ $(,)?) => {
        $crate::on_redis_5_and_7!(@mods [$(#[$meta])*] $($name),+);
    };
    (@mods $attrs:tt $($name:ident),+) => {
        mod redis5 {
            $( $crate::on_redis_5_and_7!(@test V5 $attrs $name); )+
        }
        mod redis7 {
            $( $crate::on_redis_5_and_7!(@test V7 $attrs $name); )+
        }
    };
    (@test $version:ident [$($attr:tt)*] $name:ident) => {
        $($attr)*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            super::$name($crate::cluster_support::Redis::$version).await
        }
    };
}

pub(crate) const NODE_TIMEOUT_MS: u64 = 2000;

/// What `--via exec` does in a pod, with this version's own redis-cli: one process per
/// command, its raw (non-terminal) output parsed by the plugin's `parse_cli_output`.
pub(crate) struct CliTransport {
    pub redis: Redis,
}

impl RedisTransport for CliTransport {
    fn pipeline<'a>(
        &'a self,
        pod: &'a PodAddr,
        cmds: &'a [Cmd],
    ) -> BoxFuture<'a, anyhow::Result<Vec<Reply>>> {
        Box::pin(async move {
            let mut replies = Vec::new();
            for c in cmds {
                let out = tokio::process::Command::new(self.redis.cli())
                    .args(["-h", pod.ip.as_str(), "-p", &pod.port.to_string()])
                    .args(c.iter().map(|a| String::from_utf8_lossy(a).into_owned()))
                    .stdin(Stdio::null())
                    .output()
                    .await?;
                replies.push(parse_cli_output(
                    c,
                    &String::from_utf8_lossy(&out.stdout),
                    &String::from_utf8_lossy(&out.stderr),
                ));
            }
            Ok(replies)
        })
    }

    fn kind(&self) -> &'static str {
        "exec"
    }
}

/// One "pod": a redis-server in a network namespace of its own (`localcluster::net`), reachable
/// from the host over the test's bridge at the namespace's address, as a pod at its pod IP.
pub(crate) struct RedisProc {
    pub redis: Redis,
    pub ip: String,
    pub dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
    netns: Option<PodNetwork>,
}

impl RedisProc {
    pub(crate) fn start(redis: Redis, netns: PodNetwork, dir: &Path, extra: &[&str]) -> RedisProc {
        std::fs::create_dir_all(dir).unwrap();
        let mut p = RedisProc {
            redis,
            ip: netns.ip.to_string(),
            dir: dir.into(),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            netns: Some(netns),
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))
            .unwrap();
        let netns = self.netns.as_ref().expect("a pod network");
        let mut c = Command::new(self.redis.server());
        // The seed's redis.conf: no `bind`, so all of the pod's addresses; nothing else tells
        // Redis its address.
        c.args(["--port", "6379"])
            .args(["--dir", self.dir.to_str().unwrap()])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .args([
                "--cluster-require-full-coverage",
                "no",
                "--cluster-migration-barrier",
                "1",
            ])
            .args([
                "--appendonly",
                "yes",
                "--protected-mode",
                "no",
                "--save",
                "",
                "--daemonize",
                "no",
            ])
            // Redis 5.0's default (disk-based sync, no 5 s diskless delay), as in the seed's image.
            .args(["--repl-diskless-sync", "no"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        netns.enter(&mut c);
        self.child = Some(
            c.spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", self.redis.server().display())),
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        let addr = (netns.ip, 6379).into();
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "redis-server on {} exited with {st}; log:\n{}",
                    self.ip,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not listen within 15s:\n{}",
                self.ip,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// SIGKILL: the process dies without a chance to save anything beyond what it already wrote.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the process and hands back its network namespace (a pod object gone, its address
    /// free for another pod).
    pub(crate) fn take_network(&mut self) -> PodNetwork {
        self.kill();
        self.netns.take().expect("a pod network")
    }

    /// A recreated pod in `netns`: the process dies, the rendered update-node.sh rewrites the
    /// `myself` address in the nodes.conf the server wrote, and redis-server starts again there.
    pub(crate) fn restart_in(&mut self, netns: PodNetwork) {
        self.kill();
        let ip = netns.ip.to_string();
        update_node(&self.dir.join("nodes.conf"), &ip);
        self.ip = ip;
        self.netns = Some(netns);
        self.spawn();
    }
}

/// Runs the rendered update-node.sh with `sh`, as a pod's command does before redis-server.
pub(crate) fn update_node(nodes_conf: &Path, pod_ip: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(kubectl_redis::render::UPDATE_NODE_SH)
        .args(["update-node.sh", "true"])
        .env("NODES_CONF", nodes_conf)
        .env("POD_IP", pod_ip)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "update-node.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// N redis-server "pods" named redis-cluster-<i>, each in its own network namespace on a bridge
/// of the test's own, with fake Kubernetes nodes.
pub(crate) struct TestCluster {
    pub redis: Redis,
    pub procs: Vec<RedisProc>,
    pub topo: Topology,
    pub tmp: tempfile::TempDir,
    pub t: StreamTransport<DirectConnector>,
    extra: Vec<String>,
    // Last: the bridge goes after the pods' namespaces.
    pub network: Network,
}

impl TestCluster {
    pub(crate) fn start(
        redis: Redis,
        k8s_nodes: &[&str],
        masters: usize,
        replicas: usize,
    ) -> TestCluster {
        TestCluster::start_with(redis, k8s_nodes, masters, replicas, &[])
    }

    /// With `extra` redis-server arguments on every pod.
    pub(crate) fn start_with(
        redis: Redis,
        k8s_nodes: &[&str],
        masters: usize,
        replicas: usize,
        extra: &[&str],
    ) -> TestCluster {
        let network = Network::create().unwrap_or_else(|e| panic!("{e:#}"));
        let mut c = TestCluster {
            redis,
            procs: Vec::new(),
            topo: Topology::new(Vec::new(), masters, replicas),
            tmp: tempfile::tempdir().unwrap(),
            t: direct(Duration::from_secs(5)),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            network,
        };
        for node in k8s_nodes {
            c.add_pod(node);
        }
        c
    }

    /// A fresh pod network namespace with a new address.
    pub(crate) fn pod_network(&self) -> PodNetwork {
        self.network.add_pod().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Add a pod (scale up).
    pub(crate) fn add_pod(&mut self, node: &str) {
        let i = self.procs.len();
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let proc = RedisProc::start(
            self.redis,
            self.pod_network(),
            &self.tmp.path().join(format!("pod{i}")),
            &extra,
        );
        self.topo.pods.push(PodInfo {
            name: format!("redis-cluster-{i}"),
            ordinal: i as u32,
            ip: Some(proc.ip.clone()),
            node: Some(node.to_string()),
            pvc: format!("data-redis-cluster-{i}"),
            revision: None,
            ready: true,
            crash: None,
        });
        self.procs.push(proc);
    }

    /// Remove the highest pod (StatefulSet scale-down).
    pub(crate) fn remove_last_pod(&mut self) {
        self.procs.pop();
        self.topo.pods.pop();
    }

    pub(crate) fn addr(&self, i: usize) -> PodAddr {
        PodAddr {
            name: self.topo.pods[i].name.clone(),
            ip: self.procs[i].ip.clone(),
            port: 6379,
        }
    }

    /// Pod i recreated (same volume, new namespace and IP), as a StatefulSet does after the
    /// pod object is deleted; update-node.sh runs first. Returns the new IP.
    pub(crate) fn restart_pod(&mut self, i: usize) -> String {
        let netns = self.pod_network();
        self.restart_pod_in(i, netns)
    }

    /// Pod i recreated in `netns` (e.g. one another pod had before: its old address).
    pub(crate) fn restart_pod_in(&mut self, i: usize, netns: PodNetwork) -> String {
        self.procs[i].restart_in(netns);
        let ip = self.procs[i].ip.clone();
        self.topo.pods[i].ip = Some(ip.clone());
        ip
    }

    pub(crate) async fn call(&self, i: usize, c: Cmd) -> Reply {
        call(&self.t, &self.addr(i), c)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    pub(crate) async fn nodes_text(&self, i: usize) -> String {
        self.call(i, cmd(["CLUSTER", "NODES"]))
            .await
            .text()
            .unwrap()
    }

    pub(crate) fn index_of(&self, pod: &str) -> usize {
        self.topo.pods.iter().position(|p| p.name == pod).unwrap()
    }

    /// slot → master address, from the view of a reachable pod.
    pub(crate) async fn slot_owners(&self) -> Vec<Option<PodAddr>> {
        for i in 0..self.procs.len() {
            if !self.procs[i].is_running() {
                continue;
            }
            let Ok(reply) = call(&self.t, &self.addr(i), cmd(["CLUSTER", "NODES"])).await else {
                continue;
            };
            let nodes = parse_nodes(&reply.text().unwrap()).unwrap();
            let mut map = vec![None; 16384];
            for n in nodes.iter().filter(|n| n.is_master() && !n.failing()) {
                let Some(pi) = self
                    .procs
                    .iter()
                    .position(|p| p.ip == n.ip && p.is_running())
                else {
                    continue;
                };
                for &(a, b) in &n.slots {
                    for s in a..=b {
                        map[s as usize] = Some(self.addr(pi));
                    }
                }
            }
            return map;
        }
        panic!("no pod reachable");
    }

    /// Group keys by the master that serves their slot.
    async fn by_master(&self, keys: impl Iterator<Item = u32>) -> BTreeMap<PodAddr, Vec<u32>> {
        // Right after a failover a peer may not have heard of the promotion yet: wait for a view
        // where every slot has a live master.
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut owners = self.slot_owners().await;
        while owners.iter().any(Option::is_none) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            owners = self.slot_owners().await;
        }
        let mut out: BTreeMap<PodAddr, Vec<u32>> = BTreeMap::new();
        for k in keys {
            let slot = key_slot(key(k).as_bytes()) as usize;
            let owner = owners[slot]
                .clone()
                .unwrap_or_else(|| panic!("slot {slot} has no live master"));
            out.entry(owner).or_default().push(k);
        }
        out
    }

    /// SET key:<i> for every i, pipelined per master. With `wait`, each batch of SETs is followed
    /// by `WAIT 1 <ms>`, and only keys whose batch reached a replica count as acknowledged (WAIT
    /// covers every earlier write of the connection). One WAIT per SET in a pipeline would cost
    /// Redis 5.0 ~100 ms each: it unblocks the next pipelined WAIT only on its next cron tick.
    pub(crate) async fn write_keys(&self, keys: std::ops::Range<u32>, wait: bool) -> Vec<u32> {
        let mut acked = Vec::new();
        for (addr, ks) in self.by_master(keys).await {
            for chunk in ks.chunks(if wait { 100 } else { 500 }) {
                let mut cmds: Vec<Cmd> = chunk
                    .iter()
                    .map(|k| cmd(["SET".to_string(), key(*k), value(*k)]))
                    .collect();
                if wait {
                    cmds.push(cmd(["WAIT", "1", "1000"]));
                }
                let replies = self.t.pipeline(&addr, &cmds).await.unwrap();
                for (k, r) in chunk.iter().zip(&replies) {
                    assert_eq!(*r, Reply::Status("OK".into()), "SET {} on {addr}", key(*k));
                }
                if !wait || replies[chunk.len()].int().unwrap_or(0) >= 1 {
                    acked.extend_from_slice(chunk);
                }
            }
            self.wait_until_in_aof(&addr).await;
        }
        acked
    }

    /// With `appendfsync everysec` Redis acknowledges a write before it reaches the AOF file (for
    /// up to 2 s while an fsync is in flight), so a process killed in that window loses it on every
    /// node at once: Redis's documented durability, not the plugin's doing. Tests that kill
    /// processes wait until the writes are in the file first.
    async fn wait_until_in_aof(&self, addr: &PodAddr) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let reply = self
                .t
                .pipeline(addr, &[cmd(["INFO", "persistence"])])
                .await
                .unwrap();
            let info = reply[0].text().unwrap();
            if info.contains("aof_buffer_length:0") && info.contains("aof_pending_bio_fsync:0") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{addr} never flushed its AOF:\n{info}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Read every key back; returns the keys missing or wrong.
    pub(crate) async fn missing_keys(&self, keys: &[u32]) -> Vec<u32> {
        let mut missing = Vec::new();
        for (addr, ks) in self.by_master(keys.iter().copied()).await {
            for chunk in ks.chunks(500) {
                let cmds: Vec<Cmd> = chunk
                    .iter()
                    .map(|k| cmd(["GET".to_string(), key(*k)]))
                    .collect();
                let replies = self.t.pipeline(&addr, &cmds).await.unwrap();
                for (k, r) in chunk.iter().zip(replies) {
                    if r != Reply::Bulk(value(*k).into_bytes()) {
                        missing.push(*k);
                    }
                }
            }
        }
        missing
    }

    /// Every key reads back with its value, and the masters hold exactly `total` keys.
    pub(crate) async fn assert_no_keys_lost(&self, keys: &[u32], total: u64, when: &str) {
        let missing = self.missing_keys(keys).await;
        assert!(
            missing.is_empty(),
            "{} keys lost {when}, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        assert_eq!(self.total_keys_on_masters().await, total);
    }

    pub(crate) async fn total_keys_on_masters(&self) -> u64 {
        let mut total = 0;
        for i in 0..self.procs.len() {
            if !self.procs[i].is_running() {
                continue;
            }
            let info = self
                .call(i, cmd(["INFO", "replication"]))
                .await
                .text()
                .unwrap();
            if info.contains("role:master") {
                total += self.call(i, cmd(["DBSIZE"])).await.int().unwrap() as u64;
            }
        }
        total
    }
}

pub(crate) fn key(i: u32) -> String {
    format!("key:{i}")
}

pub(crate) fn value(i: u32) -> String {
    format!("value-{i}-{}", i.wrapping_mul(2654435761))
}

pub(crate) fn fast() -> kubectl_redis::cluster::FormOptions {
    kubectl_redis::cluster::FormOptions {
        timeout: Duration::from_secs(60),
        poll: Duration::from_millis(50),
    }
}
