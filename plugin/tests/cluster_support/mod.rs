//! Real redis-server processes on distinct loopback addresses, standing in for the pods of a
//! StatefulSet. Each test picks its own 127.X.Y.0/24 so tests in parallel never collide.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kubectl_redis::cluster::nodes::{key_slot, parse_nodes};
use kubectl_redis::cluster::resp::Reply;
use kubectl_redis::cluster::transport::{
    call, cmd, direct, Cmd, DirectConnector, RedisTransport, StreamTransport,
};
use kubectl_redis::cluster::{PodAddr, PodInfo, Topology};

pub const NODE_TIMEOUT_MS: u64 = 2000;

pub struct RedisProc {
    pub ip: String,
    pub dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
}

impl RedisProc {
    pub fn start(ip: &str, dir: &Path, extra: &[&str]) -> RedisProc {
        std::fs::create_dir_all(dir).unwrap();
        let mut p = RedisProc {
            ip: ip.into(),
            dir: dir.into(),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
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
        let mut c = Command::new("/usr/bin/redis-server");
        c.args([
            "--port",
            "6379",
            "--bind",
            &self.ip,
            "--bind-source-addr",
            &self.ip,
        ])
        .args(["--dir", self.dir.to_str().unwrap()])
        .args([
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ])
        .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
        // The seed's redis.conf.
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
        self.child = Some(c.spawn().expect("start /usr/bin/redis-server"));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect((self.ip.as_str(), 6379)).is_ok() {
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// SIGKILL: the process dies without a chance to save anything beyond what it already wrote.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// What update-node.sh does before redis-server starts on a recreated pod: rewrite the first
    /// IPv4 address on the `myself` line of nodes.conf to the new pod IP.
    pub fn restart_at(&mut self, new_ip: &str) {
        self.kill();
        let conf = self.dir.join("nodes.conf");
        if let Ok(text) = std::fs::read_to_string(&conf) {
            let out: Vec<String> = text
                .lines()
                .map(|l| {
                    if !l.contains("myself") {
                        return l.to_string();
                    }
                    let mut f: Vec<String> = l.split(' ').map(str::to_string).collect();
                    let (_, rest) = f[1].split_once(':').unwrap();
                    f[1] = format!("{new_ip}:{rest}");
                    f.join(" ")
                })
                .collect();
            std::fs::write(&conf, out.join("\n") + "\n").unwrap();
        }
        self.ip = new_ip.into();
        self.spawn();
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// N redis-server "pods" named redis-cluster-<i> on 127.<net>.<i+1>, with fake Kubernetes nodes.
pub struct TestCluster {
    pub net: String,
    pub procs: Vec<RedisProc>,
    pub topo: Topology,
    pub tmp: tempfile::TempDir,
    pub t: StreamTransport<DirectConnector>,
}

impl TestCluster {
    /// `net` like "127.71.1"; pods get `net`.10+i.
    pub fn start(net: &str, k8s_nodes: &[&str], masters: usize, replicas: usize) -> TestCluster {
        let tmp = tempfile::tempdir().unwrap();
        let mut procs = Vec::new();
        let mut pods = Vec::new();
        for (i, node) in k8s_nodes.iter().enumerate() {
            let ip = format!("{net}.{}", 10 + i);
            procs.push(RedisProc::start(
                &ip,
                &tmp.path().join(format!("pod{i}")),
                &[],
            ));
            pods.push(PodInfo {
                name: format!("redis-cluster-{i}"),
                ordinal: i as u32,
                ip: Some(ip),
                node: Some(node.to_string()),
                pvc: format!("data-redis-cluster-{i}"),
            });
        }
        let topo = Topology::new(pods, masters, replicas);
        TestCluster {
            net: net.into(),
            procs,
            topo,
            tmp,
            t: direct(Duration::from_secs(5)),
        }
    }

    /// Add a pod (scale up).
    pub fn add_pod(&mut self, node: &str) {
        let i = self.procs.len();
        let ip = format!("{}.{}", self.net, 10 + i);
        self.procs.push(RedisProc::start(
            &ip,
            &self.tmp.path().join(format!("pod{i}")),
            &[],
        ));
        self.topo.pods.push(PodInfo {
            name: format!("redis-cluster-{i}"),
            ordinal: i as u32,
            ip: Some(ip),
            node: Some(node.to_string()),
            pvc: format!("data-redis-cluster-{i}"),
        });
    }

    /// Remove the highest pod (StatefulSet scale-down).
    pub fn remove_last_pod(&mut self) {
        self.procs.pop();
        self.topo.pods.pop();
    }

    pub fn addr(&self, i: usize) -> PodAddr {
        PodAddr {
            name: self.topo.pods[i].name.clone(),
            ip: self.procs[i].ip.clone(),
            port: 6379,
        }
    }

    /// Restart pod i on a new IP, as a recreated pod with update-node.sh would.
    pub fn restart_pod_at(&mut self, i: usize, new_ip: &str) {
        self.procs[i].restart_at(new_ip);
        self.topo.pods[i].ip = Some(new_ip.into());
    }

    pub async fn call(&self, i: usize, c: Cmd) -> Reply {
        call(&self.t, &self.addr(i), c)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    pub async fn nodes_text(&self, i: usize) -> String {
        self.call(i, cmd(["CLUSTER", "NODES"]))
            .await
            .text()
            .unwrap()
    }

    pub fn index_of(&self, pod: &str) -> usize {
        self.topo.pods.iter().position(|p| p.name == pod).unwrap()
    }

    /// slot → master address, from the view of a reachable pod.
    pub async fn slot_owners(&self) -> Vec<Option<PodAddr>> {
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

    /// SET key:<i> for every i, pipelined per master. With `wait`, each SET is followed by
    /// `WAIT 1 <ms>` and only keys whose write reached a replica count as acknowledged.
    pub async fn write_keys(&self, keys: std::ops::Range<u32>, wait: bool) -> Vec<u32> {
        let mut acked = Vec::new();
        for (addr, ks) in self.by_master(keys).await {
            for chunk in ks.chunks(500) {
                let mut cmds: Vec<Cmd> = Vec::new();
                for k in chunk {
                    cmds.push(cmd(["SET".to_string(), key(*k), value(*k)]));
                    if wait {
                        cmds.push(cmd(["WAIT", "1", "1000"]));
                    }
                }
                let replies = self.t.pipeline(&addr, &cmds).await.unwrap();
                let step = if wait { 2 } else { 1 };
                for (j, k) in chunk.iter().enumerate() {
                    assert_eq!(
                        replies[j * step],
                        Reply::Status("OK".into()),
                        "SET {} on {addr}",
                        key(*k)
                    );
                    if !wait || replies[j * step + 1].int().unwrap_or(0) >= 1 {
                        acked.push(*k);
                    }
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
    pub async fn missing_keys(&self, keys: &[u32]) -> Vec<u32> {
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
    pub async fn assert_no_keys_lost(&self, keys: &[u32], total: u64, when: &str) {
        let missing = self.missing_keys(keys).await;
        assert!(
            missing.is_empty(),
            "{} keys lost {when}, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        assert_eq!(self.total_keys_on_masters().await, total);
    }

    pub async fn total_keys_on_masters(&self) -> u64 {
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

pub fn key(i: u32) -> String {
    format!("key:{i}")
}

pub fn value(i: u32) -> String {
    format!("value-{i}-{}", i.wrapping_mul(2654435761))
}

pub fn fast() -> kubectl_redis::cluster::FormOptions {
    kubectl_redis::cluster::FormOptions {
        timeout: Duration::from_secs(60),
        poll: Duration::from_millis(50),
    }
}
