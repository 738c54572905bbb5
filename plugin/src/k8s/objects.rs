//! The kinds of object the plugin manages, as the API knows them, and how messages name an object.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Secret, Service,
};
use kube::api::ApiResource;
use serde_json::Value;

/// The API resource of a rendered object's kind; only the kinds the spec accepts exist here.
pub(super) fn api_resource(kind: &str) -> Option<(ApiResource, bool)> {
    let namespaced = |resource: ApiResource| Some((resource, true));
    let cluster = |resource: ApiResource| Some((resource, false));
    match kind {
        "Namespace" => cluster(ApiResource::erase::<Namespace>(&())),
        "PersistentVolume" => cluster(ApiResource::erase::<PersistentVolume>(&())),
        "PersistentVolumeClaim" => namespaced(ApiResource::erase::<PersistentVolumeClaim>(&())),
        "ConfigMap" => namespaced(ApiResource::erase::<ConfigMap>(&())),
        "Secret" => namespaced(ApiResource::erase::<Secret>(&())),
        "Service" => namespaced(ApiResource::erase::<Service>(&())),
        "StatefulSet" => namespaced(ApiResource::erase::<StatefulSet>(&())),
        _ => None,
    }
}

/// `StatefulSet default/redis-cluster`, `PersistentVolume redis01`.
pub fn describe_object(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    match object["metadata"]["namespace"].as_str() {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}
