//! Plain Kubernetes manifests: checked against their k8s-openapi type, unknown fields included.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::input::{Document, SpecError};
use crate::object::PackedObject;

use super::decode::from_document;
use super::scalars::validate_dns_subdomain;
use super::{SpecKind, MAX_NODES};

/// Checks a plain manifest against its typed schema, including fields the schema does not know
/// (k8s-openapi ignores those silently; the API server would reject or drop them).
pub(super) fn manifest<T: DeserializeOwned + Serialize>(
    document: &Document,
) -> Result<SpecKind, SpecError> {
    let typed: T = from_document(document)?;
    // The value as written: the one the position parse built, else serde_yaml's reading.
    let parsed;
    let written = match &document.value {
        Some(value) => value,
        None => {
            parsed = from_document::<Value>(document)?;
            &parsed
        }
    };
    let understood = serde_json::to_value(&typed)
        .map_err(|e| SpecError::new(&document.file, format!("cannot re-encode: {e}")))?;
    if let Some(mut path) = first_unknown_field(written, &understood) {
        path.reverse();
        let pointer: String = path.iter().map(|part| format!("/{part}")).collect();
        return Err(document.field_error(&pointer, "unknown field for this kind".to_string()));
    }
    let name = understood.pointer("/metadata/name").and_then(Value::as_str);
    match name {
        None | Some("") => {
            Err(document.field_error("/metadata/name", "`metadata.name` is required"))
        }
        Some(name) => {
            validate_dns_subdomain(name).map_err(|e| document.field_error("/metadata/name", e))?;
            let packed = PackedObject::from_value(&understood)
                .map_err(|e| SpecError::new(&document.file, format!("cannot pack: {e}")))?;
            Ok(SpecKind::Manifest(packed))
        }
    }
}

fn first_unknown_field(written: &Value, understood: &Value) -> Option<Vec<String>> {
    // The path is built backwards, on the way out, and only for the field found: walking every
    // key of a large bundle is then free of allocations.
    match (written, understood) {
        (Value::Object(written), Value::Object(understood)) => {
            written.iter().find_map(|(key, value)| {
                let mut path = match understood.get(key) {
                    None if value.is_null() => return None,
                    None => Vec::new(),
                    Some(known) => first_unknown_field(value, known)?,
                };
                path.push(key.replace('~', "~0").replace('/', "~1"));
                Some(path)
            })
        }
        (Value::Array(written), Value::Array(understood)) => written
            .iter()
            .zip(understood)
            .enumerate()
            .find_map(|(i, (w, u))| {
                let mut path = first_unknown_field(w, u)?;
                path.push(i.to_string());
                Some(path)
            }),
        _ => None,
    }
}

/// A plain StatefulSet runs Redis too: the same bound on its pods.
pub(super) fn check_replicas(document: &Document, statefulset: &SpecKind) -> Result<(), SpecError> {
    let SpecKind::Manifest(object) = statefulset else {
        return Ok(());
    };
    match object
        .node()
        .pointer("/spec/replicas")
        .and_then(|r| r.as_i64())
    {
        Some(replicas) if replicas > i64::from(MAX_NODES) => Err(document.field_error(
            "/spec/replicas",
            format!("{replicas} replicas are more Redis nodes than the {MAX_NODES} supported"),
        )),
        _ => Ok(()),
    }
}
