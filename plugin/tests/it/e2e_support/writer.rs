//! A cluster-aware client that writes all the time, for the roll tests: one writer per shard
//! (keys of one third of the slots each), straight to the pod IPs through the plugin's own RESP
//! client, following `MOVED` and re-reading the slot map from any node it knows when a node
//! goes away. Each `SET` is followed by `WAIT 1 200`: a write is acknowledged only when WAIT
//! says a replica has it. Afterwards every acknowledged write is read back.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kubectl_redis::cluster::Reply;
use kubectl_redis::cluster::{cmd, DirectConnector, StreamTransport};
use kubectl_redis::cluster::{direct, key_slot, PodAddr, RedisTransport};
use kubectl_redis::cluster::{even_ranges, parse_nodes};

const SHARDS: usize = 3;

fn addr(ip: &str) -> PodAddr {
    PodAddr {
        name: ip.to_string(),
        ip: ip.to_string(),
        port: 6379,
    }
}

/// Slot → the master's IP, and every node address seen.
struct Router {
    transport: StreamTransport<DirectConnector>,
    known: Mutex<BTreeSet<String>>,
    owners: Mutex<Vec<String>>,
}

impl Router {
    fn new(ips: &[String]) -> Router {
        Router {
            transport: direct(Duration::from_millis(1000)),
            known: Mutex::new(ips.iter().cloned().collect()),
            owners: Mutex::new(vec![String::new(); 16384]),
        }
    }

    /// Reads the slot map from the first node that answers.
    async fn refresh(&self) {
        let known: Vec<String> = self.known.lock().unwrap().iter().cloned().collect();
        for ip in known {
            let Ok(reply) = self
                .transport
                .pipeline(&addr(&ip), &[cmd(["CLUSTER", "NODES"])])
                .await
            else {
                continue;
            };
            let Some(Ok(nodes)) = reply[0].text().map(|t| parse_nodes(&t)) else {
                continue;
            };
            let mut owners = self.owners.lock().unwrap();
            for n in nodes.iter().filter(|n| n.is_master() && !n.failing()) {
                for &(a, b) in &n.slots {
                    for s in a..=b {
                        owners[s as usize] = n.ip.clone();
                    }
                }
            }
            let mut known = self.known.lock().unwrap();
            known.extend(
                nodes
                    .iter()
                    .filter(|n| !n.ip.is_empty())
                    .map(|n| n.ip.clone()),
            );
            return;
        }
    }

    fn owner(&self, slot: u16) -> String {
        self.owners.lock().unwrap()[slot as usize].clone()
    }

    /// Runs `cmds` (about `key`) on the slot's master, following up to three `MOVED`s.
    async fn on_owner(&self, key: &str, cmds: &[Vec<Vec<u8>>]) -> Option<Vec<Reply>> {
        let slot = key_slot(key.as_bytes());
        for _ in 0..3 {
            let ip = self.owner(slot);
            if ip.is_empty() {
                self.refresh().await;
                continue;
            }
            let Ok(replies) = self.transport.pipeline(&addr(&ip), cmds).await else {
                self.refresh().await;
                return None;
            };
            match &replies[0] {
                Reply::Error(e) if e.starts_with("MOVED") => {
                    let to = e.split_whitespace().nth(2).unwrap_or("");
                    let to = to.rsplit_once(':').map_or(to, |(ip, _)| ip).to_string();
                    self.known.lock().unwrap().insert(to.clone());
                    self.owners.lock().unwrap()[slot as usize] = to;
                }
                _ => return Some(replies),
            }
        }
        None
    }

    /// SET, then WAIT 1: whether the SET was taken, and whether it was acknowledged (a
    /// replica has it).
    async fn write(&self, key: &str, value: &str) -> (bool, bool) {
        let cmds = [cmd(["SET", key, value]), cmd(["WAIT", "1", "200"])];
        match self.on_owner(key, &cmds).await {
            Some(r) => {
                let taken = r[0] == Reply::Status("OK".into());
                (taken, taken && r[1].int().is_some_and(|n| n >= 1))
            }
            None => (false, false),
        }
    }

    async fn read(&self, key: &str) -> Option<Vec<u8>> {
        match self.on_owner(key, &[cmd(["GET", key])]).await?.pop()? {
            Reply::Bulk(value) => Some(value),
            _ => None,
        }
    }
}

/// One write: when, whether the SET was taken, whether it was acknowledged.
type Attempt = (Instant, bool, bool);

/// What one shard's writer saw: each attempt (when, taken, acknowledged) and the writes
/// acknowledged.
#[derive(Default)]
struct ShardLog {
    attempts: Vec<Attempt>,
    acked: Vec<(String, String)>,
}

pub(crate) struct Writers {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<ShardLog>, Vec<String>)>,
}

/// How the writes went.
pub(crate) struct Outcome {
    pub attempts: usize,
    pub acked: Vec<(String, String)>,
    /// The longest time in which one shard's writes were not acknowledged, from its last
    /// acknowledged write before to its first after.
    pub longest_failure: Duration,
    /// The same for writes refused outright (no master reachable, CLUSTERDOWN): the shard was
    /// unwritable, not only unreplicated.
    pub longest_refusal: Duration,
    ips: Vec<String>,
}

impl Writers {
    pub(crate) fn start(ips: Vec<String>) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let router = Router::new(&ips);
                router.refresh().await;
                let ranges = even_ranges(SHARDS);
                let writers = (0..SHARDS).map(|shard| {
                    let (router, flag, (first, last)) = (&router, &flag, ranges[shard]);
                    async move {
                        let mut log = ShardLog::default();
                        let mut n = 0u64;
                        while !flag.load(Ordering::Relaxed) {
                            let key = loop {
                                n += 1;
                                let key = format!("roll:{shard}:{n}");
                                let slot = key_slot(key.as_bytes());
                                if (first..=last).contains(&slot) {
                                    break key;
                                }
                            };
                            let value = format!("v{n}");
                            let (taken, ok) = router.write(&key, &value).await;
                            log.attempts.push((Instant::now(), taken, ok));
                            if ok {
                                log.acked.push((key, value));
                            }
                            tokio::time::sleep(Duration::from_millis(if ok { 10 } else { 50 }))
                                .await;
                        }
                        log
                    }
                });
                let logs = futures::future::join_all(writers).await;
                let known = router.known.lock().unwrap().iter().cloned().collect();
                (logs, known)
            })
        });
        Writers { stop, thread }
    }

    pub(crate) fn stop(self) -> Outcome {
        self.stop.store(true, Ordering::Relaxed);
        let (logs, ips) = self.thread.join().expect("the writers do not panic");
        let ack = |a: &Attempt| (a.0, a.2);
        let take = |a: &Attempt| (a.0, a.1);
        let longest = |pick: &dyn Fn(&Attempt) -> (Instant, bool)| {
            logs.iter()
                .map(|l| longest_gap(l.attempts.iter().map(pick)))
                .max()
                .unwrap_or_default()
        };
        let (longest_failure, longest_refusal) = (longest(&ack), longest(&take));
        Outcome {
            attempts: logs.iter().map(|l| l.attempts.len()).sum(),
            acked: logs.into_iter().flat_map(|l| l.acked).collect(),
            longest_failure,
            longest_refusal,
            ips,
        }
    }
}

/// The longest stretch without success in a series of (when, succeeded): from the last
/// success before to the first after (or the last attempt).
fn longest_gap(attempts: impl Iterator<Item = (Instant, bool)>) -> Duration {
    let mut longest = Duration::ZERO;
    let (mut last_ok, mut failing, mut end) = (None, false, None);
    for (at, ok) in attempts {
        last_ok = last_ok.or(Some(at));
        end = Some(at);
        if ok {
            if failing {
                longest = longest.max(at.duration_since(last_ok.unwrap_or(at)));
            }
            last_ok = Some(at);
        }
        failing = !ok;
    }
    if let (true, Some(since), Some(end)) = (failing, last_ok, end) {
        longest = longest.max(end.duration_since(since));
    }
    longest
}

impl Outcome {
    /// The acknowledged writes that cannot be read back with their value.
    pub(crate) fn lost(&self, ips: &[String]) -> Vec<String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut all = self.ips.clone();
            all.extend(ips.iter().cloned());
            let router = Router::new(&all);
            router.refresh().await;
            let mut lost = Vec::new();
            for (key, value) in &self.acked {
                if router.read(key).await.as_deref() != Some(value.as_bytes()) {
                    lost.push(key.clone());
                }
            }
            lost
        })
    }
}
