//! Rule 5: a Redis Cluster StatefulSet runs masters × (1 + replicas per master) pods, with at least
//! three masters (`redis-cli --cluster create` refuses fewer).

use kr_policy_sdk::k8s::{self, annotation, MASTERS_ANNOTATION, REPLICAS_PER_MASTER_ANNOTATION};
use kr_policy_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    min_masters: u64,
    /// Replicas per master for plain manifests, which do not carry the plugin's annotations.
    replicas_per_master: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_masters: 3,
            replicas_per_master: 1,
        }
    }
}

impl PolicySettings for Settings {
    fn validate(&self) -> Result<(), String> {
        if self.min_masters < 3 {
            return Err(format!(
                "minMasters must be at least 3 (Redis Cluster needs three masters), not {}",
                self.min_masters
            ));
        }
        Ok(())
    }
}

const COUNTS: Rule = Rule::deny(
    "counts",
    "StatefulSet replicas = masters × (1 + replicas per master), with at least 3 masters",
);

kr_policy!(
    name: "counts",
    rules: [COUNTS],
    kinds: [k8s::CLUSTER_MODE_KINDS],
    settings: Settings,
    evaluate: evaluate,
);

fn evaluate(input: &Input, s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    if !input.cluster_mode() {
        return out;
    }
    for w in input
        .redis_workloads()
        .filter(|w| w.kind() == "StatefulSet")
    {
        let o = w.object;
        // An unset replicas field means 1.
        let replicas = o
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let parse = |key: &str| {
            annotation(o, key).map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| (key.to_string(), v.to_string()))
            })
        };
        let per_master = match parse(REPLICAS_PER_MASTER_ANNOTATION) {
            Some(Ok(n)) => n,
            Some(Err((k, v))) => {
                out.push(COUNTS.finding(
                    o,
                    format!("/metadata/annotations/{}", k.replace('/', "~1")),
                    format!("annotation {k} is `{v}`, not a number"),
                ));
                continue;
            }
            None => s.replicas_per_master,
        };
        let group = per_master + 1;
        let masters = match parse(MASTERS_ANNOTATION) {
            Some(Ok(m)) => {
                if replicas != m * group {
                    out.push(
                        COUNTS
                            .finding(o, "/spec/replicas", format!("replicas is {replicas}, but {m} masters × (1 + {per_master} replicas per master) need {}", m * group))
                            .with_fix(vec![json!({"op": "add", "path": "/spec/replicas", "value": m * group})]),
                    );
                }
                m
            }
            Some(Err((k, v))) => {
                out.push(COUNTS.finding(
                    o,
                    format!("/metadata/annotations/{}", k.replace('/', "~1")),
                    format!("annotation {k} is `{v}`, not a number"),
                ));
                continue;
            }
            None => {
                if replicas % group != 0 {
                    out.push(COUNTS.finding(o, "/spec/replicas", format!("replicas is {replicas}, not a multiple of 1 + {per_master} replicas per master")));
                    continue;
                }
                replicas / group
            }
        };
        if masters < s.min_masters {
            out.push(COUNTS.finding(
                o,
                "/spec/replicas",
                format!(
                    "{masters} masters; a Redis Cluster needs at least {} (replicas ≥ {})",
                    s.min_masters,
                    s.min_masters * group
                ),
            ));
        }
    }
    out
}
