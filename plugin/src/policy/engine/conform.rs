//! What a module must be to run: the exports and signatures of the ABI, metadata that names it
//! and its rules, and findings of the shape `kr_policy_abi::Finding` describes with rules it
//! declared, JSON pointers and fixes that are JSON patches.

use kr_policy_abi::{exports, Output};
use serde_json::Value;
use wasmtime::{ExternType, Module, ValType};

use super::super::{Finding, Metadata, ModuleSource, RuleInfo, SUPPORTED_ABI};
use super::{Policy, PolicyEngine, PolicyError, PolicyErrorKind};

/// The exports the ABI requires, with their signatures.
const REQUIRED_EXPORTS: &[(&str, &[ValType], &[ValType])] = &[
    (exports::ABI_VERSION, &[], &[ValType::I32]),
    (exports::ALLOC, &[ValType::I32], &[ValType::I32]),
    (exports::METADATA, &[], &[ValType::I64]),
    (
        exports::VALIDATE_SETTINGS,
        &[ValType::I32, ValType::I32],
        &[ValType::I64],
    ),
    (
        exports::EVALUATE,
        &[ValType::I32, ValType::I32],
        &[ValType::I64],
    ),
];

impl PolicyEngine {
    /// Checks that a module fits the ABI and reads its metadata.
    pub(super) fn check(
        &self,
        label: &str,
        module: Module,
        source: ModuleSource,
    ) -> Result<Policy, PolicyError> {
        let err = |kind, msg: String| PolicyError::new(label, kind, msg);

        if let Some(import) = module.imports().next() {
            let n = module.imports().len();
            return Err(err(
                PolicyErrorKind::Import,
                format!(
                    "imports `{}::{}`{}; policy modules run sandboxed and may import nothing (no WASI, no host functions). Build for wasm32-unknown-unknown with the SDK",
                    import.module(),
                    import.name(),
                    if n > 1 { format!(" and {} more", n - 1) } else { String::new() }
                ),
            ));
        }
        match module.get_export("memory") {
            Some(ExternType::Memory(_)) => {}
            _ => {
                return Err(err(
                    PolicyErrorKind::Export,
                    "does not export its linear memory as `memory`".into(),
                ))
            }
        }
        for (name, params, results) in REQUIRED_EXPORTS {
            let Some(ExternType::Func(ty)) = module.get_export(name) else {
                return Err(err(PolicyErrorKind::Export, format!("lacks the export `{name}` the policy ABI requires (see policies/README.md)")));
            };
            let same = |a: &mut dyn ExactSizeIterator<Item = ValType>, b: &[ValType]| {
                a.len() == b.len() && a.zip(b).all(|(x, y)| ValType::eq(&x, y))
            };
            if !same(&mut ty.params(), params) || !same(&mut ty.results(), results) {
                return Err(err(PolicyErrorKind::Export, format!("export `{name}` has signature {ty}, the ABI says ({params:?}) -> {results:?}")));
            }
        }

        let mut call = self.instantiate(label, &module, 0)?;
        let version = {
            let f = call.func::<(), i32>(label, exports::ABI_VERSION)?;
            f.call(&mut call.store, ())
                .map_err(|e| self.call_error(label, &mut call, e))?
        };
        if !SUPPORTED_ABI.contains(&version) {
            return Err(err(PolicyErrorKind::Abi, format!("speaks policy ABI version {version}; this kubectl-redis supports {SUPPORTED_ABI:?}")));
        }
        let raw = self.call_packed(label, &mut call, exports::METADATA, None)?;
        let metadata: Metadata = serde_json::from_slice(&raw).map_err(|e| {
            err(
                PolicyErrorKind::Output,
                format!("kr_metadata returned malformed JSON: {e}"),
            )
        })?;
        if metadata.abi != version {
            return Err(err(
                PolicyErrorKind::Abi,
                format!(
                    "metadata says ABI {} but kr_abi_version says {version}",
                    metadata.abi
                ),
            ));
        }
        if metadata.name.is_empty()
            || !metadata
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(err(
                PolicyErrorKind::Output,
                format!(
                    "policy name {:?} must be non-empty [A-Za-z0-9_-]",
                    metadata.name
                ),
            ));
        }
        if metadata.rules.is_empty() {
            return Err(err(PolicyErrorKind::Output, "declares no rules".into()));
        }
        if let Some(r) = metadata.rules.iter().find(|r| {
            r.id.is_empty()
                || !r
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        }) {
            return Err(err(PolicyErrorKind::Output, format!("rule id {:?} must be non-empty [A-Za-z0-9._-] (it is used in waiver annotations)", r.id)));
        }
        // Kubernetes kinds are CamelCase identifiers; anything else would silently match nothing.
        if let Some(k) = metadata.kinds.iter().find(|k| {
            !k.starts_with(|c: char| c.is_ascii_uppercase())
                || !k.chars().all(|c| c.is_ascii_alphanumeric())
        }) {
            return Err(err(PolicyErrorKind::Output, format!("declares kind {k:?}, which is not a Kubernetes kind (CamelCase, [A-Za-z0-9], as in `StatefulSet`)")));
        }
        Ok(Policy {
            label: label.to_string(),
            metadata,
            source,
            module,
        })
    }
}

pub(super) fn parse_findings(policy: &Policy, raw: &[u8]) -> Result<Vec<Finding>, PolicyError> {
    let bad = |msg: String| {
        PolicyError::new(
            &policy.label,
            PolicyErrorKind::Output,
            format!("returned malformed output: {msg}"),
        )
    };
    let output = serde_json::from_slice(raw).map_err(|e| {
        bad(format!(
            "{e} (the ABI wants an object with `findings` or `error`)"
        ))
    })?;
    let findings = match output {
        Output::Findings(findings) => findings,
        Output::Error(e) => {
            return Err(PolicyError::new(
                &policy.label,
                PolicyErrorKind::Reported,
                format!("reported an error: {e}"),
            ))
        }
    };
    findings
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let rule: &RuleInfo = policy
                .metadata
                .rules
                .iter()
                .find(|r| r.id == f.rule)
                .ok_or_else(|| {
                    bad(format!(
                        "finding {i} names rule `{}`, which the module does not declare",
                        f.rule
                    ))
                })?;
            if !(f.path.is_empty() || f.path.starts_with('/')) {
                return Err(bad(format!(
                    "finding {i} has path {:?}, not a JSON pointer",
                    f.path
                )));
            }
            if f.object.kind.is_empty() || f.object.name.is_empty() {
                return Err(bad(format!(
                    "finding {i} does not name an object (kind and name)"
                )));
            }
            if let Some(fix) = &f.fix {
                serde_json::from_value::<json_patch::Patch>(Value::Array(fix.clone())).map_err(
                    |e| {
                        bad(format!(
                            "finding {i} has a fix that is not a JSON patch: {e}"
                        ))
                    },
                )?;
            }
            Ok(Finding {
                policy: policy.name().to_string(),
                rule: rule.id.clone(),
                severity: f.severity,
                object: f.object,
                path: f.path,
                message: f.message,
                fix: f.fix.map(Value::Array),
                location: None,
                suppressed: None,
            })
        })
        .collect()
}
