//! Redis Cluster formation, verification, healing and status — natively, with only commands that
//! exist in Redis 5.0 (the seed's image): `CLUSTER ADDSLOTS`, `SET-CONFIG-EPOCH`, `MEET`,
//! `REPLICATE`, `SETSLOT`, `GETKEYSINSLOT`, `MIGRATE`, `FORGET`.
//!
//! Layout: a pure core ([`topology`] in, [`plan`] for roles and slots, [`decide`] for what may
//! be done, [`verify`] for judgement as [`finding`]s, [`diagnose`] for causes and their remedies,
//! all plain data) around the executors ([`form`], [`scale`], sharing [`exec`]) that talk to pods
//! through a [`transport::RedisTransport`] (direct TCP, port-forward, or `redis-cli` exec);
//! [`status`] renders a report as text or JSON.

pub mod decide;
pub mod diagnose;
pub mod exec;
pub mod finding;
#[cfg(test)]
mod fixture;
pub mod form;
pub mod nodes;
pub mod observe;
pub mod plan;
pub mod preview;
pub mod resp;
pub mod roll;
pub mod roll_exec;
pub mod scale;
pub mod status;
pub mod step;
pub mod topology;
pub mod transport;
pub mod verify;

pub use diagnose::{Cause, CauseKind, Severity};
pub use exec::{ClusterError, FormOptions};
pub use finding::{Finding, Kind};
pub use form::{ensure_cluster, verify_cluster, wait_healthy, FormOutcome};
pub use nodes::key_slot;
pub use plan::Plan;
pub use scale::{scale_in, ScaleInOutcome};
pub use topology::{topology_from_kube, PodInfo, Topology};
pub use transport::{direct, port_forward, ExecTransport, PodAddr, RedisTransport};
pub use verify::{PodRow, Report};
