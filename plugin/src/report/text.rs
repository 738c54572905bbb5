//! Findings as text for a terminal: grouped by object, most severe first, then a verdict.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::style::Style;
use crate::policy::{Finding, Report, Severity};

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
