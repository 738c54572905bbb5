//! Rule 3: claims (volumeClaimTemplates and PersistentVolumeClaims) and PersistentVolumes agree:
//! ReadWriteOnce, the configured size (1Gi for a cluster), and the same storageClassName.

use kr_policy_sdk::k8s::{self, array_at, str_at};
use kr_policy_sdk::prelude::*;
use kr_policy_sdk::quantity::parse_bytes;

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    /// Required size of every claim and volume; defaults to 1Gi for a Redis Cluster.
    size: Option<String>,
    /// Required access mode; defaults to ReadWriteOnce for a Redis Cluster.
    access_mode: Option<String>,
}

impl PolicySettings for Settings {
    fn validate(&self) -> Result<(), String> {
        if let Some(size) = &self.size {
            if parse_bytes(size).is_none() {
                return Err(format!(
                    "size `{size}` is not a Kubernetes quantity (e.g. 1Gi)"
                ));
            }
        }
        if let Some(mode) = &self.access_mode {
            if ![
                "ReadWriteOnce",
                "ReadOnlyMany",
                "ReadWriteMany",
                "ReadWriteOncePod",
            ]
            .contains(&mode.as_str())
            {
                return Err(format!(
                    "accessMode `{mode}` is not a Kubernetes access mode"
                ));
            }
        }
        Ok(())
    }
}

const STORAGE: Rule = Rule::deny(
    "storage",
    "PVC template and PVs are ReadWriteOnce and 1Gi, with matching storageClassName",
);

kr_policy!(
    name: "storage",
    rules: [STORAGE],
    kinds: [k8s::WORKLOAD_KINDS, k8s::CLUSTER_MODE_KINDS, &["PersistentVolumeClaim", "PersistentVolume"]],
    settings: Settings,
    evaluate: evaluate,
);

struct Volume<'a> {
    object: Value<'a>,
    /// Pointer to the object's `spec` (a claim template's spec, or the object's own).
    spec: String,
    spec_value: Value<'a>,
    size_field: &'static str,
    what: String,
}

fn evaluate(input: &Input, s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let cluster = input.cluster_mode();
    let mut volumes = Vec::new();
    for w in input.redis_workloads() {
        for (i, t) in array_at(w.object, "/spec/volumeClaimTemplates")
            .iter()
            .enumerate()
        {
            if let Some(spec) = t.get("spec") {
                volumes.push(Volume {
                    object: w.object,
                    spec: format!("/spec/volumeClaimTemplates/{i}/spec"),
                    spec_value: spec,
                    size_field: "/resources/requests/storage",
                    what: format!("claim template `{}`", str_at(t, "/metadata/name")),
                });
            }
        }
    }
    for (kind, size_field) in [
        ("PersistentVolumeClaim", "/resources/requests/storage"),
        ("PersistentVolume", "/capacity/storage"),
    ] {
        for o in input.of_kind(kind) {
            if let Some(spec) = o.get("spec") {
                volumes.push(Volume {
                    object: o,
                    spec: "/spec".into(),
                    spec_value: spec,
                    size_field,
                    what: format!("{kind} `{}`", kr_policy_sdk::k8s::name(o)),
                });
            }
        }
    }
    let access_mode = s
        .access_mode
        .clone()
        .or_else(|| cluster.then(|| "ReadWriteOnce".to_string()));
    let size = s
        .size
        .clone()
        .or_else(|| cluster.then(|| "1Gi".to_string()));
    for v in &volumes {
        if let Some(mode) = &access_mode {
            let modes: Vec<_> = array_at(v.spec_value, "/accessModes")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if modes != [mode.as_str()] {
                out.push(
                    STORAGE
                        .finding(v.object, format!("{}/accessModes", v.spec), format!("{} has access modes {modes:?}; it must be [{mode}]", v.what))
                        .with_fix(vec![json!({"op": "add", "path": format!("{}/accessModes", v.spec), "value": [mode]})]),
                );
            }
        }
        if let Some(size) = &size {
            let have = str_at(v.spec_value, v.size_field);
            if parse_bytes(have) != parse_bytes(size) {
                let shown = if have.is_empty() {
                    "no size".to_string()
                } else {
                    format!("size {have}")
                };
                out.push(
                    STORAGE
                        .finding(v.object, format!("{}{}", v.spec, v.size_field), format!("{} has {shown}; it must be {size}", v.what))
                        .with_fix(vec![json!({"op": "add", "path": format!("{}{}", v.spec, v.size_field), "value": size})]),
                );
            }
        }
    }
    // Pre-created volumes only bind claims of the same class; a claim without one is captured by
    // the default StorageClass and the PVs stay Available forever.
    let class = |v: &Volume| {
        v.spec_value
            .get("storageClassName")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let pv_classes: Vec<Option<String>> = volumes
        .iter()
        .filter(|v| kr_policy_sdk::k8s::kind(v.object) == "PersistentVolume")
        .map(class)
        .collect();
    if let Some(first) = pv_classes.first() {
        let show = |c: &Option<String>| {
            c.as_ref()
                .map(|c| format!("`{c}`"))
                .unwrap_or_else(|| "unset".into())
        };
        for v in &volumes {
            let c = class(v);
            if c != *first {
                let hint = if c.is_none()
                    && kr_policy_sdk::k8s::kind(v.object) != "PersistentVolume"
                {
                    " (an unset class means the cluster's default StorageClass, which will not bind these PersistentVolumes)"
                } else {
                    ""
                };
                let mut f = STORAGE.finding(
                    v.object,
                    format!("{}/storageClassName", v.spec),
                    format!(
                        "{} has storageClassName {}, the PersistentVolumes have {}{hint}",
                        v.what,
                        show(&c),
                        show(first)
                    ),
                );
                if let Some(first) = first {
                    f = f.with_fix(vec![json!({"op": "add", "path": format!("{}/storageClassName", v.spec), "value": first})]);
                }
                out.push(f);
            }
        }
    }
    out
}
