//! The policy ABI end to end: the host encodes a bundle with `kr_policy_abi`'s types, a module
//! built with the SDK (policies/examples/abi-echo, which uses the same types) decodes it and
//! echoes every object back as a finding, and the host decodes those. Each field the ABI carries
//! must arrive as sent, both ways; settings go through `kr_validate_settings` first.

use kubectl_redis::object::PackedObject;
use kubectl_redis::policy::{
    EngineOptions, ObjectRef, PolicyEngine, PolicyErrorKind, PolicySettings, Severity,
};
use kubectl_redis::render::{Bundle, RenderedObject};
use serde_json::{json, Value};

fn echo(engine: &PolicyEngine) -> kubectl_redis::policy::Policy {
    engine
        .load_file(std::path::Path::new(env!("KR_ABI_ECHO_WASM")))
        .expect("the echo module loads")
}

fn bundle(objects: Vec<Value>) -> Bundle {
    Bundle {
        objects: objects
            .into_iter()
            .map(|object| RenderedObject {
                object: PackedObject::from_value(&object).expect("packs"),
                origin: Default::default(),
            })
            .collect(),
        ..Default::default()
    }
}

fn settings(tag: &str) -> PolicySettings {
    PolicySettings::from_value(json!({ "abi-echo": { "tag": tag } })).expect("settings parse")
}

#[test]
fn every_field_survives_the_round_trip() {
    let engine = PolicyEngine::new(EngineOptions::default()).expect("engine starts");
    let policy = echo(&engine);
    assert_eq!(policy.metadata.name, "abi-echo");
    let rules: Vec<(&str, Severity)> = policy
        .metadata
        .rules
        .iter()
        .map(|r| (r.id.as_str(), r.severity))
        .collect();
    assert_eq!(
        rules,
        [("echo-warn", Severity::Warn), ("echo-deny", Severity::Deny)]
    );

    let namespaced = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "redis-cluster", "namespace": "prod",
                     "annotations": {"echo": "deny", "size": "+1Gi"}}});
    let cluster_scoped = json!({"apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "pv-ü", "annotations": {"size": "1GB"}}});
    let tag = "tag with \"quotes\", \\ and ✓";
    let report = engine
        .evaluate(
            &bundle(vec![namespaced.clone(), cluster_scoped.clone()]),
            &[policy],
            &settings(tag),
        )
        .expect("evaluates");

    assert_eq!(report.findings.len(), 2);
    let (first, second) = (&report.findings[0], &report.findings[1]);
    assert_eq!(first.policy, "abi-echo");
    assert_eq!(
        (first.rule.as_str(), first.severity),
        ("echo-deny", Severity::Deny)
    );
    assert_eq!(first.object, ObjectRef::of(&namespaced));
    assert_eq!(first.object.namespace.as_deref(), Some("prod"));
    assert_eq!(first.path, "/metadata/name");
    // The guest read `+1Gi` as the host's grammar does (1 GiB), and the settings as sent.
    assert_eq!(
        first.message,
        format!(
            "StatefulSet/redis-cluster (namespace prod) of 2 objects, tag {tag:?}, size 1073741824"
        )
    );
    assert_eq!(
        first.fix,
        Some(json!([{"op": "add", "path": "/metadata/labels", "value": {"echo": tag}}]))
    );

    assert_eq!(
        (second.rule.as_str(), second.severity),
        ("echo-warn", Severity::Warn)
    );
    assert_eq!(second.object, ObjectRef::of(&cluster_scoped));
    assert_eq!(second.object.namespace, None);
    assert_eq!(
        second.message,
        format!("PersistentVolume/pv-ü of 2 objects, tag {tag:?}, size invalid")
    );
    assert_eq!(report.blocking(), 1);
}

#[test]
fn the_guest_answers_settings_through_the_abi() {
    let engine = PolicyEngine::new(EngineOptions::default()).expect("engine starts");
    let policy = echo(&engine);
    let err = engine
        .validate_settings(&policy, &json!({"tag": "two\nlines"}))
        .expect_err("the module's own validation refuses it");
    assert_eq!(err.kind, PolicyErrorKind::Settings);
    assert!(err.message.contains("tag: one line, please"), "{err}");
    let err = engine
        .validate_settings(&policy, &json!({"colour": "red"}))
        .expect_err("unknown fields are refused");
    assert!(err.message.contains("unknown field `colour`"), "{err}");
    engine
        .validate_settings(&policy, &json!({"tag": "fine"}))
        .expect("good settings pass");
}
