//! Report: what a command found, for people and for tools. Policy reports as text (grouped by
//! object, coloured on a terminal), JSON, SARIF 2.1.0 and GitHub workflow annotations; the
//! terminal [`style`] and the [`redact`]ion of secrets every printed object goes through. The
//! format never changes the exit code; that is decided from the report alone.

mod github;
mod json;
pub(crate) mod redact;
mod sarif;
pub(crate) mod style;
mod text;

pub use github::github;
pub use json::json_report;
pub use redact::{mask_packed_secrets, mask_secrets};
pub use sarif::sarif;
pub use style::Style;
pub use text::text;

use crate::policy::Report;

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
