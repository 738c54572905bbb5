//! The local test cluster's integration tests, in one binary (one link of kube and the
//! supervisor instead of one per file).

// Signals and network namespaces through libc, as in the crate itself.
#![allow(unsafe_code)]

mod common;

mod cli;
mod faults;
mod kubectl_apply;
mod net;
mod redis_cluster;
