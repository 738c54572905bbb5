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

pub use kr_policy_abi::packed;
pub use serde_json::json;

/// A JSON value of the input, read in place: the host sends the bundle packed
/// ([`kr_policy_abi::packed`]), and a rule reads only the fields it looks at, with nothing parsed
/// or copied. `Copy`, so helpers take and return it by value.
pub type Value<'a> = packed::Node<'a>;

/// Every module built with the SDK allocates with [`bump::Bump`]: the host gives each call a
/// fresh instance, so nothing needs to be reused.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: bump::Bump = bump::Bump::new();

pub use kr_policy_abi::{Finding, ObjectRef, Severity, ABI_VERSION};

pub mod prelude {
    pub use crate::index::IndexedWorkload;
    pub use crate::k8s::{Container, Workload};
    pub use crate::{
        json, kr_policy, Finding, FindingExt, Input, ObjectRef, PolicySettings, Rule, Severity,
        Value,
    };
    pub use serde::Deserialize;
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
        object: Value<'_>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            rule: self.id.to_string(),
            severity: self.severity,
            object: ObjectRef::of_packed(object),
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
    fn with_fix(self, ops: Vec<serde_json::Value>) -> Finding;
}

impl FindingExt for Finding {
    fn with_severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }

    fn with_fix(mut self, ops: Vec<serde_json::Value>) -> Finding {
        self.fix = Some(ops);
        self
    }
}

/// What the host passes to `kr_evaluate` ([`kr_policy_abi::Input`], packed): the rendered
/// bundle's objects of the kinds the policy declared (all of them when it declared none), in
/// bundle order, read in place from the bytes the host sent.
pub struct Input<'a> {
    pub abi: i32,
    pub objects: Vec<Value<'a>>,
    pub settings: serde_json::Value,
    /// Lookups over `objects`, built on first use (see [`index::Index`]).
    index: std::cell::OnceCell<index::Index<'a>>,
}

impl<'a> Input<'a> {
    /// The input in `bytes`, a packed [`kr_policy_abi::Input`].
    pub fn from_packed(bytes: &'a [u8]) -> Result<Input<'a>, String> {
        let root = Value::root(bytes).map_err(|e| e.to_string())?;
        let abi = root
            .get("abi")
            .and_then(Value::as_i64)
            .and_then(|v| i32::try_from(v).ok())
            .ok_or("no `abi` version")?;
        let objects = root
            .get("objects")
            .and_then(Value::as_array)
            .ok_or("no `objects` array")?;
        Ok(Input {
            abi,
            objects: objects.iter().collect(),
            settings: root
                .get("settings")
                .map_or(serde_json::Value::Null, |s| s.to_value()),
            index: std::cell::OnceCell::new(),
        })
    }
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("abi", &self.abi)
            .field("objects", &self.objects)
            .field("settings", &self.settings)
            .finish()
    }
}

/// The packed form of an input of `objects` (for tests, which write their bundles as JSON).
pub fn pack_input(objects: &[serde_json::Value], settings: &serde_json::Value) -> Vec<u8> {
    let objects: Vec<Vec<u8>> = objects.iter().map(pack).collect();
    let objects: Vec<&[u8]> = objects.iter().map(Vec::as_slice).collect();
    kr_policy_abi::packed::input(ABI_VERSION, &objects, settings)
        .expect("a test bundle fits the packed form")
}

/// The packed form of `value` (for tests).
pub fn pack(value: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    kr_policy_abi::packed::encode(value, &mut out).expect("a test value fits the packed form");
    out
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
/// of those kinds, which spares copying and walking the rest. Without it, the policy gets every
/// object.
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
            fn __kr_evaluate(input: &$crate::Input<'_>, settings: &$settings) -> Vec<$crate::Finding> {
                let _ = ($name, RULES, KINDS);
                $evaluate(input, settings)
            }
        };
    };
}
