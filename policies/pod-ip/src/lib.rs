//! Rule 7: update-node.sh rewrites the pod's own address in nodes.conf from `$POD_IP`, so a
//! container that runs it must get POD_IP from the downward API (`status.podIP`).

use kr_policy_sdk::k8s::{self, str_at};
use kr_policy_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    /// File name of the script that needs POD_IP.
    script: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            script: "update-node.sh".into(),
        }
    }
}

impl PolicySettings for Settings {
    fn validate(&self) -> Result<(), String> {
        if self.script.is_empty() || self.script.contains('/') {
            return Err(format!("script must be a file name, not {:?}", self.script));
        }
        Ok(())
    }
}

const POD_IP: Rule = Rule::deny(
    "pod-ip",
    "POD_IP comes from status.podIP whenever update-node.sh is used",
);

kr_policy!(
    name: "pod-ip",
    rules: [POD_IP],
    kinds: [k8s::WORKLOAD_KINDS],
    settings: Settings,
    evaluate: evaluate,
);

fn evaluate(input: &Input, s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let wanted =
        json!({"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}});
    for w in input.workloads() {
        for c in w.containers() {
            if !c.argv().iter().any(|a| {
                a.split_whitespace()
                    .any(|word| word.rsplit('/').next() == Some(s.script.as_str()))
            }) {
                continue;
            }
            match c.env("POD_IP") {
                None => {
                    let fix = if c.value.get("env").is_some() {
                        json!({"op": "add", "path": c.pointer("/env/-"), "value": wanted})
                    } else {
                        json!({"op": "add", "path": c.pointer("/env"), "value": [wanted]})
                    };
                    out.push(
                        POD_IP
                            .finding(
                                w.object,
                                c.pointer("/env"),
                                format!(
                                    "container `{}` runs {} but has no POD_IP variable",
                                    c.name(),
                                    s.script
                                ),
                            )
                            .with_fix(vec![fix]),
                    );
                }
                Some((i, env)) => {
                    let field = str_at(env, "/valueFrom/fieldRef/fieldPath");
                    if field != "status.podIP" {
                        let got = if env.get("value").is_some() {
                            "a fixed value".to_string()
                        } else if field.is_empty() {
                            "no fieldRef".to_string()
                        } else {
                            format!("fieldRef `{field}`")
                        };
                        out.push(
                            POD_IP
                                .finding(w.object, c.pointer(&format!("/env/{i}")), format!("POD_IP of container `{}` has {got}; {} needs it from fieldRef `status.podIP`", c.name(), s.script))
                                .with_fix(vec![json!({"op": "replace", "path": c.pointer(&format!("/env/{i}")), "value": wanted})]),
                        );
                    }
                }
            }
        }
    }
    out
}
