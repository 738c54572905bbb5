//! Test support for the pure core: a [`Topology`] and an [`Observation`] from a compact
//! description of the pods. Each [`Pod`] is a pod of the StatefulSet `redis-cluster` (name,
//! ordinal, IP, Kubernetes node) with what its Redis reports: `CLUSTER NODES` text, parsed with the
//! real [`parse_nodes`], its `CLUSTER INFO` state, its key count and its replication link.
//!
//! Node ids are one hex digit 40 times: [`id`]`(3)` is `3333…3`, written `$3` in `CLUSTER NODES`
//! text. Pod `n` is `redis-cluster-n` at `10.0.0.(10+n)` on Kubernetes node `node-<letter n>`
//! unless a test says otherwise.

use std::collections::BTreeMap;

use super::nodes::{even_ranges, parse_info, parse_nodes, ranges_to_string, NODE_ID_LEN};
use super::observe::{Observation, PodError, PodState};
use super::topology::{PodInfo, Topology};

/// The node id of node `n` (0..16): its hex digit, 40 times.
pub(super) fn id(n: u32) -> String {
    let digit = char::from_digit(n, 16).expect("fixture node ids are one hex digit");
    digit.to_string().repeat(NODE_ID_LEN)
}

/// `redis-cluster-n`.
pub(super) fn name(n: u32) -> String {
    format!("redis-cluster-{n}")
}

/// The IP pod `n` has unless a test moves it: `10.0.0.(10+n)`.
pub(super) fn ip(n: u32) -> String {
    format!("10.0.0.{}", 10 + n)
}

/// The StatefulSet revision every fixture pod runs unless a test moves it.
pub(super) const REVISION: &str = "redis-cluster-old";

/// `$<hex digit>` → that node's id.
fn expand(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '$' {
            let n = chars
                .next()
                .and_then(|d| d.to_digit(16))
                .expect("`$` in fixture text takes one hex digit");
            out.push_str(&id(n));
        } else {
            out.push(c);
        }
    }
    out
}

/// One line of `CLUSTER NODES` as every node but `node` itself reports it; [`nodes_text`] marks
/// the viewer's own line `myself`.
#[derive(Debug, Clone)]
pub(super) struct Line {
    /// Whose line: its id is [`id`]`(node)`.
    pub node: u32,
    /// The address the viewer has for it; empty for `noaddr` (written `:0@0`).
    pub ip: String,
    /// `master`, `slave`, `master,fail`, …
    pub flags: &'static str,
    pub master: Option<u32>,
    pub epoch: u64,
    /// `connected` or `disconnected`.
    pub link: &'static str,
    /// Slots as Redis writes them (`0-5460 7000`), empty when none.
    pub slots: String,
}

/// A formed cluster as everyone sees it: `masters` get the even split in order, each
/// `(replica, master)` pair replicates; every node at [`ip`], connected. Replicas show their
/// master's config epoch, as Redis prints it.
pub(super) fn lines(masters: &[u32], replicas: &[(u32, u32)]) -> Vec<Line> {
    let epoch = |m: u32| u64::from(m) + 1;
    let mut out: Vec<Line> = masters
        .iter()
        .zip(even_ranges(masters.len()))
        .map(|(&m, range)| Line {
            node: m,
            ip: ip(m),
            flags: "master",
            master: None,
            epoch: epoch(m),
            link: "connected",
            slots: ranges_to_string(&[range]),
        })
        .collect();
    out.extend(replicas.iter().map(|&(r, m)| Line {
        node: r,
        ip: ip(r),
        flags: "slave",
        master: Some(m),
        epoch: epoch(m),
        link: "connected",
        slots: String::new(),
    }));
    out.sort_by_key(|l| l.node);
    out
}

/// `CLUSTER NODES` as node `me` reports `lines` (Redis 5.0 format).
pub(super) fn nodes_text(me: u32, lines: &[Line]) -> String {
    let mut out = String::new();
    for l in lines {
        let mine = l.node == me;
        let addr = if l.ip.is_empty() {
            ":0@0".to_string()
        } else {
            format!("{}:6379@16379", l.ip)
        };
        let flags = if mine {
            format!("myself,{}", l.flags)
        } else {
            l.flags.to_string()
        };
        let master = l.master.map(id).unwrap_or_else(|| "-".into());
        let pong = if mine { "0" } else { "1700000000000" };
        let line = format!(
            "{} {addr} {flags} {master} 0 {pong} {} {} {}",
            id(l.node),
            l.epoch,
            l.link,
            l.slots
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One pod and what its Redis says.
#[derive(Debug, Clone)]
pub(super) struct Pod {
    pub info: PodInfo,
    /// Its `CLUSTER NODES` reply; `$n` stands for [`id`]`(n)`.
    pub nodes: String,
    /// `cluster_state` of its `CLUSTER INFO`.
    pub state: &'static str,
    /// `DBSIZE`.
    pub keys: u64,
    /// For a replica: `master_link_status:up`.
    pub master_link_up: Option<bool>,
    /// Set when it could not be asked: then it reports nothing else.
    pub error: Option<PodError>,
    /// Its replication offset (`INFO replication`).
    pub offset: u64,
    /// `redis_version` of `INFO server`.
    pub version: &'static str,
}

/// Pod `n` reporting `nodes`, `cluster_state:ok`, no keys.
pub(super) fn pod(n: u32, nodes: &str) -> Pod {
    let letter = char::from(b'a' + u8::try_from(n).expect("small ordinal"));
    Pod {
        info: PodInfo {
            name: name(n),
            ordinal: n,
            ip: Some(ip(n)),
            node: Some(format!("node-{letter}")),
            pvc: format!("data-{}", name(n)),
            revision: Some(REVISION.into()),
            ready: true,
            crash: None,
        },
        nodes: nodes.to_string(),
        state: "ok",
        keys: 0,
        master_link_up: None,
        error: None,
        offset: 1000,
        version: "5.0.6",
    }
}

/// A fresh pod: a master that knows no other node, owns nothing, epoch 0 (`cluster_state:fail`).
pub(super) fn lone(n: u32) -> Pod {
    let mut p = pod(
        n,
        &format!(
            "${n:x} {}:6379@16379 myself,master - 0 0 0 connected",
            ip(n)
        ),
    );
    p.state = "fail";
    p
}

/// The pods of a formed, healthy cluster: each member of `lines` reporting it, replicas in sync.
pub(super) fn cluster(lines: &[Line]) -> Vec<Pod> {
    lines
        .iter()
        .map(|l| {
            let mut p = pod(l.node, &nodes_text(l.node, lines));
            if l.master.is_some() {
                p.master_link_up = Some(true);
            }
            p
        })
        .collect()
}

/// The seed's healthy shape: masters 0, 1, 2 (even split), replicas 3 → 0, 4 → 1, 5 → 2, each
/// pod on a Kubernetes node of its own.
pub(super) fn seed() -> Vec<Pod> {
    cluster(&seed_lines())
}

pub(super) fn seed_lines() -> Vec<Line> {
    lines(&[0, 1, 2], &[(3, 0), (4, 1), (5, 2)])
}

/// The seed cluster after every pod restarted with a new IP (10.0.1.x): update-node.sh
/// rewrote each `myself` line, peers still have the old addresses, no cluster bus link and no
/// replication link is up.
pub(super) fn restarted() -> Vec<Pod> {
    let mut old = seed_lines();
    for l in &mut old {
        l.link = "disconnected";
    }
    (0..6)
        .map(|n| {
            let mut view = old.clone();
            view[n as usize].ip = new_ip(n);
            view[n as usize].link = "connected";
            let mut p = pod(n, &nodes_text(n, &view));
            p.info.ip = Some(new_ip(n));
            p.master_link_up = (n >= 3).then_some(false);
            p
        })
        .collect()
}

/// Pod `n`'s IP after a restart moved it: `10.0.1.(10+n)`.
pub(super) fn new_ip(n: u32) -> String {
    format!("10.0.1.{}", 10 + n)
}

/// The seed cluster with slot 5460 half-moved from redis-cluster-0 to redis-cluster-1.
pub(super) fn half_migrated() -> Vec<Pod> {
    let mut pods = seed();
    pods[0].nodes = "\
$0 10.0.0.10:6379@16379 myself,master - 0 0 1 connected 0-5460 [5460->-$1]
$1 10.0.0.11:6379@16379 master - 0 1700000000000 2 connected 5461-10922
$2 10.0.0.12:6379@16379 master - 0 1700000000000 3 connected 10923-16383
$3 10.0.0.13:6379@16379 slave $0 0 1700000000000 1 connected
$4 10.0.0.14:6379@16379 slave $1 0 1700000000000 2 connected
$5 10.0.0.15:6379@16379 slave $2 0 1700000000000 3 connected
"
    .into();
    pods[1].nodes = "\
$0 10.0.0.10:6379@16379 master - 0 1700000000000 1 connected 0-5460
$1 10.0.0.11:6379@16379 myself,master - 0 0 2 connected 5461-10922 [5460-<-$0]
$2 10.0.0.12:6379@16379 master - 0 1700000000000 3 connected 10923-16383
$3 10.0.0.13:6379@16379 slave $0 0 1700000000000 1 connected
$4 10.0.0.14:6379@16379 slave $1 0 1700000000000 2 connected
$5 10.0.0.15:6379@16379 slave $2 0 1700000000000 3 connected
"
    .into();
    pods
}

/// The seed cluster with redis-cluster-0 down: the others see it `fail` and disconnected.
/// `promoted`: its replica redis-cluster-3 has taken over its slots.
pub(super) fn master_down(promoted: bool) -> Vec<Pod> {
    let mut view = seed_lines();
    view[0].flags = "master,fail";
    view[0].link = "disconnected";
    if promoted {
        view[0].slots = String::new();
        view[3].flags = "master";
        view[3].master = None;
        view[3].epoch = 7;
        view[3].slots = "0-5460".into();
    }
    let mut pods = seed();
    for p in pods.iter_mut().skip(1) {
        p.nodes = nodes_text(p.info.ordinal, &view);
        if !promoted {
            p.state = "fail";
        }
    }
    pods[0].error = Some(PodError::Unreachable("direct: connection refused".into()));
    pods[3].master_link_up = if promoted { None } else { Some(false) };
    pods
}

/// The seed cluster with replica redis-cluster-4 gone: its pod was recreated and has no IP yet
/// (so it answers nothing), and the others see it `fail` and disconnected at its old address.
pub(super) fn replica_missing() -> Vec<Pod> {
    let mut view = seed_lines();
    view[4].flags = "slave,fail";
    view[4].link = "disconnected";
    let mut pods = seed();
    for p in &mut pods {
        p.nodes = nodes_text(p.info.ordinal, &view);
    }
    pods[4].info.ip = None;
    pods[4].error = Some(PodError::NoIp);
    pods
}

/// The seed cluster with replica redis-cluster-3 on its master's Kubernetes node (node-a).
pub(super) fn replica_beside_master() -> Vec<Pod> {
    let mut pods = seed();
    pods[3].info.node = Some("node-a".into());
    pods
}

/// Six fresh pods: an unformed cluster.
pub(super) fn fresh() -> Vec<Pod> {
    (0..6).map(lone).collect()
}

/// What [`observe`](super::observe::observe) would have made of these pods.
pub(super) fn observation(pods: &[Pod]) -> Observation {
    let pods = pods.iter().map(pod_state).collect();
    Observation { pods }
}

fn pod_state(p: &Pod) -> PodState {
    let mut st = PodState {
        pod: p.info.clone(),
        error: p.error.clone(),
        id: None,
        nodes: Vec::new(),
        info: BTreeMap::new(),
        keys: 0,
        master_link_up: None,
        replication_offset: None,
        redis_version: None,
    };
    if st.error.is_some() {
        return st;
    }
    st.nodes = parse_nodes(&expand(&p.nodes))
        .unwrap_or_else(|e| panic!("{}: fixture CLUSTER NODES: {e}", p.info.name));
    let assigned: usize = st.nodes.iter().map(|n| n.slot_count()).sum();
    st.info = parse_info(&format!(
        "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{assigned}\r\n\
         cluster_known_nodes:{}\r\n",
        p.state,
        st.nodes.len()
    ));
    st.keys = p.keys;
    st.master_link_up = p.master_link_up;
    st.replication_offset = Some(p.offset);
    st.redis_version = Some(p.version.to_string());
    st.id = st.myself().map(|m| m.id.clone());
    st
}

/// The StatefulSet's pods, wanting `masters` masters with `replicas` replicas each.
pub(super) fn topology(pods: &[Pod], masters: usize, replicas: usize) -> Topology {
    Topology::new(
        pods.iter().map(|p| p.info.clone()).collect(),
        masters,
        replicas,
    )
}
