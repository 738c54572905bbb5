//! Field ownership (managedFields, FieldsV1) and structural merging.
//!
//! This is a small, schema-light re-implementation of what the real API server gets from
//! structured-merge-diff. kube-fake-client's field-ownership code is private to its mock
//! service and treats every list as atomic, so the list semantics below (list-map keys
//! such as containers by `name`, ports by `containerPort`+`protocol`, sets such as
//! `finalizers`) are written out here for the fields of the served resource types.
//! Any list not named in [`list_kind`] is atomic, as most unannotated lists are upstream.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// One element of a field path, encoded as in FieldsV1 (`f:name`, `k:{"name":"x"}`, `v:"x"`, `.`).
pub type Path = Vec<String>;
pub type FieldSet = BTreeSet<Path>;

#[derive(Debug, Clone, PartialEq)]
pub enum ListKind {
    Atomic,
    /// Associative list keyed by these fields (missing `protocol` defaults to TCP).
    Map(&'static [&'static str]),
    Set,
}

/// The merge strategy of a list, by its field name (and the shape of its items).
pub fn list_kind(field: &str, sample: Option<&Value>) -> ListKind {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => ListKind::Map(&["name"]),
        "volumeMounts" => ListKind::Map(&["mountPath"]),
        "volumeDevices" => ListKind::Map(&["devicePath"]),
        "ownerReferences" => ListKind::Map(&["uid"]),
        "conditions" => ListKind::Map(&["type"]),
        "hostAliases" => ListKind::Map(&["ip"]),
        "topologySpreadConstraints" => ListKind::Map(&["topologyKey", "whenUnsatisfiable"]),
        "finalizers" => ListKind::Set,
        "ports" => match sample {
            Some(v) if v.get("containerPort").is_some() => {
                ListKind::Map(&["containerPort", "protocol"])
            }
            Some(v) if v.get("port").is_some() => ListKind::Map(&["port", "protocol"]),
            _ => ListKind::Atomic,
        },
        _ => ListKind::Atomic,
    }
}

/// Maps whose keys are data, not schema fields: FieldsV1 marks them with `.` like the real server.
fn is_free_form_map(field: &str) -> bool {
    matches!(
        field,
        "labels"
            | "annotations"
            | "data"
            | "binaryData"
            | "stringData"
            | "matchLabels"
            | "nodeSelector"
            | "capacity"
            | "requests"
            | "limits"
    ) || field == "selector"
}

fn key_value(keys: &[&str], item: &Value) -> Value {
    let mut m = Map::new();
    for k in keys {
        match item.get(*k) {
            Some(v) => {
                m.insert((*k).to_string(), v.clone());
            }
            None if *k == "protocol" => {
                m.insert("protocol".into(), Value::String("TCP".into()));
            }
            None => {}
        }
    }
    Value::Object(m)
}

fn key_token(keys: &[&str], item: &Value) -> String {
    // serde_json's Map is ordered by key, as FieldsV1 keys are.
    format!("k:{}", key_value(keys, item))
}

fn item_matches(keys: &[&str], item: &Value, key: &Value) -> bool {
    key_value(keys, item) == *key
}

/// Top-level metadata fields that are never owned.
const UNOWNED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The set of fields an object (or an apply configuration) sets.
/// `status_mode`: None = whole object without status, Some(true) = status only.
pub fn field_set(obj: &Value, status_only: bool, skip_status: bool) -> FieldSet {
    let mut out = FieldSet::new();
    if let Value::Object(m) = obj {
        for (k, v) in m {
            match k.as_str() {
                "apiVersion" | "kind" => continue,
                "status" if skip_status => continue,
                "status" => {}
                _ if status_only => continue,
                _ => {}
            }
            let p = vec![format!("f:{k}")];
            if k == "metadata" {
                if let Value::Object(meta) = v {
                    for (mk, mv) in meta {
                        if UNOWNED_META.contains(&mk.as_str()) {
                            continue;
                        }
                        let mut mp = p.clone();
                        mp.push(format!("f:{mk}"));
                        walk(mv, mk, &mp, &mut out);
                    }
                }
                continue;
            }
            walk(v, k, &p, &mut out);
        }
    }
    out
}

fn walk(v: &Value, field: &str, path: &Path, out: &mut FieldSet) {
    match v {
        Value::Null => {}
        Value::Object(m) if !m.is_empty() => {
            if is_free_form_map(field) {
                let mut dot = path.clone();
                dot.push(".".into());
                out.insert(dot);
            }
            for (k, child) in m {
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                walk(child, k, &p, out);
            }
        }
        Value::Array(items) if !items.is_empty() => match list_kind(field, items.first()) {
            ListKind::Atomic => {
                out.insert(path.clone());
            }
            ListKind::Set => {
                for it in items {
                    let mut p = path.clone();
                    p.push(format!("v:{it}"));
                    out.insert(p);
                }
            }
            ListKind::Map(keys) => {
                for it in items {
                    let mut p = path.clone();
                    p.push(key_token(keys, it));
                    let mut dot = p.clone();
                    dot.push(".".into());
                    out.insert(dot);
                    if let Value::Object(im) = it {
                        for (k, child) in im {
                            let mut cp = p.clone();
                            cp.push(format!("f:{k}"));
                            walk(child, k, &cp, out);
                        }
                    }
                }
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

/// FieldsV1 JSON trie from a set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for tok in path {
            let next = cur
                .entry(tok.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            cur = match next {
                Value::Object(m) => m,
                _ => unreachable!("trie nodes are objects"),
            };
        }
    }
    Value::Object(root)
}

/// Set from a FieldsV1 trie: every empty node is a member.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn rec(v: &Value, path: &mut Path, out: &mut FieldSet) {
        if let Value::Object(m) = v {
            for (k, child) in m {
                path.push(k.clone());
                match child {
                    Value::Object(cm) if !cm.is_empty() => rec(child, path, out),
                    _ => {
                        out.insert(path.clone());
                    }
                }
                path.pop();
            }
        }
    }
    let mut out = FieldSet::new();
    rec(v, &mut Vec::new(), &mut out);
    out
}

/// The value a path points at, if present.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    let mut last_field = "";
    for tok in path {
        if let Some(f) = tok.strip_prefix("f:") {
            cur = cur.get(f)?;
            last_field = f;
        } else if let Some(k) = tok.strip_prefix("k:") {
            let key: Value = serde_json::from_str(k).ok()?;
            let items = cur.as_array()?;
            let ListKind::Map(keys) = list_kind(last_field, items.first()) else {
                return None;
            };
            cur = items.iter().find(|it| item_matches(keys, it, &key))?;
        } else if let Some(s) = tok.strip_prefix("v:") {
            let want: Value = serde_json::from_str(s).ok()?;
            cur = cur.as_array()?.iter().find(|it| **it == want)?;
        } else if tok == "." {
            return Some(cur);
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Removes the field a path points at; removing `k:..`/`.` removes the list item.
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    if last == "." {
        // The item or map itself: remove it from its parent.
        remove_at(obj, parent);
        return;
    }
    let mut cur = obj;
    let mut last_field = String::new();
    for tok in parent {
        let next = if let Some(f) = tok.strip_prefix("f:") {
            last_field = f.to_string();
            cur.get_mut(f)
        } else if let Some(k) = tok.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Value>(k) else {
                return;
            };
            let lf = last_field.clone();
            cur.as_array_mut().and_then(|items| {
                let kind = list_kind(&lf, items.first());
                let ListKind::Map(keys) = kind else {
                    return None;
                };
                items.iter_mut().find(|it| item_matches(keys, it, &key))
            })
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(k) = last.strip_prefix("k:") {
        if let (Ok(key), Some(items)) = (serde_json::from_str::<Value>(k), cur.as_array_mut()) {
            if let ListKind::Map(keys) = list_kind(&last_field, items.first()) {
                items.retain(|it| !item_matches(keys, it, &key));
            }
        }
    } else if let Some(s) = last.strip_prefix("v:") {
        if let (Ok(want), Some(items)) = (serde_json::from_str::<Value>(s), cur.as_array_mut()) {
            items.retain(|it| *it != want);
        }
    }
}

/// Structural merge of `patch` into `base`: maps recurse, keyed lists merge by key, sets union,
/// everything else is replaced; `null` deletes. With `strategic`, `$patch: delete` items and
/// `$`-directives are honoured the way kubectl's strategic merge patches use them.
pub fn merge(base: &mut Value, patch: &Value, field: &str, strategic: bool) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            if strategic && p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut p2 = p.clone();
                p2.remove("$patch");
                *b = p2;
                return;
            }
            for (k, v) in p {
                if strategic && k.starts_with('$') {
                    continue;
                }
                if v.is_null() {
                    b.remove(k);
                    continue;
                }
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v, k, strategic),
                    None => {
                        let mut fresh = Value::Null;
                        merge(&mut fresh, v, k, strategic);
                        b.insert(k.clone(), fresh);
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(p)) => match list_kind(field, p.first().or(b.first())) {
            ListKind::Map(keys) => {
                for item in p {
                    let key = key_value(keys, item);
                    let delete =
                        strategic && item.get("$patch").and_then(Value::as_str) == Some("delete");
                    let pos = b.iter().position(|it| item_matches(keys, it, &key));
                    match (pos, delete) {
                        (Some(i), true) => {
                            b.remove(i);
                        }
                        (None, true) => {}
                        (Some(i), false) => merge(&mut b[i], item, "", strategic),
                        (None, false) => {
                            let mut fresh = Value::Null;
                            merge(&mut fresh, item, "", strategic);
                            b.push(fresh);
                        }
                    }
                }
            }
            ListKind::Set => {
                for item in p {
                    if !b.contains(item) {
                        b.push(item.clone());
                    }
                }
            }
            ListKind::Atomic => *b = p.clone(),
        },
        (b, p) => {
            // New subtrees: copy, dropping nulls and directives.
            *b = clean(p, strategic);
        }
    }
}

fn clean(v: &Value, strategic: bool) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !(v.is_null() || (strategic && k.starts_with('$'))))
                .map(|(k, v)| (k.clone(), clean(v, strategic)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| clean(x, strategic)).collect()),
        other => other.clone(),
    }
}

/// `.spec.template.spec.containers[name="redis"].image`, as the real server prints field paths.
pub fn display_path(path: &[String]) -> String {
    let mut s = String::new();
    for tok in path {
        if let Some(f) = tok.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = tok.strip_prefix("k:") {
            if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(k) {
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                s.push_str(&format!("[{}]", parts.join(",")));
            }
        } else if let Some(v) = tok.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// Whether `set` has any member at or below `prefix`.
pub fn has_prefix(set: &FieldSet, prefix: &[String]) -> bool {
    set.range(prefix.to_vec()..)
        .next()
        .is_some_and(|p| p.starts_with(prefix))
}

/// Leaf paths whose values differ between two objects (used for Update-operation ownership).
pub fn changed_fields(old: &Value, new: &Value, status_only: bool, skip_status: bool) -> FieldSet {
    let a = field_set(old, status_only, skip_status);
    let b = field_set(new, status_only, skip_status);
    let mut out = FieldSet::new();
    for p in b.iter() {
        if p.last().map(String::as_str) == Some(".") {
            if !a.contains(p) {
                out.insert(p.clone());
            }
            continue;
        }
        if value_at(old, p) != value_at(new, p) {
            out.insert(p.clone());
        }
    }
    for p in a.difference(&b) {
        out.insert(p.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name_and_ports_by_key() {
        let mut live = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "ports": [{"containerPort": 1, "protocol": "TCP"}]},
            {"name": "b", "image": "y"}
        ]}});
        let cfg = json!({"spec": {"containers": [{"name": "a", "image": "z", "ports": [{"containerPort": 2}]}]}});
        merge(&mut live, &cfg, "", false);
        assert_eq!(live["spec"]["containers"][0]["image"], "z");
        assert_eq!(live["spec"]["containers"][1]["name"], "b");
        assert_eq!(
            live["spec"]["containers"][0]["ports"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn fields_v1_round_trip_and_paths() {
        let obj = json!({"metadata": {"name": "n", "labels": {"app": "x"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "redis", "image": "i"}]}}}});
        let set = field_set(&obj, false, true);
        let trie = to_fields_v1(&set);
        assert_eq!(trie["f:metadata"]["f:labels"]["."], json!({}));
        assert!(trie["f:spec"]["f:template"]["f:spec"]["f:containers"]
            .get("k:{\"name\":\"redis\"}")
            .is_some());
        assert_eq!(from_fields_v1(&trie), set);
        let p: Path = vec![
            "f:spec".into(),
            "f:template".into(),
            "f:spec".into(),
            "f:containers".into(),
            "k:{\"name\":\"redis\"}".into(),
            "f:image".into(),
        ];
        assert!(set.contains(&p));
        assert_eq!(value_at(&obj, &p), Some(&json!("i")));
        assert_eq!(
            display_path(&p),
            ".spec.template.spec.containers[name=\"redis\"].image"
        );
    }

    #[test]
    fn remove_list_item_by_key() {
        let mut obj = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        remove_at(
            &mut obj,
            &[
                "f:spec".into(),
                "f:containers".into(),
                "k:{\"name\":\"a\"}".into(),
                ".".into(),
            ],
        );
        assert_eq!(obj, json!({"spec": {"containers": [{"name": "b"}]}}));
    }
}
