//! Exceptions: a rule waived for an object, with a written reason. Waived findings stay in the
//! report, marked suppressed, and no longer count towards the exit code. A waiver without a
//! reason, or for a rule no loaded policy has, is an error.
//!
//! Two ways to write one: the annotation `policy.kubectl-redis.io/waive-<rule-id>: "<reason>"` on
//! the object, or a spec-level waiver the spec loader turns into a [`Waiver`].

use anyhow::bail;

use super::{ObjectRef, Report};
use crate::render::Bundle;

pub const ANNOTATION_PREFIX: &str = "policy.kubectl-redis.io/waive-";

#[derive(Debug, Clone)]
pub struct Waiver {
    pub rule: String,
    /// The object it applies to; None for every object of the bundle.
    pub object: Option<ObjectRef>,
    pub reason: String,
    /// Where it was written, e.g. `annotation on StatefulSet/redis-cluster` or `spec.yaml:12`.
    pub source: String,
}

/// The waivers of a bundle: its spec's `waivers` (for every object) and the annotations on its
/// objects.
pub fn from_bundle(bundle: &Bundle) -> Vec<Waiver> {
    let mut out: Vec<Waiver> = bundle
        .waivers
        .iter()
        .map(|w| Waiver {
            rule: w.rule.clone(),
            object: None,
            reason: w.reason.clone(),
            source: format!("spec waiver at {}", w.location),
        })
        .collect();
    for o in &bundle.objects {
        let Some(annotations) = o
            .object
            .pointer("/metadata/annotations")
            .and_then(|a| a.as_object())
        else {
            continue;
        };
        for (key, value) in annotations {
            if let Some(rule) = key.strip_prefix(ANNOTATION_PREFIX) {
                let object = ObjectRef::of(&o.object);
                let line = o
                    .origin
                    .field_lines
                    .get(&format!(
                        "/metadata/annotations/{}",
                        key.replace('~', "~0").replace('/', "~1")
                    ))
                    .copied()
                    .unwrap_or(o.origin.line);
                out.push(Waiver {
                    rule: rule.to_string(),
                    source: format!("annotation {key} on {object} ({}:{line})", o.origin.file),
                    object: Some(object),
                    reason: value.as_str().unwrap_or("").to_string(),
                });
            }
        }
    }
    out
}

/// Marks the findings the waivers cover as suppressed.
pub fn apply(report: &mut Report, waivers: &[Waiver]) -> anyhow::Result<()> {
    for w in waivers {
        if w.reason.trim().is_empty() {
            bail!("the waiver of rule `{}` ({}) has no reason; write down why the rule does not apply", w.rule, w.source);
        }
        if !report.rules.iter().any(|(_, r)| r.id == w.rule) {
            let mut known: Vec<&str> = report.rules.iter().map(|(_, r)| r.id.as_str()).collect();
            known.sort_unstable();
            bail!(
                "the waiver of rule `{}` ({}) names no rule of the loaded policies (rules: {})",
                w.rule,
                w.source,
                known.join(", ")
            );
        }
    }
    for f in &mut report.findings {
        let waiver = waivers.iter().find(|w| {
            w.rule == f.rule
                && w.object.as_ref().is_none_or(|o| {
                    o.kind == f.object.kind
                        && o.name == f.object.name
                        && (o.namespace.is_none() || o.namespace == f.object.namespace)
                })
        });
        if let Some(w) = waiver {
            f.suppressed = Some(super::Suppression {
                reason: w.reason.trim().to_string(),
                source: w.source.clone(),
            });
        }
    }
    Ok(())
}
