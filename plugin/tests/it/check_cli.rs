//! `kubectl redis check` end to end: the seeds, exit codes in every format, user modules
//! (`--policy`), settings, waivers, SARIF against its schema and GitHub annotations.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/policy")
        .join(rel)
}

/// A cache shared by the tests of this binary, so that only the first run compiles.
fn cache_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("check-cli-cache"))
}

fn check(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("kubectl-redis")
        .expect("binary built")
        .arg("check")
        .args(args)
        .current_dir(root())
        .env("KUBECTL_REDIS_CACHE_DIR", cache_dir())
        .env_remove("NO_COLOR")
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, content: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path.display().to_string()
}

#[test]
fn the_cluster_spec_checks_clean() {
    let (code, out, err) = check(&["-f", "specs/redis-cluster.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Check passed"), "{out}");
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal: {out}"
    );
}

#[test]
fn a_cold_check_compiles_nothing_and_writes_no_cache() {
    // The built-in policies run from the code build.rs precompiled: with an empty cache
    // directory, nothing is compiled (-v would say so) and nothing is written.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::cargo_bin("kubectl-redis")
        .expect("binary built")
        .args(["-v", "check", "-f", "specs/redis-cluster.yaml"])
        .current_dir(root())
        .env("KUBECTL_REDIS_CACHE_DIR", dir.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("compiling"), "{err}");
    let written: Vec<_> = std::fs::read_dir(dir.path())
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(written.is_empty(), "the cache was written: {written:?}");
}

#[test]
fn the_single_redis_seed_checks_with_warnings_only() {
    let (code, out, err) = check(&["-f", "specs/redis-single"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("warn") && out.contains("hostpath-create"),
        "{out}"
    );
}

#[test]
fn deny_findings_exit_2_in_every_format() {
    let spec = fixture("counts/fail.yaml").display().to_string();
    for format in ["text", "json", "sarif", "github"] {
        let (code, out, err) = check(&["-f", &spec, "-o", format]);
        assert_eq!(code, 2, "{format}: {out}{err}");
        assert!(out.contains("counts"), "{format}: {out}");
    }
    let (_, out, _) = check(&["-f", &spec, "-o", "json"]);
    let v: Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(v["summary"]["passed"], false);
    let f = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "counts")
        .expect("counts finding");
    assert_eq!(f["object"]["kind"], "StatefulSet");
    assert_eq!(f["path"], "/spec/replicas");
    assert_eq!(f["location"]["file"], spec.as_str());
    assert!(f["location"]["line"].as_u64().expect("line") > 1);
}

#[test]
fn text_is_coloured_when_asked() {
    let (code, out, _) = check(&[
        "-f",
        &fixture("counts/fail.yaml").display().to_string(),
        "--color",
        "always",
    ]);
    assert_eq!(code, 2);
    assert!(out.contains("\x1b[1;31m"), "{out}");
}

#[test]
fn sarif_is_valid_against_the_schema_and_points_at_lines() {
    // The SARIF 2.1.0 schema as Microsoft ships it in @microsoft/jest-sarif (MIT).
    let mut schema: Value =
        serde_json::from_str(include_str!("../fixtures/sarif-schema-2.1.0.json")).expect("schema");
    // The schema's pattern for `language` properties has a stray `]` that the validator's
    // meta-schema check rejects; use the pattern it means (a language tag such as `en-US`).
    fix_language_patterns(&mut schema);
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for spec in [
        "specs/redis-cluster.yaml".to_string(),
        fixture("storage/fail.yaml").display().to_string(),
    ] {
        let (_, out, err) = check(&["-f", &spec, "-o", "sarif"]);
        let sarif: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        let errors: Vec<String> = validator
            .iter_errors(&sarif)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{spec}: {errors:#?}");
        // The validator does reject what the schema forbids.
        let mut broken = sarif.clone();
        broken["runs"][0]["results"][0]["level"] = Value::from("fatal");
        assert!(!validator.is_valid(&broken));
        let results = sarif["runs"][0]["results"].as_array().expect("results");
        assert!(!results.is_empty(), "{spec}");
        for r in results {
            let region = &r["locations"][0]["physicalLocation"]["region"];
            assert!(region["startLine"].as_u64().is_some_and(|l| l >= 1), "{r}");
        }
    }
}

fn fix_language_patterns(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "pattern" && v.as_str() == Some("^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$")
                {
                    *v = Value::from("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$");
                } else {
                    fix_language_patterns(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fix_language_patterns),
        _ => {}
    }
}

#[test]
fn github_annotations_carry_file_and_line() {
    let spec = fixture("pod-ip/fail.yaml").display().to_string();
    let (code, out, _) = check(&["-f", &spec, "-o", "github"]);
    assert_eq!(code, 2);
    let line = out
        .lines()
        .find(|l| l.starts_with("::error ") && l.contains("pod-ip"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains(&format!("file={spec},line=")), "{line}");
    assert!(out.lines().any(|l| l.starts_with("::warning ")), "{out}");
}

#[test]
fn a_user_policy_runs_with_its_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = write(
        dir.path(),
        "settings.yaml",
        b"forbidden-tags:\n  forbiddenTags: [\"5.0.1-alpine\"]\n",
    );
    let (code, out, err) = check(&[
        "-f",
        "specs/redis-cluster.yaml",
        "--policy",
        env!("KR_EXAMPLE_POLICY_WASM"),
        "--policy-settings",
        &settings,
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("forbidden-tags") && out.contains("redis:5.0.1-alpine uses a forbidden tag"),
        "{out}"
    );
    // Without settings it has nothing to forbid.
    let (code, out, err) = check(&[
        "-f",
        "specs/redis-cluster.yaml",
        "--policy",
        env!("KR_EXAMPLE_POLICY_WASM"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn bad_settings_are_an_error_naming_the_module() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = write(dir.path(), "settings.yaml", b"storage:\n  size: huge\n");
    let (code, out, err) = check(&[
        "-f",
        "specs/redis-cluster.yaml",
        "--policy-settings",
        &settings,
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("builtin:storage") && err.contains("huge"),
        "{err}"
    );
    let settings = write(dir.path(), "typo.yaml", b"storrage:\n  size: 1Gi\n");
    let (code, _, err) = check(&[
        "-f",
        "specs/redis-cluster.yaml",
        "--policy-settings",
        &settings,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("storrage"), "{err}");
}

#[test]
fn a_hostile_user_module_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let looping = wat::parse_str(
        r#"(module (memory (export "memory") 1)
          (func (export "kr_abi_version") (result i32) (loop $l (br $l)) (i32.const 1))
          (func (export "kr_alloc") (param i32) (result i32) (i32.const 0))
          (func (export "kr_metadata") (result i64) (i64.const 0))
          (func (export "kr_validate_settings") (param i32 i32) (result i64) (i64.const 0))
          (func (export "kr_evaluate") (param i32 i32) (result i64) (i64.const 0)))"#,
    )
    .expect("WAT");
    let path = write(dir.path(), "loop.wasm", &looping);
    for format in ["text", "sarif"] {
        let (code, out, err) = check(&[
            "-f",
            "specs/redis-cluster.yaml",
            "--policy",
            &path,
            "-o",
            format,
        ]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            err.contains(&format!("policy module {path}"))
                && (err.contains("fuel") || err.contains("deadline")),
            "{err}"
        );
    }
    let wasi = wat::parse_str(r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))) (memory (export "memory") 1))"#).expect("WAT");
    let path = write(dir.path(), "wasi.wasm", &wasi);
    let (code, _, err) = check(&["-f", "specs/redis-cluster.yaml", "--policy", &path]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("wasi_snapshot_preview1::proc_exit") && err.contains(&path),
        "{err}"
    );
}

#[test]
fn an_annotation_waiver_suppresses_with_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(fixture("counts/fail.yaml")).expect("fixture");
    let waived = text.replacen(
        "    redis.kubectl-redis.io/masters: '3'",
        "    redis.kubectl-redis.io/masters: '3'\n    policy.kubectl-redis.io/waive-counts: \"scaling down in two steps, see OPS-12\"",
        1,
    );
    assert_ne!(waived, text, "the fixture has the masters annotation");
    let spec = write(dir.path(), "waived.yaml", waived.as_bytes());
    let (code, out, err) = check(&["-f", &spec, "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).expect("JSON");
    let f = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "counts")
        .expect("still reported");
    assert_eq!(
        f["suppressed"]["reason"],
        "scaling down in two steps, see OPS-12"
    );
    assert_eq!(v["summary"]["suppressed"], 1);
    let (_, text_out, _) = check(&["-f", &spec]);
    assert!(
        text_out.contains("waived: scaling down in two steps"),
        "{text_out}"
    );
    let (_, sarif, _) = check(&["-f", &spec, "-o", "sarif"]);
    assert!(
        sarif.contains("\"justification\": \"scaling down in two steps, see OPS-12\""),
        "{sarif}"
    );

    let no_reason = text.replacen(
        "    redis.kubectl-redis.io/masters: '3'",
        "    redis.kubectl-redis.io/masters: '3'\n    policy.kubectl-redis.io/waive-counts: \"  \"",
        1,
    );
    let spec = write(dir.path(), "no-reason.yaml", no_reason.as_bytes());
    let (code, _, err) = check(&["-f", &spec]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no reason"), "{err}");

    let unknown = text.replacen("    redis.kubectl-redis.io/masters: '3'", "    redis.kubectl-redis.io/masters: '3'\n    policy.kubectl-redis.io/waive-countz: \"typo\"", 1);
    let spec = write(dir.path(), "unknown.yaml", unknown.as_bytes());
    let (code, _, err) = check(&["-f", &spec]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("countz"), "{err}");
}

#[test]
fn a_spec_waiver_suppresses_with_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = std::fs::read_to_string(root().join("specs/redis-cluster.yaml")).expect("spec");
    let spec = spec.replace("  image: redis:5.0.1-alpine", "  image: redis:4.0.14\n  waivers:\n    - rule: image-version\n      reason: legacy clients need 4.0 until Q3");
    let path = write(dir.path(), "cluster.yaml", spec.as_bytes());
    let (code, out, err) = check(&["-f", &path, "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("legacy clients need 4.0 until Q3"), "{out}");
}
