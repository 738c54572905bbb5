//! Showing a plan: as text (a unified diff per object) and as JSON (JSON-patch operations).

use serde_json::Value;

use super::model::{normalize, Action, ObjectPlan, Plan};
use crate::cluster::preview::RedisStep;
use crate::report::redact;
use crate::report::style::Style;

/// Options for showing a plan.
pub struct ShowOptions {
    pub style: Style,
    pub show_secrets: bool,
}

/// The plan as text: a unified diff per object that changes, conflicts and drift, and the
/// summary line.
pub fn show(plan: &Plan, options: &ShowOptions) -> String {
    let s = options.style;
    let mut out = String::new();
    for object in &plan.objects {
        let title = object.describe();
        let (sign, header) = match object.action {
            _ if object.adopt => (
                s.yellow("~"),
                format!(
                    "{title} exists, not managed by kubectl-redis: will be ADOPTED (apply needs \
                     --adopt)"
                ),
            ),
            Action::Add => (s.green("+"), format!("{title} will be created")),
            Action::Change => (s.yellow("~"), format!("{title} will be updated in place")),
            Action::Replace => (s.red("-/+"), format!("{title} must be REPLACED")),
            Action::Unchanged if object.drift.is_empty() => continue,
            Action::Unchanged => (s.dim("="), format!("{title} is unchanged")),
            Action::Destroy => (
                s.red("-"),
                format!("{title} will be destroyed (no longer in the spec)"),
            ),
            Action::Keep => (
                s.yellow("="),
                format!("{title} is no longer in the spec but is KEPT"),
            ),
        };
        out.push_str(&format!(
            "{sign} {}  {}\n",
            s.bold(&header),
            s.dim(&object.source)
        ));
        if let Some(consequence) = &object.consequence {
            out.push_str(&format!("    {}\n", s.red(consequence)));
        }
        for conflict in &object.conflicts {
            out.push_str(&format!(
                "    {} {} is owned by field manager \"{}\": apply fails unless --force-conflicts\n",
                s.red("conflict:"),
                conflict.field,
                conflict.manager
            ));
        }
        for drift in &object.drift {
            out.push_str(&format!(
                "    {} \"{}\" ({}) set fields the spec does not mention; apply leaves them: {}\n",
                s.yellow("drift:"),
                drift.manager,
                drift.operation,
                drift.fields.join(", ")
            ));
        }
        if matches!(
            object.action,
            Action::Add | Action::Change | Action::Replace
        ) {
            out.push_str(&diff_text(object, options));
        }
    }
    for preview in &plan.redis {
        if !preview.has_work() {
            continue;
        }
        out.push_str(&format!(
            "{} {}\n",
            s.yellow("~"),
            s.bold(&format!(
                "Redis Cluster {}/{}: the Redis step will",
                preview.namespace, preview.statefulset
            ))
        ));
        for step in &preview.steps {
            let line = step.to_string();
            let line = match step {
                RedisStep::Refused { .. } => s.red(&line),
                _ => line,
            };
            out.push_str(&format!("    {line}\n"));
        }
    }
    let summary = plan.summary();
    let redis = crate::cluster::preview::summary(&plan.redis);
    if !summary.has_changes() {
        out.push_str(if redis.is_some() {
            "The live objects match the spec.\n"
        } else {
            "No changes. The live objects match the spec.\n"
        });
    }
    let line = match redis {
        Some(redis) => format!("{summary} {redis}"),
        None => summary.to_string(),
    };
    out.push_str(&format!("{}\n", s.bold(&line)));
    out
}

/// Unified diff of the live object and what the server would store, as YAML, secrets masked.
fn diff_text(object: &ObjectPlan, options: &ShowOptions) -> String {
    let s = options.style;
    let (before, after) = match (&object.live, &object.planned) {
        (live, Some(planned)) => (live.clone().unwrap_or(Value::Null), planned.clone()),
        // A replace has no dry-run answer: compare the fields the spec declares, so the
        // server's defaults in the live object do not show up as removals.
        (Some(live), None) => {
            let desired = normalize(&object.desired);
            (project(live, &desired), desired)
        }
        (None, None) => (Value::Null, normalize(&object.desired)),
    };
    let as_yaml = |value: &Value| -> String {
        let mut value = value.clone();
        if !options.show_secrets {
            redact::mask_secrets(&mut value);
        }
        match value {
            Value::Null => String::new(),
            value => serde_yaml::to_string(&value).unwrap_or_default(),
        }
    };
    let (before, after) = (as_yaml(&before), as_yaml(&after));
    if before == after {
        return format!(
            "    {}\n",
            s.dim("(only sensitive values differ; pass --show-secrets to see them)")
        );
    }
    let diff = similar::TextDiff::from_lines(&before, &after);
    let mut out = String::new();
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        out.push_str(&format!("    {}\n", s.cyan(&hunk.header().to_string())));
        for change in hunk.iter_changes() {
            let line = change.to_string_lossy();
            let line = line.trim_end_matches('\n');
            let text = match change.tag() {
                similar::ChangeTag::Delete => s.red(&format!("-{line}")),
                similar::ChangeTag::Insert => s.green(&format!("+{line}")),
                similar::ChangeTag::Equal => format!(" {line}"),
            };
            out.push_str(&format!("    {text}\n"));
        }
    }
    out
}

/// The parts of `live` that `shape` has: same keys in objects, same indexes in arrays.
fn project(live: &Value, shape: &Value) -> Value {
    match (live, shape) {
        (Value::Object(live), Value::Object(shape)) => Value::Object(
            shape
                .iter()
                .filter_map(|(key, child)| Some((key.clone(), project(live.get(key)?, child))))
                .collect(),
        ),
        (Value::Array(live), Value::Array(shape)) => Value::Array(
            live.iter()
                .enumerate()
                .map(|(i, item)| {
                    shape
                        .get(i)
                        .map_or_else(|| item.clone(), |s| project(item, s))
                })
                .collect(),
        ),
        (live, _) => live.clone(),
    }
}

/// The plan as JSON: per object, its action and the JSON-patch operations from the live object
/// to what the server would store (secrets masked unless asked).
pub fn to_json(plan: &Plan, show_secrets: bool) -> Value {
    let objects: Vec<Value> = plan
        .objects
        .iter()
        .map(|object| {
            let mask = |value: Option<&Value>| {
                let mut value = value.cloned().unwrap_or_else(|| serde_json::json!({}));
                if !show_secrets {
                    redact::mask_secrets(&mut value);
                }
                value
            };
            let before = mask(object.live.as_ref());
            let after = mask(
                object
                    .planned
                    .as_ref()
                    .or(Some(&normalize(&object.desired))),
            );
            let patch = json_patch::diff(&before, &after);
            serde_json::json!({
                "kind": object.kind(),
                "namespace": object.desired["metadata"]["namespace"],
                "name": object.desired["metadata"]["name"],
                "action": object.action,
                "source": object.source,
                "patch": patch,
                "conflicts": object.conflicts,
                "drift": object.drift,
                "consequence": object.consequence,
                "adopt": object.adopt,
            })
        })
        .collect();
    serde_json::json!({
        "objects": objects,
        "redis": plan.redis,
        "summary": plan.summary(),
        "redisSummary": crate::cluster::preview::summary(&plan.redis),
        "hasWork": plan.has_work(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn projection_keeps_only_declared_fields() {
        let live =
            json!({"spec": {"a": 1, "defaulted": true, "list": [{"x": 1, "y": 2}, {"x": 3}]}});
        let shape = json!({"spec": {"a": 2, "list": [{"x": 0}]}});
        assert_eq!(
            project(&live, &shape),
            json!({"spec": {"a": 1, "list": [{"x": 1}, {"x": 3}]}})
        );
    }
}
