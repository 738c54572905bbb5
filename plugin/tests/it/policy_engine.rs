//! The wasm host against hostile and broken modules (written in WAT). Each must fail with an
//! error that names the module — never hang or crash. The limits are the defaults `check` uses:
//! the fuel budget and the epoch deadline are what make the looping cases end.

use kubectl_redis::object::PackedObject;
use kubectl_redis::policy::{
    EngineOptions, PolicyEngine, PolicyError, PolicyErrorKind, PolicySettings,
};
use kubectl_redis::render::{Bundle, RenderedObject};
use serde_json::json;

const METADATA: &str = r#"{"abi":1,"name":"wat-policy","version":"0.0.1","rules":[{"id":"wat-rule","severity":"deny","description":"test"}]}"#;
const OK: &str = r#"{"ok":true}"#;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A module that implements the whole ABI (version 1); `evaluate` is the body of `kr_evaluate`
/// (params $ptr $len, result i64). The findings JSON `output` is at offset 8192.
fn module(evaluate: &str, output: &str, extra: &str) -> Vec<u8> {
    module_with(METADATA, evaluate, output, extra)
}

/// [`module`] with other metadata.
fn module_with(metadata: &str, evaluate: &str, output: &str, extra: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
  {extra}
  (memory (export "memory") 4)
  (global $heap (mut i32) (i32.const 65536))
  (data (i32.const 0) "{meta}")
  (data (i32.const 4096) "{ok}")
  (data (i32.const 8192) "{out}")
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
  (func (export "kr_abi_version") (result i32) (i32.const 1))
  (func (export "kr_alloc") (param $len i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $len)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.div_u (local.get $len) (i32.const 65536)) (i32.const 1))))))
    (local.get $p))
  (func (export "kr_metadata") (result i64) (call $pack (i32.const 0) (i32.const {meta_len})))
  (func (export "kr_validate_settings") (param i32 i32) (result i64) (call $pack (i32.const 4096) (i32.const {ok_len})))
  (func $recurse (param i32) (result i32) (call $recurse (i32.add (local.get 0) (i32.const 1))))
  (func (export "kr_evaluate") (param $ptr i32) (param $len i32) (result i64)
    {evaluate}))"#,
        meta = escape(metadata),
        meta_len = metadata.len(),
        ok = escape(OK),
        ok_len = OK.len(),
        out = escape(output),
    );
    wat::parse_str(&wat).unwrap_or_else(|e| panic!("test WAT does not parse: {e}\n{wat}"))
}

fn returning(output: &str) -> Vec<u8> {
    module(
        &format!("(call $pack (i32.const 8192) (i32.const {}))", output.len()),
        output,
        "",
    )
}

fn engine() -> PolicyEngine {
    PolicyEngine::new(EngineOptions::default()).expect("engine starts")
}

fn bundle() -> Bundle {
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"}});
    Bundle {
        objects: vec![RenderedObject {
            object: PackedObject::from_value(&object).expect("packs"),
            origin: Default::default(),
        }],
        ..Default::default()
    }
}

/// Loads and evaluates a module; the error it ends with.
fn run(label: &str, wasm: &[u8]) -> PolicyError {
    let engine = engine();
    let result = engine
        .load(label, wasm)
        .and_then(|p| engine.evaluate(&bundle(), &[p], &PolicySettings::default()));
    let err = result.expect_err("the module must fail");
    assert_eq!(err.module, label);
    assert!(
        err.to_string()
            .starts_with(&format!("policy module {label}: ")),
        "{err}"
    );
    err
}

#[test]
fn a_well_behaved_module_reports_its_findings() {
    let out = r#"{"findings":[{"rule":"wat-rule","severity":"warn","object":{"apiVersion":"v1","kind":"ConfigMap","name":"cm"},"path":"/data/a","message":"hello","fix":[{"op":"remove","path":"/data/a"}]}]}"#;
    let engine = engine();
    let policy = engine.load("good.wasm", &returning(out)).expect("loads");
    assert_eq!(policy.name(), "wat-policy");
    let report = engine
        .evaluate(&bundle(), &[policy], &PolicySettings::default())
        .expect("evaluates");
    assert_eq!(report.findings.len(), 1);
    let f = &report.findings[0];
    assert_eq!(
        (f.rule.as_str(), f.path.as_str(), f.message.as_str()),
        ("wat-rule", "/data/a", "hello")
    );
    assert_eq!(f.severity, kubectl_redis::policy::Severity::Warn);
    assert_eq!(report.blocking(), 0);
}

#[test]
fn infinite_loop_runs_out_of_fuel_or_time() {
    let err = run(
        "loop.wasm",
        &module("(loop $l (br $l)) (i64.const 0)", "", ""),
    );
    assert!(
        matches!(
            err.kind,
            PolicyErrorKind::OutOfFuel | PolicyErrorKind::Deadline
        ),
        "{err}"
    );
}

#[test]
fn infinite_loop_in_the_start_function_is_stopped_too() {
    let err = run(
        "start-loop.wasm",
        &module(
            "(i64.const 0)",
            "",
            "(func $start (loop $l (br $l))) (start $start)",
        ),
    );
    assert!(
        matches!(
            err.kind,
            PolicyErrorKind::OutOfFuel | PolicyErrorKind::Deadline
        ),
        "{err}"
    );
}

#[test]
fn memory_bomb_hits_the_memory_cap() {
    let err = run(
        "bomb.wasm",
        &module(
            "(loop $l (drop (memory.grow (i32.const 16))) (br $l)) (i64.const 0)",
            "",
            "",
        ),
    );
    assert_eq!(err.kind, PolicyErrorKind::Memory, "{err}");
    assert!(err.message.contains("64 MiB"), "{err}");
}

/// A module with the ABI's exports that do nothing, around `body` (memory and extras).
fn bare(body: &str, abi: i32) -> Vec<u8> {
    let wat = format!(
        r#"(module
  {body}
  (func (export "kr_abi_version") (result i32) (i32.const {abi}))
  (func (export "kr_alloc") (param i32) (result i32) (i32.const 0))
  (func (export "kr_metadata") (result i64) (i64.const 0))
  (func (export "kr_validate_settings") (param i32 i32) (result i64) (i64.const 0))
  (func (export "kr_evaluate") (param i32 i32) (result i64) (i64.const 0)))"#
    );
    wat::parse_str(wat).expect("test WAT parses")
}

#[test]
fn huge_initial_memory_is_refused_at_instantiation() {
    // 65536 pages: 4 GiB up front.
    let err = run(
        "big-memory.wasm",
        &bare(r#"(memory (export "memory") 65536)"#, 1),
    );
    assert_eq!(err.kind, PolicyErrorKind::Memory, "{err}");
}

#[test]
fn trap_is_reported() {
    let err = run("trap.wasm", &module("unreachable", "", ""));
    assert_eq!(err.kind, PolicyErrorKind::Trap, "{err}");
    assert!(err.message.contains("unreachable"), "{err}");
}

#[test]
fn unbounded_recursion_is_a_stack_overflow() {
    let err = run(
        "recurse.wasm",
        &module("(drop (call $recurse (i32.const 0))) (i64.const 0)", "", ""),
    );
    assert!(
        matches!(err.kind, PolicyErrorKind::Trap | PolicyErrorKind::OutOfFuel),
        "{err}"
    );
}

#[test]
fn huge_output_is_refused() {
    // Claims 2 GiB of output.
    let err = run(
        "huge-output.wasm",
        &module("(call $pack (i32.const 0) (i32.const 0x7fffffff))", "", ""),
    );
    assert_eq!(err.kind, PolicyErrorKind::Output, "{err}");
    assert!(err.message.contains("byte limit"), "{err}");
    // 1 MiB, within the limit but past the end of its memory.
    let err = run(
        "oob-output.wasm",
        &module("(call $pack (i32.const 65536) (i32.const 1048576))", "", ""),
    );
    assert_eq!(err.kind, PolicyErrorKind::Output, "{err}");
    assert!(err.message.contains("outside"), "{err}");
    // 12 MiB that really is in memory: grow, then return it.
    let err = run(
        "big-output.wasm",
        &module(
            "(drop (memory.grow (i32.const 200))) (call $pack (i32.const 0) (i32.const 12582912))",
            "",
            "",
        ),
    );
    assert_eq!(err.kind, PolicyErrorKind::Output, "{err}");
}

#[test]
fn wasi_import_is_rejected_at_load() {
    let extra = r#"(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))"#;
    let err = run("wasi.wasm", &module("(i64.const 0)", "", extra));
    assert_eq!(err.kind, PolicyErrorKind::Import, "{err}");
    assert!(
        err.message.contains("wasi_snapshot_preview1::fd_write"),
        "{err}"
    );
}

#[test]
fn missing_export_is_named() {
    let wat = r#"(module (memory (export "memory") 1) (func (export "kr_abi_version") (result i32) (i32.const 1)))"#;
    let err = run("no-exports.wasm", &wat::parse_str(wat).expect("parses"));
    assert_eq!(err.kind, PolicyErrorKind::Export, "{err}");
    assert!(err.message.contains("kr_alloc"), "{err}");
}

#[test]
fn wrong_export_signature_is_named() {
    let wat = r#"(module (memory (export "memory") 1)
      (func (export "kr_abi_version") (result i64) (i64.const 1)))"#;
    let err = run("bad-sig.wasm", &wat::parse_str(wat).expect("parses"));
    assert_eq!(err.kind, PolicyErrorKind::Export, "{err}");
    assert!(err.message.contains("kr_abi_version"), "{err}");
}

#[test]
fn wrong_abi_version_is_refused() {
    let err = run("abi3.wasm", &bare(r#"(memory (export "memory") 1)"#, 3));
    assert_eq!(err.kind, PolicyErrorKind::Abi, "{err}");
    assert!(err.message.contains("version 3"), "{err}");
}

/// ABI 1 modules (built before the packed input) still run: they get their input as JSON text.
/// (ABI 2's packed input is what every built-in policy and `abi-echo` read: policy_abi.rs.)
#[test]
fn an_abi_1_module_gets_its_input_as_json_text() {
    let not_json = r#"{"error":"the input is not JSON text"}"#;
    // Findings when the input's first byte is `{`, else the error at 12288.
    let evaluate = format!(
        r#"(if (result i64) (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 123))
             (then (call $pack (i32.const 8192) (i32.const 15)))
             (else (call $pack (i32.const 12288) (i32.const {}))))"#,
        not_json.len()
    );
    let wasm = module(
        &evaluate,
        r#"{"findings":[]}"#,
        &format!(r#"(data (i32.const 12288) "{}")"#, escape(not_json)),
    );
    let engine = engine();
    let policy = engine.load("abi1.wasm", &wasm).expect("loads");
    assert_eq!(policy.metadata.abi, 1);
    let report = engine
        .evaluate(&bundle(), &[policy], &PolicySettings::default())
        .expect("an ABI 1 module gets JSON text");
    assert!(report.findings.is_empty());
}

#[test]
fn kinds_must_be_written_as_kubernetes_writes_them() {
    let meta = r#"{"abi":1,"name":"wat-policy","version":"0.0.1","rules":[{"id":"wat-rule","severity":"deny"}],"kinds":["statefulset"]}"#;
    let wasm = module_with(meta, "(i64.const 0)", "", "");
    let err = engine()
        .load("lowercase-kinds.wasm", &wasm)
        .expect_err("a kind that matches nothing is refused");
    assert_eq!(err.kind, PolicyErrorKind::Output, "{err}");
    assert!(err.message.contains("statefulset"), "{err}");
}

#[test]
fn malformed_output_is_refused() {
    for (label, out, needle) in [
        ("not-json.wasm", "this is not json", "malformed"),
        (
            "unknown-rule.wasm",
            r#"{"findings":[{"rule":"nope","severity":"deny","object":{"apiVersion":"v1","kind":"ConfigMap","name":"cm"},"path":"","message":"m"}]}"#,
            "does not declare",
        ),
        (
            "bad-severity.wasm",
            r#"{"findings":[{"rule":"wat-rule","severity":"fatal","object":{"apiVersion":"v1","kind":"ConfigMap","name":"cm"},"path":"","message":"m"}]}"#,
            "malformed",
        ),
        (
            "bad-path.wasm",
            r#"{"findings":[{"rule":"wat-rule","severity":"deny","object":{"apiVersion":"v1","kind":"ConfigMap","name":"cm"},"path":"data.a","message":"m"}]}"#,
            "JSON pointer",
        ),
        (
            "bad-fix.wasm",
            r#"{"findings":[{"rule":"wat-rule","severity":"deny","object":{"apiVersion":"v1","kind":"ConfigMap","name":"cm"},"path":"","message":"m","fix":[{"op":"frobnicate"}]}]}"#,
            "JSON patch",
        ),
        ("empty.wasm", r#"{}"#, "`findings` or `error`"),
        (
            "both.wasm",
            r#"{"findings":[],"error":"and yet"}"#,
            "`findings` or `error`",
        ),
    ] {
        let err = run(label, &returning(out));
        assert_eq!(err.kind, PolicyErrorKind::Output, "{label}: {err}");
        assert!(err.message.contains(needle), "{label}: {err}");
    }
}

#[test]
fn a_module_reported_error_is_an_error() {
    let err = run("says-error.wasm", &returning(r#"{"error":"cannot cope"}"#));
    assert_eq!(err.kind, PolicyErrorKind::Reported, "{err}");
    assert!(err.message.contains("cannot cope"), "{err}");
}

#[test]
fn too_large_a_table_is_refused() {
    let err = run(
        "table.wasm",
        &module("(i64.const 0)", "", "(table 1000000 funcref)"),
    );
    assert_eq!(err.kind, PolicyErrorKind::Memory, "{err}");
}

#[test]
fn not_wasm_at_all_is_a_compile_error() {
    let err = run("garbage.wasm", b"\x7fELF not a module");
    assert_eq!(err.kind, PolicyErrorKind::Compile, "{err}");
}

#[test]
fn settings_for_an_unknown_policy_are_an_error() {
    let engine = engine();
    let policy = engine
        .load("good.wasm", &returning(r#"{"findings":[]}"#))
        .expect("loads");
    let settings =
        PolicySettings::from_value(json!({"no-such-policy": {"x": 1}})).expect("a mapping");
    let err = engine
        .evaluate(&bundle(), &[policy], &settings)
        .expect_err("unknown key");
    assert_eq!(err.kind, PolicyErrorKind::Settings, "{err}");
    assert!(err.message.contains("no-such-policy"), "{err}");
}
