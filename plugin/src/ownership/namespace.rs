//! The Namespace rule: deleting a Namespace deletes everything in it, whoever made it, so
//! `destroy` and prune delete one only when this spec's ApplySet created it (not adopted it) and
//! nothing outside the set lives in it. Otherwise they keep it, and say why.

use std::collections::BTreeSet;

use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{verbs, Discovery, Scope};
use serde_json::Value;

use crate::k8s::{self, Connection};

/// On a Namespace this spec's ApplySet created: the ApplySet's id. An adopted Namespace never
/// gets it, so it is never deleted by the tool that adopted it.
pub(crate) const CREATED_BY_ANNOTATION: &str = "kubectl-redis.io/created-by";

/// Whether a live Namespace was created by the ApplySet `applyset`.
pub(crate) fn created_by(namespace: &Value, applyset: &str) -> bool {
    namespace["metadata"]["annotations"][CREATED_BY_ANNOTATION] == applyset
}

/// Marks a desired Namespace as created by `applyset`: for a Namespace that does not exist yet,
/// or one this set created (server-side apply would drop the mark from the next apply otherwise).
pub(crate) fn mark_created(desired: &mut Value, applyset: &str) {
    desired["metadata"]["annotations"][CREATED_BY_ANNOTATION] = Value::String(applyset.into());
}

/// Why the live Namespace `namespace` must not be deleted, if it must not: it was not created by
/// `applyset`, or it holds objects other than those in `leaving` (the descriptions, as
/// [`k8s::describe_object`] writes them, of what the same run deletes first), or the user may not
/// list everything in it. Objects that live and die with others (those with an owner, Events,
/// Endpoints) and what Kubernetes puts in every namespace are not counted.
pub(crate) async fn reason_to_keep(
    connection: &Connection,
    namespace: &Value,
    applyset: &str,
    leaving: &BTreeSet<String>,
) -> anyhow::Result<Option<String>> {
    if !created_by(namespace, applyset) {
        return Ok(Some(
            "kubectl-redis did not create it (it existed and was adopted), so it is never \
             deleted: delete it yourself once you know what is in it"
                .into(),
        ));
    }
    let name = namespace["metadata"]["name"].as_str().unwrap_or_default();
    let contents = contents(connection, name, applyset).await?;
    if !contents.unlisted.is_empty() {
        return Ok(Some(format!(
            "kubectl-redis cannot tell whether it holds other objects: RBAC forbids listing {} \
             in it",
            contents.unlisted.join(", ")
        )));
    }
    let others: Vec<String> = contents
        .objects
        .into_iter()
        .filter(|object| !leaving.contains(object))
        .collect();
    Ok(match others.len() {
        0 => None,
        count => Some(format!(
            "it holds {count} object(s) that are not part of this spec ({}); deleting it would \
             delete them",
            shortlist(&others)
        )),
    })
}

fn shortlist(objects: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = objects
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if objects.len() > SHOWN {
        text.push_str(&format!(" and {} more", objects.len() - SHOWN));
    }
    text
}

struct Contents {
    /// `ConfigMap team/theirs`, for every counted object.
    objects: Vec<String>,
    /// Resources the user may not list.
    unlisted: Vec<String>,
}

/// Everything that lives in a namespace, over every namespaced resource the API server serves.
async fn contents(
    connection: &Connection,
    namespace: &str,
    applyset: &str,
) -> anyhow::Result<Contents> {
    let client = &connection.client;
    let discovery = match Discovery::new(client.clone()).run_aggregated().await {
        Ok(discovery) => discovery,
        // Servers before 1.26 have no aggregated discovery.
        Err(_) => Discovery::new(client.clone()).run().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot list the API server's resources to see what namespace `{namespace}` \
                 holds: {e} ({})",
                connection.source
            )
        })?,
    };
    let resources: Vec<_> = discovery
        .groups()
        .flat_map(|group| group.recommended_resources())
        .filter(|(resource, caps)| {
            caps.scope == Scope::Namespaced
                && caps.supports_operation(verbs::LIST)
                && !derived_resource(&resource.group, &resource.plural)
        })
        .collect();
    let lists = crate::fanout::try_all(resources.iter().map(|(resource, _)| async move {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
        match api.list(&ListParams::default()).await {
            Ok(list) => anyhow::Ok(Ok(list
                .items
                .iter()
                .filter(|object| counted(&resource.kind, object, applyset))
                .map(|object| {
                    let name = object.metadata.name.as_deref().unwrap_or_default();
                    format!("{} {namespace}/{name}", resource.kind)
                })
                .collect::<Vec<_>>())),
            Err(e) if k8s::status_code(&e) == Some(403) => Ok(Err(resource.plural.clone())),
            // Gone between discovery and the list, or served by an unavailable aggregated API.
            Err(e) if matches!(k8s::status_code(&e), Some(404 | 405 | 503)) => Ok(Ok(Vec::new())),
            Err(e) => Err(anyhow::anyhow!(
                "cannot list {} in namespace `{namespace}`: {e} ({})",
                resource.plural,
                connection.source
            )),
        }
    }))
    .await?;
    let mut contents = Contents {
        objects: Vec::new(),
        unlisted: Vec::new(),
    };
    for list in lists {
        match list {
            Ok(objects) => contents.objects.extend(objects),
            Err(resource) => contents.unlisted.push(resource),
        }
    }
    contents.objects.sort();
    Ok(contents)
}

/// Resources whose objects Kubernetes derives from others (a Service's endpoints) or that record
/// what happened (Events): they go with what they describe.
fn derived_resource(group: &str, plural: &str) -> bool {
    matches!(
        (group, plural),
        ("", "events" | "endpoints" | "bindings")
            | ("events.k8s.io", "events")
            | ("discovery.k8s.io", "endpointslices")
    )
}

/// Whether an object in the namespace counts as something a deletion would take with it. The
/// ApplySet's own parent goes with the set.
fn counted(kind: &str, object: &DynamicObject, applyset: &str) -> bool {
    let meta = &object.metadata;
    let parent = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(super::ID_LABEL))
        .is_some_and(|id| id == applyset);
    let name = meta.name.as_deref().unwrap_or_default();
    let has_owner = meta
        .owner_references
        .as_ref()
        .is_some_and(|owners| !owners.is_empty());
    // Every namespace gets these from Kubernetes' own controllers.
    let built_in = matches!(
        (kind, name),
        ("ConfigMap", "kube-root-ca.crt") | ("ServiceAccount", "default")
    );
    !(parent || has_owner || built_in || meta.deletion_timestamp.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(kind: &str, metadata: Value) -> (String, DynamicObject) {
        let object = serde_json::from_value(json!({"metadata": metadata})).unwrap();
        (kind.to_string(), object)
    }

    #[test]
    fn only_objects_a_deletion_would_take_along_count() {
        let theirs = object("ConfigMap", json!({"name": "theirs"}));
        assert!(counted(&theirs.0, &theirs.1, "applyset-x-v1"));
        let parent = object(
            "ConfigMap",
            json!({"name": "kubectl-redis-x", "labels": {super::super::ID_LABEL: "applyset-x-v1"}}),
        );
        assert!(
            !counted(&parent.0, &parent.1, "applyset-x-v1"),
            "our parent"
        );
        assert!(
            counted(&parent.0, &parent.1, "applyset-y-v1"),
            "another set's parent"
        );
        for (kind, skipped) in [
            object("ConfigMap", json!({"name": "kube-root-ca.crt"})),
            object("ServiceAccount", json!({"name": "default"})),
            object(
                "Pod",
                json!({"name": "redis-0", "ownerReferences": [{"apiVersion": "apps/v1",
                    "kind": "StatefulSet", "name": "redis", "uid": "u"}]}),
            ),
            object(
                "ConfigMap",
                json!({"name": "going", "deletionTimestamp": "2026-01-01T00:00:00Z"}),
            ),
        ] {
            assert!(
                !counted(&kind, &skipped, "applyset-x-v1"),
                "{kind} {:?}",
                skipped.metadata.name
            );
        }
        let secret = object("ServiceAccount", json!({"name": "builder"}));
        assert!(
            counted(&secret.0, &secret.1, "applyset-x-v1"),
            "only `default` is built in"
        );
        assert!(derived_resource("", "events"));
        assert!(derived_resource("discovery.k8s.io", "endpointslices"));
        assert!(!derived_resource("", "persistentvolumeclaims"));
    }

    #[test]
    fn a_namespace_is_ours_only_with_our_mark() {
        let mut desired = json!({"kind": "Namespace", "metadata": {"name": "team"}});
        assert!(!created_by(&desired, "applyset-x-v1"));
        mark_created(&mut desired, "applyset-x-v1");
        assert!(created_by(&desired, "applyset-x-v1"));
        assert!(!created_by(&desired, "applyset-y-v1"));
    }

    #[test]
    fn long_lists_are_shortened() {
        let objects: Vec<String> = (0..7).map(|i| format!("ConfigMap t/c{i}")).collect();
        assert_eq!(
            shortlist(&objects),
            "ConfigMap t/c0, ConfigMap t/c1, ConfigMap t/c2, ConfigMap t/c3, ConfigMap t/c4 and 2 more"
        );
    }
}
