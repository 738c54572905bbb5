//! Ownership: which live objects belong to a spec, recorded the way Kubernetes' ApplySet
//! (KEP-3659) does, so that prune and destroy are computed from the cluster alone.
//!
//! A parent ConfigMap `kubectl-redis-<name>` carries the ApplySet id and the group-kinds of its
//! members; every member carries the `part-of` label with that id, plus the managed-by and
//! instance labels. Objects without them are never pruned or destroyed, whatever their name.
//! A declared object that exists is classified before anything is written ([`owner_of`]): ours,
//! another instance's (a plan error), or unmanaged (adopted only when the user asks). Namespaces
//! get a stricter rule of their own ([`namespace`]).

pub(crate) mod namespace;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::k8s::{self, Connection};

/// Label that marks an object as applied by this tool; prune and destroy touch nothing else.
pub(crate) const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub(crate) const MANAGED_BY: &str = "kubectl-redis";
/// Label that names the spec an object belongs to.
pub(crate) const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// Every kind the plugin manages, in apply order.
const MANAGED_KINDS: [(&str, &str); 7] = [
    ("v1", "Namespace"),
    ("v1", "PersistentVolume"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("apps/v1", "StatefulSet"),
];

pub(crate) const PART_OF_LABEL: &str = "applyset.kubernetes.io/part-of";
pub(crate) const ID_LABEL: &str = "applyset.kubernetes.io/id";
pub(crate) const TOOLING_ANNOTATION: &str = "applyset.kubernetes.io/tooling";
pub(crate) const GROUP_KINDS_ANNOTATION: &str = "applyset.kubernetes.io/contains-group-kinds";
/// On cluster-scoped members (PersistentVolumes, Namespaces): the namespace of the ApplySet they
/// belong to, which their `part-of` id (a hash) does not tell a user reading a plan error.
pub(crate) const OWNER_NAMESPACE_ANNOTATION: &str = "kubectl-redis.io/owner-namespace";

/// Who an object that already exists belongs to, from its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owner {
    /// This spec's ApplySet, or a claim this spec's StatefulSet created from its template.
    ThisSet,
    /// Another kubectl-redis instance: never taken over.
    OtherInstance {
        instance: String,
        /// Where that instance lives, when the object says.
        namespace: Option<String>,
    },
    /// Not managed by kubectl-redis: adopted only with `--adopt`.
    Unmanaged,
}

/// Classifies a live object against the spec `spec_name` in `namespace`.
pub(crate) fn owner_of(object: &Value, spec_name: &str, namespace: &str) -> Owner {
    let labels = &object["metadata"]["labels"];
    if labels[MANAGED_BY_LABEL] != MANAGED_BY {
        return Owner::Unmanaged;
    }
    let instance = labels[INSTANCE_LABEL].as_str().unwrap_or_default();
    let ours = match labels[PART_OF_LABEL].as_str() {
        Some(part_of) => part_of == applyset_id(spec_name, namespace),
        // The StatefulSet controller creates template claims with the template's labels only.
        None => instance == spec_name && object["metadata"]["namespace"] == namespace,
    };
    if ours {
        return Owner::ThisSet;
    }
    let owner_namespace = object["metadata"]["namespace"]
        .as_str()
        .or_else(|| object["metadata"]["annotations"][OWNER_NAMESPACE_ANNOTATION].as_str())
        .or_else(|| object["spec"]["claimRef"]["namespace"].as_str());
    Owner::OtherInstance {
        instance: instance.to_string(),
        namespace: owner_namespace.map(str::to_string),
    }
}

/// Name of the parent object of a spec's ApplySet.
pub(crate) fn parent_name(spec_name: &str) -> String {
    format!("kubectl-redis-{spec_name}")
}

/// The ApplySet id, as the KEP defines it:
/// `applyset-<base64url(sha256(<name>.<namespace>.<kind>.<group>))>-v1`.
pub(crate) fn applyset_id(spec_name: &str, namespace: &str) -> String {
    let digest = Sha256::digest(format!("{}.{namespace}.ConfigMap.", parent_name(spec_name)));
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// Whether a live object carries this spec's ownership labels.
pub(crate) fn is_owned(object: &Value, spec_name: &str, namespace: &str) -> bool {
    let labels = &object["metadata"]["labels"];
    labels[MANAGED_BY_LABEL] == MANAGED_BY
        && labels[INSTANCE_LABEL] == spec_name
        && labels[PART_OF_LABEL] == applyset_id(spec_name, namespace).as_str()
}

/// `StatefulSet.apps`, `ConfigMap`: the KEP's group-kind notation.
fn group_kind(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default();
    match object["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .split_once('/')
    {
        Some((group, _)) => format!("{kind}.{group}"),
        None => kind.to_string(),
    }
}

/// The parent ConfigMap of a spec's ApplySet, listing the group-kinds of its members.
pub(crate) fn parent<'a>(
    spec_name: &str,
    namespace: &str,
    members: impl IntoIterator<Item = &'a Value>,
) -> Value {
    let mut kinds: Vec<String> = members.into_iter().map(group_kind).collect();
    kinds.sort();
    kinds.dedup();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": parent_name(spec_name),
            "namespace": namespace,
            "labels": BTreeMap::from([
                (ID_LABEL, applyset_id(spec_name, namespace)),
                (MANAGED_BY_LABEL, MANAGED_BY.to_string()),
                (INSTANCE_LABEL, spec_name.to_string()),
            ]),
            "annotations": {
                TOOLING_ANNOTATION: format!("kubectl-redis/v{}", env!("CARGO_PKG_VERSION")),
                GROUP_KINDS_ANNOTATION: kinds.join(","),
            },
        },
    })
}

/// The label selector that finds every member of the spec's ApplySet.
pub(crate) fn member_selector(spec_name: &str, namespace: &str) -> String {
    format!(
        "{PART_OF_LABEL}={},{MANAGED_BY_LABEL}={MANAGED_BY},{INSTANCE_LABEL}={spec_name}",
        applyset_id(spec_name, namespace)
    )
}

/// Lists the live members of a spec's ApplySet, all at once: every namespaced kind the plugin
/// manages, and of the cluster-scoped kinds (Namespace, PersistentVolume) only those the spec
/// declares (`declared_kinds`) or the ApplySet parent lists, so that a user who may edit one
/// namespace can plan a spec without cluster-scoped objects. Only objects carrying all
/// ownership labels are returned.
pub(crate) async fn list_members(
    connection: &Connection,
    spec_name: &str,
    namespace: &str,
    declared_kinds: &BTreeSet<&str>,
) -> anyhow::Result<Vec<Value>> {
    let cluster_scoped = |kind: &str| matches!(kind, "Namespace" | "PersistentVolume");
    let (first, later): (Vec<_>, Vec<_>) = MANAGED_KINDS
        .iter()
        .partition(|(_, kind)| !cluster_scoped(kind) || declared_kinds.contains(kind));
    let first =
        futures::future::try_join_all(first.iter().map(|(api_version, kind)| {
            list_kind(connection, spec_name, namespace, api_version, kind)
        }));
    let (lists, parent_kinds) =
        tokio::try_join!(first, parent_kinds(connection, spec_name, namespace))?;
    let later = futures::future::try_join_all(
        later
            .iter()
            .filter(|(_, kind)| parent_kinds.contains(*kind))
            .map(|(api_version, kind)| {
                list_kind(connection, spec_name, namespace, api_version, kind)
            }),
    )
    .await?;
    Ok(lists.into_iter().chain(later).flatten().collect())
}

/// The live members of one kind.
async fn list_kind(
    connection: &Connection,
    spec_name: &str,
    namespace: &str,
    api_version: &str,
    kind: &str,
) -> anyhow::Result<Vec<Value>> {
    let selector = member_selector(spec_name, namespace);
    let listed = list_labelled(connection, namespace, api_version, kind, &selector).await?;
    Ok(listed
        .into_iter()
        .filter(|value| is_owned(value, spec_name, namespace))
        .collect())
}

/// The objects of one kind in `namespace` (every namespace's, for a cluster-scoped kind) that
/// match a label selector, with the apiVersion and kind that lists leave off their items.
pub(crate) async fn list_labelled(
    connection: &Connection,
    namespace: &str,
    api_version: &str,
    kind: &str,
    selector: &str,
) -> anyhow::Result<Vec<Value>> {
    let probe =
        json!({"apiVersion": api_version, "kind": kind, "metadata": {"namespace": namespace}});
    let api = k8s::api_for(&connection.client, &probe)?;
    let params = kube::api::ListParams::default().labels(selector);
    let list = api
        .list(&params)
        .await
        .map_err(|e| k8s::explain(e, "list", &probe, &connection.source))?;
    Ok(list
        .items
        .into_iter()
        .map(|item| {
            let mut value = serde_json::to_value(&item).expect("API objects serialize");
            value["apiVersion"] = json!(api_version);
            value["kind"] = json!(kind);
            value
        })
        .collect())
}

/// The kinds the ApplySet parent lists (`ConfigMap`, `StatefulSet.apps` become `ConfigMap`,
/// `StatefulSet`); none when there is no parent yet.
async fn parent_kinds(
    connection: &Connection,
    spec_name: &str,
    namespace: &str,
) -> anyhow::Result<BTreeSet<String>> {
    let probe = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"namespace": namespace, "name": parent_name(spec_name)}});
    let api = k8s::api_for(&connection.client, &probe)?;
    let parent = api
        .get_opt(&parent_name(spec_name))
        .await
        .map_err(|e| k8s::explain(e, "get", &probe, &connection.source))?;
    let parent = parent.map(|p| serde_json::to_value(p).expect("API objects serialize"));
    Ok(parent
        .as_ref()
        .and_then(|p| p["metadata"]["annotations"][GROUP_KINDS_ANNOTATION].as_str())
        .unwrap_or_default()
        .split(',')
        .filter(|group_kind| !group_kind.is_empty())
        .map(|group_kind| group_kind.split('.').next().unwrap_or_default().to_string())
        .collect())
}

/// Writes the ApplySet parent when it is missing or lists other group-kinds; returns whether it
/// wrote. Callers pass what the plan applies plus what it prunes, so a prune interrupted midway
/// is found again by the next run.
pub(crate) async fn ensure_parent<'a>(
    connection: &Connection,
    spec_name: &str,
    namespace: &str,
    members: impl IntoIterator<Item = &'a Value>,
) -> anyhow::Result<bool> {
    let desired = parent(spec_name, namespace, members);
    let api = k8s::api_for(&connection.client, &desired)?;
    let name = parent_name(spec_name);
    let live = api
        .get_opt(&name)
        .await
        .map_err(|e| k8s::explain(e, "get", &desired, &connection.source))?;
    let current = live.map(|l| serde_json::to_value(l).expect("API objects serialize"));
    let up_to_date = current.is_some_and(|c| {
        c["metadata"]["labels"][ID_LABEL] == desired["metadata"]["labels"][ID_LABEL]
            && c["metadata"]["annotations"] == desired["metadata"]["annotations"]
    });
    if up_to_date {
        return Ok(false);
    }
    let params = kube::api::PatchParams::apply(k8s::FIELD_MANAGER).force();
    let patch = kube::api::Patch::Apply(&desired);
    api.patch(&name, &params, &patch)
        .await
        .map_err(|e| k8s::explain(e, "patch", &desired, &connection.source))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applyset_id_follows_the_kep() {
        let id = applyset_id("redis-cluster", "default");
        assert!(id.starts_with("applyset-") && id.ends_with("-v1"), "{id}");
        // base64url of a 32-byte digest without padding is 43 characters.
        assert_eq!(id.len(), "applyset-".len() + 43 + "-v1".len());
        assert_ne!(id, applyset_id("redis-cluster", "prod"));
        assert!(id.len() <= 63, "fits a label value");
    }

    #[test]
    fn ownership_needs_every_label() {
        let id = applyset_id("r", "default");
        let owned = json!({"metadata": {"labels": {
            MANAGED_BY_LABEL: MANAGED_BY, INSTANCE_LABEL: "r", PART_OF_LABEL: id}}});
        assert!(is_owned(&owned, "r", "default"));
        let foreign = json!({"metadata": {"labels": {"app": "r"}}});
        assert!(!is_owned(&foreign, "r", "default"));
        assert!(!is_owned(&owned, "other", "default"));
    }

    #[test]
    fn existing_objects_are_ours_another_instances_or_unmanaged() {
        let id = applyset_id("r", "default");
        let ours = json!({"metadata": {"namespace": "default", "labels": {
            MANAGED_BY_LABEL: MANAGED_BY, INSTANCE_LABEL: "r", PART_OF_LABEL: id}}});
        assert_eq!(owner_of(&ours, "r", "default"), Owner::ThisSet);
        let template_claim = json!({"metadata": {"namespace": "default", "labels": {
            MANAGED_BY_LABEL: MANAGED_BY, INSTANCE_LABEL: "r"}}});
        assert_eq!(owner_of(&template_claim, "r", "default"), Owner::ThisSet);
        assert_eq!(
            owner_of(
                &json!({"metadata": {"labels": {"app": "r"}}}),
                "r",
                "default"
            ),
            Owner::Unmanaged
        );
        // The same spec applied in namespace `a` owns the volume; planning it in `b` is not ours.
        let volume = json!({
            "metadata": {"labels": {MANAGED_BY_LABEL: MANAGED_BY, INSTANCE_LABEL: "r",
                PART_OF_LABEL: applyset_id("r", "a")},
                "annotations": {OWNER_NAMESPACE_ANNOTATION: "a"}},
            "spec": {"claimRef": {"namespace": "elsewhere"}}});
        assert_eq!(
            owner_of(&volume, "r", "b"),
            Owner::OtherInstance {
                instance: "r".into(),
                namespace: Some("a".into())
            }
        );
        assert_eq!(owner_of(&volume, "r", "a"), Owner::ThisSet);
    }

    #[test]
    fn group_kinds_use_the_kep_notation() {
        assert_eq!(
            group_kind(&json!({"apiVersion": "apps/v1", "kind": "StatefulSet"})),
            "StatefulSet.apps"
        );
        assert_eq!(
            group_kind(&json!({"apiVersion": "v1", "kind": "ConfigMap"})),
            "ConfigMap"
        );
    }
}
