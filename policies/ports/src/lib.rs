//! Rule 1: the Redis container names its ports `client` and `gossip`, and every Service that
//! selects it exposes them with targetPorts that reach a container port.

use kr_policy_sdk::k8s::{self, array_at, str_at};
use kr_policy_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    client_port: i64,
    gossip_port: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            client_port: 6379,
            gossip_port: 16379,
        }
    }
}

impl PolicySettings for Settings {
    fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("clientPort", self.client_port),
            ("gossipPort", self.gossip_port),
        ] {
            if !(1..=65535).contains(&p) {
                return Err(format!("{name} must be a port number (1-65535), not {p}"));
            }
        }
        Ok(())
    }
}

const PORTS: Rule = Rule::deny(
    "ports",
    "Container ports client=6379 and gossip=16379; Services expose them with matching targetPorts",
);

kr_policy!(
    name: "ports",
    rules: [PORTS],
    kinds: [k8s::WORKLOAD_KINDS, k8s::CLUSTER_MODE_KINDS, &["Service"]],
    settings: Settings,
    evaluate: evaluate,
);

fn evaluate(input: &Input, s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let cluster = input.cluster_mode();
    for w in input.redis_workloads() {
        let containers = w.main_containers();
        let redis: Vec<_> = containers.iter().filter(|c| c.runs_redis()).collect();
        if cluster {
            for c in &redis {
                for (want, number) in [("client", s.client_port), ("gossip", s.gossip_port)] {
                    let ports = c.ports();
                    match ports.iter().enumerate().find(|(_, p)| p.get("containerPort").and_then(Value::as_i64) == Some(number)) {
                        None => out.push(
                            PORTS
                                .finding(w.object, c.pointer("/ports"), format!("container `{}` does not expose port {number} (`{want}`)", c.name()))
                                .with_fix(vec![json!({"op": "add", "path": c.pointer(if ports.is_empty() { "/ports" } else { "/ports/-" }),
                                    "value": if ports.is_empty() { json!([{"name": want, "containerPort": number}]) } else { json!({"name": want, "containerPort": number}) }})]),
                        ),
                        Some((i, p)) if str_at(p, "/name") != want => {
                            let op = if p.get("name").is_some() { "replace" } else { "add" };
                            out.push(
                                PORTS
                                    .finding(w.object, c.pointer(&format!("/ports/{i}/name")), format!("container port {number} must be named `{want}`"))
                                    .with_fix(vec![json!({"op": op, "path": c.pointer(&format!("/ports/{i}/name")), "value": want})]),
                            );
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        let labels = w.pod_labels();
        // Services whose (non-empty) selector picks these pods, from the index, in bundle order.
        for svc in input.services_selecting(&labels) {
            let ports = array_at(svc, "/spec/ports");
            // Every Service port must land on a port some container of the workload listens on.
            for (i, p) in ports.iter().enumerate() {
                let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                let target = p.get("targetPort").map_or(json!(port), |t| t.to_value());
                let reached =
                    containers
                        .iter()
                        .flat_map(|c| c.ports())
                        .any(|cp| match target.as_str() {
                            Some(name) => str_at(cp, "/name") == name,
                            None => cp.get("containerPort").is_some_and(|n| n == target),
                        });
                if !reached {
                    out.push(PORTS.finding(
                        svc,
                        format!("/spec/ports/{i}/targetPort"),
                        format!(
                            "port {port} targets {target}, which no container of {} `{}` exposes",
                            w.kind(),
                            kr_policy_sdk::k8s::name(w.object)
                        ),
                    ));
                }
            }
            if cluster {
                for (want, number) in [("client", s.client_port), ("gossip", s.gossip_port)] {
                    match ports.iter().enumerate().find(|(_, p)| str_at(*p, "/name") == want) {
                        None => out.push(
                            PORTS
                                .finding(svc, "/spec/ports", format!("Service does not expose `{want}` ({number})"))
                                .with_fix(vec![json!({"op": "add", "path": "/spec/ports/-", "value": {"name": want, "port": number, "targetPort": number}})]),
                        ),
                        Some((i, p)) => {
                            let port = p.get("port").and_then(Value::as_i64);
                            let target = p.get("targetPort").map_or(json!(port), |t| t.to_value());
                            if port != Some(number) {
                                out.push(PORTS.finding(svc, format!("/spec/ports/{i}/port"), format!("Service port `{want}` must be {number}")));
                            }
                            if target != json!(number) && target != json!(want) {
                                out.push(
                                    PORTS
                                        .finding(svc, format!("/spec/ports/{i}/targetPort"), format!("Service port `{want}` must target {number}, not {target}"))
                                        .with_fix(vec![json!({"op": "add", "path": format!("/spec/ports/{i}/targetPort"), "value": number})]),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    out
}
