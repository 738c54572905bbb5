//! Plan: what `apply` would change in the live cluster, computed by the API server itself.
//!
//! For every rendered object the plugin reads the live object and, at the same time, asks the
//! server for a dry-run server-side apply with its field manager. The dry run's answer is what
//! the server would store (defaults, admission and merge strategies included), so comparing it
//! with the live object gives an exact plan. Objects are planned concurrently, a bounded number
//! at a time (`fanout`): the wall time is about two round trips per batch of objects.
//!
//! The stage has five parts: `model` (the plan's types), `compute` (the GET and dry run per
//! object, replace decisions, prune), `guards` (objects another instance owns, shrinks without
//! the drain, Namespaces kept), `drift` (fields other managers set outside the spec) and `show`
//! (the plan as text and JSON).

mod compute;
mod drift;
mod guards;
mod model;
mod show;

pub use compute::{compute, prepare, preview_redis, InvalidObject, Preparation, Prepared};
pub(crate) use guards::keep_namespaces;
pub use guards::{
    refuse_undrained_shrinks, ForeignObject, OwnedElsewhere, RedisPlanning, UndrainedShrink,
};
pub use model::{
    normalize, volume_fate, Action, Conflict, Drift, ObjectPlan, Plan, Summary, PLAN_FORMAT,
};
pub use show::{show, to_json, ShowOptions};
