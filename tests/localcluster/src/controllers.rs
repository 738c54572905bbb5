//! Controllers: PV/PVC binding, the StatefulSet controller, and garbage collection of pods
//! whose StatefulSet is gone.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::resources::by_plural;
use crate::store::{string_map, Store, WriteOpts};

const MANAGER: &str = "kube-controller-manager";

pub struct Controllers {
    pub store: Arc<Store>,
    pub nodes: Vec<String>,
}

fn opts() -> WriteOpts {
    WriteOpts {
        manager: MANAGER.into(),
        ..Default::default()
    }
}

/// "1Gi", "500Mi", "10G", "1.5Gi" -> bytes.
pub fn quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len());
    let (num, unit) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match unit {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "m" => 1e-3,
        _ => return None,
    };
    Some(n * mult)
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}
fn ns(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or_default()
}

fn pod_ready(p: &Value) -> bool {
    p["status"]["phase"] == "Running"
        && p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

impl Controllers {
    pub async fn run(self) {
        let Ok((_, mut rx)) = self.store.watch_from(u64::MAX) else {
            return;
        };
        loop {
            self.bind_volumes();
            self.statefulsets();
            self.collect_garbage();
            tokio::select! {
                _ = rx.recv() => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    while rx.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Binds pending claims to volumes: a PV pre-bound by claimRef (or a claim naming its
    /// volumeName) first, else the smallest Available PV of the same storage class with
    /// enough capacity and every requested access mode. There is no dynamic provisioning.
    fn bind_volumes(&self) {
        let pvs_res = by_plural("persistentvolumes");
        let pvcs_res = by_plural("persistentvolumeclaims");
        let (pvcs, _) = self.store.list(pvcs_res, None);
        let (mut pvs, _) = self.store.list(pvs_res, None);
        let claim_uids: HashSet<String> = pvcs
            .iter()
            .filter_map(|c| c["metadata"]["uid"].as_str().map(str::to_string))
            .collect();
        // Volume phases: Available, Bound, or Released once its claim is gone.
        for pv in &pvs {
            let cref = &pv["spec"]["claimRef"];
            let phase = match cref["uid"].as_str() {
                Some(uid) if claim_uids.contains(uid) => "Bound",
                Some(_) => "Released",
                None => "Available",
            };
            if pv["status"]["phase"] != phase {
                let _ = self
                    .store
                    .mutate(pvs_res, "", name(pv), MANAGER, "status", |o| {
                        o["status"]["phase"] = json!(phase);
                    });
            }
        }
        for pvc in pvcs.iter().filter(|c| c["status"]["phase"] != "Bound") {
            let (cns, cname) = (ns(pvc), name(pvc));
            let req = pvc["spec"]["resources"]["requests"]["storage"]
                .as_str()
                .and_then(quantity)
                .unwrap_or(0.0);
            let class = pvc["spec"]["storageClassName"].as_str().unwrap_or("");
            let modes: Vec<&Value> = pvc["spec"]["accessModes"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            let fits = |pv: &Value| {
                let cap = pv["spec"]["capacity"]["storage"]
                    .as_str()
                    .and_then(quantity)
                    .unwrap_or(0.0);
                let pv_modes = pv["spec"]["accessModes"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                cap >= req
                    && pv["spec"]["storageClassName"].as_str().unwrap_or("") == class
                    && modes.iter().all(|m| pv_modes.contains(m))
                    && pv["spec"]["volumeMode"] == pvc["spec"]["volumeMode"]
            };
            let prebound = |pv: &Value| {
                let c = &pv["spec"]["claimRef"];
                c["name"] == cname
                    && c["namespace"].as_str().unwrap_or("default") == cns
                    && c["uid"]
                        .as_str()
                        .is_none_or(|u| Some(u) == pvc["metadata"]["uid"].as_str())
            };
            let chosen = if let Some(vn) = pvc["spec"]["volumeName"].as_str() {
                pvs.iter().find(|pv| {
                    name(pv) == vn && (pv["spec"]["claimRef"].is_null() || prebound(pv)) && fits(pv)
                })
            } else if let Some(pv) = pvs.iter().find(|pv| prebound(pv) && fits(pv)) {
                Some(pv)
            } else {
                pvs.iter()
                    .filter(|pv| pv["spec"]["claimRef"].is_null() && fits(pv))
                    .min_by(|a, b| {
                        let ca = a["spec"]["capacity"]["storage"]
                            .as_str()
                            .and_then(quantity)
                            .unwrap_or(0.0);
                        let cb = b["spec"]["capacity"]["storage"]
                            .as_str()
                            .and_then(quantity)
                            .unwrap_or(0.0);
                        ca.total_cmp(&cb)
                    })
            };
            let Some(pv) = chosen.cloned() else {
                continue;
            };
            let pv_name = name(&pv).to_string();
            let claim_ref = json!({"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": cns, "name": cname,
                "uid": pvc["metadata"]["uid"], "resourceVersion": pvc["metadata"]["resourceVersion"]});
            let bound_pv = self.store.mutate(pvs_res, "", &pv_name, MANAGER, "", |o| {
                o["spec"]["claimRef"] = claim_ref.clone();
                o["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = json!("yes");
            });
            let _ = self
                .store
                .mutate(pvs_res, "", &pv_name, MANAGER, "status", |o| {
                    o["status"]["phase"] = json!("Bound");
                });
            let _ = self.store.mutate(pvcs_res, cns, cname, MANAGER, "", |o| {
                o["spec"]["volumeName"] = json!(pv_name);
                o["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = json!("yes");
            });
            let _ = self.store.mutate(pvcs_res, cns, cname, MANAGER, "status", |o| {
                o["status"] = json!({"phase": "Bound", "accessModes": pv["spec"]["accessModes"], "capacity": pv["spec"]["capacity"]});
            });
            if let Ok(b) = bound_pv {
                if let Some(slot) = pvs.iter_mut().find(|p| name(p) == pv_name) {
                    *slot = b;
                }
            }
        }
    }

    fn statefulsets(&self) {
        let sts_res = by_plural("statefulsets");
        let pods_res = by_plural("pods");
        let pvc_res = by_plural("persistentvolumeclaims");
        let (all_sets, _) = self.store.list(sts_res, None);
        let (all_pods, _) = self.store.list(pods_res, None);
        for sts in all_sets {
            let (sns, sname) = (ns(&sts).to_string(), name(&sts).to_string());
            let uid = sts["metadata"]["uid"].clone();
            let spec = &sts["spec"];
            let replicas = spec["replicas"].as_i64().unwrap_or(1).max(0);
            let parallel = spec["podManagementPolicy"] == "Parallel";
            let template = &spec["template"];
            let revision = {
                let h = Sha256::digest(template.to_string().as_bytes());
                format!("{sname}-{}", &hex::encode(h)[..10])
            };
            // Pods this set owns, by ordinal.
            let mut pods: BTreeMap<i64, Value> = BTreeMap::new();
            for p in all_pods.iter().filter(|p| ns(p) == sns) {
                let owned = p["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid));
                if let (true, Some(ord)) = (
                    owned,
                    name(p)
                        .strip_prefix(&format!("{sname}-"))
                        .and_then(|s| s.parse::<i64>().ok()),
                ) {
                    pods.insert(ord, p.clone());
                }
            }
            // Scale down: highest ordinal first (all at once with Parallel).
            let extra: Vec<i64> = pods
                .keys()
                .filter(|o| **o >= replicas)
                .rev()
                .copied()
                .collect();
            for (i, ord) in extra.iter().enumerate() {
                if !parallel && i > 0 {
                    break;
                }
                let _ = self
                    .store
                    .delete(pods_res, &sns, &format!("{sname}-{ord}"), None, false);
                pods.remove(ord);
            }
            // Create missing pods (and their claims) in order.
            for ord in 0..replicas {
                if let Some(p) = pods.get(&ord) {
                    if !parallel && !pod_ready(p) {
                        break;
                    }
                    continue;
                }
                for t in spec["volumeClaimTemplates"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    let claim = format!("{}-{sname}-{ord}", name(&t));
                    if self.store.get(pvc_res, &sns, &claim).is_err() {
                        let mut labels = string_map(&template["metadata"]["labels"]);
                        labels.extend(string_map(&spec["selector"]["matchLabels"]));
                        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": claim, "namespace": sns, "labels": labels},
                            "spec": t["spec"]});
                        let _ = self.store.create(pvc_res, &sns, pvc, &opts());
                    }
                }
                let pod = self.pod_for(&sts, ord, &revision);
                if let Ok(p) = self.store.create(pods_res, &sns, pod, &opts()) {
                    pods.insert(ord, p);
                }
                if !parallel {
                    break;
                }
            }
            // Rolling update: replace the highest outdated pod once every pod is ready.
            let strategy = spec["updateStrategy"]["type"]
                .as_str()
                .unwrap_or("RollingUpdate");
            let partition = spec["updateStrategy"]["rollingUpdate"]["partition"]
                .as_i64()
                .unwrap_or(0);
            let all_ready = pods.len() as i64 == replicas && pods.values().all(pod_ready);
            if strategy == "RollingUpdate" && all_ready {
                if let Some((ord, _)) = pods.iter().rev().find(|(ord, p)| {
                    **ord >= partition
                        && p["metadata"]["labels"]["controller-revision-hash"] != revision.as_str()
                }) {
                    let _ =
                        self.store
                            .delete(pods_res, &sns, &format!("{sname}-{ord}"), None, false);
                }
            }
            let rev_of = |p: &Value| {
                p["metadata"]["labels"]["controller-revision-hash"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            };
            let updated = pods.values().filter(|p| rev_of(p) == revision).count();
            let ready = pods.values().filter(|p| pod_ready(p)).count();
            let current_rev = if updated == pods.len() {
                revision.clone()
            } else {
                sts["status"]["currentRevision"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| revision.clone())
            };
            let current = pods.values().filter(|p| rev_of(p) == current_rev).count();
            let status = json!({
                "observedGeneration": sts["metadata"]["generation"],
                "replicas": pods.len(),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "currentReplicas": current,
                "updatedReplicas": updated,
                "currentRevision": current_rev,
                "updateRevision": revision,
                "collisionCount": 0,
            });
            if sts["status"] != status {
                let _ = self
                    .store
                    .mutate(sts_res, &sns, &sname, MANAGER, "status", |o| {
                        o["status"] = status;
                    });
            }
        }
    }

    fn pod_for(&self, sts: &Value, ord: i64, revision: &str) -> Value {
        let sname = name(sts);
        let spec = &sts["spec"];
        let template = &spec["template"];
        let pname = format!("{sname}-{ord}");
        let mut labels = string_map(&template["metadata"]["labels"]);
        labels.insert("statefulset.kubernetes.io/pod-name".into(), pname.clone());
        labels.insert("controller-revision-hash".into(), revision.into());
        labels.insert("apps.kubernetes.io/pod-index".into(), ord.to_string());
        let mut pspec = template["spec"].clone();
        if !pspec.is_object() {
            pspec = json!({});
        }
        pspec["hostname"] = json!(pname);
        if let Some(svc) = spec["serviceName"].as_str() {
            pspec["subdomain"] = json!(svc);
        }
        if pspec.get("nodeName").is_none() && !self.nodes.is_empty() {
            // Ordinal i on node i mod N: deterministic, so topology tests know the layout.
            pspec["nodeName"] = json!(self.nodes[(ord as usize) % self.nodes.len()]);
        }
        let mut volumes = pspec["volumes"].as_array().cloned().unwrap_or_default();
        for t in spec["volumeClaimTemplates"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let vname = name(&t).to_string();
            volumes.retain(|v| v["name"] != vname.as_str());
            volumes.push(json!({"name": vname, "persistentVolumeClaim": {"claimName": format!("{vname}-{sname}-{ord}")}}));
        }
        pspec["volumes"] = json!(volumes);
        let mut meta = json!({
            "name": pname,
            "namespace": ns(sts),
            "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": sname,
                "uid": sts["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}],
        });
        if let Some(a) = template["metadata"].get("annotations") {
            meta["annotations"] = a.clone();
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pspec})
    }

    /// Deletes pods whose controlling StatefulSet no longer exists (background cascading).
    fn collect_garbage(&self) {
        let (sets, _) = self.store.list(by_plural("statefulsets"), None);
        let uids: HashSet<&str> = sets
            .iter()
            .filter_map(|s| s["metadata"]["uid"].as_str())
            .collect();
        let (pods, _) = self.store.list(by_plural("pods"), None);
        for p in pods {
            let orphaned = p["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| {
                    refs.iter().any(|r| {
                        r["kind"] == "StatefulSet"
                            && r["controller"] == true
                            && !uids.contains(r["uid"].as_str().unwrap_or(""))
                    })
                });
            if orphaned {
                let _ = self
                    .store
                    .delete(by_plural("pods"), ns(&p), name(&p), None, false);
            }
        }
    }
}
