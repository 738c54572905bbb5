//! Rule 6: each workload's selector matches its own pod template, every Service selects the pods
//! of a workload in the bundle, and a StatefulSet's governing Service exists.

use kr_policy_sdk::k8s::{self, array_at, name, str_at, string_map, Workload};
use kr_policy_sdk::prelude::*;

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {}

impl PolicySettings for Settings {}

const SELECTORS: Rule = Rule::deny(
    "selectors",
    "StatefulSet selector, pod template labels and Service selector agree",
);
const SERVICE_NAME: Rule = Rule::warn(
    "service-name",
    "A StatefulSet's serviceName names a Service of the bundle",
);

kr_policy!(
    name: "selectors",
    rules: [SELECTORS, SERVICE_NAME],
    kinds: [k8s::WORKLOAD_KINDS, &["Service"]],
    settings: Settings,
    evaluate: evaluate,
);

fn selector_matches(selector: Value<'_>, labels: &[(&str, &str)]) -> Result<(), String> {
    let get = |k: &str| labels.iter().find(|(lk, _)| *lk == k).map(|(_, v)| *v);
    for (k, v) in string_map(selector, "/matchLabels") {
        if get(k) != Some(v) {
            return Err(format!("matchLabels {k}={v} is not among the pod labels"));
        }
    }
    for e in array_at(selector, "/matchExpressions") {
        let key = str_at(e, "/key");
        let values: Vec<_> = array_at(e, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let ok = match str_at(e, "/operator") {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            op => {
                return Err(format!(
                "matchExpressions operator `{op}` is not one of In, NotIn, Exists, DoesNotExist"
            ))
            }
        };
        if !ok {
            return Err(format!(
                "matchExpressions on `{key}` does not match the pod labels"
            ));
        }
    }
    Ok(())
}

fn evaluate(input: &Input, _: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let workloads: Vec<Workload> = input.workloads().filter(|w| w.kind() != "Pod").collect();
    for w in &workloads {
        let labels = w.pod_labels();
        match w.object.pointer("/spec/selector") {
            Some(sel)
                if sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some() =>
            {
                if let Err(e) = selector_matches(sel, &labels) {
                    out.push(SELECTORS.finding(
                        w.object,
                        "/spec/selector",
                        format!("selector does not select its own pods: {e}"),
                    ));
                }
            }
            _ => out.push(SELECTORS.finding(
                w.object,
                "/spec/selector",
                "no selector (apps/v1 requires one, and it must match the pod template labels)",
            )),
        }
        if w.kind() == "StatefulSet" {
            let svc = str_at(w.object, "/spec/serviceName");
            if !svc.is_empty() && !input.has_service_named(svc) {
                out.push(SERVICE_NAME.finding(w.object, "/spec/serviceName", format!("serviceName `{svc}` is not a Service of the bundle; pods get no stable DNS names unless it exists")));
            }
        }
    }
    // The pod templates, listed in the message of every Service that selects none (built once).
    let mut pods_shown: Option<String> = None;
    for svc in input.services() {
        let selector = string_map(svc, "/spec/selector");
        if selector.is_empty() || workloads.is_empty() {
            continue;
        }
        if !input
            .workloads_selected_by(&selector)
            .any(|w| w.workload.kind() != "Pod")
        {
            let shown: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let pods = pods_shown.get_or_insert_with(|| {
                input
                    .indexed_workloads()
                    .filter(|w| w.workload.kind() != "Pod")
                    .map(|w| {
                        format!(
                            "{} `{}`: {}",
                            w.workload.kind(),
                            name(w.workload.object),
                            w.labels
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(",")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            out.push(SELECTORS.finding(
                svc,
                "/spec/selector",
                format!(
                    "selector {} matches no pod template ({})",
                    shown.join(","),
                    pods
                ),
            ));
        }
    }
    out
}
