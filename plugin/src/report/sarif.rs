//! Findings as SARIF 2.1.0, for code scanning.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::policy::{Report, Severity};

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Deny => "error",
        Severity::Warn => "warning",
    }
}

/// SARIF 2.1.0: one run, the rules of every policy that ran, one result per finding (waived ones
/// carry a suppression with the reason), located at file:line of the spec where known.
pub fn sarif(report: &Report) -> Value {
    let rules: Vec<Value> = report
        .rules
        .iter()
        .map(|(policy, r)| {
            json!({
                "id": r.id,
                "name": r.id.split(['-', '_', '.']).map(|w| { let mut c = w.chars(); c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default() }).collect::<String>(),
                "shortDescription": { "text": if r.description.is_empty() { r.id.clone() } else { r.description.clone() } },
                "defaultConfiguration": { "level": sarif_level(r.severity) },
                "properties": { "policy": policy },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut location = json!({
                "logicalLocations": [{
                    "fullyQualifiedName": format!("{}{}", f.object, f.path),
                    "kind": "object",
                }],
            });
            if let Some(l) = f.location.as_ref().filter(|l| l.file != "-" && !l.file.is_empty()) {
                location["physicalLocation"] = json!({
                    "artifactLocation": { "uri": file_uri(&l.file) },
                    "region": { "startLine": l.line, "startColumn": l.column.max(1) },
                });
            }
            let mut result = json!({
                "ruleId": f.rule,
                "level": sarif_level(f.severity),
                "message": { "text": f.message },
                "locations": [location],
                "properties": { "policy": f.policy, "object": f.object, "path": f.path },
            });
            if let Some(i) = report.rules.iter().position(|(p, r)| *p == f.policy && r.id == f.rule) {
                result["ruleIndex"] = json!(i);
            }
            if let Some(fix) = &f.fix {
                result["properties"]["jsonPatch"] = fix.clone();
            }
            if let Some(s) = &f.suppressed {
                result["suppressions"] = json!([{ "kind": "inSource", "justification": s.reason, "properties": { "source": s.source } }]);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "kubectl-redis",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": rules,
            }},
            "invocations": [{ "executionSuccessful": true }],
            "results": results,
        }],
    })
}

/// A relative path stays relative (to the repository root, as code scanning expects); each
/// segment is percent-encoded where a URI needs it.
fn file_uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    if path.starts_with('/') {
        format!("file://{out}")
    } else {
        out.trim_start_matches("./").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris() {
        assert_eq!(
            file_uri("specs/redis cluster.yaml"),
            "specs/redis%20cluster.yaml"
        );
        assert_eq!(file_uri("./a.yaml"), "a.yaml");
        assert_eq!(file_uri("/tmp/a.yaml"), "file:///tmp/a.yaml");
    }
}
