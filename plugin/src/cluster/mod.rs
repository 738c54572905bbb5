//! Redis Cluster formation, verification, healing and status — natively, with only commands that
//! exist in Redis 5.0 (the seed's image): `CLUSTER ADDSLOTS`, `SET-CONFIG-EPOCH`, `MEET`,
//! `REPLICATE`, `SETSLOT`, `GETKEYSINSLOT`, `MIGRATE`, `FORGET`.
//!
//! Layout: a pure core ([`topology`] in, [`plan`] for roles and slots, [`spread`] for re-pairing
//! replicas rescheduled beside their master, [`decide`] for what may
//! be done, [`verify`] for judgement as [`finding`]s, [`diagnose`] for causes and their remedies,
//! all plain data) around the executors ([`form`], [`scale`], sharing [`exec`] and [`migrate`]) that talk to pods
//! through a [`RedisTransport`] (direct TCP, port-forward, or `redis-cli` exec); [`target`] is
//! the Kubernetes side (which StatefulSets, which transport) that `apply`, `plan` and `status`
//! call; [`status`] renders a report as text or JSON.
//!
//! Only `target`, `status` and the re-exports below are public: the rest is the module's own.

mod decide;
mod diagnose;
mod exec;
mod finding;
#[cfg(test)]
mod fixture;
mod form;
mod migrate;
mod nodes;
mod observe;
mod plan;
pub(crate) mod preview;
mod resp;
pub(crate) mod roll;
pub(crate) mod roll_exec;
mod scale;
mod spread;
pub mod status;
pub mod target;
mod topology;
mod transport;
mod verify;

pub use diagnose::{Cause, CauseKind, Severity};
pub use exec::{ClusterError, FormOptions};
pub use finding::{Finding, Kind};
pub use form::{ensure_cluster, verify_cluster, wait_healthy, FormOutcome};
pub use nodes::{even_ranges, key_slot, parse_info, parse_nodes};
pub use plan::Plan;
pub use preview::{RedisPreview, RedisStep};
pub use resp::{read_reply, Reply};
pub use roll::RollOptions;
pub use scale::{scale_in, ScaleInOutcome};
pub use spread::Repoint;
pub use topology::{names as pod_names, topology_from_kube, PodInfo, Topology};
pub use transport::{
    call, cmd, direct, parse_cli_output, port_forward, BoxFuture, Cmd, DirectConnector,
    ExecTransport, PodAddr, RedisTransport, StreamTransport,
};
pub use verify::{PodRow, Report};
