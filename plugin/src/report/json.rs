//! Findings as one JSON document (`check -o json`).

use serde_json::{json, Value};

use crate::policy::{Report, Severity};

pub fn json_report(report: &Report) -> Value {
    json!({
        "summary": {
            "deny": report.count(Severity::Deny),
            "warn": report.count(Severity::Warn),
            "suppressed": report.suppressed(),
            "passed": report.blocking() == 0,
        },
        "findings": report.findings,
        "policies": report.policies,
    })
}
