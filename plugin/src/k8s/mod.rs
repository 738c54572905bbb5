//! Talking to the Kubernetes API: [`client`] builds the client from kubectl's flags and gives
//! typed handles for the rendered objects, [`retry`] is the client's retry policy, [`errors`]
//! rewrites API errors into something a user can act on.

mod client;
mod errors;
mod retry;

pub use client::{
    api_for, api_resource, cascade, connect, delete_and_wait, describe_object, ConnectOptions,
    Connection, FIELD_MANAGER,
};
pub use errors::{explain, invalid_causes, status_code, CauseReason, InvalidCause};
