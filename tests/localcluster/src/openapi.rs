//! Just enough OpenAPI v3 for kubectl: its validation step asks whether the server validates
//! fields itself (a `fieldValidation` parameter on the PATCH operation of the kind). Saying yes
//! lets kubectl skip client-side schema validation, which would need the full protobuf v2 spec.
//! No schemas are served (`kubectl explain` does not work).

use serde_json::{json, Value};

use crate::resources::RESOURCES;

fn gv_path(api_version: &str) -> String {
    if api_version.contains('/') {
        format!("apis/{api_version}")
    } else {
        format!("api/{api_version}")
    }
}

pub fn v3_root() -> Value {
    let mut paths = serde_json::Map::new();
    for r in RESOURCES {
        let p = gv_path(&r.api_version());
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=localcluster1")}),
        );
    }
    json!({"paths": paths})
}

pub fn v3_group(gv: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    let mut found = false;
    for r in RESOURCES.iter().filter(|r| gv_path(&r.api_version()) == gv) {
        found = true;
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "force", "in": "query", "schema": {"type": "boolean"}}
        ]);
        let item = if r.namespaced {
            format!("/{gv}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("/{gv}/{}/{{name}}", r.plural)
        };
        let coll = item.trim_end_matches("/{name}").to_string();
        let op = |action: &str| {
            json!({"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk, "parameters": params,
                "responses": {"200": {"description": "OK"}}})
        };
        paths.insert(item, json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
        paths.insert(coll, json!({"get": op("list"), "post": op("post")}));
    }
    found.then(|| {
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes (localcluster)", "version": "v1.32.0"},
            "paths": paths, "components": {"schemas": {}}})
    })
}
