//! kubectl-redis: a declarative Redis Cluster on Kubernetes, as a library of pipeline stages.
//!
//! The data flows `spec` (load + validate input, files and positions from `input`) → `render`
//! (Kubernetes objects) → `policy` (wasm evaluation) → `plan` (live diff by server-side dry
//! run) → `apply` (server-side apply, ordering, waits) → `cluster` (the Redis step: form,
//! verify, heal, scale) → `report` (text, json, sarif, github, style, redaction). `k8s`,
//! `ownership`, `fanout` and `wait` serve the stages that talk to the cluster.
//!
//! The library never parses flags, prompts or prints: stages take option structs and return
//! values, and report progress as [`progress::Event`]s. The `kubectl-redis` binary (`src/cmd`)
//! owns the command line, the prompts, the printing and the exit codes.

pub mod apply;
pub mod cluster;
pub mod destroy;
mod fanout;
pub mod input;
pub mod k8s;
pub mod object;
mod ownership;
mod parallel;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod render;
pub mod report;
pub mod spec;
pub mod wait;
