//! The kubectl-redis policy ABI, version 1: the JSON documents a policy module and the host
//! exchange (`policies/README.md` describes the exports), as types both sides compile. The host
//! (the plugin) and the guest SDK (`kr-policy-sdk`) depend on this crate, so a field renamed on
//! one side is renamed on the other, and both read Kubernetes quantities with one grammar
//! ([`quantity`]).
//!
//! `no_std` (with `alloc`) when built without its default `std` feature.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod packed;
pub mod quantity;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The ABI version this crate describes: what `kr_abi_version` returns and `Metadata::abi` says.
/// Version 2 sends [`Input`] packed ([`packed`]); version 1, its only difference, sent it as JSON
/// text, which a module spent nearly all its time parsing.
pub const ABI_VERSION: i32 = 2;

/// The exports a module has, with their wasm signatures (`i32` pointers and lengths; results
/// packed as `(ptr << 32) | len` of a JSON document in the module's memory).
pub mod exports {
    /// `() -> i32`: the ABI version.
    pub const ABI_VERSION: &str = "kr_abi_version";
    /// `(len: i32) -> i32`: a buffer of `len` bytes for the host to fill.
    pub const ALLOC: &str = "kr_alloc";
    /// `() -> i64`: a [`Metadata`](crate::Metadata).
    pub const METADATA: &str = "kr_metadata";
    /// `(ptr, len) -> i64`: settings JSON in, a [`SettingsAnswer`](crate::SettingsAnswer) out.
    pub const VALIDATE_SETTINGS: &str = "kr_validate_settings";
    /// `(ptr, len) -> i64`: an [`Input`](crate::Input) in, an [`Output`](crate::Output) out.
    pub const EVALUATE: &str = "kr_evaluate";
    /// `() -> i64`: a [`PanicMessage`](crate::PanicMessage) after a trap.
    pub const PANIC_MESSAGE: &str = "kr_panic_message";
}

/// Annotations with a meaning to policies.
pub mod annotations {
    /// `policy.kubectl-redis.io/waive-<rule-id>: "<reason>"` on an object waives a rule there.
    pub const WAIVE_PREFIX: &str = "policy.kubectl-redis.io/waive-";
    /// On the StatefulSet a `RedisCluster` spec renders: the number of masters.
    pub const MASTERS: &str = "redis.kubectl-redis.io/masters";
    /// On the StatefulSet a `RedisCluster` spec renders: replicas per master.
    pub const REPLICAS_PER_MASTER: &str = "redis.kubectl-redis.io/replicas-per-master";
}

/// How much a finding counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks: `check` exits 2.
    Deny,
    /// Reported, does not change the exit code.
    Warn,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Deny => "deny",
            Severity::Warn => "warn",
        }
    }
}

/// A rule a module declares in its metadata; every finding names one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub id: String,
    pub severity: Severity,
    #[serde(default)]
    pub description: String,
}

/// What `kr_metadata` returns: who the module is and its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub abi: i32,
    pub name: String,
    #[serde(default)]
    pub version: String,
    pub rules: Vec<RuleInfo>,
    /// The object kinds the module reads: the host sends it only objects of these kinds (in
    /// bundle order), or every object when the list is empty or absent. Most rules read a few
    /// kinds, and copying and walking objects a module never looks at is wasted work (all of
    /// its work when the input was JSON text it had to parse, ABI 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
}

/// The Kubernetes object of the bundle a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// The reference to `object` (a Kubernetes object as JSON); missing fields are empty.
    pub fn of(object: &Value) -> ObjectRef {
        ObjectRef::from_fields(|p| object.pointer(p).and_then(Value::as_str))
    }

    /// The reference to a packed object (what a module reads, [`packed`]).
    pub fn of_packed(object: packed::Node<'_>) -> ObjectRef {
        ObjectRef::from_fields(|p| object.pointer(p).and_then(packed::Node::as_str))
    }

    /// From the string at each JSON pointer.
    fn from_fields<'a>(field: impl Fn(&str) -> Option<&'a str>) -> ObjectRef {
        let s = |p: &str| field(p).map(String::from);
        ObjectRef {
            api_version: s("/apiVersion").unwrap_or_default(),
            kind: s("/kind").unwrap_or_default(),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name").unwrap_or_default(),
        }
    }

    /// Same object, ignoring apiVersion (a policy may not know the group version).
    pub fn matches(&self, object: &Value) -> bool {
        let other = ObjectRef::of(object);
        other.kind == self.kind && other.name == self.name && other.namespace == self.namespace
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{} (namespace {ns})", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// One violation as a module reports it: which rule, where (object + JSON pointer into it), why,
/// and optionally how to fix it (RFC 6902 JSON patch operations against that object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub object: ObjectRef,
    pub path: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<Vec<Value>>,
}

/// What `kr_evaluate` receives: the rendered bundle (the objects of the kinds the module's
/// [`Metadata::kinds`] names, or all of them) and the module's settings. As JSON text for an
/// ABI 1 module (the host sends the objects pre-encoded: hence the type parameters); packed
/// ([`packed::input`]) from ABI 2 on.
#[derive(Debug, Serialize, Deserialize)]
pub struct Input<Objects = Vec<Value>, Settings = Value> {
    pub abi: i32,
    pub objects: Objects,
    #[serde(default)]
    pub settings: Settings,
}

/// What `kr_evaluate` returns: the findings, or why the module could not evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    Findings(Vec<Finding>),
    Error(String),
}

/// What `kr_validate_settings` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsAnswer {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SettingsAnswer {
    pub fn from_result(result: Result<(), String>) -> SettingsAnswer {
        match result {
            Ok(()) => SettingsAnswer {
                ok: true,
                error: None,
            },
            Err(e) => SettingsAnswer {
                ok: false,
                error: Some(e),
            },
        }
    }
}

/// What `kr_panic_message` returns after a trap: the guest's last panic message, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanicMessage {
    #[serde(default)]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn output_is_an_object_with_one_key() {
        let out = Output::Findings(alloc::vec![Finding {
            rule: "ports".into(),
            severity: Severity::Deny,
            object: ObjectRef::of(
                &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "redis"}})
            ),
            path: "/spec/ports/0".into(),
            message: "no gossip port".into(),
            fix: Some(alloc::vec![
                json!({"op": "remove", "path": "/spec/ports/0"})
            ]),
        }]);
        let text = serde_json::to_value(&out).unwrap();
        assert_eq!(
            text,
            json!({"findings": [{"rule": "ports", "severity": "deny",
                "object": {"apiVersion": "v1", "kind": "Service", "name": "redis"},
                "path": "/spec/ports/0", "message": "no gossip port",
                "fix": [{"op": "remove", "path": "/spec/ports/0"}]}]})
        );
        assert_eq!(serde_json::from_value::<Output>(text).unwrap(), out);
        assert_eq!(
            serde_json::from_value::<Output>(json!({"error": "bad input"})).unwrap(),
            Output::Error("bad input".into())
        );
        assert!(serde_json::from_value::<Output>(json!({})).is_err());
    }

    #[test]
    fn unknown_finding_fields_are_refused() {
        let f = json!({"rule": "r", "severity": "warn", "object": {"apiVersion": "v1", "kind": "K", "name": "n"},
            "path": "", "message": "m", "fixes": []});
        assert!(serde_json::from_value::<Finding>(f).is_err());
    }

    #[test]
    fn settings_answer() {
        assert_eq!(
            serde_json::to_value(SettingsAnswer::from_result(Ok(()))).unwrap(),
            json!({"ok": true})
        );
        assert_eq!(
            serde_json::to_value(SettingsAnswer::from_result(Err("size: bad".into()))).unwrap(),
            json!({"ok": false, "error": "size: bad"})
        );
    }
}
