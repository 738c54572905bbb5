//! A Kubernetes object held packed ([`kr_policy_abi::packed`]) between the stages.
//!
//! A `serde_json::Value` costs about twenty times its JSON size (a BTreeMap node per mapping):
//! 10,000 small manifests took 64 MiB as Values, 4 MiB packed. The spec keeps each manifest
//! packed once it is checked, render labels it in that form, the policies read the very bytes,
//! and `render` writes YAML from them; the stages that talk to the API server (plan, apply,
//! destroy) turn the few objects of a real spec back into Values.

use std::cell::RefCell;
use std::fmt;

use kr_policy_abi::packed::{self, Node, PackError};
use serde_json::Value;

/// One object, packed. Always a well-formed document: only [`PackedObject::from_value`] and
/// [`PackedObject::merged`] make one.
#[derive(Clone, PartialEq, Eq)]
pub struct PackedObject {
    bytes: Box<[u8]>,
}

impl PackedObject {
    pub fn from_value(value: &Value) -> Result<PackedObject, PackError> {
        PackedObject::encoded(|buffer| packed::encode(value, buffer))
    }

    /// The object `encode` writes, encoded into a buffer kept per thread and then copied to an
    /// allocation of its exact size: growing a fresh Vec to each object's size was half the cost
    /// of packing, and the slack it left (a fifth of a bundle) stayed allocated.
    fn encoded(
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), PackError>,
    ) -> Result<PackedObject, PackError> {
        thread_local! {
            static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        BUFFER.with_borrow_mut(|buffer| {
            buffer.clear();
            encode(buffer)?;
            Ok(PackedObject {
                bytes: buffer.as_slice().into(),
            })
        })
    }

    /// The packed bytes, as a policy module reads them.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn node(&self) -> Node<'_> {
        Node::root(&self.bytes).expect("a PackedObject is encoded by this module")
    }

    pub fn to_value(&self) -> Value {
        self.node().to_value()
    }

    /// The string at a JSON pointer, e.g. `/metadata/name`.
    pub fn str_at(&self, pointer: &str) -> Option<&str> {
        self.node().pointer(pointer).and_then(Node::as_str)
    }

    pub fn kind(&self) -> &str {
        self.str_at("/kind").unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.str_at("/metadata/name").unwrap_or_default()
    }

    pub fn namespace(&self) -> Option<&str> {
        self.str_at("/metadata/namespace")
    }

    /// This object with `patch` merged in: an object in `patch` merges into the object at the
    /// same key (or is added), anything else replaces the value there. Keys stay in
    /// serde_json's (sorted) order, so the result is what packing the merged Value gives; it is
    /// made without unpacking the object, which labelling every object of a bundle would cost.
    pub fn merged(&self, patch: &Value) -> Result<PackedObject, PackError> {
        PackedObject::encoded(|buffer| merge_into(Some(self.node()), patch, buffer))
    }
}

fn merge_into(base: Option<Node<'_>>, patch: &Value, out: &mut Vec<u8>) -> Result<(), PackError> {
    let (Value::Object(patch), Some(base)) = (patch, base.and_then(Node::as_object)) else {
        // A scalar or array replaces; an object over a non-object is the patch's own object.
        return packed::encode(patch, out);
    };
    let mut entries: Vec<(&str, Option<Node<'_>>, Option<&Value>)> = base
        .iter()
        .map(|(key, value)| (key, Some(value), patch.get(key)))
        .collect();
    for (key, value) in patch {
        if !base.contains_key(key) {
            entries.push((key, None, Some(value)));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let count = u32::try_from(entries.len()).map_err(|_| PackError::TooLarge)?;
    let mark = packed::begin_object(out, count);
    for (key, base, patch) in entries {
        packed::write_key(out, key)?;
        match (base, patch) {
            (base, Some(patch)) => merge_into(base, patch, out)?,
            (Some(base), None) => out.extend_from_slice(base.as_bytes()),
            (None, None) => unreachable!("every entry comes from the base or the patch"),
        }
    }
    packed::end(out, mark)
}

impl fmt::Debug for PackedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.node(), f)
    }
}

impl serde::Serialize for PackedObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.node().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Merging in place gives what merging the Values and packing the result gives.
    #[test]
    fn merged_is_the_merge_of_the_values() {
        let base = json!({
            "kind": "Service",
            "metadata": {"name": "a", "labels": {"x": "1", "z": "3"}},
            "spec": {"ports": [{"port": 1}]},
        });
        for patch in [
            json!({"metadata": {"labels": {"y": "2", "x": "9"}}}),
            json!({"metadata": {"namespace": "ns", "labels": {"a": "0"}}}),
            json!({"apiVersion": "v1", "zz": {"new": [1, 2]}}),
            json!({"spec": "replaced"}),
            json!({"metadata": {"name": {"now": "an object"}}}),
            json!({}),
        ] {
            let mut expected = base.clone();
            merge_values(&mut expected, &patch);
            let merged = PackedObject::from_value(&base)
                .unwrap()
                .merged(&patch)
                .unwrap();
            assert_eq!(
                merged,
                PackedObject::from_value(&expected).unwrap(),
                "{patch}"
            );
        }
    }

    fn merge_values(base: &mut Value, patch: &Value) {
        match (base, patch) {
            (Value::Object(base), Value::Object(patch)) => {
                for (key, value) in patch {
                    merge_values(base.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
            (base, patch) => *base = patch.clone(),
        }
    }

    #[test]
    fn reads_the_identity_fields() {
        let object = PackedObject::from_value(
            &json!({"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}}),
        )
        .unwrap();
        assert_eq!(
            (object.kind(), object.name(), object.namespace()),
            ("ConfigMap", "c", Some("n"))
        );
        assert_eq!(object.to_value()["metadata"]["name"], "c");
    }
}
