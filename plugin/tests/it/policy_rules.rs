//! The built-in rules, each against a fixture that passes and one that fails
//! (tests/fixtures/policy/<rule-id>/{pass,fail}.yaml, optional settings.yaml), run through the
//! real wasm modules and host.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kubectl_redis::input::Origin;
use kubectl_redis::object::PackedObject;
use kubectl_redis::policy::{
    EngineOptions, Policy, PolicyEngine, PolicySettings, Report, Severity,
};
use kubectl_redis::render::{Bundle, RenderedObject};
use serde::Deserialize;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy")
}

fn engine() -> &'static (PolicyEngine, Vec<Policy>) {
    static ENGINE: OnceLock<(PolicyEngine, Vec<Policy>)> = OnceLock::new();
    ENGINE.get_or_init(|| {
        // Cached across runs: compiling the modules is slow in an unoptimised test build.
        let cache_dir = Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("policy-rules-cache"));
        let engine = PolicyEngine::new(EngineOptions {
            cache_dir,
            ..Default::default()
        })
        .expect("engine starts");
        let policies = engine.load_builtins().expect("built-in policies load");
        (engine, policies)
    })
}

/// Plain Kubernetes objects from a multi-document YAML file.
fn bundle(path: &Path) -> Bundle {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let objects = serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            serde_json::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .map(|object| RenderedObject {
            object: PackedObject::from_value(&object).expect("packs"),
            origin: Origin {
                file: path.display().to_string(),
                line: 1,
                ..Default::default()
            },
        })
        .collect();
    Bundle {
        objects,
        ..Default::default()
    }
}

fn check(path: &Path, settings: &PolicySettings) -> Report {
    let (engine, policies) = engine();
    engine
        .evaluate(&bundle(path), policies, settings)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn settings_for(dir: &Path) -> PolicySettings {
    let path = dir.join("settings.yaml");
    if path.exists() {
        PolicySettings::load(&path).expect("fixture settings load")
    } else {
        PolicySettings::default()
    }
}

fn describe(report: &Report) -> String {
    report
        .findings
        .iter()
        .map(|f| {
            format!(
                "  {} {} {} {}: {}\n",
                f.severity.as_str(),
                f.rule,
                f.object,
                f.path,
                f.message
            )
        })
        .collect()
}

#[test]
fn every_rule_has_a_passing_and_a_failing_fixture() {
    let (_, policies) = engine();
    let mut rules: Vec<&str> = policies
        .iter()
        .flat_map(|p| p.metadata.rules.iter().map(|r| r.id.as_str()))
        .collect();
    rules.sort_unstable();
    assert_eq!(
        rules,
        [
            "config-volume",
            "counts",
            "hostpath-create",
            "hostpath-node-affinity",
            "image-allowed",
            "image-pinned",
            "image-version",
            "pod-ip",
            "ports",
            "redis-conf",
            "redis-conf-directives",
            "redis-persistence",
            "selectors",
            "service-name",
            "storage"
        ]
    );
    for rule in rules {
        let dir = fixtures().join(rule);
        let settings = settings_for(&dir);
        let pass = check(&dir.join("pass.yaml"), &settings);
        assert!(
            !pass.findings.iter().any(|f| f.rule == rule),
            "{rule}: pass.yaml has findings of the rule:\n{}",
            describe(&pass)
        );
        let fail = check(&dir.join("fail.yaml"), &settings);
        assert!(
            fail.findings.iter().any(|f| f.rule == rule),
            "{rule}: fail.yaml has no finding of the rule:\n{}",
            describe(&fail)
        );
        // Findings point into the object, and fixes are JSON patches that apply to it.
        for f in fail.findings.iter().filter(|f| f.rule == rule) {
            assert!(
                f.path.is_empty() || f.path.starts_with('/'),
                "{rule}: {}",
                f.path
            );
            if let Some(fix) = &f.fix {
                let b = bundle(&dir.join("fail.yaml"));
                let mut object = b
                    .objects
                    .iter()
                    .find(|o| f.object.matches(&o.object.to_value()))
                    .expect("finding names an object of the bundle")
                    .object
                    .to_value();
                let patch: json_patch::Patch =
                    serde_json::from_value(fix.clone()).expect("fix is a JSON patch");
                json_patch::patch(&mut object, &patch)
                    .unwrap_or_else(|e| panic!("{rule}: fix {fix} does not apply: {e}"));
            }
        }
    }
}

#[test]
fn applying_the_fixes_clears_the_findings() {
    for rule in [
        "ports",
        "config-volume",
        "storage",
        "pod-ip",
        "hostpath-create",
        "counts",
    ] {
        let path = fixtures().join(rule).join("fail.yaml");
        let mut b = bundle(&path);
        let report = engine()
            .0
            .evaluate(&b, &engine().1, &PolicySettings::default())
            .expect("evaluates");
        let fixes: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.rule == rule)
            .filter_map(|f| f.fix.clone().map(|fix| (f.object.clone(), fix)))
            .collect();
        assert!(
            !fixes.is_empty(),
            "{rule}: its fail.yaml fixture has no finding with a fix, so this test would check nothing"
        );
        for (object, fix) in fixes {
            let o = b
                .objects
                .iter_mut()
                .find(|o| object.matches(&o.object.to_value()))
                .expect("object exists");
            let patch: json_patch::Patch = serde_json::from_value(fix).expect("patch");
            let mut fixed = o.object.to_value();
            json_patch::patch(&mut fixed, &patch).expect("fix applies");
            o.object = PackedObject::from_value(&fixed).expect("packs");
        }
        let after = engine()
            .0
            .evaluate(&b, &engine().1, &PolicySettings::default())
            .expect("evaluates");
        let left: Vec<_> = after
            .findings
            .iter()
            .filter(|f| f.rule == rule && f.fix.is_some())
            .collect();
        assert!(
            left.is_empty(),
            "{rule}: fixable findings remain after applying the fixes: {left:?}"
        );
    }
}

#[test]
fn the_rendered_cluster_has_no_deny_findings() {
    let report = check(
        &fixtures().join("config-volume/pass.yaml"),
        &PolicySettings::default(),
    );
    assert_eq!(report.blocking(), 0, "{}", describe(&report));
    // Only the node-affinity warning: the PVs are not pinned to nodes by default.
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.rule == "hostpath-node-affinity" && f.severity == Severity::Warn),
        "{}",
        describe(&report)
    );
    assert_eq!(report.findings.len(), 6);
}

#[test]
fn node_count_one_silences_the_affinity_warning() {
    let settings = PolicySettings::from_value(serde_json::json!({"hostpath": {"nodeCount": 1}}))
        .expect("mapping");
    let report = check(&fixtures().join("config-volume/pass.yaml"), &settings);
    assert!(report.findings.is_empty(), "{}", describe(&report));
}

#[test]
fn the_single_redis_seed_has_warnings_but_no_deny() {
    let report = check(
        &fixtures().join("seed-single.yaml"),
        &PolicySettings::default(),
    );
    assert_eq!(report.blocking(), 0, "{}", describe(&report));
    let rules: Vec<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
    // The hostPath PV without a type, without affinity, and Redis writing to /data, which is not
    // the mounted volume (/redis-master-data).
    assert!(
        rules.contains(&"hostpath-create")
            && rules.contains(&"hostpath-node-affinity")
            && rules.contains(&"redis-persistence"),
        "{}",
        describe(&report)
    );
}

#[test]
fn cluster_rules_deny_a_single_redis_only_through_settings() {
    // A required size applies to non-cluster bundles only when configured.
    let settings = PolicySettings::from_value(serde_json::json!({"storage": {"size": "1Gi"}}))
        .expect("mapping");
    let report = check(&fixtures().join("seed-single.yaml"), &settings);
    let storage: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == "storage")
        .collect();
    assert_eq!(storage.len(), 2, "{}", describe(&report));
    assert!(
        storage.iter().any(|f| f.message.contains("10Gi"))
            && storage.iter().any(|f| f.message.contains("3Gi"))
    );
}

#[test]
fn settings_are_validated_when_the_module_loads() {
    let (engine, policies) = engine();
    let storage = policies
        .iter()
        .find(|p| p.name() == "storage")
        .expect("storage policy");
    let err = engine
        .validate_settings(storage, &serde_json::json!({"size": "lots"}))
        .expect_err("bad size");
    assert!(
        err.to_string().contains("builtin:storage") && err.to_string().contains("lots"),
        "{err}"
    );
    let err = engine
        .validate_settings(storage, &serde_json::json!({"sise": "1Gi"}))
        .expect_err("unknown field");
    assert!(err.to_string().contains("sise"), "{err}");
    engine
        .validate_settings(
            storage,
            &serde_json::json!({"size": "2Gi", "accessMode": "ReadWriteOnce"}),
        )
        .expect("good settings");
    let ports = policies
        .iter()
        .find(|p| p.name() == "ports")
        .expect("ports policy");
    assert!(engine
        .validate_settings(ports, &serde_json::json!({"clientPort": 70000}))
        .is_err());
}

#[test]
fn a_custom_size_setting_is_honoured() {
    let settings = PolicySettings::from_value(serde_json::json!({"storage": {"size": "2Gi"}}))
        .expect("mapping");
    let report = check(&fixtures().join("storage/pass.yaml"), &settings);
    // Six PVs and the claim template are 1Gi, not 2Gi.
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.rule == "storage")
            .count(),
        7,
        "{}",
        describe(&report)
    );
}
