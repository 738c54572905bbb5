//! Drift: fields of the live object that another field manager set and the spec does not
//! mention, read from its managedFields.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::model::Drift;
use crate::k8s::FIELD_MANAGER;

/// Kubernetes' own controllers fill in fields (a PV's claimRef uid, binding annotations) as part
/// of normal operation; that is not drift a user needs to hear about.
const CONTROLLERS: [&str; 4] = [
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-apiserver",
];

/// Leaf fields owned by managers other than this plugin (outside status) that the spec does not
/// set: changes made outside the spec, which apply leaves alone.
pub(super) fn drift_of(live: &Value, desired: &Value) -> Vec<Drift> {
    let Some(entries) = live["metadata"]["managedFields"].as_array() else {
        return Vec::new();
    };
    let declared: BTreeSet<String> = field_paths_of_value(desired, "");
    let mut drift: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for entry in entries {
        let manager = entry["manager"].as_str().unwrap_or_default();
        if manager == FIELD_MANAGER
            || CONTROLLERS.contains(&manager)
            || entry["subresource"].as_str() == Some("status")
        {
            continue;
        }
        let mut fields = Vec::new();
        field_paths_of_fieldsv1(&entry["fieldsV1"], "", &mut fields);
        let foreign: Vec<String> = fields
            .into_iter()
            .filter(|f| !f.starts_with(".status") && !declared.iter().any(|d| d == f))
            .collect();
        if !foreign.is_empty() {
            let operation = entry["operation"].as_str().unwrap_or_default().to_string();
            drift
                .entry((manager.to_string(), operation))
                .or_default()
                .extend(foreign);
        }
    }
    drift
        .into_iter()
        .map(|((manager, operation), fields)| Drift {
            manager,
            operation,
            fields,
        })
        .collect()
}

/// Leaf paths of a managedFields `fieldsV1` tree: `f:spec` → `.spec`, `k:{"name":"redis"}` →
/// `[name=redis]`, `v:"x"` → `[x]`.
fn field_paths_of_fieldsv1(tree: &Value, prefix: &str, out: &mut Vec<String>) {
    let Some(map) = tree.as_object() else { return };
    let children: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| k.as_str() != ".").collect();
    if children.is_empty() && !prefix.is_empty() {
        out.push(prefix.to_string());
        return;
    }
    for (key, child) in children {
        let step = if let Some(field) = key.strip_prefix("f:") {
            format!(".{field}")
        } else if let Some(keys) = key.strip_prefix("k:") {
            let parsed: BTreeMap<String, Value> = serde_json::from_str(keys).unwrap_or_default();
            let inner: Vec<String> = parsed
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map(str::to_string).unwrap_or(v.to_string())
                    )
                })
                .collect();
            format!("[{}]", inner.join(","))
        } else if let Some(value) = key.strip_prefix("v:") {
            format!("[{}]", value.trim_matches('"'))
        } else {
            format!(".{key}")
        };
        field_paths_of_fieldsv1(child, &format!("{prefix}{step}"), out);
    }
}

/// The same path notation for an object's own leaves; list items are keyed by `name`,
/// `containerPort` or `port` when they have one, as Kubernetes merge keys are.
fn field_paths_of_value(value: &Value, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                out.extend(field_paths_of_value(child, &format!("{prefix}.{key}")));
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                let key = ["name", "containerPort", "port", "mountPath"]
                    .iter()
                    .find_map(|k| item.get(*k).map(|v| (k, v)));
                match key {
                    Some((k, v)) => {
                        let v = v.as_str().map(str::to_string).unwrap_or(v.to_string());
                        out.extend(field_paths_of_value(item, &format!("{prefix}[{k}={v}]")));
                    }
                    None => {
                        out.insert(prefix.to_string());
                    }
                }
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fieldsv1_paths_read_like_kubectl() {
        let tree = json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"redis\"}": {".": {}, "f:image": {}}}}}}});
        let mut paths = Vec::new();
        field_paths_of_fieldsv1(&tree, "", &mut paths);
        assert_eq!(
            paths,
            [
                ".spec.replicas",
                ".spec.template.spec.containers[name=redis].image"
            ]
        );
    }

    #[test]
    fn drift_lists_foreign_fields_the_spec_does_not_set() {
        let desired = json!({"spec": {"replicas": 6, "template": {"spec": {"containers": [{"name": "redis", "image": "redis:5"}]}}}});
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kubectl-redis", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"redis\"}": {"f:image": {}, "f:args": {}}}}}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "fieldsV1": {"f:status": {"f:replicas": {}}}}
        ]}});
        let drift = drift_of(&live, &desired);
        assert_eq!(drift.len(), 1);
        assert_eq!(drift[0].manager, "kubectl-edit");
        assert_eq!(
            drift[0].fields,
            [".spec.template.spec.containers[name=redis].args"]
        );
    }
}
