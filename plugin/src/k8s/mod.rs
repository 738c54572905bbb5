//! Talking to the Kubernetes API: [`client`] builds the client from kubectl's flags and gives
//! typed handles for the rendered objects, [`retry`] is the client's retry policy, [`errors`]
//! rewrites API errors into something a user can act on, [`objects`] names the kinds it manages,
//! [`pods`] reads what a pod says about its own health.

mod client;
mod errors;
mod objects;
pub(crate) mod pods;
mod retry;

pub use client::{connect, ConnectOptions, Connection};
pub use objects::describe_object;

pub(crate) use client::{api_for, cascade, delete_and_wait, FIELD_MANAGER};
#[cfg(test)]
pub(crate) use errors::CauseReason;
pub(crate) use errors::{explain, invalid_causes, status_code, InvalidCause};
