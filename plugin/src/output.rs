//! Output: policy reports as text (grouped by object, coloured on a terminal), JSON, SARIF 2.1.0
//! and GitHub workflow annotations. The format never changes the exit code; that is decided
//! from the report alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::policy::{Finding, Report, Severity};
use crate::style::Style;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    Json,
    Sarif,
    Github,
}

pub fn render(report: &Report, format: ReportFormat, color: bool) -> anyhow::Result<String> {
    Ok(match format {
        ReportFormat::Text => text(report, color),
        ReportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&json_report(report))?),
        ReportFormat::Sarif => format!("{}\n", serde_json::to_string_pretty(&sarif(report))?),
        ReportFormat::Github => github(report),
    })
}

fn mark(f: &Finding) -> (&'static str, &'static str, &'static str) {
    match (f.suppressed.is_some(), f.severity) {
        (true, _) => ("~", "waived", "2"),
        (false, Severity::Deny) => ("✗", "deny", "1;31"),
        (false, Severity::Warn) => ("!", "warn", "33"),
    }
}

/// Findings grouped by object, most severe first, then a one-line verdict.
pub fn text(report: &Report, color: bool) -> String {
    let s = Style(color);
    let mut out = String::new();
    let mut groups: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
    for f in &report.findings {
        groups.entry(f.object.to_string()).or_default().push(f);
    }
    let mut groups: Vec<(String, Vec<&Finding>)> = groups.into_iter().collect();
    groups.sort_by_key(|(name, fs)| {
        (
            fs.iter()
                .map(|f| (f.suppressed.is_some(), f.severity))
                .min(),
            name.clone(),
        )
    });
    for (object, mut findings) in groups {
        findings.sort_by_key(|f| {
            (
                f.suppressed.is_some(),
                f.severity,
                f.location.as_ref().map(|l| l.line),
            )
        });
        let file = findings
            .iter()
            .find_map(|f| f.location.as_ref())
            .map(|l| format!("  {}", l.file))
            .unwrap_or_default();
        let _ = writeln!(out, "{}{}", s.paint("1", &object), s.paint("2", &file));
        for f in findings {
            let (glyph, word, code) = mark(f);
            let at = f
                .location
                .as_ref()
                .map(|l| format!(" ({}:{})", l.file, l.line))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} {:<6} {:<24} {}{}",
                s.paint(code, glyph),
                s.paint(code, word),
                f.rule,
                f.message,
                s.paint("2", &at)
            );
            let _ = writeln!(
                out,
                "           {}",
                s.paint(
                    "2",
                    &format!("at {}", if f.path.is_empty() { "/" } else { &f.path })
                )
            );
            if let Some(sup) = &f.suppressed {
                let _ = writeln!(
                    out,
                    "           {}",
                    s.paint("2", &format!("waived: {} ({})", sup.reason, sup.source))
                );
            }
            if let Some(fix) = &f.fix {
                let _ = writeln!(
                    out,
                    "           {}",
                    s.paint(
                        "2",
                        &format!("fix: {}", serde_json::to_string(fix).unwrap_or_default())
                    )
                );
            }
        }
        out.push('\n');
    }
    let (deny, warn, waived) = (
        report.count(Severity::Deny),
        report.count(Severity::Warn),
        report.suppressed(),
    );
    let rules = report.rules.len();
    let policies = report.policies.len();
    let verdict = if deny > 0 {
        s.paint(
            "1;31",
            &format!("Check failed: {deny} deny-level finding{}", plural(deny)),
        )
    } else {
        s.paint("1;32", "Check passed")
    };
    let _ = writeln!(
        out,
        "{verdict} ({warn} warning{}, {waived} waived; {policies} polic{}, {rules} rule{})",
        plural(warn),
        if policies == 1 { "y" } else { "ies" },
        plural(rules)
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

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

/// GitHub Actions workflow commands: `::error file=…,line=…,title=…::message`.
pub fn github(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let command = match (f.suppressed.is_some(), f.severity) {
            (true, _) => "notice",
            (false, Severity::Deny) => "error",
            (false, Severity::Warn) => "warning",
        };
        let mut props = Vec::new();
        if let Some(l) = &f.location {
            props.push(format!("file={}", escape_property(&l.file)));
            props.push(format!("line={}", l.line));
        }
        let waived = if f.suppressed.is_some() {
            " (waived)"
        } else {
            ""
        };
        props.push(format!(
            "title={}",
            escape_property(&format!("{}{waived}", f.rule))
        ));
        let mut message = format!(
            "{}: {} (at {})",
            f.object,
            f.message,
            if f.path.is_empty() { "/" } else { &f.path }
        );
        if let Some(s) = &f.suppressed {
            let _ = write!(message, "; waived: {}", s.reason);
        }
        let _ = writeln!(
            out,
            "::{command} {}::{}",
            props.join(","),
            escape_data(&message)
        );
    }
    let (deny, warn, waived) = (
        report.count(Severity::Deny),
        report.count(Severity::Warn),
        report.suppressed(),
    );
    let _ = writeln!(
        out,
        "kubectl-redis check: {deny} deny, {warn} warn, {waived} waived"
    );
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_escapes() {
        assert_eq!(escape_data("a%b\nc"), "a%25b%0Ac");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }

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
