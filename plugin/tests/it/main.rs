//! kubectl-redis's integration tests, in one binary: one link of wasmtime, kube and the test
//! cluster instead of one per file. Run a group with `cargo test -p kubectl-redis --test it
//! e2e_plan_apply::`, one test by its name.

#[macro_use]
mod cluster_support;
mod e2e_support;

mod bad_input;
mod check_cli;
mod cluster_bench;
mod cluster_formation;
mod cluster_heal;
mod cluster_kube;
mod cluster_scale;
mod completion_cli;
mod e2e_cluster;
mod e2e_kill;
mod e2e_plan_apply;
mod e2e_real_server;
mod e2e_roll;
mod e2e_safety;
mod policy_abi;
mod policy_cache;
mod policy_engine;
mod policy_rules;
mod render_cli;
mod render_external;
