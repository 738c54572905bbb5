//! kubectl-redis: a declarative Redis Cluster on Kubernetes.
//!
//! The modules follow the pipeline the data flows through:
//! `spec` (load + validate input) → `render` (Kubernetes objects) → `policy` (wasm evaluation)
//! → `plan` (live diff) → `apply` (server-side apply, ordering, waits) → `cluster` (Redis
//! formation / verify / heal) → `output` (text, json, sarif, github).

pub mod apply;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod completion;
pub mod destroy;
pub mod error;
pub mod fanout;
pub mod kubeapi;
pub mod output;
pub mod ownership;
pub mod plan;
pub mod policy;
pub mod redact;
pub mod render;
pub mod source;
pub mod spec;
pub mod style;
