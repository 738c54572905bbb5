//! The local test cluster's integration tests, in one binary (one link of kube and the
//! supervisor instead of one per file).

mod common;

mod cli;
mod faults;
mod kubectl_apply;
mod net;
mod redis_cluster;
