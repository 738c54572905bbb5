use kr_policy_sdk::k8s;
use kr_policy_sdk::prelude::*;

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    forbidden_tags: Vec<String>,
}
impl PolicySettings for Settings {}

const TAGS: Rule = Rule::deny("forbidden-tags", "Images do not use a forbidden tag");

kr_policy!(name: "forbidden-tags", rules: [TAGS], kinds: [k8s::WORKLOAD_KINDS], settings: Settings, evaluate: evaluate);

fn evaluate(input: &Input, s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    for w in input.workloads() {
        for c in w.containers() {
            if s.forbidden_tags
                .iter()
                .any(|t| c.image().ends_with(&format!(":{t}")))
            {
                out.push(TAGS.finding(
                    w.object,
                    c.pointer("/image"),
                    format!("{} uses a forbidden tag", c.image()),
                ));
            }
        }
    }
    out
}
