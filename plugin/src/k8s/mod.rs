//! Talking to the Kubernetes API: [`client`] builds the client from kubectl's flags and gives
//! typed handles for the rendered objects, [`retry`] is the client's retry policy, [`errors`]
//! rewrites API errors into something a user can act on, [`objects`] names the kinds it manages.

mod client;
mod errors;
mod objects;
mod retry;

pub use client::{
    api_for, cascade, connect, delete_and_wait, ConnectOptions, Connection, FIELD_MANAGER,
};
pub use errors::{explain, invalid_causes, status_code, CauseReason, InvalidCause};
pub use objects::{api_resource, describe_object};
