//! Policy: evaluates the rendered bundle with WebAssembly policy modules (built-in and the user's).
//!
//! The ABI a module implements is documented in `policies/README.md`. The host side here:
//! [`engine`] loads, sandboxes and calls modules, with the wasmtime settings of
//! [`engine_config`]; [`builtin`] holds the built-in modules, precompiled by build.rs;
//! [`cache`] keeps compiled `--policy` modules on disk;
//! [`settings`] reads `--policy-settings`; [`waiver`] applies written-reason exceptions;
//! [`location`] maps findings back to file:line of the spec; [`run`] runs what a command asks for.

mod builtin;
mod cache;
mod engine;
/// Public for build.rs's sake: it compiles the built-in policies with this configuration.
pub mod engine_config;
mod location;
mod run;
mod settings;
mod waiver;

pub use cache::ModuleCache;

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

pub use engine::{EngineOptions, Limits, Policy, PolicyEngine, PolicyError, PolicyErrorKind};
pub use run::{run, PolicyOptions};
pub use settings::PolicySettings;
pub use waiver::Waiver;

use crate::input::Location;
use crate::object::PackedObject;

pub use kr_policy_abi::{Metadata, ObjectRef, RuleInfo, Severity};

/// The ABI versions this host speaks: 1 sends a module its input as JSON text, 2 (the SDK's
/// since it exists) packed ([`kr_policy_abi::packed`]), which the module reads in place.
pub const SUPPORTED_ABI: &[i32] = &[1, kr_policy_abi::ABI_VERSION];

/// Where a module's native code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleSource {
    /// Compiled by build.rs and embedded in the binary (the built-in policies).
    Precompiled,
    /// Read from the on-disk cache of compiled modules.
    Cache,
    /// JIT-compiled by this process (then written to the cache, when there is one).
    Compiled,
}

/// What identifies an object when a finding or a waiver names it: kind, namespace and name, not
/// apiVersion (a policy may not know the group version). Borrowed, to index a bundle by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectKey<'a> {
    pub kind: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

impl<'a> ObjectKey<'a> {
    pub fn of_object(object: &'a PackedObject) -> ObjectKey<'a> {
        ObjectKey {
            kind: object.kind(),
            namespace: object.namespace(),
            name: object.name(),
        }
    }

    pub fn of_ref(object: &'a ObjectRef) -> ObjectKey<'a> {
        ObjectKey {
            kind: &object.kind,
            namespace: object.namespace.as_deref(),
            name: &object.name,
        }
    }
}

/// Why a finding does not count: the waiver and its written reason.
#[derive(Debug, Clone, Serialize)]
pub struct Suppression {
    pub reason: String,
    /// Where the waiver was written (annotation or spec field).
    pub source: String,
}

/// One finding of one policy, validated by the host.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The policy (module) name from its metadata.
    pub policy: String,
    pub rule: String,
    pub severity: Severity,
    pub object: ObjectRef,
    /// JSON pointer into the rendered object.
    pub path: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<Value>,
    /// The spec file and line the finding points at, where known.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "location::serialize"
    )]
    pub location: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppression>,
}

impl Finding {
    /// A deny-level finding that is not waived: it makes `check` exit 2.
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Deny && self.suppressed.is_none()
    }
}

/// How one module's run went.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyRun {
    pub policy: String,
    pub module: String,
    pub version: String,
    #[serde(serialize_with = "micros")]
    pub duration: Duration,
    /// How many of the bundle's objects it was sent: those of the kinds it declared.
    pub objects: usize,
    pub findings: usize,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// Everything the policies said about a bundle.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub policies: Vec<PolicyRun>,
    /// All rules of the policies that ran, for SARIF and waiver validation.
    #[serde(skip)]
    pub rules: Vec<(String, RuleInfo)>,
}

impl Report {
    pub fn blocking(&self) -> usize {
        self.findings.iter().filter(|f| f.blocks()).count()
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.suppressed.is_none() && f.severity == severity)
            .count()
    }

    pub fn suppressed(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.suppressed.is_some())
            .count()
    }
}
