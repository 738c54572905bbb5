//! The least privilege a spec needs: a Role in its namespace for `plan`, `apply`, `status` and
//! `destroy`, and a ClusterRole only when the spec declares cluster-scoped objects. README's
//! "Permissions" table says the same in words; `render --rbac` prints these objects.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{is_cluster_scoped, Bundle};

/// The API group and plural of each kind a spec may hold.
fn resource_of(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "Namespace" => ("", "namespaces"),
        "PersistentVolume" => ("", "persistentvolumes"),
        "PersistentVolumeClaim" => ("", "persistentvolumeclaims"),
        "ConfigMap" => ("", "configmaps"),
        "Secret" => ("", "secrets"),
        "Service" => ("", "services"),
        "StatefulSet" => ("apps", "statefulsets"),
        _ => return None,
    })
}

/// What writing an object takes: server-side apply is a `patch`, and a `create` when the object
/// does not exist yet; prune, replace and destroy `delete`; plan and waits `get` and `list`.
const WRITE: [&str; 5] = ["get", "list", "create", "patch", "delete"];

/// A Role (and, for cluster-scoped objects, a ClusterRole) named `kubectl-redis-<instance>` that
/// lets a user plan, apply, check and destroy this spec and nothing else.
pub fn rbac(bundle: &Bundle) -> Vec<Value> {
    let name = format!("kubectl-redis-{}", bundle.name);
    let labels = json!({
        crate::ownership::MANAGED_BY_LABEL: crate::ownership::MANAGED_BY,
        crate::ownership::INSTANCE_LABEL: bundle.name,
    });
    let declared: BTreeSet<&str> = bundle.objects.iter().map(|o| o.kind()).collect();
    let (cluster, namespaced): (Vec<&str>, Vec<&str>) = declared
        .iter()
        .copied()
        .partition(|kind| is_cluster_scoped(kind));
    // The ApplySet's members are listed by kind, and its parent is a ConfigMap, whatever the spec
    // declares; claims are created by the StatefulSet controller and read by the waits.
    let mut core: BTreeSet<&str> = [
        "configmaps",
        "secrets",
        "services",
        "persistentvolumeclaims",
    ]
    .into_iter()
    .collect();
    let mut apps = BTreeSet::from(["statefulsets"]);
    for kind in namespaced {
        match resource_of(kind) {
            Some(("apps", plural)) => apps.insert(plural),
            Some((_, plural)) => core.insert(plural),
            None => false,
        };
    }
    let mut rules = vec![
        json!({"apiGroups": [""], "resources": core, "verbs": WRITE}),
        json!({"apiGroups": ["apps"], "resources": apps, "verbs": WRITE}),
        // The Redis step: pods by label, deleted one at a time by a roll; port-forward (the
        // default transport) or exec (`--via exec`) into them; a crash-looping pod's log.
        json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete"]}),
        // A stream is a `create`, and its WebSocket upgrade a `get`, of the subresource.
        json!({"apiGroups": [""], "resources": ["pods/portforward", "pods/exec"], "verbs": ["get", "create"]}),
        json!({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}),
    ];
    rules.retain(|rule| rule["resources"].as_array().is_some_and(|r| !r.is_empty()));
    let mut out = vec![json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": bundle.namespace, "labels": labels},
        "rules": rules,
    })];
    let cluster: Vec<&str> = cluster
        .into_iter()
        .filter_map(|kind| Some(resource_of(kind)?.1))
        .collect();
    if !cluster.is_empty() {
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels},
            "rules": [{"apiGroups": [""], "resources": cluster, "verbs": WRITE}],
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::PackedObject;
    use crate::render::RenderedObject;

    fn bundle(kinds: &[&str]) -> Bundle {
        let objects = kinds
            .iter()
            .map(|kind| RenderedObject {
                object: PackedObject::from_value(
                    &json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}}),
                )
                .unwrap(),
                origin: crate::input::Origin::default(),
            })
            .collect();
        Bundle {
            name: "r".into(),
            namespace: "team".into(),
            objects,
            waivers: Vec::new(),
        }
    }

    #[test]
    fn a_namespaced_spec_needs_a_role_only() {
        let roles = rbac(&bundle(&["ConfigMap", "Service", "StatefulSet"]));
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0]["kind"], "Role");
        assert_eq!(roles[0]["metadata"]["namespace"], "team");
        assert_eq!(
            roles[0]["rules"][0]["resources"],
            json!([
                "configmaps",
                "persistentvolumeclaims",
                "secrets",
                "services"
            ])
        );
    }

    #[test]
    fn cluster_scoped_objects_need_a_cluster_role_for_exactly_their_kinds() {
        let roles = rbac(&bundle(&["PersistentVolume", "ConfigMap", "StatefulSet"]));
        assert_eq!(roles.len(), 2);
        assert_eq!(roles[1]["kind"], "ClusterRole");
        assert_eq!(roles[1]["metadata"]["name"], "kubectl-redis-r");
        assert_eq!(
            roles[1]["rules"][0]["resources"],
            json!(["persistentvolumes"])
        );
    }
}
