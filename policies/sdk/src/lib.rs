//! SDK for kubectl-redis policy modules.
//!
//! A policy is a `cdylib` crate built for `wasm32-unknown-unknown`. It declares its rules and a
//! settings type, and writes one function from the rendered bundle to findings; [`kr_policy!`]
//! generates the ABI exports (see `policies/README.md`), so an author never touches pointers.
//!
//! ```ignore
//! use kr_policy_sdk::prelude::*;
//!
//! #[derive(Default, Deserialize)]
//! #[serde(default, deny_unknown_fields)]
//! struct Settings { forbidden: Vec<String> }
//! impl PolicySettings for Settings {}
//!
//! const NO_LATEST: Rule = Rule::deny("no-latest", "Images are pinned");
//!
//! kr_policy!(name: "example", rules: [NO_LATEST], settings: Settings, evaluate: evaluate);
//!
//! fn evaluate(input: &Input, _: &Settings) -> Vec<Finding> {
//!     let mut out = Vec::new();
//!     for w in input.workloads() {
//!         for c in w.containers() {
//!             if c.image().ends_with(":latest") {
//!                 out.push(NO_LATEST.finding(w.object, c.pointer("/image"), "image uses :latest"));
//!             }
//!         }
//!     }
//!     out
//! }
//! ```

pub mod abi;
pub mod bump;
pub mod index;
pub mod k8s;
pub mod quantity;
pub mod redis_conf;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

pub use serde_json::json;

/// Every module built with the SDK allocates with [`bump::Bump`]: the host gives each call a
/// fresh instance, so nothing needs to be reused, and parsing is most of a module's work.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: bump::Bump = bump::Bump::new();

pub use kr_policy_abi::{Finding, ObjectRef, Severity, ABI_VERSION};

pub mod prelude {
    pub use crate::index::IndexedWorkload;
    pub use crate::k8s::{Container, Workload};
    pub use crate::{
        json, kr_policy, Finding, FindingExt, Input, ObjectRef, PolicySettings, Rule, Severity,
    };
    pub use serde::Deserialize;
    pub use serde_json::Value;
}

/// A rule a policy declares in its metadata; every finding names one.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    pub description: &'static str,
}

impl Rule {
    pub const fn deny(id: &'static str, description: &'static str) -> Rule {
        Rule {
            id,
            severity: Severity::Deny,
            description,
        }
    }

    pub const fn warn(id: &'static str, description: &'static str) -> Rule {
        Rule {
            id,
            severity: Severity::Warn,
            description,
        }
    }

    /// A finding of this rule at its declared severity.
    pub fn finding(
        &self,
        object: &Value,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            rule: self.id.to_string(),
            severity: self.severity,
            object: ObjectRef::of(object),
            path: path.into(),
            message: message.into(),
            fix: None,
        }
    }

    /// The rule as the metadata carries it.
    pub fn info(&self) -> kr_policy_abi::RuleInfo {
        kr_policy_abi::RuleInfo {
            id: self.id.to_string(),
            severity: self.severity,
            description: self.description.to_string(),
        }
    }
}

/// Builders for a [`Finding`] beyond [`Rule::finding`].
pub trait FindingExt {
    /// The same finding at another severity (a rule that warns in some bundles).
    fn with_severity(self, severity: Severity) -> Finding;
    /// The same finding with a fix: RFC 6902 JSON patch operations against its object.
    fn with_fix(self, ops: Vec<Value>) -> Finding;
}

impl FindingExt for Finding {
    fn with_severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }

    fn with_fix(mut self, ops: Vec<Value>) -> Finding {
        self.fix = Some(ops);
        self
    }
}

/// What the host passes to `kr_evaluate` ([`kr_policy_abi::Input`]): the rendered bundle's
/// objects of the kinds the policy declared (all of them when it declared none), in bundle order.
#[derive(Debug, Deserialize)]
#[serde(from = "kr_policy_abi::Input")]
pub struct Input {
    pub abi: i32,
    pub objects: Vec<Value>,
    pub settings: Value,
    /// Lookups over `objects`, built on first use (see [`index::Index`]).
    index: std::cell::OnceCell<index::Index>,
}

impl From<kr_policy_abi::Input> for Input {
    fn from(input: kr_policy_abi::Input) -> Input {
        Input {
            abi: input.abi,
            objects: input.objects,
            settings: input.settings,
            index: std::cell::OnceCell::new(),
        }
    }
}

/// A policy's settings: deserialized from the `--policy-settings` entry named after the policy
/// (an empty object when there is none) and validated when the module loads.
pub trait PolicySettings: DeserializeOwned {
    /// Checks beyond the shape serde already enforces.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Generates the module's ABI exports. See the crate docs for an example.
///
/// `kinds: [..]` (optional) lists the object kinds the policy reads, as slices of kind names
/// (e.g. `kinds: [k8s::WORKLOAD_KINDS, &["Service"]]`): the host then sends it only the objects
/// of those kinds, which spares it parsing the rest. Without it, the policy gets every object.
#[macro_export]
macro_rules! kr_policy {
    (name: $name:expr, rules: [$($rule:expr),* $(,)?], settings: $settings:ty, evaluate: $evaluate:path $(,)?) => {
        $crate::kr_policy!(name: $name, rules: [$($rule),*], kinds: [], settings: $settings, evaluate: $evaluate);
    };
    (name: $name:expr, rules: [$($rule:expr),* $(,)?], kinds: [$($kinds:expr),* $(,)?], settings: $settings:ty, evaluate: $evaluate:path $(,)?) => {
        const _: () = {
            const RULES: &[$crate::Rule] = &[$($rule),*];
            const KINDS: &[&[&str]] = &[$($kinds),*];

            #[cfg(target_arch = "wasm32")]
            #[no_mangle]
            pub extern "C" fn kr_abi_version() -> i32 {
                $crate::ABI_VERSION
            }

            #[cfg(target_arch = "wasm32")]
            #[no_mangle]
            pub extern "C" fn kr_alloc(len: u32) -> u32 {
                $crate::abi::alloc(len)
            }

            #[cfg(target_arch = "wasm32")]
            #[no_mangle]
            pub extern "C" fn kr_metadata() -> u64 {
                $crate::abi::metadata($name, env!("CARGO_PKG_VERSION"), RULES, KINDS)
            }

            #[cfg(target_arch = "wasm32")]
            #[no_mangle]
            pub extern "C" fn kr_validate_settings(ptr: u32, len: u32) -> u64 {
                $crate::abi::validate_settings::<$settings>(ptr, len)
            }

            #[cfg(target_arch = "wasm32")]
            #[no_mangle]
            pub extern "C" fn kr_evaluate(ptr: u32, len: u32) -> u64 {
                $crate::abi::evaluate::<$settings>(ptr, len, RULES, $evaluate)
            }

            #[cfg(target_arch = "wasm32")]
            #[no_mangle]
            pub extern "C" fn kr_panic_message() -> u64 {
                $crate::abi::panic_message()
            }

            // Native builds (cargo check/test on the host) still type-check the evaluate function.
            #[cfg(not(target_arch = "wasm32"))]
            #[allow(dead_code)]
            fn __kr_evaluate(input: &$crate::Input, settings: &$settings) -> Vec<$crate::Finding> {
                let _ = ($name, RULES, KINDS);
                $evaluate(input, settings)
            }
        };
    };
}
