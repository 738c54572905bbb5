//! Findings as GitHub Actions workflow commands.

use std::fmt::Write as _;

use crate::policy::{Report, Severity};

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
}
