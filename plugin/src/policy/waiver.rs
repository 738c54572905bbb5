//! Exceptions: a rule waived for an object, with a written reason. Waived findings stay in the
//! report, marked suppressed, and no longer count towards the exit code. A waiver without a
//! reason, or for a rule no loaded policy has, is an error.
//!
//! Two ways to write one: the annotation `policy.kubectl-redis.io/waive-<rule-id>: "<reason>"` on
//! the object, or a spec-level waiver the spec loader turns into a [`Waiver`].

use std::collections::{HashMap, HashSet};

use anyhow::bail;

use super::{ObjectRef, Report};
use crate::render::Bundle;

pub(super) use kr_policy_abi::annotations::WAIVE_PREFIX as ANNOTATION_PREFIX;

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
pub(super) fn from_bundle(bundle: &Bundle) -> Vec<Waiver> {
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
            .node()
            .pointer("/metadata/annotations")
            .and_then(|a| a.as_object())
        else {
            continue;
        };
        for (key, value) in annotations {
            if let Some(rule) = key.strip_prefix(ANNOTATION_PREFIX) {
                let object = ObjectRef::of_packed(o.object.node());
                let line = o
                    .origin
                    .field_lines
                    .get(&format!(
                        "/metadata/annotations/{}",
                        key.replace('~', "~0").replace('/', "~1")
                    ))
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

/// Marks the findings the waivers cover as suppressed: the first waiver, in `waivers` order, of
/// the finding's rule that is for every object or names the finding's object (a waiver without
/// a namespace names the object in any namespace). The waivers are indexed once, so this is
/// linear in findings + waivers.
pub(super) fn apply(report: &mut Report, waivers: &[Waiver]) -> anyhow::Result<()> {
    let rules: HashSet<&str> = report.rules.iter().map(|(_, r)| r.id.as_str()).collect();
    for w in waivers {
        if w.reason.trim().is_empty() {
            bail!("the waiver of rule `{}` ({}) has no reason; write down why the rule does not apply", w.rule, w.source);
        }
        if !rules.contains(w.rule.as_str()) {
            let mut known: Vec<&str> = rules.iter().copied().collect();
            known.sort_unstable();
            bail!(
                "the waiver of rule `{}` ({}) names no rule of the loaded policies (rules: {})",
                w.rule,
                w.source,
                known.join(", ")
            );
        }
    }
    // (rule, kind, name, namespace as written in the waiver) → the first such waiver; the
    // object None stands for "every object" (spec waivers), keyed by the rule alone.
    type Key<'a> = (&'a str, Option<(&'a str, &'a str, Option<&'a str>)>);
    let mut first: HashMap<Key<'_>, usize> = HashMap::with_capacity(waivers.len());
    for (i, w) in waivers.iter().enumerate() {
        let object = w
            .object
            .as_ref()
            .map(|o| (o.kind.as_str(), o.name.as_str(), o.namespace.as_deref()));
        first.entry((w.rule.as_str(), object)).or_insert(i);
    }
    for f in &mut report.findings {
        let (rule, kind, name) = (
            f.rule.as_str(),
            f.object.kind.as_str(),
            f.object.name.as_str(),
        );
        let namespace = f.object.namespace.as_deref();
        let keys = [
            Some((rule, None)),
            Some((rule, Some((kind, name, None)))),
            namespace.map(|ns| (rule, Some((kind, name, Some(ns))))),
        ];
        let waiver = keys
            .into_iter()
            .flatten()
            .filter_map(|key| first.get(&key).copied())
            .min()
            .map(|i| &waivers[i]);
        if let Some(w) = waiver {
            f.suppressed = Some(super::Suppression {
                reason: w.reason.trim().to_string(),
                source: w.source.clone(),
            });
        }
    }
    Ok(())
}
