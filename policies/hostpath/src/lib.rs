//! Rule 8: hostPath PersistentVolumes create their directory when it is missing
//! (`type: DirectoryOrCreate`), and on a multi-node cluster are pinned to a node, or a rescheduled
//! pod finds an empty directory and comes back as a new Redis node.

use kr_policy_sdk::k8s::{self, str_at};
use kr_policy_sdk::prelude::*;

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    /// Nodes in the target cluster; 1 silences the node-affinity warning. Unknown by default.
    node_count: Option<u64>,
}

impl PolicySettings for Settings {
    fn validate(&self) -> Result<(), String> {
        if self.node_count == Some(0) {
            return Err("nodeCount must be at least 1".into());
        }
        Ok(())
    }
}

const CREATE: Rule = Rule::deny(
    "hostpath-create",
    "hostPath PVs are created if missing (type DirectoryOrCreate)",
);
const AFFINITY: Rule = Rule::warn(
    "hostpath-node-affinity",
    "hostPath PVs on a multi-node cluster have node affinity",
);

kr_policy!(
    name: "hostpath",
    rules: [CREATE, AFFINITY],
    kinds: [k8s::CLUSTER_MODE_KINDS, &["PersistentVolume"]],
    settings: Settings,
    evaluate: evaluate,
);

fn evaluate(input: &Input, s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    // A plain single Redis is only warned: its manifests are valid Kubernetes as they are.
    let severity = if input.cluster_mode() {
        Severity::Deny
    } else {
        Severity::Warn
    };
    for pv in input.of_kind("PersistentVolume") {
        let Some(host_path) = pv.pointer("/spec/hostPath") else {
            continue;
        };
        let ty = str_at(host_path, "/type");
        if ty != "DirectoryOrCreate" {
            let shown = if ty.is_empty() {
                "unset".to_string()
            } else {
                format!("`{ty}`")
            };
            out.push(
                CREATE
                    .finding(pv, "/spec/hostPath/type", format!("hostPath `{}` has type {shown}; use DirectoryOrCreate so the directory is created on the node", str_at(host_path, "/path")))
                    .with_severity(severity)
                    .with_fix(vec![json!({"op": "add", "path": "/spec/hostPath/type", "value": "DirectoryOrCreate"})]),
            );
        }
        if pv.pointer("/spec/nodeAffinity").is_none() && s.node_count != Some(1) {
            let scope = match s.node_count {
                Some(n) => format!("the cluster has {n} nodes"),
                None => "on a multi-node cluster".to_string(),
            };
            out.push(AFFINITY.finding(pv, "/spec", format!("hostPath volume without nodeAffinity: {scope} a rescheduled pod can land on another node and find an empty directory")));
        }
    }
    out
}
