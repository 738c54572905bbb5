//! One snapshot of what every pod's Redis says about the cluster.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::nodes::{parse_info, parse_nodes, NodeLine, SLOTS};
use super::resp::{RedisError, Reply};
use super::topology::{PodInfo, Topology};
use super::transport::{cmd, show_cmd, RedisTransport, StreamForbidden};

/// Why a pod could not be observed. Callers branch on the kind: waiting helps a pod without an
/// IP or one still loading its data, never one whose cluster mode is off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "camelCase")]
pub(crate) enum PodError {
    #[error("no pod IP yet")]
    NoIp,
    #[error("unreachable via {0}")]
    Unreachable(String),
    #[error("cluster mode is off (cluster-enabled no): this is not a Redis Cluster node")]
    ClusterModeOff,
    /// Redis refused the command for a reason no wait can fix (a password it asks for, a wrong
    /// one, a command it does not know): the message says which and what to do.
    #[error("{0}")]
    Refused(String),
    /// A command failed (e.g. `LOADING` while the AOF loads) or answered nonsense.
    #[error("{0}")]
    Failed(String),
}

impl PodError {
    /// An error waiting cannot fix: every wait on the pods ends at once with it.
    pub(crate) fn is_final(&self) -> bool {
        matches!(self, PodError::ClusterModeOff | PodError::Refused(_))
    }

    /// The pod error a Redis error reply to `command` stands for.
    fn of_reply(command: &str, message: &str) -> PodError {
        match RedisError::of(message) {
            RedisError::ClusterSupportDisabled => PodError::ClusterModeOff,
            RedisError::AuthRequired => PodError::Refused(format!(
                "{command} failed: {message} Redis asks for a password (`requirepass`) and \
                 kubectl-redis sent none: remove requirepass and masterauth from \
                 spec.redisConfig, which would also put the password in the ConfigMap in plain \
                 text"
            )),
            RedisError::AuthRefused => PodError::Refused(format!(
                "{command} failed: {message} Redis refuses the credentials or the user's \
                 permissions"
            )),
            RedisError::UnknownCommand => PodError::Refused(format!(
                "{command} failed: {message} This Redis does not know a command Redis Cluster \
                 management needs (renamed with rename-command, or not a Redis Cluster node)"
            )),
            _ => PodError::Failed(format!("{command} failed: {message}")),
        }
    }
}

/// What one pod reported (or why it could not).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PodState {
    pub pod: PodInfo,
    /// Set when the pod could not be asked.
    pub error: Option<PodError>,
    /// Its node id (`myself` line).
    pub id: Option<String>,
    /// Its view of the cluster: one line per node it knows, itself included.
    pub nodes: Vec<NodeLine>,
    /// `CLUSTER INFO`.
    pub info: BTreeMap<String, String>,
    /// Keys in db 0 (`DBSIZE`).
    pub keys: u64,
    /// For a replica: `master_link_status:up`.
    pub master_link_up: Option<bool>,
    /// Its replication offset (`INFO replication`): `master_repl_offset` on a master,
    /// `slave_repl_offset` on a replica.
    pub replication_offset: Option<u64>,
    /// `redis_version` of `INFO server`, e.g. `5.0.6`.
    pub redis_version: Option<String>,
}

impl PodState {
    pub(crate) fn ok(&self) -> bool {
        self.error.is_none()
    }
    pub(crate) fn myself(&self) -> Option<&NodeLine> {
        self.nodes.iter().find(|n| n.is_myself())
    }
    /// Knows no other node (a fresh node, or one whose MEET never happened).
    pub(crate) fn lone(&self) -> bool {
        self.nodes.iter().all(|n| n.is_myself())
    }
    /// Its line for node `id`, if it knows it.
    pub(crate) fn view_of(&self, id: &str) -> Option<&NodeLine> {
        self.nodes.iter().find(|n| n.id == id)
    }
    pub(crate) fn state_ok(&self) -> bool {
        self.info.get("cluster_state").map(String::as_str) == Some("ok")
    }
    /// Its slot map: slot → owner id.
    pub(crate) fn slot_map(&self) -> Vec<Option<&str>> {
        let mut map = vec![None; SLOTS as usize];
        for n in &self.nodes {
            for &(a, b) in &n.slots {
                for s in a..=b {
                    map[s as usize] = Some(n.id.as_str());
                }
            }
        }
        map
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Observation {
    pub pods: Vec<PodState>,
}

impl Observation {
    /// Node id → pod name, from each pod's own `myself` line.
    pub(crate) fn pod_of_id(&self) -> BTreeMap<String, String> {
        self.pods
            .iter()
            .filter_map(|p| Some((p.id.clone()?, p.pod.name.clone())))
            .collect()
    }
    pub(crate) fn get(&self, pod: &str) -> Option<&PodState> {
        self.pods.iter().find(|p| p.pod.name == pod)
    }
    pub(crate) fn id_of(&self, pod: &str) -> Option<&str> {
        self.get(pod)?.id.as_deref()
    }
    /// The pod a replica follows, in its own view (the last pod with that id, as in
    /// [`Observation::pod_of_id`]).
    pub(crate) fn master_of(&self, pod: &str) -> Option<String> {
        let id = self.get(pod)?.myself()?.master_id.as_deref()?;
        self.pods
            .iter()
            .rev()
            .find(|p| p.id.as_deref() == Some(id))
            .map(|p| p.pod.name.clone())
    }
    /// A master (in its own view) holding less than half the even share of `masters` masters:
    /// one a scale-out added and has not given its share yet, or a scale-out that stopped
    /// midway ([`super::scale::underfilled`]).
    pub(crate) fn has_underfilled_master(&self, masters: usize) -> bool {
        let share = usize::from(SLOTS) / masters.max(1);
        self.pods.iter().any(|p| {
            p.myself()
                .is_some_and(|m| m.is_master() && m.slot_count() * 2 < share)
        })
    }
    /// What `pods` say, as if the nodes of the others did not exist: only their states, and in
    /// each only the node lines of each other. A scale-in that stopped after some nodes forgot
    /// the departing ones is judged on this.
    pub(crate) fn among(&self, pods: &[String]) -> Observation {
        let gone: BTreeSet<&str> = self
            .pods
            .iter()
            .filter(|p| !pods.contains(&p.pod.name))
            .filter_map(|p| p.id.as_deref())
            .collect();
        let pods = self
            .pods
            .iter()
            .filter(|p| pods.contains(&p.pod.name))
            .map(|p| {
                let mut p = p.clone();
                p.nodes.retain(|n| !gone.contains(n.id.as_str()));
                p
            })
            .collect();
        Observation { pods }
    }
    /// A slot some node is migrating or importing: a move a previous run left half done.
    pub(crate) fn has_open_slots(&self) -> bool {
        self.pods.iter().any(|p| {
            p.myself()
                .is_some_and(|m| !m.migrating.is_empty() || !m.importing.is_empty())
        })
    }
    /// Every slot some pod believes is owned, by anyone.
    pub(crate) fn claimed_slots(&self) -> BTreeSet<u16> {
        let mut out = BTreeSet::new();
        for p in &self.pods {
            for n in &p.nodes {
                for &(a, b) in &n.slots {
                    out.extend(a..=b);
                }
            }
        }
        out
    }
}

fn text(r: &Reply) -> Result<String, String> {
    match r {
        Reply::Error(e) => Err(e.clone()),
        r => r.text().ok_or_else(|| format!("unexpected reply {r:?}")),
    }
}

/// Ask one pod.
pub(super) async fn observe_pod(
    t: &dyn RedisTransport,
    topo: &Topology,
    pod: &PodInfo,
) -> PodState {
    let mut st = PodState {
        pod: pod.clone(),
        error: None,
        id: None,
        nodes: Vec::new(),
        info: BTreeMap::new(),
        keys: 0,
        master_link_up: None,
        replication_offset: None,
        redis_version: None,
    };
    let Some(addr) = pod.addr(topo.port) else {
        st.error = Some(PodError::NoIp);
        return st;
    };
    let cmds = [
        cmd(["CLUSTER", "NODES"]),
        cmd(["CLUSTER", "INFO"]),
        cmd(["DBSIZE"]),
        cmd(["INFO", "replication"]),
        cmd(["INFO", "server"]),
    ];
    let replies = match t.pipeline(&addr, &cmds).await {
        Ok(r) => r,
        Err(e) if e.chain().any(|cause| cause.is::<StreamForbidden>()) => {
            st.error = Some(PodError::Refused(format!("{e:#}")));
            return st;
        }
        Err(e) => {
            st.error = Some(PodError::Unreachable(format!("{}: {e:#}", t.kind())));
            return st;
        }
    };
    let mut fail = |c: usize, e: String| {
        st.error
            .get_or_insert_with(|| PodError::of_reply(&show_cmd(&cmds[c]), &e));
    };
    match text(&replies[0]).and_then(|s| parse_nodes(&s).map_err(|e| e.to_string())) {
        Ok(nodes) => st.nodes = nodes,
        Err(e) => fail(0, e),
    }
    match text(&replies[1]) {
        Ok(s) => st.info = parse_info(&s),
        Err(e) => fail(1, e),
    }
    match replies[2].int() {
        Some(n) => st.keys = n.max(0) as u64,
        None => fail(
            2,
            text(&replies[2])
                .err()
                .unwrap_or_else(|| "not an integer".into()),
        ),
    }
    if let Ok(s) = text(&replies[3]) {
        let info = parse_info(&s);
        let offset = if info.get("role").map(String::as_str) == Some("slave") {
            st.master_link_up =
                Some(info.get("master_link_status").map(String::as_str) == Some("up"));
            "slave_repl_offset"
        } else {
            "master_repl_offset"
        };
        st.replication_offset = info.get(offset).and_then(|o| o.trim().parse().ok());
    }
    if let Some(Ok(s)) = replies.get(4).map(text) {
        st.redis_version = parse_info(&s)
            .get("redis_version")
            .map(|v| v.trim().to_string());
    }
    st.id = st.myself().map(|m| m.id.clone());
    st
}

/// Ask every pod, a bounded number at a time.
pub(super) async fn observe(t: &dyn RedisTransport, topo: &Topology) -> Observation {
    let pods = crate::fanout::all(topo.pods.iter().map(|p| observe_pod(t, topo, p))).await;
    Observation { pods }
}
