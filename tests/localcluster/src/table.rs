//! Server-side printing (`meta.k8s.io/v1` Table) so `kubectl get` shows the usual columns.

use serde_json::{json, Value};

use crate::resources::ResourceInfo;

fn unix_from_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn age(obj: &Value) -> String {
    let Some(t) = obj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(unix_from_rfc3339)
    else {
        return "<unknown>".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(t);
    let s = (now - t).max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

fn modes(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|m| match m.as_str().unwrap_or("") {
                    "ReadWriteOnce" => "RWO",
                    "ReadOnlyMany" => "ROX",
                    "ReadWriteMany" => "RWX",
                    "ReadWriteOncePod" => "RWOP",
                    other => other,
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

pub fn table(res: &ResourceInfo, list: &Value) -> Value {
    let cols: &[&str] = match res.plural {
        "pods" => &["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node"],
        "statefulsets" => &["Name", "Ready", "Age"],
        "services" => &[
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
        ],
        "persistentvolumes" => &[
            "Name",
            "Capacity",
            "Access Modes",
            "Reclaim Policy",
            "Status",
            "Claim",
            "StorageClass",
            "Age",
        ],
        "persistentvolumeclaims" => &[
            "Name",
            "Status",
            "Volume",
            "Capacity",
            "Access Modes",
            "StorageClass",
            "Age",
        ],
        "configmaps" | "secrets" => &["Name", "Data", "Age"],
        "namespaces" => &["Name", "Status", "Age"],
        _ => &["Name", "Age"],
    };
    let priority = |c: &str| {
        if res.plural == "pods" && (c == "IP" || c == "Node") {
            1
        } else {
            0
        }
    };
    let rows: Vec<Value> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|o| {
            let name = s(&o["metadata"]["name"]);
            let cells: Vec<Value> = match res.plural {
                "pods" => {
                    let cs = o["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
                    let ready = cs.iter().filter(|c| c["ready"] == true).count();
                    let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
                    let restarts: i64 = cs.iter().map(|c| c["restartCount"].as_i64().unwrap_or(0)).sum();
                    vec![json!(name), json!(format!("{ready}/{total}")), json!(s(&o["status"]["phase"])),
                        json!(restarts), json!(age(&o)), json!(s(&o["status"]["podIP"])), json!(s(&o["spec"]["nodeName"]))]
                }
                "statefulsets" => vec![json!(name),
                    json!(format!("{}/{}", o["status"]["readyReplicas"].as_i64().unwrap_or(0), o["spec"]["replicas"].as_i64().unwrap_or(0))),
                    json!(age(&o))],
                "services" => {
                    let ports = o["spec"]["ports"].as_array().cloned().unwrap_or_default().iter()
                        .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                        .collect::<Vec<_>>().join(",");
                    vec![json!(name), json!(s(&o["spec"]["type"])), json!(s(&o["spec"]["clusterIP"])), json!("<none>"), json!(ports), json!(age(&o))]
                }
                "persistentvolumes" => {
                    let claim = match o["spec"]["claimRef"].as_object() {
                        Some(c) => format!("{}/{}", s(&c["namespace"]), s(&c["name"])),
                        None => String::new(),
                    };
                    vec![json!(name), json!(s(&o["spec"]["capacity"]["storage"])), json!(modes(&o["spec"]["accessModes"])),
                        json!(s(&o["spec"]["persistentVolumeReclaimPolicy"])), json!(s(&o["status"]["phase"])), json!(claim),
                        json!(o["spec"]["storageClassName"].as_str().unwrap_or("")), json!(age(&o))]
                }
                "persistentvolumeclaims" => vec![json!(name), json!(s(&o["status"]["phase"])),
                    json!(o["spec"]["volumeName"].as_str().unwrap_or("")),
                    json!(o["status"]["capacity"]["storage"].as_str().unwrap_or("")),
                    json!(modes(&o["status"]["accessModes"])),
                    json!(o["spec"]["storageClassName"].as_str().unwrap_or("")), json!(age(&o))],
                "configmaps" | "secrets" => {
                    let n = o["data"].as_object().map_or(0, |m| m.len()) + o["binaryData"].as_object().map_or(0, |m| m.len());
                    vec![json!(name), json!(n), json!(age(&o))]
                }
                "namespaces" => vec![json!(name), json!(s(&o["status"]["phase"])), json!(age(&o))],
                _ => vec![json!(name), json!(age(&o))],
            };
            let partial = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]});
            json!({"cells": cells, "object": partial})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": list["metadata"]["resourceVersion"]},
        "columnDefinitions": cols.iter().map(|c| json!({
            "name": c, "type": if *c == "Restarts" || *c == "Data" { "integer" } else { "string" },
            "format": if *c == "Name" { "name" } else { "" }, "description": c, "priority": priority(c)})).collect::<Vec<_>>(),
        "rows": rows,
    })
}
